package mapcache

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gaissmai/bart"
)

// The benchmarks share one world, built once per process (about 10 s):
// 1,000,000 IPv4 and 100,000 IPv6 prefixes with a BGP-like length mix, held
// by a Cache and by bare bart tables (Table and Fast) mapping the same
// prefixes to the same entries. The figures in the report came from
//
//	go test ./mapcache -run '^$' -bench 'Lookup|Memory' -benchtime 2000000x
//	go test ./mapcache -run '^$' -bench Insert -benchtime 100000x
//
// (about a minute each). BenchmarkLookup/*/ratio prints the overhead
// ratios directly (cache over bart.Fast as "ratio", over bart.Table as
// "cache/table"); BenchmarkMemory prints bytes/entry.

const (
	benchV4 = 1_000_000
	benchV6 = 100_000
)

// v4Weights is the share (per mille) of each IPv4 prefix length, after
// today's BGP table: 60% /24, the rest from /8 to /23, mostly /16../23.
var v4Weights = map[int]float64{
	8: 0.02, 9: 0.05, 10: 0.1, 11: 0.3, 12: 0.6, 13: 1, 14: 2, 15: 3,
	16: 14, 17: 8, 18: 15, 19: 30, 20: 40, 21: 45, 22: 120, 23: 100, 24: 600,
}

// v6Weights: mostly /48 and /32, some /29../64.
var v6Weights = map[int]float64{
	29: 10, 30: 5, 31: 5, 32: 200, 33: 10, 34: 10, 35: 10, 36: 20, 40: 40,
	44: 40, 46: 20, 47: 20, 48: 500, 52: 20, 56: 50, 60: 10, 64: 20,
}

type lengthPicker struct {
	lens []int
	cum  []float64
}

func newLengthPicker(w map[int]float64) *lengthPicker {
	p := &lengthPicker{}
	total := 0.0
	for l := 0; l <= 128; l++ {
		if x, ok := w[l]; ok {
			total += x
			p.lens = append(p.lens, l)
			p.cum = append(p.cum, total)
		}
	}
	for i := range p.cum {
		p.cum[i] /= total
	}
	return p
}

func (p *lengthPicker) pick(r *rand.Rand) int {
	x := r.Float64()
	for i, c := range p.cum {
		if x < c {
			return p.lens[i]
		}
	}
	return p.lens[len(p.lens)-1]
}

// genPrefixes returns n distinct prefixes, deterministically.
func genPrefixes(r *rand.Rand, n int, v6 bool) []netip.Prefix {
	lp := newLengthPicker(v4Weights)
	if v6 {
		lp = newLengthPicker(v6Weights)
	}
	// Global unicast IPv6 is allocated from a few /12s.
	v6Blocks := []uint16{0x2001, 0x2400, 0x2600, 0x2800, 0x2a00, 0x2c00}
	seen := make(map[netip.Prefix]struct{}, n)
	out := make([]netip.Prefix, 0, n)
	for len(out) < n {
		var a netip.Addr
		bits := lp.pick(r)
		if v6 {
			var b [16]byte
			hi := v6Blocks[r.IntN(len(v6Blocks))] | uint16(r.IntN(16))
			b[0], b[1] = byte(hi>>8), byte(hi)
			for i := 2; i < 8; i++ {
				b[i] = byte(r.Uint32())
			}
			a = netip.AddrFrom16(b)
		} else {
			u := r.Uint32()
			first := byte(1 + r.IntN(223)) // unicast space 1..223
			a = netip.AddrFrom4([4]byte{first, byte(u >> 16), byte(u >> 8), byte(u)})
		}
		p := netip.PrefixFrom(a, bits).Masked()
		if _, dup := seen[p]; dup {
			continue
		}
		seen[p] = struct{}{}
		out = append(out, p)
	}
	return out
}

type benchWorld struct {
	cache    *Cache
	table    *bart.Table[*Entry]
	fast     *bart.Fast[*Entry]
	entries  []*Entry
	hot      []netip.Addr // 1,000 destinations
	random   []netip.Addr // 1<<20 destinations spread over the table
	fresh    []netip.Prefix
	now      int64
	memEntry float64 // bytes per entry of the Entry values and their RLOCs
	memCache float64 // bytes per entry of the cache's index (tables, heap...)
	memTable float64 // bytes per entry of a bare bart.Table
	memFast  float64 // bytes per entry of a bare bart.Fast
	build    time.Duration
}

