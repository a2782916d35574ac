package dataplane

import "sync/atomic"

// Counter is one named value of a statistics snapshot. Names are stable,
// lower-case and underscore-separated, suitable as metric names or labels.
type Counter struct {
	// Name is the counter's stable name.
	Name string
	// Value is the count.
	Value uint64
}

// Reason says why a packet was dropped (or what else happened to it). Its
// String is a stable metric label.
type Reason uint8

// Reasons. The zero value means no drop.
const (
	ReasonNone Reason = iota
	// DropNoRoute: the lookup function found no tunnel (a map-cache miss
	// or a negative entry); the ITR counts and handles misses itself.
	DropNoRoute
	// DropBadInner: the inner packet is not a well-formed IPv4 or IPv6
	// packet (version, header length, total length, IPv4 header checksum).
	DropBadInner
	// DropBadTunnel: the tunnel is unusable (invalid RLOC, instance-ID over
	// 24 bits, path MTU out of range).
	DropBadTunnel
	// DropNoHeadroom: the buffer has too little room in front of the packet
	// for the headers.
	DropNoHeadroom
	// DropTooBig: the packet exceeds the path MTU and no ICMP error may be
	// sent for it (it is itself an ICMP error, a non-first fragment, from a
	// non-unicast source, ICMP generation is disabled or rate-limited).
	DropTooBig
	// DropNoBuffer: fragmentation needed more spare buffers than the batch
	// has.
	DropNoBuffer
	// DropBadHeader: the UDP payload is too short for a LISP header.
	DropBadHeader
	// DropNotOurEID: the inner destination is not inside the ETR's EID
	// prefixes for the packet's instance-ID.
	DropNotOurEID
	// DropWrongIID: the packet's instance-ID (0 without the I bit) is not
	// one the ETR serves.
	DropWrongIID
	// DropECN: the outer header carries ECN Congestion Experienced and the
	// inner packet is not ECN-capable (RFC 6040 section 4.2: drop).
	DropECN
	// DropUnknownRLOC: the decapsulation filter is on and the outer source
	// address is not an RLOC the ETR knows (Decapsulator.SetRLOCFilter).
	DropUnknownRLOC
	// DropOwnEIDSource: the inner source is inside the ETR's own EID
	// prefixes for the packet's instance-ID: a packet from the site
	// itself cannot arrive from the RLOC network, so it is spoofed.
	DropOwnEIDSource
	// DropLISPCrypto: the LISP header has K bits set (LISP-crypto, RFC
	// 8061): the payload is encrypted and lispd has no key to decrypt it.
	DropLISPCrypto
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonNone:     "none",
	DropNoRoute:    "no_route",
	DropBadInner:   "bad_inner",
	DropBadTunnel:  "bad_tunnel",
	DropNoHeadroom: "no_headroom",
	DropTooBig:     "too_big",
	DropNoBuffer:   "no_buffer",
	DropBadHeader:  "bad_header",
	DropNotOurEID:  "not_our_eid",
	DropWrongIID:   "wrong_iid",
	DropECN:        "ecn_ce_not_ect",

	DropUnknownRLOC:  "unknown_rloc",
	DropOwnEIDSource: "own_eid_source",
	DropLISPCrypto:   "lisp_crypto",
}

// String returns the stable label of the reason.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// dropCounters counts drops by reason.
type dropCounters [numReasons]atomic.Uint64

func (d *dropCounters) add(r Reason) { d[r].Add(1) }

// EncapStats is a snapshot of an Encapsulator's counters.
type EncapStats struct {
	// Packets and Bytes count packets encapsulated (each fragment once)
	// and their inner bytes.
	Packets, Bytes uint64
	// Fragmented counts IPv4 packets split before encapsulation, Fragments
	// the fragments that produced.
	Fragmented, Fragments uint64
	// ICMPFragNeeded counts ICMP "fragmentation needed" messages sent,
	// ICMPv6PacketTooBig ICMPv6 "packet too big" messages.
	ICMPFragNeeded, ICMPv6PacketTooBig uint64
	// ICMPRateLimited counts ICMP errors suppressed by the rate limit (the
	// packet is also counted as dropped too_big).
	ICMPRateLimited uint64
	// Drops counts dropped packets by reason.
	Drops map[Reason]uint64
}

