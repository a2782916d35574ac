package xtr

import (
	"net/netip"
	"slices"

	"github.com/lispd/lispd/wire"
)

// This file is the ETR's side of failover: an xTR stops claiming a locator
// it (or a dead member of its synchronization set) cannot serve.
//
// A withdrawn locator stays in the site's mapping, registered and
// answered with priority 255 and the R bit clear, and its
// Locator-Status-Bit is 0 in every packet this xTR encapsulates. Priority
// 255 is the signal an ITR must honour ("MUST NOT be used for unicast
// forwarding", RFC 9301 section 5.4), and what OOR's own ETR registers for
// a locator that is down (with the R bit from its state); the R bit alone
// is only a hint (lispd, like OOR, trusts probing over it); leaving the
// locator out would make a site whose
// every locator is withdrawn a negative mapping, and would shift the
// ordinals of the Locator-Status-Bits. The locator keeps its place, so the
// bits of the others keep their meaning.

// WithdrawnLocator is a locator the ETR registers as unusable, and why.
type WithdrawnLocator struct {
	Addr   netip.Addr
	Reason string
}

// SetLocatorUsable withdraws (usable false) or restores a locator of the
// EID database: its own RLOC whose EID-side interfaces went down or that an
// operator drains, or a dead member's. The change is published at once:
// Map-Replies and RLOC-probe replies answer with it, the Map-Servers are
// sent Map-Registers now, the Locator-Status-Bits of encapsulated packets
// follow, and the ITRs that asked for the changed mappings are queued for
// an SMR. It reports whether anything changed; a locator that is in no
// mapping changes nothing now but is remembered (a reload may add it).
func (e *ETR) SetLocatorUsable(addr netip.Addr, usable bool, reason string) (bool, error) {
	addr = addr.Unmap()
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	old, was := e.withdrawn[addr]
	switch {
	case usable && !was, !usable && was && old == reason:
		return false, nil
	case usable:
		delete(e.withdrawn, addr)
	default:
		e.withdrawn[addr] = reason
		if was {
			return false, nil // only the reason changed
		}
	}
	st := e.settings.Load()
	db, err := e.rebuildLocked()
	if err != nil {
		// The base database was valid when set; only a bug gets here.
		if usable {
			e.withdrawn[addr] = old
		} else {
			delete(e.withdrawn, addr)
		}
		return false, err
	}
	changed := len(changedPrefixes(e.db.Load(), db)) > 0
	if err := e.publishLocked(st, db); err != nil {
		return false, err
	}
	return changed, nil
}

// learnedReason is the reason Withdrawn gives for a locator only learned
// from the Map-Server.
const learnedReason = "withdrawn by another xTR of the site (the Map-Server's merged registration)"

// rebuildLocked builds the database from the configured one and the
// overlays. e.cfgMu is held.
func (e *ETR) rebuildLocked() (*database, error) {
	return buildDatabase(e.base, e.settings.Load(), e.withdrawn, e.learned)
}

// followMerged applies the withdrawals another xTR of the site made, as an
// unsolicited Map-Notify (the Map-Server's merged registration) shows
// them: for each record of the database, each locator that is not this
// xTR's own is learned withdrawn when it has priority 255 or the R bit
// clear, and forgotten when it is usable again (ETRConfig.FollowMapServer).
// Every locator of those records becomes known to the decapsulation
// filter.
func (e *ETR) followMerged(recs []wire.EIDRecord) {
	st := e.settings.Load()
	db := e.db.Load()
	e.filter.learnFromMapServer(recs, db)
	want := map[netip.Addr]bool{}
	for k := range recs {
		iid, pfx, ok := recs[k].Prefix()
		if !ok || db.find(iid, pfx) < 0 {
			continue
		}
		m := db.maps[db.find(iid, pfx)]
		for _, l := range recs[k].Locators {
			_, a, ok := l.Address.InstanceIP()
			a = a.Unmap()
			if !ok || slices.Contains(st.local, a) || !slices.ContainsFunc(m.RLOCs, func(r Locator) bool { return r.Addr == a }) {
				continue
			}
			down := l.Priority == unusablePriority || !l.Reachable
			if prev, seen := want[a]; !seen || (down && !prev) {
				want[a] = down
			}
		}
	}
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	changed := false
	for a, down := range want {
		if down != e.learned[a] {
			changed = true
			if down {
				e.learned[a] = true
				e.log.Warn("locator withdrawn by another xTR of the site (Map-Server's merged registration)", "rloc", a)
			} else {
				delete(e.learned, a)
				e.log.Info("locator claimed again by another xTR of the site", "rloc", a)
			}
		}
	}
	if !changed {
		return
	}
	db, err := e.rebuildLocked()
	if err != nil {
		e.warn("cannot apply the Map-Server's merged registration", "err", err)
		return
	}
	if err := e.publishLocked(e.settings.Load(), db); err != nil {
		e.warn("cannot apply the Map-Server's merged registration", "err", err)
	}
}

// Withdrawn returns the locators registered or answered as unusable, with
// why, sorted.
func (e *ETR) Withdrawn() []WithdrawnLocator {
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	out := make([]WithdrawnLocator, 0, len(e.withdrawn)+len(e.learned))
	for a, r := range e.withdrawn {
		out = append(out, WithdrawnLocator{Addr: a, Reason: r})
	}
	for a := range e.learned {
		if _, ok := e.withdrawn[a]; !ok {
			out = append(out, WithdrawnLocator{Addr: a, Reason: learnedReason})
		}
	}
	slices.SortFunc(out, func(a, b WithdrawnLocator) int { return a.Addr.Compare(b.Addr) })
	return out
}

// DatabaseLocators returns every locator address of the EID database,
// sorted, without duplicates.
func (e *ETR) DatabaseLocators() []netip.Addr {
	db := e.db.Load()
	var out []netip.Addr
	for _, m := range db.maps {
		for _, l := range m.RLOCs {
			out = append(out, l.Addr)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}

// sameLocators reports whether two registered locator sets are equal in
// every attribute the ETR sets.
func sameLocators(a, b []wire.Locator) bool {
	return slices.EqualFunc(a, b, func(x, y wire.Locator) bool {
		return x.Priority == y.Priority && x.Weight == y.Weight && x.MPriority == y.MPriority &&
			x.MWeight == y.MWeight && x.Reachable == y.Reachable && x.Local == y.Local && x.Address.Equal(y.Address)
	})
}

// withdraw marks a registered or answered locator unusable: priority 255
// (unicast and multicast) and the R bit clear.
func withdraw(l *wire.Locator) {
	l.Priority, l.MPriority, l.Reachable = unusablePriority, unusablePriority, false
}
