package xtr

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

// What the ITR accepts to install from the mapping system (itr_reply.go):
// locators, EID space, default routes; and RLOC-probe recovery on idle
// entries (itr_probe.go). Issue 13, "The ITR's trust in what it installs".

// askFor makes the ITR send a Map-Request for prefix in iid (Refresh) and
// returns its nonce.
func askFor(t *testing.T, i *ITR, out *recordingSender, iid uint32, prefix string) uint64 {
	t.Helper()
	if err := i.Refresh(iid, netip.MustParsePrefix(prefix)); err != nil {
		t.Fatal(err)
	}
	i.sendFresh()
	msgs := out.take()
	if len(msgs) != 1 {
		t.Fatalf("%d datagrams for a refresh, want one Map-Request", len(msgs))
	}
	_, req := innerRequest(t, msgs[0])
	return req.Nonce
}

// cached returns the entry of exactly prefix in iid, if any.
func cached(i *ITR, iid uint32, prefix string) (*mapcache.Entry, bool) {
	return i.Cache().Get(mapcache.Key{InstanceID: iid, Prefix: netip.MustParsePrefix(prefix)})
}

func TestMapReplyRefusesUnusableLocators(t *testing.T) {
	i, out, _ := newTestITR(t, nil)
	bad := []string{
		"127.0.0.1",       // loopback
		"127.1.2.3",       // loopback
		"::1",             // loopback
		"169.254.7.7",     // link-local
		"fe80::1",         // link-local
		"255.255.255.255", // limited broadcast
		"0.0.0.0",         // unspecified
		"::",              // unspecified
		"0.1.2.3",         // "this network" (RFC 1122): never a destination
		"224.0.0.5",       // multicast
		"ff02::1",         // multicast
		rlocA.String(),    // the ITR's own RLOC
	}
	// One good locator among them: installed alone.
	nonce := askFor(t, i, out, 0, "10.2.0.0/16")
	i.HandlePacket(mapReply(t, nonce, 0, "10.2.0.0/16", 10, append(bad, rlocB.String())...), mr1, netip.Addr{})
	e, ok := cached(i, 0, "10.2.0.0/16")
	if !ok {
		t.Fatal("the record with one usable locator was not installed")
	}
	if len(e.RLOCs) != 1 || e.RLOCs[0].Addr != rlocB {
		t.Errorf("installed locators %+v, want only %s", e.RLOCs, rlocB)
	}
	if n := counter(i.Counters(), "locators_refused"); n != uint64(len(bad)) {
		t.Errorf("locators_refused = %d, want %d", n, len(bad))
	}
	// Only unusable locators: the record is refused, not made negative.
	for _, b := range bad {
		nonce := askFor(t, i, out, 0, "10.3.0.0/16")
		i.HandlePacket(mapReply(t, nonce, 0, "10.3.0.0/16", 10, b), mr1, netip.Addr{})
		if e, ok := cached(i, 0, "10.3.0.0/16"); ok {
			t.Errorf("a record with the only locator %s installed: %+v", b, e)
		}
	}
	cs := i.Counters()
	if counter(cs, "map_reply_records_ignored") != uint64(len(bad)) || counter(cs, "negative_entries") != 0 {
		t.Errorf("records ignored %d negative %d", counter(cs, "map_reply_records_ignored"), counter(cs, "negative_entries"))
	}
}

// TestMapReplyLoopbackLab: an ITR whose own RLOC is a loopback address (a
// lab on one host) takes loopback locators of other xTRs, never its own.
func TestMapReplyLoopbackLab(t *testing.T) {
	own, peer := netip.MustParseAddr("127.77.88.1"), netip.MustParseAddr("127.77.88.2")
	i, out, _ := newTestITR(t, func(c *ITRConfig) { c.RLOCs = []netip.Addr{own} })
	nonce := askFor(t, i, out, 0, "10.2.0.0/16")
	i.HandlePacket(mapReply(t, nonce, 0, "10.2.0.0/16", 10, own.String(), peer.String(), "169.254.1.1"), mr1, netip.Addr{})
	e, ok := cached(i, 0, "10.2.0.0/16")
	if !ok || len(e.RLOCs) != 1 || e.RLOCs[0].Addr != peer {
		t.Fatalf("entry %+v (%v), want only the loopback peer %s", e, ok, peer)
	}
	if n := counter(i.Counters(), "locators_refused"); n != 2 {
		t.Errorf("locators_refused = %d, want 2 (own RLOC, link-local)", n)
	}
}

