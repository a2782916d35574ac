package mapserver

import (
	"cmp"
	"container/heap"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gaissmai/bart"

	"github.com/lispd/lispd/wire"
)

// The registration database has two sides.
//
// The writer side (registry, guarded by Server.regMu) holds every
// registration: one per EID-prefix and registering xTR, with its record,
// flags, times and source. Refreshing a registration only touches this side.
//
// The reader side (state, behind Server.state) holds, per instance-ID, an
// immutable bart table from registered EID-prefix to a published entry: what
// a Map-Request needs (the merged RLOC-set, proxy flag, ETRs to forward to).
// Writers replace an instance-ID's table copy-on-write (InsertPersist) when a
// published entry changes, so the request path reads without locks.

// xtrKey identifies a registering xTR: its xTR-ID when the Map-Register had
// the I bit, else its source address.
type xtrKey struct {
	id    wire.XTRID
	hasID bool
	addr  netip.Addr
}

// registration is one xTR's registration of one EID-prefix.
type registration struct {
	prefix     EIDPrefix
	site       string
	xtr        xtrKey
	siteID     uint64
	record     wire.EIDRecord // as registered, deep-copied
	proxy      bool
	wantNotify bool
	merge      bool
	keyID      uint8
	algorithm  wire.AlgorithmID
	source     netip.AddrPort
	first      time.Time
	last       time.Time
	expires    time.Time
	seq        uint64 // order of the last change, for "latest wins"
	// digest and nonce identify the last Map-Register that refreshed the
	// registration (replay.go).
	digest  uint64
	nonce   uint64
	removed bool
}

// prefixEntry holds the registrations of one EID-prefix.
type prefixEntry struct {
	prefix EIDPrefix
	site   string
	// regs are the registrations of the prefix, one per xTR, in no
	// particular order. A slice rather than a map: a prefix has few
	// registering xTRs (the ETRs of one site), and a map of one costs
	// about 500 bytes per registered prefix.
	regs []*registration
	pub  *published
	// locKey is the canonical encoding of the merged RLOC-set, to detect
	// changes.
	locKey string
	// replaced are the source addresses of the xTR-ID-less registrations
	// the auto policy replaced (at most maxReplaced, the latest); multi is
	// set once one of them registered again: the site has several ETRs
	// without xTR-IDs, and auto merges them from then on.
	replaced []netip.Addr
	multi    bool
}

// maxReplaced bounds prefixEntry.replaced.
const maxReplaced = 4

// published is the immutable view of a registered EID-prefix that the
// request path reads.
type published struct {
	prefix EIDPrefix
	site   string
	// proxy is set when the site allows proxy replies and a registering
	// ETR asked for them.
	proxy bool
	// record is the merged mapping, non-authoritative, for proxy replies.
	// Shared read-only: never modify it or its slices.
	record wire.EIDRecord
	// etrs are the addresses a Map-Request may be forwarded to.
	etrs []netip.Addr
}

// iidRegs holds the published table of one instance-ID.
type iidRegs struct {
	t atomic.Pointer[bart.Table[*published]]
}

// state is what the request path reads: the configuration and the published
// registrations. The map is immutable; a new state is stored when an
// instance-ID appears or the configuration changes.
type state struct {
	sites *siteTable
	regs  map[uint32]*iidRegs
}

// lookup returns the published entry whose prefix is the longest match for
// p in iid, if any.
func (st *state) lookup(iid uint32, p netip.Prefix) (*published, bool) {
	r := st.regs[iid]
	if r == nil {
		return nil, false
	}
	_, pub, ok := r.t.Load().LookupPrefixLPM(p)
	return pub, ok
}

// regTable returns the published table of iid, or nil.
func (st *state) regTable(iid uint32) *bart.Table[*published] {
	if r := st.regs[iid]; r != nil {
		return r.t.Load()
	}
	return nil
}

// expiryItem schedules an expiry check of a registration.
type expiryItem struct {
	at  time.Time
	reg *registration
}

// expiryHeap is a min-heap of expiry checks. Each live registration has
// exactly one item; a refresh does not touch the heap: when the item comes
// due and the registration was refreshed meanwhile, it is pushed again with
// the new expiry.
type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = expiryItem{}
	*h = old[:len(old)-1]
	return it
}

// registry is the writer side of the database. Guarded by Server.regMu.
type registry struct {
	entries map[EIDPrefix]*prefixEntry
	// perSite and perSitePrefixes count the registrations and the
	// registered EID-prefixes of each site, total all registrations: the
	// limits (Site.MaxRegistrations, Site.MaxPrefixes,
	// Config.MaxRegistrations).
	perSite         map[string]int
	perSitePrefixes map[string]int
	total           int
	expiry          expiryHeap
	seq             uint64
}

