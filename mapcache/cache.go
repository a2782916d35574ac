package mapcache

import (
	"cmp"
	"iter"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaissmai/bart"
)

// Defaults applied by New for zero Config fields.
const (
	// DefaultMaxEntries bounds the cache when Config.MaxEntries is 0. At
	// about 320 bytes per entry with one or two RLOCs (BenchmarkMemory) a
	// full cache takes about 320 MB of heap.
	DefaultMaxEntries = 1_000_000
	// DefaultFeedBuffer is the buffer of a subscription made with Subscribe(0).
	DefaultFeedBuffer = 4096
	// DefaultSweepPeriod is how often Run sweeps expired entries.
	DefaultSweepPeriod = time.Second
	// DefaultEvictionSamples is how many entries are sampled to choose the
	// least recently used one to evict.
	DefaultEvictionSamples = 16
)

// Config configures a Cache. The zero value is usable.
type Config struct {
	// MaxEntries bounds the number of entries; at the bound, inserting a new
	// key evicts an approximately least recently used one. 0 or less means
	// DefaultMaxEntries.
	MaxEntries int
	// Clock returns the current time; nil means time.Now. Tests inject a fake.
	Clock func() time.Time
	// OnExpire, if set, is called by Sweep for each entry whose deadline has
	// passed, before it is removed; it decides whether to delete the entry
	// or keep it a little longer (Extend). It is called without any cache
	// lock held, from the goroutine that runs Sweep, so it may call any Cache
	// method, but it should return quickly: one sweep calls it for every
	// due entry before the next sweep can start.
	OnExpire func(e *Entry) ExpireDecision
	// FeedBuffer is the buffer of subscriptions made with Subscribe(0).
	// 0 or less means DefaultFeedBuffer.
	FeedBuffer int
	// SweepPeriod is how often Run sweeps, and the grace LookupAt gives an
	// entry past its deadline before treating it as gone (the time the
	// sweeper may take to consult OnExpire). 0 or less means
	// DefaultSweepPeriod.
	SweepPeriod time.Duration
	// EvictionSamples is how many entries are sampled per eviction.
	// 0 or less means DefaultEvictionSamples.
	EvictionSamples int
}

// Stats are the cache's counters, each read atomically (the set as a whole
// is not one snapshot).
type Stats struct {
	// Entries is the number of entries in the cache.
	Entries int
	// Lookups is Hits + Misses.
	Lookups uint64
	// Hits counts lookups that returned an entry (positive or negative).
	Hits uint64
	// Misses counts lookups that found no live entry.
	Misses uint64
	// Inserts counts entries added under a new key.
	Inserts uint64
	// Replaces counts entries that replaced one with the same key.
	Replaces uint64
	// StaleRejects counts inserts refused with ErrStale.
	StaleRejects uint64
	// Deletes counts entries removed by Delete or DeleteFunc.
	Deletes uint64
	// Expired counts entries removed by Sweep.
	Expired uint64
	// Extended counts expiry deadlines pushed back by OnExpire.
	Extended uint64
	// Evicted counts entries evicted to respect MaxEntries.
	Evicted uint64
	// FeedOverflows counts changes dropped because a subscriber's buffer was
	// full (each such subscriber is sent a Resync).
	FeedOverflows uint64
}

// table is the longest-prefix-match structure for one instance-ID. bart's
// Fast variant was measured against its Table on 1.1M prefixes
// (BenchmarkLookup, BenchmarkInsert, BenchmarkMemory): lookups take about
// 0.77 of Table's time, for about 20 more bytes per entry and similar
// copy-on-write insert cost; the packet path is what matters here.
type table = bart.Fast[*Entry]

// instance holds the table of one instance-ID. The table pointer is swapped
// by the writer; readers load it.
type instance struct {
	iid uint32
	tab atomic.Pointer[table]
	// n is the number of entries in tab; writer only.
	n int
}

// linearMax is the number of instance-IDs up to which index.find scans a
// slice instead of using a map.
const linearMax = 8

