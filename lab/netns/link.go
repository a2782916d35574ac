//go:build linux

package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// An Iface is a network interface the lab created in a node: one end of
// a veth pair, or a bridge.
type Iface struct {
	node   *Node
	name   string
	peer   *Iface
	bridge *Bridge // the bridge this port is enslaved to, if any
}

// Node returns the node the interface is in.
func (i *Iface) Node() *Node { return i.node }

// Name returns the interface's name inside its node.
func (i *Iface) Name() string { return i.name }

// Peer returns the other end of a veth pair, nil for a bridge.
func (i *Iface) Peer() *Iface { return i.peer }

// Bridge returns the bridge this interface is a port of, or, for a
// bridge's own interface, the bridge; nil otherwise.
func (i *Iface) Bridge() *Bridge { return i.bridge }

// String returns "node/interface".
func (i *Iface) String() string { return i.node.name + "/" + i.name }

// LinkPair is a veth pair: A is the end in the first node (for
// Bridge.Attach: the attached node), B the end in the second (for Attach:
// the bridge port).
type LinkPair struct {
	// A is the end in the first node (the attached node for Attach).
	A *Iface
	// B is the end in the second node (the bridge port for Attach).
	B *Iface
}

// LinkConfig configures a veth pair made by Lab.LinkWith or
// Bridge.AttachWith.
type LinkConfig struct {
	// NameA and NameB name the two ends (at most 15 bytes, unique in their
	// node). Empty means eth0, eth1, ... in order of creation in the node
	// (for a bridge port: the bridge's name followed by p0, p1, ...).
	NameA, NameB string
	// AddrsA and AddrsB are the addresses with prefix length of each end
	// ("10.0.0.1/30", "2001:db8::1/64"); empty for none.
	AddrsA, AddrsB []string
	// MTU sets both ends' MTU; 0 keeps the kernel's default (1500).
	MTU int
}

// validIfName reports whether s is a valid Linux interface name: 1-15
// bytes, not "." or "..", without '/', ':' or white space.
func validIfName(s string) bool {
	if s == "" || len(s) > unix.IFNAMSIZ-1 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t\n\r\v\f\x00")
}

// sortIfaces sorts interfaces by name.
func sortIfaces(s []*Iface) {
	slices.SortFunc(s, func(a, b *Iface) int { return strings.Compare(a.name, b.name) })
}

// parsePrefixes parses interface addresses with prefix lengths.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, invalidf("interface address %q: %v (want address/length)", s, err)
		}
		if p.Addr().Zone() != "" {
			return nil, invalidf("interface address %q: zones are not allowed", s)
		}
		out = append(out, p)
	}
	return out, nil
}

// netlinkAddr turns a prefix into a netlink address, with duplicate
// address detection off for IPv6.
func netlinkAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// reserveName claims an interface name in the node: want if given, else
// the first free base<k>. The caller holds the lab's read lock.
func (n *Node) reserveName(want, base string, seq *int) (*Iface, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if want != "" {
		if !validIfName(want) {
			return nil, invalidf("interface name %q: want 1-15 bytes without '/', ':' or spaces", want)
		}
		if _, dup := n.ifaces[want]; dup || n.kernelHas(want) {
			return nil, fmt.Errorf("%w: node %s: interface %q", ErrExists, n.name, want)
		}
		i := &Iface{node: n, name: want}
		n.ifaces[want] = i
		return i, nil
	}
	for ; ; *seq++ {
		name := base + strconv.Itoa(*seq)
		if len(name) > unix.IFNAMSIZ-1 {
			return nil, invalidf("node %s: no interface name left for %q", n.name, base)
		}
		if _, dup := n.ifaces[name]; dup || n.kernelHas(name) {
			continue
		}
		*seq++
		i := &Iface{node: n, name: name}
		n.ifaces[name] = i
		return i, nil
	}
}

// kernelHas reports whether the node has an interface of that name that
// the lab did not create (made in Do, or by a process).
func (n *Node) kernelHas(name string) bool {
	_, err := n.h.LinkByName(name)
	return err == nil
}

