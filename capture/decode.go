package capture

import (
	"encoding/binary"
	"net/netip"

	"github.com/gopacket/gopacket/layers"
)

// Link-layer header types the reader decodes that gopacket does not name.
const (
	// linkTypeDLTRaw is DLT_RAW as most systems number it (12); some
	// writers put the DLT instead of LINKTYPE_RAW (101) in the file.
	linkTypeDLTRaw layers.LinkType = 12
	// linkTypeDLTRawOpenBSD is DLT_RAW as OpenBSD numbers it (14).
	linkTypeDLTRawOpenBSD layers.LinkType = 14
)

// EtherTypes the link decoders follow.
const (
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86DD
	etherTypeVLAN   = 0x8100 // IEEE 802.1Q C-tag
	etherTypeQinQ   = 0x88A8 // IEEE 802.1ad S-tag
	etherTypeQinQv1 = 0x9100 // pre-standard QinQ tag
	etherTypeQinQv2 = 0x9200 // pre-standard QinQ tag
)

// arphrdNetlink is ARPHRD_NETLINK: an SLL/SLL2 frame of this hardware type
// holds a netlink message, and its protocol field is a netlink family.
const arphrdNetlink = 824

// IP protocol numbers the decoders handle.
const (
	protoUDP      = 17
	protoHopOpts  = 0
	protoRouting  = 43
	protoFragment = 44
	protoESP      = 50
	protoAH       = 51
	protoNoNext   = 59
	protoDstOpts  = 60
	protoMobility = 135
	protoHIP      = 139
	protoShim6    = 140
	protoExp1     = 253
	protoExp2     = 254
)

// maxVLANTags bounds how many stacked VLAN tags the Ethernet decoder
// follows; real networks use one or two.
const maxVLANTags = 8

// supportedLinkType reports whether the reader decodes lt.
func supportedLinkType(lt layers.LinkType) bool {
	switch lt {
	case layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2,
		layers.LinkTypeRaw, linkTypeDLTRaw, linkTypeDLTRawOpenBSD,
		layers.LinkTypeIPv4, layers.LinkTypeIPv6,
		layers.LinkTypeNull, layers.LinkTypeLoop:
		return true
	}
	return false
}

// linkPayload strips the link-layer header of frame. It returns the IP
// packet and its version (4 or 6), or version 0 when the frame holds
// something other than IP (which the reader skips).
func linkPayload(lt layers.LinkType, frame []byte) (ip []byte, version int, err error) {
	switch lt {
	case layers.LinkTypeEthernet:
		if len(frame) < 14 {
			return nil, 0, malformed("Ethernet header needs 14 bytes, frame has %d", len(frame))
		}
		return etherPayload(binary.BigEndian.Uint16(frame[12:14]), frame[14:])
	case layers.LinkTypeLinuxSLL:
		// packet type(2) ARPHRD(2) address length(2) address(8) protocol(2)
		if len(frame) < 16 {
			return nil, 0, malformed("Linux SLL header needs 16 bytes, frame has %d", len(frame))
		}
		if binary.BigEndian.Uint16(frame[2:4]) == arphrdNetlink {
			return nil, 0, nil
		}
		return etherPayload(binary.BigEndian.Uint16(frame[14:16]), frame[16:])
	case layers.LinkTypeLinuxSLL2:
		// protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1)
		// address length(1) address(8)
		if len(frame) < 20 {
			return nil, 0, malformed("Linux SLL2 header needs 20 bytes, frame has %d", len(frame))
		}
		if binary.BigEndian.Uint16(frame[8:10]) == arphrdNetlink {
			return nil, 0, nil
		}
		return etherPayload(binary.BigEndian.Uint16(frame[0:2]), frame[20:])
	case layers.LinkTypeRaw, linkTypeDLTRaw, linkTypeDLTRawOpenBSD:
		if len(frame) == 0 {
			return nil, 0, malformed("empty raw IP frame")
		}
		switch frame[0] >> 4 {
		case 4:
			return frame, 4, nil
		case 6:
			return frame, 6, nil
		}
		return nil, 0, malformed("raw IP frame with IP version %d", frame[0]>>4)
	case layers.LinkTypeIPv4:
		return frame, 4, nil
	case layers.LinkTypeIPv6:
		return frame, 6, nil
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if len(frame) < 4 {
			return nil, 0, malformed("loopback header needs 4 bytes, frame has %d", len(frame))
		}
		var family uint32
		if lt == layers.LinkTypeLoop {
			family = binary.BigEndian.Uint32(frame[:4])
		} else {
			// DLT_NULL holds the family in the capturing host's byte
			// order; a value above 0xFFFF was written by the other order.
			family = binary.LittleEndian.Uint32(frame[:4])
			if family > 0xFFFF {
				family = binary.BigEndian.Uint32(frame[:4])
			}
		}
		switch family {
		case 2: // AF_INET everywhere
			return frame[4:], 4, nil
		case 10, 24, 28, 30: // AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD, Darwin
			return frame[4:], 6, nil
		}
		return nil, 0, nil
	}
	return nil, 0, ErrLinkType
}

