package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// controlSocketBuffer is the receive and send buffer asked for on each
// control-plane socket, so that a burst of Map-Requests or Map-Registers is
// queued rather than dropped by the kernel.
const controlSocketBuffer = 4 << 20

// maxDatagram is the largest control message read.
const maxDatagram = 65535

// controlPlane owns the UDP sockets of the control plane (port 4342): one
// reader goroutine per socket hands each datagram to the handler, and Send
// picks a socket of the destination's address family.
type controlPlane struct {
	log     *slog.Logger
	handler func(pkt []byte, from netip.AddrPort, local netip.Addr)

	mu    sync.Mutex // guards socks
	socks map[netip.AddrPort]*controlSocket

	sendErrors  atomic.Uint64
	noSocket    atomic.Uint64
	received    atomic.Uint64
	readErrors  atomic.Uint64
	sent        atomic.Uint64
	sendSockets atomic.Pointer[[]*controlSocket] // read-mostly copy for Send
}

// controlSocket is one bound socket and its reader.
type controlSocket struct {
	conn  *net.UDPConn
	addr  netip.AddrPort // as bound (port filled in)
	local netip.Addr     // the bound address, or invalid when unspecified
	done  chan struct{}
}

func newControlPlane(log *slog.Logger) *controlPlane {
	return &controlPlane{log: log, socks: map[netip.AddrPort]*controlSocket{}}
}

// set makes the bound sockets exactly addrs: new ones are bound first (so a
// failure changes nothing), then removed ones are closed.
func (c *controlPlane) set(addrs []netip.AddrPort) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := map[netip.AddrPort]bool{}
	var opened []*controlSocket
	for _, a := range addrs {
		want[a] = true
		if _, ok := c.socks[a]; ok {
			continue
		}
		s, err := listenControl(a)
		if err != nil {
			for _, o := range opened {
				o.conn.Close()
			}
			return err
		}
		opened = append(opened, s)
	}
	for _, s := range opened {
		c.socks[s.addr] = s
		go c.readLoop(s)
		c.log.Info("control socket up", "address", s.conn.LocalAddr().String())
	}
	for a, s := range c.socks {
		if !want[a] && !containsBound(opened, a) {
			s.conn.Close()
			<-s.done
			delete(c.socks, a)
			c.log.Info("control socket down", "address", a.String())
		}
	}
	c.publishLocked()
	return nil
}

// containsBound reports whether a socket in list was asked for as a.
func containsBound(list []*controlSocket, a netip.AddrPort) bool {
	for _, s := range list {
		if s.addr == a {
			return true
		}
	}
	return false
}

func (c *controlPlane) publishLocked() {
	list := make([]*controlSocket, 0, len(c.socks))
	for _, s := range c.socks {
		list = append(list, s)
	}
	c.sendSockets.Store(&list)
}

// listenControl binds one control socket. IPv4 addresses use udp4 and IPv6
// ones udp6 (IPV6_V6ONLY), so "0.0.0.0:4342" and "[::]:4342" can both be
// configured.
func listenControl(a netip.AddrPort) (*controlSocket, error) {
	network := "udp4"
	if a.Addr().Is6() && !a.Addr().Is4In6() {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(a))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("daemon: control.listen %s: address already in use (is another lispd or LISP daemon running?)", a)
		}
		return nil, fmt.Errorf("daemon: control.listen %s: %w", a, err)
	}
	_ = conn.SetReadBuffer(controlSocketBuffer)
	_ = conn.SetWriteBuffer(controlSocketBuffer)
	s := &controlSocket{conn: conn, addr: a, done: make(chan struct{})}
	if !a.Addr().IsUnspecified() {
		s.local = a.Addr().Unmap()
	}
	return s, nil
}

// readLoop is RoutineControlReader: it reads datagrams until the socket is
// closed.
func (c *controlPlane) readLoop(s *controlSocket) {
	defer close(s.done)
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			c.readErrors.Add(1)
			continue
		}
		c.received.Add(1)
		if h := c.handler; h != nil {
			h(buf[:n], from, s.local)
		}
	}
}

// Send implements mapserver.Sender: it sends b to `to` from a socket of
// to's address family, preferring one bound to a specific address.
func (c *controlPlane) Send(b []byte, to netip.AddrPort) error {
	p := c.sendSockets.Load()
	if p == nil {
		c.noSocket.Add(1)
		return errors.New("daemon: no control socket")
	}
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	var pick *controlSocket
	best := 0
	for _, s := range *p {
		if sc := sendScore(s, to.Addr()); sc > best {
			pick, best = s, sc
		}
	}
	if pick == nil {
		c.noSocket.Add(1)
		return fmt.Errorf("daemon: no control socket of the address family of %s", to)
	}
	if _, err := pick.conn.WriteToUDPAddrPort(b, to); err != nil {
		c.sendErrors.Add(1)
		return err
	}
	c.sent.Add(1)
	return nil
}

// sendScore rates socket s for sending to dst: 0 means it cannot (other
// family, or bound to loopback while dst is not); a socket bound to a
// specific address beats a wildcard one.
func sendScore(s *controlSocket, dst netip.Addr) int {
	if s.addr.Addr().Unmap().Is4() != dst.Is4() {
		return 0
	}
	if !s.local.IsValid() {
		return 1
	}
	if s.local.IsLoopback() && !dst.IsLoopback() {
		return 0
	}
	return 2
}

// addrs returns the bound addresses, with the kernel's port where 0 was
// asked for.
func (c *controlPlane) addrs() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(c.socks))
	for _, s := range c.socks {
		out = append(out, s.conn.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	return out
}

// close closes every socket and waits for the readers.
func (c *controlPlane) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for a, s := range c.socks {
		s.conn.Close()
		<-s.done
		delete(c.socks, a)
	}
	c.publishLocked()
}

func (c *controlPlane) stats() map[string]uint64 {
	return map[string]uint64{
		"received":    c.received.Load(),
		"sent":        c.sent.Load(),
		"read_errors": c.readErrors.Load(),
		"send_errors": c.sendErrors.Load(),
		"no_socket":   c.noSocket.Load(),
	}
}
