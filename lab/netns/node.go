//go:build linux

package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nsID identifies a network namespace (the nsfs device and inode).
type nsID struct{ dev, ino uint64 }

// A Node is one named network namespace of a lab: a router or a host.
// Its methods are safe for concurrent use; they fail with ErrClosed after
// the lab is closed.
type Node struct {
	lab    *Lab
	name   string
	nsName string
	nsPath string

	// Set once by create, released by destroy (under the lab's write
	// lock, when no operation is using them).
	ns      vnetns.NsHandle
	id      nsID
	h       *netlink.Handle
	created bool // the namespace file is ours to remove
	mounted bool

	// mu guards the fields below.
	mu     sync.Mutex
	ifaces map[string]*Iface
	routes []routeRec
	ethSeq int
}

// routeRec is a route the lab added, with the interface it leaves by, so
// that it can be re-installed when that interface comes back up.
type routeRec struct {
	route  netlink.Route
	ifname string
}

// Name returns the node's short name.
func (n *Node) Name() string { return n.name }

// NsName returns the namespace's name, <labprefix>-<name>, as
// `ip netns list` shows it.
func (n *Node) NsName() string { return n.nsName }

// NsPath returns the namespace's file, /run/netns/<labprefix>-<name>.
func (n *Node) NsPath() string { return n.nsPath }

// Lab returns the lab that owns the node.
func (n *Node) Lab() *Lab { return n.lab }

// String returns the node's short name.
func (n *Node) String() string { return n.name }

// validNodeName reports whether s is 1-24 letters, digits, '-' or '_',
// starting with a letter or digit.
func validNodeName(s string) bool {
	if s == "" || len(s) > 24 {
		return false
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '-' && c != '_') {
			return false
		}
	}
	return true
}

// AddNode creates a node: a network namespace persisted as
// /run/netns/<labprefix>-<name> with loopback up, IPv4 and IPv6 forwarding
// off (see Node.EnableForwarding), IPv6 duplicate address detection off
// (addresses are usable at once) and IPv6 addresses kept when an
// interface goes down. Names are 1-24 letters, digits, '-' and '_'.
func (l *Lab) AddNode(name string) (*Node, error) {
	if !validNodeName(name) {
		return nil, invalidf("node name %q: want 1-24 letters, digits, '-' or '_'", name)
	}
	release, err := l.use()
	if err != nil {
		return nil, err
	}
	defer release()

	l.mu.Lock()
	if _, dup := l.nodes[name]; dup {
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: node %q", ErrExists, name)
	}
	l.nodes[name] = nil // reserved while it is created
	l.mu.Unlock()

	n := &Node{
		lab:    l,
		name:   name,
		nsName: l.prefix + "-" + name,
		ns:     vnetns.None(),
		ifaces: make(map[string]*Iface),
	}
	n.nsPath = filepath.Join(NetnsDir, n.nsName)
	err = n.create()
	if err == nil {
		err = n.init()
	}
	if err != nil {
		if derr := n.destroy(); derr != nil {
			// Keep it registered so that Close tries again.
			l.mu.Lock()
			l.nodes[name] = n
			l.order = append(l.order, n)
			l.mu.Unlock()
			return nil, errors.Join(err, derr)
		}
		l.mu.Lock()
		delete(l.nodes, name)
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Lock()
	l.nodes[name] = n
	l.order = append(l.order, n)
	l.mu.Unlock()
	l.log.Debug("node added", "node", name, "netns", n.nsPath)
	return n, nil
}

// netnsDirMu serializes the set-up of /run/netns's mount propagation
// between labs of one process.
var netnsDirMu sync.Mutex

// ensureNetnsDir creates /run/netns and makes it a shared mount point, as
// `ip netns add` does, so that a namespace unmounted here is unmounted in
// the mount namespaces of `ip netns exec` children too (and can be freed).
func ensureNetnsDir() error {
	netnsDirMu.Lock()
	defer netnsDirMu.Unlock()
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	made := false
	for {
		err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) || made {
			return fmt.Errorf("netns: making %s a shared mount: %w", NetnsDir, err)
		}
		if err := unix.Mount(NetnsDir, NetnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("netns: bind-mounting %s: %w", NetnsDir, err)
		}
		made = true
	}
}

