//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
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

// StartKeepalived writes a keepalived.conf for cfg in the lab's directory
// and runs keepalived inside the node (VRRP only, in the foreground,
// logging to its stderr, with its pid files in the lab's directory), so it
// only ever touches the node's namespace. The file is checked with
// keepalived's config test first. StartKeepalived returns once the
// instance has entered its first state.
func (n *Node) StartKeepalived(cfg KeepalivedConfig) (*Keepalived, error) {
	c, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	text, err := c.Render(n.nsName)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(n.lab.dir, "keepalived-"+n.name+"-"+c.Instance)
	k := &Keepalived{node: n, cfg: c, confPath: base + ".conf"}
	if err := os.WriteFile(k.confPath, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("netns: keepalived config: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), keepalivedReady)
	defer cancel()
	if _, err := n.Exec(ctx, "keepalived", "--config-test", "--use-file="+k.confPath); err != nil {
		return nil, fmt.Errorf("%w: keepalived rejects %s: %w", ErrInvalid, k.confPath, err)
	}
	k.proc, err = n.Start(context.Background(), Command{
		Name:  "keepalived",
		Label: "keepalived-" + c.Instance,
		Args: []string{
			"--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp",
			"--use-file=" + k.confPath,
			"--pid=" + base + ".pid",
			"--vrrp_pid=" + base + ".vrrp.pid",
			"--checkers_pid=" + base + ".checkers.pid",
			"--bfd_pid=" + base + ".bfd.pid",
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

// Process returns the keepalived process.
func (k *Keepalived) Process() *Process { return k.proc }

// ConfigPath returns the keepalived.conf the instance runs with.
func (k *Keepalived) ConfigPath() string { return k.confPath }

// Config returns the instance's configuration with defaults filled in.
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
