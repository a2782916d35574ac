package mapserver

import (
	"encoding/binary"
	"net/netip"

	"github.com/lispd/lispd/internal/inet"
	"github.com/lispd/lispd/wire"
)

// The request fast path. wire.Parse returns freshly allocated messages (the
// ECM, the Map-Request, its ITR-RLOC and record slices): four allocations
// per request. requestParser decodes the common Map-Request, plain or
// encapsulated, into structures it owns and reuses, so that a steady flow of
// requests allocates nothing. It accepts a subset of what wire.Parse
// accepts and, for that subset, produces exactly what wire.Parse produces
// (fastparse_test.go checks both claims against wire.Parse on random and
// fuzzed input). Anything else, malformed input included, makes it report
// false, and the caller falls back to wire.Parse, so errors and their
// counters are wire's.
//
// The subset: a Map-Request (type 1), or an ECM (type 8) whose inner
// message is one, with at most maxFastRecords records and no Map-Reply
// record (M bit), whose addresses are empty, IPv4, IPv6, or an Instance-ID
// LCAF wrapping one of those.

const (
	// maxFastRecords is the largest record count the fast path takes;
	// senders send one.
	maxFastRecords = 8
	// maxITRRLOCs is the largest ITR-RLOC count a Map-Request can carry.
	maxITRRLOCs = 32
	// maxFastInner is how many Instance-ID LCAFs one request may hold:
	// the Source-EID, every ITR-RLOC and every record.
	maxFastInner = 1 + maxITRRLOCs + maxFastRecords
)

// requestParser holds the reused results of the fast path. The message it
// returns is valid until its next parse; it is not safe for concurrent use.
type requestParser struct {
	ecm   wire.ECM
	req   wire.MapRequest
	itrs  [maxITRRLOCs]wire.Address
	recs  [maxFastRecords]wire.RequestRecord
	inner [maxFastInner]wire.Address
	nin   int
}

// Field layout of the messages the fast path reads.
const (
	lcafHeaderLen  = 8
	ipv4HeaderLen  = 20
	ipv6HeaderLen  = 40
	udpHeaderLen   = 8
	protoUDP       = 17
	ecmFlagS       = 0x08000000
	ecmFlagD       = 0x04000000
	ecmFlagE       = 0x02000000
	ecmFlagM       = 0x01000000
	ecmReserved    = 0x00ffffff
	mreqFlagA      = 0x08000000
	mreqFlagM      = 0x04000000
	mreqFlagP      = 0x02000000
	mreqFlagS      = 0x01000000
	mreqFlagPITR   = 0x00800000
	mreqFlagSMRI   = 0x00400000
	mreqFlagI      = 0x00100000
	mreqFlagL      = 0x00004000
	mreqFlagD      = 0x00002000
	xtrIDTrailerLn = 16 + 8
)

// parse decodes b when it is a Map-Request of the fast path's subset,
// plain or in an ECM. ecm is nil for a plain Map-Request; ok is false when b
// must go through wire.Parse.
func (p *requestParser) parse(b []byte) (req *wire.MapRequest, ecm *wire.ECM, ok bool) {
	if len(b) == 0 {
		return nil, nil, false
	}
	p.nin = 0
	switch wire.MessageType(b[0] >> 4) {
	case wire.TypeMapRequest:
		if !p.parseRequest(b) {
			return nil, nil, false
		}
		return &p.req, nil, true
	case wire.TypeECM:
		payload, ok := p.parseECMHeaders(b)
		if !ok || len(payload) == 0 || wire.MessageType(payload[0]>>4) != wire.TypeMapRequest {
			return nil, nil, false
		}
		if !p.parseRequest(payload) {
			return nil, nil, false
		}
		p.ecm.Inner = &p.req
		return &p.req, &p.ecm, true
	}
	return nil, nil, false
}

