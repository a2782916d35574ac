package mapcache

import (
	"cmp"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestInsertValidation(t *testing.T) {
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now})
	rl := func(a string) RLOC { return RLOC{Addr: netip.MustParseAddr(a)} }
	many := make([]RLOC, MaxRLOCs+1)
	for i := range many {
		many[i] = RLOC{Addr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})}
	}
	cases := []struct {
		name string
		e    *Entry
		want error
	}{
		{"nil", nil, ErrNilEntry},
		{"zero prefix", &Entry{TTL: time.Minute}, ErrInvalidPrefix},
		{"host bits", &Entry{Prefix: netip.MustParsePrefix("10.1.1.1/24"), TTL: time.Minute}, ErrInvalidPrefix},
		{"mapped", &Entry{Prefix: netip.MustParsePrefix("::ffff:10.0.0.0/104"), TTL: time.Minute}, ErrInvalidPrefix},
		{"invalid rloc", &Entry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), TTL: time.Minute, RLOCs: []RLOC{{}}}, ErrInvalidRLOC},
		{"unspecified rloc", &Entry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), TTL: time.Minute, RLOCs: []RLOC{rl("::")}}, ErrInvalidRLOC},
		{"duplicate rloc", &Entry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), TTL: time.Minute, RLOCs: []RLOC{rl("1.1.1.1"), rl("2.2.2.2"), rl("1.1.1.1")}}, ErrInvalidRLOC},
		{"too many rlocs", &Entry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), TTL: time.Minute, RLOCs: many}, ErrInvalidRLOC},
		{"action", &Entry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), TTL: time.Minute, Action: 6}, ErrInvalidAction},
		{"zero ttl", &Entry{Prefix: netip.MustParsePrefix("10.0.0.0/8")}, ErrInvalidTTL},
		{"negative ttl", &Entry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), TTL: -time.Second}, ErrInvalidTTL},
		{"map-version", &Entry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), TTL: time.Minute, MapVersion: 0x1000}, ErrInvalidMapVersion},
		{"expired", &Entry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), TTL: time.Minute, Expires: clk.Now()}, ErrExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before time.Time
			if tc.e != nil {
				before = tc.e.Expires
			}
			_, err := c.Insert(tc.e)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Insert: got %v, want %v", err, tc.want)
			}
			if err != nil && err.Error()[:10] != "mapcache: " {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tc.e != nil && (tc.e.state != entryNew || tc.e.Expires != before) {
				t.Errorf("failed Insert modified the entry")
			}
		})
	}
	if c.Len() != 0 {
		t.Fatalf("Len = %d after failed inserts", c.Len())
	}
	// The boundaries are accepted.
	ok := &Entry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), TTL: time.Minute, Action: DropAuthFailure,
		MapVersion: MaxMapVersion, RLOCs: many[:MaxRLOCs]}
	mustInsert(t, c, ok)
}