func newRegistry() *registry {
	return &registry{
		entries:         make(map[EIDPrefix]*prefixEntry),
		perSite:         make(map[string]int),
		perSitePrefixes: make(map[string]int),
	}
}

// nextExpiry returns the time of the earliest expiry check, if any.
func (r *registry) nextExpiry() (time.Time, bool) {
	if len(r.expiry) == 0 {
		return time.Time{}, false
	}
	return r.expiry[0].at, true
}

// upsert stores the registration in, or refreshes the one of the same
// prefix and xTR. It returns the prefix entry, whether the registration is
// new, and whether what it registers (RLOCs, TTL, action, map-version,
// proxy flag) differs from before.
func (r *registry) upsert(in *registration) (e *prefixEntry, created, changed bool) {
	e = r.entries[in.prefix]
	if e == nil {
		e = &prefixEntry{prefix: in.prefix, site: in.site}
		r.entries[in.prefix] = e
		r.perSitePrefixes[in.site]++
	}
	if _, old := e.find(in.xtr); old != nil {
		changed = old.proxy != in.proxy || !sameRecord(&old.record, &in.record)
		in.seq = old.seq
		if changed {
			r.seq++
			in.seq = r.seq
		}
		// Refresh in place so the heap item stays valid.
		in.first = old.first
		*old = *in
		return e, false, changed
	}
	r.seq++
	in.seq = r.seq
	e.regs = append(e.regs, in)
	r.perSite[in.site]++
	r.total++
	heap.Push(&r.expiry, expiryItem{at: in.expires, reg: in})
	return e, true, true
}

// sameRecord reports whether two registered records map the same way: TTL,
// action, map-version and locators with their attributes.
func sameRecord(a, b *wire.EIDRecord) bool {
	if a.RecordTTL != b.RecordTTL || a.Action != b.Action || a.MapVersion != b.MapVersion ||
		len(a.Locators) != len(b.Locators) {
		return false
	}
	var ka, kb []byte
	for i := range a.Locators {
		ka = appendLocatorKey(ka[:0], &a.Locators[i])
		kb = appendLocatorKey(kb[:0], &b.Locators[i])
		if string(ka) != string(kb) {
			return false
		}
	}
	return true
}

// remove deletes one registration; the entry is deleted when it was the
// last one. It reports whether the registration existed.
func (r *registry) remove(e *prefixEntry, x xtrKey) bool {
	i, reg := e.find(x)
	if reg == nil {
		return false
	}
	reg.removed = true
	last := len(e.regs) - 1
	e.regs[i] = e.regs[last]
	e.regs[last] = nil
	e.regs = e.regs[:last]
	r.perSite[reg.site] = max(r.perSite[reg.site]-1, 0)
	r.total--
	if len(e.regs) == 0 {
		delete(r.entries, e.prefix)
		r.perSitePrefixes[e.site] = max(r.perSitePrefixes[e.site]-1, 0)
	}
	return true
}

// popDue returns the next registration whose expiry check is due at now,
// re-scheduling refreshed ones and skipping removed ones. ok is false when
// nothing is due.
func (r *registry) popDue(now time.Time) (*registration, bool) {
	for len(r.expiry) > 0 && !r.expiry[0].at.After(now) {
		it := heap.Pop(&r.expiry).(expiryItem)
		reg := it.reg
		if reg.removed {
			continue
		}
		if reg.expires.After(now) {
			heap.Push(&r.expiry, expiryItem{at: reg.expires, reg: reg})
			continue
		}
		return reg, true
	}
	return nil, false
}

// find returns the registration of xTR x and its index in e.regs, or nil.
func (e *prefixEntry) find(x xtrKey) (int, *registration) {
	for i, reg := range e.regs {
		if reg.xtr == x {
			return i, reg
		}
	}
	return -1, nil
}

// sortedRegs returns the registrations of e, least recently changed first.
func (e *prefixEntry) sortedRegs() []*registration {
	regs := make([]*registration, 0, len(e.regs))
	for _, reg := range e.regs {
		regs = append(regs, reg)
	}
	slices.SortFunc(regs, func(a, b *registration) int { return cmp.Compare(a.seq, b.seq) })
	return regs
}