// parseECMHeaders decodes the LISP, inner IP and UDP headers of an ECM into
// p.ecm (all but Inner) and returns the UDP payload, with the checks of
// wire's ECM parser.
func (p *requestParser) parseECMHeaders(b []byte) ([]byte, bool) {
	if len(b) < 5 {
		return nil, false
	}
	w := binary.BigEndian.Uint32(b)
	p.ecm = wire.ECM{
		Security: w&ecmFlagS != 0,
		DDT:      w&ecmFlagD != 0,
		ToETR:    w&ecmFlagE != 0,
		ToMS:     w&ecmFlagM != 0,
		Reserved: w & ecmReserved,
	}
	const ipStart = 4
	var (
		src, dst netip.Addr
		udpStart int
		ipEnd    int
	)
	switch b[ipStart] >> 4 {
	case 4:
		if len(b) < ipStart+ipv4HeaderLen {
			return nil, false
		}
		h := b[ipStart : ipStart+ipv4HeaderLen]
		ihl := int(h[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(h[2:]))
		if ihl < ipv4HeaderLen || binary.BigEndian.Uint16(h[6:])&0x3fff != 0 || h[9] != protoUDP ||
			total < ihl+udpHeaderLen || total > len(b)-ipStart {
			return nil, false
		}
		if binary.BigEndian.Uint16(h[10:]) != 0 && checksum(0, b[ipStart:ipStart+ihl]) != 0 {
			return nil, false
		}
		src = netip.AddrFrom4([4]byte(h[12:16]))
		dst = netip.AddrFrom4([4]byte(h[16:20]))
		p.ecm.TTL = h[8]
		udpStart = ipStart + ihl
		ipEnd = ipStart + total
	case 6:
		if len(b) < ipStart+ipv6HeaderLen {
			return nil, false
		}
		h := b[ipStart : ipStart+ipv6HeaderLen]
		off := ipStart + ipv6HeaderLen
		plen := int(binary.BigEndian.Uint16(h[4:]))
		if plen > len(b)-off {
			return nil, false
		}
		ipEnd = off + plen
		src = netip.AddrFrom16([16]byte(h[8:24]))
		dst = netip.AddrFrom16([16]byte(h[24:40]))
		p.ecm.TTL = h[7]
		next := h[6]
		for next == 0 || next == 43 || next == 60 {
			if ipEnd-off < 8 {
				return nil, false
			}
			n := (int(b[off+1]) + 1) * 8
			if ipEnd-off < n {
				return nil, false
			}
			next = b[off]
			off += n
		}
		if next != protoUDP {
			return nil, false
		}
		udpStart = off
	default:
		return nil, false
	}
	if ipEnd-udpStart < udpHeaderLen {
		return nil, false
	}
	u := b[udpStart : udpStart+udpHeaderLen]
	ulen := int(binary.BigEndian.Uint16(u[4:]))
	if ulen < udpHeaderLen || ulen > ipEnd-udpStart {
		return nil, false
	}
	if binary.BigEndian.Uint16(u[6:]) != 0 && udpChecksum(src, dst, b[udpStart:udpStart+ulen]) != 0 {
		return nil, false
	}
	p.ecm.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(u[0:]))
	p.ecm.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(u[2:]))
	p.ecm.Trailing = len(b) - ipEnd
	return b[udpStart+udpHeaderLen : udpStart+ulen], true
}

