package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/lispd/lispd/mapserver"
)

// The control plane (UDP port 4342).
//
// Each configured address is served by a listenGroup: on Linux a priority
// socket and one request socket per CPU, all bound to it with SO_REUSEPORT;
// the kernel steers Map-Registers and Map-Notify-Acks to the priority
// socket and spreads everything else over the request sockets
// (control_steer.go), so that a request flood cannot starve registrations
// and requests are answered on every CPU. Each socket has one reader
// goroutine (RoutineControlReader): one reader per socket rather than
// several sharing one, because readers sharing a socket hand its lock to
// each other and wake threads at every batch, which costs more than the
// work. A reader takes a batch of datagrams per system call (recvmmsg),
// hands each to its own mapserver.Worker, which parses Map-Requests without
// allocating and looks the registrations up without locks, and sends the
// batch's replies with one system call (sendmmsg). Nothing is logged per
// datagram.
//
// Under overload the socket receive queues are the bounded queues: the
// kernel drops what does not fit in a socket's buffer, and the control
// plane reports those drops per socket class (drops_requests,
// drops_priority). The readers' buffers are allocated once, so memory does
// not grow with the offered load.

// Socket sizes. A request socket's receive buffer holds a burst of about
// twenty thousand small datagrams (the kernel doubles the size asked for and
// charges about 800 bytes per small datagram queued); the buffers are forced
// past net.core.rmem_max when running as root (CAP_NET_ADMIN).
const (
	requestSocketBuffer  = 8 << 20
	prioritySocketBuffer = 4 << 20
	controlSendBuffer    = 4 << 20
	// maxDatagram is the largest control message read: any UDP payload.
	maxDatagram = 65535
	// requestBatch and priorityBatch are the datagrams read per system
	// call on each kind of socket.
	requestBatch  = 64
	priorityBatch = 16
	// txSlot is the largest reply queued for a batched send; larger ones
	// are sent at once.
	txSlot = 2048
)

// controlTuning are the control plane's sizes; tests shrink them.
type controlTuning struct {
	// workers is the number of request sockets (each with its reader) of
	// an address; 0 means GOMAXPROCS.
	workers int
	// requestBuffer, priorityBuffer and sendBuffer are socket buffer sizes
	// in bytes.
	requestBuffer  int
	priorityBuffer int
	sendBuffer     int
}

func defaultTuning() controlTuning {
	return controlTuning{
		requestBuffer:  requestSocketBuffer,
		priorityBuffer: prioritySocketBuffer,
		sendBuffer:     controlSendBuffer,
	}
}

// socketClass is what a socket of a group receives.
type socketClass int

const (
	// classAll: the only socket of its group (no kernel steering).
	classAll socketClass = iota
	// classPriority: Map-Registers and Map-Notify-Acks.
	classPriority
	// classRequests: everything else (one of the request sockets).
	classRequests
)

// controlPlane owns the UDP sockets of the control plane. Send picks a
// socket of the destination's address family.
type controlPlane struct {
	log *slog.Logger
	ms  *mapserver.Server // set by setMapServer before the first set
	// newHandler, when set (by setHandler before the first set), makes
	// each reader's handler instead of a Map-Server worker.
	newHandler func(out mapserver.Sender) func(pkt []byte, from netip.AddrPort, local netip.Addr)
	tuning     controlTuning

	mu      sync.Mutex // guards groups and retired
	groups  map[netip.AddrPort]*listenGroup
	retired dropCounts // drops counted by groups since closed

	sendGroups atomic.Pointer[[]*listenGroup] // read-mostly copy for Send

	received         atomic.Uint64
	receivedPriority atomic.Uint64
	recvBatches      atomic.Uint64
	readErrors       atomic.Uint64
	sent             atomic.Uint64
	sendBatches      atomic.Uint64
	sendErrors       atomic.Uint64
	noSocket         atomic.Uint64
	noHandler        atomic.Uint64
}