var (
	worldOnce sync.Once
	world     *benchWorld
)

func heapInUse() float64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc)
}

func getWorld(b *testing.B) *benchWorld {
	b.Helper()
	worldOnce.Do(func() {
		w := &benchWorld{}
		r := rand.New(rand.NewPCG(2025, 9300))
		pfx := append(genPrefixes(r, benchV4, false), genPrefixes(r, benchV6, true)...)
		// Shuffle so that inserts do not arrive sorted by family.
		r.Shuffle(len(pfx), func(i, j int) { pfx[i], pfx[j] = pfx[j], pfx[i] })
		now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
		w.now = now.UnixNano()
		rlocs := [][]RLOC{
			{{Addr: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 100, Reachable: true}},
			{{Addr: netip.MustParseAddr("2001:db8::1"), Priority: 1, Weight: 50, Reachable: true},
				{Addr: netip.MustParseAddr("198.51.100.7"), Priority: 1, Weight: 50, Reachable: true}},
		}
		n := float64(len(pfx))

		m0 := heapInUse()
		w.entries = make([]*Entry, len(pfx))
		for i, p := range pfx {
			rl := rlocs[i%2]
			w.entries[i] = &Entry{
				Prefix: p, RLOCs: append([]RLOC(nil), rl...), TTL: 24 * time.Hour,
				Source: FromMapReply, Version: 1, Origin: "mr1",
			}
		}
		m1 := heapInUse()
		w.memEntry = (m1 - m0) / n

		w.table = new(bart.Table[*Entry])
		for _, e := range w.entries {
			w.table.Insert(e.Prefix, e)
		}
		m2 := heapInUse()
		w.memTable = (m2 - m1) / n

		w.fast = new(bart.Fast[*Entry])
		for _, e := range w.entries {
			w.fast.Insert(e.Prefix, e)
		}
		m3 := heapInUse()
		w.memFast = (m3 - m2) / n

		start := time.Now()
		w.cache = New(Config{MaxEntries: 2 * len(pfx), Clock: func() time.Time { return now }})
		if errs := w.cache.InsertBatch(w.entries); errs != nil {
			panic(errs)
		}
		w.build = time.Since(start)
		m4 := heapInUse()
		w.memCache = (m4 - m3) / n

		w.hot = make([]netip.Addr, 1000)
		for i := range w.hot {
			w.hot[i] = randAddrIn(r, pfx[r.IntN(len(pfx))])
		}
		w.random = make([]netip.Addr, 1<<20)
		for i := range w.random {
			w.random[i] = randAddrIn(r, pfx[r.IntN(len(pfx))])
		}
		// Fresh keys: no generated IPv4 prefix is longer than /24.
		seen := map[netip.Prefix]bool{}
		for len(w.fresh) < 1<<18 {
			u := r.Uint32()
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(u >> 16), byte(u >> 8), byte(u)}), 25+r.IntN(4)).Masked()
			if !seen[p] {
				seen[p] = true
				w.fresh = append(w.fresh, p)
			}
		}
		world = w
	})
	return world
}

