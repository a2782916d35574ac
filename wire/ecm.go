package wire

import (
	"encoding/binary"
	"net/netip"

	"github.com/lispd/lispd/internal/inet"
)

// ECM is an Encapsulated Control Message (type 8, RFC 9301 section 5.8): a
// LISP header followed by an inner IP header, a UDP header and an inner LISP
// control message. The outer IP/UDP headers are not part of it.
//
//	    0                   1                   2                   3
//	    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	LH |Type=8 |S|D|E|M|            Reserved                           |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	 / |                       IPv4 or IPv6 Header                     |
//	IH |                  (uses RLOC or EID addresses)                 |
//	 \ |                                                               |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	 / |       Source Port = xxxx      |       Dest Port = yyyy        |
//	UDP +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	 \ |           UDP Length          |        UDP Checksum           |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	LCM |                      LISP Control Message                     |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// AppendBinary writes an IPv4 header (no options, identification and flags
// zero, with its header checksum) or an IPv6 header (traffic class and flow
// label zero), and a UDP header with its length and checksum. Parse accepts
// IPv4 options and IPv6 hop-by-hop, routing and destination-options
// extension headers, a zero UDP checksum (not computed) and a zero IPv4
// header checksum (left to the kernel by some senders); non-zero checksums
// must be right. Bytes after the inner IP packet are counted in Trailing.
type ECM struct {
	// Security is the S bit: LISP-SEC data is present.
	Security bool
	// DDT is the D bit: the message was originated by a DDT client.
	DDT bool
	// ToETR is the E bit: a Map-Server forwards the inner Map-Request to an
	// ETR.
	ToETR bool
	// ToMS is the M bit: the inner message goes to a Map-Server.
	ToMS bool
	// Reserved holds the 24 reserved bits of the LISP header.
	Reserved uint32
	// Source is the inner IP source address and UDP source port.
	Source netip.AddrPort
	// Destination is the inner IP destination address and UDP destination
	// port.
	Destination netip.AddrPort
	// TTL is the inner IPv4 TTL or IPv6 hop limit (64 is the usual value).
	TTL uint8
	// Inner is the encapsulated control message.
	Inner Message
	// Trailing is the number of bytes after the inner IP packet that Parse
	// accepted and ignored.
	Trailing int
}

const (
	ecmS = 0x08000000
	ecmD = 0x04000000
	ecmE = 0x02000000
	ecmM = 0x01000000

	// ECMReservedMask selects the reserved bits of an ECM's LISP header.
	ECMReservedMask = 0x00ffffff

	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
	protoUDP      = 17
)

// NewECM returns an ECM carrying inner from src to dst with a TTL of 64.
func NewECM(src, dst netip.AddrPort, inner Message) *ECM {
	return &ECM{Source: src, Destination: dst, TTL: 64, Inner: inner}
}

// Type returns TypeECM.
func (m *ECM) Type() MessageType { return TypeECM }

// ECMPayload returns the inner LISP control message of an encoded ECM as a
// sub-slice of b, after the same checks Parse makes, so a receiver can
// Verify an encapsulated Map-Register over its bytes as received.
func ECMPayload(b []byte) ([]byte, error) {
	_, payload, _, _, err := parseECMHeaders(b)
	return payload, err
}

func parseECM(b []byte) (*ECM, error) {
	m, payload, payloadOff, end, err := parseECMHeaders(b)
	if err != nil {
		return nil, err
	}
	inner, err := parse(payload, 1)
	if err != nil {
		return nil, wrapAt("LISP Control Message", payloadOff, err)
	}
	m.Inner = inner
	m.Trailing = len(b) - end
	return m, nil
}

