package mapserver

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// TestRegisterAndNotify registers with each algorithm, full and truncated
// authentication data, and checks the Map-Notify that acknowledges it.
func TestRegisterAndNotify(t *testing.T) {
	tests := []struct {
		name      string
		alg       wire.AlgorithmID
		truncated bool
		authLen   int
	}{
		{"sha1 full", wire.AlgHMACSHA196, false, 20},
		{"sha1 truncated", wire.AlgHMACSHA196, true, 12},
		{"sha256 full", wire.AlgHMACSHA256128, false, 32},
		{"sha256 truncated", wire.AlgHMACSHA256128, true, 16},
		{"sha256 hkdf full", wire.AlgHMACSHA256128HKDF, false, 32},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, out, clk := newTestServer(t, func(c *Config) { c.Sites[0].Algorithm = tc.alg })
			xid := wire.XTRID{1, 2, 3}
			from := ap("192.0.2.1:61001")
			regRec := rec(0, "10.1.1.0/24", 1440, loc("192.0.2.1"), loc("2001:db8::1"))
			pkt := buildRegister(t, regOpts{
				key: keyA, alg: tc.alg, truncated: tc.truncated, nonce: 0x1122334455667788,
				proxy: true, wantNotify: true, xtrID: &xid, siteID: 99,
				records: []wire.EIDRecord{regRec},
			})
			s.HandlePacket(pkt, from, netip.MustParseAddr("192.0.2.100"))

			st := s.Stats()
			if st.RegisterOK != 1 || st.MapNotifySent != 1 || st.SiteRegistrations["a"] != 1 {
				t.Fatalf("stats after register: %+v", st)
			}
			got := onlyOne(t, out)
			if got.to != from {
				t.Fatalf("Map-Notify sent to %s, want %s", got.to, from)
			}
			n := parseAs[*wire.MapNotify](t, got.b)
			if n.Nonce != 0x1122334455667788 || n.AlgorithmID != tc.alg || len(n.AuthData) != tc.authLen {
				t.Fatalf("Map-Notify nonce %#x alg %v auth len %d", n.Nonce, n.AlgorithmID, len(n.AuthData))
			}
			if !n.XTRIDPresent || n.XTRID != xid || n.SiteID != 99 {
				t.Fatalf("Map-Notify xTR-ID %v/%v site-ID %d", n.XTRIDPresent, n.XTRID, n.SiteID)
			}
			if len(n.Records) != 1 || len(n.Records[0].Locators) != 2 {
				t.Fatalf("Map-Notify records %+v", n.Records)
			}
			if iid, p, _ := n.Records[0].Prefix(); iid != 0 || p != netip.MustParsePrefix("10.1.1.0/24") {
				t.Fatalf("Map-Notify record prefix [%d]%s", iid, p)
			}
			if err := wire.Verify(got.b, keyA); err != nil {
				t.Fatalf("Map-Notify does not verify with the site key: %v", err)
			}
			if err := wire.Verify(got.b, keyB); !errors.Is(err, wire.ErrAuthFailed) {
				t.Fatalf("Map-Notify verifies with another key: %v", err)
			}

			regs := s.Registrations()
			if len(regs) != 1 {
				t.Fatalf("%d registrations, want 1", len(regs))
			}
			r := regs[0]
			now := clk.Now()
			if r.Site != "a" || r.Prefix != netip.MustParsePrefix("10.1.1.0/24") || !r.XTRIDPresent ||
				r.XTRID != xid || r.SiteID != 99 || r.RegisteredBy != from || len(r.RLOCs) != 2 ||
				!r.ProxyReply || !r.WantMapNotify || r.RecordTTL != 1440 || r.Algorithm != tc.alg ||
				!r.FirstRegistered.Equal(now) || !r.Expires.Equal(now.Add(DefaultRegistrationTimeout)) {
				t.Fatalf("registration view %+v", r)
			}
		})
	}
}

