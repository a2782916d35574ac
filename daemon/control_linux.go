//go:build linux

package daemon

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/internal/inet"
	"github.com/lispd/lispd/mapserver"
)

// sockaddrLen holds a sockaddr_in or a sockaddr_in6.
const sockaddrLen = inet.SockaddrLen

// controlSocket is one bound socket of a group.
type controlSocket struct {
	conn  *net.UDPConn
	rc    syscall.RawConn
	class socketClass
	is6   bool
	group *listenGroup
}

// openGroup binds the sockets of address a. The address is first bound
// without SO_REUSEPORT and released, so that an address another program
// holds is reported as in use (a lispd already running would otherwise
// share it silently), and so that port 0 gets a concrete port. Then the
// priority socket is bound with SO_REUSEPORT, the steering program attached
// to it, and the request sockets bound. When the kernel refuses the
// steering the group keeps one socket for every message.
func (c *controlPlane) openGroup(a netip.AddrPort) (*listenGroup, error) {
	netw := network(a)
	probe, err := net.ListenUDP(netw, net.UDPAddrFromAddrPort(a))
	if err != nil {
		return nil, listenError(a, err)
	}
	bound := probe.LocalAddr().(*net.UDPAddr).AddrPort()
	bound = netip.AddrPortFrom(a.Addr(), bound.Port())
	probe.Close()

	g := newGroup(a, bound)
	prio, err := c.listenSocket(g, classPriority, c.tuning.priorityBuffer)
	if err != nil {
		return nil, listenError(a, err)
	}
	n := c.workers()
	if err := attachSteering(prio.rc, n); err != nil {
		c.log.Warn("control: the kernel refused the socket steering program; Map-Registers share the queue of Map-Requests",
			"address", bound.String(), "err", err)
		prio.class = classAll
		_ = prio.rc.Control(func(fd uintptr) {
			setSocketBuffer(int(fd), unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, c.tuning.requestBuffer)
		})
		g.socks = []*controlSocket{prio}
		return g, nil
	}
	g.socks = []*controlSocket{sockPriority: prio}
	for range n {
		req, err := c.listenSocket(g, classRequests, c.tuning.requestBuffer)
		if err != nil {
			g.closeSockets()
			return nil, listenError(a, err)
		}
		g.socks = append(g.socks, req)
	}
	return g, nil
}

// listenSocket binds one socket of g with SO_REUSEPORT and the given
// receive buffer.
func (c *controlPlane) listenSocket(g *listenGroup, class socketClass, rcvBuf int) (*controlSocket, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
				return
			}
			setSocketBuffer(int(fd), unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, rcvBuf)
			setSocketBuffer(int(fd), unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, c.tuning.sendBuffer)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network(g.bound), g.bound.String())
	if err != nil {
		return nil, err
	}
	conn := pc.(*net.UDPConn)
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &controlSocket{conn: conn, rc: rc, class: class, is6: network(g.bound) == "udp6", group: g}, nil
}

// setSocketBuffer asks for n bytes with the privileged option (past the
// net.core limits), falling back to the ordinary one.
func setSocketBuffer(fd, force, plain, n int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, n) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, n)
	}
}

// attachSteering attaches the steering program for requestSockets request
// sockets to the reuseport group of the socket.
func attachSteering(rc syscall.RawConn, requestSockets int) error {
	prog, err := assembleSteering(requestSockets)
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF,
			&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
	})
	if err != nil {
		return err
	}
	return serr
}

