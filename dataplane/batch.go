package dataplane

import "fmt"

// Batch holds the buffers of one read-process-write cycle and the output
// lists that point into them. It is reused cycle after cycle, so the steady
// state allocates nothing. A Batch belongs to one goroutine at a time.
//
// The packet loop of an ITR is:
//
//	n, err := b.ReadDevice(dev)       // inner packets at Headroom
//	enc.EncapBatch(b, n, lookup)      // fills b.Out/b.OutMeta and b.Reply
//	conn.Write(b.Out, b.OutMeta, OutOffset)
//	dev.Write(b.Reply, OutOffset)     // ICMP errors back to the sources
//
// and of an ETR:
//
//	n, err := b.ReadConn(conn)        // LISP datagrams at ConnOffset
//	dec.DecapBatch(b, n)              // fills b.Out, b.OutIID, b.OutDecap
//	dev.Write(b.Out, OutOffset)
type Batch struct {
	// Bufs are the packet buffers, each of the batch's buffer size.
	Bufs [][]byte
	// Sizes holds the packet lengths a read filled in.
	Sizes []int
	// Meta holds the outer metadata a Conn read filled in.
	Meta []Meta

	// Out lists the packets to write to the other side: each is a slice
	// of a buffer with the packet at offset OutOffset.
	Out [][]byte
	// OutMeta is parallel to Out after EncapBatch: destination RLOC,
	// outer TOS and TTL of each packet.
	OutMeta []Meta
	// OutIID is parallel to Out after DecapBatch: the instance-ID of each
	// inner packet.
	OutIID []uint32
	// OutDecap is parallel to Out after DecapBatch: where each inner packet
	// came from and the Locator-Status-Bits its LISP header carried.
	OutDecap []DecapMeta
	// Reply lists the packets to write back to where the batch came from
	// (ICMP errors to the Device), also at OutOffset.
	Reply [][]byte

	bufSize    int
	spares     [][]byte
	spareSizes []int
}

// NewBatch returns a batch of n buffers of bufSize bytes each. bufSize must
// hold Headroom plus the largest packet (a Device's MTU, or the largest
// datagram a Conn receives plus 8).
func NewBatch(n, bufSize int) (*Batch, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: batch size %d", ErrInvalidConfig, n)
	}
	if bufSize < Headroom+ipv6HeaderLen {
		return nil, fmt.Errorf("%w: buffer size %d below %d", ErrInvalidConfig, bufSize, Headroom+ipv6HeaderLen)
	}
	b := &Batch{
		Bufs:     make([][]byte, n),
		Sizes:    make([]int, n),
		Meta:     make([]Meta, n),
		Out:      make([][]byte, 0, n),
		OutMeta:  make([]Meta, 0, n),
		OutIID:   make([]uint32, 0, n),
		OutDecap: make([]DecapMeta, 0, n),
		Reply:    make([][]byte, 0, n),
		bufSize:  bufSize,
	}
	backing := make([]byte, n*bufSize)
	for i := range b.Bufs {
		b.Bufs[i] = backing[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
	}
	return b, nil
}

// Len is the number of buffers.
func (b *Batch) Len() int { return len(b.Bufs) }

// BufferSize is the size of each buffer.
func (b *Batch) BufferSize() int { return b.bufSize }

// Reset empties the output lists and restores every buffer to its full
// size (a TUN write may have re-sliced output slices).
func (b *Batch) Reset() {
	b.Out = b.Out[:0]
	b.OutMeta = b.OutMeta[:0]
	b.OutIID = b.OutIID[:0]
	b.OutDecap = b.OutDecap[:0]
	b.Reply = b.Reply[:0]
	for i := range b.Bufs {
		b.Bufs[i] = b.Bufs[i][:cap(b.Bufs[i])]
	}
}

// ReadDevice resets the batch and reads inner packets from dev at offset
// Headroom.
func (b *Batch) ReadDevice(dev Device) (int, error) {
	b.Reset()
	return dev.Read(b.Bufs, b.Sizes, Headroom)
}

// ReadConn resets the batch and reads LISP datagrams from c at offset
// ConnOffset, so that inner packets land at Headroom.
func (b *Batch) ReadConn(c Conn) (int, error) {
	b.Reset()
	return c.Read(b.Bufs, b.Sizes, b.Meta, ConnOffset)
}

// out returns the output slice for a packet at buf[start:end].
func out(buf []byte, start, end int) []byte { return buf[start-OutOffset : end] }