// TestRegisterRefused checks every reason a Map-Register is refused: it is
// counted under its reason, stores nothing and gets no Map-Notify.
func TestRegisterRefused(t *testing.T) {
	good := rec(0, "10.1.1.0/24", 1440, loc("192.0.2.1"))
	flip := func(b []byte) []byte { b[20] ^= 1; return b }
	tests := []struct {
		name  string
		pkt   func(t *testing.T) []byte
		check func(st Stats) bool
	}{
		{"wrong key", func(t *testing.T) []byte {
			return buildRegister(t, regOpts{key: keyB, alg: wire.AlgHMACSHA196, wantNotify: true, records: []wire.EIDRecord{good}})
		}, func(st Stats) bool { return st.RegisterAuthFailure == 1 }},
		{"flipped auth byte", func(t *testing.T) []byte {
			return flip(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, wantNotify: true, records: []wire.EIDRecord{good}}))
		}, func(st Stats) bool { return st.RegisterAuthFailure == 1 }},
		{"wrong key id", func(t *testing.T) []byte {
			return buildRegister(t, regOpts{key: keyA, keyID: 1, alg: wire.AlgHMACSHA196, wantNotify: true, records: []wire.EIDRecord{good}})
		}, func(st Stats) bool { return st.RegisterAuthFailure == 1 }},
		{"wrong algorithm", func(t *testing.T) []byte {
			return buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA256128, wantNotify: true, records: []wire.EIDRecord{good}})
		}, func(st Stats) bool { return st.RegisterAuthFailure == 1 }},
		{"no authentication", func(t *testing.T) []byte {
			return buildRegister(t, regOpts{alg: wire.AlgNone, wantNotify: true, records: []wire.EIDRecord{good}})
		}, func(st Stats) bool { return st.RegisterAuthFailure == 1 }},
		{"more specific not accepted", func(t *testing.T) []byte {
			return buildRegister(t, regOpts{key: keyB, keyID: 3, alg: wire.AlgHMACSHA256128, wantNotify: true,
				records: []wire.EIDRecord{rec(0, "10.2.1.0/24", 1440, loc("192.0.2.1"))}})
		}, func(st Stats) bool { return st.RegisterPrefixNotAllowed == 1 }},
		{"records of two sites", func(t *testing.T) []byte {
			return buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, wantNotify: true,
				records: []wire.EIDRecord{good, rec(0, "10.2.0.0/16", 1440, loc("192.0.2.1"))}})
		}, func(st Stats) bool { return st.RegisterPrefixNotAllowed == 1 }},
		{"one record outside every site", func(t *testing.T) []byte {
			return buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, wantNotify: true,
				records: []wire.EIDRecord{good, rec(0, "192.168.0.0/16", 1440, loc("192.0.2.1"))}})
		}, func(st Stats) bool { return st.RegisterPrefixNotAllowed == 1 }},
		{"unknown site", func(t *testing.T) []byte {
			return buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, wantNotify: true,
				records: []wire.EIDRecord{rec(0, "192.168.0.0/16", 1440, loc("192.0.2.1"))}})
		}, func(st Stats) bool { return st.RegisterUnknownSite == 1 }},
		{"less specific than the site", func(t *testing.T) []byte {
			return buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, wantNotify: true,
				records: []wire.EIDRecord{rec(0, "10.0.0.0/8", 1440, loc("192.0.2.1"))}})
		}, func(st Stats) bool { return st.RegisterUnknownSite == 1 }},
		{"other instance-ID", func(t *testing.T) []byte {
			return buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, wantNotify: true,
				records: []wire.EIDRecord{rec(5, "10.1.1.0/24", 1440, loc("192.0.2.1"))}})
		}, func(st Stats) bool { return st.RegisterUnknownSite == 1 }},
		{"no records", func(t *testing.T) []byte {
			return buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, wantNotify: true})
		}, func(st Stats) bool { return st.RegisterNoRecords == 1 }},
		{"truncated datagram", func(t *testing.T) []byte {
			b := buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, wantNotify: true, records: []wire.EIDRecord{good}})
			return b[:len(b)-3]
		}, func(st Stats) bool { return st.Malformed["truncated"] == 1 }},
		{"empty datagram", func(t *testing.T) []byte { return nil },
			func(st Stats) bool { return st.Malformed["truncated"] == 1 }},
		{"unknown message type", func(t *testing.T) []byte { return []byte{0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} },
			func(st Stats) bool { return st.UnsupportedType == 1 }},
		{"map-reply to a map-server", func(t *testing.T) []byte {
			b, err := (&wire.MapReply{Nonce: 1}).AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, func(st Stats) bool { return st.UnsupportedType == 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, out, _ := newTestServer(t, nil)
			s.HandlePacket(tc.pkt(t), ap("192.0.2.1:4342"), netip.Addr{})
			st := s.Stats()
			if !tc.check(st) {
				t.Fatalf("not counted as expected: %+v", st)
			}
			if st.RegisterOK != 0 || len(s.Registrations()) != 0 {
				t.Fatalf("refused register was stored: %+v", s.Registrations())
			}
			if p := out.take(); len(p) != 0 {
				t.Fatalf("refused register got %d datagrams back", len(p))
			}
		})
	}
}

