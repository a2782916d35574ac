package mapserver

import "net/netip"

// resolve is the Map-Resolver's processing of a Map-Request from an ITR
// (RFC 9301 section 8.4). The request goes to the Map-Server that serves
// the EID: this server's own Map-Server role (a direct call) when one of its
// configured site prefixes holds the EID, else the remote Map-Server with
// the longest matching prefix (or one serving everything), forwarded as an
// ECM with the to-MS (M) bit so that it is not resolved again. When no
// Map-Server serves the EID, the EID is known not to be in the mapping
// database and the Map-Resolver answers itself: RFC 9301 section 8.4, a
// negative Map-Reply with action Natively-Forward and a 15-minute TTL, for
// "the least-specific prefix that both matches the original query and does
// not match any EID-Prefix known to exist" (the known prefixes being the
// local site prefixes, the local registrations and the remote Map-Servers'
// prefixes).
func (s *Server) resolve(r *request) {
	s.ctr.inc(cMRRequestsReceived)
	if r.req.SMR {
		s.ctr.inc(cSMRIgnored)
		return
	}
	iid, eid, ok := r.eid()
	if !ok {
		s.ctr.inc(cRequestsDropped)
		return
	}
	st := s.state.Load()
	host := netip.PrefixFrom(eid, eid.BitLen())
	if s.cfg.MapServer {
		if _, ok := st.sites.coveringPrefix(iid, host); ok {
			s.ctr.inc(cMRForwardedLocal)
			s.ctr.inc(cRequestsReceived)
			s.serveEID(r, st, iid, host)
			return
		}
	}
	if ms := st.sites.remoteFor(iid, host); ms != nil {
		s.forwardToMS(r, ms.addr)
		return
	}
	neg := negativePrefix(eid, 0, st.sites.knownSet.family(iid, eid.Is6()), st.overlapper(iid))
	if s.negativeReply(r, iid, neg, s.cfg.NotConfiguredTTL) {
		s.ctr.inc(cMRNegative)
	}
}

// forwardToMS sends the Map-Request in an ECM to a remote Map-Server's
// control port, keeping the inner IP/UDP header fields as received so that
// the answer goes to the ITR.
func (s *Server) forwardToMS(r *request, ms netip.AddrPort) {
	ecm, ok := r.encapsulation(ms.Addr())
	if !ok {
		s.ctr.inc(cRequestsDropped)
		return
	}
	ecm.ToMS = true
	bp := getBuf()
	b, err := ecm.AppendBinary(*bp)
	if s.sendEncoded(r.out, bp, b, err, ms) {
		s.ctr.inc(cMRForwardedRemote)
	}
}
