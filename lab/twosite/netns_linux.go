//go:build linux

package twosite

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/lab/netns"
)

// NetnsOptions configure NewNetns.
type NetnsOptions struct {
	// Lispd is the lispd binary the routers run. Required.
	Lispd string
	// MissPolicy is the ITRs' miss policy, "drop" (the default) or "queue".
	MissPolicy string
	// LogLevel is the daemons' log level; "" means "info".
	LogLevel string
	// RLOCNet is the RLOC network (an IPv4 /24); zero means
	// DefaultNetnsRLOCNet. It exists only inside the lab's namespaces.
	RLOCNet netip.Prefix
	// Lab configures the lab of namespaces (name prefix, directory, ...).
	Lab netns.Options
	// StartTimeout bounds each Start* call: daemons up and, for the xTRs,
	// both sites registered. Zero means 20 s.
	StartTimeout time.Duration
}

// Netns is the two-site topology in network namespaces: nodes hostA, xtrA,
// ms, xtrB and hostB, and "core", a switch (bridge br0) for the RLOC
// network. Each host has a veth link (eth0) to its xTR (eid0) and a route
// to the other site through it; the xTRs and ms are attached to the core
// with their interface rloc0. The xTRs forward IPv4 with reverse-path
// filtering off, and have IPv6 turned off (the topology is IPv4 only). NewNetns starts no daemon: Start (or StartMS and
// StartXTRs) runs lispd on the routers, StopXTRs stops the xTRs' lispd
// again (lab/benchdata runs a relay there instead). Close removes
// everything.
type Netns struct {
	o     NetnsOptions
	plan  Plan
	lab   *netns.Lab
	nodes map[string]*netns.Node
	core  *netns.Bridge

	mu    sync.Mutex // guards procs and apis
	procs map[string]*netns.Process
	apis  map[string]*api.Client
}

