// Package traffic generates the lab's ping flows and accounts for every
// packet of them: IPv4 ICMP echo requests and replies built and parsed by
// hand, a pinger that sends each flow's requests on a fixed schedule, a
// responder for the remote destinations, and a ledger that follows each
// request through the LAN, the ITR, the remote destination and back, so
// that every lost packet is put in exactly one category from what was
// observed (see [Ledger.Classify]).
//
// A flow is identified on the wire by its ICMP identifier (the flow's ID)
// and each request of a flow by its sequence number.
package traffic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ICMP echo types (RFC 792).
const (
	EchoReply   = 0
	EchoRequest = 8
)

const (
	ipv4HeaderLen = 20
	icmpHeaderLen = 8
	protoICMP     = 1
	defaultTTL    = 64
)

// Errors returned by this package.
var (
	// ErrNotEcho is returned by ParseEcho for a packet that is not a
	// well-formed IPv4 ICMP echo request or reply.
	ErrNotEcho = errors.New("traffic: not an IPv4 ICMP echo packet")
	// ErrInvalid is wrapped by every argument or configuration error.
	ErrInvalid = errors.New("traffic: invalid argument")
)

// Echo is an ICMP echo request or reply carried in IPv4.
type Echo struct {
	// Src and Dst are the IPv4 addresses.
	Src, Dst netip.Addr
	// Type is EchoRequest or EchoReply.
	Type uint8
	// ID is the ICMP identifier (the lab's flow ID), Seq the sequence
	// number.
	ID, Seq uint16
	// TTL is the IPv4 TTL (64 when building with 0).
	TTL uint8
	// Payload is the echo data. ParseEcho returns a slice of its input.
	Payload []byte
}

// AppendBinary appends e as an IPv4 packet (header checksum and ICMP
// checksum computed) to b.
func (e Echo) AppendBinary(b []byte) ([]byte, error) {
	if !e.Src.Is4() || !e.Dst.Is4() {
		return b, fmt.Errorf("%w: echo addresses must be IPv4", ErrInvalid)
	}
	if e.Type != EchoRequest && e.Type != EchoReply {
		return b, fmt.Errorf("%w: ICMP type %d is not an echo", ErrInvalid, e.Type)
	}
	total := ipv4HeaderLen + icmpHeaderLen + len(e.Payload)
	if total > 65535 {
		return b, fmt.Errorf("%w: echo payload of %d bytes", ErrInvalid, len(e.Payload))
	}
	ttl := e.TTL
	if ttl == 0 {
		ttl = defaultTTL
	}
	start := len(b)
	b = append(b, make([]byte, total)...)
	p := b[start:]
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(total))
	binary.BigEndian.PutUint16(p[4:], e.Seq^e.ID) // identification
	p[6] = 0x40                                   // DF
	p[8] = ttl
	p[9] = protoICMP
	s, d := e.Src.As4(), e.Dst.As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[10:], checksum(p[:ipv4HeaderLen]))
	m := p[ipv4HeaderLen:]
	m[0] = e.Type
	binary.BigEndian.PutUint16(m[4:], e.ID)
	binary.BigEndian.PutUint16(m[6:], e.Seq)
	copy(m[icmpHeaderLen:], e.Payload)
	binary.BigEndian.PutUint16(m[2:], checksum(m))
	return b, nil
}

// ParseEcho parses an IPv4 packet holding an ICMP echo request or reply.
// It checks the version, header length, total length, header checksum,
// protocol, that the packet is not a fragment, and the ICMP checksum.
// Payload is a slice of pkt.
func ParseEcho(pkt []byte) (Echo, error) {
	if len(pkt) < ipv4HeaderLen || pkt[0]>>4 != 4 {
		return Echo{}, ErrNotEcho
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if ihl < ipv4HeaderLen || total < ihl+icmpHeaderLen || total > len(pkt) {
		return Echo{}, ErrNotEcho
	}
	if checksum(pkt[:ihl]) != 0 {
		return Echo{}, fmt.Errorf("%w: bad IPv4 header checksum", ErrNotEcho)
	}
	if pkt[9] != protoICMP {
		return Echo{}, ErrNotEcho
	}
	if frag := binary.BigEndian.Uint16(pkt[6:]); frag&0x3fff != 0 {
		return Echo{}, fmt.Errorf("%w: fragment", ErrNotEcho)
	}
	m := pkt[ihl:total]
	if m[0] != EchoRequest && m[0] != EchoReply || m[1] != 0 {
		return Echo{}, ErrNotEcho
	}
	if checksum(m) != 0 {
		return Echo{}, fmt.Errorf("%w: bad ICMP checksum", ErrNotEcho)
	}
	return Echo{
		Src:     netip.AddrFrom4([4]byte(pkt[12:16])),
		Dst:     netip.AddrFrom4([4]byte(pkt[16:20])),
		Type:    m[0],
		ID:      binary.BigEndian.Uint16(m[4:]),
		Seq:     binary.BigEndian.Uint16(m[6:]),
		TTL:     pkt[8],
		Payload: m[icmpHeaderLen:],
	}, nil
}

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var sum uint32
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
