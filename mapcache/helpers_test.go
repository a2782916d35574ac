package mapcache

import (
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	f := &fakeClock{}
	f.ns.Store(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return f
}

func (f *fakeClock) Now() time.Time          { return time.Unix(0, f.ns.Load()) }
func (f *fakeClock) Nano() int64             { return f.ns.Load() }
func (f *fakeClock) Advance(d time.Duration) { f.ns.Add(int64(d)) }

// ent builds a positive entry with one RLOC.
func ent(iid uint32, pfx string, version uint64, ttl time.Duration) *Entry {
	return &Entry{
		InstanceID: iid,
		Prefix:     netip.MustParsePrefix(pfx),
		RLOCs:      []RLOC{{Addr: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 100, Reachable: true}},
		TTL:        ttl,
		Version:    version,
		Source:     FromMapReply,
	}
}

func mustInsert(t testing.TB, c *Cache, e *Entry) {
	t.Helper()
	if _, err := c.Insert(e); err != nil {
		t.Fatalf("Insert(%v): %v", e.Key(), err)
	}
}

// seeded makes the cache's eviction sampling deterministic.
func seeded(c *Cache, seed uint64) *Cache {
	c.w.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return c
}

// randPrefix returns a random masked prefix: IPv4 /0../32 or IPv6 /0../128
// biased to short lengths so that prefixes nest.
func randPrefix(r *rand.Rand, v6 bool) netip.Prefix {
	if v6 {
		var b [16]byte
		b[0] = 0x20
		b[1] = byte(r.IntN(4))
		for i := 2; i < 16; i++ {
			b[i] = byte(r.IntN(4))
		}
		bits := r.IntN(129)
		return netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()
	}
	b := [4]byte{byte(10 + r.IntN(3)), byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(256))}
	bits := r.IntN(33)
	return netip.PrefixFrom(netip.AddrFrom4(b), bits).Masked()
}

// randAddrIn returns a random address inside p.
func randAddrIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	start := 0
	if p.Addr().Is4() {
		start = 12
	}
	for i := range 16 - start {
		bit := i * 8
		for j := range 8 {
			if bit+j >= p.Bits() {
				b[start+i] |= byte(r.IntN(2)) << (7 - j)
			}
		}
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}
