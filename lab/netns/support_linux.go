//go:build linux

package netns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Supported reports whether the lab can run here: root, a writable
// /run/netns, network namespaces the kernel lets us create, and the
// programs the lab runs (ip, ping, keepalived, and dumpcap or tshark).
// It returns nil or a *SupportError.
func Supported() error {
	e := &SupportError{}
	if os.Geteuid() != 0 {
		e.NotRoot = true
		return e
	}
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		e.Problems = append(e.Problems, fmt.Sprintf("cannot create %s: %v", NetnsDir, err))
	} else if err := unix.Access(NetnsDir, unix.W_OK); err != nil {
		e.Problems = append(e.Problems, fmt.Sprintf("%s is not writable: %v", NetnsDir, err))
	}
	if err := inThread(func() error { return unix.Unshare(unix.CLONE_NEWNET) }); err != nil {
		e.Problems = append(e.Problems, fmt.Sprintf("cannot create a network namespace: %v", err))
	}
	for _, tool := range []string{"ip", "ping", "keepalived"} {
		if _, err := lookTool(tool); err != nil {
			e.Missing = append(e.Missing, tool)
		}
	}
	if ping, err := lookTool("ping"); err == nil {
		// Ping parses iputils' output; busybox's differs.
		out, _ := exec.Command(ping, "-V").CombinedOutput()
		if !strings.Contains(string(out), "iputils") {
			e.Problems = append(e.Problems, fmt.Sprintf("%s is not iputils ping (apt-get install iputils-ping)", ping))
		}
	}
	if _, err := captureTool(); err != nil {
		e.Missing = append(e.Missing, "dumpcap or tshark")
	}
	if len(e.Problems) > 0 || len(e.Missing) > 0 {
		return e
	}
	return nil
}

// lookTool finds a program in PATH or in the sbin and bin directories
// (root's PATH is not always set up in test runners).
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: program %q not found", ErrNotFound, name)
}

// captureTool returns dumpcap's path, or tshark's if there is no dumpcap.
func captureTool() (string, error) {
	if p, err := lookTool("dumpcap"); err == nil {
		return p, nil
	}
	return lookTool("tshark")
}
