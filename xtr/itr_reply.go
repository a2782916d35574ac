package xtr

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

// handleReply installs the records of a Map-Reply that answers an
// outstanding Map-Request (RFC 9301 section 5.4): a reply whose nonce no
// request of this ITR carries is counted as unsolicited (a spoofing attempt
// or a very late answer) and ignored. Only records that cover the EID asked
// for are installed, so a reply cannot plant mappings for other EIDs, and
// only those the EID space admits (recordRefusal: no default route with
// locators, nothing outside ITRConfig.EIDSpace), with the locators that
// may be installed (rlocRefusal). Each becomes a map-cache entry with
// Source FromMapReply, Origin the replier's address and Expires now plus
// the Record TTL; a Record TTL of 0 removes the mapping. The packets held
// for every destination the new mappings cover are released through the
// DataPlane. A Map-Reply to a subscribing request whose confirmation came
// first is not installed and not unsolicited (pubsub.go).
func (i *ITR) handleReply(m *wire.MapReply, from netip.AddrPort) {
	now := i.now()
	i.mu.Lock()
	p := i.byNonce[m.Nonce]
	if p == nil {
		late := i.lateReplyLocked(m.Nonce)
		i.mu.Unlock()
		if late {
			// The subscription's confirmation came first and installed
			// the mapping (pubsub.go).
			i.ctr.inc(iPSLateReplies)
			return
		}
		i.ctr.inc(iRepliesUnsolicited)
		i.warn("Map-Reply with an unknown nonce", "from", from, "nonce", m.Nonce)
		return
	}
	held := i.removePendingLocked(p)
	if p.subscribe {
		// Its confirmation may follow (or never come: refused).
		i.noteAnswerLocked(p, now, true)
	}
	i.mu.Unlock()
	i.ctr.inc(iRepliesAccepted)

	st := i.settings.Load()
	origin := from.Addr().String()
	var installed []*mapcache.Entry
	for k := range m.Records {
		rec := &m.Records[k]
		iid, pfx, ok := rec.Prefix()
		if !ok || iid != p.key.iid || !pfx.Contains(p.key.eid) {
			i.ctr.inc(iReplyRecordsIgnored)
			continue
		}
		if rec.RecordTTL == 0 {
			// "Remove the entry from the cache immediately."
			i.cache.Delete(mapcache.Key{InstanceID: iid, Prefix: pfx})
			continue
		}
		if r := st.recordRefusal(iid, pfx, len(rec.Locators) == 0); r != admitted {
			i.reportRefusal(refusedRecord{why: r, iid: iid, pfx: pfx, negative: len(rec.Locators) == 0}, from.Addr())
			continue
		}
		e, refused, ok := entryFromRecord(st, rec, iid, pfx, now, origin)
		i.reportRefusedRLOCs(refused, iid, pfx, from.Addr())
		if !ok {
			i.ctr.inc(iReplyRecordsIgnored)
			continue
		}
		if v := i.versions.Load(); v != nil {
			e.Version = (*v)()
		}
		if _, err := i.cache.Insert(e); err != nil {
			if !errors.Is(err, mapcache.ErrStale) {
				i.ctr.inc(iInsertErrors)
				i.warn("cannot install mapping", "eid", pfx, "iid", iid, "err", err)
			}
			continue
		}
		if e.Negative() {
			i.ctr.inc(iNegativeEntries)
		}
		installed = append(installed, e)
	}
	i.probeKnownDown(installed)
	i.resolveCovered(installed, p, held)
}

// resolveCovered finishes p (if not nil) and every other destination
// waiting for a mapping that just arrived (installed): their packets are
// released, with held (p's), and they stop retrying.
func (i *ITR) resolveCovered(installed []*mapcache.Entry, p *pending, held [][]byte) {
	i.mu.Lock()
	if len(installed) > 0 {
		for _, q := range i.pending {
			if q.resolved || !coveredBy(q.key, installed) {
				continue
			}
			q.resolved = true
			held = append(held, q.held...)
			i.heldTotal -= len(q.held)
			q.held = nil
			q.finishLocked(nil)
		}
	}
	if p != nil {
		p.finishLocked(nil)
	}
	i.mu.Unlock()
	i.release(held)
}

// coveredBy reports whether k's EID lies in one of the entries' prefixes.
func coveredBy(k reqKey, es []*mapcache.Entry) bool {
	for _, e := range es {
		if e.InstanceID == k.iid && e.Prefix.Contains(k.eid) {
			return true
		}
	}
	return false
}

// refusal is why a record from the mapping system is not installed.
type refusal uint8

