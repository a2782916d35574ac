package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// The end-to-end tests build the real lispd and lispctl binaries and drive
// them as an operator would: start the daemon from a config file, register
// an ETR over UDP, look an EID up with lispctl, reload with SIGHUP and with
// `lispctl reload`, stop with SIGTERM.

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lispd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles the named commands once into binDir.
func build(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		out := filepath.Join(binDir, n)
		if _, err := os.Stat(out); err == nil {
			continue
		}
		cmd := exec.Command("go", "build", "-o", out, "github.com/lispd/lispd/cmd/"+n)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", n, err, b)
		}
	}
}

// freeUDPPort returns a port that was free on 127.0.0.1 a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

const e2eConfig = `
[daemon]
roles = ["ms", "mr"]
api-socket = %q
log-level = "info"

[control]
listen = ["127.0.0.1:%d"]

[[map-server.site]]
name = "site-a"
authentication-key = "secret-a"
algorithm = "hmac-sha-1"
eid-prefixes = ["10.1.0.0/16"]
%s
[map-resolver]
map-servers = ["local"]
`

type lispdProc struct {
	cmd    *exec.Cmd
	logs   *bytes.Buffer
	socket string
	config string
	addr   netip.AddrPort
}

func startLispd(t *testing.T, extra string) *lispdProc {
	t.Helper()
	build(t, "lispd", "lispctl")
	dir := t.TempDir()
	p := &lispdProc{socket: filepath.Join(dir, "lispd.sock"), config: filepath.Join(dir, "lispd.toml"), logs: &bytes.Buffer{}}
	port := freeUDPPort(t)
	p.addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	writeConfig(t, p.config, fmt.Sprintf(e2eConfig, p.socket, port, extra))
	p.cmd = exec.Command(filepath.Join(binDir, "lispd"), "-c", p.config)
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("lispd logs:\n%s", p.logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(p.socket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lispd did not create its API socket within 10 s; logs:\n%s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// lispctl runs lispctl against p and returns stdout, stderr and the exit code.
func (p *lispdProc) lispctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(binDir, "lispctl"), append([]string{"--socket", p.socket}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// registerETR sends a signed Map-Register from a fresh socket and waits for
// the Map-Notify.
func registerETR(t *testing.T, ms netip.AddrPort, key, prefix, rloc string) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := wire.NewEIDRecord(0, netip.MustParsePrefix(prefix))
	rec.RecordTTL = 1
	rec.Authoritative = true
	rec.Locators = []wire.Locator{{Priority: 1, Weight: 100, Local: true, Reachable: true, Address: wire.AddrFrom(netip.MustParseAddr(rloc))}}
	m := &wire.MapRegister{WantMapNotify: true, ProxyReply: true, Nonce: 42, AlgorithmID: wire.AlgHMACSHA196, Records: []wire.EIDRecord{rec}}
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Sign(b, []byte(key)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(b, ms); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no Map-Notify for %s: %v", prefix, err)
	}
	if err := wire.Verify(buf[:n], []byte(key)); err != nil {
		t.Fatalf("Map-Notify for %s: %v", prefix, err)
	}
}

func TestBinariesEndToEnd(t *testing.T) {
	p := startLispd(t, "")

	out, errOut, code := p.lispctl(t, "status")
	if code != 0 || !strings.Contains(out, "ms") {
		t.Fatalf("lispctl status: exit %d\n%s%s", code, out, errOut)
	}

	registerETR(t, p.addr, "secret-a", "10.1.0.0/16", "192.0.2.10")
	out, errOut, code = p.lispctl(t, "registrations", "show")
	if code != 0 || !strings.Contains(out, "10.1.0.0/16") || !strings.Contains(out, "192.0.2.10") {
		t.Fatalf("lispctl registrations show: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = p.lispctl(t, "registrations", "show", "--json")
	var regs []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &regs) != nil || len(regs) != 1 {
		t.Fatalf("lispctl registrations show --json: exit %d\n%s%s", code, out, errOut)
	}

	// A real Map-Request through the Map-Resolver, like lig.
	out, errOut, code = p.lispctl(t, "lookup", "10.1.2.3", "--mr", p.addr.String())
	if code != 0 || !strings.Contains(out, "10.1.0.0/16") || !strings.Contains(out, "192.0.2.10") {
		t.Fatalf("lispctl lookup: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = p.lispctl(t, "lookup", "10.99.0.1", "--mr", p.addr.String(), "--json")
	if code != 0 || !strings.Contains(strings.ToLower(out), "natively-forward") || !strings.Contains(out, "10.64.0.0/10") {
		t.Fatalf("lispctl lookup of an unregistered EID: exit %d\n%s%s", code, out, errOut)
	}

	// SIGHUP with a new site: the old registration stays, the new site
	// registers.
	writeConfig(t, p.config, fmt.Sprintf(e2eConfig, p.socket, p.addr.Port(), `
[[map-server.site]]
name = "site-b"
authentication-key = "secret-b"
algorithm = "hmac-sha-1"
eid-prefixes = ["10.2.0.0/16"]
`))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.logs.String(), "config reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("no reload after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	registerETR(t, p.addr, "secret-b", "10.2.0.0/16", "192.0.2.20")
	out, _, _ = p.lispctl(t, "registrations", "show")
	if !strings.Contains(out, "10.1.0.0/16") || !strings.Contains(out, "10.2.0.0/16") {
		t.Fatalf("after SIGHUP: registrations\n%s", out)
	}

	// A broken config is refused by `lispctl reload` with the reason and a
	// failure exit status; the daemon keeps running on the old one.
	writeConfig(t, p.config, "[daemon]\nroles = [\"ms\"]\nunknown-key = true\n")
	out, errOut, code = p.lispctl(t, "reload")
	if code != 1 || !strings.Contains(errOut, "unknown-key") {
		t.Fatalf("lispctl reload of a bad config: exit %d, want 1 naming the key\n%s%s", code, out, errOut)
	}
	out, _, code = p.lispctl(t, "registrations", "show")
	if code != 0 || !strings.Contains(out, "10.2.0.0/16") {
		t.Fatalf("after a refused reload: exit %d\n%s", code, out)
	}

	// SIGTERM stops it cleanly and removes the socket.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("lispd exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lispd did not stop within 10 s of SIGTERM")
	}
	if _, err := os.Stat(p.socket); !os.IsNotExist(err) {
		t.Errorf("API socket left behind after stop: %v", err)
	}
	_, errOut, code = p.lispctl(t, "status")
	if code != 3 || !strings.Contains(errOut, "not running") {
		t.Errorf("lispctl status with lispd stopped: exit %d, want 3\n%s", code, errOut)
	}
}

func TestCheckAndBadConfig(t *testing.T) {
	build(t, "lispd")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	writeConfig(t, good, fmt.Sprintf(e2eConfig, filepath.Join(dir, "s.sock"), 4342, ""))
	out, err := exec.Command(filepath.Join(binDir, "lispd"), "-c", good, "-check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("lispd -check on a good config: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.toml")
	writeConfig(t, bad, "[daemon]\nroles = [\"ms\"]\n\n[map-server]\nregistration-timeout = \"soon\"\n")
	out, err = exec.Command(filepath.Join(binDir, "lispd"), "-c", bad, "-check").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "bad.toml:5") {
		t.Fatalf("lispd -check on a bad config: %v, want exit 2 naming bad.toml:5\n%s", err, out)
	}
}

// TestExampleConfigs checks that every example config in the repository is
// accepted by lispd -check.
func TestExampleConfigs(t *testing.T) {
	build(t, "lispd")
	files, err := filepath.Glob("../../config/examples/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs found: %v", err)
	}
	for _, f := range files {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, filepath.Join(binDir, "lispd"), "-c", f, "-check").CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("%s: %v\n%s", f, err, out)
		}
	}
}
