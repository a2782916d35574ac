package mapserver

import (
	"net/netip"
	"time"

	"github.com/gaissmai/bart"

	"github.com/lispd/lispd/wire"
)

// bartTable is the published table of one instance-ID.
type bartTable = bart.Table[*published]

// request is a Map-Request being handled, with where it came from.
type request struct {
	req *wire.MapRequest
	// ecm is the Encapsulated Control Message that carried req, or nil
	// when req arrived unencapsulated.
	ecm *wire.ECM
	// from is the datagram's (outer) source.
	from netip.AddrPort
	// local is the address the datagram was received on, or the zero Addr.
	local netip.Addr
	// replyPort is where Map-Replies go: the inner UDP source port of the
	// ECM (RFC 9301 section 5.4: the Map-Reply's destination port is the
	// Map-Request's source port), or the datagram's source port.
	replyPort uint16
	// out sends what the request calls for.
	out Sender
}

// eid returns the instance-ID and EID address being asked for.
//
// Map-Requests with several records, SMR and probe bits (RFC 9301 sections
// 5.2, 6.6.2 and 7.1): a sender "MUST only send Map-Requests containing one
// record" while a receiver must accept more; lispd answers the first record
// only, as deployed Map-Servers do (a reply per record would multiply the
// answers to a single packet). The record's EID-prefix is looked up by its
// address (longest match), since ITRs ask with a host-length mask-len.
func (r *request) eid() (uint32, netip.Addr, bool) {
	if len(r.req.Records) == 0 {
		return 0, netip.Addr{}, false
	}
	iid, p, ok := r.req.Records[0].Prefix()
	if !ok {
		return 0, netip.Addr{}, false
	}
	a := p.Addr()
	if a.Is4In6() || a.Zone() != "" {
		return 0, netip.Addr{}, false
	}
	return iid, a, true
}

// wantIPv4 reports which address family replies should use: that of the
// address the request was received on, else that of its source.
func (r *request) wantIPv4() bool {
	if r.local.IsValid() && !r.local.IsUnspecified() {
		return r.local.Is4()
	}
	return r.from.Addr().Is4()
}

// replyTo returns where a Map-Reply goes: the first usable ITR-RLOC of the
// request in the family the reply will be sent from (RFC 9301 section 5.2:
// the ITR-RLOCs let the replier pick an address in a family it can use),
// else the first usable one of the other family, else the inner IP source
// (or the datagram's source), at the request's source port.
func (r *request) replyTo() (netip.AddrPort, bool) {
	port := r.replyPort
	if port == 0 {
		port = ControlPort
	}
	want4 := r.wantIPv4()
	var other netip.Addr
	for i := range r.req.ITRRLOCs {
		_, ip, ok := r.req.ITRRLOCs[i].InstanceIP()
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !usableUnicast(ip) {
			continue
		}
		if ip.Is4() == want4 {
			return netip.AddrPortFrom(ip, port), true
		}
		if !other.IsValid() {
			other = ip
		}
	}
	if other.IsValid() {
		return netip.AddrPortFrom(other, port), true
	}
	src := r.from.Addr()
	if r.ecm != nil {
		src = r.ecm.Source.Addr().Unmap()
	}
	if usableUnicast(src) {
		return netip.AddrPortFrom(src, port), true
	}
	return netip.AddrPort{}, false
}

// serveRequest is the Map-Server's processing of a Map-Request (RFC 9301
// section 8.3): for a registered EID, a proxy Map-Reply when an ETR asked for
// it and the site allows it, else the request forwarded to a registered ETR;
// for an EID not registered, a negative Map-Reply.
func (s *Server) serveRequest(r *request) {
	s.ctr.inc(cRequestsReceived)
	if r.req.SMR {
		// An SMR solicits a Map-Request from an ITR's map-cache (RFC 9301
		// section 6.6.2); a Map-Server has no map-cache to refresh.
		s.ctr.inc(cSMRIgnored)
		return
	}
	iid, eid, ok := r.eid()
	if !ok {
		s.ctr.inc(cRequestsDropped)
		return
	}
	st := s.state.Load()
	s.serveEID(r, st, iid, netip.PrefixFrom(eid, eid.BitLen()))
}

