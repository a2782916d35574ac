package mapcache

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestSweepExpiresInDeadlineOrder(t *testing.T) {
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now, SweepPeriod: time.Second})
	sub := c.Subscribe(100)
	defer sub.Close()
	// 100 entries with TTLs 1..100 s, inserted in a scrambled order.
	for i := range 100 {
		ttl := time.Duration((i*37)%100+1) * time.Second
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(ttl / time.Second), 0, 0}), 16)
		mustInsert(t, c, &Entry{Prefix: p, TTL: ttl})
	}
	mustInsert(t, c, ent(0, "0.0.0.0/0", 1, Permanent))
	drain(sub)
	for s := 1; s <= 100; s++ {
		clk.Advance(time.Second)
		if n := c.Sweep(clk.Now()); n != 1 {
			t.Fatalf("second %d: swept %d", s, n)
		}
		ch := <-sub.C()
		if ch.Kind != Expired || ch.Entry.TTL != time.Duration(s)*time.Second {
			t.Fatalf("second %d: change %v %v", s, ch.Kind, ch.Entry.Key())
		}
		if c.Len() != 100-s+1 {
			t.Fatalf("Len %d", c.Len())
		}
	}
	clk.Advance(1000 * time.Hour)
	if n := c.Sweep(clk.Now()); n != 0 || c.Len() != 1 {
		t.Fatalf("permanent entry swept: %d, Len %d", n, c.Len())
	}
	if st := c.Stats(); st.Expired != 100 {
		t.Fatalf("stats %+v", st)
	}
}

func drain(s *Subscription) (out []Change) {
	for {
		select {
		case ch := <-s.C():
			out = append(out, ch)
		default:
			return out
		}
	}
}

func TestLookupNeverReturnsLongExpired(t *testing.T) {
	clk := newFakeClock()
	period := 10 * time.Second
	c := New(Config{Clock: clk.Now, SweepPeriod: period})
	cover := ent(0, "10.0.0.0/8", 1, time.Hour)
	short := ent(0, "10.1.0.0/16", 1, time.Minute)
	mustInsert(t, c, cover)
	mustInsert(t, c, short)
	dst := netip.MustParseAddr("10.1.2.3")
	exp := short.Expires.UnixNano()

	// LookupAt: within the grace (one sweep period) after the deadline the
	// entry is still returned; beyond it, the live covering entry is.
	for _, tc := range []struct {
		now  int64
		want *Entry
	}{
		{exp - 1, short},
		{exp, short},
		{exp + int64(period) - 1, short},
		{exp + int64(period), cover},
		{exp + int64(time.Hour), nil}, // both long gone
	} {
		got, ok := c.LookupAt(0, dst, tc.now)
		if got != tc.want || ok != (tc.want != nil) {
			t.Errorf("LookupAt(now=deadline%+v) = %v, want %v", time.Duration(tc.now-exp), keyOf(got), keyOf(tc.want))
		}
	}
	// Lookup uses the time of the last sweep: an unswept entry is visible
	// until a sweep runs (which removes it or lets the hook extend it)...
	clk.Advance(2 * time.Minute)
	if got, _ := c.Lookup(0, dst); got != short {
		t.Fatalf("Lookup before sweep = %v", keyOf(got))
	}
	// ...and if a sweep ran without removing it (it was due later than the
	// sweep's time, then the clock jumped), Lookup uses the sweep time.
	c.coarse.Store(exp + 1)
	if got, _ := c.Lookup(0, dst); got != cover {
		t.Fatalf("Lookup after a sweep past the deadline = %v", keyOf(got))
	}
	c.Sweep(clk.Now())
	if got, _ := c.Lookup(0, dst); got != cover || c.Len() != 1 {
		t.Fatalf("Lookup after sweep = %v, Len %d", keyOf(got), c.Len())
	}
}

