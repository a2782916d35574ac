package mapcache

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestFeedDeliversChangesInOrder(t *testing.T) {
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now, MaxEntries: 2})
	sub := c.Subscribe(0)
	defer sub.Close()
	a := ent(0, "10.0.0.0/8", 1, time.Minute)
	a2 := ent(0, "10.0.0.0/8", 2, time.Hour)
	b := ent(1, "10.0.0.0/8", 1, time.Hour)
	d := ent(1, "2001:db8::/32", 1, time.Hour)
	mustInsert(t, c, a)
	mustInsert(t, c, a2)
	mustInsert(t, c, b)
	clk.Advance(time.Second)
	b.Touch(clk.Nano())
	mustInsert(t, c, d) // evicts a2, the least recently used
	c.Insert(ent(1, "10.0.0.0/8", 0, time.Hour))
	c.Delete(b.Key())
	clk.Advance(2 * time.Hour)
	c.Sweep(clk.Now())
	want := []Change{
		{Added, a, nil}, {Replaced, a2, a}, {Added, b, nil}, {Evicted, a2, nil},
		{Added, d, nil}, {Deleted, b, nil}, {Expired, d, nil},
	}
	got := drain(sub)
	if len(got) != len(want) {
		t.Fatalf("got %d changes, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("change %d = %v %v %v, want %v %v %v", i, got[i].Kind, keyOf(got[i].Entry), keyOf(got[i].Old),
				want[i].Kind, keyOf(want[i].Entry), keyOf(want[i].Old))
		}
	}
	sub.Close()
	sub.Close()
	if _, open := <-sub.C(); open {
		t.Fatal("channel open after Close")
	}
	mustInsert(t, c, ent(0, "12.0.0.0/8", 1, time.Hour)) // no send on a closed channel
}

func TestFeedOverflowNeverBlocksAndSignalsResync(t *testing.T) {
	c := New(Config{})
	sub := c.Subscribe(8)
	defer sub.Close()
	// Nobody reads: 1000 inserts must not block.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			mustInsert(t, c, &Entry{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), TTL: time.Hour})
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Insert blocked on a full subscriber")
	}
	got := drain(sub)
	if len(got) != 9 || got[8].Kind != Resync || got[8].Entry != nil {
		t.Fatalf("got %d changes, last %v", len(got), got[len(got)-1].Kind)
	}
	for _, ch := range got[:8] {
		if ch.Kind != Added {
			t.Fatalf("kind %v", ch.Kind)
		}
	}
	if sub.Dropped() != 992 || c.Stats().FeedOverflows != 992 {
		t.Fatalf("dropped %d, stats %d", sub.Dropped(), c.Stats().FeedOverflows)
	}
	// After the Resync is read, changes flow again.
	mustInsert(t, c, ent(0, "11.0.0.0/8", 1, time.Hour))
	if got := drain(sub); len(got) != 1 || got[0].Kind != Added {
		t.Fatalf("after resync: %v", got)
	}
	// A second overflow while a Resync is still unread does not queue another.
	for i := range 20 {
		mustInsert(t, c, &Entry{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{12, byte(i), 0, 0}), 16), TTL: time.Hour})
	}
	<-sub.C() // read one: room for one more
	for i := range 20 {
		mustInsert(t, c, &Entry{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{13, byte(i), 0, 0}), 16), TTL: time.Hour})
	}
	resyncs := 0
	for _, ch := range drain(sub) {
		if ch.Kind == Resync {
			resyncs++
		}
	}
	if resyncs != 1 {
		t.Fatalf("%d resyncs queued", resyncs)
	}
}

// mirror is what a subscriber such as the sync set maintains.
type mirror map[Key]*Entry

func (m mirror) apply(c *Cache, ch Change) {
	switch ch.Kind {
	case Added, Replaced:
		m[ch.Entry.Key()] = ch.Entry
	case Deleted, Expired, Evicted:
		delete(m, ch.Entry.Key())
	case Resync:
		clear(m)
		for e := range c.All() {
			m[e.Key()] = e
		}
	}
}

// A slow subscriber that resynchronizes whenever told ends with exactly the
// cache's content, whatever was dropped.
func TestFeedSubscriberConverges(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now, MaxEntries: 300})
	sub := c.Subscribe(4)
	m := mirror{}
	var wg sync.WaitGroup
	wg.Add(1)
	resyncs := 0
	go func() {
		defer wg.Done()
		for ch := range sub.C() {
			if ch.Kind == Resync {
				resyncs++
			}
			m.apply(c, ch)
		}
	}()
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), 0}), 24)
		switch r.IntN(10) {
		case 0:
			c.Delete(Key{0, p})
		case 1:
			clk.Advance(time.Second)
			c.Sweep(clk.Now())
		default:
			c.Insert(&Entry{Prefix: p, TTL: time.Duration(1+r.IntN(60)) * time.Second, Version: uint64(i)})
		}
	}
	// Quiesce: one last change that must reach the mirror, then close.
	final := ent(0, "11.0.0.0/8", 1, time.Hour)
	mustInsert(t, c, final)
	waitFor(t, func() bool { return len(sub.C()) == 0 })
	sub.Close()
	wg.Wait()
	if resyncs == 0 {
		t.Fatal("the test never overflowed the subscriber")
	}
	snap := c.Snapshot()
	if len(m) != len(snap) {
		t.Fatalf("mirror has %d entries, cache %d", len(m), len(snap))
	}
	for _, e := range snap {
		if m[e.Key()] != e {
			t.Fatalf("mirror differs at %v", e.Key())
		}
	}
}