func TestPubSubRefusesUnusableLocators(t *testing.T) {
	i, out, clk := newPubSubITR(t, nil)
	// A confirmation whose only locator is loopback installs nothing and
	// subscribes to nothing.
	req := subscribe(t, i, out, clk, "10.2.3.4")
	i.HandlePacket(psNotify(t, req.Nonce, psKey, psRecord("10.2.0.0/16", 60, "127.0.0.1")), psMS, netip.Addr{})
	out.take()
	if _, ok := cached(i, 0, "10.2.0.0/16"); ok {
		t.Error("a confirmation with a loopback locator was installed")
	}
	// A publication pointing a subscribed mapping at the ITR itself is not
	// installed; the cached mapping stays.
	i2, out2, clk2 := newPubSubITR(t, nil)
	nonce := confirmed(t, i2, out2, clk2)
	i2.HandlePacket(psNotify(t, nonce+1, psKey, psRecord("10.2.0.0/16", 60, rlocA.String(), "169.254.0.1")), psMS, netip.Addr{})
	out2.take()
	if e := entryOf(t, i2, "10.2.0.0/16"); len(e.RLOCs) != 1 || e.RLOCs[0].Addr != rlocB {
		t.Errorf("after a publication of unusable locators: %+v", e.RLOCs)
	}
	for _, it := range []*ITR{i, i2} {
		if n := counter(it.Counters(), "locators_refused"); n == 0 {
			t.Error("refused locators not counted")
		}
	}
	if n := counter(i2.Counters(), "locators_refused"); n != 2 {
		t.Errorf("locators_refused = %d, want 2", n)
	}
}

// TestMapReplyDefaultRouteRefused is the case: a Map-Reply with the
// right nonce for 0.0.0.0/0 would capture every destination without a more
// specific entry. Without itr.eid-space a default route with locators is
// refused; a negative one (what a Map-Resolver that knows no EID of the
// family answers) is not.
func TestMapReplyDefaultRouteRefused(t *testing.T) {
	i, out, clk := newTestITR(t, nil)
	for _, c := range []struct{ ask, pfx string }{
		{"10.2.0.0/16", "0.0.0.0/0"},
		{"2001:db8:2::/48", "::/0"},
	} {
		nonce := askFor(t, i, out, 0, c.ask)
		i.HandlePacket(mapReply(t, nonce, 0, c.pfx, 1440, rlocB.String()), mr1, netip.Addr{})
		if e, ok := cached(i, 0, c.pfx); ok {
			t.Errorf("a default route was installed: %+v", e)
		}
	}
	if n := counter(i.Counters(), "records_refused_default_route"); n != 2 {
		t.Errorf("records_refused_default_route = %d, want 2", n)
	}
	// Negative default route: installed.
	i.miss(i.settings.Load(), netip.MustParseAddr("10.9.9.9"), netip.Addr{}, nil, clk.Now())
	i.sendFresh()
	_, req := innerRequest(t, out.take()[0])
	i.HandlePacket(mapReply(t, req.Nonce, 0, "0.0.0.0/0", 15), mr1, netip.Addr{})
	if e, ok := cached(i, 0, "0.0.0.0/0"); !ok || !e.Negative() {
		t.Errorf("a negative default route was refused: %+v %v", e, ok)
	}
	// A publication of a default route (it overlaps every subscription).
	p, pout, pclk := newPubSubITR(t, nil)
	nonce := confirmed(t, p, pout, pclk)
	p.HandlePacket(psNotify(t, nonce+1, psKey, psRecord("0.0.0.0/0", 60, "192.0.2.3")), psMS, netip.Addr{})
	pout.take()
	if _, ok := cached(p, 0, "0.0.0.0/0"); ok {
		t.Error("a published default route was installed")
	}
	if n := counter(p.Counters(), "records_refused_default_route"); n != 1 {
		t.Errorf("pub/sub: records_refused_default_route = %d, want 1", n)
	}
}