// create makes the namespace and its file, opens it and a netlink handle.
func (n *Node) create() error {
	if err := ensureNetnsDir(); err != nil {
		return err
	}
	f, err := os.OpenFile(n.nsPath, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: namespace %s", ErrExists, n.nsPath)
		}
		return fmt.Errorf("netns: %w", err)
	}
	f.Close()
	n.created = true
	var cookie uint64
	err = inThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("netns: unshare: %w", err)
		}
		var err error
		if cookie, err = netnsCookie(); err != nil {
			return err
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, n.nsPath, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("netns: bind-mounting namespace on %s: %w", n.nsPath, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	n.mounted = true
	n.ns, err = vnetns.GetFromPath(n.nsPath)
	if err != nil {
		return fmt.Errorf("netns: opening %s: %w", n.nsPath, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(n.ns), &st); err != nil {
		return fmt.Errorf("netns: %s: %w", n.nsPath, err)
	}
	n.id = nsID{dev: st.Dev, ino: st.Ino}
	// Recorded before anything runs in it: a crashed run's namespace is
	// removed by CleanupStale only if its owner record proves it the
	// lab's.
	if err := n.lab.recordNamespace(recordedNS{name: n.nsName, id: n.id, cookie: cookie}); err != nil {
		return err
	}
	n.h, err = netlink.NewHandleAt(n.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netns: netlink handle in %s: %w", n.nsName, err)
	}
	return nil
}

// init brings loopback up and sets the node's default sysctls.
func (n *Node) init() error {
	lo, err := n.h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("netns: node %s: loopback: %w", n.name, err)
	}
	if err := n.h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("netns: node %s: loopback up: %w", n.name, err)
	}
	for _, kv := range [][2]string{
		{"net.ipv6.conf.all.keep_addr_on_down", "1"},
		{"net.ipv6.conf.default.keep_addr_on_down", "1"},
		{"net.ipv6.conf.all.accept_dad", "0"},
		{"net.ipv6.conf.default.accept_dad", "0"},
	} {
		if err := n.writeSysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// destroy releases the handle and file descriptor and deletes the
// namespace's file. The kernel frees the namespace (and whatever
// interfaces are left in it) when nothing else refers to it. It is
// idempotent.
func (n *Node) destroy() error {
	var errs []error
	if n.h != nil {
		n.h.Close()
		n.h = nil
	}
	if n.ns.IsOpen() {
		n.ns.Close()
		n.ns = vnetns.None()
	}
	if n.mounted {
		if err := unix.Unmount(n.nsPath, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("netns: unmounting %s: %w", n.nsPath, err))
		} else {
			n.mounted = false
		}
	}
	if n.created && !n.mounted {
		if err := os.Remove(n.nsPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("netns: %w", err))
		} else {
			n.created = false
		}
	}
	return errors.Join(errs...)
}

// handle runs fn with the node's netlink handle under the lab's read lock.
func (n *Node) handle(fn func(h *netlink.Handle) error) error {
	release, err := n.lab.use()
	if err != nil {
		return err
	}
	defer release()
	return fn(n.h)
}

// enter runs fn on a locked thread inside the node's namespace. The
// caller holds the lab's read lock.
func (n *Node) enter(fn func() error) error {
	return inThread(func() error {
		if err := vnetns.Set(n.ns); err != nil {
			return fmt.Errorf("netns: entering %s: %w", n.nsName, err)
		}
		return fn()
	})
}

// Do runs fn on a locked OS thread inside the node's network namespace,
// then moves the thread back (or discards it if that fails). Sockets, TUN
// devices and netlink handles that fn creates stay in the node's namespace
// after Do returns. Goroutines that fn starts do not run in the namespace.
// Do returns fn's error; a panic in fn is re-raised in the caller.
func (n *Node) Do(fn func() error) error {
	return inThread(func() error {
		release, err := n.lab.use()
		if err != nil {
			return err
		}
		err = vnetns.Set(n.ns)
		release()
		if err != nil {
			return fmt.Errorf("netns: entering %s: %w", n.nsName, err)
		}
		return fn()
	})
}

// sysctlPath turns a net.* sysctl key ("net.ipv4.ip_forward" or
// "net/ipv4/ip_forward"; use the slash form for interface names with dots)
// into its /proc/sys path. Other keys are refused: they are not per
// namespace, and writing them would change the host.
func sysctlPath(key string) (string, error) {
	k := key
	if !strings.Contains(k, "/") {
		k = strings.ReplaceAll(k, ".", "/")
	}
	parts := strings.Split(k, "/")
	if len(parts) < 2 || parts[0] != "net" {
		return "", invalidf("sysctl %q: only net.* keys are per namespace", key)
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, " \t\n\x00") {
			return "", invalidf("sysctl %q: malformed key", key)
		}
	}
	return "/proc/sys/" + k, nil
}

