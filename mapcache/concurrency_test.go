package mapcache

import (
	"context"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// checkInvariants verifies the writer's bookkeeping against the tables.
func checkInvariants(t *testing.T, c *Cache) {
	t.Helper()
	c.w.Lock()
	defer c.w.Unlock()
	idx := c.idx.Load()
	total, expiring := 0, 0
	for i, inst := range idx.insts {
		if (i > 0 && idx.insts[i-1].iid >= inst.iid) || idx.find(inst.iid) != inst {
			t.Fatalf("index broken at %d", i)
		}
		tab := inst.tab.Load()
		if tab.Size() != inst.n || inst.n == 0 {
			t.Fatalf("instance %d: size %d, n %d", inst.iid, tab.Size(), inst.n)
		}
		for p, e := range tab.All() {
			if e.Prefix != p || e.InstanceID != inst.iid || e.state != entryLive {
				t.Fatalf("entry %v misfiled or not live", e.Key())
			}
			if e.deadline.Load() != math.MaxInt64 {
				expiring++
				if e.heapIdx < 0 || c.w.heap[e.heapIdx].e != e || c.w.heap[e.heapIdx].at != e.deadline.Load() {
					t.Fatalf("entry %v not in the heap correctly", e.Key())
				}
			}
		}
		total += inst.n
	}
	if total != c.Len() || expiring != len(c.w.heap) {
		t.Fatalf("Len %d, counted %d; heap %d, expiring %d", c.Len(), total, len(c.w.heap), expiring)
	}
	for i := 1; i < len(c.w.heap); i++ {
		if c.w.heap[(i-1)/2].at > c.w.heap[i].at {
			t.Fatalf("heap order broken at %d", i)
		}
	}
}

func TestConcurrentReadersAndWriters(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := newFakeClock()
	var hookCalls atomic.Int64
	c := New(Config{
		Clock: clk.Now, MaxEntries: 150, SweepPeriod: time.Millisecond,
		OnExpire: func(e *Entry) ExpireDecision {
			if hookCalls.Add(1)%3 == 0 {
				return Extend(time.Second)
			}
			return DeleteNow
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.Run(ctx) }()
	sub := c.Subscribe(16)
	wg.Add(1)
	go func() {
		defer wg.Done()
		m := mirror{}
		for ch := range sub.C() {
			m.apply(c, ch)
		}
	}()

	prefix := func(r *rand.Rand) netip.Prefix {
		if r.IntN(4) == 0 {
			return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(64))}), 40)
		}
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r.IntN(16)), byte(r.IntN(64)), 0}), 16+r.IntN(3)*4).Masked()
	}
	var stop atomic.Bool
	var readers sync.WaitGroup
	for g := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for !stop.Load() {
				p := prefix(r)
				dst := randAddrIn(r, p)
				iid := uint32(r.IntN(3))
				if e, ok := c.LookupAt(iid, dst, clk.Nano()); ok {
					if !e.Prefix.Contains(dst) || e.InstanceID != iid {
						t.Errorf("Lookup(%d, %v) returned %v", iid, dst, e.Key())
						return
					}
					e.Touch(clk.Nano())
					e.SetReachable(0, r.IntN(2) == 0)
					_ = e.Reachable(0)
				}
				if e, ok := c.Lookup(iid, dst); ok && !e.Prefix.Contains(dst) {
					t.Errorf("Lookup(%d, %v) returned %v", iid, dst, e.Key())
					return
				}
				if g == 0 && r.IntN(100) == 0 {
					for range c.All() {
					}
					c.Stats()
				}
			}
		}()
	}
	var writers sync.WaitGroup
	for g := range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			r := rand.New(rand.NewPCG(uint64(g), 2))
			for i := range 20000 {
				k := Key{uint32(r.IntN(3)), prefix(r)}
				switch r.IntN(20) {
				case 0:
					c.Delete(k)
				case 1:
					c.DeleteFunc(func(e *Entry) bool { return e.Prefix.Bits() == 24 && r.IntN(2) == 0 })
				case 2:
					clk.Advance(100 * time.Millisecond)
				default:
					e := &Entry{InstanceID: k.InstanceID, Prefix: k.Prefix, TTL: time.Duration(1+r.IntN(5)) * time.Second,
						Version: uint64(i), RLOCs: []RLOC{{Addr: netip.MustParseAddr("192.0.2.9")}}}
					if r.IntN(50) == 0 {
						e.TTL = Permanent
					}
					c.Insert(e)
				}
			}
		}()
	}
	writers.Wait()
	// A sweep of our own, concurrent with Run's, so that expiry is
	// exercised however the scheduler treated the sweeper.
	clk.Advance(10 * time.Second)
	c.Sweep(clk.Now())
	stop.Store(true)
	readers.Wait()
	cancel()
	sub.Close()
	wg.Wait()
	checkInvariants(t, c)
	st := c.Stats()
	if st.Hits == 0 || st.Evicted == 0 || st.Expired == 0 || hookCalls.Load() == 0 {
		t.Fatalf("the test did not exercise everything: %+v, hook %d", st, hookCalls.Load())
	}
	t.Logf("%+v", st)
}
