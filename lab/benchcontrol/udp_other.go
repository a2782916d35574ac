//go:build !linux

package benchcontrol

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// loadConn is a connected UDP socket; on this system datagrams move one per
// system call.
type loadConn struct {
	pc  *net.UDPConn
	buf []byte
}

// maxLoadBatch is the largest batch a loadConn moves per call.
const maxLoadBatch = 64

// dialLoad opens a UDP socket connected to dst with buffers of bufBytes.
func dialLoad(dst netip.AddrPort, bufBytes int) (*loadConn, error) {
	network := "udp4"
	if dst.Addr().Is6() {
		network = "udp6"
	}
	pc, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return nil, fmt.Errorf("benchcontrol: dial %s: %w", dst, err)
	}
	_ = pc.SetReadBuffer(bufBytes)
	_ = pc.SetWriteBuffer(bufBytes)
	return &loadConn{pc: pc, buf: make([]byte, 2048)}, nil
}

// LocalAddr is the socket's address.
func (c *loadConn) LocalAddr() netip.AddrPort {
	return c.pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close closes the socket.
func (c *loadConn) Close() error { return c.pc.Close() }

// SendBatch sends the datagrams one by one.
func (c *loadConn) SendBatch(pkts [][]byte) (int, error) {
	for i, p := range pkts {
		if _, err := c.pc.Write(p); err != nil {
			return i, err
		}
	}
	return len(pkts), nil
}

// RecvBatch receives one datagram and calls fn with it.
func (c *loadConn) RecvBatch(fn func(b []byte)) error {
	n, err := c.pc.Read(c.buf)
	if err != nil {
		return err
	}
	fn(c.buf[:n])
	return nil
}

// EnableStamps does nothing on this system: RecvBatchStamped reports the
// time of reading.
func (c *loadConn) EnableStamps() error { return nil }

// RecvBatchStamped is RecvBatch with the time the datagram was read, in
// Unix nanoseconds.
func (c *loadConn) RecvBatchStamped(fn func(b []byte, at int64)) error {
	return c.RecvBatch(func(b []byte) { fn(b, time.Now().UnixNano()) })
}

// Drops is unknown on this system.
func (c *loadConn) Drops() uint64 { return 0 }

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
