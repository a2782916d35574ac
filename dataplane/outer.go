package dataplane

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// OuterHeader is the outer IP and UDP header of an encapsulated packet, as
// PrependOuter writes it and ParseOuter reads it.
type OuterHeader struct {
	// Src and Dst are the outer addresses (RLOCs); both IPv4 or both IPv6.
	Src, Dst netip.Addr
	// SrcPort and DstPort are the UDP ports (DstPort 4341 for LISP data).
	SrcPort, DstPort uint16
	// TOS is the IPv4 TOS / IPv6 Traffic Class; TTL the TTL / hop limit
	// (PrependOuter uses 64 for 0).
	TOS, TTL uint8
	// DF is the IPv4 Don't Fragment bit; RFC 9300 section 7.1 recommends
	// setting it.
	DF bool
	// ID is the IPv4 identification.
	ID uint16
	// FlowLabel is the 20-bit IPv6 flow label.
	FlowLabel uint32
	// UDPChecksum makes PrependOuter compute the UDP checksum; without it
	// the checksum is 0, which RFC 9300 section 5.3 recommends for LISP
	// data (for IPv6 as RFC 6935 and 6936 allow). ParseOuter sets it when
	// the received checksum is non-zero (and then verifies it).
	UDPChecksum bool
}

// defaultTTL is the outer TTL when none is given.
const defaultTTL = 64

// PrependOuter writes the outer IP and UDP headers of h in front of the UDP
// payload buf[start:end] (the LISP header and inner packet), in place, and
// returns the offset where the outer packet starts. buf[:start] must have
// room for 28 (IPv4) or 48 (IPv6) bytes.
func PrependOuter(buf []byte, start, end int, h OuterHeader) (int, error) {
	src, dst := h.Src.Unmap(), h.Dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return 0, fmt.Errorf("%w: outer addresses %v and %v", ErrAddressFamily, h.Src, h.Dst)
	}
	if start < 0 || end < start || end > len(buf) {
		return 0, fmt.Errorf("%w: payload %d..%d outside buffer of %d", ErrBufferTooSmall, start, end, len(buf))
	}
	ttl := h.TTL
	if ttl == 0 {
		ttl = defaultTTL
	}
	ulen := udpHeaderLen + end - start
	if src.Is4() {
		s := start - ipv4HeaderLen - udpHeaderLen
		if s < 0 {
			return 0, fmt.Errorf("%w: %d bytes of headroom, need %d", ErrBufferTooSmall, start, ipv4HeaderLen+udpHeaderLen)
		}
		if ipv4HeaderLen+ulen > 0xffff {
			return 0, fmt.Errorf("%w: %d-byte payload too long for IPv4", ErrBadPacket, end-start)
		}
		writeIPv4Header(buf[s:], ipv4HeaderLen+ulen, h.TOS, ttl, protoUDP, h.ID, h.DF, src, dst)
		writeUDPHeader(buf[s+ipv4HeaderLen:end], h, src, dst)
		return s, nil
	}
	s := start - ipv6HeaderLen - udpHeaderLen
	if s < 0 {
		return 0, fmt.Errorf("%w: %d bytes of headroom, need %d", ErrBufferTooSmall, start, ipv6HeaderLen+udpHeaderLen)
	}
	if ulen > 0xffff {
		return 0, fmt.Errorf("%w: %d-byte payload too long for IPv6", ErrBadPacket, end-start)
	}
	writeIPv6Header(buf[s:], ulen, h.TOS, ttl, protoUDP, h.FlowLabel, src, dst)
	writeUDPHeader(buf[s+ipv6HeaderLen:end], h, src, dst)
	return s, nil
}

// writeUDPHeader writes the UDP header at the start of seg (header and
// payload) and its checksum when h asks for one.
func writeUDPHeader(seg []byte, h OuterHeader, src, dst netip.Addr) {
	binary.BigEndian.PutUint16(seg[0:2], h.SrcPort)
	binary.BigEndian.PutUint16(seg[2:4], h.DstPort)
	binary.BigEndian.PutUint16(seg[4:6], uint16(len(seg)))
	seg[6], seg[7] = 0, 0
	if h.UDPChecksum {
		c := checksumFold(checksumAdd(pseudoHeaderSum(src, dst, protoUDP, len(seg)), seg))
		if c == 0 {
			c = 0xffff // RFC 768: a computed 0 is sent as all ones
		}
		binary.BigEndian.PutUint16(seg[6:8], c)
	}
}

// ParseOuter parses the outer IPv4 or IPv6 and UDP headers of a captured
// encapsulated packet and returns them with the offset of the UDP payload
// (the LISP header). It checks the IP version, header and total lengths, the
// IPv4 header checksum, the UDP length, and a non-zero UDP checksum. IPv6
// extension headers are not supported (LISP data is sent without them).
// Bytes after the IP total length (link padding) are ignored: the payload is
// pkt[payload : payload+udpLength-8].
func ParseOuter(pkt []byte) (h OuterHeader, payload int, err error) {
	ih, ok := parseIPHeader(pkt)
	if !ok {
		return h, 0, fmt.Errorf("%w: bad outer IP header", ErrBadPacket)
	}
	p := pkt[:ih.length]
	if ih.proto != protoUDP {
		return h, 0, fmt.Errorf("%w: outer protocol %d is not UDP", ErrBadPacket, ih.proto)
	}
	if ih.version == 4 {
		if checksum(p[:ih.hdrLen]) != 0 {
			return h, 0, fmt.Errorf("%w: bad outer IPv4 header checksum", ErrBadPacket)
		}
		if ih.frag {
			return h, 0, fmt.Errorf("%w: outer packet is a fragment", ErrBadPacket)
		}
		fo := binary.BigEndian.Uint16(p[6:8])
		h.DF = fo&ipv4DF != 0
		h.ID = binary.BigEndian.Uint16(p[4:6])
	} else {
		h.FlowLabel = binary.BigEndian.Uint32(p[0:4]) & 0xfffff
	}
	h.Src, h.Dst = srcAddr(p, ih.version), dstAddr(p, ih.version)
	h.TOS, h.TTL = ih.tos, ih.ttl
	seg := p[ih.hdrLen:]
	if len(seg) < udpHeaderLen {
		return h, 0, fmt.Errorf("%w: truncated UDP header", ErrBadPacket)
	}
	ulen := int(binary.BigEndian.Uint16(seg[4:6]))
	if ulen < udpHeaderLen || ulen != len(seg) {
		return h, 0, fmt.Errorf("%w: UDP length %d, IP payload %d", ErrBadPacket, ulen, len(seg))
	}
	h.SrcPort = binary.BigEndian.Uint16(seg[0:2])
	h.DstPort = binary.BigEndian.Uint16(seg[2:4])
	if binary.BigEndian.Uint16(seg[6:8]) != 0 {
		h.UDPChecksum = true
		if checksumFold(checksumAdd(pseudoHeaderSum(h.Src, h.Dst, protoUDP, len(seg)), seg)) != 0 {
			return h, 0, fmt.Errorf("%w: bad UDP checksum", ErrBadPacket)
		}
	}
	return h, ih.hdrLen + udpHeaderLen, nil
}
