package xtr

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/wire"
)

// Solicit-Map-Requests as deployed routers send and read them.
//
// RFC 9301 section 6.1 makes an SMR "simply a bit set in a Map-Request" and
// has the remote ITR send a Map-Request for "the EID-Prefix ... copied from
// the SMR message", without saying which of the two EID fields of a
// Map-Request (section 5.3: the Source-EID, and the EID-records) carries the
// changed prefix. The implementations read differ:
//
//   - OOR 1.3 (OpenOverlayRouter/oor, oor/control/lisp_xtr.c,
//     build_and_send_smr_mreq and tr_recv_map_request) sends the SMR with
//     Source-EID = its own changed EID-prefix, one EID-record = the
//     receiver's EID-prefix as found in its map-cache, ITR-RLOCs = the
//     changed mapping's locators, nonce 0, from and to port 4342, to every
//     up locator of the receiver's mapping. Receiving, it first looks the
//     EID-record up in its own database and drops the SMR ("EID ... not
//     locally configured!") unless it is one of its own EIDs (longest
//     match, instance-ID checked), rejects an SMR with more than one
//     record, and then sends the SMR-invoked Map-Request for the map-cache
//     entry covering the Source-EID (a Source-EID of AFI 0 is not acted
//     on). The nonce is not checked.
//   - lispers.net (farinacci/lispers.net, lisp/lisp.py,
//     lisp_process_map_request and lisp_process_smr) only logs the S bit
//     ("Received SMR-based Map-Request") and then handles the SMR like any
//     Map-Request: as an ETR it answers the EID-record (target-EID) from
//     its database with a Map-Reply to the first ITR-RLOC, at the
//     request's source port; an EID-record that is not its own EID is not
//     answered. It reads no changed prefix from an SMR.
//   - lispd before this change sent Source-EID = EID-record = the changed
//     prefix, to the address and port its last Map-Reply went to, and read
//     only the EID-records.
//
// lispd therefore reads every convention (ITR.handleSMR, smrCandidates)
// and sends the one form all of them accept (buildSMR): Source-EID = the
// changed local prefix, EID-record = the receiver's EID when the ETR knows
// it (else the changed prefix, the RFC reading), a random non-zero nonce,
// ITR-RLOCs = the ETR's local RLOCs, to the ITR's address at ControlPort.

// smrCandidate is an EID an SMR may name as changed.
type smrCandidate struct {
	iid uint32
	eid netip.Addr
}

// smrCandidates returns the EIDs an SMR may name as changed, in every
// convention in use: its Source-EID (OOR's changed prefix) unless it has
// AFI 0 or is not an IP address, then the address of each EID-record
// prefix (the RFC reading, and lispd's old form). Some of them may be the
// receiver's own EIDs (OOR puts the receiver's EID in the record); the
// caller skips those.
func smrCandidates(m *wire.MapRequest) []smrCandidate {
	out := make([]smrCandidate, 0, 1+len(m.Records))
	if iid, ip, ok := m.SourceEID.InstanceIP(); ok {
		out = append(out, smrCandidate{iid: iid, eid: ip.Unmap()})
	}
	for k := range m.Records {
		if iid, pfx, ok := m.Records[k].Prefix(); ok {
			out = append(out, smrCandidate{iid: iid, eid: pfx.Addr().Unmap()})
		}
	}
	return out
}

// SetLocalEIDs tells the ITR which EIDs are this xTR's own: isLocal reports
// whether eid in instance iid lies in one of the xTR's EID-prefixes (the
// ETR's HasEID is such a function). An SMR names the receiver's own EID in
// its EID-record in OOR's form; handleSMR skips such an EID rather than
// refreshing a map-cache entry that happens to cover it (a default route
// to a Proxy-ETR, say). nil restores the default: the EID database of the
// ETR of the running DataPlane, if any. isLocal is called on the control
// path, concurrently, and must not refer to the ITR. The daemon calls it
// when it plays both roles.
func (i *ITR) SetLocalEIDs(isLocal func(iid uint32, eid netip.Addr) bool) {
	if isLocal == nil {
		i.localEIDs.Store(nil)
		return
	}
	i.localEIDs.Store(&isLocal)
}

// isLocalEID reports whether eid in instance iid is one of this xTR's own
// EIDs: as SetLocalEIDs says, else as the database of the running
// DataPlane's ETR says, else false.
func (i *ITR) isLocalEID(iid uint32, eid netip.Addr) bool {
	if f := i.localEIDs.Load(); f != nil {
		return (*f)(iid, eid)
	}
	if dp := i.dp.Load(); dp != nil && dp.etr != nil {
		return dp.etr.HasEID(iid, eid)
	}
	return false
}

// HasEID reports whether eid in instance iid lies in one of the prefixes of
// the ETR's database: the function ITR.SetLocalEIDs wants.
func (e *ETR) HasEID(iid uint32, eid netip.Addr) bool {
	return e.db.Load().eids.Contains(iid, eid.Unmap())
}

// SMRTarget is an ITR that SolicitITRs sends SMRs to.
type SMRTarget struct {
	// RLOC is the ITR's locator; the SMRs go to its ControlPort.
	RLOC netip.Addr
	// InstanceID is the instance of the ITR's EIDs: it is sent SMRs for
	// the changed prefixes of this instance.
	InstanceID uint32
	// EID is one of the ITR's own EIDs when known, the zero Addr
	// otherwise. The SMRs name it in their EID-record, as OOR requires.
	EID netip.Addr
}

