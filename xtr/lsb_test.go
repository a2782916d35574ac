package xtr

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

func TestRecordLSB(t *testing.T) {
	loc := func(prio uint8, up bool) wire.Locator {
		return wire.Locator{Priority: prio, Reachable: up, Address: wire.AddrFrom(rlocA)}
	}
	rec := wire.EIDRecord{Locators: []wire.Locator{loc(1, true), loc(255, true), loc(1, false), loc(0, true), loc(255, false)}}
	if got := recordLSB(&rec); got != 0b01001 {
		t.Errorf("recordLSB = %b, want 1001", got)
	}
	rec.Locators = nil
	for range 40 {
		rec.Locators = append(rec.Locators, loc(1, true))
	}
	if got := recordLSB(&rec); got != 0xffffffff {
		t.Errorf("40 usable locators: %x, want the first 32", got)
	}
	if got := recordLSB(&wire.EIDRecord{}); got != 0 {
		t.Errorf("no locators: %x", got)
	}
}

// withdrawRecord publishes a copy of e's database in which locator j of record k
// is withdrawn, the way failover does.
func withdrawRecord(e *ETR, k, j int) {
	old := e.db.Load()
	db := *old
	db.records = slices.Clone(old.records)
	db.records[k].Locators = slices.Clone(old.records[k].Locators)
	db.records[k].Locators[j].Priority = 255
	db.records[k].Locators[j].Reachable = false
	db.computeLSBs()
	e.db.Store(&db)
}

func TestLocalLSB(t *testing.T) {
	e, _, _ := newTestETR(t, func(c *ETRConfig) {
		c.Database = append(c.Database, Mapping{Prefix: netip.MustParsePrefix("10.1.5.0/24"),
			RLOCs: []Locator{{Addr: rlocA, Priority: 1}, {Addr: rlocB, Priority: 1}, {Addr: rlocC, Priority: 1}}})
	})
	db := e.db.Load()
	if len(db.lsbs) != len(db.records) {
		t.Fatalf("%d lsbs for %d records", len(db.lsbs), len(db.records))
	}
	a1, a5, other := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.1.5.1"), netip.MustParseAddr("10.9.0.1")
	var c lsbCache
	check := func(what string, iid uint32, src netip.Addr, want uint32, wantOK bool) {
		t.Helper()
		if got, ok := e.localLSB(iid, src); got != want || ok != wantOK {
			t.Errorf("%s: localLSB(%d, %s) = %b %v, want %b %v", what, iid, src, got, ok, want, wantOK)
		}
		if got, ok := c.get(e, iid, src); got != want || ok != wantOK {
			t.Errorf("%s: cached (%d, %s) = %b %v, want %b %v", what, iid, src, got, ok, want, wantOK)
		}
	}
	for range 2 { // the second round goes through the memo
		check("/16", 0, a1, 0b11, true)
		check("/24 inside the /16", 0, a5, 0b111, true)
		check("/16 after the /24", 0, a1, 0b11, true)
		check("instance 7", 7, a1, 0b1, true)
		check("not ours", 0, other, 0, false)
		check("not ours in instance 7", 7, a5, 0b1, true)
	}
	// Withdrawing the /16's second locator (index 1 of its record) clears
	// its bit; the memo notices the new database.
	k := db.find(0, netip.MustParsePrefix("10.1.0.0/16"))
	withdrawRecord(e, k, 1)
	check("/16 withdrawn", 0, a1, 0b01, true)
	check("/24 unchanged", 0, a5, 0b111, true)
	if db.lsbs[k] != 0b11 {
		t.Error("computeLSBs wrote into the published database")
	}
}

