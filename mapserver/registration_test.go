package mapserver

import (
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// answerRLOCs asks the server for eid (a host address of site a or b) and
// returns the RLOCs of its proxy Map-Reply, sorted; none for a negative
// one.
func answerRLOCs(t *testing.T, s *Server, out *capSender, eid string) []string {
	t.Helper()
	out.take()
	s.HandlePacket(buildRequest(t, itr, 0, eid+"/32", 0x77, nil), ap("198.18.0.1:4342"), netip.MustParseAddr("198.18.0.2"))
	rep := parseAs[*wire.MapReply](t, onlyOne(t, out).b)
	var got []string
	for _, l := range rep.Records[0].Locators {
		got = append(got, l.Address.String())
	}
	slices.Sort(got)
	return got
}

// oorRegister is a Map-Register of site a's 10.1.1.0/24 as OOR sends it: no
// xTR-ID, proxy reply, the ETR's address as its one RLOC.
func oorRegister(t *testing.T, nonce uint64, rloc string, mod func(*regOpts)) []byte {
	t.Helper()
	o := regOpts{key: keyA, alg: wire.AlgHMACSHA196, nonce: nonce, proxy: true, wantNotify: true,
		records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 1440, loc(rloc))}}
	if mod != nil {
		mod(&o)
	}
	return buildRegister(t, o)
}