// serveEID is serveRequest once the requested EID (host, in iid) is known
// and st loaded: the Map-Resolver calls it directly for a local Map-Server,
// so a request is not checked and decoded twice.
func (s *Server) serveEID(r *request, st *state, iid uint32, host netip.Prefix) {
	eid := host.Addr()
	sp, configured := st.sites.coveringPrefix(iid, host)
	pub, registered := st.lookup(iid, host)
	if registered && configured && sp.p.Prefix.Bits() > pub.prefix.Prefix.Bits() {
		// A configured prefix more specific than the registered one holds
		// the EID (nested site prefixes): its registrations, not the
		// covering one's, answer for it, and it has none.
		registered = false
	}
	if registered {
		if s.subscribing(r) && s.subscribe(r, iid, pub.prefix.Prefix, false, 0) {
			// The confirmation carries the mapping: it replaces a proxy
			// reply; an ETR that answers itself is asked as well.
			if !pub.proxy {
				s.forwardToETR(r, pub)
			}
			return
		}
		// An RLOC-probe (P bit) asks whether the ETR's locator is
		// reachable (RFC 9301 section 7.1): answering it on the ETR's
		// behalf would be a lie, so probes are always forwarded.
		if pub.proxy && !r.req.Probe {
			s.proxyReply(r, pub)
			return
		}
		s.forwardToETR(r, pub)
		return
	}
	// RFC 9301 section 8.3: an EID in no configured EID-prefix gets a
	// Natively-Forward negative Map-Reply with a 15-minute TTL; one in a
	// configured EID-prefix that no ETR registered gets Natively-Forward
	// with a 1-minute TTL. The answer stays within the most specific known
	// prefix holding the EID (a site prefix, or a prefix a remote
	// Map-Server serves when a request meant for it arrives here), and
	// holds no other known or registered prefix.
	cover, ttl, c := 0, s.cfg.NotConfiguredTTL, cNegativeNotConfigured
	if configured {
		cover, ttl, c = sp.p.Prefix.Bits(), s.cfg.NotRegisteredTTL, cNegativeNotRegistered
	}
	cover = max(cover, st.sites.remoteCoverBits(iid, host))
	var reg overlapper
	if t := st.regTable(iid); t != nil {
		reg = t
		if pub != nil {
			// A registered prefix holds the EID (the nested case above):
			// only registered prefixes inside the answer matter.
			reg = subnetsOnly{t}
		}
	}
	neg := negativePrefix(eid, cover, st.sites.knownSet.family(iid, eid.Is6()), reg)
	if s.subscribing(r) && s.subscribe(r, iid, neg, true, ttl) {
		s.ctr.inc(c)
		return
	}
	if s.negativeReply(r, iid, neg, ttl) {
		s.ctr.inc(c)
	}
}

// overlapper returns the published table of iid as an overlapper, or nil
// (an untyped nil, so that negativePrefix can test it).
func (st *state) overlapper(iid uint32) overlapper {
	if t := st.regTable(iid); t != nil {
		return t
	}
	return nil
}

// subnetsOnly is an overlapper that reports only the prefixes of t inside
// p, ignoring those that contain p: for negative answers within a
// configured prefix nested in a registered one.
type subnetsOnly struct{ t *bartTable }

// OverlapsPrefix reports whether t holds a prefix equal to or inside p.
func (o subnetsOnly) OverlapsPrefix(p netip.Prefix) bool {
	for range o.t.Subnets(p) {
		return true
	}
	return false
}

// proxyReply answers a Map-Request on behalf of the registered ETRs with a
// non-authoritative Map-Reply holding the registered RLOC-set (RFC 9301
// section 8.3).
func (s *Server) proxyReply(r *request, pub *published) {
	if r.req.DontMapReply {
		s.ctr.inc(cRequestsDropped)
		return
	}
	to, ok := r.replyTo()
	if !ok {
		s.ctr.inc(cRequestsDropped)
		return
	}
	var recs [1]wire.EIDRecord
	recs[0] = pub.record
	rep := wire.MapReply{Nonce: r.req.Nonce, Records: recs[:]}
	bp := getBuf()
	b, err := rep.AppendBinary(*bp)
	if s.sendEncoded(r.out, bp, b, err, to) {
		s.ctr.inc(cRequestsProxyReplied)
	}
}

// negativeReply sends a negative Map-Reply (no locators, Natively-Forward)
// for prefix p in iid with the given TTL. It reports whether it was sent.
func (s *Server) negativeReply(r *request, iid uint32, p netip.Prefix, ttl time.Duration) bool {
	if r.req.DontMapReply {
		s.ctr.inc(cRequestsDropped)
		return false
	}
	to, ok := r.replyTo()
	if !ok {
		s.ctr.inc(cRequestsDropped)
		return false
	}
	var (
		recs  [1]wire.EIDRecord
		inner wire.Address
	)
	recs[0] = eidRecord(iid, p, &inner)
	// The Record TTL counts minutes; round up so a sub-minute TTL is not
	// sent as 0 ("remove at once").
	recs[0].RecordTTL = uint32((ttl + time.Minute - 1) / time.Minute)
	recs[0].Action = NegativeAction
	rep := wire.MapReply{Nonce: r.req.Nonce, Records: recs[:]}
	bp := getBuf()
	b, err := rep.AppendBinary(*bp)
	if !s.sendEncoded(r.out, bp, b, err, to) {
		return false
	}
	s.ctr.inc(cNegativeReplies)
	return true
}