// assembleSteering returns the steering program as the kernel takes it.
func assembleSteering(requestSockets int) ([]unix.SockFilter, error) {
	raw, err := bpf.Assemble(steeringProgram(requestSockets))
	if err != nil {
		return nil, err
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

// drops returns the datagrams the kernel dropped on g's sockets.
func (g *listenGroup) drops() dropCounts {
	var d dropCounts
	for _, s := range g.socks {
		n := socketDrops(s.rc)
		if s.class == classPriority {
			d.priority += n
		} else {
			d.requests += n
		}
	}
	return d
}

// socketDrops reads the kernel's count of datagrams dropped by a socket
// (SK_MEMINFO_DROPS of SO_MEMINFO), 0 when unknown.
func socketDrops(rc syscall.RawConn) uint64 {
	var n uint64
	_ = rc.Control(func(fd uintptr) {
		var mem [unix.SK_MEMINFO_VARS]uint32
		l := uint32(unsafe.Sizeof(mem))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&l)), 0)
		if e == 0 && l > unix.SK_MEMINFO_DROPS*4 {
			n = uint64(mem[unix.SK_MEMINFO_DROPS])
		}
	})
	return n
}

// isAddrInUse reports whether a bind failed because the address is taken.
func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// startReaders starts the reader of each of g's sockets.
func (c *controlPlane) startReaders(g *listenGroup) {
	for _, s := range g.socks {
		batch := requestBatch
		if s.class == classPriority {
			batch = priorityBatch
		}
		r := newReader(c, s, batch)
		g.wg.Add(1)
		go r.run() // RoutineControlReader
	}
}

// reader is one RoutineControlReader: it owns its receive and send
// batches and its mapserver.Worker.
type reader struct {
	c      *controlPlane
	s      *controlSocket
	handle func(pkt []byte, from netip.AddrPort, local netip.Addr)
	tx     *txBatch

	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names [][sockaddrLen]byte
	bufs  []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func newReader(c *controlPlane, s *controlSocket, batch int) *reader {
	r := &reader{
		c:     c,
		s:     s,
		hdrs:  make([]unix.Mmsghdr, batch),
		iovs:  make([]unix.Iovec, batch),
		names: make([][sockaddrLen]byte, batch),
		// Only the pages datagrams are written to become resident.
		bufs: make([]byte, batch*maxDatagram),
	}
	for i := range batch {
		iov := &r.iovs[i]
		iov.Base = &r.bufs[i*maxDatagram]
		iov.SetLen(maxDatagram)
		h := &r.hdrs[i]
		h.Hdr.Name = &r.names[i][0]
		h.Hdr.Namelen = sockaddrLen
		h.Hdr.Iov = iov
		h.Hdr.SetIovlen(1)
	}
	r.fn = r.recvmmsg
	r.tx = newTxBatch(c, s, batch)
	r.handle = c.handler(r.tx)
	return r
}

// recvmmsg runs under RawConn.Read; false asks the poller to wait.
func (r *reader) recvmmsg(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		r.n, r.errno = int(n), e
		return true
	}
}

// run reads batches until the socket is closed.
func (r *reader) run() {
	defer r.s.group.wg.Done()
	for r.once() {
	}
}

// once reads one batch of datagrams, handles them and sends the replies. It
// reports false when the socket is closed.
func (r *reader) once() bool {
	if err := r.s.rc.Read(r.fn); err != nil {
		if isClosed(err) {
			return false
		}
		r.readError()
		return true
	}
	if r.errno != 0 {
		r.readError()
		return true
	}
	r.c.received.Add(uint64(r.n))
	if r.s.class == classPriority {
		r.c.receivedPriority.Add(uint64(r.n))
	}
	r.c.recvBatches.Add(1)
	local := r.s.group.local
	for i := range r.n {
		h := &r.hdrs[i]
		from := parseSockaddr(&r.names[i])
		pkt := r.bufs[i*maxDatagram : i*maxDatagram+int(h.Len)]
		h.Hdr.Namelen = sockaddrLen
		r.handle(pkt, from, local)
	}
	r.tx.flush()
	return true
}

// readError counts a failed receive and pauses briefly, so that an error
// that repeats cannot spin a CPU.
func (r *reader) readError() {
	r.c.readErrors.Add(1)
	time.Sleep(time.Millisecond)
}

// parseSockaddr decodes a sockaddr_in or sockaddr_in6.
func parseSockaddr(b *[sockaddrLen]byte) netip.AddrPort { return inet.ParseSockaddr(b) }