// spareBuffers returns the batch's spare buffers (for IPv4 fragments),
// allocating them on first use.
func (b *Batch) spareBuffers() ([][]byte, []int) {
	if b.spares == nil {
		n := len(b.Bufs)
		b.spares = make([][]byte, n)
		b.spareSizes = make([]int, n)
		backing := make([]byte, n*b.bufSize)
		for i := range b.spares {
			b.spares[i] = backing[i*b.bufSize : (i+1)*b.bufSize : (i+1)*b.bufSize]
		}
	}
	return b.spares, b.spareSizes
}

// LookupFunc is the ITR's per-packet decision, called by EncapBatch with the
// inner packet and its FlowHash: the tunnel to encapsulate it into, or ok =
// false to drop it (a map-cache miss, which the ITR counts and answers with
// a Map-Request itself, or a negative entry). The packet must not be
// retained or modified.
type LookupFunc func(inner []byte, flowHash uint32) (t Tunnel, ok bool)

// EncapBatch encapsulates the n packets read into b (at Headroom, lengths in
// b.Sizes) with the tunnels lookup returns, appending the packets to send to
// b.Out/b.OutMeta and the ICMP errors to b.Reply. IPv4 packets without DF
// that exceed the path MTU are fragmented into the batch's spare buffers
// first (RFC 9300 section 7.1). Slots of size 0 are skipped.
func (e *Encapsulator) EncapBatch(b *Batch, n int, lookup LookupFunc) {
	spares, spareSizes := [][]byte(nil), []int(nil)
	spareUsed := 0
	for i := range min(n, len(b.Bufs)) {
		buf, size := b.Bufs[i], b.Sizes[i]
		if size <= 0 {
			continue
		}
		if size > len(buf)-Headroom {
			e.drop(DropBadInner)
			continue
		}
		p := buf[Headroom : Headroom+size]
		h, ok := parseIPHeader(p)
		if !ok {
			e.drop(DropBadInner)
			continue
		}
		hash := flowHash(p[:h.length], h)
		t, ok := lookup(p[:h.length], hash)
		if !ok {
			e.drop(DropNoRoute)
			continue
		}
		r := e.encap(buf, Headroom, h, hash, t, false)
		switch r.Verdict {
		case VerdictSend:
			b.Out = append(b.Out, out(buf, r.Start, r.End))
			b.OutMeta = append(b.OutMeta, r.Meta)
		case VerdictReply:
			b.Reply = append(b.Reply, out(buf, r.Start, r.End))
		case VerdictFragment:
			if spares == nil {
				spares, spareSizes = b.spareBuffers()
			}
			if spareUsed >= len(spares) {
				e.drop(DropNoBuffer)
				continue
			}
			first, k, ok := fragmentIPv4(p[:h.length], h, r.MTU, spares[spareUsed:], Headroom, spareSizes[spareUsed:])
			if !ok {
				e.drop(DropNoBuffer)
				continue
			}
			e.fragmented.Add(1)
			e.fragments.Add(uint64(k + 1))
			if fh, ok := parseIPHeader(p[:first]); ok {
				e.emit(b, buf, fh, hash, t)
			}
			for j := range k {
				sb := spares[spareUsed+j]
				fp := sb[Headroom : Headroom+spareSizes[spareUsed+j]]
				if fh, ok := parseIPHeader(fp); ok {
					e.emit(b, sb, fh, hash, t)
				}
			}
			spareUsed += k
		}
	}
}

// emit encapsulates one fragment and appends it to the output.
func (e *Encapsulator) emit(b *Batch, buf []byte, h ipHeader, hash uint32, t Tunnel) {
	r := e.encap(buf, Headroom, h, hash, t, true)
	if r.Verdict == VerdictSend {
		b.Out = append(b.Out, out(buf, r.Start, r.End))
		b.OutMeta = append(b.OutMeta, r.Meta)
	}
}

// DecapBatch decapsulates the n datagrams read into b by ReadConn (at
// ConnOffset, metadata in b.Meta), appending the inner packets to deliver to
// b.Out, their instance-IDs to b.OutIID, and their outer sources and
// Locator-Status-Bits to b.OutDecap. Slots of size 0 are skipped.
func (d *Decapsulator) DecapBatch(b *Batch, n int) {
	for i := range min(n, len(b.Bufs)) {
		size := b.Sizes[i]
		if size <= 0 {
			continue
		}
		r := d.Decap(b.Bufs[i], ConnOffset, size, b.Meta[i])
		if !r.Deliver {
			continue
		}
		b.Out = append(b.Out, out(b.Bufs[i], r.Start, r.End))
		b.OutIID = append(b.OutIID, r.InstanceID)
		b.OutDecap = append(b.OutDecap, decapMeta(&r, b.Meta[i].Addr.Addr()))
	}
}
