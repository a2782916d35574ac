package cachesync

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// watchExpiry records when each node's cache removes the prefix, from its
// change feed, until the test ends.
type expiryWatch struct {
	mu   sync.Mutex
	gone map[string][]time.Time // node name -> removal times
	wg   sync.WaitGroup
}

func watchRemovals(t *testing.T, s *set, prefix string) *expiryWatch {
	w := &expiryWatch{gone: map[string][]time.Time{}}
	k := mapcache.Key{Prefix: netip.MustParsePrefix(prefix)}
	ctx, cancel := context.WithCancel(context.Background())
	for _, nd := range s.nodes {
		sub := nd.cache.Subscribe(0)
		w.wg.Go(func() {
			defer sub.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case ch := <-sub.C():
					if ch.Kind != mapcache.Added && ch.Kind != mapcache.Replaced && ch.Kind != mapcache.Resync && ch.Entry.Key() == k {
						w.mu.Lock()
						w.gone[nd.name] = append(w.gone[nd.name], time.Now())
						w.mu.Unlock()
					}
				}
			}
		})
	}
	t.Cleanup(func() { cancel(); w.wg.Wait() })
	return w
}

func (w *expiryWatch) removals(name string) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.gone[name]...)
}

// TestExpiryAgreement: a record nobody uses expires on every member within
// a second of the others, in every mode, and its removal is not sent.
func TestExpiryAgreement(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			s := newSet(t, mode, 3, defaultOpts())
			w := watchRemovals(t, s, "10.1.0.0/16")
			e := s.nodes[1].learn("10.1.0.0/16", 1500*time.Millisecond)
			for _, nd := range s.nodes {
				waitFor(t, 5*time.Second, nd.name+" has the mapping", func() bool { return nd.has("10.1.0.0/16", e.Version) })
				got, _ := nd.cache.Get(e.Key())
				if d := got.Expires.Sub(e.Expires).Abs(); d > 100*time.Millisecond {
					t.Errorf("%s: expiry %v apart", nd.name, d)
				}
			}
			// From shortly before the expiry on, no record is sent: a
			// removal is never announced.
			waitFor(t, 5*time.Second, "shortly before expiry", func() bool { return time.Until(e.Expires) < 300*time.Millisecond })
			sent := make([]uint64, len(s.nodes))
			for i, nd := range s.nodes {
				sent[i] = nd.stats().RecordsSent
			}
			var times []time.Time
			for _, nd := range s.nodes {
				waitFor(t, 5*time.Second, nd.name+" drops the mapping", func() bool { return len(w.removals(nd.name)) > 0 })
				times = append(times, w.removals(nd.name)[0])
			}
			for _, tm := range times {
				if d := tm.Sub(times[0]).Abs(); d > time.Second {
					t.Errorf("removals %v apart", d)
				}
				if tm.Before(e.Expires) {
					t.Errorf("removed %v before its expiry", e.Expires.Sub(tm))
				}
			}
			for _, nd := range s.nodes {
				if st := nd.stats(); st.ExpiredUnused == 0 || st.Refreshes != 0 {
					t.Errorf("%s: expired unused %d, refreshes %d", nd.name, st.ExpiredUnused, st.Refreshes)
				}
				if nd.cache.Len() != 0 {
					t.Errorf("%s still holds %d entries", nd.name, nd.cache.Len())
				}
			}
			for i, nd := range s.nodes {
				if got := nd.stats().RecordsSent; got != sent[i] {
					t.Errorf("%s sent %d records about an expiry", nd.name, got-sent[i])
				}
			}
		})
	}
}

// busy touches the prefix on the node every 20 ms until stop is closed,
// as the packet path does for a flow.
func busy(s *set, nd *node, prefix string) (stop func()) {
	a := netip.MustParsePrefix(prefix).Addr().Next()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				now := nd.cache.Now().UnixNano()
				if e, ok := nd.cache.LookupAt(0, a, now); ok {
					e.Touch(now)
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// neverMissing checks, every 2 ms until stop, that the node can look the
// prefix up; it returns how many lookups missed.
func neverMissing(nd *node, prefix string) (stop func() int) {
	a := netip.MustParsePrefix(prefix).Addr().Next()
	done := make(chan struct{})
	var misses int
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
				if _, ok := nd.cache.LookupAt(0, a, nd.cache.Now().UnixNano()); !ok {
					misses++
				}
			}
		}
	})
	return func() int { close(done); wg.Wait(); return misses }
}