// dropCounts are the datagrams the kernel dropped per socket class because
// a receive queue was full.
type dropCounts struct {
	priority, requests uint64
}

// listenGroup is the set of sockets bound to one configured address and
// their readers.
type listenGroup struct {
	addr  netip.AddrPort // as configured
	bound netip.AddrPort // as bound (port filled in)
	local netip.Addr     // the bound address, or invalid when unspecified
	socks []*controlSocket
	wg    sync.WaitGroup // the readers
}

func newControlPlane(log *slog.Logger) *controlPlane {
	return &controlPlane{log: log, tuning: defaultTuning(), groups: map[netip.AddrPort]*listenGroup{}}
}

// setMapServer makes ms handle the datagrams received.
func (c *controlPlane) setMapServer(ms *mapserver.Server) { c.ms = ms }

// setHandler makes f build the handler of each socket reader, given the
// Sender that batches the reader's replies: the daemon's dispatcher when it
// plays the xTR roles too. It must be called before the first set.
func (c *controlPlane) setHandler(f func(out mapserver.Sender) func(pkt []byte, from netip.AddrPort, local netip.Addr)) {
	c.newHandler = f
}

// workers returns the number of request sockets per address.
func (c *controlPlane) workers() int {
	if c.tuning.workers > 0 {
		return c.tuning.workers
	}
	return runtime.GOMAXPROCS(0)
}

// set makes the bound addresses exactly addrs: new groups are bound first
// (so a failure changes nothing), then removed ones are closed.
func (c *controlPlane) set(addrs []netip.AddrPort) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := map[netip.AddrPort]bool{}
	var opened []*listenGroup
	for _, a := range addrs {
		want[a] = true
		if _, ok := c.groups[a]; ok {
			continue
		}
		g, err := c.openGroup(a)
		if err != nil {
			for _, o := range opened {
				o.closeSockets()
			}
			return err
		}
		opened = append(opened, g)
	}
	for _, g := range opened {
		c.groups[g.addr] = g
		c.startReaders(g)
		c.log.Info("control socket up", "address", g.bound.String(), "sockets", len(g.socks))
	}
	for a, g := range c.groups {
		if !want[a] {
			c.closeGroupLocked(g)
			delete(c.groups, a)
			c.log.Info("control socket down", "address", a.String())
		}
	}
	c.publishLocked()
	return nil
}

// closeGroupLocked closes g's sockets, waits for its readers and keeps its
// drop counts. c.mu must be held.
func (c *controlPlane) closeGroupLocked(g *listenGroup) {
	d := g.drops()
	c.retired.priority += d.priority
	c.retired.requests += d.requests
	g.closeSockets()
	g.wg.Wait()
}

// closeSockets closes every socket of g; its readers then return.
func (g *listenGroup) closeSockets() {
	for _, s := range g.socks {
		s.conn.Close()
	}
}

func (c *controlPlane) publishLocked() {
	list := make([]*listenGroup, 0, len(c.groups))
	for _, g := range c.groups {
		list = append(list, g)
	}
	c.sendGroups.Store(&list)
}

// listenError turns a bind error into the daemon's.
func listenError(a netip.AddrPort, err error) error {
	if isAddrInUse(err) {
		return fmt.Errorf("daemon: control.listen %s: address already in use (is another lispd or LISP daemon running?)", a)
	}
	return fmt.Errorf("daemon: control.listen %s: %w", a, err)
}

// network returns the network to bind a on: udp4 for IPv4 addresses and
// udp6 (IPV6_V6ONLY) for IPv6 ones, so "0.0.0.0:4342" and "[::]:4342" can
// both be configured.
func network(a netip.AddrPort) string {
	if a.Addr().Is6() && !a.Addr().Is4In6() {
		return "udp6"
	}
	return "udp4"
}

