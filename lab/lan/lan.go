// Package lan models, for the embedded lab, the Ethernet segments that the
// netns lab builds from bridges: the site's LAN, where hosts reach their
// gateway's virtual address through whichever router last claimed it with
// a gratuitous ARP, and the remote destinations, which answer pings.
//
// Routers attach by the LAN side of their EID Device (an in-memory
// dataplane device pair: the router's xTR holds one end, the LAN the
// other). A host's packet goes to the router its gateway address resolves
// to, exactly as a switch forwards a frame to the MAC address in the host's
// ARP cache: if that router's interface is down (it failed and no backup
// has claimed the address yet), the frame is lost. Packets a router puts on
// the LAN are delivered to the host they are addressed to, unless the
// router's own interface is down.
//
// Every echo request and reply that crosses the LAN is recorded in the
// lab's traffic.Ledger (handed to a gateway, dropped at a dead link, reply
// delivered or dropped), which is how lost packets are attributed.
package lan

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/lab/traffic"
)

// Errors returned by this package.
var (
	// ErrUnknown is returned for a host or router not attached.
	ErrUnknown = errors.New("lan: unknown node")
	// ErrInvalid is wrapped by every argument error.
	ErrInvalid = errors.New("lan: invalid argument")
	// ErrDropped is returned by Send when the LAN dropped the packet.
	ErrDropped = errors.New("lan: packet dropped")
)

// bufSize is the size of the buffers packets are read into: headroom plus
// an Ethernet MTU with room to spare.
const bufSize = dataplane.OutOffset + 2048

// RouterStats are the LAN's counters of one router's port.
type RouterStats struct {
	// Handed counts host packets delivered to the router.
	Handed uint64 `json:"handed"`
	// DeadLink counts host packets sent to the router while its
	// interface was down (lost in the switchover gap).
	DeadLink uint64 `json:"dead_link"`
	// Delivered counts packets from the router delivered to hosts.
	Delivered uint64 `json:"delivered"`
	// Dropped counts packets the router put on the LAN while its
	// interface was down, or to no attached host.
	Dropped uint64 `json:"dropped"`
	// Foreign counts packets from the router that were not the lab's
	// echo packets (such as ICMP errors); they are delivered if they can
	// be.
	Foreign uint64 `json:"foreign"`
}

type routerPort struct {
	name string
	dev  dataplane.Device
	up   atomic.Bool
	wmu  sync.Mutex // serializes writes to dev

	handed, deadLink, delivered, dropped, foreign atomic.Uint64
}

type hostPort struct {
	name          string
	addr, gateway netip.Addr
}

// ARPMove is a gratuitous ARP seen on the LAN: from At on, VIP resolves to
// Router.
type ARPMove struct {
	VIP    netip.Addr `json:"vip"`
	Router string     `json:"router"`
	At     time.Time  `json:"at"`
}

// LAN is the site's Ethernet segment. Attach routers and hosts before Run;
// Send, GARP and SetLinkUp may be called at any time, concurrently.
type LAN struct {
	ledger *traffic.Ledger
	clock  func() time.Time

	routers map[string]*routerPort
	hosts   map[string]*hostPort
	byAddr  map[netip.Addr]*hostPort

	mu    sync.Mutex // guards arp and moves
	arp   map[netip.Addr]string
	moves []ARPMove
}

// New returns an empty LAN that records into ledger. clock nil means
// time.Now.
func New(ledger *traffic.Ledger, clock func() time.Time) *LAN {
	if clock == nil {
		clock = time.Now
	}
	return &LAN{
		ledger:  ledger,
		clock:   clock,
		routers: map[string]*routerPort{},
		hosts:   map[string]*hostPort{},
		byAddr:  map[netip.Addr]*hostPort{},
		arp:     map[netip.Addr]string{},
	}
}

// AddRouter attaches a router by the LAN end of its EID device, with its
// interface up. The LAN owns dev from now on and closes it when Run ends.
func (l *LAN) AddRouter(name string, dev dataplane.Device) error {
	if name == "" || dev == nil {
		return fmt.Errorf("%w: router needs a name and a device", ErrInvalid)
	}
	if _, ok := l.routers[name]; ok {
		return fmt.Errorf("%w: router %q attached twice", ErrInvalid, name)
	}
	p := &routerPort{name: name, dev: dev}
	p.up.Store(true)
	l.routers[name] = p
	return nil
}

// AddHost attaches a host with its address and default gateway.
func (l *LAN) AddHost(name string, addr, gateway netip.Addr) error {
	if name == "" || !addr.IsValid() || !gateway.IsValid() {
		return fmt.Errorf("%w: host needs a name, an address and a gateway", ErrInvalid)
	}
	if _, ok := l.hosts[name]; ok {
		return fmt.Errorf("%w: host %q attached twice", ErrInvalid, name)
	}
	if _, ok := l.byAddr[addr]; ok {
		return fmt.Errorf("%w: address %v attached twice", ErrInvalid, addr)
	}
	h := &hostPort{name: name, addr: addr, gateway: gateway}
	l.hosts[name] = h
	l.byAddr[addr] = h
	return nil
}

