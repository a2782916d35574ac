package dataplane

import (
	"fmt"
	"net/netip"
	"sync"
)

// memPacket is a packet in flight on an in-memory link: a private copy of
// the bytes and the metadata.
type memPacket struct {
	b    []byte
	meta Meta
}

// memPool recycles memPackets so that a steady flow allocates nothing.
type memPool struct{ p sync.Pool }

func (m *memPool) get(b []byte) *memPacket {
	p, _ := m.p.Get().(*memPacket)
	if p == nil {
		p = &memPacket{}
	}
	p.b = append(p.b[:0], b...)
	return p
}

func (m *memPool) put(p *memPacket) {
	p.meta = Meta{}
	m.p.Put(p)
}

// memQueue is a bounded packet queue with a close signal. Writers never
// block: a full queue drops. Readers block until a packet or close.
type memQueue struct {
	ch        chan *memPacket
	closed    chan struct{}
	closeOnce sync.Once
}

func newMemQueue(n int) memQueue {
	return memQueue{ch: make(chan *memPacket, n), closed: make(chan struct{})}
}

// push enqueues p; false if the queue is full or closed.
func (q *memQueue) push(p *memPacket) bool {
	select {
	case <-q.closed:
		return false
	default:
	}
	select {
	case q.ch <- p:
		return true
	default:
		return false
	}
}

// pop waits for the first packet (block) or takes one if available.
func (q *memQueue) pop(block bool) (*memPacket, bool) {
	if !block {
		select {
		case p := <-q.ch:
			return p, true
		default:
			return nil, false
		}
	}
	select {
	case p := <-q.ch:
		return p, true
	case <-q.closed:
		return nil, false
	}
}

func (q *memQueue) close() { q.closeOnce.Do(func() { close(q.closed) }) }

func (q *memQueue) isClosed() bool {
	select {
	case <-q.closed:
		return true
	default:
		return false
	}
}

// DefaultMemQueueLen is the default queue length of in-memory links.
const DefaultMemQueueLen = 1024

// MemDevice is one end of an in-memory pair of Devices connected
// back-to-back: what one end writes, the other reads. It starts no
// goroutines; queues are bounded and writes never block (a full queue drops
// and counts).
type MemDevice struct {
	name  string
	mtu   int
	batch int
	in    memQueue
	peer  *MemDevice
	pool  *memPool
	stats linkCounters
}

var _ Device = (*MemDevice)(nil)

// NewMemDevicePair returns two connected in-memory Devices named nameA and
// nameB reporting MTU mtu, each with a receive queue of queueLen packets
// (0 means DefaultMemQueueLen).
func NewMemDevicePair(nameA, nameB string, mtu, queueLen int) (*MemDevice, *MemDevice) {
	if queueLen <= 0 {
		queueLen = DefaultMemQueueLen
	}
	pool := &memPool{}
	a := &MemDevice{name: nameA, mtu: mtu, batch: DefaultBatchSize, in: newMemQueue(queueLen), pool: pool}
	b := &MemDevice{name: nameB, mtu: mtu, batch: DefaultBatchSize, in: newMemQueue(queueLen), pool: pool}
	a.peer, b.peer = b, a
	return a, b
}

// Read implements Device. A packet larger than its buffer is dropped and
// counted.
func (d *MemDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	for n < len(bufs) {
		p, ok := d.in.pop(n == 0)
		if !ok {
			if n == 0 {
				return 0, ErrClosed
			}
			break
		}
		if offset < 0 || offset > len(bufs[n]) || len(p.b) > len(bufs[n])-offset {
			d.stats.rxDropped.Add(1)
			d.pool.put(p)
			continue
		}
		sizes[n] = copy(bufs[n][offset:], p.b)
		d.stats.rxPackets.Add(1)
		d.stats.rxBytes.Add(uint64(sizes[n]))
		d.pool.put(p)
		n++
	}
	return n, nil
}

// Write implements Device: it copies each packet into the peer's queue.
func (d *MemDevice) Write(bufs [][]byte, offset int) (int, error) {
	if d.in.isClosed() {
		return 0, ErrClosed
	}
	n := 0
	for _, b := range bufs {
		if offset < 0 || offset > len(b) {
			d.stats.txDropped.Add(1)
			continue
		}
		p := d.pool.get(b[offset:])
		if !d.peer.in.push(p) {
			d.pool.put(p)
			d.stats.txDropped.Add(1)
			d.peer.stats.rxDropped.Add(1)
			continue
		}
		d.stats.txPackets.Add(1)
		d.stats.txBytes.Add(uint64(len(b) - offset))
		n++
	}
	return n, nil
}

// BatchSize implements Device.
func (d *MemDevice) BatchSize() int { return d.batch }

// MTU implements Device.
func (d *MemDevice) MTU() (int, error) { return d.mtu, nil }

// Name implements Device.
func (d *MemDevice) Name() string { return d.name }

// Close implements Device: it unblocks Read; the peer's writes to this end
// are dropped from then on.
func (d *MemDevice) Close() error {
	d.in.close()
	return nil
}

// Stats returns a snapshot of the device's counters.
func (d *MemDevice) Stats() LinkStats { return d.stats.snapshot() }

// MemNetwork is an in-memory UDP network: Conns bound to addresses exchange
// datagrams by destination address, with bounded queues (a full queue or a
// missing listener drops and counts). It starts no goroutines.
type MemNetwork struct {
	queueLen int
	pool     memPool

	mu       sync.RWMutex // guards the fields below
	conns    map[netip.AddrPort]*MemConn
	nextPort uint16
}