// merge computes the published view of e from its registrations: the union
// of the registered RLOC-sets (one locator per address, the attributes of
// the most recently changed registration winning, ordered by address
// encoding), that registration's TTL, action and map-version, and the
// forwarding targets. It returns the view and the canonical key of the RLOC-set.
func (e *prefixEntry) merge(sites *siteTable) (*published, string) {
	regs := e.sortedRegs()
	latest := regs[len(regs)-1]
	type keyed struct {
		key string
		loc wire.Locator
	}
	byAddr := make(map[string]int)
	var locs []keyed
	for _, reg := range regs {
		for _, l := range reg.record.Locators {
			k := addrKey(l.Address)
			if i, ok := byAddr[k]; ok {
				locs[i].loc = l
				continue
			}
			byAddr[k] = len(locs)
			locs = append(locs, keyed{key: k, loc: l})
		}
	}
	slices.SortFunc(locs, func(a, b keyed) int { return cmp.Compare(a.key, b.key) })
	merged := make([]wire.Locator, len(locs))
	var lk []byte
	for i, l := range locs {
		// RFC 9301 section 5.4: "When a Map-Server is doing proxy
		// Map-Replying for a LISP site, the L-bit is set to 0 for all
		// Locators in this Locator-Set"; the p bit belongs to an RLOC-probe
		// reply from the ETR itself.
		l.loc.Local = false
		l.loc.Probed = false
		merged[i] = l.loc
		lk = appendLocatorKey(lk, &merged[i])
	}
	rec := wire.NewEIDRecord(e.prefix.InstanceID, e.prefix.Prefix)
	rec.RecordTTL = latest.record.RecordTTL
	rec.Action = latest.record.Action
	rec.MapVersion = latest.record.MapVersion
	rec.Authoritative = false // RFC 9301 section 5.4: a proxy never sets A.
	rec.Locators = merged

	proxy := false
	if s := sites.byName[e.site]; s != nil && s.proxy {
		for _, reg := range regs {
			proxy = proxy || reg.proxy
		}
	}
	pub := &published{prefix: e.prefix, site: e.site, proxy: proxy, record: rec, etrs: forwardTargets(merged, regs)}
	return pub, string(lk)
}

// forwardTargets returns where Map-Requests for a registered prefix can be
// forwarded: the reachable, usable (priority below 255) IP locators; failing
// those, every IP locator; failing those, the registering xTRs' source
// addresses.
func forwardTargets(locs []wire.Locator, regs []*registration) []netip.Addr {
	var out []netip.Addr
	add := func(a netip.Addr) {
		a = a.Unmap()
		if usableUnicast(a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, l := range locs {
		if _, ip, ok := l.Address.InstanceIP(); ok && l.Reachable && l.Priority != 255 {
			add(ip)
		}
	}
	if len(out) == 0 {
		for _, l := range locs {
			if _, ip, ok := l.Address.InstanceIP(); ok {
				add(ip)
			}
		}
	}
	if len(out) == 0 {
		for _, reg := range regs {
			add(reg.source.Addr())
		}
	}
	return out
}

// usableUnicast reports whether a can be sent to.
func usableUnicast(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast()
}

// addrKey returns a canonical byte key for an address (its encoding).
func addrKey(a wire.Address) string {
	b, err := a.AppendBinary(nil)
	if err != nil {
		return "!" + a.String()
	}
	return string(b)
}

// appendLocatorKey appends a canonical encoding of l's attributes.
func appendLocatorKey(b []byte, l *wire.Locator) []byte {
	var flags byte
	if l.Local {
		flags |= 4
	}
	if l.Probed {
		flags |= 2
	}
	if l.Reachable {
		flags |= 1
	}
	b = append(b, l.Priority, l.Weight, l.MPriority, l.MWeight, flags)
	k := addrKey(l.Address)
	b = append(b, byte(len(k)>>8), byte(len(k)))
	return append(b, k...)
}

// cloneRecord returns a deep copy of r (addresses included), so that stored
// records share nothing with a caller.
func cloneRecord(r wire.EIDRecord) wire.EIDRecord {
	r.EID = cloneAddress(r.EID)
	r.Locators = slices.Clone(r.Locators)
	for i := range r.Locators {
		r.Locators[i].Address = cloneAddress(r.Locators[i].Address)
	}
	return r
}

// cloneAddress returns a deep copy of a.
func cloneAddress(a wire.Address) wire.Address {
	a.Raw = slices.Clone(a.Raw)
	if a.Inner != nil {
		in := cloneAddress(*a.Inner)
		a.Inner = &in
	}
	if a.List != nil {
		l := make([]wire.Address, len(a.List))
		for i := range a.List {
			l[i] = cloneAddress(a.List[i])
		}
		a.List = l
	}
	return a
}