// GARP records a gratuitous ARP: from now on vip resolves to router.
func (l *LAN) GARP(vip netip.Addr, router string) error {
	if _, ok := l.routers[router]; !ok {
		return fmt.Errorf("%w: router %q", ErrUnknown, router)
	}
	now := l.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.arp[vip] = router
	l.moves = append(l.moves, ARPMove{VIP: vip, Router: router, At: now})
	return nil
}

// ARPMoves returns the gratuitous ARPs seen so far, in order.
func (l *LAN) ARPMoves() []ARPMove {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ARPMove(nil), l.moves...)
}

// Resolve returns the router vip resolves to now ("" for none).
func (l *LAN) Resolve(vip netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.arp[vip]
}

// SetLinkUp brings router's interface up or down.
func (l *LAN) SetLinkUp(router string, up bool) error {
	p, ok := l.routers[router]
	if !ok {
		return fmt.Errorf("%w: router %q", ErrUnknown, router)
	}
	p.up.Store(up)
	return nil
}

// Send puts host's packet on the LAN towards its gateway. It returns
// ErrDropped (wrapped) when the gateway address resolves to no router or to
// one whose interface is down.
func (l *LAN) Send(host string, pkt []byte) error {
	h, ok := l.hosts[host]
	if !ok {
		return fmt.Errorf("%w: host %q", ErrUnknown, host)
	}
	router := l.Resolve(h.gateway)
	p := l.routers[router]
	now := l.clock()
	if p == nil || !p.up.Load() {
		if p != nil {
			p.deadLink.Add(1)
		}
		_ = l.ledger.LANDropped(pkt, router, now) // non-echo packets are only counted
		return fmt.Errorf("%w: %s's gateway %v resolves to %q, which is down", ErrDropped, host, h.gateway, router)
	}
	_ = l.ledger.Handed(pkt, router, now)
	p.handed.Add(1)
	buf := make([]byte, dataplane.OutOffset+len(pkt))
	copy(buf[dataplane.OutOffset:], pkt)
	p.wmu.Lock()
	n, err := p.dev.Write([][]byte{buf}, dataplane.OutOffset)
	p.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("lan: to %s: %w", router, err)
	}
	if n != 1 {
		return fmt.Errorf("%w: %s's device queue is full", ErrDropped, router)
	}
	return nil
}

// Run reads what the routers put on the LAN and delivers it until ctx is
// done; then it closes the routers' LAN-side devices and returns nil.
func (l *LAN) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range l.routers {
		wg.Add(1)
		go func() { // RoutineLANFromRouter
			defer wg.Done()
			l.fromRouter(p)
		}()
	}
	<-ctx.Done()
	for _, p := range l.routers {
		_ = p.dev.Close()
	}
	wg.Wait()
	return nil
}

// fromRouter delivers the packets router p writes until its device closes.
func (l *LAN) fromRouter(p *routerPort) {
	n := p.dev.BatchSize()
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, bufSize)
	}
	sizes := make([]int, n)
	for {
		k, err := p.dev.Read(bufs, sizes, dataplane.OutOffset)
		if err != nil {
			return
		}
		for i := range k {
			l.deliver(p, bufs[i][dataplane.OutOffset:dataplane.OutOffset+sizes[i]])
		}
	}
}

func (l *LAN) deliver(p *routerPort, pkt []byte) {
	now := l.clock()
	e, err := traffic.ParseEcho(pkt)
	if err != nil || e.Type != traffic.EchoReply {
		p.foreign.Add(1)
		return // nothing on this LAN consumes anything but echo replies
	}
	if !p.up.Load() {
		p.dropped.Add(1)
		_ = l.ledger.ReplyOut(pkt, p.name, true, now)
		return
	}
	if _, ok := l.byAddr[e.Dst]; !ok {
		p.dropped.Add(1)
		_ = l.ledger.ReplyOut(pkt, p.name, true, now)
		return
	}
	p.delivered.Add(1)
	_ = l.ledger.ReplyOut(pkt, p.name, false, now)
	_ = l.ledger.Received(pkt, now)
}

// Stats returns the counters of every router port.
func (l *LAN) Stats() map[string]RouterStats {
	out := make(map[string]RouterStats, len(l.routers))
	for name, p := range l.routers {
		out[name] = RouterStats{
			Handed: p.handed.Load(), DeadLink: p.deadLink.Load(),
			Delivered: p.delivered.Load(), Dropped: p.dropped.Load(), Foreign: p.foreign.Load(),
		}
	}
	return out
}