// TestRenumberedETR: an ETR without an xTR-ID registers from 10.99.0.12,
// then, renumbered, from 10.99.0.22. Under the default policy the new
// registration replaces the old at once (before: both were kept and the
// union served until the old one expired); merge keeps both; replace also
// replaces registrations with an xTR-ID; auto merges those, and merges a
// register that asks for it with the a bit.
func TestRenumberedETR(t *testing.T) {
	const oldAddr, newAddr = "10.99.0.12", "10.99.0.22"
	renumber := func(t *testing.T, policy RegistrationPolicy, mod func(*regOpts)) (*Server, *capSender) {
		t.Helper()
		s, out, _ := newTestServer(t, func(c *Config) { c.Sites[0].Policy = policy })
		s.HandlePacket(oorRegister(t, 1, oldAddr, mod), ap(oldAddr+":4342"), netip.Addr{})
		s.HandlePacket(oorRegister(t, 2, newAddr, mod), ap(newAddr+":4342"), netip.Addr{})
		if st := s.Stats(); st.RegisterOK != 2 {
			t.Fatalf("registers refused: %+v", st)
		}
		return s, out
	}
	t.Run("auto replaces", func(t *testing.T) {
		s, out := renumber(t, PolicyAuto, nil)
		if got := answerRLOCs(t, s, out, "10.1.1.1"); !slices.Equal(got, []string{newAddr}) {
			t.Fatalf("proxy reply RLOCs %v, want only the new address", got)
		}
		if regs := s.Registrations(); len(regs) != 1 || regs[0].RegisteredBy != ap(newAddr+":4342") {
			t.Fatalf("registrations %+v", regs)
		}
		if st := s.Stats(); st.RegistrationsReplaced != 1 || st.SiteRegistrations["a"] != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("merge keeps both", func(t *testing.T) {
		s, out := renumber(t, PolicyMerge, nil)
		if got := answerRLOCs(t, s, out, "10.1.1.1"); len(got) != 2 {
			t.Fatalf("proxy reply RLOCs %v, want the union", got)
		}
	})
	t.Run("auto honours the a bit", func(t *testing.T) {
		s, out := renumber(t, PolicyAuto, func(o *regOpts) { o.merge = true })
		if got := answerRLOCs(t, s, out, "10.1.1.1"); len(got) != 2 {
			t.Fatalf("proxy reply RLOCs %v, want the union", got)
		}
	})
	xid := func(n byte) func(*regOpts) {
		return func(o *regOpts) { o.xtrID, o.siteID = &wire.XTRID{0xee, n}, 1 }
	}
	t.Run("auto merges xTR-IDs", func(t *testing.T) {
		s, out, _ := newTestServer(t, nil)
		s.HandlePacket(oorRegister(t, 1, oldAddr, xid(1)), ap(oldAddr+":4342"), netip.Addr{})
		s.HandlePacket(oorRegister(t, 2, newAddr, xid(2)), ap(newAddr+":4342"), netip.Addr{})
		if got := answerRLOCs(t, s, out, "10.1.1.1"); len(got) != 2 {
			t.Fatalf("proxy reply RLOCs %v, want the union of the two xTRs", got)
		}
	})
	t.Run("replace replaces xTR-IDs", func(t *testing.T) {
		s, out, _ := newTestServer(t, func(c *Config) { c.Sites[0].Policy = PolicyReplace })
		s.HandlePacket(oorRegister(t, 1, oldAddr, xid(1)), ap(oldAddr+":4342"), netip.Addr{})
		s.HandlePacket(oorRegister(t, 2, newAddr, xid(2)), ap(newAddr+":4342"), netip.Addr{})
		if got := answerRLOCs(t, s, out, "10.1.1.1"); !slices.Equal(got, []string{newAddr}) {
			t.Fatalf("proxy reply RLOCs %v, want only the latest xTR's", got)
		}
	})
}

// TestRenumberedETRPublished: the replacement reaches a pub/sub subscriber
// like any change: the new mapping without the old RLOC.
func TestRenumberedETRPublished(t *testing.T) {
	s, out, _ := newPubSubServer(t, nil)
	s.HandlePacket(oorRegister(t, 1, "10.99.0.12", nil), ap("10.99.0.12:4342"), netip.Addr{})
	s.HandlePacket(subscribeReq(t, itr, "10.1.1.1/32", 100, subXTR1), ap("198.18.0.1:4342"), netip.MustParseAddr("198.18.0.2"))
	_, conf := notifyTo(t, out, itr)
	s.HandlePacket(ackFor(t, conf, pubsubKey), itr, netip.Addr{})
	s.HandlePacket(oorRegister(t, 2, "10.99.0.22", nil), ap("10.99.0.22:4342"), netip.Addr{})
	n, _ := notifyTo(t, out, itr)
	_, r := onlyRecord(t, n)
	if len(r.Locators) != 1 || r.Locators[0].Address.String() != "10.99.0.22" {
		t.Fatalf("published locators %+v, want only the new address", r.Locators)
	}
}

// TestUnackedNotifiesStop: an xTR that leaves its unsolicited Map-Notifies
// unacknowledged (a dead ETR whose registration is still there) gets
// maxUnackedNotifies of them, then none until it registers again.
func TestUnackedNotifiesStop(t *testing.T) {
	s, out, clk := newTestServer(t, nil)
	twoXTRs(t, s, out)
	giveUp := func() {
		for range DefaultNotifyRetries + 1 {
			clk.Advance(DefaultNotifyInterval)
			s.runTimers(clk.Now())
		}
		out.take()
	}
	giveUp()
	for i := range 6 {
		// xTR 2 changes its RLOC: xTR 1 is told, until it is not.
		s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, xtrID: &xtr2, siteID: 11, nonce: uint64(10 + i),
			records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 1440, loc("192.0.2.2"), loc(netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}).String()))}}),
			xtr2Addr, netip.Addr{})
		toXTR1 := 0
		for _, p := range out.take() {
			if p.to == xtr1Addr {
				toXTR1++
			}
		}
		if want := min(1, max(0, maxUnackedNotifies-1-i)); toXTR1 != want {
			t.Fatalf("change %d: %d Map-Notifies to xTR 1, want %d", i+1, toXTR1, want)
		}
		giveUp()
	}
	st := s.Stats()
	if st.MapNotifyGivenUp != maxUnackedNotifies || st.MapNotifySuppressed != 6-(maxUnackedNotifies-1) {
		t.Fatalf("given up %d, suppressed %d", st.MapNotifyGivenUp, st.MapNotifySuppressed)
	}
	// xTR 1 registers again: it is told of the next change.
	s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, xtrID: &xtr1, siteID: 11, nonce: 99,
		records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 1440, loc("192.0.2.1"))}}), xtr1Addr, netip.Addr{})
	out.take()
	s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, xtrID: &xtr2, siteID: 11, nonce: 100,
		records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 1440, loc("192.0.2.2"))}}), xtr2Addr, netip.Addr{})
	if p := out.take(); len(p) != 1 || p[0].to != xtr1Addr {
		t.Fatalf("after xTR 1 registered again: %d datagrams", len(p))
	}
}

