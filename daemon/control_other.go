//go:build !linux

package daemon

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
)

// controlSocket is one bound socket of a group. Without Linux's reuseport
// steering and batch system calls, a group has one socket, read one
// datagram per call.
type controlSocket struct {
	conn  *net.UDPConn
	class socketClass
	group *listenGroup
}

// openGroup binds address a.
func (c *controlPlane) openGroup(a netip.AddrPort) (*listenGroup, error) {
	conn, err := net.ListenUDP(network(a), net.UDPAddrFromAddrPort(a))
	if err != nil {
		return nil, listenError(a, err)
	}
	_ = conn.SetReadBuffer(c.tuning.requestBuffer)
	_ = conn.SetWriteBuffer(c.tuning.sendBuffer)
	bound := netip.AddrPortFrom(a.Addr(), conn.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	g := newGroup(a, bound)
	g.socks = []*controlSocket{{conn: conn, class: classAll, group: g}}
	return g, nil
}

// SendBatch implements mapserver.BatchSender, one datagram at a time.
func (c *controlPlane) SendBatch(msgs [][]byte, to []netip.AddrPort) int {
	failed := 0
	for i, b := range msgs {
		if c.Send(b, to[i]) != nil {
			failed++
		}
	}
	return failed
}

// drops is unknown on this system.
func (g *listenGroup) drops() dropCounts { return dropCounts{} }

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// startReaders starts the readers of g's socket: as many as workers, the
// socket being shared.
func (c *controlPlane) startReaders(g *listenGroup) {
	for _, s := range g.socks {
		for range c.workers() {
			g.wg.Add(1)
			go c.readLoop(s) // RoutineControlReader
		}
	}
}

// readLoop reads datagrams until the socket is closed; replies go out at
// once through Send.
func (c *controlPlane) readLoop(s *controlSocket) {
	defer s.group.wg.Done()
	handle := c.handler(c)
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if isClosed(err) {
				return
			}
			c.readErrors.Add(1)
			continue
		}
		c.received.Add(1)
		c.recvBatches.Add(1)
		handle(buf[:n], from, s.group.local)
	}
}