// parseECMHeaders parses the LISP, IP and UDP headers of an ECM and returns
// the UDP payload, its offset and the offset where the inner IP packet ends.
func parseECMHeaders(b []byte) (m *ECM, payload []byte, payloadOff, ipEnd int, err error) {
	r := reader{b: b}
	w, err := r.u32("Type")
	if err != nil {
		return nil, nil, 0, 0, err
	}
	m = &ECM{
		Security: w&ecmS != 0,
		DDT:      w&ecmD != 0,
		ToETR:    w&ecmE != 0,
		ToMS:     w&ecmM != 0,
		Reserved: w & ECMReservedMask,
	}
	ipStart := r.off
	if err := r.need(1, "inner IP version"); err != nil {
		return nil, nil, 0, 0, err
	}
	var (
		src, dst netip.Addr
		udpStart int // offset of the UDP header
	)
	switch b[ipStart] >> 4 {
	case 4:
		h, err := r.bytes(ipv4HeaderLen, "inner IPv4 header")
		if err != nil {
			return nil, nil, 0, 0, err
		}
		ihl := int(h[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(h[2:]))
		switch {
		case ihl < ipv4HeaderLen:
			return nil, nil, 0, 0, parseErr("inner IPv4 IHL", ipStart, ErrBadHeader)
		case binary.BigEndian.Uint16(h[6:])&0x3fff != 0:
			return nil, nil, 0, 0, parseErr("inner IPv4 fragment", ipStart+6, ErrBadHeader)
		case h[9] != protoUDP:
			return nil, nil, 0, 0, parseErr("inner IPv4 protocol", ipStart+9, ErrBadHeader)
		case total < ihl+udpHeaderLen:
			return nil, nil, 0, 0, parseErr("inner IPv4 total length", ipStart+2, ErrBadLength)
		case total > len(b)-ipStart:
			return nil, nil, 0, 0, parseErr("inner IPv4 packet", len(b), ErrTruncated)
		}
		if binary.BigEndian.Uint16(h[10:]) != 0 && checksum(0, b[ipStart:ipStart+ihl]) != 0 {
			return nil, nil, 0, 0, parseErr("inner IPv4 header checksum", ipStart+10, ErrChecksum)
		}
		src = netip.AddrFrom4([4]byte(h[12:16]))
		dst = netip.AddrFrom4([4]byte(h[16:20]))
		m.TTL = h[8]
		udpStart = ipStart + ihl
		ipEnd = ipStart + total
	case 6:
		h, err := r.bytes(ipv6HeaderLen, "inner IPv6 header")
		if err != nil {
			return nil, nil, 0, 0, err
		}
		plen := int(binary.BigEndian.Uint16(h[4:]))
		if plen > len(b)-r.off {
			return nil, nil, 0, 0, parseErr("inner IPv6 packet", len(b), ErrTruncated)
		}
		ipEnd = r.off + plen
		src = netip.AddrFrom16([16]byte(h[8:24]))
		dst = netip.AddrFrom16([16]byte(h[24:40]))
		m.TTL = h[7]
		next := h[6]
		// Skip the extension headers that can precede UDP in a control
		// message; a fragment header (44) cannot be handled here.
		for next == 0 || next == 43 || next == 60 {
			if ipEnd-r.off < 8 {
				return nil, nil, 0, 0, parseErr("inner IPv6 extension header", r.off, ErrBadLength)
			}
			n := (int(b[r.off+1]) + 1) * 8
			if ipEnd-r.off < n {
				return nil, nil, 0, 0, parseErr("inner IPv6 extension header", r.off, ErrBadLength)
			}
			next = b[r.off]
			r.off += n
		}
		if next != protoUDP {
			return nil, nil, 0, 0, parseErr("inner IPv6 next header", r.off, ErrBadHeader)
		}
		udpStart = r.off
	default:
		return nil, nil, 0, 0, parseErr("inner IP version", ipStart, ErrBadHeader)
	}
	if ipEnd-udpStart < udpHeaderLen {
		return nil, nil, 0, 0, parseErr("inner UDP header", udpStart, ErrBadLength)
	}
	u := b[udpStart : udpStart+udpHeaderLen]
	ulen := int(binary.BigEndian.Uint16(u[4:]))
	if ulen < udpHeaderLen || ulen > ipEnd-udpStart {
		return nil, nil, 0, 0, parseErr("inner UDP length", udpStart+4, ErrBadLength)
	}
	if binary.BigEndian.Uint16(u[6:]) != 0 &&
		udpChecksum(src, dst, b[udpStart:udpStart+ulen]) != 0 {
		return nil, nil, 0, 0, parseErr("inner UDP checksum", udpStart+6, ErrChecksum)
	}
	m.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(u[0:]))
	m.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(u[2:]))
	payloadOff = udpStart + udpHeaderLen
	return m, b[payloadOff : udpStart+ulen], payloadOff, ipEnd, nil
}

