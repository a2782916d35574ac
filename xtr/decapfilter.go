package xtr

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/wire"
)

// The ETR's decapsulation filter: which outer sources it decapsulates
// from.
//
// Without the filter the ETR decapsulates whatever reaches its UDP port
// 4341 and is addressed to one of its EIDs, so any host that can send to
// an RLOC can inject packets into the site. With it (ETRConfig.DecapFilter,
// config etr.decap-filter) the Decapsulator accepts a datagram only when its
// outer source is an RLOC the ETR knows, as Cisco's "decapsulation filter"
// does:
//
//   - the locators of its own database (every xTR of the site, and so every
//     member of a synchronization set, which registers them all) and this
//     xTR's own RLOCs (ETRConfig.LocalRLOCs);
//   - the prefixes of ETRConfig.DecapFilterAllow (PITRs, RTRs, the RLOC
//     space of a provider whose xTRs are all trusted);
//   - with FollowMapServer, the locators of the Map-Server's merged
//     registrations of the database's prefixes (the other xTRs of the site,
//     whatever their own configuration lists);
//   - the ITR-RLOCs (and the reply address) of every Map-Request and
//     RLOC-probe the ETR answered: the ITRs that resolved one of its EIDs
//     are the ones about to encapsulate to it (RFC 9300 section 9 calls
//     learning from what arrives "gleaning"). This is what lets an
//     ETR-only box, with no map-cache, accept the remote ITRs it never
//     resolved itself. The remote ITRs a synchronization set's peers
//     delivered packets from (ETR.MergeRemoteITRs) are learned the same
//     way, so that a site's second xTR accepts an ITR that only asked the
//     first. These are bounded (DefaultMaxGleanedRLOCs; past it the eighth
//     seen longest ago is forgotten, an RLOC that sent packets lately
//     counting as seen then) and forgotten a Record TTL after they were
//     last seen (an ITR may keep the mapping, and send, that long without
//     asking again);
//   - when the xTR is also an ITR (its DataPlane has both), an outer source
//     that is an RLOC of the ITR's map-cache entry for the packet's inner
//     source: the remote site the ITR resolved. This is checked only for
//     an outer source outside the set above, by a lock-free map-cache
//     lookup, and it binds the RLOC to the site the packet claims to come
//     from rather than admitting any RLOC of any cached mapping.
//
// Everything but the map-cache is kept in one immutable dataplane.RLOCSet
// (a bart table), updated copy-on-write and swapped atomically into the
// Decapsulator, so the packet path takes no lock and allocates nothing:
// one table lookup per datagram. The set is kept up to date with the
// filter off too, so that turning it on by a reload starts from what the
// ETR has learned.
//
// Outer source addresses can be spoofed: the filter stops injection from
// hosts that are not LISP peers, not from one that forges a peer's address
// (nor from one that sends a Map-Request for one of the site's EIDs first,
// which makes it a peer). The own-EID-source and LISP-crypto drops of the
// Decapsulator hold whether the filter is on or off.

// DefaultMaxGleanedRLOCs bounds the RLOCs the decapsulation filter learns
// from the Map-Requests the ETR answers and from the synchronization set's
// peers (ETRConfig.MaxGleanedRLOCs).
const DefaultMaxGleanedRLOCs = 16384

// gleanPruneInterval is how often gleaned RLOCs are checked for expiry.
const gleanPruneInterval = time.Minute

// Sources of the filter's prefixes: the bits of decapFilter.refs.
const (
	fromConfig    uint8 = 1 << iota // database locators, local RLOCs, DecapFilterAllow
	fromMapServer                   // locators of the Map-Server's merged registrations
	fromGleaned                     // answered Map-Requests, the sync set's remote ITRs
)

// sighting is an RLOC seen at a time (Unix nanoseconds).
type sighting struct {
	addr netip.Addr
	at   int64
}