// TestReplayedRegister: a byte-identical copy of a superseded Map-Register
// is refused and counted (before, it put the old RLOC back), while an
// identical retransmission of the latest one is accepted and acknowledged.
func TestReplayedRegister(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	from := ap("10.99.0.12:4342")
	r1a := oorRegister(t, 0x1001, "192.0.2.1", nil)
	r1b := oorRegister(t, 0x1002, "192.0.2.1", nil) // a refresh of the same
	r2 := oorRegister(t, 0x2002, "192.0.2.2", nil)  // the ETR moved its RLOC
	for _, p := range [][]byte{r1a, r1b, r2} {
		s.HandlePacket(p, from, netip.Addr{})
	}
	out.take()
	for name, p := range map[string][]byte{"last before the change": r1b, "an older refresh": r1a} {
		s.HandlePacket(p, from, netip.Addr{})
		if n := len(out.take()); n != 0 {
			t.Errorf("%s: the replay got %d datagrams", name, n)
		}
		if got := answerRLOCs(t, s, out, "10.1.1.1"); !slices.Equal(got, []string{"192.0.2.2"}) {
			t.Fatalf("%s: the replay changed the mapping to %v", name, got)
		}
	}
	// From another address too (an xTR without an xTR-ID is known by it).
	s.HandlePacket(r1b, ap("203.0.113.66:4342"), netip.Addr{})
	s.HandlePacket(r2, ap("203.0.113.66:4342"), netip.Addr{})
	if got := answerRLOCs(t, s, out, "10.1.1.1"); !slices.Equal(got, []string{"192.0.2.2"}) {
		t.Fatalf("a replay from another address changed the mapping to %v", got)
	}
	if regs := s.Registrations(); len(regs) != 1 || regs[0].RegisteredBy != from {
		t.Fatalf("registrations %+v", regs)
	}
	if st := s.Stats(); st.RegisterReplays != 4 || st.RegisterOK != 3 {
		t.Fatalf("replays %d, ok %d", st.RegisterReplays, st.RegisterOK)
	}
	// The latest again (its Map-Notify was lost): acknowledged.
	s.HandlePacket(r2, from, netip.Addr{})
	if p := onlyOne(t, out); parseAs[*wire.MapNotify](t, p.b).Nonce != 0x2002 {
		t.Fatal("the retransmission was not acknowledged")
	}
	if st := s.Stats(); st.RegisterReplays != 4 || st.RegisterOK != 4 {
		t.Fatalf("retransmission: replays %d, ok %d", st.RegisterReplays, st.RegisterOK)
	}
}

// TestReplayedWithdrawal: a copy of a withdrawal (Record TTL 0) does not
// withdraw the registration that followed it; retransmitted before that, it
// is acknowledged.
func TestReplayedWithdrawal(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	from := ap("10.99.0.12:4342")
	withdraw := buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, nonce: 0x2000, wantNotify: true,
		records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 0)}})
	s.HandlePacket(oorRegister(t, 0x1000, "192.0.2.1", nil), from, netip.Addr{})
	s.HandlePacket(withdraw, from, netip.Addr{})
	s.HandlePacket(withdraw, from, netip.Addr{}) // retransmitted
	if st := s.Stats(); st.RegisterOK != 3 || st.Deregistered != 1 || st.RegisterReplays != 0 {
		t.Fatalf("stats %+v", st)
	}
	s.HandlePacket(oorRegister(t, 0x3000, "192.0.2.1", nil), from, netip.Addr{})
	s.HandlePacket(withdraw, from, netip.Addr{})
	if st := s.Stats(); st.Deregistered != 1 || st.RegisterReplays != 1 || st.SiteRegistrations["a"] != 1 {
		t.Fatalf("the copy of the withdrawal: %+v", st)
	}
	_ = out
}

// TestReplayNonceZero: registers with nonce 0 (no Map-Notify wanted) can be
// byte-identical legitimately, so they are never taken for replays.
func TestReplayNonceZero(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	from := ap("10.99.0.12:4342")
	a := oorRegister(t, 0, "192.0.2.1", func(o *regOpts) { o.wantNotify = false })
	b := oorRegister(t, 0, "192.0.2.2", func(o *regOpts) { o.wantNotify = false })
	for _, p := range [][]byte{a, b, a} {
		s.HandlePacket(p, from, netip.Addr{})
	}
	if got := answerRLOCs(t, s, out, "10.1.1.1"); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Fatalf("mapping %v", got)
	}
	if st := s.Stats(); st.RegisterReplays != 0 {
		t.Fatalf("replays %d", st.RegisterReplays)
	}
}

