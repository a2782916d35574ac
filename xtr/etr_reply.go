package xtr

import (
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/wire"
)

// requester is an ITR that asked for one of the ETR's mappings, or that
// SolicitITRs names: the ITR's address (the one its Map-Reply went to; SMRs
// go to its ControlPort, whatever port the reply went to), the database
// prefix it got, and the EID it asked from (the Source-EID of its
// Map-Request, the zero Addr when it sent none). A queued SMR with now set
// (SolicitITRsNow) does not wait for the registration holdoff.
type requester struct {
	itr netip.Addr
	iid uint32
	pfx netip.Prefix
	eid netip.Addr
	now bool
}

// handleRequest answers a Map-Request for one of the ETR's EIDs with an
// authoritative Map-Reply (RFC 9301 sections 5.4 and 8.3): ecm is the
// Encapsulated Control Message a Map-Server forwarded it in, or nil when it
// came directly. An RLOC-probe (P bit) is answered with a Map-Reply with the
// P bit, to the probe's source address and port, with the p bit on the
// probed locator (RFC 9301 section 7.1). Any other request is answered at
// the first ITR-RLOC of the family the ETR can answer from, at the request's
// UDP source port (the inner one of an ECM). The first record is answered,
// as Map-Servers do; requests for EIDs outside the database are dropped and
// counted. The ITR is remembered for SMRs, and its RLOCs are learned by the
// decapsulation filter (gleanRequest).
func (e *ETR) handleRequest(req *wire.MapRequest, ecm *wire.ECM, from netip.AddrPort, local netip.Addr) {
	e.ctr.inc(eRequestsReceived)
	if req.SMR {
		// An SMR solicits a Map-Request from an ITR's map-cache; an
		// ETR has none (the daemon gives SMRs to its ITR).
		e.ctr.inc(eSMRsIgnored)
		return
	}
	if len(req.Records) == 0 {
		e.ctr.inc(eRequestsDropped)
		return
	}
	iid, pfx, ok := req.Records[0].Prefix()
	if !ok {
		e.ctr.inc(eRequestsDropped)
		return
	}
	db := e.db.Load()
	k := db.lookup(iid, pfx.Addr())
	if k < 0 {
		e.ctr.inc(eRequestsNotOurs)
		return
	}
	if req.DontMapReply {
		e.ctr.inc(eRequestsDropped)
		return
	}
	var to netip.AddrPort
	if req.Probe {
		to = from
	} else {
		port := from.Port()
		if ecm != nil {
			port = ecm.Source.Port()
		}
		to, ok = replyTarget(req, ecm, from, local, port)
		if !ok {
			e.ctr.inc(eRequestsDropped)
			return
		}
	}
	now := e.now()
	if !e.replyLim.AllowN(now, 1) {
		e.ctr.inc(eRepliesRateLimited)
		return
	}
	rec := db.records[k]
	if req.Probe {
		locs := slices.Clone(rec.Locators)
		for j := range locs {
			// The probed locator is the address the probe came in on;
			// on a wildcard socket that is unknown, so every local one.
			probed := locs[j].Local
			if local.IsValid() && !local.IsUnspecified() {
				_, ip, _ := locs[j].Address.InstanceIP()
				probed = ip == local
			}
			locs[j].Probed = probed
		}
		rec.Locators = locs
	}
	rep := wire.MapReply{Probe: req.Probe, Nonce: req.Nonce, Records: []wire.EIDRecord{rec}}
	b, err := rep.AppendBinary(make([]byte, 0, 128))
	if err != nil {
		e.ctr.inc(eSendErrors)
		e.warn("cannot encode Map-Reply", "eid", pfx, "err", err)
		return
	}
	if err := e.out.Send(b, to); err != nil {
		e.ctr.inc(eSendErrors)
		e.warn("cannot send Map-Reply", "to", to, "err", err)
		return
	}
	if req.Probe {
		e.ctr.inc(eProbeRepliesSent)
	} else {
		e.ctr.inc(eRepliesSent)
	}
	m := db.maps[k]
	e.remember(requester{itr: to.Addr(), iid: m.InstanceID, pfx: m.Prefix, eid: remoteEID(req, db)}, now)
	e.gleanRequest(req, to, now)
}

