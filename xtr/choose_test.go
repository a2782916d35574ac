package xtr

import (
	"net/netip"
	"testing"

	"github.com/lispd/lispd/mapcache"
)

func chooseEntry(t *testing.T, rs []mapcache.RLOC) *mapcache.Entry {
	t.Helper()
	c := mapcache.New(mapcache.Config{})
	return insert(t, c, &mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: rs})
}

func loc(a string, pri, w uint8) mapcache.RLOC {
	return mapcache.RLOC{Addr: netip.MustParseAddr(a), Priority: pri, Weight: w, Reachable: true}
}

// spread counts how many of n hashes go to each RLOC.
func spread(t *testing.T, e *mapcache.Entry, n int, fam families) map[netip.Addr]int {
	t.Helper()
	out := map[netip.Addr]int{}
	for h := range n {
		// A multiplicative hash spreads the consecutive h like FlowHash
		// spreads flows.
		i, ok := chooseRLOC(e, uint32(h)*2654435761, fam)
		if !ok {
			t.Fatalf("hash %d: no RLOC", h)
		}
		out[e.RLOCs[i].Addr]++
	}
	return out
}

func TestChooseRLOCPriority(t *testing.T) {
	e := chooseEntry(t, []mapcache.RLOC{loc("192.0.2.10", 2, 100), loc("192.0.2.11", 1, 10), loc("192.0.2.12", 3, 100)})
	got := spread(t, e, 1000, families{v4: true})
	if got[netip.MustParseAddr("192.0.2.11")] != 1000 {
		t.Errorf("lowest priority must take every flow: %v", got)
	}
}

func TestChooseRLOCWeights(t *testing.T) {
	e := chooseEntry(t, []mapcache.RLOC{loc("192.0.2.10", 1, 30), loc("192.0.2.11", 1, 70), loc("192.0.2.12", 2, 100)})
	got := spread(t, e, 10000, families{v4: true})
	a, b := got[netip.MustParseAddr("192.0.2.10")], got[netip.MustParseAddr("192.0.2.11")]
	if a+b != 10000 {
		t.Fatalf("flows went to the backup RLOC: %v", got)
	}
	if a < 2700 || a > 3300 || b < 6700 || b > 7300 {
		t.Errorf("30/70 weights gave %d/%d", a, b)
	}
	// Deterministic: the same hash gives the same RLOC, on another entry
	// with the same locator set too (another ITR of the site).
	e2 := chooseEntry(t, []mapcache.RLOC{loc("192.0.2.10", 1, 30), loc("192.0.2.11", 1, 70), loc("192.0.2.12", 2, 100)})
	for h := range uint32(500) {
		i1, _ := chooseRLOC(e, h*7919, families{v4: true})
		i2, _ := chooseRLOC(e2, h*7919, families{v4: true})
		if i1 != i2 {
			t.Fatalf("hash %d: %d then %d", h, i1, i2)
		}
	}
}

func TestChooseRLOCZeroWeights(t *testing.T) {
	e := chooseEntry(t, []mapcache.RLOC{loc("192.0.2.10", 1, 0), loc("192.0.2.11", 1, 0)})
	got := spread(t, e, 1000, families{v4: true})
	for a, n := range got {
		if n < 400 || n > 600 {
			t.Errorf("equal spread expected with zero weights: %s got %d of 1000", a, n)
		}
	}
	// A weight-0 RLOC beside weighted ones gets nothing...
	e = chooseEntry(t, []mapcache.RLOC{loc("192.0.2.10", 1, 0), loc("192.0.2.11", 1, 5)})
	if got := spread(t, e, 200, families{v4: true}); got[netip.MustParseAddr("192.0.2.11")] != 200 {
		t.Errorf("weight 0 beside weight 5: %v", got)
	}
	// ...until the weighted one is unreachable.
	e.SetReachable(1, false)
	if got := spread(t, e, 200, families{v4: true}); got[netip.MustParseAddr("192.0.2.10")] != 200 {
		t.Errorf("after the weighted RLOC went down: %v", got)
	}
}

func TestChooseRLOCUnreachableFallback(t *testing.T) {
	e := chooseEntry(t, []mapcache.RLOC{loc("192.0.2.10", 1, 50), loc("192.0.2.11", 1, 50), loc("192.0.2.12", 2, 100), loc("192.0.2.13", 255, 100)})
	fam := families{v4: true}
	e.SetReachable(0, false)
	if got := spread(t, e, 300, fam); got[netip.MustParseAddr("192.0.2.11")] != 300 {
		t.Errorf("one of two best down: %v", got)
	}
	e.SetReachable(1, false)
	if got := spread(t, e, 300, fam); got[netip.MustParseAddr("192.0.2.12")] != 300 {
		t.Errorf("both best down: want the next priority: %v", got)
	}
	e.SetReachable(2, false)
	if _, ok := chooseRLOC(e, 1, fam); ok {
		t.Error("only a priority-255 RLOC left: it must not be used")
	}
	e.SetReachable(0, true)
	if got := spread(t, e, 300, fam); got[netip.MustParseAddr("192.0.2.10")] != 300 {
		t.Errorf("back up: %v", got)
	}
}

func TestChooseRLOCFamilies(t *testing.T) {
	e := chooseEntry(t, []mapcache.RLOC{loc("2001:db8::1", 1, 100), loc("192.0.2.10", 2, 100)})
	i, ok := chooseRLOC(e, 3, families{v4: true})
	if !ok || e.RLOCs[i].Addr != netip.MustParseAddr("192.0.2.10") {
		t.Errorf("an IPv4-only ITR must skip the IPv6 RLOC: %d %v", i, ok)
	}
	i, ok = ChooseRLOC(e, 3, true, true)
	if !ok || i != 0 {
		t.Errorf("dual-stack: %d %v", i, ok)
	}
	if _, ok := chooseRLOC(e, 3, families{}); ok {
		t.Error("no family: no RLOC")
	}
}

func TestChooseRLOCManyLocators(t *testing.T) {
	// Beyond 64 locators reachability comes from Entry.Reachable.
	var rs []mapcache.RLOC
	for k := range 100 {
		rs = append(rs, mapcache.RLOC{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(k)}), Priority: 2, Weight: 1, Reachable: true})
	}
	rs[80].Priority = 1
	e := chooseEntry(t, rs)
	if i, ok := chooseRLOC(e, 12345, families{v4: true}); !ok || i != 80 {
		t.Fatalf("got %d %v, want 80", i, ok)
	}
	e.SetReachable(80, false)
	if i, ok := chooseRLOC(e, 12345, families{v4: true}); !ok || i == 80 || e.RLOCs[i].Priority != 2 {
		t.Fatalf("got %d %v after 80 went down", i, ok)
	}
}

func TestChooseRLOCNoAllocs(t *testing.T) {
	e := chooseEntry(t, []mapcache.RLOC{loc("192.0.2.10", 1, 30), loc("192.0.2.11", 1, 70)})
	if a := testing.AllocsPerRun(100, func() { chooseRLOC(e, 99, families{v4: true}) }); a != 0 {
		t.Errorf("%v allocations", a)
	}
}