// parseRequest decodes a Map-Request into p.req.
func (p *requestParser) parseRequest(b []byte) bool {
	if len(b) < 12 {
		return false
	}
	w := binary.BigEndian.Uint32(b)
	if w&mreqFlagM != 0 {
		return false // a Map-Reply record: left to wire
	}
	irc := int(w>>8&0x1f) + 1
	count := int(w & 0xff)
	if count > maxFastRecords {
		return false
	}
	m := &p.req
	*m = wire.MapRequest{
		Authoritative: w&mreqFlagA != 0,
		Probe:         w&mreqFlagP != 0,
		SMR:           w&mreqFlagS != 0,
		PITR:          w&mreqFlagPITR != 0,
		SMRInvoked:    w&mreqFlagSMRI != 0,
		XTRIDPresent:  w&mreqFlagI != 0,
		LocalXTR:      w&mreqFlagL != 0,
		DontMapReply:  w&mreqFlagD != 0,
		Reserved:      w & wire.MapRequestReservedMask,
		Nonce:         binary.BigEndian.Uint64(b[4:]),
	}
	off := 12
	n, ok := p.address(b[off:], &m.SourceEID)
	if !ok {
		return false
	}
	off += n
	for i := range irc {
		if n, ok = p.address(b[off:], &p.itrs[i]); !ok {
			return false
		}
		off += n
	}
	m.ITRRLOCs = p.itrs[:irc:irc]
	if count > 0 {
		for i := range count {
			if len(b)-off < 2 {
				return false
			}
			rec := &p.recs[i]
			rec.NotifyRequested = b[off]&0x80 != 0
			rec.Reserved = b[off] & 0x7f
			rec.MaskLen = b[off+1]
			off += 2
			if n, ok = p.address(b[off:], &rec.EID); !ok {
				return false
			}
			off += n
		}
		m.Records = p.recs[:count:count]
	}
	if m.XTRIDPresent {
		switch n := len(b) - off; {
		case n == 16:
			// lispers.net: the xTR-ID and no site-ID (wire.MapRequest.NoSiteID).
			m.XTRID = wire.XTRID(b[off : off+16])
			m.NoSiteID = true
			off += 16
		case n < xtrIDTrailerLn:
			return false
		default:
			m.XTRID = wire.XTRID(b[off : off+16])
			m.SiteID = binary.BigEndian.Uint64(b[off+16:])
			off += xtrIDTrailerLn
		}
	}
	m.Trailing = len(b) - off
	return true
}

// address decodes an empty, IPv4 or IPv6 address, or an Instance-ID LCAF
// wrapping one, into a, and returns its length.
func (p *requestParser) address(b []byte, a *wire.Address) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	if wire.AFI(binary.BigEndian.Uint16(b)) != wire.AFILCAF {
		return plainAddress(b, a)
	}
	if len(b) < lcafHeaderLen || wire.LCAFType(b[4]) != wire.LCAFInstanceID || p.nin == len(p.inner) {
		return 0, false
	}
	length := int(binary.BigEndian.Uint16(b[6:8]))
	if length < 4+2 || len(b)-lcafHeaderLen < length {
		return 0, false
	}
	body := b[lcafHeaderLen : lcafHeaderLen+length]
	in := &p.inner[p.nin]
	n, ok := plainAddress(body[4:], in)
	if !ok || 4+n != len(body) {
		return 0, false
	}
	p.nin++
	*a = wire.Address{
		AFI:        wire.AFILCAF,
		LCAFType:   wire.LCAFInstanceID,
		LCAFRsvd1:  b[2],
		LCAFFlags:  b[3],
		IIDMaskLen: b[5],
		InstanceID: binary.BigEndian.Uint32(body),
		Inner:      in,
	}
	return lcafHeaderLen + length, true
}

// plainAddress decodes an empty, IPv4 or IPv6 address.
func plainAddress(b []byte, a *wire.Address) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	switch afi := wire.AFI(binary.BigEndian.Uint16(b)); afi {
	case wire.AFINone:
		*a = wire.Address{}
		return 2, true
	case wire.AFIIPv4:
		if len(b) < 2+4 {
			return 0, false
		}
		*a = wire.Address{AFI: afi, IP: netip.AddrFrom4([4]byte(b[2:6]))}
		return 2 + 4, true
	case wire.AFIIPv6:
		if len(b) < 2+16 {
			return 0, false
		}
		*a = wire.Address{AFI: afi, IP: netip.AddrFrom16([16]byte(b[2:18]))}
		return 2 + 16, true
	}
	return 0, false
}

// checksum returns the Internet checksum of b added to the partial sum: 0
// when b holds a correct checksum.
func checksum(sum uint32, b []byte) uint16 { return inet.Fold(inet.Sum(uint64(sum), b)) }

// udpChecksum returns the checksum of the UDP datagram seg (its checksum
// field included) with the pseudo-header of src and dst: 0 when correct.
func udpChecksum(src, dst netip.Addr, seg []byte) uint16 {
	return inet.TransportChecksum(src, dst, protoUDP, seg)
}
