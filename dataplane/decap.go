package dataplane

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"github.com/lispd/lispd/wire"
)

// DecapResult is the outcome of Decap for one datagram.
type DecapResult struct {
	// Deliver is true when the inner packet buf[Start:End] is to be written
	// to the EID-side Device; otherwise Reason says why it was dropped.
	Deliver bool
	// Reason says why the packet was dropped when Deliver is false.
	Reason Reason
	// Start and End delimit the inner packet.
	Start, End int
	// Header is the LISP header: nonce and E bit (echo-nonce), map-versions,
	// Locator-Status-Bits.
	Header wire.DataHeader
	// InstanceID is the packet's instance-ID (0 without the I bit).
	InstanceID uint32
}

// DecapMeta describes a delivered inner packet beyond its instance-ID: the
// RLOC that sent it and the Locator-Status-Bits of its LISP header (RFC
// 9300 section 10), for an ETR that is also an ITR.
type DecapMeta struct {
	// Outer is the outer source address (the sending RLOC), unmapped.
	Outer netip.Addr
	// L reports that the L bit was set: LSB is meaningful.
	L bool
	// LSBLen is the number of Locator-Status-Bits the header had room
	// for: 8 with the I bit, 32 without.
	LSBLen uint8
	// LSB are the Locator-Status-Bits, bit k for the sending site's
	// locator of ordinal k; 0 when L is clear.
	LSB uint32
}

// decapMeta builds the DecapMeta of a delivered packet.
func decapMeta(r *DecapResult, outer netip.Addr) DecapMeta {
	m := DecapMeta{Outer: outer.Unmap(), L: r.Header.L, LSBLen: 32}
	if r.Header.I {
		m.LSBLen = 8
	}
	if m.L {
		m.LSB = r.Header.LSB
	}
	return m
}

// Decapsulator checks and strips LISP headers. It is safe for concurrent
// use: its only state is the EID set (swapped atomically) and counters.
type Decapsulator struct {
	eids atomic.Pointer[EIDSet]

	packets, bytes, ttlCopied, ecnMarked atomic.Uint64
	drops                                dropCounters
}

// NewDecapsulator returns a Decapsulator that delivers packets for the
// prefixes of eids (nil: none until SetEIDs).
func NewDecapsulator(eids *EIDSet) *Decapsulator {
	d := &Decapsulator{}
	d.eids.Store(eids)
	return d
}

// SetEIDs atomically replaces the set of local EID prefixes.
func (d *Decapsulator) SetEIDs(s *EIDSet) { d.eids.Store(s) }

// EIDs returns the current set of local EID prefixes.
func (d *Decapsulator) EIDs() *EIDSet { return d.eids.Load() }

// Stats returns a snapshot of the counters.
func (d *Decapsulator) Stats() DecapStats {
	return DecapStats{
		Packets:   d.packets.Load(),
		Bytes:     d.bytes.Load(),
		TTLCopied: d.ttlCopied.Load(),
		ECNMarked: d.ecnMarked.Load(),
		Drops:     d.drops.snapshot(decapReasons),
	}
}

func (d *Decapsulator) drop(r Reason) DecapResult {
	d.drops.add(r)
	return DecapResult{Reason: r}
}

// Decap checks the LISP datagram buf[off:off+n] (the UDP payload: LISP header
// and inner packet) received with outer metadata m, and returns where the
// inner packet is. It validates the LISP header, the inner IP header (version,
// header length, total length within the datagram, IPv4 header checksum), the
// instance-ID, and that the inner destination is inside the ETR's EID
// prefixes for that instance. Trailing bytes after the inner total length
// are cut off.
//
// As RFC 9300 section 5.3 requires for decapsulation, the inner TTL is
// lowered to the outer TTL when the outer one is smaller (m.TTL 0 means
// unknown), and an outer ECN Congestion Experienced mark is copied to an
// ECN-capable inner header; a non-ECN-capable inner packet with an outer CE
// mark is dropped (RFC 6040 section 4.2). The inner DSCP is left as it is.
// Decap modifies the inner header in place for this and does not allocate.
func (d *Decapsulator) Decap(buf []byte, off, n int, m Meta) DecapResult {
	if off < 0 || n < 0 || off > len(buf) || n > len(buf)-off || n < wire.DataHeaderLen {
		return d.drop(DropBadHeader)
	}
	lh, err := wire.ParseDataHeader(buf[off : off+n])
	if err != nil {
		return d.drop(DropBadHeader)
	}
	start := off + wire.DataHeaderLen
	p := buf[start : off+n]
	h, ok := parseIPHeader(p)
	if !ok {
		return d.drop(DropBadInner)
	}
	p = p[:h.length]
	if h.version == 4 && checksum(p[:h.hdrLen]) != 0 {
		return d.drop(DropBadInner)
	}
	var iid uint32
	if lh.I {
		iid = lh.InstanceID
	}
	served, inside := d.eids.Load().lookup(iid, dstAddr(p, h.version))
	if !served {
		return d.drop(DropWrongIID)
	}
	if !inside {
		return d.drop(DropNotOurEID)
	}
	if m.TOS&0x03 == 0x03 && h.tos&0x03 != 0x03 {
		if h.tos&0x03 == 0 {
			return d.drop(DropECN)
		}
		setTOS(p, h, h.tos|0x03)
		d.ecnMarked.Add(1)
	}
	if m.TTL != 0 && m.TTL < h.ttl {
		setTTL(p, h, m.TTL)
		d.ttlCopied.Add(1)
	}
	d.packets.Add(1)
	d.bytes.Add(uint64(h.length))
	return DecapResult{Deliver: true, Start: start, End: start + h.length, Header: lh, InstanceID: iid}
}

// setTTL rewrites the TTL / hop limit of a parsed packet, keeping the IPv4
// header checksum right.
func setTTL(p []byte, h ipHeader, ttl uint8) {
	if h.version == 4 {
		old := binary.BigEndian.Uint16(p[8:10])
		p[8] = ttl
		updateChecksum16(p[10:12], old, binary.BigEndian.Uint16(p[8:10]))
		return
	}
	p[7] = ttl
}

// setTOS rewrites the TOS / Traffic Class of a parsed packet, keeping the
// IPv4 header checksum right.
func setTOS(p []byte, h ipHeader, tos uint8) {
	if h.version == 4 {
		old := binary.BigEndian.Uint16(p[0:2])
		p[1] = tos
		updateChecksum16(p[10:12], old, binary.BigEndian.Uint16(p[0:2]))
		return
	}
	w := binary.BigEndian.Uint32(p[0:4])
	w = w&^(0xff<<20) | uint32(tos)<<20
	binary.BigEndian.PutUint32(p[0:4], w)
}
