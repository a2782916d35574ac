//go:build linux

package dataplane

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/lispd/lispd/internal/inet"
	"golang.org/x/sys/unix"
)

// UDP GSO limits (see udp(7) and wireguard-go conn/bind_std.go).
const (
	gsoMaxSegments     = 64 // UDP_MAX_SEGMENTS in older kernels
	maxIPv4UDPPayload  = 1<<16 - 1 - ipv4HeaderLen - udpHeaderLen
	maxIPv6UDPPayload  = 1<<16 - 1 - udpHeaderLen
	sockaddrStorageLen = inet.SockaddrLen // 28: holds both families
	// oobSize holds, per message, the TOS and TTL control messages (and on
	// send a UDP_SEGMENT one).
	oobSize = 96
)

// mmsgState is the preallocated recvmmsg/sendmmsg state of one direction.
type mmsgState struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names [][sockaddrStorageLen]byte
	oob   []byte
	// per sent message: first datagram index and datagram count
	first, count []int

	// syscall arguments and results, set around the prebound function
	nmsg  int
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func newMmsgState(batch int) mmsgState {
	return mmsgState{
		hdrs:  make([]unix.Mmsghdr, batch),
		iovs:  make([]unix.Iovec, batch),
		names: make([][sockaddrStorageLen]byte, batch),
		oob:   make([]byte, batch*oobSize),
		first: make([]int, batch),
		count: make([]int, batch),
	}
}

// UDPConn is a Conn on a Linux UDP socket: batched receive and send with
// recvmmsg/sendmmsg, per-datagram outer TOS and TTL in both directions
// (control messages), and UDP GSO on send where the kernel supports it
// (runs of same-size datagrams to the same destination leave in one
// message, gathered from the caller's buffers without copying). Receive and
// send allocate nothing.
type UDPConn struct {
	pc     *net.UDPConn
	rc     syscall.RawConn
	local  netip.AddrPort
	is6    bool
	batch  int
	gso    atomic.Bool
	rcvBuf int
	sndBuf int

	rmu sync.Mutex // guards r
	r   mmsgState
	wmu sync.Mutex // guards w
	w   mmsgState

	stats linkCounters
}

var _ Conn = (*UDPConn)(nil)

// ListenUDP opens a UDP socket for cfg.
func ListenUDP(cfg UDPConfig) (*UDPConn, error) {
	a := cfg.Addr.Addr()
	if !a.IsValid() || a.Is4In6() {
		return nil, fmt.Errorf("%w: listen address %v", ErrInvalidConfig, cfg.Addr)
	}
	if cfg.SocketBuffer == 0 {
		cfg.SocketBuffer = DefaultSocketBuffer
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.SocketBuffer < 0 || cfg.BatchSize < 1 || cfg.BatchSize > 1024 {
		return nil, fmt.Errorf("%w: socket buffer %d, batch size %d", ErrInvalidConfig, cfg.SocketBuffer, cfg.BatchSize)
	}
	is6 := a.Is6()
	network := "udp4"
	if is6 {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = setSocketOptions(int(fd), is6, cfg) }); err != nil {
			return err
		}
		return serr
	}}
	pconn, err := lc.ListenPacket(context.Background(), network, cfg.Addr.String())
	if err != nil {
		return nil, fmt.Errorf("dataplane: listen %v: %w", cfg.Addr, err)
	}
	pc := pconn.(*net.UDPConn)
	rc, err := pc.SyscallConn()
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("dataplane: listen %v: %w", cfg.Addr, err)
	}
	c := &UDPConn{
		pc:    pc,
		rc:    rc,
		local: pc.LocalAddr().(*net.UDPAddr).AddrPort(),
		is6:   is6,
		batch: cfg.BatchSize,
		r:     newMmsgState(cfg.BatchSize),
		w:     newMmsgState(cfg.BatchSize),
	}
	c.local = netip.AddrPortFrom(c.local.Addr().Unmap(), c.local.Port())
	c.r.fn = c.recvmmsg
	c.w.fn = c.sendmmsg
	_ = rc.Control(func(fd uintptr) {
		c.rcvBuf, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		c.sndBuf, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
		if !cfg.DisableGSO {
			_, gerr := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
			c.gso.Store(gerr == nil)
		}
	})
	return c, nil
}