func TestRegisterSecondSiteAndIPv6(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	pkt := buildRegister(t, regOpts{key: keyB, keyID: 3, alg: wire.AlgHMACSHA256128, wantNotify: true,
		records: []wire.EIDRecord{
			rec(0, "10.2.0.0/16", 60, loc("198.51.100.1")),
			rec(7, "2001:db8:2:1::/64", 60, loc("2001:db8:ffff::1")),
		}})
	s.HandlePacket(pkt, ap("[2001:db8:ffff::1]:4342"), netip.Addr{})
	if st := s.Stats(); st.RegisterOK != 1 || st.SiteRegistrations["b"] != 2 || st.SiteRegistrations["a"] != 0 {
		t.Fatalf("stats %+v", st)
	}
	n := onlyOne(t, out)
	if err := wire.Verify(n.b, keyB); err != nil {
		t.Fatalf("Map-Notify: %v", err)
	}
	regs := s.Registrations()
	if len(regs) != 2 || regs[0].InstanceID != 0 || regs[1].InstanceID != 7 ||
		regs[1].Prefix != netip.MustParsePrefix("2001:db8:2:1::/64") {
		t.Fatalf("registrations %+v", regs)
	}
}

func TestRegistrationExpiry(t *testing.T) {
	s, out, clk := newTestServer(t, nil)
	s.HandlePacket(siteARegister(t, 1, true, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	clk.Advance(DefaultRegistrationTimeout - time.Second)
	s.runTimers(clk.Now())
	if len(s.Registrations()) != 1 {
		t.Fatal("registration expired early")
	}
	// A refresh pushes the expiry back.
	s.HandlePacket(siteARegister(t, 2, true, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	clk.Advance(2 * time.Second)
	s.runTimers(clk.Now())
	regs := s.Registrations()
	if len(regs) != 1 || !regs[0].LastRegistered.Equal(clk.Now().Add(-2*time.Second)) {
		t.Fatalf("refreshed registration: %+v", regs)
	}
	clk.Advance(DefaultRegistrationTimeout)
	next := s.runTimers(clk.Now())
	if st := s.Stats(); st.Expired != 1 || st.SiteRegistrations["a"] != 0 || len(s.Registrations()) != 0 {
		t.Fatalf("after expiry: %+v", st)
	}
	if !next.IsZero() {
		t.Fatalf("timer still due at %v with nothing registered", next)
	}
	// The EID now gets a negative reply for a configured, unregistered prefix.
	out.take()
	s.HandlePacket(buildRequest(t, ap("203.0.113.9:61000"), 0, "10.1.1.5/32", 7, nil), ap("203.0.113.9:61000"), netip.Addr{})
	rep := parseAs[*wire.MapReply](t, onlyOne(t, out).b)
	if len(rep.Records[0].Locators) != 0 || rep.Records[0].RecordTTL != 1 {
		t.Fatalf("reply after expiry %+v", rep.Records[0])
	}
}

func TestUseTTLTimeout(t *testing.T) {
	s, _, clk := newTestServer(t, nil)
	pkt := buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, useTTL: true,
		records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 10, loc("192.0.2.1"))}})
	s.HandlePacket(pkt, ap("192.0.2.1:4342"), netip.Addr{})
	clk.Advance(9 * time.Minute)
	s.runTimers(clk.Now())
	if len(s.Registrations()) != 1 {
		t.Fatal("T-bit registration expired before its Record TTL")
	}
	clk.Advance(time.Minute)
	s.runTimers(clk.Now())
	if len(s.Registrations()) != 0 || s.Stats().Expired != 1 {
		t.Fatal("T-bit registration outlived its Record TTL")
	}
}