func BenchmarkLookup(b *testing.B) {
	w := getWorld(b)
	for _, set := range []struct {
		name  string
		addrs []netip.Addr
	}{{"hot", w.hot}, {"random", w.random}} {
		addrs := set.addrs
		mask := len(addrs) - 1
		if len(addrs)&mask != 0 {
			mask = -1
		}
		at := func(i int) netip.Addr {
			if mask >= 0 {
				return addrs[i&mask]
			}
			return addrs[i%len(addrs)]
		}
		cacheLoop := func(from, n int) (hits int) {
			for i := from; i < from+n; i++ {
				if _, ok := w.cache.LookupAt(0, at(i), w.now); ok {
					hits++
				}
			}
			return hits
		}
		// peekLoop is the packet path: Peek per packet, hits and misses
		// counted locally and added once per call (per batch).
		peekLoop := func(from, n int) (hits int) {
			for i := from; i < from+n; i++ {
				if _, ok := w.cache.Peek(0, at(i), w.now); ok {
					hits++
				}
			}
			w.cache.CountLookups(uint64(hits), uint64(n-hits))
			return hits
		}
		tableLoop := func(from, n int) (hits int) {
			for i := from; i < from+n; i++ {
				if _, ok := w.table.Lookup(at(i)); ok {
					hits++
				}
			}
			return hits
		}
		fastLoop := func(from, n int) (hits int) {
			for i := from; i < from+n; i++ {
				if _, ok := w.fast.Lookup(at(i)); ok {
					hits++
				}
			}
			return hits
		}
		b.Run(set.name+"/cache", func(b *testing.B) {
			b.ReportAllocs()
			if cacheLoop(0, b.N) != b.N {
				b.Fatal("a destination missed")
			}
		})
		b.Run(set.name+"/cache-peek", func(b *testing.B) {
			b.ReportAllocs()
			for done := 0; done < b.N; done += 64 {
				if n := min(64, b.N-done); peekLoop(done, n) != n {
					b.Fatal("a destination missed")
				}
			}
		})
		// cache-batch looks up batches of 64 destinations with LookupBatch,
		// as the packet path does with a TUN batch; ns/op is per lookup.
		b.Run(set.name+"/cache-batch", func(b *testing.B) {
			b.ReportAllocs()
			var dsts [64]netip.Addr
			var out [64]*Entry
			hits := 0
			for done := 0; done < b.N; done += len(dsts) {
				for j := range dsts {
					dsts[j] = at(done + j)
				}
				hits += w.cache.LookupBatch(0, dsts[:min(len(dsts), b.N-done)], w.now, out[:])
			}
			if hits != b.N {
				b.Fatal("a destination missed")
			}
		})
		b.Run(set.name+"/bart", func(b *testing.B) {
			b.ReportAllocs()
			if tableLoop(0, b.N) != b.N {
				b.Fatal("a destination missed")
			}
		})
		b.Run(set.name+"/bart-fast", func(b *testing.B) {
			if fastLoop(0, b.N) != b.N {
				b.Fatal("a destination missed")
			}
		})
		// ratio runs the three loops alternately on the same slices of 4096
		// destinations and reports the medians over the slices of each one's
		// ns/lookup and of the ratios, so that other work on a shared machine
		// (which hits a few slices) hardly moves the figures. "ratio" is the
		// cache over bart.Fast, the structure it uses; "cache/table" is the
		// cache over bart.Table, and "fast/table" compares the two variants.
		b.Run(set.name+"/ratio", func(b *testing.B) {
			var sc, sb, sf, sp, rc, rt, rf, rp []float64
			for done := 0; done < b.N; {
				n := min(4096, b.N-done)
				t0 := time.Now()
				cacheLoop(done, n)
				t1 := time.Now()
				tableLoop(done, n)
				t2 := time.Now()
				fastLoop(done, n)
				t3 := time.Now()
				for k := 0; k < n; k += 64 {
					peekLoop(done+k, min(64, n-k))
				}
				t4 := time.Now()
				c, t, f := float64(t1.Sub(t0))/float64(n), float64(t2.Sub(t1))/float64(n), float64(t3.Sub(t2))/float64(n)
				p := float64(t4.Sub(t3)) / float64(n)
				sc, sb, sf, sp = append(sc, c), append(sb, t), append(sf, f), append(sp, p)
				rc, rt, rf, rp = append(rc, c/f), append(rt, c/t), append(rf, f/t), append(rp, p/f)
				done += n
			}
			b.ReportMetric(median(sc), "cache-ns/lookup")
			b.ReportMetric(median(sb), "table-ns/lookup")
			b.ReportMetric(median(sf), "fast-ns/lookup")
			b.ReportMetric(median(rc), "ratio")
			b.ReportMetric(median(rt), "cache/table")
			b.ReportMetric(median(rf), "fast/table")
			b.ReportMetric(median(sp), "peek-ns/lookup")
			b.ReportMetric(median(rp), "peek-ratio")
		})
	}
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

func BenchmarkInsert(b *testing.B) {
	w := getWorld(b)
	b.Run("new/cache", func(b *testing.B) {
		var added []Key
		b.ReportAllocs()
		for i := range b.N {
			p := w.fresh[i%len(w.fresh)]
			e := &Entry{Prefix: p, RLOCs: []RLOC{{Addr: netip.MustParseAddr("192.0.2.1")}}, TTL: time.Hour, Version: uint64(i)}
			old, err := w.cache.Insert(e)
			if err != nil {
				b.Fatal(err)
			}
			if old == nil {
				added = append(added, e.Key())
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
		b.StopTimer()
		for _, k := range added {
			w.cache.Delete(k)
		}
	})
	b.Run("new/bart", func(b *testing.B) {
		t := w.table
		b.ReportAllocs()
		for i := range b.N {
			e := &Entry{Prefix: w.fresh[i%len(w.fresh)]}
			t = t.InsertPersist(e.Prefix, e)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	})
	b.Run("new/bart-fast", func(b *testing.B) {
		t := w.fast
		b.ReportAllocs()
		for i := range b.N {
			e := &Entry{Prefix: w.fresh[i%len(w.fresh)]}
			t = t.InsertPersist(e.Prefix, e)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	})
	// new/ratio alternates slices of 256 new-key inserts into the cache and
	// copy-on-write inserts into a bart.Fast and reports the medians over
	// the slices, which a shared machine disturbs less than separate runs.
	b.Run("new/ratio", func(b *testing.B) {
		var added []Key
		t := w.fast
		var sc, sf, r []float64
		for done := 0; done < b.N; {
			n := min(256, b.N-done)
			t0 := time.Now()
			for i := done; i < done+n; i++ {
				e := &Entry{Prefix: w.fresh[i%len(w.fresh)], RLOCs: []RLOC{{Addr: netip.MustParseAddr("192.0.2.1")}}, TTL: time.Hour, Version: uint64(i)}
				if old, err := w.cache.Insert(e); err != nil {
					b.Fatal(err)
				} else if old == nil {
					added = append(added, e.Key())
				}
			}
			t1 := time.Now()
			for i := done; i < done+n; i++ {
				e := &Entry{Prefix: w.fresh[i%len(w.fresh)]}
				t = t.InsertPersist(e.Prefix, e)
			}
			t2 := time.Now()
			c, f := float64(t1.Sub(t0))/float64(n), float64(t2.Sub(t1))/float64(n)
			sc, sf, r = append(sc, c), append(sf, f), append(r, c/f)
			done += n
		}
		b.ReportMetric(1e9/median(sc), "cache-inserts/s")
		b.ReportMetric(1e9/median(sf), "fast-inserts/s")
		b.ReportMetric(median(r), "ratio")
		b.StopTimer()
		for _, k := range added {
			w.cache.Delete(k)
		}
	})
	b.Run("replace/cache", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			old := w.entries[(i*7919)%len(w.entries)]
			cur, _ := w.cache.Get(old.Key())
			e := &Entry{Prefix: old.Prefix, RLOCs: []RLOC{{Addr: netip.MustParseAddr("192.0.2.1")}}, TTL: time.Hour, Version: cur.Version + 1}
			if _, err := w.cache.Insert(e); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	})
	b.Run("replace/bart", func(b *testing.B) {
		t := w.table
		b.ReportAllocs()
		for i := range b.N {
			old := w.entries[(i*7919)%len(w.entries)]
			e := &Entry{Prefix: old.Prefix}
			t = t.InsertPersist(e.Prefix, e)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	})
	b.Run("replace/bart-fast", func(b *testing.B) {
		t := w.fast
		b.ReportAllocs()
		for i := range b.N {
			old := w.entries[(i*7919)%len(w.entries)]
			e := &Entry{Prefix: old.Prefix}
			t = t.InsertPersist(e.Prefix, e)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	})
}

// BenchmarkMemory reports the heap bytes per entry measured while building
// the world: cache (entries with their RLOCs plus the cache's index),
// cache-index (the index alone) and the bare bart tables (their nodes only;
// they point to the same entries).
func BenchmarkMemory(b *testing.B) {
	w := getWorld(b)
	for _, m := range []struct {
		name string
		v    float64
	}{
		{"cache", w.memEntry + w.memCache},
		{"cache-index", w.memCache},
		{"bart", w.memTable},
		{"bart-fast", w.memFast},
	} {
		b.Run(m.name, func(b *testing.B) {
			for range b.N {
			}
			b.ReportMetric(m.v, "bytes/entry")
		})
	}
	b.Run("build", func(b *testing.B) {
		for range b.N {
		}
		b.ReportMetric(w.build.Seconds(), "s/1.1M-batch-insert")
	})
}
