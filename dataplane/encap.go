package dataplane

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/wire"
)

// Path MTU limits and defaults.
const (
	// DefaultPathMTU is the path MTU assumed when none is configured: an
	// Ethernet RLOC network.
	DefaultPathMTU = 1500
	// MinPathMTU and MaxPathMTU bound a configured path MTU.
	MinPathMTU = 576
	MaxPathMTU = 65535
	// DefaultICMPRate is the default number of ICMP errors an Encapsulator
	// generates per second at most (RFC 4443 section 2.4 (f) requires a
	// limit).
	DefaultICMPRate = 100
)

// Encapsulation overheads: outer IP + UDP + LISP header.
const (
	overhead4 = ipv4HeaderLen + udpHeaderLen + wire.DataHeaderLen // 36
	overhead6 = ipv6HeaderLen + udpHeaderLen + wire.DataHeaderLen // 56
)

// Overhead returns the bytes LISP encapsulation adds to a packet sent to an
// RLOC of rloc's family: 36 for IPv4, 56 for IPv6 (outer IP header, UDP
// header, LISP header).
func Overhead(rloc netip.Addr) int {
	if rloc.Is4() || rloc.Is4In6() {
		return overhead4
	}
	return overhead6
}

// EncapConfig configures an Encapsulator. The zero value is usable.
type EncapConfig struct {
	// PathMTU is L of RFC 9300 section 7.1: the largest outer packet, IP
	// header included, the RLOC network carries to an ETR without
	// fragmentation. 0 means DefaultPathMTU; InterfaceMTU reads the MTU
	// of the interface that owns the local RLOC. Tunnel.PathMTU overrides
	// it per packet.
	PathMTU int
	// Nonces supplies the 24-bit nonces; nil means NewRandomNonces().
	Nonces NonceSource
	// ICMPSource4 and ICMPSource6 are the source addresses of the ICMP
	// errors the Encapsulator generates. An invalid (zero) address means
	// the destination address of the packet that caused the error, so the
	// error seems to come from the far end of the tunnel.
	ICMPSource4, ICMPSource6 netip.Addr
	// ICMPRate limits the ICMP errors generated per second (burst of the
	// same size). 0 means DefaultICMPRate; a negative value disables ICMP
	// generation (packets too big are then dropped and counted).
	ICMPRate int
	// OuterHeaders makes Encap write the outer IP and UDP headers too
	// (PrependOuter), for raw sockets, captures and tests. Tunnel.Src must
	// then be a valid address of the same family as Tunnel.Dst. Without it
	// only the LISP header is written and the kernel adds IP and UDP (a UDP
	// socket).
	OuterHeaders bool
}

// Tunnel is the ITR's decision for one packet: where and how to
// encapsulate it.
type Tunnel struct {
	// Src is the local RLOC (outer source address). It may be the zero
	// Addr when a UDP socket sends (the kernel chooses), unless
	// EncapConfig.OuterHeaders is set.
	Src netip.Addr
	// Dst is the remote RLOC (outer destination address).
	Dst netip.Addr
	// InstanceID is the 24-bit instance-ID; 0 means none (the I bit is
	// clear).
	InstanceID uint32
	// PathMTU overrides EncapConfig.PathMTU when non-zero.
	PathMTU int
	// Nonce, when non-zero, is sent instead of a fresh random nonce (to
	// echo a nonce, RFC 9300 section 10.1).
	Nonce uint32
	// EchoNonceRequest sets the E bit.
	EchoNonceRequest bool
	// L sets the L bit: LSB carries the Locator-Status-Bits of the source
	// site's locator-set (RFC 9300 section 10), bit k for the locator of
	// ordinal k. With an instance-ID only the low 8 bits fit and the rest
	// are left out; without L the field is sent as 0.
	L bool
	// LSB are the Locator-Status-Bits sent when L is set.
	LSB uint32
}

// Verdict says what Encap did with a packet.
type Verdict uint8

// Verdicts.
const (
	// VerdictDrop: the packet was dropped; Result.Reason says why.
	VerdictDrop Verdict = iota
	// VerdictSend: buf[Start:End] is the encapsulated packet to send to
	// Result.Meta.Addr.
	VerdictSend
	// VerdictReply: buf[Start:End] is an ICMP error to write back to the
	// Device (the packet was too big).
	VerdictReply
	// VerdictFragment: the packet is an IPv4 packet without DF that exceeds
	// the path MTU; it has to be fragmented before encapsulation, which
	// EncapBatch does (it needs spare buffers). buf is unchanged.
	VerdictFragment
)

