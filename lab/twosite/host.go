package twosite

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/dataplane"
)

// udpQueueLen is how many received UDP datagrams a Host holds for
// ReceiveUDP; more are dropped and counted.
const udpQueueLen = 1024

// Host is an embedded host: the host end of an in-memory device pair whose
// other end is an xTR's EID-side device, with just enough of an IPv4 stack
// to answer echo requests addressed to it (as a kernel does), match echo
// replies to Ping calls, and send and receive UDP. RoutineHost reads the
// device until Close.
type Host struct {
	name string
	addr netip.Addr
	dev  *dataplane.MemDevice
	id   uint16 // ICMP echo identifier of its pings

	writeMu sync.Mutex // one writer at a time on dev

	mu      sync.Mutex // guards waiters
	waiters map[echoKey]chan struct{}

	udp  chan Datagram
	done chan struct{}

	closeOnce sync.Once
	stats     hostCounters
}

// echoKey identifies an outstanding ping.
type echoKey struct {
	peer    netip.Addr
	id, seq uint16
}

type hostCounters struct {
	echoAnswered, echoReplies, udpReceived, udpDropped, malformed, notForUs atomic.Uint64
}

// HostStats counts what a Host received.
type HostStats struct {
	// EchoRequestsAnswered counts echo requests to the host that it
	// answered.
	EchoRequestsAnswered uint64
	// EchoReplies counts echo replies received (expected or not).
	EchoReplies uint64
	// UDPReceived counts UDP datagrams to the host's address;
	// UDPDropped those of them that found the receive queue full.
	UDPReceived, UDPDropped uint64
	// Malformed counts packets that failed to parse (bad checksum or
	// length, or a protocol the host does not speak).
	Malformed uint64
	// NotForUs counts well-formed packets to another address.
	NotForUs uint64
}

// newHost starts a host with address addr on dev.
func newHost(name string, addr netip.Addr, dev *dataplane.MemDevice, id uint16) *Host {
	h := &Host{
		name: name, addr: addr, dev: dev, id: id,
		waiters: map[echoKey]chan struct{}{},
		udp:     make(chan Datagram, udpQueueLen),
		done:    make(chan struct{}),
	}
	go h.routineHost() // RoutineHost
	return h
}

// Name returns the host's name ("hostA", "hostB").
func (h *Host) Name() string { return h.name }

// Addr returns the host's address (its EID).
func (h *Host) Addr() netip.Addr { return h.addr }

// Stats returns a snapshot of the host's counters.
func (h *Host) Stats() HostStats {
	return HostStats{
		EchoRequestsAnswered: h.stats.echoAnswered.Load(),
		EchoReplies:          h.stats.echoReplies.Load(),
		UDPReceived:          h.stats.udpReceived.Load(),
		UDPDropped:           h.stats.udpDropped.Load(),
		Malformed:            h.stats.malformed.Load(),
		NotForUs:             h.stats.notForUs.Load(),
	}
}