func TestInsertDefaultsAndGet(t *testing.T) {
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now})
	e := ent(7, "10.1.0.0/16", 1, 10*time.Minute)
	if old, err := c.Insert(e); err != nil || old != nil {
		t.Fatalf("Insert = %v, %v", old, err)
	}
	if !e.Learned.Equal(clk.Now()) || !e.Expires.Equal(clk.Now().Add(10*time.Minute)) || !e.Deadline().Equal(e.Expires) {
		t.Errorf("defaults: learned %v expires %v deadline %v", e.Learned, e.Expires, e.Deadline())
	}
	if got, ok := c.Get(Key{7, netip.MustParsePrefix("10.1.0.0/16")}); !ok || got != e {
		t.Errorf("Get = %v, %v", got, ok)
	}
	if _, ok := c.Get(Key{8, netip.MustParsePrefix("10.1.0.0/16")}); ok {
		t.Errorf("Get found the key in another instance-ID")
	}
	if _, ok := c.Get(Key{7, netip.MustParsePrefix("10.1.0.0/17")}); ok {
		t.Errorf("Get is not exact")
	}
	// Explicit Expires and Learned are kept.
	exp := clk.Now().Add(time.Hour)
	learned := clk.Now().Add(-time.Hour)
	e2 := ent(7, "10.2.0.0/16", 1, time.Minute)
	e2.Expires, e2.Learned = exp, learned
	mustInsert(t, c, e2)
	if !e2.Expires.Equal(exp) || !e2.Learned.Equal(learned) {
		t.Errorf("explicit times changed: %v %v", e2.Expires, e2.Learned)
	}
	// Permanent entries have no Expires or Deadline.
	p := ent(7, "0.0.0.0/0", 1, Permanent)
	p.Expires = exp
	mustInsert(t, c, p)
	if !p.Expires.IsZero() || !p.Deadline().IsZero() {
		t.Errorf("permanent entry: expires %v deadline %v", p.Expires, p.Deadline())
	}
	// An entry cannot be inserted twice, even after deletion.
	if _, err := c.Insert(e); !errors.Is(err, ErrEntryReused) {
		t.Errorf("re-insert: %v", err)
	}
	if !c.Delete(e.Key()) || c.Delete(e.Key()) {
		t.Errorf("Delete did not report once")
	}
	if _, err := c.Insert(e); !errors.Is(err, ErrEntryReused) {
		t.Errorf("re-insert after delete: %v", err)
	}
	if c.Len() != 2 {
		t.Errorf("Len = %d, want 2", c.Len())
	}
	st := c.Stats()
	if st.Inserts != 3 || st.Deletes != 1 || st.Entries != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestStaleVersionRejected(t *testing.T) {
	c := New(Config{})
	k := Key{1, netip.MustParsePrefix("2001:db8::/32")}
	// Versions arrive out of order; the newest must win whatever the order.
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		c := New(Config{})
		versions := r.Perm(20)
		var best *Entry
		for _, v := range versions {
			e := ent(1, "2001:db8::/32", uint64(v), time.Hour)
			old, err := c.Insert(e)
			if best == nil || uint64(v) >= best.Version {
				if err != nil || old != best {
					t.Fatalf("trial %d: Insert v%d = %v, %v; want replaced %v", trial, v, old, err, best)
				}
				best = e
				continue
			}
			var se *StaleError
			if !errors.Is(err, ErrStale) || !errors.As(err, &se) || se.Cached != best.Version || se.Offered != uint64(v) || se.Key != k {
				t.Fatalf("trial %d: Insert v%d: %v", trial, v, err)
			}
		}
		if got, _ := c.Get(k); got.Version != 19 {
			t.Fatalf("trial %d: cached version %d", trial, got.Version)
		}
	}
	// An equal version replaces (not older).
	a, b := ent(1, "2001:db8::/32", 5, time.Hour), ent(1, "2001:db8::/32", 5, time.Hour)
	mustInsert(t, c, a)
	if old, err := c.Insert(b); err != nil || old != a {
		t.Fatalf("equal version: %v, %v", old, err)
	}
	if _, err := c.Insert(ent(1, "2001:db8::/32", 4, time.Hour)); !errors.Is(err, ErrStale) {
		t.Fatalf("older version: %v", err)
	}
	if st := c.Stats(); st.StaleRejects != 1 || st.Replaces != 1 || st.Inserts != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// naiveLookup is the reference LPM: a linear scan.
func naiveLookup(es map[Key]*Entry, iid uint32, dst netip.Addr) *Entry {
	var best *Entry
	for k, e := range es {
		if k.InstanceID == iid && k.Prefix.Contains(dst) && (best == nil || k.Prefix.Bits() > best.Prefix.Bits()) {
			best = e
		}
	}
	return best
}