// putSockaddr encodes ap into b and returns the sockaddr's length.
func putSockaddr(b *[sockaddrLen]byte, ap netip.AddrPort, is6 bool) uint32 {
	return inet.PutSockaddr(b, ap, is6)
}

// txBatch is a reader's outgoing batch: a mapserver.Sender that copies each
// datagram into a slot and sends the slots with one sendmmsg when the
// reader has handled its batch (or when they are full).
type txBatch struct {
	c *controlPlane
	s *controlSocket

	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names [][sockaddrLen]byte
	bufs  []byte
	n     int // datagrams queued
	first int // first datagram of the next sendmmsg
	sent  int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

var _ mapserver.Sender = (*txBatch)(nil)

func newTxBatch(c *controlPlane, s *controlSocket, batch int) *txBatch {
	t := &txBatch{
		c:     c,
		s:     s,
		hdrs:  make([]unix.Mmsghdr, batch),
		iovs:  make([]unix.Iovec, batch),
		names: make([][sockaddrLen]byte, batch),
		bufs:  make([]byte, batch*txSlot),
	}
	for i := range batch {
		h := &t.hdrs[i]
		h.Hdr.Name = &t.names[i][0]
		h.Hdr.Iov = &t.iovs[i]
		h.Hdr.SetIovlen(1)
	}
	t.fn = t.sendmmsg
	return t
}

// Send implements mapserver.Sender. A datagram this socket's group is a
// best choice for is queued (the error of its send is counted in
// send_errors when the batch goes out); any other goes out at once through
// the control plane's Send.
func (t *txBatch) Send(b []byte, to netip.AddrPort) error {
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	if len(b) > txSlot || !to.Addr().IsValid() || !t.c.preferred(t.s.group, to.Addr()) {
		return t.c.Send(b, to)
	}
	if t.n == len(t.hdrs) {
		t.flush()
	}
	i := t.n
	slot := t.bufs[i*txSlot : i*txSlot+len(b)]
	copy(slot, b)
	iov := &t.iovs[i]
	iov.Base = unsafe.SliceData(slot)
	iov.SetLen(len(b))
	t.hdrs[i].Hdr.Namelen = putSockaddr(&t.names[i], to, t.s.is6)
	t.n++
	return nil
}

// SendBatch implements mapserver.BatchSender: the datagrams go out with
// sendmmsg from a socket of the first destination's group, up to 64 per
// system call (any that group is not the best choice for goes through
// Send). It returns how many failed.
func (c *controlPlane) SendBatch(msgs [][]byte, to []netip.AddrPort) int {
	if len(msgs) == 0 {
		return 0
	}
	g := c.pick(to[0].Addr().Unmap())
	if g == nil {
		c.noSocket.Add(uint64(len(msgs)))
		return len(msgs)
	}
	t := newTxBatch(c, g.socks[0], min(len(msgs), requestBatch))
	failed := 0
	for i, b := range msgs {
		if t.n == len(t.hdrs) {
			failed += t.flush()
		}
		if err := t.Send(b, to[i]); err != nil {
			failed++
		}
	}
	return failed + t.flush()
}

// sendmmsg runs under RawConn.Write for datagrams [first, n).
func (t *txBatch) sendmmsg(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&t.hdrs[t.first])), uintptr(t.n-t.first), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		t.sent, t.errno = int(n), e
		return true
	}
}

// flush sends the queued datagrams and returns how many failed. A datagram
// the kernel refuses (an unreachable destination) is counted and skipped.
func (t *txBatch) flush() int {
	if t.n == 0 {
		return 0
	}
	t.c.sendBatches.Add(1)
	failed := 0
	for t.first = 0; t.first < t.n; {
		if err := t.s.rc.Write(t.fn); err != nil {
			// The socket was closed.
			failed += t.n - t.first
			t.c.sendErrors.Add(uint64(t.n - t.first))
			break
		}
		if t.errno != 0 || t.sent <= 0 {
			failed++
			t.c.sendErrors.Add(1)
			t.first++
			continue
		}
		t.c.sent.Add(uint64(t.sent))
		t.first += t.sent
	}
	t.n = 0
	return failed
}
