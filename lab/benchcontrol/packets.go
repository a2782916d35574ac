package benchcontrol

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/lispd/lispd/wire"
)

// The EID plan. Prefix number i (0 <= i < maxPrefixes) is a /28 in the /9
// of site i%2: 10.0.0.0/9 (HMAC-SHA-1) or 10.128.0.0/9 (HMAC-SHA-256),
// the (i/2)th /28 of it. A run registers prefixes 0 to n-1, so requests
// for an address in prefix i >= n ask for a configured, unregistered EID;
// addresses in 172.16.0.0/12 are in no site at all.
const (
	prefixBits  = 28
	maxPrefixes = 1 << (prefixBits - 9 + 1) // two /9s of /28s: 1,048,576
	// unregisteredPool is how many prefixes at the top of the plan are
	// kept for unregistered requests (never registered by a run).
	unregisteredPool = 4096
	// MaxPrefixes is the largest number of prefixes a run can register.
	MaxPrefixes = maxPrefixes - unregisteredPool
)

// Site numbers, which are also the algorithm index of the first two.
// sitePubSub is the site of the publish/subscribe latency test's prefix
// (pubsubPrefix, HMAC-SHA-256): a site of its own, so that no other phase
// registers or changes its prefix.
const (
	siteSHA1   = 0
	siteSHA256 = 1
	sitePubSub = 2
)

// benchRLOC is the locator every registered prefix maps to.
var benchRLOC = netip.MustParseAddr("127.0.0.2")

// prefixOf returns registered prefix number i.
func prefixOf(i int) netip.Prefix {
	base := uint32(10 << 24)
	if i%2 == siteSHA256 {
		base |= 1 << 23
	}
	a := base + uint32(i/2)<<(32-prefixBits)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a)
	return netip.PrefixFrom(netip.AddrFrom4(b), prefixBits)
}

// siteKey and siteAlg return the key and algorithm of a site.
func siteKey(site int) []byte {
	switch site {
	case siteSHA256:
		return []byte(siteSHA256Key)
	case sitePubSub:
		return []byte(sitePubSubKey)
	}
	return []byte(siteSHA1Key)
}

func siteAlg(site int) wire.AlgorithmID {
	if site == siteSHA256 || site == sitePubSub {
		return wire.AlgHMACSHA256128
	}
	return wire.AlgHMACSHA196
}

// AlgorithmName names a site's algorithm as the config file does.
func algorithmName(site int) string {
	if site == siteSHA256 {
		return "hmac-sha-256"
	}
	return "hmac-sha-1"
}

// benchRecord is the EID record an ETR registers for prefix number i.
func benchRecord(i int) wire.EIDRecord {
	r := wire.NewEIDRecord(0, prefixOf(i))
	r.RecordTTL = 1440
	r.Authoritative = true
	r.Locators = []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Local: true, Address: wire.AddrFrom(benchRLOC)}}
	return r
}

// buildRegister encodes and signs a Map-Register of the given prefixes
// (all of one site) as an ETR sends it, asking for a Map-Notify when
// wantNotify is set.
func buildRegister(site int, prefixes []int, nonce uint64, wantNotify bool) ([]byte, error) {
	recs := make([]wire.EIDRecord, 0, len(prefixes))
	for _, i := range prefixes {
		recs = append(recs, benchRecord(i))
	}
	return buildRegisterRecords(site, recs, nonce, wantNotify)
}

// buildRegisterRecords is buildRegister for any records of the site.
func buildRegisterRecords(site int, recs []wire.EIDRecord, nonce uint64, wantNotify bool) ([]byte, error) {
	m := wire.MapRegister{
		ProxyReply:    true,
		WantMapNotify: wantNotify,
		Nonce:         nonce,
		AlgorithmID:   siteAlg(site),
		Records:       recs,
	}
	b, err := m.AppendBinary(nil)
	if err != nil {
		return nil, fmt.Errorf("benchcontrol: encode Map-Register: %w", err)
	}
	if err := wire.Sign(b, siteKey(site)); err != nil {
		return nil, fmt.Errorf("benchcontrol: sign Map-Register: %w", err)
	}
	return b, nil
}