// Ping sends one echo request with sequence number seq to dst and waits up
// to timeout for the matching reply. It returns the round-trip time, or an
// error wrapping ErrNoReply when none came in time (ErrClosed once the
// host is closed, ctx's error when ctx ended first).
func (h *Host) Ping(ctx context.Context, dst netip.Addr, seq uint16, timeout time.Duration) (time.Duration, error) {
	if timeout <= 0 {
		return 0, fmt.Errorf("%w: ping timeout %v", ErrInvalid, timeout)
	}
	pkt, err := appendEcho(make([]byte, dataplane.OutOffset, dataplane.OutOffset+64), echo{
		src: h.addr, dst: dst, id: h.id, seq: seq, payload: []byte("lispd twosite ping"),
	})
	if err != nil {
		return 0, err
	}
	key := echoKey{peer: dst, id: h.id, seq: seq}
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.waiters == nil {
		h.mu.Unlock()
		return 0, ErrClosed
	}
	if _, busy := h.waiters[key]; busy {
		h.mu.Unlock()
		return 0, fmt.Errorf("%w: a ping to %v with sequence %d is already outstanding", ErrInvalid, dst, seq)
	}
	h.waiters[key] = ch
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		if h.waiters != nil {
			delete(h.waiters, key)
		}
		h.mu.Unlock()
	}()
	start := time.Now()
	if err := h.write(pkt); err != nil {
		return 0, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return time.Since(start), nil
	case <-t.C:
		return 0, fmt.Errorf("%w from %v for sequence %d within %v", ErrNoReply, dst, seq, timeout)
	case <-h.done:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// SendUDP sends a UDP datagram from the host's address and srcPort to dst.
// The payload is at most 1400 bytes.
func (h *Host) SendUDP(srcPort uint16, dst netip.AddrPort, payload []byte) error {
	pkt, err := appendUDP(make([]byte, dataplane.OutOffset, dataplane.OutOffset+ipv4HeaderLen+udpHeaderLen+len(payload)), Datagram{
		Src: netip.AddrPortFrom(h.addr, srcPort), Dst: dst, Payload: payload,
	})
	if err != nil {
		return err
	}
	return h.write(pkt)
}

// ReceiveUDP returns the next UDP datagram addressed to the host, waiting
// until one arrives, the host is closed (ErrClosed) or ctx ends.
func (h *Host) ReceiveUDP(ctx context.Context) (Datagram, error) {
	select {
	case d := <-h.udp:
		return d, nil
	default:
	}
	select {
	case d := <-h.udp:
		return d, nil
	case <-h.done:
		return Datagram{}, ErrClosed
	case <-ctx.Done():
		return Datagram{}, ctx.Err()
	}
}

// Close closes the host's device and waits for RoutineHost to stop.
func (h *Host) Close() error {
	var err error
	h.closeOnce.Do(func() {
		err = h.dev.Close()
		<-h.done
		h.mu.Lock()
		h.waiters = nil
		h.mu.Unlock()
	})
	return err
}

// write writes one packet (at dataplane.OutOffset of pkt) to the device.
func (h *Host) write(pkt []byte) error {
	h.writeMu.Lock()
	n, err := h.dev.Write([][]byte{pkt}, dataplane.OutOffset)
	h.writeMu.Unlock()
	if errors.Is(err, dataplane.ErrClosed) {
		return ErrClosed
	}
	if err != nil {
		return fmt.Errorf("twosite: %s: %w", h.name, err)
	}
	if n != 1 {
		return fmt.Errorf("twosite: %s: the xTR's device queue is full", h.name)
	}
	return nil
}

// routineHost reads packets until the device is closed and handles each.
func (h *Host) routineHost() {
	defer close(h.done)
	const batch = 32
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, dataplane.OutOffset+dataplane.DefaultTUNMTU+64)
	}
	sizes := make([]int, batch)
	reply := make([]byte, 0, dataplane.OutOffset+dataplane.DefaultTUNMTU+64)
	for {
		n, err := h.dev.Read(bufs, sizes, 0)
		if err != nil {
			return // closed: MemDevice.Read fails only then
		}
		for i := range n {
			if sizes[i] > 0 {
				reply = h.handle(bufs[i][:sizes[i]], reply)
			}
		}
	}
}

// handle answers or delivers one received packet; buf is scratch space
// for a reply, returned for reuse.
func (h *Host) handle(pkt, buf []byte) []byte {
	p, err := parsePacket(pkt)
	if err != nil {
		h.stats.malformed.Add(1)
		return buf
	}
	if p.dst != h.addr {
		h.stats.notForUs.Add(1)
		return buf
	}
	switch {
	case p.echo != nil && !p.echo.reply:
		e := *p.echo
		out, err := appendEcho(buf[:dataplane.OutOffset], echo{src: h.addr, dst: e.src, reply: true, id: e.id, seq: e.seq, payload: e.payload})
		if err == nil && h.write(out) == nil {
			h.stats.echoAnswered.Add(1)
		}
		return out[:0]
	case p.echo != nil:
		h.stats.echoReplies.Add(1)
		h.mu.Lock()
		ch := h.waiters[echoKey{peer: p.src, id: p.echo.id, seq: p.echo.seq}]
		h.mu.Unlock()
		if ch != nil {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	case p.udp != nil:
		h.stats.udpReceived.Add(1)
		d := *p.udp
		d.Payload = append([]byte(nil), d.Payload...)
		select {
		case h.udp <- d:
		default:
			h.stats.udpDropped.Add(1)
		}
	}
	return buf
}