func TestLPMMatchesLinearScan(t *testing.T) {
	for _, niid := range []int{1, 3, linearMax + 5} { // slice and map instance indexes
		r := rand.New(rand.NewPCG(uint64(niid), 99))
		c := New(Config{})
		ref := map[Key]*Entry{}
		var keys []Key
		for range 3000 {
			iid := uint32(r.IntN(niid)) * 1000
			p := randPrefix(r, r.IntN(3) == 0)
			k := Key{iid, p}
			e := &Entry{InstanceID: iid, Prefix: p, TTL: time.Hour, Version: 1}
			if r.IntN(2) == 0 {
				e.RLOCs = []RLOC{{Addr: netip.MustParseAddr("198.51.100.1")}}
			}
			if _, err := c.Insert(e); err != nil {
				t.Fatal(err)
			}
			if _, dup := ref[k]; !dup {
				keys = append(keys, k)
			}
			ref[k] = e
			// Delete some keys to exercise removal and empty instances.
			if r.IntN(5) == 0 && len(keys) > 0 {
				i := r.IntN(len(keys))
				if !c.Delete(keys[i]) {
					t.Fatalf("Delete(%v) = false", keys[i])
				}
				delete(ref, keys[i])
				keys = slices.Delete(keys, i, i+1)
			}
		}
		if c.Len() != len(ref) {
			t.Fatalf("Len = %d, want %d", c.Len(), len(ref))
		}
		check := func(iid uint32, dst netip.Addr) {
			want := naiveLookup(ref, iid, dst)
			got, ok := c.Lookup(iid, dst)
			if ok != (want != nil) || got != want {
				t.Fatalf("niid %d: Lookup(%d, %v) = %v, %v; want %v", niid, iid, dst, keyOf(got), ok, keyOf(want))
			}
		}
		for range 20000 {
			iid := uint32(r.IntN(niid+1)) * 1000 // includes an unknown instance-ID
			var dst netip.Addr
			if len(keys) > 0 && r.IntN(4) != 0 {
				dst = randAddrIn(r, keys[r.IntN(len(keys))].Prefix)
			} else {
				dst = randAddrIn(r, randPrefix(r, r.IntN(2) == 0))
			}
			check(iid, dst)
		}
		// IPv4-mapped destinations are looked up as IPv4.
		for _, k := range keys[:min(len(keys), 200)] {
			if k.Prefix.Addr().Is4() {
				a := randAddrIn(r, k.Prefix)
				want := naiveLookup(ref, k.InstanceID, a)
				if got, _ := c.Lookup(k.InstanceID, netip.AddrFrom16(a.As16())); got != want {
					t.Fatalf("mapped %v: got %v want %v", a, keyOf(got), keyOf(want))
				}
			}
		}
		if _, ok := c.Lookup(0, netip.Addr{}); ok {
			t.Fatalf("invalid address matched")
		}
	}
}

func keyOf(e *Entry) any {
	if e == nil {
		return nil
	}
	return e.Key()
}

func TestSnapshotSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	c := New(Config{})
	for range 2000 {
		e := &Entry{InstanceID: uint32(r.IntN(12)), Prefix: randPrefix(r, r.IntN(2) == 0), TTL: time.Hour}
		mustInsert(t, c, e)
	}
	snap := c.Snapshot()
	if len(snap) != c.Len() {
		t.Fatalf("snapshot has %d entries, Len %d", len(snap), c.Len())
	}
	want := slices.Clone(snap)
	slices.SortFunc(want, func(a, b *Entry) int {
		return cmp.Or(cmp.Compare(a.InstanceID, b.InstanceID),
			cmp.Compare(a.Prefix.Addr().BitLen(), b.Prefix.Addr().BitLen()),
			a.Prefix.Addr().Compare(b.Prefix.Addr()),
			cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	if !slices.Equal(snap, want) {
		t.Fatalf("snapshot not in display order")
	}
	// All can stop early.
	n := 0
	for range c.All() {
		n++
		if n == 10 {
			break
		}
	}
	if n != 10 {
		t.Fatalf("All yielded %d", n)
	}
}

func TestTouchAndLastUsed(t *testing.T) {
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now})
	e := ent(0, "10.0.0.0/8", 1, time.Hour)
	mustInsert(t, c, e)
	if !e.LastUsed().IsZero() {
		t.Fatalf("new entry has LastUsed %v", e.LastUsed())
	}
	t0 := clk.Nano()
	e.Touch(t0)
	if e.LastUsedNano() != t0 {
		t.Fatalf("first touch not stored")
	}
	e.Touch(t0 + int64(TouchGranularity)) // not more than the granularity: no write
	if e.LastUsedNano() != t0 {
		t.Fatalf("touch within granularity wrote")
	}
	e.Touch(t0 - int64(time.Hour)) // never moves back
	if e.LastUsedNano() != t0 {
		t.Fatalf("touch moved the stamp back")
	}
	t1 := t0 + int64(TouchGranularity) + 1
	e.Touch(t1)
	if !e.LastUsed().Equal(time.Unix(0, t1)) {
		t.Fatalf("LastUsed = %v", e.LastUsed())
	}
	// A replacement inherits the stamp.
	e2 := ent(0, "10.0.0.0/8", 2, time.Hour)
	mustInsert(t, c, e2)
	if e2.LastUsedNano() != t1 {
		t.Fatalf("replacement did not inherit the last-used stamp")
	}
}