// index maps instance-IDs to instances. It is immutable once published:
// adding or removing an instance-ID publishes a new index.
type index struct {
	insts []*instance          // sorted by iid
	m     map[uint32]*instance // set when len(insts) > linearMax
}

func (x *index) find(iid uint32) *instance {
	if x.m == nil {
		for _, inst := range x.insts {
			if inst.iid == iid {
				return inst
			}
		}
		return nil
	}
	return x.m[iid]
}

func cmpInstance(inst *instance, iid uint32) int {
	return cmp.Compare(inst.iid, iid)
}

// with returns a copy of x with inst added (x must not hold inst.iid).
func (x *index) with(inst *instance) *index {
	i, _ := slices.BinarySearchFunc(x.insts, inst.iid, cmpInstance)
	n := &index{insts: slices.Insert(slices.Clone(x.insts), i, inst)}
	n.buildMap()
	return n
}

// without returns a copy of x without iid.
func (x *index) without(iid uint32) *index {
	i, ok := slices.BinarySearchFunc(x.insts, iid, cmpInstance)
	if !ok {
		return x
	}
	n := &index{insts: slices.Delete(slices.Clone(x.insts), i, i+1)}
	n.buildMap()
	return n
}

func (x *index) buildMap() {
	if len(x.insts) <= linearMax {
		return
	}
	x.m = make(map[uint32]*instance, len(x.insts))
	for _, inst := range x.insts {
		x.m[inst.iid] = inst
	}
}

// lookupStripes spreads the hit and miss counters over cache lines so that
// packet-path goroutines on different cores rarely write the same line.
const lookupStripes = 16

type lookupStripe struct {
	hits, misses atomic.Uint64
	_            [64 - 16]byte
}

// writer is the writer lock and the state it guards.
type writer struct {
	sync.Mutex
	// heap orders the entries that can expire by deadline; it is also the
	// population that eviction samples from.
	heap []heapItem
	// subs are the open change-feed subscriptions.
	subs []*Subscription
	// rng chooses eviction samples.
	rng *rand.Rand
	// pool holds the best eviction candidates left from earlier evictions.
	pool []*Entry
	// limboMin is the earliest deadline of the entries a sweep took out of
	// the heap while it consults OnExpire, math.MaxInt64 if none.
	limboMin int64
}

// Cache is the ITR's EID-to-RLOC map-cache. See the package documentation
// for its concurrency design. A Cache must be created with New.
type Cache struct {
	// Read by the packet path without locks; written rarely.
	idx    atomic.Pointer[index]
	coarse atomic.Int64 // the cache clock at the end of the last sweep, Unix ns
	// minDeadline is at most the earliest deadline of any entry in the
	// cache, so a lookup whose limit is below it need not read the entry's
	// own deadline (which would cost a cache miss on the packet path).
	minDeadline atomic.Int64
	grace       int64 // SweepPeriod in ns, for LookupAt
	_           [64]byte
	// Written by the packet path.
	lk [lookupStripes]lookupStripe

	maxEntries  int
	clock       func() time.Time
	onExpire    func(*Entry) ExpireDecision
	feedBuffer  int
	sweepPeriod time.Duration
	samples     int

	count    atomic.Int64
	inserts  atomic.Uint64
	replaces atomic.Uint64
	stale    atomic.Uint64
	deletes  atomic.Uint64
	expired  atomic.Uint64
	extended atomic.Uint64
	evicted  atomic.Uint64
	overflow atomic.Uint64

	running atomic.Bool
	// sweepMu serializes sweeps. Lock order: sweepMu before w.
	sweepMu sync.Mutex
	w       writer
}