// etherPayload dispatches on an EtherType, following VLAN tags.
func etherPayload(etherType uint16, b []byte) ([]byte, int, error) {
	for tags := 0; ; tags++ {
		switch etherType {
		case etherTypeIPv4:
			return b, 4, nil
		case etherTypeIPv6:
			return b, 6, nil
		case etherTypeVLAN, etherTypeQinQ, etherTypeQinQv1, etherTypeQinQv2:
			if tags == maxVLANTags {
				return nil, 0, malformed("more than %d stacked VLAN tags", maxVLANTags)
			}
			// TCI(2) then the encapsulated EtherType(2).
			if len(b) < 4 {
				return nil, 0, malformed("VLAN tag needs 4 bytes, %d left", len(b))
			}
			etherType = binary.BigEndian.Uint16(b[2:4])
			b = b[4:]
		default:
			return nil, 0, nil
		}
	}
}

// ipInfo is what the IP decoders learn about one packet.
type ipInfo struct {
	src, dst netip.Addr
	ttl, tos uint8
	// udp is true when the packet carries UDP; the other fields below are
	// meaningful only then.
	udp bool
	// payload is the IP payload (from the UDP header on, or for a
	// non-first fragment, the fragment data), trimmed to the length the
	// IP header declares.
	payload []byte
	// fragment data: set when the packet is a fragment (not for IPv6
	// atomic fragments, which carry a whole datagram).
	fragment bool
	fragOff  int // byte offset of payload in the original datagram
	more     bool
	id       uint32
}