// SetSysctl writes a net.* sysctl inside the node's namespace, e.g.
// SetSysctl("net.ipv4.conf.all.rp_filter", "0"). Keys outside net.* are
// refused (they would change the host).
func (n *Node) SetSysctl(key, value string) error {
	if strings.ContainsAny(value, "\n\x00") {
		return invalidf("sysctl %s: value %q", key, value)
	}
	release, err := n.lab.use()
	if err != nil {
		return err
	}
	defer release()
	return n.writeSysctl(key, value)
}

// writeSysctl is SetSysctl under the lab's read lock.
func (n *Node) writeSysctl(key, value string) error {
	path, err := sysctlPath(key)
	if err != nil {
		return err
	}
	return n.enter(func() error {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("netns: node %s: sysctl %s: %w", n.name, key, err)
		}
		_, werr := f.WriteString(value)
		cerr := f.Close()
		if err := errors.Join(werr, cerr); err != nil {
			return fmt.Errorf("netns: node %s: sysctl %s=%s: %w", n.name, key, value, err)
		}
		return nil
	})
}

// Sysctl reads a net.* sysctl inside the node's namespace.
func (n *Node) Sysctl(key string) (string, error) {
	path, err := sysctlPath(key)
	if err != nil {
		return "", err
	}
	release, err := n.lab.use()
	if err != nil {
		return "", err
	}
	defer release()
	var out string
	err = n.enter(func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("netns: node %s: sysctl %s: %w", n.name, key, err)
		}
		out = strings.TrimSpace(string(b))
		return nil
	})
	return out, err
}

// EnableForwarding sets IPv4 forwarding (net.ipv4.ip_forward) and IPv6
// forwarding (net.ipv6.conf.all.forwarding) to the given values.
func (n *Node) EnableForwarding(ipv4, ipv6 bool) error {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	if err := n.SetSysctl("net.ipv4.ip_forward", b(ipv4)); err != nil {
		return err
	}
	return n.SetSysctl("net.ipv6.conf.all.forwarding", b(ipv6))
}

// Interfaces returns the interfaces the lab created in the node (veth
// ends and bridges), sorted by name.
func (n *Node) Interfaces() []*Iface {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Iface, 0, len(n.ifaces))
	for _, i := range n.ifaces {
		out = append(out, i)
	}
	sortIfaces(out)
	return out
}

// Iface returns the lab-created interface of the node with the given
// name, or nil.
func (n *Node) Iface(name string) *Iface {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ifaces[name]
}

// parseAddr parses an address or a prefix ("10.0.0.1" or "10.0.0.1/24")
// and returns the address.
func parseAddr(s string) (netip.Addr, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Addr{}, invalidf("address %q: %v", s, err)
		}
		return p.Addr(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, invalidf("address %q: %v", s, err)
	}
	return a.WithZone(""), nil
}

// HasAddr reports whether any interface of the node has the address
// (given as "10.0.0.1" or "10.0.0.1/24"; the prefix length is ignored).
func (n *Node) HasAddr(addr string) (bool, error) {
	a, err := parseAddr(addr)
	if err != nil {
		return false, err
	}
	found := false
	err = n.handle(func(h *netlink.Handle) error {
		fam := netlink.FAMILY_V4
		if a.Is6() && !a.Is4In6() {
			fam = netlink.FAMILY_V6
		}
		addrs, err := h.AddrList(nil, fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return fmt.Errorf("netns: node %s: listing addresses: %w", n.name, err)
		}
		for _, x := range addrs {
			if y, ok := netip.AddrFromSlice(x.IP); ok && y.Unmap() == a.Unmap() {
				found = true
			}
		}
		return nil
	})
	return found, err
}

