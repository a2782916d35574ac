//go:build linux

package benchcontrol

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loadConn is a connected UDP socket on loopback with batched send
// (sendmmsg) and receive (recvmmsg) that allocate nothing. One goroutine may
// send while another receives.
type loadConn struct {
	pc *net.UDPConn
	rc syscall.RawConn

	// send state, used by one goroutine at a time
	shdrs  []unix.Mmsghdr
	siovs  []unix.Iovec
	sfirst int
	snmsg  int
	sn     int
	serrno syscall.Errno
	sfn    func(fd uintptr) bool

	// receive state, used by one goroutine at a time
	rhdrs  []unix.Mmsghdr
	riovs  []unix.Iovec
	rbufs  [][]byte
	rn     int
	rerrno syscall.Errno
	rfn    func(fd uintptr) bool
	// rcbufs are the control buffers for the kernel's receive timestamps
	// (nil unless EnableStamps).
	rcbufs [][]byte
}

// maxLoadBatch is the largest batch a loadConn moves per system call.
const maxLoadBatch = 64

// dialLoad opens a UDP socket connected to dst, with receive and send
// buffers of bufBytes (forced past the sysctl limits when running as root).
func dialLoad(dst netip.AddrPort, bufBytes int) (*loadConn, error) {
	network := "udp4"
	if dst.Addr().Is6() {
		network = "udp6"
	}
	pc, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return nil, fmt.Errorf("benchcontrol: dial %s: %w", dst, err)
	}
	rc, err := pc.SyscallConn()
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("benchcontrol: dial %s: %w", dst, err)
	}
	_ = rc.Control(func(fd uintptr) {
		setBuffer(int(fd), unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, bufBytes)
		setBuffer(int(fd), unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, bufBytes)
	})
	c := &loadConn{
		pc:    pc,
		rc:    rc,
		shdrs: make([]unix.Mmsghdr, maxLoadBatch),
		siovs: make([]unix.Iovec, maxLoadBatch),
		rhdrs: make([]unix.Mmsghdr, maxLoadBatch),
		riovs: make([]unix.Iovec, maxLoadBatch),
		rbufs: make([][]byte, maxLoadBatch),
	}
	for i := range c.rbufs {
		c.rbufs[i] = make([]byte, 2048)
	}
	c.sfn = c.sendmmsg
	c.rfn = c.recvmmsg
	return c, nil
}

// setBuffer asks for n bytes with the privileged option, falling back to
// the ordinary one (which the kernel caps at net.core.[rw]mem_max).
func setBuffer(fd, force, plain, n int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, n) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, n)
	}
}

// LocalAddr is the socket's address.
func (c *loadConn) LocalAddr() netip.AddrPort {
	return c.pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close closes the socket; a blocked Recv returns net.ErrClosed.
func (c *loadConn) Close() error { return c.pc.Close() }

func (c *loadConn) sendmmsg(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.shdrs[c.sfirst])), uintptr(c.snmsg-c.sfirst), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		c.sn, c.serrno = int(n), e
		return true
	}
}

func (c *loadConn) recvmmsg(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rhdrs[0])), uintptr(len(c.rhdrs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		c.rn, c.rerrno = int(n), e
		return true
	}
}

// SendBatch sends every datagram of pkts (at most maxLoadBatch) and returns
// how many the kernel took. Datagrams refused with an error (the daemon's
// port closed: ECONNREFUSED) are counted as not sent.
func (c *loadConn) SendBatch(pkts [][]byte) (int, error) {
	if len(pkts) > maxLoadBatch {
		pkts = pkts[:maxLoadBatch]
	}
	for i, p := range pkts {
		iov := &c.siovs[i]
		iov.Base = unsafe.SliceData(p)
		iov.SetLen(len(p))
		h := &c.shdrs[i]
		h.Hdr = unix.Msghdr{Iov: iov}
		h.Hdr.SetIovlen(1)
		h.Len = 0
	}
	sent := 0
	c.snmsg = len(pkts)
	for c.sfirst = 0; c.sfirst < c.snmsg; {
		if err := c.rc.Write(c.sfn); err != nil {
			return sent, err
		}
		if c.serrno != 0 {
			if c.serrno == unix.ECONNREFUSED {
				// An ICMP error from an earlier datagram: skip one.
				c.sfirst++
				continue
			}
			return sent, os.NewSyscallError("sendmmsg", c.serrno)
		}
		sent += c.sn
		c.sfirst += c.sn
	}
	return sent, nil
}