const (
	admitted            refusal = iota
	refusedDefaultRoute         // a default route with locators, outside the EID space
	refusedEIDSpace             // outside (or straddling) the EID space
)

// recordRefusal decides whether a record for prefix pfx in iid, negative
// (no locators) or not, may be installed under the EID space of st
// (ITRConfig.EIDSpace):
//
//   - with locators, pfx must lie inside an EID-space prefix of iid; with
//     no EID space, anything but a default route (prefix length 0) is
//     admitted. A default route with locators would capture every
//     destination without a more specific entry (a Map-Reply with the
//     right nonce for 0.0.0.0/0 did, for its 24-hour TTL, in hostile
//     testing): it is admitted only when the EID space lists it.
//   - negative, pfx must lie inside an EID-space prefix of iid or overlap
//     none (it says a destination outside the EID space is not an EID); a
//     negative record that holds EID space would send EIDs natively or
//     drop them. With no EID space every negative record is admitted: a
//     Map-Resolver that knows no EID of a family or instance answers with
//     the negative 0.0.0.0/0 or ::/0 (RFC 9301 section 8.4, see
//     mapserver/negative.go), and such a record redirects no traffic to
//     anyone.
func (st *itrSettings) recordRefusal(iid uint32, pfx netip.Prefix, negative bool) refusal {
	if len(st.eidSpace) == 0 {
		if !negative && pfx.Bits() == 0 {
			return refusedDefaultRoute
		}
		return admitted
	}
	overlaps := false
	for _, s := range st.eidSpace {
		if s.InstanceID != iid || !s.Prefix.Overlaps(pfx) {
			continue
		}
		if s.Prefix.Bits() <= pfx.Bits() {
			return admitted // s contains pfx
		}
		overlaps = true
	}
	switch {
	case negative && !overlaps:
		return admitted
	case !negative && pfx.Bits() == 0:
		return refusedDefaultRoute
	}
	return refusedEIDSpace
}

// refusedRecord is a record recordRefusal refused.
type refusedRecord struct {
	why      refusal
	iid      uint32
	pfx      netip.Prefix
	negative bool
}

// reportRefusal counts and logs (rate-limited) the refusal of a record
// from (the source of a Map-Reply or a pub/sub Map-Notify).
func (i *ITR) reportRefusal(r refusedRecord, from netip.Addr) {
	switch r.why {
	case refusedDefaultRoute:
		i.ctr.inc(iRecordsRefusedDefault)
		i.warn("default route from the mapping system refused (not in itr.eid-space)", "eid", r.pfx, "iid", r.iid, "from", from)
	case refusedEIDSpace:
		i.ctr.inc(iRecordsRefusedEIDSpace)
		i.warn("mapping outside itr.eid-space refused", "eid", r.pfx, "iid", r.iid, "from", from, "negative", r.negative)
	}
}

// limitedBroadcast is the IPv4 limited broadcast address.
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// rlocRefusal reports why the (unmapped) address a may not be installed as
// a remote locator, or "" when it may. Refused: unspecified, multicast,
// the IPv4 limited broadcast, 0.0.0.0/8 ("this network", RFC 1122 section
// 3.2.1.3: a source only), loopback and link-local addresses, addresses
// with a zone, and the ITR's own RLOCs (it would encapsulate to itself).
// Loopback (link-local) locators are installable when one of the ITR's
// own RLOCs is loopback (link-local) itself: the xTRs of a lab on one host.
// Directed broadcasts cannot be told from unicast without the remote
// subnet and are not checked. This is stricter than usableUnicast, which
// checks the addresses of the ITR's own configuration.
func (st *itrSettings) rlocRefusal(a netip.Addr) string {
	switch {
	case !a.IsValid() || a.Zone() != "":
		return "invalid"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast():
		return "multicast"
	case a == limitedBroadcast:
		return "broadcast"
	case a.Is4() && a.As4()[0] == 0:
		return "this-network"
	case a.IsLoopback() && !st.ownLoopback:
		return "loopback"
	case a.IsLinkLocalUnicast() && !st.ownLinkLocal:
		return "link-local"
	case slices.Contains(st.rlocs, a):
		return "own-rloc"
	}
	return ""
}

// rlocRefusals is what entryFromRecord refused of a record's locators.
type rlocRefusals struct {
	n     int
	first netip.Addr // the first refused locator
	why   string     // and why
}

// reportRefusedRLOCs counts and logs (rate-limited) the locators refused
// of the record for pfx in iid that from sent.
func (i *ITR) reportRefusedRLOCs(r rlocRefusals, iid uint32, pfx netip.Prefix, from netip.Addr) {
	if r.n == 0 {
		return
	}
	i.ctr.add(iLocatorsRefused, uint64(r.n))
	i.warn("locators from the mapping system refused", "eid", pfx, "iid", iid, "from", from,
		"refused", r.n, "rloc", r.first, "reason", r.why)
}