// AppendBinary appends the encoded ECM to b: the LISP header, an inner IPv4
// or IPv6 header and a UDP header, both with correct lengths and checksums,
// and the inner message. Source and Destination must be valid addresses of
// the same family.
func (m *ECM) AppendBinary(b []byte) ([]byte, error) {
	orig := len(b)
	src, dst := m.Source.Addr(), m.Destination.Addr()
	switch {
	case m.Inner == nil:
		return b, encodeErr("ECM LISP Control Message", ErrBadValue)
	case m.Inner.Type() == TypeECM:
		return b, encodeErr("ECM inside ECM", ErrBadValue)
	case !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() || src.Zone() != "" || dst.Zone() != "":
		return b, encodeErr("ECM inner addresses", ErrBadValue)
	}
	if err := checkReserved(m.Reserved, ECMReservedMask, "ECM Reserved"); err != nil {
		return b, err
	}
	w := uint32(TypeECM)<<28 | m.Reserved
	for _, f := range [...]struct {
		set bool
		bit uint32
	}{{m.Security, ecmS}, {m.DDT, ecmD}, {m.ToETR, ecmE}, {m.ToMS, ecmM}} {
		if f.set {
			w |= f.bit
		}
	}
	b = appendU32(b, w)
	ipStart := len(b)
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		b = append(b, 0x45, 0, 0, 0, 0, 0, 0, 0, m.TTL, protoUDP, 0, 0)
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	} else {
		s, d := src.As16(), dst.As16()
		b = append(b, 0x60, 0, 0, 0, 0, 0, protoUDP, m.TTL)
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	}
	udpStart := len(b)
	b = appendU16(b, m.Source.Port())
	b = appendU16(b, m.Destination.Port())
	b = append(b, 0, 0, 0, 0)
	b, err := m.Inner.AppendBinary(b)
	if err != nil {
		return b[:orig], err
	}
	ulen := len(b) - udpStart
	if len(b)-ipStart > 0xffff {
		return b[:orig], encodeErr("ECM inner packet length", ErrBadValue)
	}
	binary.BigEndian.PutUint16(b[udpStart+4:], uint16(ulen))
	if src.Is4() {
		binary.BigEndian.PutUint16(b[ipStart+2:], uint16(len(b)-ipStart))
		binary.BigEndian.PutUint16(b[ipStart+10:], checksum(0, b[ipStart:udpStart]))
	} else {
		binary.BigEndian.PutUint16(b[ipStart+4:], uint16(ulen))
	}
	c := udpChecksum(src, dst, b[udpStart:])
	if c == 0 {
		// A computed checksum of zero is sent as all ones (RFC 768).
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[udpStart+6:], c)
	return b, nil
}

// checksum returns the Internet checksum of b added to the partial sum: 0
// when b holds a correct checksum.
func checksum(sum uint32, b []byte) uint16 { return inet.Fold(inet.Sum(uint64(sum), b)) }

// udpChecksum returns the checksum of the UDP datagram seg (its checksum
// field included) with the pseudo-header of src and dst: 0 when correct.
func udpChecksum(src, dst netip.Addr, seg []byte) uint16 {
	return inet.TransportChecksum(src, dst, protoUDP, seg)
}