func TestEIDSpace(t *testing.T) {
	space := []dataplane.EIDPrefix{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		{InstanceID: 7, Prefix: netip.MustParsePrefix("172.16.0.0/12")},
	}
	i, out, _ := newTestITR(t, func(c *ITRConfig) { c.EIDSpace = space })
	reply := func(iid uint32, ask, pfx string, locs ...string) bool {
		t.Helper()
		nonce := askFor(t, i, out, iid, ask)
		i.HandlePacket(mapReply(t, nonce, iid, pfx, 60, locs...), mr1, netip.Addr{})
		_, ok := cached(i, iid, pfx)
		return ok
	}
	b := rlocB.String()
	for _, c := range []struct {
		iid      uint32
		ask, pfx string
		locs     []string
		want     bool
	}{
		{0, "10.2.0.0/16", "10.2.0.0/16", []string{b}, true},            // inside
		{0, "10.0.0.0/8", "10.0.0.0/8", []string{b}, true},              // the whole space
		{0, "192.168.1.0/24", "192.168.0.0/16", []string{b}, false},     // outside
		{0, "10.2.0.0/16", "10.0.0.0/7", []string{b}, false},            // straddles it
		{7, "10.2.0.0/16", "10.2.0.0/16", []string{b}, false},           // another instance
		{7, "172.16.1.0/24", "172.16.0.0/16", []string{b}, true},        // inside, instance 7
		{0, "2001:db8::/48", "2001:db8::/32", []string{b}, false},       // no IPv6 space
		{0, "10.3.0.0/16", "10.3.0.0/16", nil, true},                    // negative, inside
		{0, "9.1.0.0/16", "8.0.0.0/7", nil, true},                       // negative, outside
		{0, "11.1.0.0/16", "8.0.0.0/6", nil, false},                     // negative, straddles
		{0, "2001:db8:9::/48", "::/0", nil, true},                       // negative, no IPv6 space
		{7, "192.168.0.0/16", "128.0.0.0/1", nil, false},                // negative, straddles iid 7's
		{0, "10.4.0.0/16", "0.0.0.0/0", []string{b}, false},             // default route
		{0, "10.5.0.0/16", "10.5.0.0/16", []string{"127.0.0.1"}, false}, // inside, no usable locator
	} {
		if got := reply(c.iid, c.ask, c.pfx, c.locs...); got != c.want {
			t.Errorf("iid %d %s (locators %v): installed %v, want %v", c.iid, c.pfx, c.locs, got, c.want)
		}
	}
	cs := i.Counters()
	if counter(cs, "records_refused_eid_space") != 6 || counter(cs, "records_refused_default_route") != 1 {
		t.Errorf("refused: eid_space %d default_route %d, want 6 and 1",
			counter(cs, "records_refused_eid_space"), counter(cs, "records_refused_default_route"))
	}

	// A default route in the EID space is taken.
	j, jout, _ := newTestITR(t, func(c *ITRConfig) {
		c.EIDSpace = []dataplane.EIDPrefix{{Prefix: netip.MustParsePrefix("0.0.0.0/0")}}
	})
	nonce := askFor(t, j, jout, 0, "10.2.0.0/16")
	j.HandlePacket(mapReply(t, nonce, 0, "0.0.0.0/0", 60, b), mr1, netip.Addr{})
	if _, ok := cached(j, 0, "0.0.0.0/0"); !ok {
		t.Error("a default route listed in the EID space was refused")
	}

	// Pub/sub: a confirmation outside the space neither installs nor
	// subscribes; a publication of a supernet of the space is refused.
	p, pout, pclk := newPubSubITR(t, func(c *ITRConfig) {
		c.EIDSpace = []dataplane.EIDPrefix{{Prefix: netip.MustParsePrefix("10.2.0.0/16")}}
	})
	req := subscribe(t, p, pout, pclk, "10.3.0.1")
	p.HandlePacket(psNotify(t, req.Nonce, psKey, psRecord("10.3.0.0/16", 60, b)), psMS, netip.Addr{})
	pout.take()
	if _, ok := cached(p, 0, "10.3.0.0/16"); ok || len(p.Subscriptions()) != 0 {
		t.Errorf("a confirmation outside the EID space: installed %v, subscriptions %v", ok, p.Subscriptions())
	}
	nonce = confirmed(t, p, pout, pclk)
	p.HandlePacket(psNotify(t, nonce+1, psKey, psRecord("10.0.0.0/8", 60, b)), psMS, netip.Addr{})
	pout.take()
	if _, ok := cached(p, 0, "10.0.0.0/8"); ok {
		t.Error("a publication outside the EID space was installed")
	}
	if n := counter(p.Counters(), "records_refused_eid_space"); n != 2 {
		t.Errorf("pub/sub: records_refused_eid_space = %d, want 2", n)
	}
}

