package cachesync

import (
	"sync"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// usageTable holds the usage reports of the peers: for each peer, the last
// time it reported using each key (by key hash), in Unix ns of this
// member's cache clock. Reports of peers that disconnected are kept until
// they age out: a record a failed member was using is still "in use" for
// one refresh window, which is what a failover needs.
type usageTable struct {
	mu sync.Mutex
	m  map[*peer]map[uint64]int64
}

// record stores a usage report from p received at now.
func (u *usageTable) record(p *peer, items []usageItem, now int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	t := u.m[p]
	if t == nil {
		t = make(map[uint64]int64, len(items))
		u.m[p] = t
	}
	for _, it := range items {
		at := now - int64(it.age)
		if at > t[it.hash] {
			t[it.hash] = at
		}
	}
}

// users returns the peers that used key hash h at or after since.
func (u *usageTable) users(h uint64, since int64) []*peer {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []*peer
	for p, t := range u.m {
		if at, ok := t[h]; ok && at >= since {
			out = append(out, p)
		}
	}
	return out
}

// prune forgets uses before before.
func (u *usageTable) prune(before int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for p, t := range u.m {
		for h, at := range t {
			if at < before {
				delete(t, h)
			}
		}
		if len(t) == 0 {
			delete(u.m, p)
		}
	}
}

// OnExpire is the map-cache expiry hook of a member's ITR (give it to the
// cache through the ITR's configuration). It decides what happens to a
// record whose TTL has ended:
//
// Naive mode, and records that are not shared (static, probe, pub/sub):
// the paper's local policy. Used here within the refresh window: refresh
// it (Refresher) and keep it for RefreshGrace while the Map-Reply comes
// back; otherwise drop it.
//
// Smart and gossip modes: the set's policy. The record is in use if any
// member used it within the refresh window: this member (its last-use
// stamp) or a peer (its usage reports, kept for disconnected peers too).
//   - In use: kept (Extend(RefreshGrace)) on every member, and refreshed by
//     exactly one: the lowest-ranked connected member that used it (rank:
//     public key, or gossip node name), or, if only disconnected members
//     used it, the lowest-ranked connected member. The refreshed record
//     reaches the others as an ordinary change and replaces their copy.
//     A member still holding the expired record one grace later (the
//     refresher failed or died) refreshes it itself.
//   - Not known to be in use, while peers are connected and the record
//     expired less than two rounds ago: kept a round at a time
//     (probation), because a peer's usage report for the last round may be
//     on its way, or a round late on a busy host.
//   - Otherwise: dropped here only; peers are not told.
//
// A record whose refresh has not arrived a whole refresh window past its
// expiry is dropped (the mapping system is not answering).
func (m *Member) OnExpire(e *mapcache.Entry) mapcache.ExpireDecision {
	now := m.cache.Now()
	nowN := now.UnixNano()
	w, grace, round := m.cfg.RefreshWindow, m.cfg.RefreshGrace, m.cfg.RoundInterval
	overdue := now.Sub(e.Expires)
	if overdue > w+grace {
		m.c.expiredStale.Add(1)
		return mapcache.DeleteNow
	}
	lu := e.LastUsedNano()
	usedHere := lu != 0 && nowN-lu <= int64(w)
	if !m.sharesUsage() || (!learned(e) && e.Source != mapcache.FromSync) {
		if usedHere {
			m.refresh(e)
			return mapcache.Extend(grace)
		}
		m.c.expiredUnused.Add(1)
		return mapcache.DeleteNow
	}
	users := m.usage.users(keyHash(e.Key()), nowN-int64(w))
	if usedHere || len(users) > 0 {
		// Candidates to refresh: the connected members that used it.
		var cands []string
		if usedHere {
			cands = append(cands, m.self)
		}
		for _, p := range users {
			if p.connected() {
				cands = append(cands, p.rank)
			}
		}
		if len(cands) == 0 {
			// Only members now gone used it: the connected members
			// share the duty, the lowest-ranked one takes it.
			cands = append(cands, m.self)
			for _, p := range m.connectedPeers() {
				cands = append(cands, p.rank)
			}
		}
		if lowest(cands) == m.self || overdue >= grace {
			m.refresh(e)
		} else {
			m.c.keptForPeers.Add(1)
		}
		return mapcache.Extend(grace)
	}
	if overdue < 2*round && len(m.connectedPeers()) > 0 {
		m.c.probations.Add(1)
		return mapcache.Extend(round)
	}
	m.c.expiredUnused.Add(1)
	return mapcache.DeleteNow
}

// refresh asks the ITR to refresh e.
func (m *Member) refresh(e *mapcache.Entry) {
	if m.cfg.Refresher == nil {
		return
	}
	m.c.refreshes.Add(1)
	m.cfg.Refresher.Refresh(e.InstanceID, e.Prefix)
}

func lowest(ranks []string) string {
	best := ranks[0]
	for _, r := range ranks[1:] {
		if r < best {
			best = r
		}
	}
	return best
}

// UsedByPeers reports the last time a peer (connected or not) reported
// using the record with key k, or the zero time. An ITR that keeps its own
// expiry policy can combine it with the record's local last-use stamp.
func (m *Member) UsedByPeers(k mapcache.Key) time.Time {
	h := keyHash(k)
	m.usage.mu.Lock()
	defer m.usage.mu.Unlock()
	var last int64
	for _, t := range m.usage.m {
		if at, ok := t[h]; ok && at > last {
			last = at
		}
	}
	if last == 0 {
		return time.Time{}
	}
	return time.Unix(0, last)
}