// NewMemNetwork returns an empty network whose Conns have receive queues of
// queueLen datagrams (0 means DefaultMemQueueLen).
func NewMemNetwork(queueLen int) *MemNetwork {
	if queueLen <= 0 {
		queueLen = DefaultMemQueueLen
	}
	return &MemNetwork{queueLen: queueLen, conns: make(map[netip.AddrPort]*MemConn), nextPort: 49152}
}

// Listen binds a Conn to addr. Port 0 picks a free port. An unspecified
// address (0.0.0.0 or ::) receives datagrams for any address of its family
// and port that no more specific Conn holds; datagrams it sends carry the
// unspecified source address, so bind senders to a specific address.
func (n *MemNetwork) Listen(addr netip.AddrPort) (*MemConn, error) {
	a := addr.Addr().Unmap()
	if !a.IsValid() {
		return nil, fmt.Errorf("%w: invalid listen address %v", ErrInvalidConfig, addr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	port := addr.Port()
	if port == 0 {
		for range 16384 {
			p := n.nextPort
			n.nextPort++
			if n.nextPort == 0 {
				n.nextPort = 49152
			}
			if _, used := n.conns[netip.AddrPortFrom(a, p)]; !used {
				port = p
				break
			}
		}
		if port == 0 {
			return nil, fmt.Errorf("%w: no free port on %v", ErrAddrInUse, a)
		}
	}
	ap := netip.AddrPortFrom(a, port)
	if _, used := n.conns[ap]; used {
		return nil, fmt.Errorf("%w: %v", ErrAddrInUse, ap)
	}
	c := &MemConn{net: n, local: ap, batch: DefaultBatchSize, in: newMemQueue(n.queueLen)}
	n.conns[ap] = c
	return c, nil
}

// lookup finds the Conn that receives datagrams for dst.
func (n *MemNetwork) lookup(dst netip.AddrPort) *MemConn {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if c := n.conns[dst]; c != nil {
		return c
	}
	wildcard := netip.IPv6Unspecified()
	if dst.Addr().Is4() {
		wildcard = netip.IPv4Unspecified()
	}
	return n.conns[netip.AddrPortFrom(wildcard, dst.Port())]
}

func (n *MemNetwork) remove(c *MemConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns[c.local] == c {
		delete(n.conns, c.local)
	}
}

// MemConn is a Conn on a MemNetwork.
type MemConn struct {
	net   *MemNetwork
	local netip.AddrPort
	batch int
	in    memQueue
	stats linkCounters
}

var _ Conn = (*MemConn)(nil)

// Read implements Conn. Meta carries the sender's address and the TOS and
// TTL it sent with (TTL 64 when it asked for the default).
func (c *MemConn) Read(bufs [][]byte, sizes []int, meta []Meta, offset int) (int, error) {
	n := 0
	for n < len(bufs) {
		p, ok := c.in.pop(n == 0)
		if !ok {
			if n == 0 {
				return 0, ErrClosed
			}
			break
		}
		if offset < 0 || offset > len(bufs[n]) || len(p.b) > len(bufs[n])-offset {
			c.stats.rxDropped.Add(1)
			c.net.pool.put(p)
			continue
		}
		sizes[n] = copy(bufs[n][offset:], p.b)
		meta[n] = p.meta
		c.stats.rxPackets.Add(1)
		c.stats.rxBytes.Add(uint64(sizes[n]))
		c.net.pool.put(p)
		n++
	}
	return n, nil
}

// Write implements Conn.
func (c *MemConn) Write(bufs [][]byte, meta []Meta, offset int) (int, error) {
	if c.in.isClosed() {
		return 0, ErrClosed
	}
	var firstErr error
	n := 0
	for i, b := range bufs {
		m := meta[i]
		dst := netip.AddrPortFrom(m.Addr.Addr().Unmap(), m.Addr.Port())
		if offset < 0 || offset > len(b) || !dst.Addr().IsValid() || dst.Addr().Is4() != c.local.Addr().Is4() {
			c.stats.txDropped.Add(1)
			if firstErr == nil {
				firstErr = fmt.Errorf("%w: cannot send to %v from %v", ErrAddressFamily, m.Addr, c.local)
			}
			continue
		}
		peer := c.net.lookup(dst)
		if peer == nil {
			// Like UDP: nobody listens, the datagram is lost.
			c.stats.txDropped.Add(1)
			continue
		}
		p := c.net.pool.get(b[offset:])
		ttl := m.TTL
		if ttl == 0 {
			ttl = defaultTTL
		}
		p.meta = Meta{Addr: c.local, TOS: m.TOS, TTL: ttl}
		if !peer.in.push(p) {
			c.net.pool.put(p)
			peer.stats.rxDropped.Add(1)
		}
		c.stats.txPackets.Add(1)
		c.stats.txBytes.Add(uint64(len(b) - offset))
		n++
	}
	return n, firstErr
}

// BatchSize implements Conn.
func (c *MemConn) BatchSize() int { return c.batch }

// LocalAddr implements Conn.
func (c *MemConn) LocalAddr() netip.AddrPort { return c.local }

// Close implements Conn: it unbinds the address and unblocks Read.
func (c *MemConn) Close() error {
	c.in.close()
	c.net.remove(c)
	return nil
}

// Stats returns a snapshot of the Conn's counters. A datagram dropped
// because the receiver's queue was full counts in the receiver's RxDropped;
// one sent to an address nobody listens on counts in the sender's
// TxDropped.
func (c *MemConn) Stats() LinkStats { return c.stats.snapshot() }
