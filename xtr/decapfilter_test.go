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

// sendFrom sends a LISP datagram with header hdr and inner packet inner
// from conn c to the xTR of l (192.0.2.1:4341).
func (l *link) sendFrom(t *testing.T, c *dataplane.MemConn, hdr []byte, inner []byte) {
	t.Helper()
	to := []dataplane.Meta{{Addr: netip.MustParseAddrPort("192.0.2.1:4341")}}
	if _, err := c.Write([][]byte{append(slices.Clone(hdr), inner...)}, to, 0); err != nil {
		t.Fatal(err)
	}
}

// listen opens another RLOC on the link's network.
func (l *link) listen(t *testing.T, addr string) *dataplane.MemConn {
	t.Helper()
	c, err := l.net.Listen(netip.MustParseAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectDelivered reads the next packet the xTR delivered to the hosts and
// checks it is want: a packet that should have been dropped shows up here
// in its place.
func (l *link) expectDelivered(t *testing.T, want []byte, what string) {
	t.Helper()
	if got := readDevice(t, l.host); !bytes.Equal(got, want) {
		t.Fatalf("delivered %x, want %s (%x)", got, what, want)
	}
}

var plainHeader = []byte{0x80, 0, 0, 1, 0, 0, 0, 0} // N, nonce 1

// TestETRDecapFilterDropsUnknownRLOCs is issue 13's "the ETR decapsulates
// from any source RLOC": with etr.decap-filter on, a host outside every
// mapping cannot inject packets into the site, while the RLOCs the ETR
// knows still can: the database's, an ITR whose Map-Request it answered,
// and a configured prefix.
func TestETRDecapFilterDropsUnknownRLOCs(t *testing.T) {
	e, out, _ := newTestETR(t, func(c *ETRConfig) { c.DecapFilter = true })
	l := startLink(t, nil, e, false)
	attacker := l.listen(t, "203.0.113.66:4341")
	remoteITR := l.listen(t, "198.51.100.7:4341")

	// 600 packets from a host that is in no mapping: none delivered. The
	// database's RLOCs (another xTR of the site: rlocB) are known.
	injected := icmpEcho("10.2.0.9", "10.1.0.5", false, 1, 1)
	fromSite := icmpEcho("10.2.0.9", "10.1.0.5", false, 1, 2)
	for k := range 600 {
		l.sendFrom(t, attacker, plainHeader, injected)
		if k == 29 { // within the in-memory link's queue
			l.sendFrom(t, l.remote, plainHeader, fromSite)
			l.expectDelivered(t, fromSite, "the packet from a database RLOC, not an injected one")
		}
		if k%30 == 29 {
			waitFor(t, "unknown-RLOC drops", func() bool { return counter(l.dp.Counters(), "decap_drop_unknown_rloc") == uint64(k+1) })
		}
	}

	// A remote ITR is unknown until it asks for one of the site's
	// mappings; the ETR's answer makes it known (all its ITR-RLOCs).
	early := icmpEcho("10.2.0.9", "10.1.0.5", false, 1, 3)
	l.sendFrom(t, remoteITR, plainHeader, early)
	waitFor(t, "the early packet dropped", func() bool { return counter(l.dp.Counters(), "decap_drop_unknown_rloc") == 601 })
	e.HandlePacket(ecmRequest(t, "10.1.0.5", netip.MustParseAddrPort("198.51.100.7:50000"), 7, false), msAddr, netip.MustParseAddr("192.0.2.1"))
	if msgs := out.take(); len(msgs) != 1 {
		t.Fatalf("%d datagrams sent, want the Map-Reply", len(msgs))
	}
	if counter(e.Counters(), "decap_filter_learned") != 2 { // 198.51.100.7 and 2001:db8::9
		t.Errorf("decap_filter_learned %d, want 2", counter(e.Counters(), "decap_filter_learned"))
	}
	later := icmpEcho("10.2.0.9", "10.1.0.5", false, 1, 4)
	l.sendFrom(t, remoteITR, plainHeader, later)
	l.expectDelivered(t, later, "the packet from the ITR the ETR answered")

	// A configured prefix (a PITR's) is accepted after a reload; the
	// attacker still is not.
	cfg := testETRConfig(newFakeClock())
	cfg.Clock = nil
	cfg.DecapFilter = true
	cfg.DecapFilterAllow = []netip.Prefix{netip.MustParsePrefix("203.0.113.64/28")}
	if err := e.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	pitr := l.listen(t, "203.0.113.70:4341")
	fromPITR := icmpEcho("192.168.7.7", "10.1.0.5", false, 1, 5)
	l.sendFrom(t, pitr, plainHeader, fromPITR)
	l.expectDelivered(t, fromPITR, "the packet from an allowed prefix")
	cfg.DecapFilterAllow = nil
	if err := e.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	l.sendFrom(t, pitr, plainHeader, fromPITR)
	waitFor(t, "the PITR dropped once its prefix is gone", func() bool { return counter(l.dp.Counters(), "decap_drop_unknown_rloc") == 602 })
	// Turned off by a reload, the filter accepts every source again.
	cfg.DecapFilter = false
	if err := e.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	l.sendFrom(t, attacker, plainHeader, injected)
	l.expectDelivered(t, injected, "the packet, with the filter off")
	if counter(l.dp.Counters(), "decap_packets") != 4 {
		t.Errorf("decap_packets %d, want 4", counter(l.dp.Counters(), "decap_packets"))
	}
}

// TestETRDropsOwnEIDSource is issue 13's "delivers inner packets whose
// source is one of the site's own EIDs": such a packet cannot come from
// the RLOC network, filter or no filter.
func TestETRDropsOwnEIDSource(t *testing.T) {
	e, _, _ := newTestETR(t, nil)
	l := startLink(t, nil, e, false)
	spoofed := icmpEcho("10.1.0.9", "10.1.0.5", false, 1, 1) // from the site's 10.1.0.0/16
	l.sendFrom(t, l.remote, plainHeader, spoofed)
	// In instance 7 the site has 10.1.0.0/16 too.
	l.sendFrom(t, l.remote, []byte{0x88, 0, 0, 2, 0, 0, 7, 0}, spoofed)
	genuine := icmpEcho("10.2.0.9", "10.1.0.5", false, 1, 2)
	l.sendFrom(t, l.remote, plainHeader, genuine)
	l.expectDelivered(t, genuine, "the packet from a remote EID")
	waitFor(t, "own-EID-source drops", func() bool { return counter(l.dp.Counters(), "decap_drop_own_eid_source") == 2 })
	if counter(l.dp.Counters(), "decap_packets") != 1 {
		t.Errorf("decap_packets %d, want 1", counter(l.dp.Counters(), "decap_packets"))
	}
}

// TestETRDropsLISPCrypto is issue 13's "delivers packets with the KK bits
// set as if they were plain text": lispd implements no LISP-crypto (RFC
// 8061), so their payload is ciphertext it cannot read.
func TestETRDropsLISPCrypto(t *testing.T) {
	e, _, _ := newTestETR(t, nil)
	l := startLink(t, nil, e, false)
	// A payload that happens to parse as a packet for the site.
	looksPlain := icmpEcho("10.2.0.9", "10.1.0.5", false, 1, 1)
	for _, kk := range []byte{0x01, 0x02, 0x03} {
		l.sendFrom(t, l.remote, []byte{0x80 | kk, 0, 0, kk, 0, 0, 0, 0}, looksPlain)
	}
	plain := icmpEcho("10.2.0.9", "10.1.0.5", false, 1, 2)
	l.sendFrom(t, l.remote, []byte{0x84, 0, 0, 9, 0, 0, 0, 0}, plain) // the R bit alone is just reserved
	l.expectDelivered(t, plain, "the plain-text packet")
	waitFor(t, "LISP-crypto drops", func() bool { return counter(l.dp.Counters(), "decap_drop_lisp_crypto") == 3 })
	if counter(l.dp.Counters(), "decap_packets") != 1 {
		t.Errorf("decap_packets %d, want 1", counter(l.dp.Counters(), "decap_packets"))
	}
}

// TestDecapFilterMapCache checks the filter of an xTR that is also an
// ITR: an RLOC of the map-cache entry for the inner source is accepted
// (the remote site the ITR resolved), for that site's EIDs only.
func TestDecapFilterMapCache(t *testing.T) {
	i, _, _ := newTestITR(t, nil)
	e, _, _ := newTestETR(t, func(c *ETRConfig) { c.DecapFilter = true })
	l := startLink(t, i, e, false)
	remote := l.listen(t, "198.51.100.7:4341")
	before := icmpEcho("10.2.0.9", "10.1.0.5", false, 1, 1)
	l.sendFrom(t, remote, plainHeader, before)
	waitFor(t, "the unresolved RLOC dropped", func() bool { return counter(l.dp.Counters(), "decap_drop_unknown_rloc") == 1 })
	insert(t, i.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: rlocs("198.51.100.7", "198.51.100.8")})
	other := icmpEcho("10.3.0.9", "10.1.0.5", false, 1, 2) // a source the RLOC does not serve
	l.sendFrom(t, remote, plainHeader, other)
	after := icmpEcho("10.2.0.9", "10.1.0.5", false, 1, 3)
	l.sendFrom(t, remote, plainHeader, after)
	l.expectDelivered(t, after, "the packet from the mapping's RLOC")
	if n := counter(l.dp.Counters(), "decap_drop_unknown_rloc"); n != 2 {
		t.Errorf("decap_drop_unknown_rloc %d, want 2", n)
	}
}

// TestDecapFilterLearnsFromMapServer checks that, following the
// Map-Server, the ETR knows the locators of its prefixes' merged
// registration (another xTR of the site that this one's database does
// not list), and forgets them when the prefix leaves the database.
func TestDecapFilterLearnsFromMapServer(t *testing.T) {
	e, _, _ := newTestETR(t, func(c *ETRConfig) { c.DecapFilter = true; c.FollowMapServer = true })
	other := netip.MustParseAddr("192.0.2.77")
	foreign := netip.MustParseAddr("192.0.2.88")
	rec := wire.NewEIDRecord(0, netip.MustParsePrefix("10.1.0.0/16"))
	notForUs := wire.NewEIDRecord(0, netip.MustParsePrefix("10.9.0.0/16"))
	for _, a := range []netip.Addr{rlocA, rlocB, other} {
		rec.Locators = append(rec.Locators, wire.Locator{Priority: 1, Weight: 100, Reachable: true, Address: wire.AddrFrom(a)})
	}
	notForUs.Locators = []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.AddrFrom(foreign)}}
	n := wire.MapNotify{Nonce: 0xabcdef, AlgorithmID: wire.AlgHMACSHA256128, Records: []wire.EIDRecord{rec, notForUs}}
	b, _ := n.AppendBinary(nil)
	if err := wire.Sign(b, msKey); err != nil {
		t.Fatal(err)
	}
	f := e.Decapsulator().RLOCFilter()
	if f.Contains(other) {
		t.Fatal("known before the Map-Server said so")
	}
	e.HandlePacket(b, msAddr, netip.Addr{})
	f = e.Decapsulator().RLOCFilter()
	if !f.Contains(other) || f.Contains(foreign) || !f.Contains(rlocA) {
		t.Fatalf("filter %v", f.Prefixes())
	}
	cfg := testETRConfig(newFakeClock())
	cfg.DecapFilter, cfg.FollowMapServer = true, true
	cfg.Database = []Mapping{{Prefix: netip.MustParsePrefix("10.5.0.0/16"), RLOCs: []Locator{{Addr: rlocA, Priority: 1, Weight: 100}}}}
	if err := e.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if f := e.Decapsulator().RLOCFilter(); f.Contains(other) || f.Contains(rlocB) || !f.Contains(rlocA) {
		t.Errorf("after the database changed: %v", f.Prefixes())
	}
}

