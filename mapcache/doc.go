// Package mapcache is the ITR's EID-to-RLOC map-cache: longest-prefix match
// per instance-ID and address family, positive and negative entries, TTLs
// with absolute expiry, last-used stamps, a change feed, and a bounded size.
//
// The packet path calls Peek and Entry.Touch per packet and CountLookups once
// per batch (LookupAt and Lookup are the same lookups counted per call, for
// the control path; a per-call atomic counter would stop the processor from
// overlapping successive lookups' memory accesses); the ITR control
// logic calls Insert when a Map-Reply arrives and decides, through
// Config.OnExpire, whether an expiring entry is kept while it is refreshed;
// the synchronization set subscribes to the change feed and inserts what its
// peers learned (InsertBatch for bulk copies); the local API reads Snapshot
// and Stats.
//
// # Data structure
//
// Each instance-ID has its own bart.Fast[*Entry] table
// (github.com/gaissmai/bart) behind an atomic.Pointer. An immutable index
// maps instance-IDs to those instances (a short slice scanned linearly up to
// 8 instance-IDs, a map beyond); it is replaced, copy-on-write, only when an
// instance-ID appears or its last entry goes. bart's Fast variant was
// preferred to its Table after measuring both at 1.1M prefixes (lookups
// about 22% faster for about 20 more bytes per entry, see the benchmarks in
// bench_test.go); its Lite variant holds no values and cannot return
// entries.
//
// # Concurrency
//
// Readers (Lookup, LookupAt, Peek, LookupBatch, Get, Len, Stats, Entry methods)
// take no lock, and the lookups never allocate: they load the index, then
// the table, then run bart's lookup on that immutable version. Each lookup
// adds to a hit or miss counter (striped over cache lines by destination);
// that atomic add is most of Lookup's overhead over a bare bart lookup,
// because it is a full barrier that keeps the processor from overlapping
// successive lookups' memory accesses. LookupBatch counts once per batch
// and runs at bart's own speed.
//
// Writers (Insert, InsertBatch, Delete, DeleteFunc, Sweep, eviction,
// Subscribe/Close) are serialized by one mutex (Cache.w). A write builds new
// table versions with bart's copy-on-write operations (InsertPersist,
// DeletePersist clone only the nodes on the prefix's path), or, when one
// critical section changes a large part of a table (InsertBatch, a sweep
// expiring many entries, DeleteFunc), clones the table once and modifies the
// clone in place. The table versions of one critical section are published
// together at its end, so a lookup sees a write (or a whole batch, within
// its instance-ID) or nothing of it; Snapshot and All, which take the lock
// to pick up the tables, see whole critical sections. Old versions are reclaimed by the garbage collector once no reader
// holds them: that is the whole memory-reclamation scheme.
//
// Lock order: Cache.sweepMu (serializes sweeps) before Cache.w. No other
// lock exists. OnExpire is called with neither held, so it may call any
// Cache method. Change-feed sends happen under Cache.w and never block.
//
// # Entries
//
// An Entry is immutable once inserted, except for two atomics: the last-used
// stamp written by Touch (at most once per TouchGranularity, so a busy
// entry's cache line is not written by every packet), and the per-RLOC
// reachability bits written by SetReachable (RLOC-probing changes them
// without replacing the entry; a replacement starts from its RLOCs'
// Reachable values). Insert takes ownership of the Entry; an Entry is
// inserted at most once. A replacement inherits the last-used stamp of the
// entry it replaces.
//
// # Expiry
//
// Entries that can expire sit in a binary min-heap ordered by deadline
// (Expires, or later once OnExpire extended it), so a sweep costs
// O(expired × log n), not a scan. Sweep(now) takes the due entries out of
// the heap, releases the lock, asks OnExpire about each (DeleteNow or
// Extend(d)), then removes or re-schedules them; an entry replaced or deleted
// meanwhile is left to its new state. Run calls Sweep every SweepPeriod.
// Permanent entries (TTL == Permanent) never expire and are never evicted.
//
// Lookups check deadlines without reading the clock: LookupAt compares with
// the caller's now minus one SweepPeriod of grace (the time the sweeper has
// to consult OnExpire, which may extend the entry), so it never returns an
// entry more than one sweep period past its deadline; Lookup compares with
// the time of the last completed sweep, so with Run active it never returns
// an entry more than one sweep period (plus the sweep's own duration) past
// its deadline. When the longest match is past that limit, the longest live
// covering entry is returned instead. To keep the packet path from reading
// every matched entry's deadline (a cache miss per packet on a large
// table), the cache keeps a watermark no later than the earliest deadline
// of any entry; a lookup reads the entry's deadline only when its limit is
// past the watermark, that is when some entry is overdue, which a running
// sweeper makes rare.
//
// # Bounded size
//
// At MaxEntries, inserting a new key evicts an approximately least recently
// used entry among those that can expire, by the later of its last-used
// stamp and insertion time. An exact LRU list would need a lock or shared
// writes on the packet path; instead eviction samples EvictionSamples random
// entries, merges them into a pool of the best candidates left from earlier
// evictions (Redis's approximation), re-reads their stamps and evicts the
// oldest. TestEvictionApproximatesLRU measures it: on 1,000 entries the
// victim is on average among the least recently used 3%.
//
// # Change feed
//
// Subscribe returns a Subscription whose channel carries every change
// (Added, Replaced, Deleted, Expired, Evicted) in the order it was applied.
// The cache never blocks on a subscriber: when the buffer is full, changes
// are dropped (counted in Dropped and Stats.FeedOverflows) and a Resync is
// queued in a slot reserved for it. A subscriber that reads Resync takes a
// Snapshot, replaces its view with it, and keeps applying the changes that
// follow; re-applying those already in the snapshot, in order, yields the
// same state. TestFeedSubscriberConverges checks exactly that.
package mapcache
