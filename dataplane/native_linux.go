//go:build linux

package dataplane

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// NativeConn is a write-only Device that hands packets back to the kernel
// unchanged, for the ITR's Natively-Forward path: IPv4 packets go out
// through an AF_INET SOCK_RAW IPPROTO_RAW socket (the header is included),
// IPv6 ones through an AF_INET6 one. Its sockets carry SO_MARK = FwMark, so
// with a TUN whose routes live in TUNConfig.RouteTable the kernel routes
// them by the main table instead of back into the TUN. Read blocks until
// Close.
type NativeConn struct {
	fd4, fd6  int // -1 when the family is unavailable
	sa4       unix.SockaddrInet4
	sa6       unix.SockaddrInet6
	done      chan struct{}
	mu        sync.RWMutex // Write holds it shared, Close exclusively
	closed    bool
	closeOnce sync.Once
	stats     linkCounters
}

var _ Device = (*NativeConn)(nil)

// OpenNative opens the raw sockets of a NativeConn in the network namespace
// of the calling thread; it needs CAP_NET_RAW (and CAP_NET_ADMIN for a
// mark). One address family missing (e.g. IPv6 disabled) is not an error;
// both missing is.
func OpenNative(cfg NativeConfig) (*NativeConn, error) {
	c := &NativeConn{fd4: -1, fd6: -1, done: make(chan struct{})}
	var err4, err6 error
	c.fd4, err4 = rawSocket(unix.AF_INET, cfg.FwMark)
	c.fd6, err6 = rawSocket(unix.AF_INET6, cfg.FwMark)
	if c.fd4 < 0 && c.fd6 < 0 {
		return nil, fmt.Errorf("dataplane: native sockets: %w", errors.Join(err4, err6))
	}
	return c, nil
}

// rawSocket opens a header-including raw socket of family with SO_MARK
// mark; on error it returns -1.
func rawSocket(family int, mark uint32) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return -1, fmt.Errorf("raw socket (family %d): %w", family, err)
	}
	if mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("SO_MARK %#x: %w", mark, err)
		}
	}
	return fd, nil
}

// Read implements Device: a NativeConn receives nothing, so Read blocks
// until Close and then returns ErrClosed.
func (c *NativeConn) Read([][]byte, []int, int) (int, error) {
	<-c.done
	return 0, ErrClosed
}

// Write implements Device: it sends each packet bufs[i][offset:] to its
// destination address. A packet that is not a well-formed IPv4 or IPv6
// header, is of a family without a socket, or that the kernel refuses (no
// route, too big, full queue) is dropped and counted; Write goes on with
// the next and returns the first such error with the number sent. It does
// not block: a full socket queue drops.
func (c *NativeConn) Write(bufs [][]byte, offset int) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return 0, ErrClosed
	}
	sent := 0
	var first error
	for _, b := range bufs {
		if offset < 0 || offset > len(b) {
			c.stats.txDropped.Add(1)
			if first == nil {
				first = fmt.Errorf("%w: native write offset %d of a %d-byte buffer", ErrInvalidConfig, offset, len(b))
			}
			continue
		}
		if err := c.send(b[offset:]); err != nil {
			c.stats.txDropped.Add(1)
			if first == nil {
				first = err
			}
			continue
		}
		sent++
		c.stats.txPackets.Add(1)
		c.stats.txBytes.Add(uint64(len(b) - offset))
	}
	return sent, first
}

// send writes one packet through the socket of its family.
func (c *NativeConn) send(p []byte) error {
	if len(p) == 0 {
		return errNativeMalformed
	}
	var (
		fd int
		to unix.Sockaddr
	)
	switch p[0] >> 4 {
	case 4:
		if len(p) < ipv4HeaderLen {
			return errNativeMalformed
		}
		fd = c.fd4
		copy(c.sa4.Addr[:], p[16:20])
		to = &c.sa4
	case 6:
		if len(p) < ipv6HeaderLen {
			return errNativeMalformed
		}
		fd = c.fd6
		copy(c.sa6.Addr[:], p[24:40])
		to = &c.sa6
	default:
		return errNativeMalformed
	}
	if fd < 0 {
		return errNativeNoFamily
	}
	for {
		err := unix.Sendto(fd, p, unix.MSG_DONTWAIT, to)
		switch {
		case err == nil:
			return nil
		case err == unix.EINTR:
			continue
		}
		return fmt.Errorf("dataplane: native send: %w", err)
	}
}

var (
	errNativeMalformed = errors.New("dataplane: native send: not an IPv4 or IPv6 packet")
	errNativeNoFamily  = errors.New("dataplane: native send: no socket for the address family")
)

// BatchSize implements Device.
func (c *NativeConn) BatchSize() int { return DefaultBatchSize }

// MTU implements Device: a NativeConn reads nothing, and the kernel
// enforces the MTU of the route a packet takes; it reports the largest IP
// packet.
func (c *NativeConn) MTU() (int, error) { return 65535, nil }

// Name implements Device.
func (c *NativeConn) Name() string { return "native" }

// Stats returns a snapshot of the counters (transmit side only).
func (c *NativeConn) Stats() LinkStats { return c.stats.snapshot() }

// Close implements Device: it closes the sockets and unblocks Read; it
// waits for a Write in progress, and later ones return ErrClosed.
func (c *NativeConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.closed = true
		if c.fd4 >= 0 {
			unix.Close(c.fd4)
		}
		if c.fd6 >= 0 {
			unix.Close(c.fd6)
		}
	})
	return nil
}
