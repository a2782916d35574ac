package dataplane

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"github.com/lispd/lispd/wire"
)

// keyBits are the two K bits of the LISP header's first byte (the KK
// field of RFC 8061 section 3): 0 means the payload is not encrypted, 1 to
// 3 name the LISP-crypto key that encrypted it. wire.DataHeader keeps them
// in the low bits of Reserved.
const keyBits = 0x03

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
// use: its only state is the EID set and the decapsulation filter (each
// swapped atomically) and counters.
type Decapsulator struct {
	eids  atomic.Pointer[EIDSet]
	rlocs atomic.Pointer[RLOCSet]       // nil: every outer source is accepted
	check atomic.Pointer[RLOCCheckFunc] // nil: no second opinion

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

// SetRLOCFilter atomically replaces the decapsulation filter: with a
// non-nil set, only datagrams whose outer source address is in it are
// decapsulated (the others are dropped as DropUnknownRLOC); nil turns the
// filter off.
func (d *Decapsulator) SetRLOCFilter(s *RLOCSet) { d.rlocs.Store(s) }

// RLOCFilter returns the decapsulation filter in force, nil when it is off.
func (d *Decapsulator) RLOCFilter() *RLOCSet { return d.rlocs.Load() }

// RLOCCheckFunc is the decapsulation filter's second opinion on a datagram
// whose outer source is not in its RLOCSet: ok = true accepts it. iid and
// src are the inner packet's instance-ID and source address, outer the
// outer source address (unmapped). An ETR that is also an ITR accepts an
// outer source that is an RLOC of its map-cache entry for src. It is
// called on the packet path: it must not block, and should not allocate.
type RLOCCheckFunc func(iid uint32, src, outer netip.Addr) bool

// SetRLOCCheck sets (nil: removes) the filter's second opinion. It is
// consulted only while a filter is set (SetRLOCFilter).
func (d *Decapsulator) SetRLOCCheck(f RLOCCheckFunc) {
	if f == nil {
		d.check.Store(nil)
		return
	}
	d.check.Store(&f)
}

// Dropped returns how many datagrams were dropped for reason r, without
// the allocation of Stats.
func (d *Decapsulator) Dropped(r Reason) uint64 {
	if r >= numReasons {
		return 0
	}
	return d.drops[r].Load()
}

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
// inner packet is. In this order it checks: that the outer source m.Addr is
// in the decapsulation filter, when there is one (DropUnknownRLOC; with an
// RLOCCheckFunc, a source outside the set is instead checked last, once
// the inner source is known); the LISP header (DropBadHeader), whose K
// bits must be clear (DropLISPCrypto: the payload of a LISP-crypto packet,
// RFC 8061, is ciphertext, and lispd has no keys); the inner IP header
// (version, header length, total length within the datagram, IPv4 header
// checksum; DropBadInner); the instance-ID (DropWrongIID); that the inner
// destination is inside the ETR's EID prefixes for that instance
// (DropNotOurEID); and that the inner source is not (DropOwnEIDSource: a
// packet from the site's own EIDs comes from inside the site, never
// through the RLOC network, so such a packet is spoofed). Trailing bytes
// after the inner total length are cut off.
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
	// The filter: an outer source outside the set is dropped at once, or,
	// when there is a second opinion to ask, once the inner source is
	// known.
	var outer netip.Addr
	var check RLOCCheckFunc
	if f := d.rlocs.Load(); f != nil {
		if outer = m.Addr.Addr().Unmap(); !f.Contains(outer) {
			c := d.check.Load()
			if c == nil {
				return d.drop(DropUnknownRLOC)
			}
			check = *c
		}
	}
	lh, err := wire.ParseDataHeader(buf[off : off+n])
	if err != nil {
		return d.drop(DropBadHeader)
	}
	if lh.Reserved&keyBits != 0 {
		return d.drop(DropLISPCrypto)
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
	eids := d.eids.Load()
	served, inside := eids.lookup(iid, dstAddr(p, h.version))
	if !served {
		return d.drop(DropWrongIID)
	}
	if !inside {
		return d.drop(DropNotOurEID)
	}
	src := srcAddr(p, h.version)
	if _, own := eids.lookup(iid, src); own {
		return d.drop(DropOwnEIDSource)
	}
	if check != nil && !check(iid, src, outer) {
		return d.drop(DropUnknownRLOC)
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