// release forgets an interface name reserved by reserveName.
func (n *Node) release(i *Iface) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ifaces[i.name] == i {
		delete(n.ifaces, i.name)
	}
}

// Link connects two nodes with a veth pair, gives each end an address
// (with prefix length, IPv4 or IPv6; empty for none) and brings both up.
// The ends are named eth0, eth1, ... in each node.
func (l *Lab) Link(a, b *Node, addrA, addrB string) (*LinkPair, error) {
	cfg := LinkConfig{}
	if addrA != "" {
		cfg.AddrsA = []string{addrA}
	}
	if addrB != "" {
		cfg.AddrsB = []string{addrB}
	}
	return l.LinkWith(a, b, cfg)
}

// LinkWith connects two nodes (or a node to itself) with a veth pair as
// cfg says. Each end is created directly in its node's namespace. If
// configuring the pair fails, the pair is deleted again.
func (l *Lab) LinkWith(a, b *Node, cfg LinkConfig) (*LinkPair, error) {
	return l.link(a, b, cfg, nil)
}

// link makes a veth pair; with br set, B is enslaved to br (which lives
// in node b).
func (l *Lab) link(a, b *Node, cfg LinkConfig, br *Bridge) (*LinkPair, error) {
	if a == nil || b == nil || a.lab != l || b.lab != l {
		return nil, invalidf("link: nodes must belong to lab %s", l.prefix)
	}
	if cfg.MTU < 0 || cfg.MTU > 65535 {
		return nil, invalidf("link %s-%s: MTU %d", a.name, b.name, cfg.MTU)
	}
	addrsA, err := parsePrefixes(cfg.AddrsA)
	if err != nil {
		return nil, err
	}
	addrsB, err := parsePrefixes(cfg.AddrsB)
	if err != nil {
		return nil, err
	}
	release, err := l.use()
	if err != nil {
		return nil, err
	}
	defer release()

	ia, err := a.reserveName(cfg.NameA, "eth", &a.ethSeq)
	if err != nil {
		return nil, err
	}
	var ib *Iface
	if br != nil && cfg.NameB == "" {
		ib, err = b.reserveName("", br.portBase(), &br.portSeq)
	} else {
		ib, err = b.reserveName(cfg.NameB, "eth", &b.ethSeq)
	}
	if err != nil {
		a.release(ia)
		return nil, err
	}
	ia.peer, ib.peer = ib, ia

	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: ia.name, MTU: cfg.MTU},
		PeerName:  ib.name,
	}
	if b != a {
		veth.PeerNamespace = netlink.NsFd(int(b.ns))
	}
	if err := a.h.LinkAdd(veth); err != nil {
		a.release(ia)
		b.release(ib)
		return nil, fmt.Errorf("netns: link %s-%s: creating veth: %w", ia, ib, err)
	}
	pair := &LinkPair{A: ia, B: ib}
	l.mu.Lock()
	l.pairs = append(l.pairs, pair)
	l.mu.Unlock()

	if err := configurePair(pair, addrsA, addrsB, br); err != nil {
		if derr := a.deleteLink(ia.name); derr != nil {
			// Leave it registered: Close deletes it.
			return nil, errors.Join(err, derr)
		}
		l.mu.Lock()
		if k := slices.Index(l.pairs, pair); k >= 0 {
			l.pairs = slices.Delete(l.pairs, k, k+1)
		}
		l.mu.Unlock()
		a.release(ia)
		b.release(ib)
		return nil, err
	}
	l.log.Debug("link added", "a", ia.String(), "b", ib.String())
	return pair, nil
}

// configurePair sets the addresses, enslaves B to br if given, and
// brings both ends up. The caller holds the lab's read lock.
func configurePair(p *LinkPair, addrsA, addrsB []netip.Prefix, br *Bridge) error {
	ends := []struct {
		i     *Iface
		addrs []netip.Prefix
	}{{p.A, addrsA}, {p.B, addrsB}}
	for _, e := range ends {
		h := e.i.node.h
		link, err := h.LinkByName(e.i.name)
		if err != nil {
			return fmt.Errorf("netns: %s: %w", e.i, err)
		}
		for _, a := range e.addrs {
			if err := h.AddrAdd(link, netlinkAddr(a)); err != nil {
				return fmt.Errorf("netns: %s: address %s: %w", e.i, a, err)
			}
		}
		if br != nil && e.i == p.B {
			brl, err := h.LinkByName(br.iface.name)
			if err != nil {
				return fmt.Errorf("netns: %s: bridge %s: %w", e.i, br.iface.name, err)
			}
			if err := h.LinkSetMaster(link, brl); err != nil {
				return fmt.Errorf("netns: %s: enslaving to %s: %w", e.i, br.iface.name, err)
			}
			e.i.bridge = br
		}
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("netns: %s: up: %w", e.i, err)
		}
	}
	return nil
}