// entryFromRecord converts a Map-Reply (or pub/sub) record for prefix pfx
// in iid into a map-cache entry. Locators that are not IP addresses (LCAF
// types lispd does not forward to) are skipped, and those st does not
// allow to install (rlocRefusal) are skipped and returned in refused; a
// record whose every locator was skipped is refused (ok false) rather than
// turned into a negative entry. RLOCs start reachable: the R bit only says
// whether the replier has a route to the locator (RFC 9301 section 5.4);
// RLOC-probing decides for this ITR.
func entryFromRecord(st *itrSettings, rec *wire.EIDRecord, iid uint32, pfx netip.Prefix, now time.Time, origin string) (e *mapcache.Entry, refused rlocRefusals, ok bool) {
	ttl := ttlOf(rec.RecordTTL)
	e = &mapcache.Entry{
		InstanceID: iid,
		Prefix:     pfx,
		TTL:        ttl,
		Expires:    now.Add(ttl),
		Source:     mapcache.FromMapReply,
		Version:    uint64(now.UnixNano()),
		MapVersion: rec.MapVersion,
		Learned:    now,
		Origin:     origin,
	}
	for _, l := range rec.Locators {
		_, ip, isIP := l.Address.InstanceIP()
		ip = ip.Unmap()
		if !isIP || slices.ContainsFunc(e.RLOCs, func(r mapcache.RLOC) bool { return r.Addr == ip }) {
			continue
		}
		if why := st.rlocRefusal(ip); why != "" {
			if refused.n == 0 {
				refused.first, refused.why = ip, why
			}
			refused.n++
			continue
		}
		e.RLOCs = append(e.RLOCs, mapcache.RLOC{
			Addr: ip, Priority: l.Priority, Weight: l.Weight,
			MPriority: l.MPriority, MWeight: l.MWeight,
			Local: l.Local, Reachable: true,
		})
	}
	if len(e.RLOCs) > mapcache.MaxRLOCs {
		return nil, refused, false
	}
	if len(rec.Locators) > 0 && len(e.RLOCs) == 0 {
		return nil, refused, false
	}
	if len(e.RLOCs) == 0 {
		if rec.Action > wire.DropAuthFailure {
			return nil, refused, false
		}
		e.Action = mapcache.Action(rec.Action)
	}
	return e, refused, true
}

// release sends packets held by the miss policy, now that their mappings
// arrived, through the DataPlane; without one they are dropped and counted.
func (i *ITR) release(held [][]byte) {
	if len(held) == 0 {
		return
	}
	dp := i.dp.Load()
	if dp == nil {
		i.ctr.add(iMissDropped, uint64(len(held)))
		return
	}
	dp.sendHeld(held)
}

// handleSMR answers a Solicit-Map-Request (RFC 9301 section 6.1) in every
// convention in use (see smr.go): the EIDs it may name as changed are its
// Source-EID (OOR) and its EID-record prefixes (the RFC reading, lispd's
// old form). One that lies in this xTR's own EID-prefixes is the
// receiver's EID (OOR puts it in the record) and is skipped; for each map-
// cache entry that covers another, the ITR sends one SMR-invoked
// Map-Request (s bit) for the entry's prefix through its Map-Resolvers, at
// most one at a time per prefix, and keeps using the cached mapping
// meanwhile. Any nonce is accepted (OOR sends 0). An SMR that names no
// cached mapping is counted as ignored.
func (i *ITR) handleSMR(m *wire.MapRequest, from netip.AddrPort) {
	i.ctr.inc(iSMRReceived)
	now := i.now()
	var done []mapcache.Key
	for _, c := range smrCandidates(m) {
		if i.isLocalEID(c.iid, c.eid) {
			continue
		}
		e, cached := i.cache.Lookup(c.iid, c.eid)
		if !cached {
			continue
		}
		k := mapcache.Key{InstanceID: e.InstanceID, Prefix: e.Prefix}
		if slices.Contains(done, k) {
			continue
		}
		done = append(done, k)
		if _, err := i.request(reqKey{iid: e.InstanceID, eid: e.Prefix.Addr()}, uint8(e.Prefix.Bits()), netip.Addr{}, kindSMR, now); err != nil {
			i.warn("cannot answer SMR", "from", from, "eid", e.Prefix, "iid", e.InstanceID, "err", err)
		}
	}
	if len(done) == 0 {
		i.ctr.inc(iSMRIgnored)
	}
}