// SolicitITRs queues SMRs (RFC 9301 section 6.1) for the changed local
// EID-prefixes (every database prefix when changed is empty) to each
// target, for the prefixes in the target's instance: the failover code
// calls it when the ITRs that use this site's mappings must ask again.
// RoutineETRControl sends them as it sends those a database change queues:
// once every Map-Server acknowledged a registration sent after this call,
// or two seconds later; deduplicated against the SMRs already queued (one
// per ITR and prefix), within the SMR rate limit (smrs_rate_limited), and
// counted (smrs_sent). Targets whose RLOC is not a unicast address are
// skipped, and beyond MaxRequesters queued SMRs the rest are counted as
// rate-limited. It returns how many SMRs it queued.
func (e *ETR) SolicitITRs(targets []SMRTarget, changed []dataplane.EIDPrefix) int {
	return e.solicit(targets, changed, false)
}

// SolicitITRsNow is SolicitITRs for a caller that knows the Map-Servers
// already hold the new mappings: the SMRs are sent at the next run of
// RoutineETRControl, without waiting for a registration to be
// acknowledged.
func (e *ETR) SolicitITRsNow(targets []SMRTarget, changed []dataplane.EIDPrefix) int {
	return e.solicit(targets, changed, true)
}

// solicit queues the SMRs of SolicitITRs; immediate skips the holdoff.
func (e *ETR) solicit(targets []SMRTarget, changed []dataplane.EIDPrefix, immediate bool) int {
	db := e.db.Load()
	st := e.settings.Load()
	if len(changed) == 0 {
		changed = make([]dataplane.EIDPrefix, 0, len(db.maps))
		for _, m := range db.maps {
			changed = append(changed, dataplane.EIDPrefix{InstanceID: m.InstanceID, Prefix: m.Prefix})
		}
	}
	var add []requester
	for _, t := range targets {
		rloc := t.RLOC.Unmap()
		if !usableUnicast(rloc) {
			continue
		}
		eid := t.EID.Unmap()
		if !eid.IsValid() || eid.Zone() != "" || db.eids.Contains(t.InstanceID, eid) {
			eid = netip.Addr{} // unknown, or not the ITR's own
		}
		for _, c := range changed {
			if c.InstanceID != t.InstanceID || !c.Prefix.IsValid() {
				continue
			}
			add = append(add, requester{itr: rloc, iid: c.InstanceID, pfx: c.Prefix.Masked(), eid: eid, now: immediate})
		}
	}
	if len(add) == 0 {
		return 0
	}
	now := e.now()
	queued, dropped := 0, 0
	e.mu.Lock()
	for _, r := range add {
		if k := slices.IndexFunc(e.smrQueue, r.sameSMR); k >= 0 {
			q := &e.smrQueue[k]
			q.now = q.now || r.now
			if !q.eid.IsValid() {
				q.eid = r.eid
			}
			continue
		}
		if len(e.smrQueue) >= st.maxReq {
			dropped++
			continue
		}
		e.smrQueue = append(e.smrQueue, r)
		queued++
	}
	if queued > 0 && !immediate {
		e.smrChanged = now
	}
	e.mu.Unlock()
	e.ctr.add(eSMRsRateLimited, uint64(dropped))
	if queued > 0 {
		e.wake()
	}
	return queued
}

// sameSMR reports whether r and o call for the same SMR: to one ITR, for
// one prefix.
func (r requester) sameSMR(o requester) bool {
	return r.itr == o.itr && r.iid == o.iid && r.pfx == o.pfx
}

// compareSMR orders requesters by ITR and prefix, and among those for the
// same SMR the ones that know the ITR's EID first.
func compareSMR(a, b requester) int {
	return cmp.Or(a.itr.Compare(b.itr), cmp.Compare(a.iid, b.iid),
		a.pfx.Addr().Compare(b.pfx.Addr()), cmp.Compare(a.pfx.Bits(), b.pfx.Bits()),
		-cmp.Compare(boolInt(a.eid.IsValid()), boolInt(b.eid.IsValid())), a.eid.Compare(b.eid))
}

// boolInt is 1 for true, 0 for false.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// smrReadyLocked reports whether the SMRs queued after the last change may
// go: every Map-Server acknowledged a registration sent after it, or the
// holdoff passed. ETR.mu is held.
func (e *ETR) smrReadyLocked(now time.Time) bool {
	if now.Sub(e.smrChanged) >= smrHoldoff {
		return true
	}
	for _, s := range e.servers {
		if s.lastNotify.Before(e.smrChanged) {
			return false
		}
	}
	return true
}

// buildSMR encodes the SMR for r in the form every implementation reads
// (see the top of this file): S bit, a random non-zero nonce, Source-EID =
// the changed prefix's address, ITR-RLOCs = itrRLOCs, one EID-record = the
// ITR's EID as a host prefix when known, else the changed prefix.
func buildSMR(r requester, itrRLOCs []wire.Address) ([]byte, error) {
	rec := wire.NewRequestRecord(r.iid, r.pfx)
	if r.eid.IsValid() {
		rec = wire.NewRequestRecord(r.iid, netip.PrefixFrom(r.eid, r.eid.BitLen()))
	}
	req := wire.MapRequest{
		SMR:       true,
		Nonce:     randomNonce(),
		SourceEID: eidAddress(r.iid, r.pfx.Addr()),
		ITRRLOCs:  itrRLOCs,
		Records:   []wire.RequestRecord{rec},
	}
	return req.AppendBinary(make([]byte, 0, 128))
}