// Result is the outcome of Encap for one packet.
type Result struct {
	// Verdict says what happened to the packet.
	Verdict Verdict
	// Reason is set when Verdict is VerdictDrop.
	Reason Reason
	// Start and End delimit the output packet in the buffer.
	Start, End int
	// Meta is the destination (RLOC, port 4341), outer TOS and TTL for
	// VerdictSend.
	Meta Meta
	// SrcPort is the flow's outer UDP source port (SourcePort of the flow
	// hash).
	SrcPort uint16
	// MTU is the effective inner MTU (path MTU minus overhead) the packet
	// was checked against.
	MTU int
}

// Encapsulator prepends LISP headers to inner packets in place. It is not
// safe for concurrent use: give each packet loop its own. Stats may be
// called from any goroutine.
type Encapsulator struct {
	pathMTU      int
	nonces       NonceSource
	icmpSrc4     netip.Addr
	icmpSrc6     netip.Addr
	outerHeaders bool
	ipID         uint16

	// ICMP token bucket (owned by the packet goroutine).
	icmpRate   int
	icmpTokens float64
	icmpLast   time.Time

	packets, bytes, fragmented, fragments atomic.Uint64
	icmp4, icmp6, icmpLimited             atomic.Uint64
	drops                                 dropCounters
}

// NewEncapsulator returns an Encapsulator for cfg.
func NewEncapsulator(cfg EncapConfig) (*Encapsulator, error) {
	if cfg.PathMTU == 0 {
		cfg.PathMTU = DefaultPathMTU
	}
	if cfg.PathMTU < MinPathMTU || cfg.PathMTU > MaxPathMTU {
		return nil, fmt.Errorf("%w: path MTU %d outside %d..%d", ErrInvalidConfig, cfg.PathMTU, MinPathMTU, MaxPathMTU)
	}
	if cfg.ICMPSource4.IsValid() && !cfg.ICMPSource4.Is4() {
		return nil, fmt.Errorf("%w: ICMP source %v is not IPv4", ErrInvalidConfig, cfg.ICMPSource4)
	}
	if cfg.ICMPSource6.IsValid() && (!cfg.ICMPSource6.Is6() || cfg.ICMPSource6.Is4In6()) {
		return nil, fmt.Errorf("%w: ICMPv6 source %v is not IPv6", ErrInvalidConfig, cfg.ICMPSource6)
	}
	if cfg.ICMPRate == 0 {
		cfg.ICMPRate = DefaultICMPRate
	}
	if cfg.Nonces == nil {
		cfg.Nonces = NewRandomNonces()
	}
	e := &Encapsulator{
		pathMTU:      cfg.PathMTU,
		nonces:       cfg.Nonces,
		icmpSrc4:     cfg.ICMPSource4,
		icmpSrc6:     cfg.ICMPSource6,
		outerHeaders: cfg.OuterHeaders,
		icmpRate:     cfg.ICMPRate,
		icmpTokens:   float64(max(cfg.ICMPRate, 0)),
	}
	return e, nil
}

// Stats returns a snapshot of the counters.
func (e *Encapsulator) Stats() EncapStats {
	return EncapStats{
		Packets:            e.packets.Load(),
		Bytes:              e.bytes.Load(),
		Fragmented:         e.fragmented.Load(),
		Fragments:          e.fragments.Load(),
		ICMPFragNeeded:     e.icmp4.Load(),
		ICMPv6PacketTooBig: e.icmp6.Load(),
		ICMPRateLimited:    e.icmpLimited.Load(),
		Drops:              e.drops.snapshot(encapReasons),
	}
}

// drop counts a drop and returns its Result.
func (e *Encapsulator) drop(r Reason) Result {
	e.drops.add(r)
	return Result{Verdict: VerdictDrop, Reason: r}
}