// NewNetns builds the namespaces, links, addresses and routes. It needs
// root (see netns.Supported). On error everything built is removed.
func NewNetns(o NetnsOptions) (*Netns, error) {
	if o.Lispd == "" {
		return nil, fmt.Errorf("%w: no lispd binary given", ErrInvalid)
	}
	if st, err := os.Stat(o.Lispd); err != nil || st.IsDir() {
		return nil, fmt.Errorf("%w: lispd binary %q: %v", ErrInvalid, o.Lispd, err)
	}
	if o.RLOCNet == (netip.Prefix{}) {
		o.RLOCNet = DefaultNetnsRLOCNet
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 20 * time.Second
	}
	if o.StartTimeout < 0 {
		return nil, fmt.Errorf("%w: start timeout %v", ErrInvalid, o.StartTimeout)
	}
	plan, err := NewPlan(o.RLOCNet)
	if err != nil {
		return nil, err
	}
	// Check the configs before building anything.
	if _, err := plan.XTRConfig(SiteA, XTROptions{MissPolicy: o.MissPolicy}); err != nil {
		return nil, err
	}
	lab, err := netns.New(o.Lab)
	if err != nil {
		return nil, fmt.Errorf("twosite: %w", err)
	}
	n := &Netns{o: o, plan: plan, lab: lab, nodes: map[string]*netns.Node{},
		procs: map[string]*netns.Process{}, apis: map[string]*api.Client{}}
	if err := n.build(); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

// build creates the nodes, links, addresses and routes.
func (n *Netns) build() error {
	p := n.plan
	wrap := func(err error) error { return fmt.Errorf("twosite: %w", err) }
	var err error
	if n.core, err = n.lab.AddSwitch(NodeCore); err != nil {
		return wrap(err)
	}
	n.nodes[NodeCore] = n.core.Node()
	rloc := func(a netip.Addr) []string { return []string{netip.PrefixFrom(a, p.RLOCNet.Bits()).String()} }
	add := func(name string) (*netns.Node, error) {
		node, err := n.lab.AddNode(name)
		if err != nil {
			return nil, wrap(err)
		}
		n.nodes[name] = node
		return node, nil
	}
	ms, err := add(NodeMS)
	if err != nil {
		return err
	}
	if _, err := n.core.AttachWith(ms, netns.LinkConfig{NameA: "rloc0", AddrsA: rloc(p.MSMR)}); err != nil {
		return wrap(err)
	}
	for _, s := range []Site{SiteA, SiteB} {
		x, err := add(XTRNode(s))
		if err != nil {
			return err
		}
		h, err := add(HostNode(s))
		if err != nil {
			return err
		}
		if _, err := n.core.AttachWith(x, netns.LinkConfig{NameA: "rloc0", AddrsA: rloc(p.RLOC[s])}); err != nil {
			return wrap(err)
		}
		bits := p.SitePrefix[s].Bits()
		if _, err := n.lab.LinkWith(x, h, netns.LinkConfig{
			NameA: "eid0", NameB: "eth0",
			AddrsA: []string{netip.PrefixFrom(p.Gateway[s], bits).String()},
			AddrsB: []string{netip.PrefixFrom(p.Host[s], bits).String()},
		}); err != nil {
			return wrap(err)
		}
		if err := h.AddRoute(p.SitePrefix[s.Other()].String(), p.Gateway[s].String()); err != nil {
			return wrap(err)
		}
		// A router: forwarding on; reverse-path filtering off, as
		// traffic enters by eid0 and its replies come back by the TUN.
		// The lab is IPv4 only: with IPv6 off, the kernel sends no
		// router solicitations or MLD reports into the TUN, so every
		// packet the ITR sees (and counts) is the hosts'.
		if err := x.EnableForwarding(true, false); err != nil {
			return wrap(err)
		}
		for k, v := range map[string]string{
			"net.ipv4.conf.all.rp_filter":        "0",
			"net.ipv4.conf.default.rp_filter":    "0",
			"net.ipv6.conf.all.disable_ipv6":     "1",
			"net.ipv6.conf.default.disable_ipv6": "1",
		} {
			if err := x.SetSysctl(k, v); err != nil {
				return wrap(err)
			}
		}
	}
	return nil
}

// Plan returns the topology's addressing.
func (n *Netns) Plan() Plan { return n.plan }

// Lab returns the lab of namespaces.
func (n *Netns) Lab() *netns.Lab { return n.lab }

// Node returns a node by name (NodeHostA, NodeXTRA, NodeMS, NodeXTRB,
// NodeHostB, NodeCore), nil for another name.
func (n *Netns) Node(name string) *netns.Node { return n.nodes[name] }

// Core returns the RLOC network's bridge (br0 in node "core").
func (n *Netns) Core() *netns.Bridge { return n.core }

// API returns the API client of the lispd running on a router node, nil
// when none runs there.
func (n *Netns) API(node string) *api.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.apis[node]
}

// Lispd returns the lispd process of a router node, nil when none runs
// there.
func (n *Netns) Lispd(node string) *netns.Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.procs[node]
}

// APISocket returns the path of a router's lispd API socket.
func (n *Netns) APISocket(node string) string { return filepath.Join(n.lab.Dir(), node+".sock") }

// StartCapture captures the LISP traffic of the RLOC network (UDP 4341
// and 4342 on the core bridge, which sees every frame between the
// routers) into a pcapng file; a relative path is taken in the lab's
// directory.
func (n *Netns) StartCapture(path string) (*netns.Capture, error) {
	c, err := n.core.Node().StartCapture(n.core.Name(), "udp port 4341 or udp port 4342", path)
	if err != nil {
		return nil, fmt.Errorf("twosite: %w", err)
	}
	return c, nil
}

// Start runs lispd on ms, xtrA and xtrB and waits until both sites are
// registered.
func (n *Netns) Start(ctx context.Context) error {
	if err := n.StartMS(ctx); err != nil {
		return err
	}
	return n.StartXTRs(ctx)
}

// StartMS runs lispd as Map-Server/Map-Resolver on ms and waits for its
// API.
func (n *Netns) StartMS(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.o.StartTimeout)
	defer cancel()
	return n.startLispd(ctx, NodeMS, n.plan.MSMRConfig(n.APISocket(NodeMS), n.o.LogLevel))
}