// setSocketOptions sizes the buffers and asks for per-packet TOS/TTL.
func setSocketOptions(fd int, is6 bool, cfg UDPConfig) error {
	// Buffer sizes: best effort; FORCE works only with CAP_NET_ADMIN.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.SocketBuffer)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, cfg.SocketBuffer)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, cfg.SocketBuffer)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, cfg.SocketBuffer)
	set := func(level, opt, v int, name string) error {
		if err := unix.SetsockoptInt(fd, level, opt, v); err != nil {
			return fmt.Errorf("dataplane: setsockopt %s: %w", name, err)
		}
		return nil
	}
	if is6 {
		pmtu := unix.IPV6_PMTUDISC_DO
		if cfg.AllowFragmentation {
			pmtu = unix.IPV6_PMTUDISC_DONT
		}
		return errors.Join(
			set(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1, "IPV6_V6ONLY"),
			set(unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, 1, "IPV6_RECVTCLASS"),
			set(unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT"),
			set(unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, pmtu, "IPV6_MTU_DISCOVER"),
		)
	}
	pmtu := unix.IP_PMTUDISC_DO
	if cfg.AllowFragmentation {
		pmtu = unix.IP_PMTUDISC_DONT
	}
	return errors.Join(
		set(unix.IPPROTO_IP, unix.IP_RECVTOS, 1, "IP_RECVTOS"),
		set(unix.IPPROTO_IP, unix.IP_RECVTTL, 1, "IP_RECVTTL"),
		set(unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, pmtu, "IP_MTU_DISCOVER"),
	)
}

// LocalAddr implements Conn.
func (c *UDPConn) LocalAddr() netip.AddrPort { return c.local }

// BatchSize implements Conn.
func (c *UDPConn) BatchSize() int { return c.batch }

// GSO reports whether UDP generic segmentation offload is in use for sends.
func (c *UDPConn) GSO() bool { return c.gso.Load() }

// SocketBuffers returns the receive and send buffer sizes the kernel
// granted (as getsockopt reports them: twice the requested size).
func (c *UDPConn) SocketBuffers() (rcv, snd int) { return c.rcvBuf, c.sndBuf }

// Stats returns a snapshot of the Conn's counters.
func (c *UDPConn) Stats() LinkStats { return c.stats.snapshot() }

// Close implements Conn.
func (c *UDPConn) Close() error {
	if err := c.pc.Close(); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	return nil
}

// ioError maps errors from the runtime poller to this package's.
func ioError(op string, err error, errno syscall.Errno) error {
	if err != nil {
		if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("dataplane: %s: %w", op, err)
	}
	return os.NewSyscallError(op, errno)
}

// recvmmsg runs under RawConn.Read: false asks the poller to wait.
func (c *UDPConn) recvmmsg(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.r.hdrs[0])), uintptr(c.r.nmsg), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN {
			return false
		}
		c.r.n, c.r.errno = int(n), e
		return true
	}
}

// sendmmsg runs under RawConn.Write for messages [r.n, r.nmsg) — r.n is
// the first message on entry and the number sent on return.
func (c *UDPConn) sendmmsg(fd uintptr) bool {
	first := c.w.n
	for {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.w.hdrs[first])), uintptr(c.w.nmsg-first), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN {
			return false
		}
		c.w.n, c.w.errno = int(n), e
		return true
	}
}