// newLSBPair returns an xTR that is both ITR (instance iid) and ETR (the
// test database: 10.1.0.0/16 on rlocA and rlocB), with a map-cache entry
// for the remote site 10.2.0.0/16: 192.0.2.2 (priority 1) and 192.0.2.3
// (priority 2).
func newLSBPair(t *testing.T, iid uint32) (*ITR, *ETR, *mapcache.Entry) {
	t.Helper()
	i, _, _ := newTestITR(t, func(c *ITRConfig) { c.InstanceID = iid })
	e, _, _ := newTestETR(t, nil)
	rs := rlocs("192.0.2.2", "192.0.2.3")
	rs[1].Priority = 2
	ent := insert(t, i.Cache(), &mapcache.Entry{InstanceID: iid, Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: rs})
	return i, e, ent
}

func TestEncapSetsLSB(t *testing.T) {
	for _, tc := range []struct {
		name     string
		iid      uint32
		src      string
		l        bool
		lsb      uint32
		noETR    bool
		withdraw bool
	}{
		{name: "no I bit", src: "10.1.0.1", l: true, lsb: 0b11},
		{name: "withdrawn locator", src: "10.1.0.1", l: true, lsb: 0b01, withdraw: true},
		{name: "I bit", iid: 7, src: "10.1.0.1", l: true, lsb: 0b1},
		{name: "source not in the database", src: "10.9.0.1"},
		{name: "no ETR", src: "10.1.0.1", noETR: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i, e, _ := newLSBPair(t, tc.iid)
			if tc.withdraw {
				withdrawRecord(e, e.db.Load().find(0, netip.MustParsePrefix("10.1.0.0/16")), 1)
			}
			cfg := DataPlaneConfig{Device: newDiscardDevice(), Conns: []dataplane.Conn{newDiscardConn("192.0.2.1:4341")}, ITR: i, ETR: e}
			if tc.noETR {
				cfg.ETR = nil
			}
			dp, err := NewDataPlane(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer dp.closeAll()
			l, err := dp.newEncapLoop(dp.enc, 2, false)
			if err != nil {
				t.Fatal(err)
			}
			b := l.batch
			b.Reset()
			for k := range 2 {
				b.Sizes[k] = copy(b.Bufs[k][dataplane.Headroom:], ipv4Packet(tc.src, "10.2.0.7", uint16(k), 2, 10))
			}
			l.process(b, 2)
			if len(b.Out) != 2 {
				t.Fatalf("%d packets out", len(b.Out))
			}
			for _, pkt := range b.Out {
				h, err := wire.ParseDataHeader(pkt[dataplane.OutOffset:])
				if err != nil || h.L != tc.l || h.LSB != tc.lsb || h.I != (tc.iid != 0) || h.InstanceID != tc.iid {
					t.Errorf("header %+v %v, want L %v LSB %b", h, err, tc.l, tc.lsb)
				}
			}
		})
	}
}

func TestObserveLSB(t *testing.T) {
	i, _, ent := newLSBPair(t, 0)
	src, from := netip.MustParseAddr("10.2.0.9"), netip.MustParseAddr("192.0.2.2")
	reach := func() [2]bool { return [2]bool{ent.Reachable(0), ent.Reachable(1)} }
	down, up := func() uint64 { return counter(i.Counters(), "lsb_locators_down") }, func() uint64 { return counter(i.Counters(), "lsb_locators_up") }

	i.observeLSB(0, src, netip.MustParseAddr("192.0.2.9"), 0, 32) // spoofed
	i.observeLSB(0, netip.MustParseAddr("10.3.0.1"), from, 0, 32) // no entry
	i.observeLSB(1, src, from, 0, 32)                             // other instance
	if reach() != [2]bool{true, true} || down() != 0 {
		t.Fatalf("changed by a packet that cannot speak for the mapping: %v", reach())
	}
	i.observeLSB(0, src, netip.MustParseAddr("::ffff:192.0.2.3"), 0b10, 8) // from the other RLOC, mapped
	if reach() != [2]bool{false, true} || down() != 1 {
		t.Fatalf("after bit 0 went down: %v, %d down", reach(), down())
	}
	i.observeLSB(0, src, from, 0b10, 32)      // no change
	i.observeLSB(0, src, from, 0xfffffffe, 1) // only bit 0 counts
	if down() != 1 || up() != 0 {
		t.Fatalf("counted %d down %d up for no change", down(), up())
	}
	i.observeLSB(0, src, from, 0b01, 32) // 0 up, 1 down
	if reach() != [2]bool{true, false} || down() != 2 || up() != 1 {
		t.Fatalf("after swap: %v, %d down %d up", reach(), down(), up())
	}
	// A locator RLOC-probing found down stays down whatever the bits say.
	i.probeMu.Lock()
	i.probes[netip.MustParseAddr("192.0.2.3")] = &rlocProbe{state: probeDown}
	i.probeMu.Unlock()
	i.observeLSB(0, src, from, 0b11, 32)
	if reach() != [2]bool{true, false} || up() != 1 {
		t.Fatalf("probe-down locator raised by the bits: %v", reach())
	}
}

