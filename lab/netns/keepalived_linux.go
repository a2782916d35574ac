//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/deploy/keepalived"
)

// keepalivedReady bounds how long StartKeepalived waits for keepalived to
// enter its first state.
const keepalivedReady = 10 * time.Second

// Keepalived is a keepalived process running one VRRP instance in a node.
type Keepalived struct {
	node     *Node
	cfg      KeepalivedConfig // normalized
	proc     *Process
	confPath string
}

// StartKeepalived renders a keepalived.conf for cfg from the documented
// config (see KeepalivedConfig) into the lab's directory and runs
// keepalived inside the node (VRRP only, in the foreground, logging to
// its stderr, with its pid files in the lab's directory), so it only ever
// touches the node's namespace. The drain track file is cfg.TrackFile or,
// if empty, a file in the lab's directory; it is created holding 0 if it
// does not exist. With cfg.Lispctl set, the documented notify hook
// (lispd-vrrp-notify) is installed in the lab's directory unless
// cfg.NotifyHook names one. The file is checked with keepalived's config
// test first. StartKeepalived returns once the instance has entered its
// first state.
func (n *Node) StartKeepalived(cfg KeepalivedConfig) (*Keepalived, error) {
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	base := filepath.Join(n.lab.dir, "keepalived-"+n.name+"-"+c.Instance)
	if c.TrackFile == "" {
		c.TrackFile = base + ".drain"
	}
	if _, err := os.Stat(c.TrackFile); errors.Is(err, fs.ErrNotExist) {
		if err := writeTrackFile(c.TrackFile, 0); err != nil {
			return nil, err
		}
	}
	if c.Lispctl != "" && c.NotifyHook == "" {
		if c.NotifyHook, err = n.installNotifyHook(); err != nil {
			return nil, err
		}
	}
	text, err := c.Render(n.nsName)
	if err != nil {
		return nil, err
	}
	k := &Keepalived{node: n, cfg: c, confPath: base + ".conf"}
	if err := os.WriteFile(k.confPath, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("netns: keepalived config: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), keepalivedReady)
	defer cancel()
	if out, err := n.Exec(ctx, "keepalived", "--config-test", "--use-file="+k.confPath); err != nil {
		return nil, fmt.Errorf("%w: keepalived rejects %s: %w\n%s", ErrInvalid, k.confPath, err, out)
	}
	// Pid files of their own for each start: those of a keepalived that
	// was killed stay behind, and keepalived refuses to start while they
	// name a process (its VRRP child may not be reaped yet).
	pids := fmt.Sprintf("%s.%d", base, startSeq.Add(1))
	k.proc, err = n.Start(context.Background(), Command{
		Name:  "keepalived",
		Label: "keepalived-" + c.Instance,
		Args: []string{
			"--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp",
			"--use-file=" + k.confPath,
			"--pid=" + pids + ".pid",
			"--vrrp_pid=" + pids + ".vrrp.pid",
			"--checkers_pid=" + pids + ".checkers.pid",
			"--bfd_pid=" + pids + ".bfd.pid",
		},
	})
	if err != nil {
		return nil, err
	}
	if err := k.proc.WaitOutput(ctx, "("+c.Instance+") Entering "); err != nil {
		k.proc.Stop()
		return nil, err
	}
	return k, nil
}

// notifyHookName is the lab's copy of the documented notify hook.
const notifyHookName = "lispd-vrrp-notify"

// installNotifyHook writes the documented notify hook into the lab's
// directory and returns its path. keepalived runs it as root only from a
// path no other user can write to: the lab's directory is root's, mode
// 0700. Concurrent calls each write a file of their own and rename it
// into place.
func (n *Node) installNotifyHook() (string, error) {
	path := filepath.Join(n.lab.dir, notifyHookName)
	text, err := keepalived.File(keepalived.NotifyScript)
	if err != nil {
		return "", fmt.Errorf("netns: notify hook: %w", err)
	}
	tmp := path + "." + n.name + ".tmp"
	if err := os.WriteFile(tmp, text, 0o755); err != nil {
		return "", fmt.Errorf("netns: notify hook: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("netns: notify hook: %w", err)
	}
	return path, nil
}

// trackSeq makes the temporary names of writeTrackFile unique, startSeq
// the pid file names of StartKeepalived.
var trackSeq, startSeq atomic.Uint64

// writeTrackFile writes v to a track file the way lispd does: into a
// temporary file renamed over it, so that keepalived (which reads the file
// when inotify reports a change) never sees it half written.
func writeTrackFile(path string, v int) error {
	tmp := fmt.Sprintf("%s.%d.tmp", path, trackSeq.Add(1))
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(v)+"\n"), 0o644); err != nil {
		return fmt.Errorf("netns: track file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("netns: track file: %w", err)
	}
	return nil
}

// TrackFile returns the instance's drain track file.
func (k *Keepalived) TrackFile() string { return k.cfg.TrackFile }

// SetTrackFile writes v into the drain track file, as lispd does on
// `lispctl drain` (non-zero: the instance goes to FAULT and hands the
// address over) and `lispctl undrain` (0).
func (k *Keepalived) SetTrackFile(v int) error { return writeTrackFile(k.cfg.TrackFile, v) }

// Process returns the keepalived process.
func (k *Keepalived) Process() *Process { return k.proc }

// ConfigPath returns the keepalived.conf the instance runs with.
func (k *Keepalived) ConfigPath() string { return k.confPath }

// Config returns the instance's configuration with defaults (the
// documented timers) and the lab's paths filled in.
func (k *Keepalived) Config() KeepalivedConfig { return k.cfg }

// Stop stops keepalived (SIGTERM: it releases the virtual addresses).
func (k *Keepalived) Stop() error { return k.proc.Stop() }

// State returns the instance's state according to keepalived's log (the
// last "Entering ... STATE" line).
func (k *Keepalived) State() VRRPState {
	out, errOut, _ := k.proc.Output()
	if s := lastKeepalivedState(errOut, k.cfg.Instance); s != StateUnknown {
		return s
	}
	return lastKeepalivedState(out, k.cfg.Instance)
}

// OwnsVIP reports whether the node holds every virtual address of the
// instance: what a Master does.
func (k *Keepalived) OwnsVIP() (bool, error) {
	for _, v := range k.cfg.VirtualIPs {
		ok, err := k.node.HasAddr(v)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// WaitState waits until the instance's logged state is s.
func (k *Keepalived) WaitState(ctx context.Context, s VRRPState) error {
	return WaitUntil(ctx, func() (bool, error) {
		if k.proc.Exited() {
			if err := k.proc.Wait(); err != nil {
				return false, err
			}
			return false, k.proc.wrap(fmt.Errorf("%w while waiting for state %s", ErrExited, s))
		}
		return k.State() == s, nil
	})
}

// VIPOwner returns which of the nodes holds the virtual address vip
// ("10.0.0.254" or "10.0.0.254/24"): nil if none does, ErrSplitBrain if
// more than one does.
func VIPOwner(vip string, nodes ...*Node) (*Node, error) {
	var owner *Node
	for _, n := range nodes {
		if n == nil {
			return nil, invalidf("VIPOwner: nil node")
		}
		ok, err := n.HasAddr(vip)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if owner != nil {
			return nil, fmt.Errorf("%w: %s on %s and %s", ErrSplitBrain, vip, owner.name, n.name)
		}
		owner = n
	}
	return owner, nil
}

// WaitVIPOwner waits until want (nil: no node) is the only one of the
// nodes to hold vip.
func WaitVIPOwner(ctx context.Context, vip string, want *Node, nodes ...*Node) error {
	var last *Node
	err := WaitUntil(ctx, func() (bool, error) {
		o, err := VIPOwner(vip, nodes...)
		if err != nil && !errors.Is(err, ErrSplitBrain) {
			return false, err
		}
		last = o
		return err == nil && o == want, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last owner of %s: %s, want %s)", err, vip, nodeName(last), nodeName(want))
	}
	return nil
}

// nodeName returns the node's name, "none" for nil.
func nodeName(n *Node) string {
	if n == nil {
		return "none"
	}
	return n.name
}

// WaitUntil polls cond every 20 ms until it returns true (nil), an error
// (that error), or ctx ends (an error wrapping ErrTimeout).
func WaitUntil(ctx context.Context, cond func() (bool, error)) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
		case <-t.C:
		}
	}
}
