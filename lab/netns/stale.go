//go:build linux

package netns

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procStartTime returns a process's start time in clock ticks since boot
// (field 22 of /proc/PID/stat), which tells a live process from a later
// one that reuses its PID.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may contain
	// anything; the fields after the last ')' start with field 3.
	k := bytes.LastIndexByte(b, ')')
	if k < 0 {
		return 0, fmt.Errorf("netns: malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[k+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("netns: malformed /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// ownerAlive reads an owner file and reports whether the process it names
// is still running, and the lab directory it records.
func ownerAlive(path string) (alive bool, dir string) {
	f, err := os.Open(path)
	if err != nil {
		return false, ""
	}
	defer f.Close()
	var pid int
	var start uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "pid":
			pid, _ = strconv.Atoi(v)
		case "start":
			start, _ = strconv.ParseUint(v, 10, 64)
		case "dir":
			dir = v
		}
	}
	if pid <= 0 {
		return false, dir
	}
	got, err := procStartTime(pid)
	return err == nil && got == start, dir
}

// namespacesWithPrefix lists the namespaces in /run/netns of the lab
// with exactly this prefix (named <prefix>-<node>).
func namespacesWithPrefix(labPrefix string) ([]string, error) {
	ents, err := os.ReadDir(NetnsDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), labPrefix+"-") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// CleanupStale removes what crashed labs whose prefix starts with prefix
// left behind: the processes running in their namespaces, the namespaces
// in /run/netns (with their interfaces), their directories and owner
// records. Labs whose owning process is still alive are left alone, so it
// is safe to call while other labs run, e.g. CleanupStale(DefaultPrefix)
// at the start of a test binary. It is best effort: it removes what it can
// and returns the errors it met.
func CleanupStale(prefix string) error {
	if !validPrefix(prefix) {
		return invalidf("stale prefix %q: want lower-case letters and digits", prefix)
	}
	live := map[string]bool{}
	var errs []error
	owners, _ := filepath.Glob(filepath.Join(ownerDir, prefix+"*.owner"))
	for _, o := range owners {
		labPrefix := strings.TrimSuffix(filepath.Base(o), ".owner")
		alive, dir := ownerAlive(o)
		if alive {
			live[labPrefix] = true
			continue
		}
		if dir != "" && strings.Contains(filepath.Base(dir), "lispd-netns-"+labPrefix+"-") {
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("netns: %w", err))
			}
		}
		if err := os.Remove(o); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("netns: %w", err))
		}
	}

	ents, err := os.ReadDir(NetnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("netns: %w", err))
	}
	var stale []string
	var ids []nsID
	for _, e := range ents {
		name := e.Name()
		labPrefix, _, ok := strings.Cut(name, "-")
		if !ok || !strings.HasPrefix(labPrefix, prefix) || !validPrefix(labPrefix) || live[labPrefix] {
			continue
		}
		path := filepath.Join(NetnsDir, name)
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err == nil && st.Ino != 0 {
			ids = append(ids, nsID{dev: st.Dev, ino: st.Ino})
		}
		stale = append(stale, path)
	}
	if err := killInNamespaces(ids); err != nil {
		errs = append(errs, err)
	}
	for _, path := range stale {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("netns: unmounting %s: %w", path, err))
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("netns: %w", err))
		}
	}
	return errors.Join(errs...)
}

// processesIn returns the PIDs of processes (other than this one) whose
// network namespace is one of ids.
func processesIn(ids []nsID) []int {
	if len(ids) == 0 {
		return nil
	}
	want := make(map[nsID]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil {
			continue
		}
		if want[nsID{dev: st.Dev, ino: st.Ino}] {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killInNamespaces kills (SIGKILL) every process in the namespaces and
// waits a little for them to go.
func killInNamespaces(ids []nsID) error {
	pids := processesIn(ids)
	if len(pids) == 0 {
		return nil
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(killWait)
	for time.Now().Before(deadline) {
		left := 0
		for _, pid := range processesIn(ids) {
			if !isZombie(pid) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		time.Sleep(pollEvery)
	}
	return fmt.Errorf("netns: processes %v in lab namespaces survived SIGKILL", processesIn(ids))
}

// isZombie reports whether a process has exited and awaits its parent.
func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	k := bytes.LastIndexByte(b, ')')
	return k >= 0 && k+2 < len(b) && b[k+2] == 'Z'
}