func TestDeregistration(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	x1, x2 := wire.XTRID{1}, wire.XTRID{2}
	reg := func(x *wire.XTRID, ttl uint32) []byte {
		return buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, xtrID: x, wantNotify: true,
			records: []wire.EIDRecord{rec(0, "10.1.1.0/24", ttl, loc("192.0.2.1"))}})
	}
	s.HandlePacket(reg(&x1, 1440), ap("192.0.2.1:4342"), netip.Addr{})
	s.HandlePacket(reg(&x2, 1440), ap("192.0.2.2:4342"), netip.Addr{})
	if len(s.Registrations()) != 2 {
		t.Fatalf("want two xTRs registered: %+v", s.Registrations())
	}
	out.take()
	s.HandlePacket(reg(&x1, 0), ap("192.0.2.1:4342"), netip.Addr{})
	regs := s.Registrations()
	if len(regs) != 1 || regs[0].XTRID != x2 {
		t.Fatalf("after deregistration of x1: %+v", regs)
	}
	st := s.Stats()
	if st.Deregistered != 1 || st.SiteRegistrations["a"] != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The deregistration is acknowledged too (M bit).
	if n := parseAs[*wire.MapNotify](t, onlyOne(t, out).b); n.Records[0].RecordTTL != 0 {
		t.Fatalf("Map-Notify record TTL %d", n.Records[0].RecordTTL)
	}
	// Deregistering what is not registered is harmless.
	s.HandlePacket(reg(&x1, 0), ap("192.0.2.1:4342"), netip.Addr{})
	if st := s.Stats(); st.Deregistered != 1 || st.RegisterOK != 4 {
		t.Fatalf("stats %+v", st)
	}
	s.HandlePacket(reg(&x2, 0), ap("192.0.2.2:4342"), netip.Addr{})
	if len(s.Registrations()) != 0 {
		t.Fatal("registration left after both xTRs deregistered")
	}
	if _, ok := s.state.Load().lookup(0, netip.MustParsePrefix("10.1.1.1/32")); ok {
		t.Fatal("deregistered prefix still published")
	}
}