// TestSmartRefreshRace is the smart policy's expiry race: member A does not
// use a record, member B does. When the TTL ends, A must keep the record
// while B's refresh is on its way (no miss on A, ever), B refreshes it
// exactly once, and A ends with B's refreshed version.
func TestSmartRefreshRace(t *testing.T) {
	for _, mode := range []Mode{ModeSmart, ModeGossip} {
		t.Run(mode.String(), func(t *testing.T) {
			o := defaultOpts()
			o.refreshDelay = 200 * time.Millisecond // the Map-Reply takes a while
			s := newSet(t, mode, 2, o)
			a, b := s.nodes[0], s.nodes[1]
			w := watchRemovals(t, s, "10.1.0.0/16")
			e := a.learn("10.1.0.0/16", 1200*time.Millisecond)
			waitFor(t, 5*time.Second, "b has it", func() bool { return b.has("10.1.0.0/16", e.Version) })
			stopBusy := busy(s, b, "10.1.0.0/16")
			defer stopBusy()
			stopCheck := neverMissing(a, "10.1.0.0/16")
			var refreshed *mapcache.Entry
			waitFor(t, 5*time.Second, "the refreshed version on a", func() bool {
				got, ok := a.cache.Get(e.Key())
				if ok && got.Version != e.Version {
					refreshed = got
					return true
				}
				return false
			})
			time.Sleep(o.grace) // past any second decision
			if misses := stopCheck(); misses != 0 {
				t.Errorf("a missed the record %d times while b was using it", misses)
			}
			if r := w.removals(a.name); len(r) != 0 {
				t.Errorf("a removed the record %d times", len(r))
			}
			if VersionOrigin(refreshed.Version) != b.mem.Load().Versions().Origin() {
				t.Errorf("refreshed by origin %d, want b (%d)", VersionOrigin(refreshed.Version), b.mem.Load().Versions().Origin())
			}
			if ra, rb := a.refreshes.Load(), b.refreshes.Load(); ra != 0 || rb != 1 {
				t.Errorf("refreshes: a %d, b %d; want 0 and 1", ra, rb)
			}
			if st := a.stats(); st.KeptForPeers == 0 {
				t.Errorf("a kept nothing for its peer: %+v", st)
			}
		})
	}
}

// TestSmartOneRefresher: when every member uses a record, exactly one
// refreshes it: the lowest-ranked.
func TestSmartOneRefresher(t *testing.T) {
	s := newSet(t, ModeSmart, 3, defaultOpts())
	e := s.nodes[0].learn("10.1.0.0/16", 1200*time.Millisecond)
	for _, nd := range s.nodes {
		waitFor(t, 5*time.Second, nd.name+" has it", func() bool { return nd.has("10.1.0.0/16", e.Version) })
		defer busy(s, nd, "10.1.0.0/16")()
	}
	waitFor(t, 5*time.Second, "a refreshed version everywhere", func() bool {
		for _, nd := range s.nodes {
			got, ok := nd.cache.Get(e.Key())
			if !ok || got.Version == e.Version {
				return false
			}
		}
		return true
	})
	time.Sleep(s.o.grace)
	var total int64
	lowest := s.nodes[0]
	for _, nd := range s.nodes {
		total += nd.refreshes.Load()
		if string(PublicKeyOf(nd.key)) < string(PublicKeyOf(lowest.key)) {
			lowest = nd
		}
	}
	if total != 1 || lowest.refreshes.Load() != 1 {
		t.Fatalf("%d refreshes, %d by the lowest-ranked member", total, lowest.refreshes.Load())
	}
}

// TestSmartRefresherFails: the member that should refresh never gets an
// answer; the member keeping the record for it refreshes it itself one
// grace later, and neither loses it.
func TestSmartRefresherFails(t *testing.T) {
	s := newSet(t, ModeSmart, 2, defaultOpts())
	a, b := s.nodes[0], s.nodes[1]
	b.refreshFail.Store(true)
	e := a.learn("10.1.0.0/16", 1200*time.Millisecond)
	waitFor(t, 5*time.Second, "b has it", func() bool { return b.has("10.1.0.0/16", e.Version) })
	defer busy(s, b, "10.1.0.0/16")()
	stopA, stopB := neverMissing(a, "10.1.0.0/16"), neverMissing(b, "10.1.0.0/16")
	waitFor(t, 5*time.Second, "a's own refresh reaches b", func() bool {
		got, ok := b.cache.Get(e.Key())
		return ok && VersionOrigin(got.Version) == a.mem.Load().Versions().Origin() && got.Version != e.Version
	})
	if ma, mb := stopA(), stopB(); ma+mb != 0 {
		t.Errorf("misses: a %d, b %d", ma, mb)
	}
	if a.refreshes.Load() == 0 || b.refreshes.Load() == 0 {
		t.Errorf("refreshes: a %d, b %d", a.refreshes.Load(), b.refreshes.Load())
	}
}

// TestSmartFailover: a member that used a record fails; the survivor, which
// never used it, refreshes and keeps it when its TTL ends, because a
// member now gone was using it within the window.
func TestSmartFailover(t *testing.T) {
	s := newSet(t, ModeSmart, 2, defaultOpts())
	a, b := s.nodes[0], s.nodes[1]
	e := b.learn("10.1.0.0/16", 1500*time.Millisecond)
	waitFor(t, 5*time.Second, "a has it", func() bool { return a.has("10.1.0.0/16", e.Version) })
	stopBusy := busy(s, b, "10.1.0.0/16")
	// b uses it until shortly before its TTL ends, then fails.
	waitFor(t, 5*time.Second, "shortly before expiry", func() bool { return time.Until(e.Expires) < 500*time.Millisecond })
	stopBusy()
	if used := a.mem.Load().UsedByPeers(e.Key()); time.Since(used) > 3*s.o.round {
		t.Fatalf("a last heard of b's use %v ago", time.Since(used))
	}
	b.stop()
	stopA := neverMissing(a, "10.1.0.0/16")
	waitFor(t, 5*time.Second, "a refreshed it", func() bool {
		got, ok := a.cache.Get(e.Key())
		return ok && got.Version != e.Version
	})
	if m := stopA(); m != 0 {
		t.Errorf("a missed %d times", m)
	}
	if a.refreshes.Load() != 1 {
		t.Errorf("a refreshed %d times", a.refreshes.Load())
	}
}
