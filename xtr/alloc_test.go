package xtr

import (
	"net/netip"
	"testing"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
)

// hitSetup returns an encapsulating loop whose ITR has mappings for
// 10.2.0.0/16 (two RLOCs, spread by weight) and a batch of n packets to
// 10.2.x.y from many flows.
func hitSetup(tb testing.TB, n int) (*encapLoop, func()) {
	clk := newFakeClock()
	i, err := NewITR(ITRConfig{MapResolvers: []netip.AddrPort{mr1}, RLOCs: []netip.Addr{rlocA}, Clock: clk.Now}, &recordingSender{})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := i.Cache().Insert(&mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), TTL: 1 << 40,
		RLOCs: []mapcache.RLOC{{Addr: rlocB, Priority: 1, Weight: 50, Reachable: true}, {Addr: rlocC, Priority: 1, Weight: 50, Reachable: true}}}); err != nil {
		tb.Fatal(err)
	}
	dp, err := NewDataPlane(DataPlaneConfig{Device: newDiscardDevice(), Conns: []dataplane.Conn{newDiscardConn("192.0.2.1:4341")}, ITR: i})
	if err != nil {
		tb.Fatal(err)
	}
	l, err := dp.newEncapLoop(dp.enc, n, false)
	if err != nil {
		tb.Fatal(err)
	}
	pkts := make([][]byte, n)
	for k := range pkts {
		pkts[k] = ipv4Packet("10.1.0.1", netip.AddrFrom4([4]byte{10, 2, byte(k / 256), byte(k)}).String(), uint16(1000+k), 80, 1200)
	}
	fill := func() {
		l.batch.Reset()
		for k, p := range pkts {
			l.batch.Sizes[k] = copy(l.batch.Bufs[k][dataplane.Headroom:], p)
		}
	}
	fill()
	return l, fill
}

// Decapsulation filter modes of decapSetup.
const (
	filterOff      = "off"       // no filter (the default)
	filterOn       = "on"        // the outer source is one of 10,000 RLOCs learned from Map-Requests
	filterMapCache = "map-cache" // the outer source is known only as an RLOC of the ITR's entry for the inner source
)

// benchRemote is the remote ITR's RLOC in decapSetup's datagrams.
var benchRemote = netip.MustParseAddr("100.64.19.136") // the 5,000th of filterOn's

// decapSetup returns an ETR's Decapsulator, a data plane writing to a
// discard device, and a batch of n LISP datagrams for its EIDs from
// benchRemote. filter is filterOff, filterOn or filterMapCache.
func decapSetup(tb testing.TB, n int, filter string) (*DataPlane, *dataplane.Batch, func()) {
	clk := newFakeClock()
	cfg := testETRConfig(clk)
	cfg.DecapFilter = filter != filterOff
	e, err := NewETR(cfg, &recordingSender{})
	if err != nil {
		tb.Fatal(err)
	}
	dpc := DataPlaneConfig{Device: newDiscardDevice(), Conns: []dataplane.Conn{newDiscardConn("192.0.2.1:4341")}, ETR: e}
	switch filter {
	case filterOn:
		// 10,000 remote ITRs asked for a mapping, benchRemote among them.
		seen := make([]sighting, 0, 10000)
		for k := range 10000 {
			seen = append(seen, sighting{netip.AddrFrom4([4]byte{100, 64, byte(k >> 8), byte(k)}), clk.Now().UnixNano()})
		}
		e.filter.glean(seen, nil)
	case filterMapCache:
		i, err := NewITR(ITRConfig{MapResolvers: []netip.AddrPort{mr1}, RLOCs: []netip.Addr{rlocA}, Clock: clk.Now}, &recordingSender{})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := i.Cache().Insert(&mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), TTL: 1 << 40,
			RLOCs: []mapcache.RLOC{{Addr: rlocC, Priority: 1, Weight: 50, Reachable: true}, {Addr: benchRemote, Priority: 1, Weight: 50, Reachable: true}}}); err != nil {
			tb.Fatal(err)
		}
		dpc.ITR = i
	}
	dp, err := NewDataPlane(dpc)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := dataplane.NewBatch(n, dataplane.DefaultBufferSize)
	if err != nil {
		tb.Fatal(err)
	}
	dgrams := make([][]byte, n)
	for k := range dgrams {
		inner := ipv4Packet("10.2.0.1", netip.AddrFrom4([4]byte{10, 1, byte(k / 256), byte(k)}).String(), uint16(1000+k), 80, 1200)
		dgrams[k] = append([]byte{0x80, 0, 0, byte(k), 0, 0, 0, 0}, inner...)
	}
	fill := func() {
		b.Reset()
		for k, d := range dgrams {
			b.Sizes[k] = copy(b.Bufs[k][dataplane.ConnOffset:], d)
			b.Meta[k] = dataplane.Meta{Addr: netip.AddrPortFrom(benchRemote, 4341), TTL: 60}
		}
	}
	fill()
	return dp, b, fill
}

// TestAllocs checks the steady-state packet path allocates nothing: the
// ITR's lookup, RLOC choice and encapsulation on a map-cache hit, and the
// ETR's decapsulation and delivery.
func TestAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful under -cover or -race")
	}
	l, fill := hitSetup(t, 32)
	conn := l.p.conns[0].conn.(*discardConn)
	l.process(l.batch, 32) // warm up
	if conn.n != 32 {
		t.Fatalf("%d packets sent, want 32 (hits)", conn.n)
	}
	if a := testing.AllocsPerRun(100, func() {
		fill()
		l.process(l.batch, 32)
	}); a != 0 {
		t.Errorf("ITR encapsulation on a hit: %v allocations per batch of 32", a)
	}
	if n := counter(l.itr.Counters(), "misses"); n != 0 {
		t.Errorf("%d misses", n)
	}

	for _, filter := range []string{filterOff, filterOn, filterMapCache} {
		dp, b, fill2 := decapSetup(t, 32, filter)
		dec := dp.etr.Decapsulator()
		dev := dp.dev.(*discardDevice)
		dec.DecapBatch(b, 32)
		dp.writeDevice(b.Out)
		if dev.n != 32 {
			t.Fatalf("filter %s: %d delivered, want 32", filter, dev.n)
		}
		if a := testing.AllocsPerRun(100, func() {
			fill2()
			dec.DecapBatch(b, 32)
			dp.writeDevice(b.Out)
		}); a != 0 {
			t.Errorf("ETR decapsulation, filter %s: %v allocations per batch of 32", filter, a)
		}
	}
}