func TestExpireHookExtend(t *testing.T) {
	clk := newFakeClock()
	var mu sync.Mutex
	var calls []Key
	c := New(Config{Clock: clk.Now, OnExpire: func(e *Entry) ExpireDecision {
		mu.Lock()
		calls = append(calls, e.Key())
		mu.Unlock()
		// Keep entries used in the last minute for 30 s more.
		if clk.Nano()-e.LastUsedNano() < int64(time.Minute) {
			return Extend(30 * time.Second)
		}
		return DeleteNow
	}})
	used := ent(0, "10.1.0.0/16", 1, time.Minute)
	idle := ent(0, "10.2.0.0/16", 1, time.Minute)
	mustInsert(t, c, used)
	mustInsert(t, c, idle)
	sub := c.Subscribe(10)
	defer sub.Close()

	clk.Advance(50 * time.Second)
	used.Touch(clk.Nano())
	clk.Advance(10 * time.Second) // both due now
	if n := c.Sweep(clk.Now()); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	if len(calls) != 2 {
		t.Fatalf("hook called %d times", len(calls))
	}
	if _, ok := c.Get(idle.Key()); ok {
		t.Fatal("idle entry kept")
	}
	if got, ok := c.Lookup(0, netip.MustParseAddr("10.1.1.1")); !ok || got != used {
		t.Fatal("used entry not kept")
	}
	if want := clk.Now().Add(30 * time.Second); !used.Deadline().Equal(want) || used.Expires.Equal(want) {
		t.Fatalf("deadline %v expires %v", used.Deadline(), used.Expires)
	}
	// Lookups within the extension see it with any clock.
	if _, ok := c.LookupAt(0, netip.MustParseAddr("10.1.1.1"), clk.Nano()); !ok {
		t.Fatal("extended entry not visible to LookupAt")
	}
	// No further use: the next expiry deletes it.
	clk.Advance(30 * time.Second)
	if n := c.Sweep(clk.Now()); n != 0 {
		// still used within the last minute (40 s ago): extended again
		t.Fatalf("swept %d, want 0", n)
	}
	clk.Advance(30 * time.Second)
	if n := c.Sweep(clk.Now()); n != 1 || c.Len() != 0 {
		t.Fatalf("swept %d, Len %d", n, c.Len())
	}
	kinds := []ChangeKind{}
	for _, ch := range drain(sub) {
		kinds = append(kinds, ch.Kind)
	}
	if len(kinds) != 2 || kinds[0] != Expired || kinds[1] != Expired {
		t.Fatalf("changes %v", kinds)
	}
	if st := c.Stats(); st.Extended != 2 || st.Expired != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// The hook runs without locks: it may use the cache, and entries replaced
// or deleted while it runs are left in their new state.
func TestExpireHookMayUseCache(t *testing.T) {
	clk := newFakeClock()
	var c *Cache
	var fresh *Entry
	c = New(Config{Clock: clk.Now, OnExpire: func(e *Entry) ExpireDecision {
		switch e.Prefix.String() {
		case "10.1.0.0/16": // refreshed by the hook itself
			fresh = ent(0, "10.1.0.0/16", e.Version+1, time.Hour)
			if _, err := c.Insert(fresh); err != nil {
				t.Errorf("Insert from hook: %v", err)
			}
			return DeleteNow // must not delete the fresh entry
		case "10.2.0.0/16":
			c.Delete(e.Key())
			return Extend(time.Hour) // must not resurrect it
		}
		c.Snapshot()
		return DeleteNow
	}})
	mustInsert(t, c, ent(0, "10.1.0.0/16", 1, time.Minute))
	mustInsert(t, c, ent(0, "10.2.0.0/16", 1, time.Minute))
	mustInsert(t, c, ent(0, "10.3.0.0/16", 1, time.Minute))
	clk.Advance(time.Minute)
	if n := c.Sweep(clk.Now()); n != 1 {
		t.Fatalf("swept %d", n)
	}
	if got, _ := c.Get(Key{0, netip.MustParsePrefix("10.1.0.0/16")}); got != fresh || fresh == nil {
		t.Fatal("refreshed entry lost")
	}
	if c.Len() != 1 {
		t.Fatalf("Len %d", c.Len())
	}
	// The fresh entry is in the expiry heap.
	clk.Advance(time.Hour)
	if n := c.Sweep(clk.Now()); n != 0 || c.Len() != 1 {
		// the hook refreshes it again (version 3)
		t.Fatalf("swept %d Len %d", n, c.Len())
	}
	if fresh.Version != 3 {
		t.Fatalf("version %d", fresh.Version)
	}
}

func TestRunSweepsAndStops(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now, SweepPeriod: time.Millisecond})
	mustInsert(t, c, ent(0, "10.0.0.0/8", 1, time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	// A second Run is refused while the first is active.
	waitFor(t, func() bool { return c.running.Load() })
	if err := c.Run(ctx); err != ErrRunning {
		t.Fatalf("second Run: %v", err)
	}
	clk.Advance(time.Minute)
	waitFor(t, func() bool { return c.Len() == 0 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		time.Sleep(time.Millisecond)
	}
}

var evictSeed uint64 = 42

func TestEvictionApproximatesLRU(t *testing.T) {
	clk := newFakeClock()
	const capacity = 1000
	c := seeded(New(Config{Clock: clk.Now, MaxEntries: capacity}), evictSeed)
	es := make([]*Entry, capacity)
	for i := range es {
		es[i] = &Entry{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), TTL: time.Hour}
		mustInsert(t, c, es[i])
	}
	// Entry i was last used at base + i seconds: rank i in LRU order.
	clk.Advance(time.Minute)
	base := clk.Nano()
	for i, e := range es {
		e.Touch(base + int64(i)*int64(time.Second))
	}
	clk.Advance(time.Hour / 2)
	rank := map[*Entry]int{}
	for i, e := range es {
		rank[e] = i
	}
	sub := c.Subscribe(10)
	defer sub.Close()
	const inserts = 200
	sum, worst := 0, 0
	for i := range inserts {
		e := &Entry{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{11, byte(i >> 8), byte(i), 0}), 24), TTL: time.Hour}
		// Touch the newcomers so that they are the most recently used.
		mustInsert(t, c, e)
		e.Touch(clk.Nano())
		chs := drain(sub)
		if len(chs) != 2 || chs[0].Kind != Evicted || chs[1].Kind != Added {
			t.Fatalf("insert %d: changes %v", i, chs)
		}
		v, ok := rank[chs[0].Entry]
		if !ok {
			t.Fatalf("evicted a newcomer")
		}
		// Its rank among the entries present before the eviction.
		r := 0
		for _, o := range rank {
			if o < v {
				r++
			}
		}
		delete(rank, chs[0].Entry)
		sum += r
		worst = max(worst, r)
		if c.Len() != capacity {
			t.Fatalf("Len %d", c.Len())
		}
	}
	// Rank 0 is the least recently used entry present. With 16 samples
	// alone the expected rank is about 1000/17 = 59; the candidate pool
	// brings the average near 25 (seeds 1..29 measured 21..31, worst single
	// eviction 251). Demand the least recently used 5% on average and never
	// the more recently used 60%.
	t.Logf("evicted ranks: average %d, worst %d", sum/inserts, worst)
	if avg := sum / inserts; avg > capacity/20 || worst >= capacity*2/5 {
		t.Fatalf("evicted ranks: average %d, worst %d", avg, worst)
	}
	if st := c.Stats(); st.Evicted != inserts {
		t.Fatalf("stats %+v", st)
	}
}