// Counters returns the snapshot as named counters in a stable order:
// packets, bytes, fragmented, fragments, icmp_frag_needed,
// icmpv6_packet_too_big, icmp_rate_limited, then drop_<reason> for every
// drop reason an Encapsulator uses.
func (s EncapStats) Counters() []Counter {
	c := []Counter{
		{"packets", s.Packets},
		{"bytes", s.Bytes},
		{"fragmented", s.Fragmented},
		{"fragments", s.Fragments},
		{"icmp_frag_needed", s.ICMPFragNeeded},
		{"icmpv6_packet_too_big", s.ICMPv6PacketTooBig},
		{"icmp_rate_limited", s.ICMPRateLimited},
	}
	for _, r := range encapReasons {
		c = append(c, Counter{"drop_" + r.String(), s.Drops[r]})
	}
	return c
}

var encapReasons = []Reason{DropNoRoute, DropBadInner, DropBadTunnel, DropNoHeadroom, DropTooBig, DropNoBuffer}

// DecapStats is a snapshot of a Decapsulator's counters.
type DecapStats struct {
	// Packets and Bytes count inner packets delivered and their bytes.
	Packets, Bytes uint64
	// TTLCopied counts packets whose inner TTL was lowered to the outer
	// one, ECNMarked those that took Congestion Experienced from the outer
	// header.
	TTLCopied, ECNMarked uint64
	// Drops counts dropped packets by reason.
	Drops map[Reason]uint64
}

// Counters returns the snapshot as named counters in a stable order:
// packets, bytes, ttl_copied, ecn_marked, then drop_<reason> for every drop
// reason a Decapsulator uses.
func (s DecapStats) Counters() []Counter {
	c := []Counter{
		{"packets", s.Packets},
		{"bytes", s.Bytes},
		{"ttl_copied", s.TTLCopied},
		{"ecn_marked", s.ECNMarked},
	}
	for _, r := range decapReasons {
		c = append(c, Counter{"drop_" + r.String(), s.Drops[r]})
	}
	return c
}

var decapReasons = []Reason{DropBadHeader, DropBadInner, DropWrongIID, DropNotOurEID, DropECN,
	DropUnknownRLOC, DropOwnEIDSource, DropLISPCrypto}

// snapshot copies the drop counters for the given reasons.
func (d *dropCounters) snapshot(rs []Reason) map[Reason]uint64 {
	m := make(map[Reason]uint64, len(rs))
	for _, r := range rs {
		m[r] = d[r].Load()
	}
	return m
}

// LinkStats is a snapshot of the counters of a Device or Conn
// implementation.
type LinkStats struct {
	// RxPackets, RxBytes: packets or datagrams received (read).
	RxPackets, RxBytes uint64
	// TxPackets, TxBytes: packets or datagrams sent (written).
	TxPackets, TxBytes uint64
	// RxDropped: received packets dropped: a full queue (in-memory links)
	// or a datagram larger than the read buffer.
	RxDropped uint64
	// TxDropped: packets that could not be sent: a full queue or no
	// listener (in-memory), a send error (sockets).
	TxDropped uint64
	// TxGSOBatches: UDP GSO messages sent (each carries several datagrams).
	TxGSOBatches uint64
	// TxGSOFallbacks: GSO messages the kernel refused that were re-sent one
	// datagram at a time.
	TxGSOFallbacks uint64
}

// Counters returns the snapshot as named counters in a stable order.
func (s LinkStats) Counters() []Counter {
	return []Counter{
		{"rx_packets", s.RxPackets},
		{"rx_bytes", s.RxBytes},
		{"tx_packets", s.TxPackets},
		{"tx_bytes", s.TxBytes},
		{"rx_dropped", s.RxDropped},
		{"tx_dropped", s.TxDropped},
		{"tx_gso_batches", s.TxGSOBatches},
		{"tx_gso_fallbacks", s.TxGSOFallbacks},
	}
}

// linkCounters are the atomic counters behind LinkStats.
type linkCounters struct {
	rxPackets, rxBytes, txPackets, txBytes atomic.Uint64
	rxDropped, txDropped                   atomic.Uint64
	txGSOBatches, txGSOFallbacks           atomic.Uint64
}

func (c *linkCounters) snapshot() LinkStats {
	return LinkStats{
		RxPackets:      c.rxPackets.Load(),
		RxBytes:        c.rxBytes.Load(),
		TxPackets:      c.txPackets.Load(),
		TxBytes:        c.txBytes.Load(),
		RxDropped:      c.rxDropped.Load(),
		TxDropped:      c.txDropped.Load(),
		TxGSOBatches:   c.txGSOBatches.Load(),
		TxGSOFallbacks: c.txGSOFallbacks.Load(),
	}
}
