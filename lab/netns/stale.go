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

// An owner record (/run/lispd-netns/<prefix>.owner) is how a lab proves
// what it created: the process that owns it (pid and start time, so that
// a later process reusing the PID is not mistaken for it), its temporary
// directory, and one line per namespace it created, written as soon as the
// namespace exists:
//
//	pid=4242
//	start=1234567
//	dir=/tmp/lispd-netns-ltab3x9-123
//	netns=ltab3x9-a dev=4 ino=4026532591 cookie=8201
//
// dev and ino identify the namespace while it exists; the cookie
// (SO_NETNS_COOKIE, 0 on kernels before 5.14) is never reused, so a
// namespace deleted and re-created under the same name, even one that got
// the same inode, is not the lab's.

// ownerRecord is a parsed owner record.
type ownerRecord struct {
	pid        int
	start      uint64
	dir        string
	namespaces []recordedNS
}

// recordedNS is a namespace an owner record says its lab created.
type recordedNS struct {
	name   string
	id     nsID
	cookie uint64
}

// formatNamespace is the owner record line of a namespace.
func formatNamespace(ns recordedNS) string {
	return fmt.Sprintf("netns=%s dev=%d ino=%d cookie=%d\n", ns.name, ns.id.dev, ns.id.ino, ns.cookie)
}

// errNotOurs is returned by readOwner for a file that this user did not
// write: CleanupStale leaves it, and what it names, alone.
var errNotOurs = errors.New("netns: not an owner record of this user")

// readOwner reads an owner record. It must be a regular file owned by
// this user: only what this code wrote is taken as proof.
func readOwner(path string) (ownerRecord, error) {
	var rec ownerRecord
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return rec, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return rec, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Geteuid() {
		return rec, errNotOurs
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "netns="); ok {
			var ns recordedNS
			if n, _ := fmt.Sscanf(rest, "%s dev=%d ino=%d cookie=%d", &ns.name, &ns.id.dev, &ns.id.ino, &ns.cookie); n == 4 && ns.id.ino != 0 {
				rec.namespaces = append(rec.namespaces, ns)
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "pid":
			rec.pid, _ = strconv.Atoi(v)
		case "start":
			rec.start, _ = strconv.ParseUint(v, 10, 64)
		case "dir":
			rec.dir = v
		}
	}
	return rec, sc.Err()
}

// alive reports whether the process that wrote the record still runs.
func (r ownerRecord) alive() bool {
	if r.pid <= 0 {
		return false
	}
	got, err := procStartTime(r.pid)
	return err == nil && got == r.start
}

// netnsCookie returns the cookie of the calling thread's network
// namespace, 0 if the kernel has none (before Linux 5.14).
func netnsCookie() (uint64, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("netns: socket: %w", err)
	}
	defer unix.Close(fd)
	c, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if errors.Is(err, unix.ENOPROTOOPT) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("netns: namespace cookie: %w", err)
	}
	return c, nil
}

// isRecorded reports whether the namespace at path is the one ns records:
// the same nsfs device and inode and, if the record has one, the same
// cookie. A path that does not exist is not.
func isRecorded(path string, ns recordedNS) (bool, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("netns: %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, fmt.Errorf("netns: %s: %w", path, err)
	}
	if (nsID{dev: st.Dev, ino: st.Ino}) != ns.id {
		return false, nil
	}
	if ns.cookie == 0 {
		return true, nil
	}
	var cookie uint64
	err = inThread(func() error {
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("netns: entering %s: %w", path, err)
		}
		var err error
		cookie, err = netnsCookie()
		return err
	})
	return err == nil && cookie == ns.cookie, err
}

// namespacesWithPrefix lists the namespaces in /run/netns named like
// those of the lab with exactly this prefix (<prefix>-<node>). Names prove
// nothing: this only tells whether a prefix is free.
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
// left behind, and only what their owner records prove they created: the
// namespaces recorded there (the same namespace, not just the same name:
// see ownerRecord), the processes running in them, the lab's directory and
// the record itself. Namespaces merely named like a lab's (another user's,
// another program's, a lab's whose record is gone) are left alone, and
// nothing is ever killed by name. Labs whose owning process is still alive
// are left alone too, so it is safe to call while other labs run, e.g.
// CleanupStale(DefaultPrefix) at the start of a test binary. It is best
// effort: it removes what it can and returns the errors it met; a record
// is removed only once everything it proves is gone.
func CleanupStale(prefix string) error {
	if !validPrefix(prefix) {
		return invalidf("stale prefix %q: want lower-case letters and digits", prefix)
	}
	var errs []error
	owners, _ := filepath.Glob(filepath.Join(ownerDir, prefix+"*.owner"))
	for _, o := range owners {
		labPrefix := strings.TrimSuffix(filepath.Base(o), ".owner")
		if !validPrefix(labPrefix) {
			continue
		}
		rec, err := readOwner(o)
		if err != nil {
			// Closed meanwhile, or not ours: nothing to do.
			if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, errNotOurs) {
				errs = append(errs, fmt.Errorf("netns: owner record: %w", err))
			}
			continue
		}
		if rec.alive() {
			continue
		}
		if err := removeRecorded(labPrefix, rec); err != nil {
			errs = append(errs, err)
			continue // keep the record: a later run tries again
		}
		if rec.dir != "" && strings.HasPrefix(filepath.Base(rec.dir), "lispd-netns-"+labPrefix+"-") {
			if err := os.RemoveAll(rec.dir); err != nil {
				errs = append(errs, fmt.Errorf("netns: %w", err))
			}
		}
		if err := os.Remove(o); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("netns: %w", err))
		}
	}
	return errors.Join(errs...)
}

// removeRecorded kills the processes in, and deletes, the namespaces of a
// stale record that are still the ones it recorded.
func removeRecorded(labPrefix string, rec ownerRecord) error {
	var errs []error
	var ids []nsID
	var paths []string
	for _, ns := range rec.namespaces {
		if !strings.HasPrefix(ns.name, labPrefix+"-") || strings.ContainsRune(ns.name, '/') {
			continue // not a name this lab gives
		}
		path := filepath.Join(NetnsDir, ns.name)
		ours, err := isRecorded(path, ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ours {
			ids = append(ids, ns.id)
			paths = append(paths, path)
		}
	}
	if err := killInNamespaces(ids); err != nil {
		errs = append(errs, err)
	}
	for _, path := range paths {
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