// decapFilter maintains the ETR's decapsulation filter: the set of known
// RLOCs, from several sources, published to the Decapsulator while on.
type decapFilter struct {
	dec *dataplane.Decapsulator

	// mu guards the fields below. Lock order: ETR.cfgMu before mu, mu
	// before remoteITRTable.mu (the recent callbacks); nothing is taken
	// after them.
	mu         sync.Mutex
	on         bool
	set        *dataplane.RLOCSet                   // every prefix of refs
	refs       map[netip.Prefix]uint8               // the sources (from*) holding each prefix
	config     map[netip.Prefix]struct{}            // fromConfig's prefixes
	server     map[dataplane.EIDPrefix][]netip.Addr // merged locators per database prefix
	serverSet  map[netip.Prefix]struct{}            // fromMapServer's prefixes
	gleaned    map[netip.Addr]int64                 // fromGleaned's RLOCs, last seen
	maxGleaned int
	nextPrune  int64
	changed    map[netip.Prefix]bool // scratch: prefixes whose presence changed, with whether they were present
}

func newDecapFilter(dec *dataplane.Decapsulator) *decapFilter {
	set, _ := dataplane.NewRLOCSet()
	return &decapFilter{
		dec:        dec,
		set:        set,
		refs:       map[netip.Prefix]uint8{},
		config:     map[netip.Prefix]struct{}{},
		server:     map[dataplane.EIDPrefix][]netip.Addr{},
		serverSet:  map[netip.Prefix]struct{}{},
		gleaned:    map[netip.Addr]int64{},
		maxGleaned: DefaultMaxGleanedRLOCs,
		changed:    map[netip.Prefix]bool{},
	}
}

