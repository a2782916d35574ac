package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// innerPacketView summarizes the IP packet inside a LISP data packet.
type innerPacketView struct {
	// Version is 4 or 6.
	Version int `json:"version"`
	// Src and Dst are the inner (EID) addresses.
	Src string `json:"src"`
	Dst string `json:"dst"`
	// Protocol names the upper-layer protocol (after any IPv6 extension
	// headers); ProtocolNumber is its number.
	Protocol       string `json:"protocol"`
	ProtocolNumber uint8  `json:"protocol_number"`
	// Length is the packet length its header declares (IPv4 total length,
	// IPv6 40 + payload length).
	Length int `json:"length"`
	// TTL is the IPv4 TTL or IPv6 hop limit.
	TTL uint8 `json:"ttl"`
	// Fragment reports an IPv4 or IPv6 fragment.
	Fragment bool `json:"fragment"`
	// CapturedLength is how many bytes follow the LISP header.
	CapturedLength int `json:"captured_length"`
	// SrcPort and DstPort are the TCP, UDP, SCTP, DCCP or UDP-Lite ports.
	SrcPort *uint16 `json:"src_port,omitempty"`
	DstPort *uint16 `json:"dst_port,omitempty"`
	// ICMPType and ICMPCode are the ICMP or ICMPv6 type and code.
	ICMPType *uint8 `json:"icmp_type,omitempty"`
	ICMPCode *uint8 `json:"icmp_code,omitempty"`
	// ICMPID and ICMPSeq are the identifier and sequence number of an
	// echo request or reply.
	ICMPID  *uint16 `json:"icmp_id,omitempty"`
	ICMPSeq *uint16 `json:"icmp_seq,omitempty"`
}

// IP protocol numbers the summary looks into.
const (
	protoICMP    = 1
	protoTCP     = 6
	protoUDP     = 17
	protoDCCP    = 33
	protoICMPv6  = 58
	protoSCTP    = 132
	protoUDPLite = 136

	ipv6HopByHop = 0
	ipv6Routing  = 43
	ipv6Fragment = 44
	ipv6AH       = 51
	ipv6DestOpts = 60
)

// protoNames are the names of common IP protocol numbers.
var protoNames = map[uint8]string{
	ipv6HopByHop: "IPv6-HopOpt", ipv6Routing: "IPv6-Route", ipv6Fragment: "IPv6-Frag", ipv6DestOpts: "IPv6-Opts",
	protoICMP: "ICMP", 2: "IGMP", 4: "IPIP", protoTCP: "TCP", protoUDP: "UDP", protoDCCP: "DCCP",
	41: "IPv6", 47: "GRE", 50: "ESP", ipv6AH: "AH", protoICMPv6: "ICMPv6", 59: "IPv6-NoNxt",
	89: "OSPF", 103: "PIM", 112: "VRRP", protoSCTP: "SCTP", protoUDPLite: "UDP-Lite",
}

func protoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return "proto-" + strconv.Itoa(int(p))
}

// errInner is the parent of every error about a data packet's inner
// packet.
var errInner = errors.New("decode: inner packet")

// innerErr returns an error about the inner packet.
func innerErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errInner}, args...)...)
}

// parseInnerPacket summarizes the IP packet b that follows a LISP data
// header. It fails for anything that is not an IPv4 or IPv6 packet whose
// header fits in b; a packet whose declared length exceeds b is returned
// with its summary and an error.
func parseInnerPacket(b []byte) (*innerPacketView, error) {
	if len(b) == 0 {
		return nil, innerErr("missing: nothing follows the LISP header")
	}
	switch v := b[0] >> 4; v {
	case 4:
		return parseInnerIPv4(b)
	case 6:
		return parseInnerIPv6(b)
	default:
		return nil, innerErr("IP version %d, want 4 or 6 (first byte 0x%02x)", v, b[0])
	}
}