func TestSetSites(t *testing.T) {
	s, _, _ := newTestServer(t, nil)
	s.HandlePacket(siteARegister(t, 1, true, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	s.HandlePacket(buildRegister(t, regOpts{key: keyB, keyID: 3, alg: wire.AlgHMACSHA256128,
		records: []wire.EIDRecord{rec(0, "10.2.0.0/16", 60, loc("198.51.100.1"))}}), ap("198.51.100.1:4342"), netip.Addr{})
	if len(s.Registrations()) != 2 {
		t.Fatal("setup registrations missing")
	}

	// Adding a site keeps the others' registrations.
	sites := testSites()
	sites = append(sites, Site{Name: "c", Key: []byte("c"), Algorithm: wire.AlgHMACSHA256128,
		Prefixes: []SitePrefix{{EIDPrefix: eid(0, "10.3.0.0/16")}}})
	if err := s.SetSites(sites); err != nil {
		t.Fatal(err)
	}
	if len(s.Registrations()) != 2 {
		t.Fatalf("adding a site dropped registrations: %+v", s.Registrations())
	}
	if st := s.Stats(); st.SiteRegistrations["c"] != 0 || st.SiteRegistrations["a"] != 1 {
		t.Fatalf("per-site counts %+v", st.SiteRegistrations)
	}

	// A changed key applies to the next register; the registration stays.
	newKey := []byte("site-a new secret")
	sites[0].Key = newKey
	if err := s.SetSites(sites); err != nil {
		t.Fatal(err)
	}
	if len(s.Registrations()) != 2 {
		t.Fatal("key change dropped a registration")
	}
	s.HandlePacket(siteARegister(t, 2, true, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	if st := s.Stats(); st.RegisterAuthFailure != 1 {
		t.Fatalf("old key still accepted: %+v", st)
	}
	s.HandlePacket(buildRegister(t, regOpts{key: newKey, alg: wire.AlgHMACSHA196,
		records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 1440, loc("192.0.2.1"))}}), ap("192.0.2.1:4342"), netip.Addr{})
	if st := s.Stats(); st.RegisterOK != 3 {
		t.Fatalf("new key refused: %+v", st)
	}

	// Removing a site drops its registrations; the request path forgets them.
	if err := s.SetSites(sites[:1]); err != nil {
		t.Fatal(err)
	}
	regs := s.Registrations()
	if len(regs) != 1 || regs[0].Site != "a" {
		t.Fatalf("after removing site b: %+v", regs)
	}
	if _, ok := s.state.Load().lookup(0, netip.MustParsePrefix("10.2.0.1/32")); ok {
		t.Fatal("removed site's registration still published")
	}
	st := s.Stats()
	if st.DroppedByConfig != 1 {
		t.Fatalf("dropped count %d", st.DroppedByConfig)
	}
	if _, ok := st.SiteRegistrations["b"]; ok {
		t.Fatalf("removed site still listed: %+v", st.SiteRegistrations)
	}

	// No longer accepting more-specifics drops the /24 of site a.
	sites[0].Prefixes[0].AcceptMoreSpecifics = false
	if err := s.SetSites(sites[:1]); err != nil {
		t.Fatal(err)
	}
	if len(s.Registrations()) != 0 || s.Stats().DroppedByConfig != 2 {
		t.Fatalf("registration kept after its prefix was disallowed: %+v", s.Registrations())
	}

	// Invalid site lists change nothing.
	bad := [][]Site{
		{{Name: "", Key: []byte("k"), Algorithm: wire.AlgHMACSHA196, Prefixes: sites[0].Prefixes}},
		{{Name: "x", Algorithm: wire.AlgHMACSHA196, Prefixes: sites[0].Prefixes}},
		{{Name: "x", Key: []byte("k"), Algorithm: wire.AlgNone, Prefixes: sites[0].Prefixes}},
		{{Name: "x", Key: []byte("k"), Algorithm: 9, Prefixes: sites[0].Prefixes}},
		{{Name: "x", Key: []byte("k"), Algorithm: wire.AlgHMACSHA196}},
		{{Name: "x", Key: []byte("k"), Algorithm: wire.AlgHMACSHA196,
			Prefixes: []SitePrefix{{EIDPrefix: eid(0, "10.1.0.0/16")}, {EIDPrefix: eid(0, "10.1.0.0/16")}}}},
		{{Name: "x", Key: []byte("k"), Algorithm: wire.AlgHMACSHA196,
			Prefixes: []SitePrefix{{EIDPrefix: EIDPrefix{Prefix: netip.MustParsePrefix("10.1.2.3/16")}}}}},
		{sites[0], sites[0]},
	}
	for i, b := range bad {
		if err := s.SetSites(b); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("bad site list %d: err %v", i, err)
		}
	}
	if _, ok := s.Stats().SiteRegistrations["a"]; !ok {
		t.Fatal("a refused SetSites changed the sites")
	}
}

func TestNewValidation(t *testing.T) {
	if _, err := New(Config{}, nil, nil); !errors.Is(err, ErrNilSender) {
		t.Fatalf("nil sender: %v", err)
	}
	bad := []Config{
		{RegistrationTimeout: -1},
		{NotifyInterval: -time.Second},
		{Sites: []Site{{Name: "x"}}},
		{Resolver: ResolverConfig{MapServers: []RemoteMapServer{{}}}},
		{Resolver: ResolverConfig{MapServers: []RemoteMapServer{{Address: ap("192.0.2.1:4342"),
			Prefixes: []EIDPrefix{{Prefix: netip.MustParsePrefix("::ffff:10.0.0.0/104")}}}}}},
	}
	for i, c := range bad {
		if _, err := New(c, &capSender{}, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("config %d: err %v", i, err)
		}
	}
}