// configure applies the settings and the database: the filter on or off,
// the configured prefixes, and the database's locators; Map-Server
// locators of prefixes no longer in the database are forgotten.
func (f *decapFilter) configure(st *etrSettings, db *database) {
	want := map[netip.Prefix]struct{}{}
	for _, p := range st.decapAllow {
		want[p] = struct{}{}
	}
	for _, a := range st.local {
		want[dataplane.HostPrefix(a)] = struct{}{}
	}
	for _, m := range db.maps {
		for _, l := range m.RLOCs {
			want[dataplane.HostPrefix(l.Addr)] = struct{}{}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replaceLocked(fromConfig, &f.config, want)
	for k := range f.server {
		if db.find(k.InstanceID, k.Prefix) < 0 {
			delete(f.server, k)
		}
	}
	f.replaceLocked(fromMapServer, &f.serverSet, f.serverUnionLocked())
	f.on, f.maxGleaned = st.decapFilter, st.maxGleaned
	if len(f.gleaned) > f.maxGleaned {
		f.evictLocked(len(f.gleaned)-f.maxGleaned, nil)
	}
	f.commitLocked()
}

// learnFromMapServer takes the locators of the records of a Map-Server's
// merged registration that are prefixes of the database (the other xTRs
// of the site), replacing what an earlier one said of those prefixes.
func (f *decapFilter) learnFromMapServer(recs []wire.EIDRecord, db *database) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range recs {
		iid, pfx, ok := recs[k].Prefix()
		if !ok || db.find(iid, pfx) < 0 {
			continue
		}
		var addrs []netip.Addr
		for _, l := range recs[k].Locators {
			if _, a, ok := l.Address.InstanceIP(); ok && gleanable(a.Unmap()) {
				addrs = append(addrs, a.Unmap())
			}
		}
		f.server[dataplane.EIDPrefix{InstanceID: iid, Prefix: pfx}] = addrs
	}
	f.replaceLocked(fromMapServer, &f.serverSet, f.serverUnionLocked())
	f.commitLocked()
}

// serverUnionLocked returns the prefixes of every Map-Server locator.
func (f *decapFilter) serverUnionLocked() map[netip.Prefix]struct{} {
	out := map[netip.Prefix]struct{}{}
	for _, addrs := range f.server {
		for _, a := range addrs {
			out[dataplane.HostPrefix(a)] = struct{}{}
		}
	}
	return out
}

// glean learns the RLOCs seen (or refreshes when they were last seen) and
// returns how many are new and how many older ones the bound evicted.
// recent, called at the bound, gives when each RLOC last delivered packets
// (the remote-ITR table).
func (f *decapFilter) glean(seen []sighting, recent func() map[netip.Addr]int64) (added, evicted int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range seen {
		a := s.addr.Unmap()
		if !gleanable(a) {
			continue
		}
		if t, ok := f.gleaned[a]; ok {
			f.gleaned[a] = max(t, s.at)
			continue
		}
		if len(f.gleaned) >= f.maxGleaned {
			evicted += f.evictLocked(max(len(f.gleaned)/8, 1), recent)
		}
		f.gleaned[a] = s.at
		f.markLocked(dataplane.HostPrefix(a), fromGleaned, true)
		added++
	}
	if added > 0 || evicted > 0 {
		f.commitLocked()
	}
	return added, evicted
}

// evictLocked forgets the n gleaned RLOCs seen longest ago, after
// refreshing their times from recent (when not nil), and returns n.
func (f *decapFilter) evictLocked(n int, recent func() map[netip.Addr]int64) int {
	f.refreshLocked(recent)
	type aged struct {
		a  netip.Addr
		at int64
	}
	all := make([]aged, 0, len(f.gleaned))
	for a, at := range f.gleaned {
		all = append(all, aged{a, at})
	}
	slices.SortFunc(all, func(x, y aged) int {
		return cmp.Or(cmp.Compare(x.at, y.at), x.a.Compare(y.a))
	})
	n = min(n, len(all))
	for _, x := range all[:n] {
		delete(f.gleaned, x.a)
		f.markLocked(dataplane.HostPrefix(x.a), fromGleaned, false)
	}
	return n
}

// refreshLocked moves the last-seen time of each gleaned RLOC up to when it
// last delivered packets.
func (f *decapFilter) refreshLocked(recent func() map[netip.Addr]int64) {
	if recent == nil {
		return
	}
	for a, at := range recent() {
		if t, ok := f.gleaned[a]; ok && at > t {
			f.gleaned[a] = at
		}
	}
}

// prune forgets, once a minute, the gleaned RLOCs not seen (asking for a
// mapping, or delivering packets) within maxAge, and returns how many.
func (f *decapFilter) prune(now int64, maxAge time.Duration, recent func() map[netip.Addr]int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now < f.nextPrune {
		return 0
	}
	f.nextPrune = now + int64(gleanPruneInterval)
	cutoff := now - int64(maxAge)
	stale := false
	for _, at := range f.gleaned {
		if at < cutoff {
			stale = true
			break
		}
	}
	if !stale {
		return 0
	}
	f.refreshLocked(recent)
	n := 0
	for a, at := range f.gleaned {
		if at < cutoff {
			delete(f.gleaned, a)
			f.markLocked(dataplane.HostPrefix(a), fromGleaned, false)
			n++
		}
	}
	f.commitLocked()
	return n
}

// replaceLocked makes want the prefixes of source src, whose current ones
// are *cur.
func (f *decapFilter) replaceLocked(src uint8, cur *map[netip.Prefix]struct{}, want map[netip.Prefix]struct{}) {
	for p := range *cur {
		if _, ok := want[p]; !ok {
			f.markLocked(p, src, false)
		}
	}
	for p := range want {
		if _, ok := (*cur)[p]; !ok {
			f.markLocked(p, src, true)
		}
	}
	*cur = want
}

// markLocked adds (hold) or removes source src from prefix p, noting when
// that changes whether p is in the set.
func (f *decapFilter) markLocked(p netip.Prefix, src uint8, hold bool) {
	old := f.refs[p]
	cur := old &^ src
	if hold {
		cur = old | src
	}
	if cur == old {
		return
	}
	if cur == 0 {
		delete(f.refs, p)
	} else {
		f.refs[p] = cur
	}
	if (old == 0) != (cur == 0) {
		if _, seen := f.changed[p]; !seen {
			f.changed[p] = old != 0
		}
	}
}

// commitLocked applies the changes noted since the last commit to a new
// set and publishes it to the Decapsulator (nil while the filter is off).
func (f *decapFilter) commitLocked() {
	var add, del []netip.Prefix
	for p, was := range f.changed {
		switch now := f.refs[p] != 0; {
		case now && !was:
			add = append(add, p)
		case !now && was:
			del = append(del, p)
		}
	}
	clear(f.changed)
	if len(add)+len(del) > 0 {
		f.set = f.set.Update(add, del)
	}
	if f.on {
		f.dec.SetRLOCFilter(f.set)
	} else {
		f.dec.SetRLOCFilter(nil)
	}
}

// gleanable reports whether a can be a remote RLOC: a unicast address (as
// the ETR's own RLOCs must be: loopback ones serve single-host labs), not
// the limited broadcast address.
func gleanable(a netip.Addr) bool {
	return usableUnicast(a) && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// requestSightings returns the RLOCs of an ITR whose Map-Request (or
// RLOC-probe) the ETR answered at now: the address the reply went to and
// every ITR-RLOC of the request.
func requestSightings(req *wire.MapRequest, to netip.AddrPort, now int64) []sighting {
	out := make([]sighting, 0, len(req.ITRRLOCs)+1)
	out = append(out, sighting{to.Addr(), now})
	for k := range req.ITRRLOCs {
		if _, ip, ok := req.ITRRLOCs[k].InstanceIP(); ok {
			out = append(out, sighting{ip, now})
		}
	}
	return out
}

// gleanRequest learns the RLOCs of an ITR whose Map-Request the ETR
// answered, for the decapsulation filter.
func (e *ETR) gleanRequest(req *wire.MapRequest, to netip.AddrPort, now time.Time) {
	e.countGleaned(e.filter.glean(requestSightings(req, to, now.UnixNano()), e.remote.lastSeenByRLOC))
}

// countGleaned counts RLOCs the filter learned and evicted.
func (e *ETR) countGleaned(added, evicted int) {
	if added > 0 {
		e.ctr.add(eDecapFilterLearned, uint64(added))
	}
	if evicted > 0 {
		e.ctr.add(eDecapFilterEvicted, uint64(evicted))
		e.warn("decapsulation filter: too many RLOCs learned from Map-Requests; forgot those seen longest ago",
			"forgotten", evicted, "bound", e.settings.Load().maxGleaned)
	}
}

// pruneGleaned forgets the RLOCs learned from Map-Requests (or from the
// synchronization set) that were not seen for a Record TTL.
func (e *ETR) pruneGleaned(now time.Time) {
	e.filter.prune(now.UnixNano(), e.RecordTTL(), e.remote.lastSeenByRLOC)
}

// lastSeenByRLOC returns when each remote ITR's RLOC last delivered
// packets (in any instance), Unix nanoseconds.
func (t *remoteITRTable) lastSeenByRLOC() map[netip.Addr]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[netip.Addr]int64, len(t.h.nodes))
	for k := range t.h.nodes {
		n := &t.h.nodes[k]
		if n.seen > out[n.key.rloc] {
			out[n.key.rloc] = n.seen
		}
	}
	return out
}

// mappingHasRLOC reports whether outer is an RLOC of the map-cache entry
// for src in instance iid: the decapsulation filter's check, for an xTR
// that is also an ITR, of an outer source it does not otherwise know
// (dataplane.RLOCCheckFunc). It takes no lock and does not allocate.
func (i *ITR) mappingHasRLOC(iid uint32, src, outer netip.Addr) bool {
	e, ok := i.cache.Peek(iid, src, i.now().UnixNano())
	if !ok {
		return false
	}
	for k := range e.RLOCs {
		if e.RLOCs[k].Addr == outer {
			return true
		}
	}
	return false
}