// TestIgnoreLSB: with IgnoreLocatorStatusBits the bits change nothing.
func TestIgnoreLSB(t *testing.T) {
	i, _, ent := newLSBPair(t, 0)
	if err := i.SetConfig(ITRConfig{MapResolvers: []netip.AddrPort{mr1}, RLOCs: []netip.Addr{rlocA}, IgnoreLocatorStatusBits: true}); err != nil {
		t.Fatal(err)
	}
	i.observeLSB(0, netip.MustParseAddr("10.2.0.9"), netip.MustParseAddr("192.0.2.2"), 0b10, 32)
	if !ent.Reachable(0) || counter(i.Counters(), "lsb_locators_down") != 0 {
		t.Fatal("Locator-Status-Bits acted on while ignored")
	}
}

// listenRemote adds a remote xTR's UDP 4341 at addr to l's network.
func listenRemote(t *testing.T, l *link, addr string) *dataplane.MemConn {
	t.Helper()
	c, err := l.net.Listen(netip.MustParseAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readConn waits for one datagram at c.
func readConn(t *testing.T, c *dataplane.MemConn) []byte {
	t.Helper()
	ch := make(chan []byte, 1)
	go func() {
		bufs := [][]byte{make([]byte, 2048)}
		sizes, meta := []int{0}, []dataplane.Meta{{}}
		if n, err := c.Read(bufs, sizes, meta, 0); err != nil || n != 1 {
			ch <- nil
			return
		}
		ch <- bufs[0][:sizes[0]]
	}()
	select {
	case b := <-ch:
		if b == nil {
			t.Fatal("remote read failed")
		}
		return b
	case <-time.After(5 * time.Second):
		c.Close()
		t.Fatal("no datagram at the remote RLOC")
	}
	return nil
}

// TestLSBReplyFailover runs an xTR (ITR and ETR) against a remote site
// with two RLOCs, 192.0.2.2 (preferred) and 192.0.2.3: packets from the
// remote site whose Locator-Status-Bits say 192.0.2.2 is down make the
// replies go to 192.0.2.3, and back when the bit returns; packets that
// cannot speak for the mapping change nothing.
func TestLSBReplyFailover(t *testing.T) {
	i, e, ent := newLSBPair(t, 0)
	l := startLink(t, i, e, false)
	r3 := listenRemote(t, l, "192.0.2.3:4341")
	spoofer := listenRemote(t, l, "192.0.2.9:4341")
	to := []dataplane.Meta{{Addr: netip.MustParseAddrPort("192.0.2.1:4341")}}
	seq := uint16(0)
	// arrive sends a packet 10.2.0.9 -> 10.1.0.5 from c with LISP header
	// flags and LSB word, and waits until the hosts have it.
	arrive := func(c *dataplane.MemConn, flags byte, lsb uint32) {
		t.Helper()
		seq++
		inner := icmpEcho("10.2.0.9", "10.1.0.5", false, 1, seq)
		dgram := append([]byte{flags, 0, 0, 1, byte(lsb >> 24), byte(lsb >> 16), byte(lsb >> 8), byte(lsb)}, inner...)
		if _, err := c.Write([][]byte{dgram}, to, 0); err != nil {
			t.Fatal(err)
		}
		if b := readDevice(t, l.host); !bytes.Equal(b, inner) {
			t.Fatalf("delivered %x", b)
		}
	}
	// reply sends the hosts' answer and returns the header it went out with
	// at the RLOC that got it.
	reply := func(at *dataplane.MemConn) wire.DataHeader {
		t.Helper()
		l.send(t, icmpEcho("10.1.0.5", "10.2.0.9", true, 1, seq))
		h, err := wire.ParseDataHeader(readConn(t, at))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// The reply carries this site's bits: 10.1.0.0/16 on rlocA and rlocB.
	arrive(l.remote, 0xc0, 0b11)
	if h := reply(l.remote); !h.L || h.LSB != 0b11 {
		t.Errorf("reply header %+v, want L and LSB 11", h)
	}

	arrive(l.remote, 0xc0, 0b10) // 192.0.2.2 says it is going down
	if ent.Reachable(0) || counter(i.Counters(), "lsb_locators_down") != 1 {
		t.Fatal("bit 0 at 0 did not mark 192.0.2.2 unreachable")
	}
	reply(r3)

	arrive(spoofer, 0xc0, 0b01) // not an RLOC of 10.2.0.0/16
	arrive(l.remote, 0x80, 0)   // L clear: no bits
	if ent.Reachable(0) || !ent.Reachable(1) {
		t.Fatal("a packet that cannot speak for the mapping changed it")
	}
	reply(r3)

	arrive(r3, 0xc0, 0b11) // back up, said by the other RLOC of the site
	if !ent.Reachable(0) || counter(i.Counters(), "lsb_locators_up") != 1 {
		t.Fatal("bit 0 back at 1 did not restore 192.0.2.2")
	}
	reply(l.remote)

	got := e.RemoteITRs(0)
	var rl []string
	for _, r := range got {
		rl = append(rl, r.RLOC.String())
		if r.EID != netip.MustParseAddr("10.2.0.9") || r.InstanceID != 0 {
			t.Errorf("remote ITR %+v", r)
		}
	}
	slices.Sort(rl)
	if !slices.Equal(rl, []string{"192.0.2.2", "192.0.2.3", "192.0.2.9"}) {
		t.Errorf("remote ITRs %v", rl)
	}
}

// lsbSetup returns an xTR data plane that is both ITR and ETR on discard
// devices, an encapsulating loop with a batch of n packets from 10.1.0.1
// (a database EID) to the remote site, a batch of n LISP packets from the
// remote site (192.0.2.2, L bit set and both locators up), and their
// fill functions.
func lsbSetup(tb testing.TB, n int) (*encapLoop, func(), *decapLoop, *dataplane.Batch, func(), *fakeClock) {
	clk := newFakeClock()
	i, err := NewITR(ITRConfig{MapResolvers: []netip.AddrPort{mr1}, RLOCs: []netip.Addr{rlocA}, Clock: clk.Now}, &recordingSender{})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := i.Cache().Insert(&mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), TTL: 1 << 40,
		RLOCs: []mapcache.RLOC{{Addr: rlocB, Priority: 1, Weight: 50, Reachable: true}, {Addr: rlocC, Priority: 1, Weight: 50, Reachable: true}}}); err != nil {
		tb.Fatal(err)
	}
	e, err := NewETR(testETRConfig(clk), &recordingSender{})
	if err != nil {
		tb.Fatal(err)
	}
	dp, err := NewDataPlane(DataPlaneConfig{Device: newDiscardDevice(), Conns: []dataplane.Conn{newDiscardConn("192.0.2.1:4341")}, ITR: i, ETR: e})
	if err != nil {
		tb.Fatal(err)
	}
	l, err := dp.newEncapLoop(dp.enc, n, false)
	if err != nil {
		tb.Fatal(err)
	}
	pkts := make([][]byte, n)
	dgrams := make([][]byte, n)
	for k := range pkts {
		pkts[k] = ipv4Packet("10.1.0.1", netip.AddrFrom4([4]byte{10, 2, byte(k / 256), byte(k)}).String(), uint16(1000+k), 80, 1200)
		inner := ipv4Packet("10.2.0.1", netip.AddrFrom4([4]byte{10, 1, byte(k / 256), byte(k)}).String(), uint16(1000+k), 80, 1200)
		dgrams[k] = append([]byte{0xc0, 0, 0, byte(k), 0, 0, 0, 0b11}, inner...)
	}
	fill := func() {
		l.batch.Reset()
		for k, p := range pkts {
			l.batch.Sizes[k] = copy(l.batch.Bufs[k][dataplane.Headroom:], p)
		}
	}
	fill()
	b, err := dataplane.NewBatch(n, dataplane.DefaultBufferSize)
	if err != nil {
		tb.Fatal(err)
	}
	fill2 := func() {
		b.Reset()
		for k, d := range dgrams {
			b.Sizes[k] = copy(b.Bufs[k][dataplane.ConnOffset:], d)
			b.Meta[k] = dataplane.Meta{Addr: netip.AddrPortFrom(rlocB, 4341), TTL: 60}
		}
	}
	fill2()
	return l, fill, dp.newDecapLoop(), b, fill2, clk
}

// TestLSBAllocs checks that the Locator-Status-Bits and the remote-ITR
// table keep both packet paths allocation-free.
func TestLSBAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful under -cover or -race")
	}
	l, fill, d, b, fill2, clk := lsbSetup(t, 32)
	conn := l.p.conns[0].conn.(*discardConn)
	l.process(l.batch, 32)
	if conn.n != 32 {
		t.Fatalf("%d packets sent, want 32", conn.n)
	}
	if h, _ := wire.ParseDataHeader(l.batch.Out[0][dataplane.OutOffset:]); !h.L || h.LSB != 0b11 {
		t.Fatalf("header %+v", h)
	}
	if a := testing.AllocsPerRun(100, func() {
		fill()
		l.process(l.batch, 32)
	}); a != 0 {
		t.Errorf("ITR encapsulation with LSBs: %v allocations per batch of 32", a)
	}
	dev := d.p.dev.(*discardDevice)
	d.process(b, 32)
	if dev.n != 32 || len(d.etr.RemoteITRs(0)) != 1 {
		t.Fatalf("%d delivered, remote ITRs %v", dev.n, d.etr.RemoteITRs(0))
	}
	if a := testing.AllocsPerRun(100, func() {
		clk.Advance(2 * remoteStampInterval) // every batch stamps
		fill2()
		d.process(b, 32)
	}); a != 0 {
		t.Errorf("ETR decapsulation with LSBs and remote ITRs: %v allocations per batch of 32", a)
	}
	if r := d.etr.RemoteITRs(0); len(r) != 1 || !r[0].LastSeen.Equal(clk.Now()) {
		t.Errorf("remote ITRs %+v", r)
	}
	if counter(l.itr.Counters(), "lsb_locators_down") != 0 {
		t.Error("locators marked down")
	}
}

// BenchmarkITREncapLSB is BenchmarkITREncap on an xTR that is also an ETR:
// every packet carries the Locator-Status-Bits of its source's mapping.
func BenchmarkITREncapLSB(b *testing.B) {
	const n = 64
	l, fill, _, _, _, _ := lsbSetup(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		fill()
		l.process(l.batch, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkETRDecapLSB is BenchmarkETRDecap on an xTR that is also an ITR,
// with the L bit set on every packet (bits agreeing with the map-cache)
// and the remote-ITR table fed.
func BenchmarkETRDecapLSB(b *testing.B) {
	const n = 64
	_, _, d, batch, fill, _ := lsbSetup(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		fill()
		d.process(batch, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
	b.ReportMetric(0, "ns/op")
}