// New returns an empty cache configured by cfg.
func New(cfg Config) *Cache {
	c := &Cache{
		maxEntries:  cfg.MaxEntries,
		clock:       cfg.Clock,
		onExpire:    cfg.OnExpire,
		feedBuffer:  cfg.FeedBuffer,
		sweepPeriod: cfg.SweepPeriod,
		samples:     cfg.EvictionSamples,
	}
	if c.maxEntries <= 0 {
		c.maxEntries = DefaultMaxEntries
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	if c.feedBuffer <= 0 {
		c.feedBuffer = DefaultFeedBuffer
	}
	if c.sweepPeriod <= 0 {
		c.sweepPeriod = DefaultSweepPeriod
	}
	if c.samples <= 0 {
		c.samples = DefaultEvictionSamples
	}
	c.grace = int64(c.sweepPeriod)
	c.w.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	c.idx.Store(&index{})
	c.minDeadline.Store(math.MaxInt64)
	c.w.limboMin = math.MaxInt64
	c.coarse.Store(c.clock().UnixNano())
	return c
}

// Now returns the cache clock (Config.Clock), for callers that stamp
// entries with Touch or call LookupAt: now := c.Now().UnixNano().
func (c *Cache) Now() time.Time {
	return c.clock()
}

// Lookup returns the entry with the longest prefix that contains dst within
// instance-ID iid, positive or negative. It takes no lock, does not allocate,
// and does not read the clock: an entry counts as gone once its deadline is
// not after the time of the last completed sweep, so without Run or Sweep
// nothing expires here. Use LookupAt on the packet path, which already has
// the time. An IPv4-mapped IPv6 dst is looked up as IPv4.
func (c *Cache) Lookup(iid uint32, dst netip.Addr) (*Entry, bool) {
	return c.lookup(iid, dst, c.coarse.Load())
}

// LookupAt is Lookup with the current time given by the caller, in Unix
// nanoseconds of the cache clock. It never returns an entry whose deadline is
// more than SweepPeriod before now: that grace lets the sweeper consult
// OnExpire (which may extend the entry) before lookups stop seeing it. If the
// longest match is past that limit, the longest live covering entry is
// returned instead. It takes no lock and does not allocate. It does not
// touch the entry: the packet path calls Entry.Touch(now) on the entry it
// uses.
func (c *Cache) LookupAt(iid uint32, dst netip.Addr, now int64) (*Entry, bool) {
	return c.lookup(iid, dst, now-c.grace)
}

// Peek is LookupAt without counting the lookup in Stats: the packet path,
// which looks up one destination after another, counts hits and misses
// itself and adds them once per batch with CountLookups. An atomic counter
// update per lookup is a locked instruction that stops the processor from
// overlapping the memory accesses of successive lookups; on random
// destinations in a large table that costs more than the lookup's own work.
func (c *Cache) Peek(iid uint32, dst netip.Addr, now int64) (*Entry, bool) {
	return c.find(iid, dst, now-c.grace)
}

// CountLookups adds lookups made with Peek to Stats: hits that found an
// entry and misses that did not.
func (c *Cache) CountLookups(hits, misses uint64) {
	if hits != 0 {
		c.lk[0].hits.Add(hits)
	}
	if misses != 0 {
		c.lk[0].misses.Add(misses)
	}
}

// lookup returns the longest match whose deadline is after limit, and
// counts it.
func (c *Cache) lookup(iid uint32, dst netip.Addr, limit int64) (*Entry, bool) {
	e, ok := c.find(iid, dst, limit)
	if ok {
		c.stripe(dst).hits.Add(1)
	} else {
		c.stripe(dst).misses.Add(1)
	}
	return e, ok
}

// find returns the longest match whose deadline is after limit.
func (c *Cache) find(iid uint32, dst netip.Addr, limit int64) (*Entry, bool) {
	if inst := c.idx.Load().find(iid); inst != nil {
		if dst.Is4In6() {
			dst = dst.Unmap()
		}
		t := inst.tab.Load()
		if e, ok := t.Lookup(dst); ok {
			if limit < c.minDeadline.Load() || e.deadline.Load() > limit {
				return e, true
			}
			if e, ok = liveCover(t, e, limit); ok {
				return e, true
			}
		}
	}
	return nil, false
}

// LookupBatch is LookupAt for a batch of destinations in one instance-ID,
// as the packet path reads them from a TUN device: out[i] receives the
// entry for dsts[i], or nil. Only the first min(len(dsts), len(out))
// destinations are looked up; it returns how many were found. All lookups
// use the same table version, and the counters are updated once per batch,
// which saves most of the per-lookup overhead of LookupAt.
func (c *Cache) LookupBatch(iid uint32, dsts []netip.Addr, now int64, out []*Entry) int {
	n := min(len(dsts), len(out))
	if n == 0 {
		return 0
	}
	dsts, out = dsts[:n], out[:n]
	hits := 0
	if inst := c.idx.Load().find(iid); inst != nil {
		limit := now - c.grace
		t := inst.tab.Load()
		fresh := limit < c.minDeadline.Load()
		for i, dst := range dsts {
			if dst.Is4In6() {
				dst = dst.Unmap()
			}
			e, ok := t.Lookup(dst)
			if ok && !fresh && e.deadline.Load() <= limit {
				e, ok = liveCover(t, e, limit)
			}
			if ok {
				out[i] = e
				hits++
			} else {
				out[i] = nil
			}
		}
	} else {
		clear(out)
	}
	s := c.stripe(dsts[0])
	if hits > 0 {
		s.hits.Add(uint64(hits))
	}
	if hits < n {
		s.misses.Add(uint64(n - hits))
	}
	return hits
}

func (c *Cache) stripe(dst netip.Addr) *lookupStripe {
	b := dst.As16()
	return &c.lk[b[15]%lookupStripes]
}

// liveCover returns the longest entry covering e's prefix whose deadline is
// after limit.
func liveCover(t *table, e *Entry, limit int64) (*Entry, bool) {
	for _, s := range t.Supernets(e.Prefix) {
		if s.deadline.Load() > limit {
			return s, true
		}
	}
	return nil, false
}

// Get returns the entry with exactly this key, whatever its deadline (an
// entry stays in the cache until a sweep removes it).
func (c *Cache) Get(k Key) (*Entry, bool) {
	inst := c.idx.Load().find(k.InstanceID)
	if inst == nil {
		return nil, false
	}
	return inst.tab.Load().Get(k.Prefix)
}

// Len returns the number of entries.
func (c *Cache) Len() int {
	return int(c.count.Load())
}

// tables returns the current table of every instance-ID in ascending
// instance-ID order, read under the writer lock so that together they are
// one point in time.
func (c *Cache) tables() []*table {
	c.w.Lock()
	defer c.w.Unlock()
	idx := c.idx.Load()
	ts := make([]*table, len(idx.insts))
	for i, inst := range idx.insts {
		ts[i] = inst.tab.Load()
	}
	return ts
}

// All returns an iterator over a point-in-time snapshot of the entries, in
// the order of Snapshot. The snapshot is taken when iteration starts; the
// cache may change during iteration without affecting it.
func (c *Cache) All() iter.Seq[*Entry] {
	return func(yield func(*Entry) bool) {
		for _, t := range c.tables() {
			for _, e := range t.AllSorted() {
				if !yield(e) {
					return
				}
			}
		}
	}
}

// Snapshot returns the entries at one point in time, sorted by instance-ID,
// then IPv4 before IPv6, then prefix address, then prefix length.
func (c *Cache) Snapshot() []*Entry {
	out := make([]*Entry, 0, c.Len())
	for e := range c.All() {
		out = append(out, e)
	}
	return out
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	s := Stats{
		Entries:       c.Len(),
		Inserts:       c.inserts.Load(),
		Replaces:      c.replaces.Load(),
		StaleRejects:  c.stale.Load(),
		Deletes:       c.deletes.Load(),
		Expired:       c.expired.Load(),
		Extended:      c.extended.Load(),
		Evicted:       c.evicted.Load(),
		FeedOverflows: c.overflow.Load(),
	}
	for i := range c.lk {
		s.Hits += c.lk[i].hits.Load()
		s.Misses += c.lk[i].misses.Load()
	}
	s.Lookups = s.Hits + s.Misses
	return s
}