// forwardToETR re-encapsulates the Map-Request and sends it to one of the
// registered ETRs (RFC 9301 section 8.3: the Map-Server "does not otherwise
// alter the Map-Request", so the ETR answers the ITR directly). The ECM has
// the to-ETR (E) bit set and keeps the inner IP/UDP addresses and ports of
// the one received. The ETR is picked by the request's nonce, spreading
// requests over the ETRs.
func (s *Server) forwardToETR(r *request, pub *published) {
	want4 := r.wantIPv4()
	if r.ecm == nil {
		// The inner header is built from the datagram's source, so the
		// ETR must be in that family.
		want4 = r.from.Addr().Is4()
	}
	etr, ok := pickTarget(pub.etrs, want4, r.ecm != nil, r.req.Nonce)
	if !ok {
		s.ctr.inc(cRequestsDropped)
		return
	}
	ecm, ok := r.encapsulation(etr)
	if !ok {
		s.ctr.inc(cRequestsDropped)
		return
	}
	ecm.ToETR = true
	bp := getBuf()
	b, err := ecm.AppendBinary(*bp)
	if s.sendEncoded(r.out, bp, b, err, netip.AddrPortFrom(etr, ControlPort)) {
		s.ctr.inc(cRequestsForwarded)
	}
}

// pickTarget chooses one of addrs by nonce, preferring the wanted family;
// anyFamily allows the other family when none matches.
func pickTarget(addrs []netip.Addr, want4, anyFamily bool, nonce uint64) (netip.Addr, bool) {
	n := 0
	for _, a := range addrs {
		if a.Is4() == want4 {
			n++
		}
	}
	if n == 0 {
		if !anyFamily || len(addrs) == 0 {
			return netip.Addr{}, false
		}
		return addrs[nonce%uint64(len(addrs))], true
	}
	k := int(nonce % uint64(n))
	for _, a := range addrs {
		if a.Is4() == want4 {
			if k == 0 {
				return a, true
			}
			k--
		}
	}
	return netip.Addr{}, false
}

// encapsulation returns an ECM carrying the request: with the inner IP and
// UDP header fields of the received ECM, or, for a request that arrived
// unencapsulated, from its source to dst on the control port (which must
// then be of the same family).
func (r *request) encapsulation(dst netip.Addr) (wire.ECM, bool) {
	if r.ecm != nil {
		return wire.ECM{
			Security:    r.ecm.Security,
			Source:      r.ecm.Source,
			Destination: r.ecm.Destination,
			TTL:         r.ecm.TTL,
			Inner:       r.req,
		}, true
	}
	if r.from.Addr().Is4() != dst.Is4() {
		return wire.ECM{}, false
	}
	return wire.ECM{
		Source:      r.from,
		Destination: netip.AddrPortFrom(dst, ControlPort),
		TTL:         64,
		Inner:       r.req,
	}, true
}

// sendEncoded sends the message that AppendBinary returned (b, err) into
// the pooled buffer bp through out, and returns bp to the pool. It reports whether the
// datagram was handed to the Sender successfully. (Callers encode with a
// static call so that the message value does not escape to the heap.)
func (s *Server) sendEncoded(out Sender, bp *[]byte, b []byte, err error, to netip.AddrPort) bool {
	defer func() {
		*bp = b[:0]
		putBuf(bp)
	}()
	if err != nil {
		s.warn("cannot encode message", "to", to, "err", err)
		s.ctr.inc(cRequestsDropped)
		return false
	}
	if err := out.Send(b, to); err != nil {
		s.ctr.inc(cSendErrors)
		s.warn("send failed", "to", to, "err", err)
		return false
	}
	return true
}

// eidRecord is wire.NewEIDRecord(iid, p) with the Instance-ID LCAF's inner
// address in *inner, so that the record can live on the stack.
func eidRecord(iid uint32, p netip.Prefix, inner *wire.Address) wire.EIDRecord {
	if iid == 0 {
		return wire.NewEIDRecord(0, p)
	}
	p = p.Masked()
	*inner = wire.AddrFrom(p.Addr())
	return wire.EIDRecord{
		MaskLen: uint8(p.Bits()),
		EID:     wire.Address{AFI: wire.AFILCAF, LCAFType: wire.LCAFInstanceID, InstanceID: iid, Inner: inner},
	}
}