// link looks the interface up in its node. The caller holds the lab's
// read lock.
func (i *Iface) link(h *netlink.Handle) (netlink.Link, error) {
	l, err := h.LinkByName(i.name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("%w: interface %s", ErrNotFound, i)
		}
		return nil, fmt.Errorf("netns: %s: %w", i, err)
	}
	return l, nil
}

// SetDown sets the interface administratively down, like
// `ip link set dev X down`: a veth's peer loses carrier, the kernel
// withdraws routes through it. This is the lab's interface-shutdown
// failure.
func (i *Iface) SetDown() error {
	return i.node.handle(func(h *netlink.Handle) error {
		l, err := i.link(h)
		if err != nil {
			return err
		}
		if err := h.LinkSetDown(l); err != nil {
			return fmt.Errorf("netns: %s: down: %w", i, err)
		}
		return nil
	})
}

// SetUp sets the interface up again and re-installs the routes the lab
// added through it (the kernel deleted them when it went down).
func (i *Iface) SetUp() error {
	return i.node.handle(func(h *netlink.Handle) error {
		l, err := i.link(h)
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("netns: %s: up: %w", i, err)
		}
		return i.node.restoreRoutes(h, i.name)
	})
}

// IsUp reports whether the interface is administratively up and, for a
// veth, has carrier (its peer is up too).
func (i *Iface) IsUp() (bool, error) {
	up := false
	err := i.node.handle(func(h *netlink.Handle) error {
		l, err := i.link(h)
		if err != nil {
			return err
		}
		a := l.Attrs()
		up = a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_RUNNING != 0
		return nil
	})
	return up, err
}

// SetMTU sets the interface's MTU. For a veth, set both ends.
func (i *Iface) SetMTU(mtu int) error {
	if mtu <= 0 || mtu > 65535 {
		return invalidf("%s: MTU %d", i, mtu)
	}
	return i.node.handle(func(h *netlink.Handle) error {
		l, err := i.link(h)
		if err != nil {
			return err
		}
		if err := h.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("netns: %s: MTU %d: %w", i, mtu, err)
		}
		return nil
	})
}

// MTU returns the interface's MTU.
func (i *Iface) MTU() (int, error) {
	mtu := 0
	err := i.node.handle(func(h *netlink.Handle) error {
		l, err := i.link(h)
		if err != nil {
			return err
		}
		mtu = l.Attrs().MTU
		return nil
	})
	return mtu, err
}

// AddAddr adds an address with prefix length ("10.0.0.1/24",
// "2001:db8::1/64") to the interface.
func (i *Iface) AddAddr(prefix string) error {
	ps, err := parsePrefixes([]string{prefix})
	if err != nil {
		return err
	}
	return i.node.handle(func(h *netlink.Handle) error {
		l, err := i.link(h)
		if err != nil {
			return err
		}
		if err := h.AddrAdd(l, netlinkAddr(ps[0])); err != nil {
			if errors.Is(err, syscall.EEXIST) {
				return fmt.Errorf("%w: %s: address %s", ErrExists, i, prefix)
			}
			return fmt.Errorf("netns: %s: address %s: %w", i, prefix, err)
		}
		return nil
	})
}