// replyTarget returns where a Map-Reply goes: the first usable ITR-RLOC of
// the family the reply is sent from (that of the address the request came
// in on, else of its source), else the first usable one of the other
// family, else the request's (inner) source address, at port.
func replyTarget(req *wire.MapRequest, ecm *wire.ECM, from netip.AddrPort, local netip.Addr, port uint16) (netip.AddrPort, bool) {
	want4 := from.Addr().Is4()
	if local.IsValid() && !local.IsUnspecified() {
		want4 = local.Is4()
	}
	var other netip.Addr
	for k := range req.ITRRLOCs {
		_, ip, ok := req.ITRRLOCs[k].InstanceIP()
		ip = ip.Unmap()
		if !ok || !usableUnicast(ip) {
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
	src := from.Addr()
	if ecm != nil {
		src = ecm.Source.Addr().Unmap()
	}
	if usableUnicast(src) {
		return netip.AddrPortFrom(src, port), true
	}
	return netip.AddrPort{}, false
}

// remember records that r.itr was sent the mapping of r.pfx, so that a
// change of it is signalled with an SMR. At the bound the oldest eighth is
// forgotten.
func (e *ETR) remember(r requester, now time.Time) {
	st := e.settings.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.requesters[r]; !ok && len(e.requesters) >= st.maxReq {
		type aged struct {
			r requester
			t time.Time
		}
		all := make([]aged, 0, len(e.requesters))
		for k, t := range e.requesters {
			all = append(all, aged{k, t})
		}
		slices.SortFunc(all, func(a, b aged) int { return a.t.Compare(b.t) })
		for _, a := range all[:max(len(all)/8, 1)] {
			delete(e.requesters, a.r)
		}
	}
	e.requesters[r] = now
}

// remoteEID returns the EID a Map-Request was sent from: its Source-EID,
// unless that is absent (AFI 0), not an IP address, or inside the ETR's own
// database (then it is no EID of the requesting site), in which case the
// zero Addr. The SMRs to that ITR name it in their EID-record.
func remoteEID(req *wire.MapRequest, db *database) netip.Addr {
	iid, ip, ok := req.SourceEID.InstanceIP()
	ip = ip.Unmap()
	if !ok || ip.Zone() != "" || db.eids.Contains(iid, ip) {
		return netip.Addr{}
	}
	return ip
}

// pruneRequesters forgets, once a minute, the ITRs whose copy of the
// mapping has expired (older than the Record TTL).
func (e *ETR) pruneRequesters(now time.Time) {
	ttl := e.RecordTTL()
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Before(e.nextPrune) {
		return
	}
	e.nextPrune = now.Add(time.Minute)
	for r, t := range e.requesters {
		if now.Sub(t) > ttl {
			delete(e.requesters, r)
		}
	}
}

// Requesters returns how many (ITR, EID-prefix) pairs the ETR remembers for
// SMRs.
func (e *ETR) Requesters() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.requesters)
}

// flushSMRs sends the queued SMRs (RFC 9301 section 6.1): those a database
// change or SolicitITRs queued once every Map-Server acknowledged a
// registration sent after it or two seconds passed, so that the
// SMR-invoked Map-Requests find the new mapping; those SolicitITRsNow
// queued at once. One SMR goes per ITR and prefix, in the form buildSMR
// describes (the changed prefix as Source-EID, the ITR's EID as
// EID-record when known, the ETR's RLOCs as ITR-RLOCs), to the ITR's
// address at ControlPort. SMRs beyond the rate limit are dropped and
// counted.
func (e *ETR) flushSMRs(now time.Time) {
	st := e.settings.Load()
	e.mu.Lock()
	if len(e.smrQueue) == 0 {
		e.mu.Unlock()
		return
	}
	var queue []requester
	if e.smrReadyLocked(now) {
		queue = e.smrQueue
		e.smrQueue = nil
	} else {
		keep := e.smrQueue[:0]
		for _, r := range e.smrQueue {
			if r.now {
				queue = append(queue, r)
			} else {
				keep = append(keep, r)
			}
		}
		clear(e.smrQueue[len(keep):])
		e.smrQueue = keep
	}
	e.mu.Unlock()
	if len(queue) == 0 {
		return
	}
	slices.SortFunc(queue, compareSMR)
	queue = slices.CompactFunc(queue, requester.sameSMR)
	itrRLOCs := make([]wire.Address, 0, len(st.local))
	for _, a := range st.local {
		itrRLOCs = append(itrRLOCs, wire.AddrFrom(a))
	}
	for _, r := range queue {
		if len(itrRLOCs) == 0 {
			e.ctr.inc(eSendErrors)
			continue
		}
		if !e.smrLim.AllowN(now, 1) {
			e.ctr.inc(eSMRsRateLimited)
			continue
		}
		b, err := buildSMR(r, itrRLOCs)
		if err != nil {
			e.ctr.inc(eSendErrors)
			continue
		}
		to := netip.AddrPortFrom(r.itr, ControlPort)
		if err := e.out.Send(b, to); err != nil {
			e.ctr.inc(eSendErrors)
			e.warn("cannot send SMR", "to", to, "err", err)
			continue
		}
		e.ctr.inc(eSMRsSent)
	}
}