// EnableStamps has the kernel timestamp every datagram the socket receives
// (SO_TIMESTAMPNS), for RecvBatchStamped.
func (c *loadConn) EnableStamps() error {
	var serr error
	if err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return fmt.Errorf("benchcontrol: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("benchcontrol: SO_TIMESTAMPNS: %w", serr)
	}
	c.rcbufs = make([][]byte, maxLoadBatch)
	for i := range c.rcbufs {
		c.rcbufs[i] = make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))))
	}
	return nil
}

// RecvBatch waits for datagrams and calls fn for each one received in one
// system call; fn must not retain b.
func (c *loadConn) RecvBatch(fn func(b []byte)) error {
	if err := c.recv(); err != nil {
		return err
	}
	for i := range c.rn {
		fn(c.rbufs[i][:c.rhdrs[i].Len])
	}
	return nil
}

// RecvBatchStamped is RecvBatch that also passes the time each datagram
// arrived, in Unix nanoseconds: the kernel's timestamp after EnableStamps,
// else the time the batch was read.
func (c *loadConn) RecvBatchStamped(fn func(b []byte, at int64)) error {
	if err := c.recv(); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	for i := range c.rn {
		at := now
		if c.rcbufs != nil {
			if ts, ok := cmsgTimestamp(c.rcbufs[i][:c.rhdrs[i].Hdr.Controllen]); ok {
				at = ts
			}
		}
		fn(c.rbufs[i][:c.rhdrs[i].Len], at)
	}
	return nil
}

// cmsgTimestamp returns the SCM_TIMESTAMPNS time in the control messages
// b, in Unix nanoseconds.
func cmsgTimestamp(b []byte) (int64, bool) {
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		if h.Len < unix.SizeofCmsghdr || uint64(h.Len) > uint64(len(b)) {
			return 0, false
		}
		data := b[unix.CmsgLen(0):h.Len]
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := *(*unix.Timespec)(unsafe.Pointer(&data[0]))
			return ts.Nano(), true
		}
		next := unix.CmsgSpace(int(h.Len) - unix.CmsgLen(0))
		if next > len(b) {
			return 0, false
		}
		b = b[next:]
	}
	return 0, false
}

// recv reads a batch of datagrams into the receive buffers.
func (c *loadConn) recv() error {
	for i := range c.rhdrs {
		iov := &c.riovs[i]
		iov.Base = &c.rbufs[i][0]
		iov.SetLen(len(c.rbufs[i]))
		h := &c.rhdrs[i]
		h.Hdr = unix.Msghdr{Iov: iov}
		h.Hdr.SetIovlen(1)
		if c.rcbufs != nil {
			h.Hdr.Control = &c.rcbufs[i][0]
			h.Hdr.SetControllen(len(c.rcbufs[i]))
		}
		h.Len = 0
	}
	for {
		if err := c.rc.Read(c.rfn); err != nil {
			return err
		}
		if c.rerrno == unix.ECONNREFUSED {
			continue // an ICMP error for a datagram sent earlier
		}
		if c.rerrno != 0 {
			return os.NewSyscallError("recvmmsg", c.rerrno)
		}
		return nil
	}
}

// Drops returns the number of datagrams the kernel dropped because the
// socket's receive buffer was full (SO_MEMINFO), or 0 if unknown.
func (c *loadConn) Drops() uint64 {
	var n uint64
	_ = c.rc.Control(func(fd uintptr) { n = socketDrops(fd) })
	return n
}

// socketDrops reads SK_MEMINFO_DROPS of a socket.
func socketDrops(fd uintptr) uint64 {
	var mem [unix.SK_MEMINFO_VARS]uint32
	l := uint32(unsafe.Sizeof(mem))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 || l <= unix.SK_MEMINFO_DROPS*4 {
		return 0
	}
	return uint64(mem[unix.SK_MEMINFO_DROPS])
}

// isClosed reports whether err means the socket was closed.
func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