// DelAddr removes an address (with its prefix length) from the interface.
func (i *Iface) DelAddr(prefix string) error {
	ps, err := parsePrefixes([]string{prefix})
	if err != nil {
		return err
	}
	return i.node.handle(func(h *netlink.Handle) error {
		l, err := i.link(h)
		if err != nil {
			return err
		}
		if err := h.AddrDel(l, netlinkAddr(ps[0])); err != nil {
			if errors.Is(err, syscall.EADDRNOTAVAIL) {
				return fmt.Errorf("%w: %s: address %s", ErrNotFound, i, prefix)
			}
			return fmt.Errorf("netns: %s: deleting address %s: %w", i, prefix, err)
		}
		return nil
	})
}

// Addrs returns the interface's global-scope addresses (IPv4 and IPv6,
// not link-local) with their prefix lengths.
func (i *Iface) Addrs() ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := i.node.handle(func(h *netlink.Handle) error {
		l, err := i.link(h)
		if err != nil {
			return err
		}
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return fmt.Errorf("netns: %s: addresses: %w", i, err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || ip.Unmap().IsLinkLocalUnicast() {
				continue
			}
			ones, _ := a.Mask.Size()
			out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
		}
		return nil
	})
	return out, err
}

// A Bridge is a Linux bridge inside a node: a LAN segment. Attach veth
// pairs to it with Attach; give the bridge itself an address with
// Iface().AddAddr when its node is a router on the segment.
type Bridge struct {
	iface   *Iface
	portSeq int // guarded by iface.node.mu (through reserveName)
}

// Node returns the node the bridge is in.
func (b *Bridge) Node() *Node { return b.iface.node }

// Name returns the bridge's interface name.
func (b *Bridge) Name() string { return b.iface.name }

// Iface returns the bridge's own interface.
func (b *Bridge) Iface() *Iface { return b.iface }

// portBase is the prefix of the bridge's automatic port names.
func (b *Bridge) portBase() string {
	base := b.iface.name + "p"
	if len(base) > unix.IFNAMSIZ-3 {
		base = "p"
	}
	return base
}

// AddBridge creates a bridge (spanning tree and multicast snooping off,
// so ports forward at once and VRRP and neighbour discovery reach every
// port) in the node and brings it up.
func (l *Lab) AddBridge(n *Node, name string) (*Bridge, error) {
	if n == nil || n.lab != l {
		return nil, invalidf("bridge: node must belong to lab %s", l.prefix)
	}
	if name == "" {
		return nil, invalidf("bridge: empty name")
	}
	release, err := l.use()
	if err != nil {
		return nil, err
	}
	defer release()
	i, err := n.reserveName(name, "", nil)
	if err != nil {
		return nil, err
	}
	b := &Bridge{iface: i}
	i.bridge = b
	off := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, MulticastSnooping: &off}
	if err := n.h.LinkAdd(br); err != nil {
		n.release(i)
		return nil, fmt.Errorf("netns: %s: creating bridge: %w", i, err)
	}
	pair := &LinkPair{A: i}
	l.mu.Lock()
	l.pairs = append(l.pairs, pair) // so that Close deletes it
	l.mu.Unlock()
	if err := n.h.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("netns: %s: up: %w", i, err)
	}
	return b, nil
}

// AddSwitch creates a node named name holding one bridge, "br0": a LAN
// segment to attach routers and hosts to.
func (l *Lab) AddSwitch(name string) (*Bridge, error) {
	n, err := l.AddNode(name)
	if err != nil {
		return nil, err
	}
	return l.AddBridge(n, "br0")
}

// Attach connects a node to the bridge with a veth pair: the node's end
// (A, named eth<k>) gets the address (with prefix length; empty for none),
// the other end (B) becomes a port of the bridge. The node may be the
// bridge's own node.
func (b *Bridge) Attach(n *Node, addr string) (*LinkPair, error) {
	cfg := LinkConfig{}
	if addr != "" {
		cfg.AddrsA = []string{addr}
	}
	return b.AttachWith(n, cfg)
}

// AttachWith is Attach with names, several addresses or an MTU;
// cfg.AddrsB must be empty (a bridge port has no address).
func (b *Bridge) AttachWith(n *Node, cfg LinkConfig) (*LinkPair, error) {
	if len(cfg.AddrsB) != 0 {
		return nil, invalidf("bridge %s: a port has no address", b.iface)
	}
	bn := b.iface.node
	return bn.lab.link(n, bn, cfg, b)
}