func parseInnerIPv4(b []byte) (*innerPacketView, error) {
	const minLen = 20
	if len(b) < minLen {
		return nil, innerErr("IPv4 header truncated: %d of %d bytes", len(b), minLen)
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < minLen {
		return nil, innerErr("IPv4 header length %d below %d", ihl, minLen)
	}
	if len(b) < ihl {
		return nil, innerErr("IPv4 header with options truncated: %d of %d bytes", len(b), ihl)
	}
	total := int(binary.BigEndian.Uint16(b[2:]))
	frag := binary.BigEndian.Uint16(b[6:])
	v := &innerPacketView{
		Version:        4,
		Src:            netip.AddrFrom4([4]byte(b[12:16])).String(),
		Dst:            netip.AddrFrom4([4]byte(b[16:20])).String(),
		ProtocolNumber: b[9],
		Protocol:       protoName(b[9]),
		Length:         total,
		TTL:            b[8],
		Fragment:       frag&0x3fff != 0, // MF set or a non-zero offset
		CapturedLength: len(b),
	}
	if total < ihl {
		return v, innerErr("IPv4 total length %d below its header length %d", total, ihl)
	}
	if total > len(b) {
		return v, innerErr("IPv4 total length %d exceeds the %d bytes present", total, len(b))
	}
	if frag&0x1fff == 0 { // the upper-layer header is only in the first fragment
		summarizeUpper(v, b[ihl:total], protoICMP)
	}
	return v, nil
}

func parseInnerIPv6(b []byte) (*innerPacketView, error) {
	const hdrLen = 40
	if len(b) < hdrLen {
		return nil, innerErr("IPv6 header truncated: %d of %d bytes", len(b), hdrLen)
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	v := &innerPacketView{
		Version:        6,
		Src:            netip.AddrFrom16([16]byte(b[8:24])).String(),
		Dst:            netip.AddrFrom16([16]byte(b[24:40])).String(),
		Length:         hdrLen + plen,
		TTL:            b[7],
		CapturedLength: len(b),
	}
	end := hdrLen + plen
	var lenErr error
	if end > len(b) {
		lenErr = innerErr("IPv6 payload length %d exceeds the %d bytes present", plen, len(b)-hdrLen)
		end = len(b)
	}
	// Walk the extension headers to the upper-layer protocol. A header
	// that does not fit ends the walk: the protocol shown is then that
	// extension header's.
	next, off, upper := b[6], hdrLen, true
walk:
	for {
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6DestOpts, ipv6AH, ipv6Fragment:
		default:
			break walk
		}
		if end-off < 8 {
			upper = false
			break
		}
		var n int
		switch next {
		case ipv6Fragment:
			n = 8
			v.Fragment = true
			if binary.BigEndian.Uint16(b[off+2:])&0xfff8 != 0 {
				upper = false // not the first fragment: no upper-layer header
			}
		case ipv6AH:
			n = (int(b[off+1]) + 2) * 4
		default:
			n = (int(b[off+1]) + 1) * 8
		}
		if end-off < n {
			upper = false
			break
		}
		next = b[off]
		off += n
		if !upper {
			break
		}
	}
	v.ProtocolNumber, v.Protocol = next, protoName(next)
	if upper {
		summarizeUpper(v, b[off:end], protoICMPv6)
	}
	return v, lenErr
}

// summarizeUpper fills in the ports or ICMP fields from the upper-layer
// header in b, when enough of it is there. icmp is the ICMP protocol number
// of the IP version (1 or 58).
func summarizeUpper(v *innerPacketView, b []byte, icmp uint8) {
	switch v.ProtocolNumber {
	case protoTCP, protoUDP, protoSCTP, protoDCCP, protoUDPLite:
		if len(b) >= 4 {
			sp, dp := binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
			v.SrcPort, v.DstPort = &sp, &dp
		}
	case icmp:
		if len(b) < 2 {
			return
		}
		t, c := b[0], b[1]
		v.ICMPType, v.ICMPCode = &t, &c
		if isEcho(icmp, t) && len(b) >= 8 {
			id, seq := binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
			v.ICMPID, v.ICMPSeq = &id, &seq
		}
	}
}

// isEcho reports an echo request or reply of ICMP (protocol 1) or ICMPv6.
func isEcho(icmp, t uint8) bool {
	if icmp == protoICMP {
		return t == 0 || t == 8
	}
	return t == 128 || t == 129
}

// icmpTypeName names common ICMP (v4 when icmp is 1) and ICMPv6 types.
func icmpTypeName(icmp, t uint8) string {
	if icmp == protoICMP {
		switch t {
		case 0:
			return "echo-reply"
		case 3:
			return "dest-unreachable"
		case 5:
			return "redirect"
		case 8:
			return "echo-request"
		case 11:
			return "time-exceeded"
		case 12:
			return "parameter-problem"
		}
	} else {
		switch t {
		case 1:
			return "dest-unreachable"
		case 2:
			return "packet-too-big"
		case 3:
			return "time-exceeded"
		case 4:
			return "parameter-problem"
		case 128:
			return "echo-request"
		case 129:
			return "echo-reply"
		case 133:
			return "router-solicitation"
		case 134:
			return "router-advertisement"
		case 135:
			return "neighbor-solicitation"
		case 136:
			return "neighbor-advertisement"
		}
	}
	return "type-" + strconv.Itoa(int(t))
}
