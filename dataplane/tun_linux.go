//go:build linux

package dataplane

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// TUN is a Device on a Linux TUN interface, built on wireguard-go's tun
// package: with the kernel's virtio offloads it reads TCP/UDP segmentation
// super-packets split into MTU-sized packets in one call, and coalesces
// writes (GRO) where it can. The interface is configured over netlink.
type TUN struct {
	dev       tun.Device
	name      string
	ctl       int           // socket in the device's namespace, for MTU queries
	events    chan struct{} // closed when the event drainer stops
	closeOnce sync.Once
	closeErr  error
	stats     linkCounters
	nl        *netlink.Handle // in the device's namespace, for Close
	rules     []*netlink.Rule // policy rules of TUNConfig.RouteTable
	routes    []*netlink.Route
}

var _ Device = (*TUN)(nil)

// CreateTUN creates and configures a TUN interface in the network namespace
// of the calling thread (lock the OS thread when switching namespaces), and
// brings it up.
func CreateTUN(cfg TUNConfig) (*TUN, error) {
	if cfg.Name == "" {
		cfg.Name = "lisp%d"
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultTUNMTU
	}
	if cfg.MTU < 68 || cfg.MTU > 65535 {
		return nil, fmt.Errorf("%w: TUN MTU %d", ErrInvalidConfig, cfg.MTU)
	}
	for _, p := range append(append([]netip.Prefix(nil), cfg.Addrs...), cfg.Routes...) {
		if !p.IsValid() {
			return nil, fmt.Errorf("%w: invalid prefix %v", ErrInvalidConfig, p)
		}
	}
	switch {
	case cfg.RouteTable < 0 || int64(cfg.RouteTable) > math.MaxUint32:
		return nil, fmt.Errorf("%w: route table %d", ErrInvalidConfig, cfg.RouteTable)
	case cfg.RouteTable >= unix.RT_TABLE_COMPAT && cfg.RouteTable <= unix.RT_TABLE_LOCAL:
		return nil, fmt.Errorf("%w: route table %d is reserved", ErrInvalidConfig, cfg.RouteTable)
	case cfg.RouteTable != 0 && cfg.FwMark == 0:
		return nil, fmt.Errorf("%w: route table %d without a fwmark", ErrInvalidConfig, cfg.RouteTable)
	}
	// A netlink socket opened now stays in this namespace, so Close can
	// remove the rules and routes from any thread.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("dataplane: netlink: %w", err)
	}
	dev, err := tun.CreateTUN(cfg.Name, cfg.MTU)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("dataplane: create TUN %q: %w", cfg.Name, err)
	}
	t := &TUN{dev: dev, ctl: -1, events: make(chan struct{}), nl: h}
	go t.routineEvents()
	name, err := dev.Name()
	if err == nil {
		// A socket opened now lives in the device's namespace, so MTU
		// works from any thread (wireguard-go's opens one per call in
		// the caller's namespace).
		t.ctl, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.ctl, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		}
		if err != nil {
			t.ctl = -1
			err = fmt.Errorf("dataplane: TUN control socket: %w", err)
		}
	}
	if err == nil {
		t.name = name
		err = t.configureLink(name, cfg)
	}
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	return t, nil
}

// routineEvents drains the device's event channel (wireguard-go's status
// listeners block when nobody reads it) until Close closes it.
func (t *TUN) routineEvents() {
	defer close(t.events)
	for range t.dev.Events() {
	}
}

// prefixNet converts a prefix to the *net.IPNet netlink wants, keeping the
// address (not masked) for interface addresses.
func prefixNet(p netip.Prefix) *net.IPNet {
	a := p.Addr().Unmap()
	bits := 32
	if a.Is6() {
		bits = 128
	}
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

// configureLink assigns addresses and routes and sets the link up; with a
// route table it adds the policy rules. What it adds is recorded for Close.
func (t *TUN) configureLink(name string, cfg TUNConfig) error {
	h := t.nl
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("dataplane: TUN %s: %w", name, err)
	}
	for _, p := range cfg.Addrs {
		a := &netlink.Addr{IPNet: prefixNet(p)}
		if p.Addr().Is6() && !p.Addr().Is4In6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, a); err != nil {
			return fmt.Errorf("dataplane: TUN %s: add address %v: %w", name, p, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("dataplane: TUN %s: set up: %w", name, err)
	}
	families := map[int]bool{}
	for _, p := range cfg.Routes {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixNet(p.Masked()), Scope: netlink.SCOPE_LINK, Table: cfg.RouteTable}
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("dataplane: TUN %s: add route %v: %w", name, p, err)
		}
		t.routes = append(t.routes, r)
		if p.Addr().Unmap().Is4() {
			families[netlink.FAMILY_V4] = true
		} else {
			families[netlink.FAMILY_V6] = true
		}
	}
	if cfg.RouteTable == 0 {
		return nil
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		if !families[fam] {
			continue
		}
		r := netlink.NewRule()
		r.Family = fam
		r.Priority = RulePriority
		r.Table = cfg.RouteTable
		r.Mark = cfg.FwMark
		r.Invert = true
		if err := h.RuleAdd(r); err != nil {
			return fmt.Errorf("dataplane: TUN %s: add rule \"not fwmark %#x lookup %d\": %w", name, cfg.FwMark, cfg.RouteTable, err)
		}
		t.rules = append(t.rules, r)
	}
	return nil
}