// TestReplayTimeNonces: nonces that count time (lispd's ETRs) order the
// registers of an xTR, so a register older than the last one accepted is
// refused even when no memory of it is left.
func TestReplayTimeNonces(t *testing.T) {
	s, out, clk := newTestServer(t, nil)
	x := &wire.XTRID{0x11}
	t0 := uint64(clk.Now().UnixNano())
	from := ap("10.99.0.12:4342")
	reg := func(nonce uint64, rloc string) []byte {
		return oorRegister(t, nonce, rloc, func(o *regOpts) { o.xtrID = x })
	}
	s.HandlePacket(reg(t0+uint64(time.Minute), "192.0.2.2"), from, netip.Addr{})
	// Never seen before, but older than the register in force.
	s.HandlePacket(reg(t0, "192.0.2.1"), from, netip.Addr{})
	if got := answerRLOCs(t, s, out, "10.1.1.1"); !slices.Equal(got, []string{"192.0.2.2"}) {
		t.Fatalf("an older register changed the mapping to %v", got)
	}
	// After the registration went (withdrawn), the xTR-ID's newest nonce
	// still refuses it.
	s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, nonce: t0 + uint64(2*time.Minute), xtrID: x,
		records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 0)}}), from, netip.Addr{})
	s.HandlePacket(reg(t0+uint64(30*time.Second), "192.0.2.1"), from, netip.Addr{})
	if st := s.Stats(); st.RegisterReplays != 2 || st.SiteRegistrations["a"] != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The registers of one round, reordered: accepted.
	s.HandlePacket(reg(t0+uint64(3*time.Minute)+1, "192.0.2.3"), from, netip.Addr{})
	s.HandlePacket(oorRegister(t, t0+uint64(3*time.Minute), "192.0.2.9", func(o *regOpts) {
		o.xtrID = x
		o.records = []wire.EIDRecord{rec(0, "10.1.2.0/24", 1440, loc("192.0.2.9"))}
	}), from, netip.Addr{})
	if st := s.Stats(); st.RegisterReplays != 2 || st.SiteRegistrations["a"] != 2 {
		t.Fatalf("reordered round: %+v", st)
	}
}

// TestRegistrationLimits: 50,000 /32s from one site are accepted up to the
// site's max-prefixes and refused beyond (counted), and the heap grows by
// what the accepted ones cost, not by all of them.
func TestRegistrationLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("registers 50,000 prefixes")
	}
	sites := []Site{{Name: "big", Key: keyA, Algorithm: wire.AlgHMACSHA256128, AllowProxyReply: true,
		Prefixes: []SitePrefix{{EIDPrefix: eid(0, "10.0.0.0/8"), AcceptMoreSpecifics: true}}}}
	s, err := New(Config{MapServer: true, Sites: sites, Clock: newFakeClock()}, &nullSender{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const total, perMsg = 50_000, 100
	var pkts [][]byte
	for i := 0; i < total; i += perMsg {
		var recs []wire.EIDRecord
		for k := i; k < i+perMsg; k++ {
			a := netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)})
			recs = append(recs, rec(0, netip.PrefixFrom(a, 32).String(), 1440, loc("192.0.2.1")))
		}
		pkts = append(pkts, buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA256128, nonce: uint64(i + 1), proxy: true, records: recs}))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, p := range pkts {
		s.HandlePacket(p, ap("192.0.2.1:4342"), netip.Addr{})
	}
	pkts = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := s.Stats()
	if st.SiteRegistrations["big"] != DefaultSiteMaxPrefixes || st.RegisterRefusedLimitSitePrefixes != total-DefaultSiteMaxPrefixes {
		t.Fatalf("registered %d, refused %d", st.SiteRegistrations["big"], st.RegisterRefusedLimitSitePrefixes)
	}
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew %d kB for %d registrations (%d B each)", grown>>10, DefaultSiteMaxPrefixes, grown/DefaultSiteMaxPrefixes)
	if grown > DefaultSiteMaxPrefixes*4096 {
		t.Fatalf("heap grew %d bytes for %d registrations", grown, DefaultSiteMaxPrefixes)
	}
	runtime.KeepAlive(s)
}