// Encap encapsulates the inner packet buf[off:off+n] for tunnel t, in place:
// the LISP header (and with EncapConfig.OuterHeaders the outer UDP and IP
// headers) is written into buf[:off], which must have room for it
// (Headroom is enough). Trailing bytes beyond the inner header's total
// length are cut off. A packet that exceeds the path MTU is answered with an
// ICMP error written in place (VerdictReply) or, for IPv4 without DF,
// reported as VerdictFragment. Encap does not allocate.
func (e *Encapsulator) Encap(buf []byte, off, n int, t Tunnel) Result {
	if off < 0 || n < 0 || off > len(buf) || n > len(buf)-off {
		return e.drop(DropBadInner)
	}
	p := buf[off : off+n]
	h, ok := parseIPHeader(p)
	if !ok {
		return e.drop(DropBadInner)
	}
	return e.encap(buf, off, h, flowHash(p[:h.length], h), t, false)
}

// encap is Encap for a packet already parsed and hashed. fragment is true
// for a fragment EncapBatch made, which must not be reported as too big
// again.
func (e *Encapsulator) encap(buf []byte, off int, h ipHeader, hash uint32, t Tunnel, fragment bool) Result {
	n := h.length
	if h.ttl == 0 {
		return e.drop(DropBadInner)
	}
	dst := t.Dst.Unmap()
	if !dst.IsValid() || t.InstanceID > 0xffffff || (t.PathMTU != 0 && (t.PathMTU < MinPathMTU || t.PathMTU > MaxPathMTU)) {
		return e.drop(DropBadTunnel)
	}
	ovh := Overhead(dst)
	need := wire.DataHeaderLen
	if e.outerHeaders {
		need = ovh
		if src := t.Src.Unmap(); !src.IsValid() || src.Is4() != dst.Is4() {
			return e.drop(DropBadTunnel)
		}
	}
	if off < need {
		return e.drop(DropNoHeadroom)
	}
	mtu := e.pathMTU
	if t.PathMTU != 0 {
		mtu = t.PathMTU
	}
	inner := mtu - ovh
	if n > inner && !fragment {
		if h.version == 4 && !h.df {
			return Result{Verdict: VerdictFragment, MTU: inner, SrcPort: SourcePort(hash)}
		}
		return e.tooBig(buf, off, h, inner)
	}

	nonce := t.Nonce & 0xffffff
	if nonce == 0 {
		nonce = e.nonces.Nonce() & 0xffffff
	}
	lh := wire.DataHeader{N: true, E: t.EchoNonceRequest, Nonce: nonce}
	if t.L {
		lh.L = true
		lh.LSB = t.LSB
	}
	if t.InstanceID != 0 {
		lh.I = true
		lh.InstanceID = t.InstanceID
		lh.LSB &= 0xff
	}
	start := off - wire.DataHeaderLen
	if _, err := lh.AppendBinary(buf[start:start]); err != nil {
		// Unreachable: every field was range-checked above.
		return e.drop(DropBadTunnel)
	}
	r := Result{
		Verdict: VerdictSend,
		Start:   start,
		End:     off + n,
		Meta:    Meta{Addr: netip.AddrPortFrom(dst, LISPDataPort), TOS: h.tos, TTL: h.ttl},
		SrcPort: SourcePort(hash),
		MTU:     inner,
	}
	if e.outerHeaders {
		e.ipID++
		s, err := PrependOuter(buf, r.Start, r.End, OuterHeader{
			Src: t.Src.Unmap(), Dst: dst,
			SrcPort: r.SrcPort, DstPort: LISPDataPort,
			TOS: h.tos, TTL: h.ttl, DF: true, ID: e.ipID,
		})
		if err != nil {
			return e.drop(DropBadTunnel)
		}
		r.Start = s
	}
	e.packets.Add(1)
	e.bytes.Add(uint64(n))
	return r
}

// allowICMP takes a token from the ICMP rate limiter.
func (e *Encapsulator) allowICMP() bool {
	if e.icmpRate < 0 {
		return false
	}
	now := time.Now()
	if !e.icmpLast.IsZero() {
		e.icmpTokens += now.Sub(e.icmpLast).Seconds() * float64(e.icmpRate)
		if e.icmpTokens > float64(e.icmpRate) {
			e.icmpTokens = float64(e.icmpRate)
		}
	}
	e.icmpLast = now
	if e.icmpTokens < 1 {
		return false
	}
	e.icmpTokens--
	return true
}