// parseRoute turns AddRoute's dst and via into a netlink route.
// dst is "default", a prefix or an address (a host route); via is a
// gateway address (link-local with a zone: "fe80::1%eth0") or the name of
// an interface of the node (a directly connected route).
func (n *Node) parseRoute(h *netlink.Handle, dst, via string) (netlink.Route, error) {
	var r netlink.Route
	var gw netip.Addr
	viaIsAddr := false
	if a, err := netip.ParseAddr(via); err == nil {
		gw, viaIsAddr = a, true
	} else if !validIfName(via) {
		return r, invalidf("route via %q: neither an address nor an interface name", via)
	}
	var p netip.Prefix
	switch {
	case dst == "default":
		if !viaIsAddr {
			return r, invalidf("default route via interface %q: give 0.0.0.0/0 or ::/0 to choose the family", via)
		}
		if gw.Is4() {
			p = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		} else {
			p = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
	case strings.Contains(dst, "/"):
		q, err := netip.ParsePrefix(dst)
		if err != nil {
			return r, invalidf("route destination %q: %v", dst, err)
		}
		p = q.Masked()
	default:
		a, err := netip.ParseAddr(dst)
		if err != nil {
			return r, invalidf("route destination %q: %v", dst, err)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if viaIsAddr && gw.Is4() != p.Addr().Is4() {
		return r, invalidf("route %s via %s: address families differ", dst, via)
	}
	r.Dst = &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	r.Family = netlink.FAMILY_V4
	if p.Addr().Is6() {
		r.Family = netlink.FAMILY_V6
	}
	ifname := via
	if viaIsAddr {
		r.Gw = gw.WithZone("").AsSlice()
		ifname = gw.Zone()
	}
	if ifname != "" {
		link, err := h.LinkByName(ifname)
		if err != nil {
			return r, fmt.Errorf("%w: node %s: interface %q: %v", ErrNotFound, n.name, ifname, err)
		}
		r.LinkIndex = link.Attrs().Index
		if !viaIsAddr {
			r.Scope = netlink.SCOPE_LINK
		}
	}
	return r, nil
}

// AddRoute adds a route to the node's main table. dst is "default", a
// prefix ("10.2.0.0/16") or an address (a host route); via is a gateway
// address ("10.0.0.2", or "fe80::1%eth0" for a link-local gateway) or the
// name of one of the node's interfaces (a directly connected route). The
// lab re-installs the route when the interface it leaves by is brought
// back up with Iface.SetUp.
func (n *Node) AddRoute(dst, via string) error {
	return n.handle(func(h *netlink.Handle) error {
		r, err := n.parseRoute(h, dst, via)
		if err != nil {
			return err
		}
		if err := h.RouteAdd(&r); err != nil {
			return fmt.Errorf("netns: node %s: route %s via %s: %w", n.name, dst, via, err)
		}
		ifname := ""
		idx := r.LinkIndex
		if idx == 0 && r.Gw != nil {
			if got, err := h.RouteGet(r.Gw); err == nil && len(got) > 0 {
				idx = got[0].LinkIndex
			}
		}
		if idx != 0 {
			if link, err := h.LinkByIndex(idx); err == nil {
				ifname = link.Attrs().Name
			}
		}
		n.mu.Lock()
		n.routes = append(n.routes, routeRec{route: r, ifname: ifname})
		n.mu.Unlock()
		return nil
	})
}

// AddDefaultRoute adds a default route via a gateway address; the family
// follows the gateway's.
func (n *Node) AddDefaultRoute(via string) error { return n.AddRoute("default", via) }

// DelRoute deletes a route added with AddRoute (same arguments).
func (n *Node) DelRoute(dst, via string) error {
	return n.handle(func(h *netlink.Handle) error {
		r, err := n.parseRoute(h, dst, via)
		if err != nil {
			return err
		}
		if err := h.RouteDel(&r); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("%w: node %s: route %s via %s", ErrNotFound, n.name, dst, via)
			}
			return fmt.Errorf("netns: node %s: deleting route %s via %s: %w", n.name, dst, via, err)
		}
		n.mu.Lock()
		kept := n.routes[:0]
		for _, rec := range n.routes {
			if !sameRoute(rec.route, r) {
				kept = append(kept, rec)
			}
		}
		n.routes = kept
		n.mu.Unlock()
		return nil
	})
}

// sameRoute compares the fields parseRoute sets.
func sameRoute(a, b netlink.Route) bool {
	return a.Dst.String() == b.Dst.String() && a.Gw.Equal(b.Gw) && a.LinkIndex == b.LinkIndex
}

// restoreRoutes re-installs the lab's routes that leave by ifname, once
// the interface is up again (the kernel removes them when it goes down).
// The caller holds the lab's read lock.
func (n *Node) restoreRoutes(h *netlink.Handle, ifname string) error {
	n.mu.Lock()
	var todo []netlink.Route
	for _, rec := range n.routes {
		if rec.ifname == ifname {
			todo = append(todo, rec.route)
		}
	}
	n.mu.Unlock()
	var errs []error
	for _, r := range todo {
		// The connected route the gateway needs appears with the
		// interface; allow the kernel a moment.
		deadline := time.Now().Add(2 * time.Second)
		for {
			err := h.RouteReplace(&r)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.ENETUNREACH) || time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("netns: node %s: restoring route %s: %w", n.name, r.Dst, err))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}

// deleteLink deletes an interface of the node if it still exists. It is
// called by Close (under the lab's write lock) and on failed creations.
func (n *Node) deleteLink(name string) error {
	if n.h == nil {
		return nil
	}
	link, err := n.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("netns: node %s: %s: %w", n.name, name, err)
	}
	if err := n.h.LinkDel(link); err != nil && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("netns: node %s: deleting %s: %w", n.name, name, err)
	}
	return nil
}