// TestRegistrationLimitKinds: the site's max-registrations and the
// Map-Server's max-registrations refuse new registrations (no Map-Notify;
// counted), refreshes of existing ones still work, and a replacement is not
// a new registration.
func TestRegistrationLimitKinds(t *testing.T) {
	s, out, _ := newTestServer(t, func(c *Config) {
		c.Sites[0].MaxRegistrations = 2
		c.Sites[1].Policy = PolicyReplace
		c.MaxRegistrations = 3
	})
	x1, x2, x3 := &wire.XTRID{1}, &wire.XTRID{2}, &wire.XTRID{3}
	regA := func(x *wire.XTRID, nonce uint64) []byte {
		return oorRegister(t, nonce, "192.0.2.1", func(o *regOpts) { o.xtrID = x })
	}
	s.HandlePacket(regA(x1, 1), ap("192.0.2.1:4342"), netip.Addr{})
	s.HandlePacket(regA(x2, 2), ap("192.0.2.2:4342"), netip.Addr{})
	out.take()
	s.HandlePacket(regA(x3, 3), ap("192.0.2.3:4342"), netip.Addr{})
	if n := len(out.take()); n != 0 {
		t.Fatalf("a refused register got %d datagrams", n)
	}
	if st := s.Stats(); st.RegisterRefusedLimitSiteRegistrations != 1 || st.SiteRegistrations["a"] != 2 {
		t.Fatalf("site limit: %+v", st)
	}
	s.HandlePacket(regA(x1, 4), ap("192.0.2.1:4342"), netip.Addr{}) // a refresh
	if n := len(out.take()); n != 1 {
		t.Fatalf("a refresh at the limit got %d datagrams", n)
	}
	regB := func(prefix string, nonce uint64, from string) {
		s.HandlePacket(buildRegister(t, regOpts{key: keyB, keyID: 3, alg: wire.AlgHMACSHA256128, nonce: nonce,
			records: []wire.EIDRecord{rec(0, prefix, 60, loc(from))}}), ap(from+":4342"), netip.Addr{})
	}
	regB("10.2.0.0/16", 5, "198.51.100.1")
	regB("10.2.0.0/16", 6, "198.51.100.2") // replaces: no new registration
	if st := s.Stats(); st.SiteRegistrations["b"] != 1 || st.RegistrationsReplaced != 1 || st.RegisterRefusedLimitGlobal != 0 {
		t.Fatalf("replacement at the limit: %+v", st)
	}
	s.HandlePacket(buildRegister(t, regOpts{key: keyB, keyID: 3, alg: wire.AlgHMACSHA256128, nonce: 7,
		records: []wire.EIDRecord{rec(7, "2001:db8:2::/64", 60, loc("2001:db8::1"))}}), ap("198.51.100.1:4342"), netip.Addr{})
	if st := s.Stats(); st.RegisterRefusedLimitGlobal != 1 || st.SiteRegistrations["b"] != 1 {
		t.Fatalf("map-server limit: %+v", st)
	}
}