func TestEIDSpaceValidated(t *testing.T) {
	for _, bad := range [][]dataplane.EIDPrefix{
		{{}},
		{{InstanceID: 1 << 24, Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
		{{Prefix: netip.MustParsePrefix("10.1.2.0/8")}},
		{{Prefix: netip.MustParsePrefix("::ffff:10.0.0.0/104")}},
		{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}, {Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
	} {
		cfg := ITRConfig{MapResolvers: []netip.AddrPort{mr1}, RLOCs: []netip.Addr{rlocA}, EIDSpace: bad}
		if err := cfg.Validate(); err == nil {
			t.Errorf("EIDSpace %v accepted", bad)
		}
	}
	i, _, _ := newTestITR(t, nil)
	if err := i.SetConfig(ITRConfig{MapResolvers: []netip.AddrPort{mr1}, RLOCs: []netip.Addr{rlocA},
		EIDSpace: []dataplane.EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}}); err != nil {
		t.Fatal(err)
	}
	if s := i.settings.Load().eidSpace; len(s) != 1 {
		t.Errorf("SetConfig did not apply the EID space: %v", s)
	}
}

// TestRLOCProbeRecoversIdleEntry: an RLOC found down keeps being probed,
// every round, while an entry holds it, even an entry no traffic uses; its
// reply brings it back at once. Before, its probe state was dropped with
// the traffic and the entry stayed down until traffic returned.
func TestRLOCProbeRecoversIdleEntry(t *testing.T) {
	i, out, clk := newTestITR(t, func(c *ITRConfig) {
		c.RLOCProbeInterval = 10 * time.Second
		c.RLOCProbeMisses = 2
	})
	e := insert(t, i.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), TTL: 24 * time.Hour, RLOCs: []mapcache.RLOC{
		{Addr: rlocB, Priority: 1, Weight: 100, Reachable: true},
		{Addr: rlocC, Priority: 2, Weight: 100, Reachable: true},
	}})
	round := func(touch bool) map[netip.Addr]*wire.MapRequest {
		t.Helper()
		if touch {
			e.Touch(clk.Now().UnixNano())
		}
		i.onTick(clk.Now())
		p := probes(t, out.take())
		clk.Advance(10 * time.Second)
		return p
	}
	// Used: B never answers and goes down after two misses; C answers.
	for range 3 {
		p := round(true)
		if p[rlocC] != nil {
			i.HandlePacket(probeReply(t, p[rlocC]), netip.AddrPortFrom(rlocC, 4342), netip.Addr{})
		}
	}
	if e.Reachable(0) || !e.Reachable(1) {
		t.Fatalf("B=%v C=%v, want B down", e.Reachable(0), e.Reachable(1))
	}
	// Idle: traffic stopped. B is still probed every round, C (up) is not.
	// (The entry counts as used for two probe periods after its last use.)
	var last *wire.MapRequest
	for r := range 5 {
		p := round(false)
		if p[rlocB] == nil {
			t.Fatalf("idle round %d: the down RLOC %s was not probed (probed %v)", r, rlocB, p)
		}
		if p[rlocC] != nil {
			if r >= 2 {
				t.Errorf("idle round %d: the reachable RLOC of an idle entry was probed", r)
			}
			i.HandlePacket(probeReply(t, p[rlocC]), netip.AddrPortFrom(rlocC, 4342), netip.Addr{})
		}
		last = p[rlocB]
	}
	// B answers: reachable again at once, without traffic.
	i.HandlePacket(probeReply(t, last), netip.AddrPortFrom(rlocB, 4342), netip.Addr{})
	if !e.Reachable(0) {
		t.Fatal("B's probe reply did not bring it back on the idle entry")
	}
	if counter(i.Counters(), "rloc_up") != 1 {
		t.Errorf("rloc_up = %d", counter(i.Counters(), "rloc_up"))
	}
	// Up and idle: no longer probed, and stays up.
	if p := round(false); len(p) != 0 {
		t.Errorf("probed %v after B came back on an idle entry", p)
	}
	if !e.Reachable(0) {
		t.Error("B down again after a round")
	}
}