// newGroup returns a group for a bound at bound.
func newGroup(a, bound netip.AddrPort) *listenGroup {
	g := &listenGroup{addr: a, bound: bound}
	if !a.Addr().IsUnspecified() {
		g.local = a.Addr().Unmap()
	}
	return g
}

// handler returns the function a reader hands its datagrams to; out sends
// the reader's replies.
func (c *controlPlane) handler(out mapserver.Sender) func(pkt []byte, from netip.AddrPort, local netip.Addr) {
	if c.newHandler != nil {
		return c.newHandler(out)
	}
	if c.ms == nil {
		return func([]byte, netip.AddrPort, netip.Addr) { c.noHandler.Add(1) }
	}
	return c.ms.NewWorker(out).HandlePacket
}

// Send implements mapserver.Sender: it sends b to `to` from a socket of
// to's address family, preferring one bound to a specific address.
func (c *controlPlane) Send(b []byte, to netip.AddrPort) error {
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	g := c.pick(to.Addr())
	if g == nil {
		c.noSocket.Add(1)
		return fmt.Errorf("daemon: no control socket of the address family of %s", to)
	}
	if _, err := g.socks[0].conn.WriteToUDPAddrPort(b, to); err != nil {
		c.sendErrors.Add(1)
		return err
	}
	c.sent.Add(1)
	return nil
}

// pick returns the group to send to dst from, or nil.
func (c *controlPlane) pick(dst netip.Addr) *listenGroup {
	p := c.sendGroups.Load()
	if p == nil {
		return nil
	}
	var pick *listenGroup
	best := 0
	for _, g := range *p {
		if sc := sendScore(g, dst); sc > best {
			pick, best = g, sc
		}
	}
	return pick
}

// preferred reports whether g is a best group to send to dst from (dst
// unmapped), so that a reader of g may send the reply itself.
func (c *controlPlane) preferred(g *listenGroup, dst netip.Addr) bool {
	mine := sendScore(g, dst)
	if mine == 0 {
		return false
	}
	if p := c.sendGroups.Load(); p != nil {
		for _, o := range *p {
			if sendScore(o, dst) > mine {
				return false
			}
		}
	}
	return true
}

// sendScore rates group g for sending to dst: 0 means it cannot (other
// family, or bound to loopback while dst is not); a group bound to a
// specific address beats a wildcard one.
func sendScore(g *listenGroup, dst netip.Addr) int {
	if g.addr.Addr().Unmap().Is4() != dst.Is4() {
		return 0
	}
	if !g.local.IsValid() {
		return 1
	}
	if g.local.IsLoopback() && !dst.IsLoopback() {
		return 0
	}
	return 2
}

// addrs returns the bound addresses, with the kernel's port where 0 was
// asked for.
func (c *controlPlane) addrs() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g.bound)
	}
	return out
}

// close closes every socket and waits for the readers.
func (c *controlPlane) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for a, g := range c.groups {
		c.closeGroupLocked(g)
		delete(c.groups, a)
	}
	c.publishLocked()
}

// stats returns the control plane's counters (lispctl status shows them as
// control_<name>).
func (c *controlPlane) stats() map[string]uint64 {
	c.mu.Lock()
	d := c.retired
	for _, g := range c.groups {
		gd := g.drops()
		d.priority += gd.priority
		d.requests += gd.requests
	}
	c.mu.Unlock()
	return map[string]uint64{
		"received":          c.received.Load(),
		"received_priority": c.receivedPriority.Load(),
		"recv_batches":      c.recvBatches.Load(),
		"sent":              c.sent.Load(),
		"send_batches":      c.sendBatches.Load(),
		"read_errors":       c.readErrors.Load(),
		"send_errors":       c.sendErrors.Load(),
		"no_socket":         c.noSocket.Load(),
		"unhandled":         c.noHandler.Load(),
		"drops_priority":    d.priority,
		"drops_requests":    d.requests,
	}
}

// isClosed reports whether err means the socket was closed.
func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