// TestReplayTimeNoncesHeal: an xTR whose clock went back (its nonces now
// older than the ones it sent before) is refused for nonceHealAfter at most,
// unless it, or anyone, gets a register of that xTR-ID accepted meanwhile.
func TestReplayTimeNoncesHeal(t *testing.T) {
	s, out, clk := newTestServer(t, nil)
	x := &wire.XTRID{0x22}
	from := ap("10.99.0.12:4342")
	reg := func(at time.Time, rloc string) []byte {
		return oorRegister(t, uint64(at.UnixNano()), rloc, func(o *regOpts) { o.xtrID = x })
	}
	ahead := clk.Now().Add(time.Hour) // the ETR's clock was an hour ahead
	s.HandlePacket(reg(ahead, "192.0.2.1"), from, netip.Addr{})
	// Corrected, it registers every 5 s; the first minute is refused.
	for range 12 {
		s.HandlePacket(reg(clk.Now(), "192.0.2.2"), from, netip.Addr{})
		clk.Advance(5 * time.Second)
	}
	if st := s.Stats(); st.RegisterReplays != 12 || st.RegisterNonceResets != 0 {
		t.Fatalf("during the first minute: replays %d, resets %d", st.RegisterReplays, st.RegisterNonceResets)
	}
	s.HandlePacket(reg(clk.Now(), "192.0.2.2"), from, netip.Addr{})
	if st := s.Stats(); st.RegisterNonceResets != 1 {
		t.Fatalf("after a minute: resets %d", st.RegisterNonceResets)
	}
	if got := answerRLOCs(t, s, out, "10.1.1.1"); !slices.Equal(got, []string{"192.0.2.2"}) {
		t.Fatalf("mapping %v", got)
	}
	// From now on its nonces count from there.
	clk.Advance(5 * time.Second)
	s.HandlePacket(reg(clk.Now(), "192.0.2.2"), from, netip.Addr{})
	s.HandlePacket(reg(clk.Now().Add(-time.Minute), "192.0.2.1"), from, netip.Addr{})
	if st := s.Stats(); st.RegisterReplays != 13 || st.RegisterOK != 3 {
		t.Fatalf("after the reset: replays %d, ok %d", st.RegisterReplays, st.RegisterOK)
	}
	// Old registers replayed while the xTR keeps registering never get in.
	for range 30 {
		clk.Advance(5 * time.Second)
		s.HandlePacket(reg(clk.Now(), "192.0.2.2"), from, netip.Addr{})
		s.HandlePacket(reg(clk.Now().Add(-10*time.Minute), "192.0.2.1"), from, netip.Addr{})
	}
	if got := answerRLOCs(t, s, out, "10.1.1.1"); !slices.Equal(got, []string{"192.0.2.2"}) {
		t.Fatalf("the replays got in: %v", got)
	}
	if st := s.Stats(); st.RegisterNonceResets != 1 {
		t.Fatalf("resets %d", st.RegisterNonceResets)
	}
}

// TestAutoPolicyMultiETRWithoutXTRIDs: the other shape of site, several
// ETRs without xTR-IDs. Under auto, ETRs that each register the site's
// whole locator-set are merged at once; ETRs that register only their own
// locator replace each other once, and as soon as a replaced one registers
// again auto merges the prefix for good.
func TestAutoPolicyMultiETRWithoutXTRIDs(t *testing.T) {
	const a, b = "10.99.0.1", "10.99.0.2"
	both := func(o *regOpts) { o.records = []wire.EIDRecord{rec(0, "10.1.1.0/24", 1440, loc(a), loc(b))} }
	t.Run("whole locator-set", func(t *testing.T) {
		s, out, _ := newTestServer(t, nil)
		s.HandlePacket(oorRegister(t, 1, a, both), ap(a+":4342"), netip.Addr{})
		s.HandlePacket(oorRegister(t, 2, b, both), ap(b+":4342"), netip.Addr{})
		if st := s.Stats(); st.RegistrationsReplaced != 0 || len(s.Registrations()) != 2 {
			t.Fatalf("replaced %d, registrations %d", st.RegistrationsReplaced, len(s.Registrations()))
		}
		if got := answerRLOCs(t, s, out, "10.1.1.1"); len(got) != 2 {
			t.Fatalf("proxy reply RLOCs %v", got)
		}
	})
	t.Run("own locator only", func(t *testing.T) {
		s, out, _ := newTestServer(t, nil)
		s.HandlePacket(oorRegister(t, 1, a, nil), ap(a+":4342"), netip.Addr{})
		s.HandlePacket(oorRegister(t, 2, b, nil), ap(b+":4342"), netip.Addr{}) // replaces a: could be a renumbering
		if st := s.Stats(); st.RegistrationsReplaced != 1 {
			t.Fatalf("replaced %d, want 1", st.RegistrationsReplaced)
		}
		s.HandlePacket(oorRegister(t, 3, a, nil), ap(a+":4342"), netip.Addr{}) // a is alive: two ETRs
		s.HandlePacket(oorRegister(t, 4, b, nil), ap(b+":4342"), netip.Addr{})
		s.HandlePacket(oorRegister(t, 5, a, nil), ap(a+":4342"), netip.Addr{})
		if st := s.Stats(); st.RegistrationsReplaced != 1 || len(s.Registrations()) != 2 {
			t.Fatalf("after a came back: replaced %d, registrations %d", st.RegistrationsReplaced, len(s.Registrations()))
		}
		if got := answerRLOCs(t, s, out, "10.1.1.1"); len(got) != 2 {
			t.Fatalf("proxy reply RLOCs %v, want both ETRs'", got)
		}
	})
}
