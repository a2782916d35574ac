package dataplane

import (
	"encoding/binary"
	"net/netip"
)

// ICMP sizes.
const (
	icmpHeaderLen = 8
	// icmp4MaxLen is the largest ICMPv4 error (RFC 1812 section 4.3.2.3:
	// as much of the original datagram as fits in 576 bytes).
	icmp4MaxLen = 576
	// icmp6MaxLen is the largest ICMPv6 error (RFC 4443 section 2.4 (c):
	// not exceeding the minimum IPv6 MTU).
	icmp6MaxLen = 1280
	// icmpTTL is the TTL / hop limit of generated errors.
	icmpTTL = 64
)

// tooBig answers a packet that exceeds the effective MTU mtu with an ICMP
// "fragmentation needed" (type 3 code 4, RFC 1191) or ICMPv6 "packet too big"
// (type 2, RFC 4443 section 3.2) back to its source, built in place: the new
// IP and ICMP headers go into the headroom in front of the packet, which is
// quoted (truncated to the ICMP size limit).
func (e *Encapsulator) tooBig(buf []byte, off int, h ipHeader, mtu int) Result {
	p := buf[off : off+h.length]
	if !icmpAllowed(p, h) {
		return e.drop(DropTooBig)
	}
	hdr := ipv4HeaderLen + icmpHeaderLen
	if h.version == 6 {
		hdr = ipv6HeaderLen + icmpHeaderLen
	}
	if off < hdr {
		return e.drop(DropNoHeadroom)
	}
	if !e.allowICMP() {
		e.icmpLimited.Add(1)
		return e.drop(DropTooBig)
	}
	src, dst := dstAddr(p, h.version), srcAddr(p, h.version)
	start := off - hdr
	if h.version == 4 {
		if e.icmpSrc4.IsValid() {
			src = e.icmpSrc4
		}
		q := min(len(p), icmp4MaxLen-hdr)
		e.ipID++
		writeIPv4Header(buf[start:], hdr+q, 0xc0, icmpTTL, protoICMP, e.ipID, false, src, dst)
		m := buf[start+ipv4HeaderLen : off+q]
		m[0], m[1] = 3, 4 // destination unreachable, fragmentation needed
		m[2], m[3] = 0, 0
		m[4], m[5] = 0, 0
		binary.BigEndian.PutUint16(m[6:8], uint16(mtu))
		binary.BigEndian.PutUint16(m[2:4], checksum(m))
		e.icmp4.Add(1)
		return Result{Verdict: VerdictReply, Start: start, End: off + q, MTU: mtu}
	}
	if e.icmpSrc6.IsValid() {
		src = e.icmpSrc6
	}
	q := min(len(p), icmp6MaxLen-hdr)
	writeIPv6Header(buf[start:], icmpHeaderLen+q, 0, icmpTTL, protoICMPv6, 0, src, dst)
	m := buf[start+ipv6HeaderLen : off+q]
	m[0], m[1] = 2, 0 // packet too big
	m[2], m[3] = 0, 0
	binary.BigEndian.PutUint32(m[4:8], uint32(mtu))
	binary.BigEndian.PutUint16(m[2:4], checksumFold(checksumAdd(pseudoHeaderSum(src, dst, protoICMPv6, len(m)), m)))
	e.icmp6.Add(1)
	return Result{Verdict: VerdictReply, Start: start, End: off + q, MTU: mtu}
}

// icmpAllowed applies the rules of RFC 1812 section 4.3.2.7 and RFC 4443
// section 2.4 (e): no ICMP error about an ICMP error, a non-first fragment,
// or a packet whose source is not a unicast address. (A "packet too big" is
// allowed for multicast destinations in IPv6; for IPv4 no error answers a
// multicast or broadcast destination.)
func icmpAllowed(p []byte, h ipHeader) bool {
	src, dst := srcAddr(p, h.version), dstAddr(p, h.version)
	if src.IsUnspecified() || src.IsMulticast() || src.IsLoopback() {
		return false
	}
	if h.version == 4 {
		if h.nonFirst || dst.IsMulticast() || src == netip.AddrFrom4([4]byte{255, 255, 255, 255}) ||
			dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || src.As4()[0] >= 240 {
			return false
		}
	}
	proto, off, ok := transport(p, h)
	if !ok {
		// IPv4 non-first fragment (excluded above) or an IPv6 packet whose
		// transport header cannot be found: an IPv6 fragment may carry an
		// ICMPv6 error, so stay silent unless it is the first fragment of
		// a non-ICMPv6 payload; keep it simple and answer only packets
		// whose transport is known.
		return h.version == 6 && proto == 44 && !ipv6FragIsICMPError(p)
	}
	if off >= len(p) {
		return proto != protoICMP && proto != protoICMPv6
	}
	switch proto {
	case protoICMP:
		switch p[off] {
		case 3, 4, 5, 11, 12: // error messages
			return false
		}
	case protoICMPv6:
		if p[off] < 128 { // error messages
			return false
		}
	}
	return true
}

// ipv6FragIsICMPError reports whether an IPv6 packet whose chain reaches a
// fragment header may carry an ICMPv6 error: true when the fragment is not
// the first or its next header is ICMPv6 and the type cannot be seen.
func ipv6FragIsICMPError(p []byte) bool {
	// Find the fragment header again (transport stopped at it).
	proto, off := p[6], ipv6HeaderLen
	for range maxExtHeaders {
		if off+8 > len(p) {
			return true
		}
		switch proto {
		case 0, 43, 60:
			proto, off = p[off], off+(int(p[off+1])+1)*8
		case 51:
			proto, off = p[off], off+(int(p[off+1])+2)*4
		case 44:
			next := p[off]
			fragOff := binary.BigEndian.Uint16(p[off+2:off+4]) &^ 7
			if fragOff != 0 {
				return true
			}
			if next == protoICMPv6 {
				t := off + 8
				return t >= len(p) || p[t] < 128
			}
			return false
		default:
			return true
		}
	}
	return true
}

// writeIPv4Header writes a 20-byte IPv4 header with its checksum into b.
func writeIPv4Header(b []byte, totalLen int, tos, ttl, proto uint8, id uint16, df bool, src, dst netip.Addr) {
	_ = b[19]
	b[0] = 0x45
	b[1] = tos
	binary.BigEndian.PutUint16(b[2:4], uint16(totalLen))
	binary.BigEndian.PutUint16(b[4:6], id)
	var fl uint16
	if df {
		fl = ipv4DF
	}
	binary.BigEndian.PutUint16(b[6:8], fl)
	b[8] = ttl
	b[9] = proto
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	setIPv4Checksum(b[:ipv4HeaderLen])
}

// writeIPv6Header writes a 40-byte IPv6 header into b.
func writeIPv6Header(b []byte, payloadLen int, tclass, hopLimit, next uint8, flowLabel uint32, src, dst netip.Addr) {
	_ = b[39]
	binary.BigEndian.PutUint32(b[0:4], 6<<28|uint32(tclass)<<20|flowLabel&0xfffff)
	binary.BigEndian.PutUint16(b[4:6], uint16(payloadLen))
	b[6] = next
	b[7] = hopLimit
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
}