// removeRouting deletes the policy rules and routes configureLink added.
// Routes already gone (the kernel removes them with the interface) are not
// an error.
func (t *TUN) removeRouting() error {
	var errs []error
	for _, r := range t.rules {
		if err := t.nl.RuleDel(r); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("dataplane: TUN %s: delete rule: %w", t.name, err))
		}
	}
	for _, r := range t.routes {
		if err := t.nl.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("dataplane: TUN %s: delete route %v: %w", t.name, r.Dst, err))
		}
	}
	t.rules, t.routes = nil, nil
	return errors.Join(errs...)
}

// Read implements Device. When the kernel hands over a segmentation
// super-packet with more segments than bufs, the segments that fit are
// returned and the rest is lost (and counted), as wireguard-go does.
func (t *TUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := t.dev.Read(bufs, sizes, offset)
	if errors.Is(err, tun.ErrTooManySegments) {
		t.stats.rxDropped.Add(1)
		err = nil
	}
	if n < 0 {
		n = 0
	}
	for i := range n {
		t.stats.rxBytes.Add(uint64(sizes[i]))
	}
	t.stats.rxPackets.Add(uint64(n))
	if err != nil {
		if errors.Is(err, os.ErrClosed) {
			return n, ErrClosed
		}
		return n, fmt.Errorf("dataplane: TUN %s read: %w", t.name, err)
	}
	return n, nil
}

// Write implements Device. offset must be at least OutOffset (the offload
// header goes in front of each packet). The buffers' lengths may be changed
// (coalescing appends to the first packet of a flow). On error it reports 0
// packets written.
func (t *TUN) Write(bufs [][]byte, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	var bytes uint64
	for _, b := range bufs {
		bytes += uint64(len(b) - offset)
	}
	if _, err := t.dev.Write(bufs, offset); err != nil {
		t.stats.txDropped.Add(uint64(len(bufs)))
		if errors.Is(err, os.ErrClosed) {
			return 0, ErrClosed
		}
		return 0, fmt.Errorf("dataplane: TUN %s write: %w", t.name, err)
	}
	t.stats.txPackets.Add(uint64(len(bufs)))
	t.stats.txBytes.Add(bytes)
	return len(bufs), nil
}

// BatchSize implements Device.
func (t *TUN) BatchSize() int { return t.dev.BatchSize() }

// MTU implements Device: the interface's current MTU.
func (t *TUN) MTU() (int, error) {
	ifr, err := unix.NewIfreq(t.name)
	if err != nil {
		return 0, fmt.Errorf("dataplane: TUN %s MTU: %w", t.name, err)
	}
	if err := unix.IoctlIfreq(t.ctl, unix.SIOCGIFMTU, ifr); err != nil {
		return 0, fmt.Errorf("dataplane: TUN %s MTU: %w", t.name, err)
	}
	return int(ifr.Uint32()), nil
}

// Name implements Device.
func (t *TUN) Name() string { return t.name }

// Stats returns a snapshot of the device's counters.
func (t *TUN) Stats() LinkStats { return t.stats.snapshot() }

// Close implements Device: it removes the policy rules and routes it added,
// closes the interface (the kernel removes it) and waits for the helper goroutines to stop.
func (t *TUN) Close() error {
	t.closeOnce.Do(func() {
		rerr := t.removeRouting()
		t.nl.Close()
		t.closeErr = errors.Join(t.dev.Close(), rerr)
		<-t.events
		if t.ctl >= 0 {
			unix.Close(t.ctl)
		}
	})
	return t.closeErr
}