// TestDecapFilterGleanedBoundAndExpiry checks the RLOCs learned from
// Map-Requests and from the synchronization set: bounded (the ones seen
// longest ago go first, an RLOC that delivers packets counting as seen),
// and forgotten a Record TTL after they were last seen.
func TestDecapFilterGleanedBoundAndExpiry(t *testing.T) {
	e, _, clk := newTestETR(t, func(c *ETRConfig) {
		c.DecapFilter = true
		c.MaxGleanedRLOCs = 8
		c.RecordTTL = time.Hour
	})
	addr := func(k int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(k)}) }
	known := func(k int) bool { return e.Decapsulator().RLOCFilter().Contains(addr(k)) }
	// Eight remote ITRs ask, a minute apart; the first keeps sending
	// packets.
	for k := range 8 {
		req := wire.MapRequest{Nonce: uint64(k), ITRRLOCs: []wire.Address{wire.AddrFrom(addr(k))},
			Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix("10.1.0.0/16"))}}
		b, _ := req.AppendBinary(nil)
		e.HandlePacket(b, netip.AddrPortFrom(addr(k), 4342), netip.Addr{})
		clk.Advance(time.Minute)
	}
	var seen remoteSeen
	seen.see(e, 0, addr(0), netip.MustParseAddr("10.2.0.9"), clk.Now().UnixNano())
	// A ninth evicts the eighth of them seen longest ago: the second.
	e.MergeRemoteITRs([]RemoteITR{{RLOC: addr(8), EID: netip.MustParseAddr("10.2.0.8"), LastSeen: clk.Now()}})
	if !known(0) || known(1) || !known(2) || !known(8) {
		t.Fatalf("after the bound: %v", e.Decapsulator().RLOCFilter().Prefixes())
	}
	if counter(e.Counters(), "decap_filter_learned") != 9 || counter(e.Counters(), "decap_filter_evicted") != 1 {
		t.Errorf("learned %d evicted %d", counter(e.Counters(), "decap_filter_learned"), counter(e.Counters(), "decap_filter_evicted"))
	}
	// A Record TTL later, only those seen since are left: the one still
	// sending, and the one the sync set reported last.
	clk.Advance(time.Hour - 30*time.Second)
	seen.see(e, 0, addr(0), netip.MustParseAddr("10.2.0.9"), clk.Now().UnixNano())
	e.onTick(clk.Now())
	for k := range 9 {
		if want := k == 0 || k == 8; known(k) != want {
			t.Errorf("%s known %v, want %v", addr(k), known(k), want)
		}
	}
	// The database's RLOCs are never forgotten.
	if !e.Decapsulator().RLOCFilter().Contains(rlocB) {
		t.Error("database RLOC forgotten")
	}
}

