package twosite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// This file builds and parses the few IPv4 packets the embedded hosts
// exchange: ICMP echo requests and replies, and UDP datagrams.

const (
	ipv4HeaderLen = 20
	icmpHeaderLen = 8
	udpHeaderLen  = 8
	protoICMP     = 1
	protoUDP      = 17
	icmpEchoReply = 0
	icmpEchoReq   = 8
	defaultTTL    = 64
	// maxPayload keeps every packet within the xTR's device MTU (1444).
	maxPayload = 1400
)

// errPacket is wrapped by every parse error.
var errPacket = errors.New("twosite: malformed packet")

// echo is an ICMP echo request or reply.
type echo struct {
	src, dst netip.Addr
	reply    bool
	id, seq  uint16
	payload  []byte
}

// Datagram is a UDP datagram a Host sent or received.
type Datagram struct {
	// Src and Dst are the addresses and ports.
	Src, Dst netip.AddrPort
	// Payload is the UDP payload.
	Payload []byte
}

// packet is a parsed IPv4 packet: one of echo or udp is set.
type packet struct {
	src, dst netip.Addr
	echo     *echo
	udp      *Datagram
}

// appendIPv4 appends an IPv4 header for a payload of n bytes.
func appendIPv4(b []byte, src, dst netip.Addr, proto byte, n int) ([]byte, error) {
	if !src.Is4() || !dst.Is4() {
		return b, fmt.Errorf("%w: %v -> %v is not IPv4", ErrInvalid, src, dst)
	}
	if n > maxPayload+udpHeaderLen {
		return b, fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrInvalid, n, maxPayload)
	}
	start := len(b)
	b = append(b, make([]byte, ipv4HeaderLen)...)
	h := b[start:]
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:4], uint16(ipv4HeaderLen+n))
	h[6] = 0x40 // DF
	h[8] = defaultTTL
	h[9] = proto
	s, d := src.As4(), dst.As4()
	copy(h[12:16], s[:])
	copy(h[16:20], d[:])
	binary.BigEndian.PutUint16(h[10:12], ^checksum(0, h))
	return b, nil
}

// appendEcho appends e as an IPv4 packet.
func appendEcho(b []byte, e echo) ([]byte, error) {
	start := len(b)
	b, err := appendIPv4(b, e.src, e.dst, protoICMP, icmpHeaderLen+len(e.payload))
	if err != nil {
		return b[:start], err
	}
	i := len(b)
	b = append(b, icmpEchoReq, 0, 0, 0, 0, 0, 0, 0)
	if e.reply {
		b[i] = icmpEchoReply
	}
	binary.BigEndian.PutUint16(b[i+4:], e.id)
	binary.BigEndian.PutUint16(b[i+6:], e.seq)
	b = append(b, e.payload...)
	binary.BigEndian.PutUint16(b[i+2:], ^checksum(0, b[i:]))
	return b, nil
}

// appendUDP appends d as an IPv4 packet, with the UDP checksum.
func appendUDP(b []byte, d Datagram) ([]byte, error) {
	start := len(b)
	b, err := appendIPv4(b, d.Src.Addr(), d.Dst.Addr(), protoUDP, udpHeaderLen+len(d.Payload))
	if err != nil {
		return b[:start], err
	}
	i := len(b)
	b = binary.BigEndian.AppendUint16(b, d.Src.Port())
	b = binary.BigEndian.AppendUint16(b, d.Dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(udpHeaderLen+len(d.Payload)))
	b = append(b, 0, 0)
	b = append(b, d.Payload...)
	sum := ^checksum(pseudoSum(d.Src.Addr(), d.Dst.Addr(), len(b)-i), b[i:])
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(b[i+6:], sum)
	return b, nil
}

// parsePacket parses an IPv4 ICMP echo or UDP packet, checking every
// length and checksum. The result points into pkt.
func parsePacket(pkt []byte) (packet, error) {
	var p packet
	if len(pkt) < ipv4HeaderLen || pkt[0]>>4 != 4 {
		return p, fmt.Errorf("%w: not IPv4", errPacket)
	}
	hl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if hl < ipv4HeaderLen || total < hl || total > len(pkt) {
		return p, fmt.Errorf("%w: bad IPv4 lengths", errPacket)
	}
	if checksum(0, pkt[:hl]) != 0xffff {
		return p, fmt.Errorf("%w: bad IPv4 header checksum", errPacket)
	}
	if binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 {
		return p, fmt.Errorf("%w: fragment", errPacket)
	}
	p.src = netip.AddrFrom4([4]byte(pkt[12:16]))
	p.dst = netip.AddrFrom4([4]byte(pkt[16:20]))
	body := pkt[hl:total]
	switch pkt[9] {
	case protoICMP:
		if len(body) < icmpHeaderLen || checksum(0, body) != 0xffff {
			return p, fmt.Errorf("%w: bad ICMP length or checksum", errPacket)
		}
		if (body[0] != icmpEchoReq && body[0] != icmpEchoReply) || body[1] != 0 {
			return p, fmt.Errorf("%w: ICMP type %d code %d is not an echo", errPacket, body[0], body[1])
		}
		p.echo = &echo{src: p.src, dst: p.dst, reply: body[0] == icmpEchoReply,
			id: binary.BigEndian.Uint16(body[4:6]), seq: binary.BigEndian.Uint16(body[6:8]), payload: body[icmpHeaderLen:]}
	case protoUDP:
		if len(body) < udpHeaderLen {
			return p, fmt.Errorf("%w: short UDP header", errPacket)
		}
		ul := int(binary.BigEndian.Uint16(body[4:6]))
		if ul < udpHeaderLen || ul > len(body) {
			return p, fmt.Errorf("%w: bad UDP length", errPacket)
		}
		body = body[:ul]
		if binary.BigEndian.Uint16(body[6:8]) != 0 && checksum(pseudoSum(p.src, p.dst, ul), body) != 0xffff {
			return p, fmt.Errorf("%w: bad UDP checksum", errPacket)
		}
		p.udp = &Datagram{
			Src:     netip.AddrPortFrom(p.src, binary.BigEndian.Uint16(body[0:2])),
			Dst:     netip.AddrPortFrom(p.dst, binary.BigEndian.Uint16(body[2:4])),
			Payload: body[udpHeaderLen:],
		}
	default:
		return p, fmt.Errorf("%w: IP protocol %d", errPacket, pkt[9])
	}
	return p, nil
}

// checksum adds b to the ones' complement sum sum and folds it.
func checksum(sum uint32, b []byte) uint16 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// pseudoSum is the sum of the IPv4 pseudo-header of a UDP datagram of n
// bytes.
func pseudoSum(src, dst netip.Addr, n int) uint32 {
	s, d := src.As4(), dst.As4()
	sum := uint32(s[0])<<8 | uint32(s[1])
	sum += uint32(s[2])<<8 | uint32(s[3])
	sum += uint32(d[0])<<8 | uint32(d[1])
	sum += uint32(d[2])<<8 | uint32(d[3])
	return sum + protoUDP + uint32(n)
}
