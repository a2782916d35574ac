package mapcache

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzOperations drives a small cache with an arbitrary sequence of
// operations decoded from the input. It must never panic; the change feed
// applied to a mirror must always equal the cache's content, lookups must
// agree with a linear scan of the mirror, and the internal bookkeeping must
// stay consistent.
func FuzzOperations(f *testing.F) {
	f.Add([]byte{0, 1, 10, 0, 0, 0, 8, 1, 5, 1, 3, 0, 10, 1, 2, 3})
	f.Add([]byte{0, 0, 0x20, 1, 0xd, 0xb8, 32, 2, 200, 0, 0, 0, 0x20, 1, 0xd, 0xb8, 48, 3, 1, 2, 2, 60, 3, 0, 10})
	f.Add([]byte{4, 0, 10, 1, 1, 1, 24, 1, 1, 1, 4, 1, 10, 2, 2, 2, 16, 1, 0, 0, 1, 0, 10, 1, 1, 1, 24})
	f.Fuzz(func(t *testing.T, data []byte) {
		clk := newFakeClock()
		c := New(Config{Clock: clk.Now, MaxEntries: 8, OnExpire: func(e *Entry) ExpireDecision {
			if e.Version%2 == 1 && e.Deadline().Sub(e.Expires) < time.Minute {
				return Extend(10 * time.Second)
			}
			return DeleteNow
		}})
		sub := c.Subscribe(1 << 12)
		defer sub.Close()
		m := mirror{}
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		readEntry := func() *Entry {
			iid := uint32(next() % 3)
			var p netip.Prefix
			if next()%2 == 0 {
				a := netip.AddrFrom4([4]byte{next(), next(), next(), next()})
				p = netip.PrefixFrom(a, int(next())%40) // lengths > 32 are invalid
			} else {
				var b [16]byte
				b[0], b[1], b[2], b[3] = next(), next(), next(), next()
				p = netip.PrefixFrom(netip.AddrFrom16(b), int(next())%140)
			}
			if next()%4 != 0 {
				p = p.Masked() // mostly valid prefixes
			}
			e := &Entry{InstanceID: iid, Prefix: p, Version: uint64(next() % 4), TTL: time.Duration(next()%70) * time.Second}
			if e.TTL == 0 && next()%2 == 0 {
				e.TTL = Permanent
			}
			for i := range int(next() % 3) {
				e.RLOCs = append(e.RLOCs, RLOC{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), Reachable: true})
			}
			e.Action = Action(next() % 7)
			return e
		}
		for len(data) > 0 {
			switch next() % 5 {
			case 0:
				c.Insert(readEntry())
			case 1:
				e := readEntry()
				c.Delete(e.Key())
			case 2:
				clk.Advance(time.Duration(next()) * time.Second)
				c.Sweep(clk.Now())
			case 3:
				e := readEntry()
				if e.Prefix.IsValid() {
					dst := e.Prefix.Addr()
					got, _ := c.Lookup(e.InstanceID, dst)
					if want := naiveLookup(m, e.InstanceID, dst); got != want {
						t.Fatalf("Lookup(%d, %v) = %v, want %v", e.InstanceID, dst, keyOf(got), keyOf(want))
					}
				}
			case 4:
				c.InsertBatch([]*Entry{readEntry(), readEntry()})
			}
			for _, ch := range drain(sub) {
				m.apply(c, ch)
			}
		}
		snap := c.Snapshot()
		if len(snap) != len(m) || len(snap) > 8 {
			t.Fatalf("cache has %d entries, mirror %d", len(snap), len(m))
		}
		for _, e := range snap {
			if m[e.Key()] != e {
				t.Fatalf("mirror differs at %v", e.Key())
			}
		}
		checkInvariants(t, c)
	})
}