// TestDecapFilterConfig checks the filter's settings: off by default (the
// Decapsulator has no filter), refused prefixes, and the set kept up to
// date while off so that turning it on starts from what was learned.
func TestDecapFilterConfig(t *testing.T) {
	e, _, _ := newTestETR(t, nil)
	if e.Decapsulator().RLOCFilter() != nil {
		t.Fatal("filter on by default")
	}
	req := wire.MapRequest{Nonce: 1, ITRRLOCs: []wire.Address{wire.AddrFrom(netip.MustParseAddr("198.51.100.7")), wire.AddrFrom(netip.MustParseAddr("224.0.0.1"))},
		Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix("10.1.0.0/16"))}}
	b, _ := req.AppendBinary(nil)
	e.HandlePacket(b, netip.MustParseAddrPort("198.51.100.7:4342"), netip.Addr{})
	cfg := testETRConfig(newFakeClock())
	cfg.DecapFilter = true
	cfg.DecapFilterAllow = []netip.Prefix{netip.MustParsePrefix("203.0.113.77/24"), netip.MustParsePrefix("2001:db8:f::/48")}
	if err := e.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	f := e.Decapsulator().RLOCFilter()
	for a, want := range map[string]bool{
		"198.51.100.7": true, "224.0.0.1": false, "203.0.113.1": true, "2001:db8:f::1": true,
		"192.0.2.1": true, "192.0.2.2": true, "192.0.2.3": false,
	} {
		if f.Contains(netip.MustParseAddr(a)) != want {
			t.Errorf("%s known %v, want %v", a, !want, want)
		}
	}
	for _, bad := range []netip.Prefix{{}, netip.MustParsePrefix("::ffff:192.0.2.0/120")} {
		cfg.DecapFilterAllow = []netip.Prefix{bad}
		if err := cfg.Validate(); err == nil {
			t.Errorf("allow %v accepted", bad)
		}
	}
}
