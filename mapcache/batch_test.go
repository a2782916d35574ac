package mapcache

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func TestInsertBatch(t *testing.T) {
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now})
	sub := c.Subscribe(1 << 16)
	defer sub.Close()
	r := rand.New(rand.NewPCG(8, 8))
	ref := map[Key]*Entry{}
	var keys []Key
	// Batches of decreasing size exercise the three table strategies: a new
	// instance (in place), a clone (large batch) and copy-on-write (small).
	for round, n := range []int{3000, 600, 5, 100, 1} {
		batch := make([]*Entry, 0, n+3)
		for range n {
			iid := uint32(r.IntN(2))
			p := randPrefix(r, r.IntN(3) == 0)
			e := &Entry{InstanceID: iid, Prefix: p, TTL: time.Hour, Version: uint64(round + 1)}
			batch = append(batch, e)
		}
		// An invalid entry, a nil one and a stale one do not stop the batch.
		batch = append(batch, &Entry{Prefix: netip.MustParsePrefix("10.0.0.1/8"), TTL: time.Hour}, nil)
		if round > 0 {
			stale := keys[0]
			batch = append(batch, &Entry{InstanceID: stale.InstanceID, Prefix: stale.Prefix, TTL: time.Hour})
		}
		before := c.Len()
		errs := c.InsertBatch(batch)
		if len(errs) != len(batch) {
			t.Fatalf("round %d: %d errors for %d entries", round, len(errs), len(batch))
		}
		added, replaced := 0, 0
		for i, e := range batch {
			switch {
			case i == n:
				if !errors.Is(errs[i], ErrInvalidPrefix) {
					t.Fatalf("invalid entry: %v", errs[i])
				}
			case i == n+1:
				if !errors.Is(errs[i], ErrNilEntry) {
					t.Fatalf("nil entry: %v", errs[i])
				}
			case i == n+2:
				if !errors.Is(errs[i], ErrStale) {
					t.Fatalf("stale entry: %v", errs[i])
				}
			default:
				if errs[i] != nil {
					t.Fatalf("entry %d: %v", i, errs[i])
				}
				if _, ok := ref[e.Key()]; ok {
					replaced++
				} else {
					added++
					keys = append(keys, e.Key())
				}
				ref[e.Key()] = e // a later duplicate in the batch wins
			}
		}
		if c.Len() != before+added || c.Len() != len(ref) {
			t.Fatalf("round %d: Len %d, want %d", round, c.Len(), len(ref))
		}
		chs := drain(sub)
		if len(chs) != added+replaced {
			t.Fatalf("round %d: %d changes, want %d", round, len(chs), added+replaced)
		}
		for range 3000 {
			iid := uint32(r.IntN(2))
			dst := randAddrIn(r, keys[r.IntN(len(keys))].Prefix)
			want := naiveLookup(ref, iid, dst)
			if got, _ := c.Lookup(iid, dst); got != want {
				t.Fatalf("round %d: Lookup(%d, %v) = %v, want %v", round, iid, dst, keyOf(got), keyOf(want))
			}
		}
		checkInvariants(t, c)
	}
	if errs := c.InsertBatch([]*Entry{ent(5, "10.0.0.0/8", 1, time.Hour)}); errs != nil {
		t.Fatalf("clean batch returned %v", errs)
	}
	if errs := c.InsertBatch(nil); errs != nil {
		t.Fatalf("empty batch returned %v", errs)
	}
}

func TestInsertBatchEvicts(t *testing.T) {
	clk := newFakeClock()
	c := New(Config{Clock: clk.Now, MaxEntries: 100})
	var batch []*Entry
	for i := range 300 {
		batch = append(batch, &Entry{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), TTL: time.Hour})
	}
	if errs := c.InsertBatch(batch); errs != nil {
		t.Fatal(errs)
	}
	if c.Len() != 100 || c.Stats().Evicted != 200 {
		t.Fatalf("Len %d, stats %+v", c.Len(), c.Stats())
	}
	checkInvariants(t, c)
}