func TestReachability(t *testing.T) {
	c := New(Config{})
	rlocs := make([]RLOC, 200)
	for i := range rlocs {
		rlocs[i] = RLOC{Addr: netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), Reachable: i%3 == 0}
	}
	e := &Entry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), TTL: time.Hour, RLOCs: rlocs}
	mustInsert(t, c, e)
	for i := range rlocs {
		if e.Reachable(i) != (i%3 == 0) {
			t.Fatalf("RLOC %d initial reachability %v", i, e.Reachable(i))
		}
	}
	for _, i := range []int{0, 1, 63, 64, 127, 128, 199} {
		want := !e.Reachable(i)
		if !e.SetReachable(i, want) || e.Reachable(i) != want {
			t.Fatalf("SetReachable(%d, %v) did not change it", i, want)
		}
		if e.SetReachable(i, want) {
			t.Fatalf("SetReachable(%d) reported a change twice", i)
		}
		if i < 64 && (e.ReachableMask()>>uint(i))&1 == 1 != want {
			t.Fatalf("ReachableMask bit %d wrong", i)
		}
		if e.RLOCs[i].Reachable != (i%3 == 0) {
			t.Fatalf("SetReachable changed the RLOC value")
		}
	}
	for _, i := range []int{-1, 200, 1000} {
		if e.Reachable(i) || e.SetReachable(i, true) {
			t.Fatalf("out of range index %d", i)
		}
	}
	// Negative entries.
	n := &Entry{Prefix: netip.MustParsePrefix("11.0.0.0/8"), TTL: time.Hour, Action: Drop}
	mustInsert(t, c, n)
	if !n.Negative() || e.Negative() || n.Reachable(0) {
		t.Fatalf("Negative wrong")
	}
}

func TestLookupZeroAllocs(t *testing.T) {
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now})
	for i := range 20 {
		mustInsert(t, c, ent(uint32(i), "10.0.0.0/8", 1, time.Hour))
		mustInsert(t, c, ent(uint32(i), "2001:db8::/32", 1, time.Hour))
	}
	// An expired entry under a live one takes the covering-entry path.
	mustInsert(t, c, ent(3, "10.1.0.0/16", 1, time.Minute))
	v4, v6 := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("2001:db8::1")
	miss := netip.MustParseAddr("11.1.2.3")
	now := clk.Nano()
	later := now + int64(10*time.Minute)
	var sink, cover *Entry
	allocs := testing.AllocsPerRun(1000, func() {
		e, _ := c.Lookup(3, v4)
		e.Touch(now)
		sink, _ = c.LookupAt(17, v6, now)
		cover, _ = c.LookupAt(3, v4, later)
		c.Lookup(3, miss)
		c.LookupAt(99, v4, now)
	})
	if allocs != 0 {
		t.Fatalf("lookups allocate %v times", allocs)
	}
	if sink == nil || cover == nil || cover.Prefix.Bits() != 8 {
		t.Fatal("wrong results")
	}
	st := c.Stats()
	if st.Hits == 0 || st.Misses == 0 || st.Lookups != st.Hits+st.Misses {
		t.Fatalf("stats %+v", st)
	}
}

func TestStringers(t *testing.T) {
	if DropPolicyDenied.String() != "drop-policy-denied" || Action(9).String() != "action(9)" {
		t.Error("Action.String")
	}
	if FromSync.String() != "sync" || Source(77).String() != "source(77)" {
		t.Error("Source.String")
	}
	if Evicted.String() != "evicted" || ChangeKind(0).String() != "kind(0)" {
		t.Error("ChangeKind.String")
	}
	if k := (Key{5, netip.MustParsePrefix("10.0.0.0/8")}).String(); k != "[5]10.0.0.0/8" {
		t.Errorf("Key.String = %q", k)
	}
	if Extend(-time.Second) != DeleteNow || Extend(time.Second).Extension() != time.Second || ExpireDecision(-5).Extension() != 0 {
		t.Error("ExpireDecision")
	}
}

func TestFarFutureExpiryAndMessages(t *testing.T) {
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now})
	if !c.Now().Equal(clk.Now()) {
		t.Fatal("Now does not use the injected clock")
	}
	// An expiry beyond what Unix nanoseconds can hold saturates instead of
	// wrapping into the past.
	e := ent(0, "10.0.0.0/8", 2, time.Hour)
	e.Expires = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	mustInsert(t, c, e)
	clk.Advance(100 * 365 * 24 * time.Hour)
	if c.Sweep(clk.Now()) != 0 || c.Len() != 1 {
		t.Fatal("far-future entry expired")
	}
	if _, ok := c.LookupAt(0, netip.MustParseAddr("10.1.1.1"), clk.Nano()); !ok {
		t.Fatal("far-future entry not found")
	}
	_, err := c.Insert(ent(0, "10.0.0.0/8", 1, time.Hour))
	if err == nil || err.Error() != "mapcache: stale version 1 for [0]10.0.0.0/8, cache has 2" {
		t.Fatalf("stale error message: %v", err)
	}
}