// Read implements Conn.
func (c *UDPConn) Read(bufs [][]byte, sizes []int, meta []Meta, offset int) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	r := &c.r
	k := min(len(bufs), c.batch, len(sizes), len(meta))
	if k == 0 {
		return 0, nil
	}
	for i := range k {
		if offset < 0 || offset >= len(bufs[i]) {
			return 0, fmt.Errorf("%w: offset %d in a %d-byte buffer", ErrBufferTooSmall, offset, len(bufs[i]))
		}
		b := bufs[i][offset:]
		iov := &r.iovs[i]
		iov.Base = &b[0]
		iov.SetLen(len(b))
		h := &r.hdrs[i]
		h.Len = 0
		h.Hdr = unix.Msghdr{Name: &r.names[i][0], Namelen: sockaddrStorageLen, Iov: iov}
		h.Hdr.SetIovlen(1)
		h.Hdr.Control = &r.oob[i*oobSize]
		h.Hdr.SetControllen(oobSize)
	}
	r.nmsg = k
	if err := c.rc.Read(r.fn); err != nil {
		return 0, ioError("recvmmsg", err, 0)
	}
	if r.errno != 0 {
		return 0, ioError("recvmmsg", nil, r.errno)
	}
	for i := range r.n {
		h := &r.hdrs[i]
		size := int(h.Len)
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			c.stats.rxDropped.Add(1)
			size = 0
		} else {
			c.stats.rxPackets.Add(1)
			c.stats.rxBytes.Add(uint64(size))
		}
		sizes[i] = size
		m := Meta{Addr: parseSockaddr(&r.names[i])}
		parseControl(r.oob[i*oobSize:i*oobSize+int(h.Hdr.Controllen)], &m)
		meta[i] = m
	}
	return r.n, nil
}

// parseSockaddr decodes a sockaddr_in or sockaddr_in6.
func parseSockaddr(b *[sockaddrStorageLen]byte) netip.AddrPort { return inet.ParseSockaddr(b) }

// putSockaddr encodes ap into b and returns the sockaddr's length.
func putSockaddr(b *[sockaddrStorageLen]byte, ap netip.AddrPort, is6 bool) uint32 {
	return inet.PutSockaddr(b, ap, is6)
}

// parseControl reads the TOS/Traffic Class and TTL/hop limit control
// messages.
func parseControl(oob []byte, m *Meta) {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return
		}
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TOS && len(data) >= 1:
			m.TOS = data[0]
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TTL && len(data) >= 4:
			m.TTL = uint8(binary.NativeEndian.Uint32(data))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_TCLASS && len(data) >= 4:
			m.TOS = uint8(binary.NativeEndian.Uint32(data))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			m.TTL = uint8(binary.NativeEndian.Uint32(data))
		}
		oob = rest
	}
}

// putControl writes one control message with an integer payload of size 4
// (or 2 for UDP_SEGMENT) and returns its space.
func putControl(b []byte, level, typ int32, v uint32, size int) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = level
	h.Type = typ
	h.SetLen(unix.CmsgLen(size))
	d := b[unix.CmsgLen(0):]
	if size == 2 {
		binary.NativeEndian.PutUint16(d, uint16(v))
	} else {
		binary.NativeEndian.PutUint32(d, v)
	}
	return unix.CmsgSpace(size)
}

// sameFlow reports whether two datagrams may share a GSO message.
func sameFlow(a, b Meta) bool { return a.Addr == b.Addr && a.TOS == b.TOS && a.TTL == b.TTL }