// TestRLOCProbeDownForgottenWithEntries: a down RLOC stops being probed,
// and its state is forgotten, once no entry holds it.
func TestRLOCProbeDownForgottenWithEntries(t *testing.T) {
	i, out, clk := newTestITR(t, func(c *ITRConfig) {
		c.RLOCProbeInterval = 10 * time.Second
		c.RLOCProbeMisses = 1
	})
	e := insert(t, i.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), TTL: 24 * time.Hour, RLOCs: rlocs(rlocB.String())})
	e.Touch(clk.Now().UnixNano())
	i.onTick(clk.Now()) // probe B
	out.take()
	clk.Advance(10 * time.Second)
	i.onTick(clk.Now()) // B missed: down, probed again
	if e.Reachable(0) {
		t.Fatal("B not down")
	}
	if p := probes(t, out.take()); p[rlocB] == nil {
		t.Fatal("the down RLOC was not probed")
	}
	i.Cache().Delete(mapcache.Key{Prefix: e.Prefix})
	for range 2 {
		clk.Advance(10 * time.Second)
		i.onTick(clk.Now())
		if p := probes(t, out.take()); len(p) != 0 {
			t.Fatalf("probed %v with no entry holding them", p)
		}
	}
	i.probeMu.Lock()
	n := len(i.probes)
	i.probeMu.Unlock()
	if n != 0 {
		t.Errorf("%d probe states left with no entry", n)
	}
}

// FuzzITRInstallBounds feeds arbitrary datagrams to a subscribing ITR
// (unsigned Map-Notifies accepted, so that the fuzzer can reach the install
// path) with an EID space of 10.0.0.0/8, an outstanding subscribing request
// for 10.2.0.1 (nonce 5000) and a subscription to 10.3.0.0/16 (last nonce
// 1000): whatever it installs must hold no refused locator, a mapping with
// locators must lie in the EID space and a negative one must not straddle
// it.
func FuzzITRInstallBounds(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	space := netip.MustParsePrefix("10.0.0.0/8")
	for _, c := range []struct {
		nonce uint64
		rec   wire.EIDRecord
	}{
		{5000, psRecord("10.2.0.0/16", 60, "192.0.2.2", "127.0.0.1")},
		{5000, psRecord("0.0.0.0/0", 60, "192.0.2.2")},
		{5000, psRecord("10.2.0.0/16", 60, rlocA.String())},
		{1001, psRecord("10.3.0.0/16", 60, "169.254.1.1", "192.0.2.3")},
		{1001, psRecord("0.0.0.0/1", 15)},
	} {
		f.Add(psNotify(f, c.nonce, nil, c.rec))
		m := wire.MapReply{Nonce: c.nonce, Records: []wire.EIDRecord{c.rec}}
		b, err := m.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		i, _, clk := newPubSubITR(t, func(c *ITRConfig) {
			c.PubSubUnauthenticated = true
			c.EIDSpace = []dataplane.EIDPrefix{{Prefix: space}}
		})
		now := clk.Now()
		i.miss(i.settings.Load(), netip.MustParseAddr("10.2.0.1"), netip.Addr{}, nil, now)
		i.sendFresh()
		i.mu.Lock()
		for n, p := range i.byNonce {
			delete(i.byNonce, n)
			p.nonce = 5000
			i.byNonce[p.nonce] = p
		}
		s := &subscription{key: mapcache.Key{Prefix: netip.MustParsePrefix("10.3.0.0/16")}, sent: 1000, accepted: 1000, idx: -1}
		i.ps.schedule(s, now, time.Minute)
		i.ps.add(s)
		i.mu.Unlock()
		i.HandlePacket(pkt, psMS, netip.Addr{})
		st := i.settings.Load()
		for e := range i.Cache().All() {
			if e.Negative() {
				if e.InstanceID == 0 && e.Prefix.Overlaps(space) && e.Prefix.Bits() < space.Bits() {
					t.Fatalf("a negative mapping straddling the EID space: %s", e.Prefix)
				}
				continue
			}
			if e.InstanceID != 0 || !space.Overlaps(e.Prefix) || e.Prefix.Bits() < space.Bits() {
				t.Fatalf("a mapping outside the EID space: iid %d %s", e.InstanceID, e.Prefix)
			}
			for _, r := range e.RLOCs {
				if why := st.rlocRefusal(r.Addr); why != "" {
					t.Fatalf("installed the locator %s (%s)", r.Addr, why)
				}
			}
		}
	})
}