func TestLookupBatch(t *testing.T) {
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now, SweepPeriod: time.Second})
	r := rand.New(rand.NewPCG(11, 12))
	ref := map[Key]*Entry{}
	var keys []Key
	for range 500 {
		e := &Entry{InstanceID: uint32(r.IntN(2)), Prefix: randPrefix(r, r.IntN(2) == 0), TTL: time.Duration(1+r.IntN(100)) * time.Second}
		mustInsert(t, c, e)
		ref[e.Key()] = e
		keys = append(keys, e.Key())
	}
	dsts := make([]netip.Addr, 256)
	out := make([]*Entry, 256)
	for round := range 40 {
		now := clk.Nano() + int64(round)*int64(3*time.Second)
		for i := range dsts {
			dsts[i] = randAddrIn(r, keys[r.IntN(len(keys))].Prefix)
		}
		dsts[0] = netip.AddrFrom16(dsts[0].As16()) // an IPv4-mapped one
		for iid := range uint32(3) {
			before := c.Stats()
			hits := c.LookupBatch(iid, dsts, now, out)
			n := 0
			for i, dst := range dsts {
				want, _ := c.LookupAt(iid, dst, now)
				if out[i] != want {
					t.Fatalf("round %d: batch[%d] = %v, LookupAt = %v", round, i, keyOf(out[i]), keyOf(want))
				}
				if want != nil {
					n++
				}
			}
			after := c.Stats()
			if hits != n || after.Lookups-before.Lookups != 2*uint64(len(dsts)) || after.Hits-before.Hits != 2*uint64(n) {
				t.Fatalf("hits %d, want %d; stats %+v -> %+v", hits, n, before, after)
			}
		}
	}
	// Short out slices limit the batch; nothing panics on empty input.
	if c.LookupBatch(0, dsts, clk.Nano(), out[:3]) > 3 || c.LookupBatch(0, nil, 0, out) != 0 {
		t.Fatal("batch bounds")
	}
	if allocs := testing.AllocsPerRun(100, func() { c.LookupBatch(1, dsts, clk.Nano(), out) }); allocs != 0 {
		t.Fatalf("LookupBatch allocates %v times", allocs)
	}
}

// Entries are the bulk of the cache's memory (1.1M of them in the
// benchmarks): keep the struct in the 192-byte size class.
func TestEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(Entry{}); n > 192 {
		t.Fatalf("Entry is %d bytes, more than 192", n)
	}
}

// TestPeekMatchesLookupAtWithoutCounting: Peek finds what LookupAt finds,
// counts nothing itself, and CountLookups adds what the caller counted.
func TestPeekMatchesLookupAtWithoutCounting(t *testing.T) {
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now})
	mustInsert(t, c, ent(0, "10.0.0.0/8", 1, time.Hour))
	mustInsert(t, c, ent(0, "10.1.0.0/16", 1, time.Hour))
	mustInsert(t, c, ent(7, "2001:db8::/32", 1, time.Hour))
	for _, q := range []struct {
		iid uint32
		dst string
	}{{0, "10.1.2.3"}, {0, "10.9.9.9"}, {0, "11.0.0.1"}, {7, "2001:db8::1"}, {0, "2001:db8::1"}, {0, "::ffff:10.1.0.1"}} {
		dst := netip.MustParseAddr(q.dst)
		pe, pok := c.Peek(q.iid, dst, clk.Nano())
		le, lok := c.LookupAt(q.iid, dst, clk.Nano())
		if pe != le || pok != lok {
			t.Errorf("iid %d %s: Peek = %v %v, LookupAt = %v %v", q.iid, q.dst, pe, pok, le, lok)
		}
	}
	st := c.Stats()
	if st.Hits != 4 || st.Misses != 2 {
		t.Fatalf("after 6 LookupAt and 6 Peek: hits %d misses %d, want 4 and 2 (Peek counts nothing)", st.Hits, st.Misses)
	}
	c.CountLookups(10, 3)
	if st := c.Stats(); st.Hits != 14 || st.Misses != 5 || st.Lookups != 19 {
		t.Fatalf("after CountLookups(10, 3): %+v", st)
	}
	dst := netip.MustParseAddr("10.1.2.3")
	if a := testing.AllocsPerRun(100, func() { c.Peek(0, dst, clk.Nano()) }); a != 0 {
		t.Errorf("Peek allocates %.1f times", a)
	}
}