// StartXTRs runs lispd on xtrA and xtrB, with the TUN device lisp0 routing
// the other site, and waits until both are registered with the Map-Server
// (which StartMS must have started).
func (n *Netns) StartXTRs(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.o.StartTimeout)
	defer cancel()
	for _, s := range []Site{SiteA, SiteB} {
		name := XTRNode(s)
		text, err := n.plan.XTRConfig(s, XTROptions{APISocket: n.APISocket(name), LogLevel: n.o.LogLevel, MissPolicy: n.o.MissPolicy, TUN: true})
		if err != nil {
			return err
		}
		if err := n.startLispd(ctx, name, text); err != nil {
			return err
		}
	}
	return n.waitRegistered(ctx)
}

// StopXTRs stops lispd on xtrA and xtrB (their TUN devices and routes go
// with them).
func (n *Netns) StopXTRs() error {
	var errs []error
	for _, s := range []Site{SiteA, SiteB} {
		if err := n.stopLispd(XTRNode(s)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopLispd stops the lispd of a node, if one runs.
func (n *Netns) stopLispd(node string) error {
	n.mu.Lock()
	p, c := n.procs[node], n.apis[node]
	delete(n.procs, node)
	delete(n.apis, node)
	n.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	if p == nil {
		return nil
	}
	if err := p.Stop(); err != nil {
		return fmt.Errorf("twosite: lispd on %s: %w", node, err)
	}
	return nil
}

// startLispd writes a config and runs lispd on a node, waiting until its
// API answers.
func (n *Netns) startLispd(ctx context.Context, node, conf string) error {
	nd := n.nodes[node]
	if nd == nil {
		return fmt.Errorf("%w: no node %q", ErrInvalid, node)
	}
	n.mu.Lock()
	running := n.procs[node] != nil
	n.mu.Unlock()
	if running {
		return fmt.Errorf("%w: lispd already runs on %s", ErrInvalid, node)
	}
	path := filepath.Join(n.lab.Dir(), node+".toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("twosite: %w", err)
	}
	proc, err := nd.Start(context.Background(), netns.Command{Name: n.o.Lispd, Args: []string{"-c", path}, Label: "lispd-" + node})
	if err != nil {
		return fmt.Errorf("twosite: lispd on %s: %w", node, err)
	}
	c := api.NewClient(n.APISocket(node), api.WithTimeout(5*time.Second))
	n.mu.Lock()
	n.procs[node], n.apis[node] = proc, c
	n.mu.Unlock()
	for {
		if _, err := c.Status(ctx); err == nil {
			return nil
		}
		if proc.Exited() {
			_ = n.stopLispd(node)
			return fmt.Errorf("twosite: lispd on %s exited at start:\n%s", node, proc.Tail(20))
		}
		select {
		case <-ctx.Done():
			tail := proc.Tail(20)
			_ = n.stopLispd(node)
			return fmt.Errorf("%w: lispd on %s: API not up: %v\n%s", ErrNotReady, node, ctx.Err(), tail)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitRegistered waits until the Map-Server holds both sites'
// registrations.
func (n *Netns) waitRegistered(ctx context.Context) error {
	ms := n.API(NodeMS)
	if ms == nil {
		return fmt.Errorf("%w: no Map-Server runs (StartMS)", ErrNotReady)
	}
	for {
		regs, err := ms.Registrations(ctx)
		if err == nil && registered(regs, n.plan) {
			return nil
		}
		for _, node := range []string{NodeMS, NodeXTRA, NodeXTRB} {
			if p := n.Lispd(node); p != nil && p.Exited() {
				return fmt.Errorf("twosite: lispd on %s exited:\n%s", node, p.Tail(20))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: the sites did not register: %v (last answer %d registrations, %v)", ErrNotReady, ctx.Err(), len(regs), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops every process and removes the namespaces, links and the
// lab's directory. It may be called more than once.
func (n *Netns) Close() error {
	n.mu.Lock()
	for k, c := range n.apis {
		_ = c.Close()
		delete(n.apis, k)
	}
	clear(n.procs)
	n.mu.Unlock()
	if err := n.lab.Close(); err != nil {
		return fmt.Errorf("twosite: %w", err)
	}
	return nil
}