func TestEvictionExactWhenSmall(t *testing.T) {
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now, MaxEntries: 5, EvictionSamples: 8})
	var es []*Entry
	for i := range 5 {
		clk.Advance(time.Second)
		e := &Entry{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16), TTL: time.Hour}
		mustInsert(t, c, e)
		es = append(es, e)
	}
	// Use all but entry 3; a fresh insert must evict entry 3, then the oldest
	// used one (0).
	clk.Advance(time.Second)
	for i, e := range es {
		if i != 3 {
			e.Touch(clk.Nano() + int64(i))
		}
	}
	for _, victim := range []int{3, 0} {
		clk.Advance(time.Second)
		mustInsert(t, c, &Entry{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{11, byte(victim), 0, 0}), 16), TTL: time.Hour})
		if _, ok := c.Get(es[victim].Key()); ok {
			t.Fatalf("entry %d not evicted", victim)
		}
		if c.Len() != 5 {
			t.Fatalf("Len %d", c.Len())
		}
	}
}

func TestPermanentEntriesNotEvicted(t *testing.T) {
	c := New(Config{MaxEntries: 2})
	mustInsert(t, c, ent(0, "10.0.0.0/8", 1, Permanent))
	mustInsert(t, c, ent(0, "11.0.0.0/8", 1, Permanent))
	if _, err := c.Insert(ent(0, "12.0.0.0/8", 1, time.Hour)); err == nil || err.Error() != "mapcache: full of permanent entries: 2 entries" {
		t.Fatalf("Insert into full cache: %v", err)
	}
	// Replacing an existing key needs no room.
	if _, err := c.Insert(ent(0, "11.0.0.0/8", 2, time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Now one entry can expire, so it is the one evicted.
	mustInsert(t, c, ent(0, "12.0.0.0/8", 1, time.Hour))
	if _, ok := c.Get(Key{0, netip.MustParsePrefix("11.0.0.0/8")}); ok || c.Len() != 2 {
		t.Fatal("wrong eviction")
	}
	if _, ok := c.Get(Key{0, netip.MustParsePrefix("10.0.0.0/8")}); !ok {
		t.Fatal("permanent entry evicted")
	}
}

func TestDeleteFuncBulk(t *testing.T) {
	c := New(Config{})
	sub := c.Subscribe(1 << 14)
	defer sub.Close()
	for i := range 4000 {
		e := &Entry{InstanceID: uint32(i % 2), Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), TTL: time.Hour}
		mustInsert(t, c, e)
	}
	drain(sub)
	// Half of instance 0 (bulk path) and a few of instance 1 (persistent path).
	n := c.DeleteFunc(func(e *Entry) bool {
		a := e.Prefix.Addr().As4()
		if e.InstanceID == 0 {
			return a[2]%4 == 0
		}
		return a[1] == 0 && a[2] < 8
	})
	if n != 1000+4 || c.Len() != 4000-n {
		t.Fatalf("deleted %d, Len %d", n, c.Len())
	}
	for _, ch := range drain(sub) {
		if ch.Kind != Deleted {
			t.Fatalf("change %v", ch.Kind)
		}
		n--
	}
	if n != 0 {
		t.Fatalf("%d deletions not published", n)
	}
	for e := range c.All() {
		a := e.Prefix.Addr().As4()
		if e.InstanceID == 0 && a[2]%4 == 0 {
			t.Fatalf("%v survived", e.Key())
		}
	}
	// Removing everything drops the instances.
	c.DeleteFunc(func(*Entry) bool { return true })
	if c.Len() != 0 || len(c.idx.Load().insts) != 0 {
		t.Fatalf("Len %d, instances %d", c.Len(), len(c.idx.Load().insts))
	}
}