// decodeIPv4 decodes an IPv4 header. With truncated set (the capture cut
// the frame short), a total length beyond the captured bytes is clamped to
// them so the protocol can still be learnt.
func decodeIPv4(b []byte, truncated bool) (ipInfo, error) {
	var p ipInfo
	if len(b) < 20 {
		return p, malformed("IPv4 header needs 20 bytes, %d left", len(b))
	}
	if v := b[0] >> 4; v != 4 {
		return p, malformed("IPv4 link type but IP version %d", v)
	}
	hl := int(b[0]&0x0f) * 4
	if hl < 20 {
		return p, malformed("IPv4 header length %d (IHL %d) below 20", hl, hl/4)
	}
	if hl > len(b) {
		return p, malformed("IPv4 header length %d exceeds the %d bytes left", hl, len(b))
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total < hl {
		return p, malformed("IPv4 total length %d below header length %d", total, hl)
	}
	if total > len(b) {
		if !truncated {
			return p, malformed("IPv4 total length %d exceeds the %d bytes left", total, len(b))
		}
		total = len(b)
	}
	p.tos = b[1]
	p.ttl = b[8]
	p.src = netip.AddrFrom4([4]byte(b[12:16]))
	p.dst = netip.AddrFrom4([4]byte(b[16:20]))
	if b[9] != protoUDP {
		return p, nil
	}
	p.udp = true
	p.payload = b[hl:total]
	flagsOff := binary.BigEndian.Uint16(b[6:8])
	p.more = flagsOff&0x2000 != 0
	p.fragOff = int(flagsOff&0x1fff) * 8
	p.fragment = p.more || p.fragOff != 0
	p.id = uint32(binary.BigEndian.Uint16(b[4:6]))
	return p, nil
}

// decodeIPv6 decodes an IPv6 header and skips its extension headers. With
// truncated set, a payload length beyond the captured bytes is clamped to
// them.
func decodeIPv6(b []byte, truncated bool) (ipInfo, error) {
	var p ipInfo
	if len(b) < 40 {
		return p, malformed("IPv6 header needs 40 bytes, %d left", len(b))
	}
	if v := b[0] >> 4; v != 6 {
		return p, malformed("IPv6 link type but IP version %d", v)
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	next := b[6]
	if plen == 0 && next == protoHopOpts {
		return p, malformed("IPv6 jumbogram (payload length 0 with Hop-by-Hop options) not supported")
	}
	if 40+plen > len(b) {
		if !truncated {
			return p, malformed("IPv6 payload length %d exceeds the %d bytes left", plen, len(b)-40)
		}
		plen = len(b) - 40
	}
	p.tos = uint8(binary.BigEndian.Uint16(b[0:2]) >> 4)
	p.ttl = b[7]
	p.src = netip.AddrFrom16([16]byte(b[8:24]))
	p.dst = netip.AddrFrom16([16]byte(b[24:40]))
	rest := b[40 : 40+plen]
	for {
		switch next {
		case protoUDP:
			p.udp = true
			p.payload = rest
			return p, nil
		case protoHopOpts, protoRouting, protoDstOpts, protoMobility, protoHIP, protoShim6, protoExp1, protoExp2:
			if len(rest) < 2 {
				return p, malformed("IPv6 extension header %d needs 2 bytes, %d left", next, len(rest))
			}
			n := (int(rest[1]) + 1) * 8
			if n > len(rest) {
				return p, malformed("IPv6 extension header %d of %d bytes exceeds the %d bytes left", next, n, len(rest))
			}
			next, rest = rest[0], rest[n:]
		case protoAH:
			if len(rest) < 2 {
				return p, malformed("IPv6 AH header needs 2 bytes, %d left", len(rest))
			}
			n := (int(rest[1]) + 2) * 4
			if n > len(rest) {
				return p, malformed("IPv6 AH header of %d bytes exceeds the %d bytes left", n, len(rest))
			}
			next, rest = rest[0], rest[n:]
		case protoFragment:
			if len(rest) < 8 {
				return p, malformed("IPv6 Fragment header needs 8 bytes, %d left", len(rest))
			}
			offM := binary.BigEndian.Uint16(rest[2:4])
			off := int(offM>>3) * 8
			more := offM&1 != 0
			if off != 0 || more {
				// An atomic fragment (offset 0, M clear) carries a whole
				// datagram and is not marked.
				p.fragment = true
				p.fragOff = off
				p.more = more
				p.id = binary.BigEndian.Uint32(rest[4:8])
			}
			next, rest = rest[0], rest[8:]
			if off != 0 {
				// The upper-layer header is in the first fragment only.
				if next == protoUDP {
					p.udp = true
					p.payload = rest
				}
				return p, nil
			}
		default:
			// TCP, ICMPv6, ESP (opaque), No Next Header and the rest.
			return p, nil
		}
	}
}

// udpHeader is a decoded UDP header.
type udpHeader struct {
	srcPort, dstPort uint16
	checksum         uint16
	payload          []byte
}

// decodeUDP decodes the UDP header at the start of b. With partial set (a
// first fragment), b may end before the length the header declares.
func decodeUDP(b []byte, partial bool) (udpHeader, error) {
	var u udpHeader
	if len(b) < 8 {
		return u, malformed("UDP header needs 8 bytes, %d left", len(b))
	}
	u.srcPort = binary.BigEndian.Uint16(b[0:2])
	u.dstPort = binary.BigEndian.Uint16(b[2:4])
	u.checksum = binary.BigEndian.Uint16(b[6:8])
	n := int(binary.BigEndian.Uint16(b[4:6]))
	if n < 8 {
		return u, malformed("UDP length %d below 8", n)
	}
	switch {
	case n <= len(b):
		u.payload = b[8:n:n]
	case partial:
		u.payload = b[8:len(b):len(b)]
	default:
		return u, malformed("UDP length %d larger than the %d-byte IP payload", n, len(b))
	}
	return u, nil
}
