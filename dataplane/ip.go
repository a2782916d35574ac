package dataplane

import (
	"encoding/binary"
	"net/netip"

	"github.com/lispd/lispd/internal/inet"
)

// IP protocol numbers and header sizes used on the packet path.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132

	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8

	// ipv4 flags (in the 16-bit flags/fragment-offset word)
	ipv4DF      = 0x4000
	ipv4MF      = 0x2000
	ipv4OffMask = 0x1fff
)

// ipHeader holds the fields of an IP header the packet path needs.
type ipHeader struct {
	version  uint8
	hdrLen   int   // IPv4 IHL*4, IPv6 40 (extension headers are payload)
	length   int   // total length the header claims
	tos      uint8 // IPv4 TOS or IPv6 Traffic Class
	ttl      uint8 // TTL or hop limit
	proto    uint8 // IPv4 protocol or IPv6 next header
	df       bool  // IPv4 Don't Fragment
	frag     bool  // IPv4 MF set or fragment offset non-zero
	nonFirst bool  // IPv4 fragment offset non-zero
}

// parseIPHeader checks that p starts with a well-formed IPv4 or IPv6 header
// whose length fields fit in p, and returns its fields. The packet may be
// followed by trailing bytes (h.length < len(p)); the caller decides whether
// to trim them. ok is false for anything else.
func parseIPHeader(p []byte) (h ipHeader, ok bool) {
	if len(p) < 1 {
		return h, false
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) < ipv4HeaderLen {
			return h, false
		}
		hl := int(p[0]&0x0f) * 4
		tl := int(binary.BigEndian.Uint16(p[2:4]))
		if hl < ipv4HeaderLen || hl > len(p) || tl < hl || tl > len(p) {
			return h, false
		}
		fo := binary.BigEndian.Uint16(p[6:8])
		h = ipHeader{
			version:  4,
			hdrLen:   hl,
			length:   tl,
			tos:      p[1],
			ttl:      p[8],
			proto:    p[9],
			df:       fo&ipv4DF != 0,
			frag:     fo&(ipv4MF|ipv4OffMask) != 0,
			nonFirst: fo&ipv4OffMask != 0,
		}
		return h, true
	case 6:
		if len(p) < ipv6HeaderLen {
			return h, false
		}
		tl := ipv6HeaderLen + int(binary.BigEndian.Uint16(p[4:6]))
		if tl > len(p) {
			return h, false
		}
		h = ipHeader{
			version: 6,
			hdrLen:  ipv6HeaderLen,
			length:  tl,
			tos:     uint8(binary.BigEndian.Uint16(p[0:2]) >> 4),
			ttl:     p[7],
			proto:   p[6],
		}
		return h, true
	}
	return h, false
}

// srcAddr and dstAddr return the addresses of a packet that parseIPHeader
// accepted.
func srcAddr(p []byte, v uint8) netip.Addr {
	if v == 4 {
		return netip.AddrFrom4([4]byte(p[12:16]))
	}
	return netip.AddrFrom16([16]byte(p[8:24]))
}

func dstAddr(p []byte, v uint8) netip.Addr {
	if v == 4 {
		return netip.AddrFrom4([4]byte(p[16:20]))
	}
	return netip.AddrFrom16([16]byte(p[24:40]))
}

// maxExtHeaders bounds the IPv6 extension-header walk.
const maxExtHeaders = 8

// transport finds the transport header of a packet that parseIPHeader
// accepted (p trimmed to h.length). It walks IPv6 extension headers. off is
// the offset of the transport header; ok is false for non-first fragments,
// IPv6 fragments of any kind (their ports may be absent), an ESP or unknown
// chain, or a truncated chain. For IPv4 fragments with offset 0 ok is true.
func transport(p []byte, h ipHeader) (proto uint8, off int, ok bool) {
	if h.version == 4 {
		if h.nonFirst {
			return h.proto, 0, false
		}
		return h.proto, h.hdrLen, true
	}
	proto, off = h.proto, ipv6HeaderLen
	for range maxExtHeaders {
		switch proto {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if off+2 > len(p) {
				return proto, 0, false
			}
			next, l := p[off], (int(p[off+1])+1)*8
			proto, off = next, off+l
		case 51: // AH
			if off+2 > len(p) {
				return proto, 0, false
			}
			next, l := p[off], (int(p[off+1])+2)*4
			proto, off = next, off+l
		case 44: // fragment
			return proto, 0, false
		default:
			return proto, off, off <= len(p)
		}
	}
	return proto, 0, false
}

// checksumAdd adds b to the ones'-complement sum acc (not yet folded).
func checksumAdd(acc uint64, b []byte) uint64 { return inet.Sum(acc, b) }

// checksumFold folds acc to 16 bits and complements it.
func checksumFold(acc uint64) uint16 { return inet.Fold(acc) }

// checksum is the Internet checksum of b (RFC 1071).
func checksum(b []byte) uint16 { return inet.Checksum(b) }

// pseudoHeaderSum is the unfolded sum of the IPv4 or IPv6 pseudo-header for a
// transport segment of length l with protocol proto.
func pseudoHeaderSum(src, dst netip.Addr, proto uint8, l int) uint64 {
	return inet.PseudoHeaderSum(src, dst, proto, l)
}

// setIPv4Checksum recomputes the header checksum of the IPv4 header h.
func setIPv4Checksum(h []byte) {
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:12], checksum(h))
}

// updateChecksum16 adjusts the checksum at c for a 16-bit field changing from
// old to new (RFC 1624 eqn. 3).
func updateChecksum16(c []byte, old, new uint16) {
	sum := uint32(^binary.BigEndian.Uint16(c)) + uint32(^old) + uint32(new)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(c, ^uint16(sum))
}