// pack fills message slots with datagrams from bufs starting at *next,
// grouping runs for GSO (unless before noGSO), and returns the number of
// messages. Datagrams that cannot be sent are counted and skipped, the first
// error kept in *firstErr.
func (c *UDPConn) pack(bufs [][]byte, meta []Meta, offset int, next *int, noGSO int, firstErr *error) int {
	w := &c.w
	gso := c.gso.Load()
	maxPayload := maxIPv4UDPPayload
	if c.is6 {
		maxPayload = maxIPv6UDPPayload
	}
	nm, niov := 0, 0
	i := *next
	for i < len(bufs) && nm < c.batch && niov < len(w.iovs) {
		m := meta[i]
		dst := netip.AddrPortFrom(m.Addr.Addr().Unmap(), m.Addr.Port())
		if offset < 0 || offset >= len(bufs[i]) || !dst.Addr().IsValid() || dst.Addr().Is4() == c.is6 {
			c.stats.txDropped.Add(1)
			if *firstErr == nil {
				*firstErr = fmt.Errorf("%w: cannot send a datagram to %v from %v", ErrAddressFamily, m.Addr, c.local)
				if offset < 0 || offset >= len(bufs[i]) {
					*firstErr = fmt.Errorf("%w: offset %d in a %d-byte buffer", ErrBufferTooSmall, offset, len(bufs[i]))
				}
			}
			i++
			continue
		}
		// Group a run of datagrams for GSO: same destination and TOS/TTL,
		// same size; a shorter one may end the run.
		size := len(bufs[i]) - offset
		g, total := 1, size
		if gso && i >= noGSO {
			for j := i + 1; j < len(bufs) && g < gsoMaxSegments && niov+g < len(w.iovs); j++ {
				l := len(bufs[j]) - offset
				if l <= 0 || l > size || !sameFlow(meta[j], m) || total+l > maxPayload {
					break
				}
				g++
				total += l
				if l < size {
					break
				}
			}
		}
		for j := range g {
			b := bufs[i+j][offset:]
			w.iovs[niov+j].Base = &b[0]
			w.iovs[niov+j].SetLen(len(b))
		}
		h := &w.hdrs[nm]
		h.Len = 0
		h.Hdr = unix.Msghdr{Name: &w.names[nm][0], Iov: &w.iovs[niov]}
		h.Hdr.Namelen = putSockaddr(&w.names[nm], dst, c.is6)
		h.Hdr.SetIovlen(g)
		oob := w.oob[nm*oobSize : (nm+1)*oobSize]
		ol := 0
		if m.TOS != 0 {
			if c.is6 {
				ol += putControl(oob[ol:], unix.IPPROTO_IPV6, unix.IPV6_TCLASS, uint32(m.TOS), 4)
			} else {
				ol += putControl(oob[ol:], unix.IPPROTO_IP, unix.IP_TOS, uint32(m.TOS), 4)
			}
		}
		if m.TTL != 0 {
			if c.is6 {
				ol += putControl(oob[ol:], unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, uint32(m.TTL), 4)
			} else {
				ol += putControl(oob[ol:], unix.IPPROTO_IP, unix.IP_TTL, uint32(m.TTL), 4)
			}
		}
		if g > 1 {
			ol += putControl(oob[ol:], unix.SOL_UDP, unix.UDP_SEGMENT, uint32(size), 2)
		}
		if ol > 0 {
			h.Hdr.Control = &oob[0]
			h.Hdr.SetControllen(ol)
		}
		w.first[nm], w.count[nm] = i, g
		nm++
		niov += g
		i += g
	}
	*next = i
	return nm
}

// Write implements Conn. Runs of datagrams with the same destination, TOS,
// TTL and size are sent as one GSO message when the kernel supports it; a
// GSO message the kernel refuses is re-sent one datagram at a time (and GSO
// is turned off for good after EIO, which means the device lacks checksum
// offload).
func (c *UDPConn) Write(bufs [][]byte, meta []Meta, offset int) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	w := &c.w
	if len(meta) < len(bufs) {
		return 0, fmt.Errorf("%w: %d datagrams, %d metadata", ErrInvalidConfig, len(bufs), len(meta))
	}
	var firstErr error
	sent, next, noGSO := 0, 0, 0
	for next < len(bufs) {
		nm := c.pack(bufs, meta, offset, &next, noGSO, &firstErr)
		pos := 0
	send:
		for pos < nm {
			w.n, w.nmsg = pos, nm
			if err := c.rc.Write(w.fn); err != nil {
				return sent, ioError("sendmmsg", err, 0)
			}
			if w.errno == 0 {
				for m := pos; m < pos+w.n; m++ {
					sent += w.count[m]
					c.stats.txPackets.Add(uint64(w.count[m]))
					for j := range w.count[m] {
						c.stats.txBytes.Add(uint64(len(bufs[w.first[m]+j]) - offset))
					}
					if w.count[m] > 1 {
						c.stats.txGSOBatches.Add(1)
					}
				}
				pos += w.n
				continue
			}
			// Message pos failed.
			if w.count[pos] > 1 {
				if w.errno == unix.EIO {
					c.gso.Store(false)
				}
				c.stats.txGSOFallbacks.Add(1)
				noGSO = w.first[pos] + w.count[pos]
				next = w.first[pos]
				break send
			}
			c.stats.txDropped.Add(1)
			if firstErr == nil {
				firstErr = ioError("sendmmsg", nil, w.errno)
			}
			pos++
		}
	}
	return sent, firstErr
}