// Offsets in an ECM Map-Request with an IPv4 inner header (no options).
const (
	ecmUDPChecksumOff = 4 + 20 + 6
	ecmNonceOff       = 4 + 20 + 8 + 4
)

// requestTemplate is an encoded ECM Map-Request with a zero nonce; stamp
// writes a nonce and fixes the inner UDP checksum.
type requestTemplate struct {
	b   []byte
	sum uint16 // the inner UDP checksum with a zero nonce
}

// newRequestTemplate builds the ECM Map-Request an ITR at itr (inner
// source, ITR-RLOC and reply port) sends for eid.
func newRequestTemplate(itr netip.AddrPort, eid netip.Addr) (requestTemplate, error) {
	req := &wire.MapRequest{
		ITRRLOCs: []wire.Address{wire.AddrFrom(itr.Addr())},
		Records:  []wire.RequestRecord{wire.NewRequestRecord(0, netip.PrefixFrom(eid, eid.BitLen()))},
	}
	b, err := wire.NewECM(itr, netip.AddrPortFrom(eid, 4342), req).AppendBinary(nil)
	if err != nil {
		return requestTemplate{}, fmt.Errorf("benchcontrol: encode Map-Request: %w", err)
	}
	if len(b) < ecmNonceOff+8 || b[4]>>4 != 4 {
		return requestTemplate{}, fmt.Errorf("benchcontrol: unexpected ECM layout (%d bytes)", len(b))
	}
	return requestTemplate{b: b, sum: binary.BigEndian.Uint16(b[ecmUDPChecksumOff:])}, nil
}

// stamp writes t (with the nonce) into dst, which must have room, and
// returns the datagram.
func (t *requestTemplate) stamp(dst []byte, nonce uint64) []byte {
	dst = dst[:len(t.b)]
	copy(dst, t.b)
	binary.BigEndian.PutUint64(dst[ecmNonceOff:], nonce)
	// RFC 1624 incremental update from a zero nonce: HC' = ~(~HC + m').
	s := uint32(^t.sum)
	s += uint32(nonce>>48) + uint32(nonce>>32&0xffff) + uint32(nonce>>16&0xffff) + uint32(nonce&0xffff)
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	c := ^uint16(s)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(dst[ecmUDPChecksumOff:], c)
	return dst
}

// Request mix: of every 4 requests, 2 ask for registered EIDs (answered by
// proxy Map-Replies), 1 for a configured but unregistered EID and 1 for an
// EID in no site (both answered with negative Map-Replies).
const templateCount = 4096

// requestTemplates builds the request mix for a run that registered n
// prefixes, from an ITR at itr.
func requestTemplates(itr netip.AddrPort, n int) ([]requestTemplate, error) {
	out := make([]requestTemplate, 0, templateCount)
	for t := range templateCount {
		var eid netip.Addr
		host := uint32(1 + t%14)
		switch {
		case t%4 < 2 && n > 0:
			i := (t / 2 * 7919) % n // spread over the registered prefixes
			eid = addrPlus(prefixOf(i).Addr(), host)
		case t%4 == 3:
			eid = addrPlus(netip.MustParseAddr("172.16.0.0"), uint32(t)*16+host)
		default:
			i := maxPrefixes - 1 - t%unregisteredPool
			eid = addrPlus(prefixOf(i).Addr(), host)
		}
		tmpl, err := newRequestTemplate(itr, eid)
		if err != nil {
			return nil, err
		}
		out = append(out, tmpl)
	}
	return out, nil
}

// addrPlus returns the IPv4 address a+n.
func addrPlus(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := binary.BigEndian.Uint32(b[:]) + n
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// replyNonce returns the nonce of a Map-Reply or Map-Notify (types 2 and
// 4), or false for anything else.
func replyNonce(b []byte, typ wire.MessageType) (uint64, bool) {
	if len(b) < 12 || wire.MessageType(b[0]>>4) != typ {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[4:12]), true
}
