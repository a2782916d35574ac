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
// for are installed, so a reply cannot plant mappings for other EIDs. Each
// becomes a map-cache entry with Source FromMapReply, Origin the replier's
// address and Expires now plus the Record TTL; a Record TTL of 0 removes the
// mapping. The packets held for every destination the new mappings cover
// are released through the DataPlane.
func (i *ITR) handleReply(m *wire.MapReply, from netip.AddrPort) {
	i.mu.Lock()
	p := i.byNonce[m.Nonce]
	if p == nil {
		i.mu.Unlock()
		i.ctr.inc(iRepliesUnsolicited)
		i.warn("Map-Reply with an unknown nonce", "from", from, "nonce", m.Nonce)
		return
	}
	held := i.removePendingLocked(p)
	i.mu.Unlock()
	i.ctr.inc(iRepliesAccepted)

	now := i.now()
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
		e, ok := entryFromRecord(rec, iid, pfx, now, origin)
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

	// Every other destination waiting for a mapping that just arrived is
	// answered too: release its packets and stop retrying.
	i.mu.Lock()
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
	p.finishLocked(nil)
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

// entryFromRecord converts a Map-Reply record for prefix pfx in iid into a
// map-cache entry. Locators that are not IP addresses (LCAF types lispd does
// not forward to) are skipped; a record whose every locator was skipped is
// refused (ok false) rather than turned into a negative entry. RLOCs start
// reachable: the R bit only says whether the replier has a route to the
// locator (RFC 9301 section 5.4); RLOC-probing decides for this ITR.
func entryFromRecord(rec *wire.EIDRecord, iid uint32, pfx netip.Prefix, now time.Time, origin string) (*mapcache.Entry, bool) {
	ttl := ttlOf(rec.RecordTTL)
	e := &mapcache.Entry{
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
		_, ip, ok := l.Address.InstanceIP()
		ip = ip.Unmap()
		if !ok || !usableUnicast(ip) || slices.ContainsFunc(e.RLOCs, func(r mapcache.RLOC) bool { return r.Addr == ip }) {
			continue
		}
		e.RLOCs = append(e.RLOCs, mapcache.RLOC{
			Addr: ip, Priority: l.Priority, Weight: l.Weight,
			MPriority: l.MPriority, MWeight: l.MWeight,
			Local: l.Local, Reachable: true,
		})
	}
	if len(e.RLOCs) > mapcache.MaxRLOCs {
		return nil, false
	}
	if len(rec.Locators) > 0 && len(e.RLOCs) == 0 {
		return nil, false
	}
	if len(e.RLOCs) == 0 {
		if rec.Action > wire.DropAuthFailure {
			return nil, false
		}
		e.Action = mapcache.Action(rec.Action)
	}
	return e, true
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

// handleSMR answers a Solicit-Map-Request (RFC 9301 section 6.1): for each
// EID-prefix it names that the map-cache holds, the ITR sends an
// SMR-invoked Map-Request (s bit) through its Map-Resolvers, at most one at
// a time per EID, and keeps using the cached mapping meanwhile. An SMR for
// a mapping the ITR does not hold is ignored.
func (i *ITR) handleSMR(m *wire.MapRequest, from netip.AddrPort) {
	i.ctr.inc(iSMRReceived)
	now := i.now()
	for k := range m.Records {
		iid, pfx, ok := m.Records[k].Prefix()
		if !ok {
			i.ctr.inc(iSMRIgnored)
			continue
		}
		if _, cached := i.cache.Lookup(iid, pfx.Addr()); !cached {
			i.ctr.inc(iSMRIgnored)
			continue
		}
		if _, err := i.request(reqKey{iid: iid, eid: pfx.Addr()}, uint8(pfx.Bits()), netip.Addr{}, kindSMR, now); err != nil {
			i.warn("cannot answer SMR", "from", from, "eid", pfx, "err", err)
		}
	}
}
