package mapserver

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/lispd/lispd/wire"
)

// registerFixture registers site a's 10.1.1.0/24 with proxy replies (two
// RLOCs) and site b's 10.2.0.0/16 (site b does not allow proxy replies,
// though its ETR asks).
func registerFixture(t testing.TB, s *Server, out *capSender) {
	t.Helper()
	s.HandlePacket(siteARegister(t, 1, true, false, loc("192.0.2.1"), loc("192.0.2.2")), ap("192.0.2.1:4342"), netip.Addr{})
	s.HandlePacket(buildRegister(t, regOpts{key: keyB, keyID: 3, alg: wire.AlgHMACSHA256128, proxy: true,
		records: []wire.EIDRecord{rec(0, "10.2.0.0/16", 60, loc("198.51.100.1"))}}), ap("198.51.100.1:4342"), netip.Addr{})
	if st := s.Stats(); st.RegisterOK != 2 {
		t.Fatalf("fixture registers refused: %+v", st)
	}
	out.take()
}

var itr = ap("203.0.113.9:61000")

func TestProxyReply(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	registerFixture(t, s, out)
	pkt := buildRequest(t, itr, 0, "10.1.1.77/32", 0xabcdef, nil)
	// The request arrives from a Map-Resolver; the reply goes to the ITR.
	s.HandlePacket(pkt, ap("198.18.0.1:4342"), netip.MustParseAddr("198.18.0.2"))
	got := onlyOne(t, out)
	if got.to != itr {
		t.Fatalf("Map-Reply sent to %s, want the ITR-RLOC at the inner source port %s", got.to, itr)
	}
	rep := parseAs[*wire.MapReply](t, got.b)
	if rep.Nonce != 0xabcdef || len(rep.Records) != 1 || rep.Probe {
		t.Fatalf("reply %+v", rep)
	}
	r := rep.Records[0]
	if iid, p, _ := r.Prefix(); iid != 0 || p != netip.MustParsePrefix("10.1.1.0/24") {
		t.Fatalf("reply prefix [%d]%s", iid, p)
	}
	if r.Authoritative || r.RecordTTL != 1440 || len(r.Locators) != 2 || r.Action != wire.NoAction {
		t.Fatalf("reply record %+v", r)
	}
	for _, l := range r.Locators {
		if l.Local || l.Probed || !l.Reachable || l.Priority != 1 || l.Weight != 50 {
			t.Fatalf("proxy reply locator %+v: L and p must be clear, the rest as registered", l)
		}
	}
	if st := s.Stats(); st.RequestsProxyReplied != 1 || st.MRForwardedLocal != 1 || st.RequestsReceived != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestForwardToETR(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	registerFixture(t, s, out)
	pkt := buildRequest(t, itr, 0, "10.2.3.4/32", 42, nil)
	s.HandlePacket(pkt, ap("198.18.0.1:4342"), netip.Addr{})
	got := onlyOne(t, out)
	if got.to != ap("198.51.100.1:4342") {
		t.Fatalf("forwarded to %s, want the ETR RLOC at 4342", got.to)
	}
	ecm := parseAs[*wire.ECM](t, got.b)
	if !ecm.ToETR || ecm.ToMS || ecm.Source != itr {
		t.Fatalf("forwarded ECM %+v", ecm)
	}
	// The inner Map-Request is forwarded as received.
	inner, err := wire.ECMPayload(got.b)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := wire.ECMPayload(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(inner, orig) {
		t.Fatalf("inner Map-Request altered:\n got %x\nwant %x", inner, orig)
	}
	if st := s.Stats(); st.RequestsForwardedToETR != 1 || st.RequestsProxyReplied != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestProbeIsForwardedNotProxied(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	registerFixture(t, s, out)
	s.HandlePacket(buildRequest(t, itr, 0, "10.1.1.5/32", 3, func(r *wire.MapRequest) { r.Probe = true }),
		ap("198.18.0.1:4342"), netip.Addr{})
	got := onlyOne(t, out)
	ecm := parseAs[*wire.ECM](t, got.b)
	if !ecm.ToETR || (got.to.Addr() != netip.MustParseAddr("192.0.2.1") && got.to.Addr() != netip.MustParseAddr("192.0.2.2")) {
		t.Fatalf("probe sent to %s as %+v", got.to, ecm)
	}
}

func TestSMRIgnored(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	registerFixture(t, s, out)
	s.HandlePacket(buildRequest(t, itr, 0, "10.1.1.5/32", 3, func(r *wire.MapRequest) { r.SMR = true }),
		ap("198.18.0.1:4342"), netip.Addr{})
	if p := out.take(); len(p) != 0 || s.Stats().SMRIgnored != 1 {
		t.Fatalf("SMR answered: %d datagrams, stats %+v", len(p), s.Stats())
	}
}

func TestFirstRecordAnswered(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	registerFixture(t, s, out)
	s.HandlePacket(buildRequest(t, itr, 0, "10.1.1.5/32", 3, func(r *wire.MapRequest) {
		r.Records = append(r.Records, wire.NewRequestRecord(0, netip.MustParsePrefix("10.2.0.1/32")))
	}), ap("198.18.0.1:4342"), netip.Addr{})
	rep := parseAs[*wire.MapReply](t, onlyOne(t, out).b)
	if _, p, _ := rep.Records[0].Prefix(); len(rep.Records) != 1 || p != netip.MustParsePrefix("10.1.1.0/24") {
		t.Fatalf("reply %+v", rep.Records)
	}
}

func TestReplyFamilyAndPort(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	registerFixture(t, s, out)
	v6 := netip.MustParseAddr("2001:db8:9::9")
	pkt := buildRequest(t, itr, 0, "10.1.1.5/32", 3, func(r *wire.MapRequest) {
		r.ITRRLOCs = []wire.Address{wire.AddrFrom(v6), wire.AddrFrom(netip.MustParseAddr("203.0.113.10"))}
	})
	// Received over IPv4: the IPv4 ITR-RLOC is used.
	s.HandlePacket(pkt, ap("198.18.0.1:4342"), netip.MustParseAddr("198.18.0.2"))
	if got := onlyOne(t, out); got.to != ap("203.0.113.10:61000") {
		t.Fatalf("IPv4 reply to %s", got.to)
	}
	// Received over IPv6: the IPv6 ITR-RLOC is used.
	s.HandlePacket(pkt, ap("[2001:db8::1]:4342"), netip.MustParseAddr("2001:db8::2"))
	if got := onlyOne(t, out); got.to != netip.AddrPortFrom(v6, 61000) {
		t.Fatalf("IPv6 reply to %s", got.to)
	}
	// D bit: no Map-Reply.
	s.HandlePacket(buildRequest(t, itr, 0, "10.1.1.5/32", 3, func(r *wire.MapRequest) { r.DontMapReply = true }),
		ap("198.18.0.1:4342"), netip.Addr{})
	if p := out.take(); len(p) != 0 {
		t.Fatalf("D-bit request answered")
	}
}

func TestNegativeReplies(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	registerFixture(t, s, out)
	tests := []struct {
		name   string
		iid    uint32
		eid    string
		prefix string
		ttl    uint32
	}{
		// In site a's 10.1.0.0/16, beside the registered 10.1.1.0/24.
		{"configured not registered", 0, "10.1.200.1/32", "10.1.128.0/17", 1},
		{"configured, next to registered", 0, "10.1.0.9/32", "10.1.0.0/24", 1},
		// Outside every configured prefix: 10.1/16 and 10.2/16 are known.
		{"not configured", 0, "10.3.3.3/32", "10.3.0.0/16", 15},
		{"far away", 0, "192.168.1.1/32", "128.0.0.0/1", 15},
		{"instance-ID configured, v6", 7, "2001:db8:2:5::1/128", "2001:db8:2::/48", 1},
		{"instance-ID not configured, v6", 7, "2001:db8:3::1/128", "2001:db8:3::/48", 15},
		{"empty instance-ID", 9, "10.1.1.1/32", "0.0.0.0/0", 15},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats()
			s.HandlePacket(buildRequest(t, itr, tc.iid, tc.eid, 77, nil), ap("198.18.0.1:4342"), netip.Addr{})
			got := onlyOne(t, out)
			if got.to != itr {
				t.Fatalf("negative reply to %s", got.to)
			}
			rep := parseAs[*wire.MapReply](t, got.b)
			r := rep.Records[0]
			iid, p, _ := r.Prefix()
			if rep.Nonce != 77 || iid != tc.iid || p != netip.MustParsePrefix(tc.prefix) || r.RecordTTL != tc.ttl ||
				r.Action != wire.NativelyForward || len(r.Locators) != 0 || r.Authoritative {
				t.Fatalf("negative reply [%d]%s ttl %d action %v locators %d A %v, want %s ttl %d",
					iid, p, r.RecordTTL, r.Action, len(r.Locators), r.Authoritative, tc.prefix, tc.ttl)
			}
			after := s.Stats()
			if after.NegativeReplies != before.NegativeReplies+1 {
				t.Fatalf("negative replies %d -> %d", before.NegativeReplies, after.NegativeReplies)
			}
			if tc.ttl == 1 && after.NegativeNotRegistered != before.NegativeNotRegistered+1 {
				t.Fatal("not counted as not registered")
			}
			if tc.ttl == 15 && after.MRNegative != before.MRNegative+1 {
				t.Fatal("not counted as a Map-Resolver negative reply")
			}
		})
	}
}

// TestNegativeKnownBug is the case another implementation gets wrong.
func TestNegativeKnownBug(t *testing.T) {
	s, out, _ := newTestServer(t, func(c *Config) {
		c.MapResolver = false
		c.Sites = []Site{{Name: "x", Key: keyA, Algorithm: wire.AlgHMACSHA196, Prefixes: []SitePrefix{
			{EIDPrefix: eid(0, "10.1.0.0/16")}, {EIDPrefix: eid(0, "11.3.0.0/16")}}}}
	})
	s.HandlePacket(buildRequest(t, itr, 0, "10.3.3.3/32", 1, nil), ap("198.18.0.1:4342"), netip.Addr{})
	r := parseAs[*wire.MapReply](t, onlyOne(t, out).b).Records[0]
	if _, p, _ := r.Prefix(); p != netip.MustParsePrefix("10.2.0.0/15") || r.RecordTTL != 15 {
		t.Fatalf("negative reply %s ttl %d, want 10.2.0.0/15 ttl 15", p, r.RecordTTL)
	}
	if st := s.Stats(); st.NegativeNotConfigured != 1 || st.RequestsReceived != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestResolverRemote(t *testing.T) {
	msAll := ap("192.0.2.200:4342")
	ms10 := ap("192.0.2.210:14342")
	s, out, _ := newTestServer(t, func(c *Config) {
		c.MapServer = false
		c.Sites = nil
		c.Resolver.MapServers = []RemoteMapServer{
			{Address: netip.AddrPortFrom(msAll.Addr(), 0)},
			{Address: ms10, Prefixes: []EIDPrefix{eid(0, "10.0.0.0/8")}},
		}
	})
	pkt := buildRequest(t, itr, 0, "10.9.9.9/32", 5, nil)
	s.HandlePacket(pkt, itr, netip.Addr{})
	got := onlyOne(t, out)
	if got.to != ms10 {
		t.Fatalf("forwarded to %s, want the Map-Server serving 10/8", got.to)
	}
	ecm := parseAs[*wire.ECM](t, got.b)
	if !ecm.ToMS || ecm.ToETR || ecm.Source != itr {
		t.Fatalf("forwarded ECM %+v", ecm)
	}
	inner, _ := wire.ECMPayload(got.b)
	orig, _ := wire.ECMPayload(pkt)
	if !bytes.Equal(inner, orig) {
		t.Fatal("inner Map-Request altered")
	}
	s.HandlePacket(buildRequest(t, itr, 0, "172.16.0.1/32", 5, nil), itr, netip.Addr{})
	if got := onlyOne(t, out); got.to != msAll {
		t.Fatalf("forwarded to %s, want the default Map-Server at port 4342", got.to)
	}
	// A Map-Register is not for a Map-Resolver.
	s.HandlePacket(siteARegister(t, 1, false, true), ap("192.0.2.1:4342"), netip.Addr{})
	// A request already marked for a Map-Server is not forwarded again.
	toMS, err := wire.NewECM(itr, ap("10.9.9.9:4342"), parseAs[*wire.ECM](t, pkt).Inner).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	toMS[0] |= 0x01 // M bit
	s.HandlePacket(toMS, itr, netip.Addr{})
	if p := out.take(); len(p) != 0 {
		t.Fatalf("%d datagrams for messages a Map-Resolver does not handle", len(p))
	}
	st := s.Stats()
	if st.MRForwardedRemote != 2 || st.MRRequestsReceived != 2 || st.WrongRole != 2 {
		t.Fatalf("stats %+v", st)
	}

	// With no remote Map-Server for the EID, the resolver answers itself.
	if err := s.SetResolver(ResolverConfig{MapServers: []RemoteMapServer{{Address: ms10, Prefixes: []EIDPrefix{eid(0, "10.0.0.0/8")}}}}); err != nil {
		t.Fatal(err)
	}
	s.HandlePacket(buildRequest(t, itr, 0, "11.1.1.1/32", 6, nil), itr, netip.Addr{})
	r := parseAs[*wire.MapReply](t, onlyOne(t, out).b).Records[0]
	if _, p, _ := r.Prefix(); p != netip.MustParsePrefix("11.0.0.0/8") || r.RecordTTL != 15 || r.Action != wire.NativelyForward {
		t.Fatalf("resolver negative reply %s ttl %d", p, r.RecordTTL)
	}
	if err := s.SetResolver(ResolverConfig{MapServers: []RemoteMapServer{{Address: ap("0.0.0.0:1")}}}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad resolver config accepted: %v", err)
	}
}

func TestPlainMapRequest(t *testing.T) {
	// A Map-Request that is not encapsulated is answered at its source port
	// and, when forwarded, encapsulated from its source.
	s, out, _ := newTestServer(t, func(c *Config) { c.MapResolver = false })
	registerFixture(t, s, out)
	req := &wire.MapRequest{Nonce: 9, ITRRLOCs: []wire.Address{wire.AddrFrom(itr.Addr())},
		Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix("10.2.0.1/32"))}}
	b, err := req.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	s.HandlePacket(b, ap("203.0.113.9:5555"), netip.Addr{})
	got := onlyOne(t, out)
	ecm := parseAs[*wire.ECM](t, got.b)
	if got.to != ap("198.51.100.1:4342") || ecm.Source != ap("203.0.113.9:5555") || !ecm.ToETR {
		t.Fatalf("plain request forwarded to %s as %+v", got.to, ecm)
	}
	req.Records[0] = wire.NewRequestRecord(0, netip.MustParsePrefix("10.1.1.1/32"))
	b, _ = req.AppendBinary(nil)
	s.HandlePacket(b, ap("203.0.113.9:5555"), netip.Addr{})
	if got := onlyOne(t, out); got.to != ap("203.0.113.9:5555") {
		t.Fatalf("plain request answered at %s", got.to)
	}
}

func TestUnanswerableRequests(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	registerFixture(t, s, out)
	tests := []func(*wire.MapRequest){
		func(r *wire.MapRequest) { r.Records = nil },
		func(r *wire.MapRequest) {
			r.Records[0] = wire.RequestRecord{MaskLen: 8, EID: wire.Address{AFI: wire.AFIDistinguishedName, Raw: []byte("x")}}
		},
	}
	for i, m := range tests {
		s.HandlePacket(buildRequest(t, itr, 0, "10.1.1.1/32", 1, m), itr, netip.Addr{})
		if p := out.take(); len(p) != 0 {
			t.Fatalf("case %d answered", i)
		}
	}
	if st := s.Stats(); st.RequestsDropped != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSendErrorsCounted(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	registerFixture(t, s, out)
	out.fail = errors.New("no route")
	s.HandlePacket(buildRequest(t, itr, 0, "10.1.1.1/32", 1, nil), itr, netip.Addr{})
	if st := s.Stats(); st.SendErrors != 1 || st.RequestsProxyReplied != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStatsEach(t *testing.T) {
	s, _, _ := newTestServer(t, nil)
	s.HandlePacket([]byte{0x30}, itr, netip.Addr{})
	st := s.Stats()
	seen := map[string]bool{}
	n := 0
	st.Each(func(name string, v uint64) {
		if seen[name] || name == "" {
			t.Errorf("duplicate or empty counter name %q", name)
		}
		seen[name] = true
		n++
	})
	if n != int(numCounters)+1 || !seen["malformed_truncated"] || !seen["register_ok"] {
		t.Fatalf("Each reported %d names: %v", n, seen)
	}
}

// TestNegativeWithinRemotePrefix: a request marked for a Map-Server reaches
// this one for an EID that a remote Map-Server serves; the negative answer
// must not cover more than that remote prefix.
func TestNegativeWithinRemotePrefix(t *testing.T) {
	s, out, _ := newTestServer(t, func(c *Config) {
		c.Resolver.MapServers = []RemoteMapServer{{Address: ap("192.0.2.250:4342"), Prefixes: []EIDPrefix{eid(0, "172.16.0.0/12")}}}
	})
	inner := parseAs[*wire.ECM](t, buildRequest(t, itr, 0, "172.16.1.1/32", 8, nil)).Inner
	e := wire.NewECM(itr, ap("172.16.1.1:4342"), inner)
	e.ToMS = true
	pkt, err := e.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	s.HandlePacket(pkt, ap("198.18.0.1:4342"), netip.Addr{})
	r := parseAs[*wire.MapReply](t, onlyOne(t, out).b).Records[0]
	if _, p, _ := r.Prefix(); p != netip.MustParsePrefix("172.16.0.0/12") || r.RecordTTL != 15 {
		t.Fatalf("negative reply %s ttl %d, want 172.16.0.0/12 ttl 15", p, r.RecordTTL)
	}
	if st := s.Stats(); st.NegativeNotConfigured != 1 || st.MRRequestsReceived != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestNestedSitePrefixes: site "inner" owns 10.1.5.0/24 inside site a's
// 10.1.0.0/16. With only a's /16 registered, an EID in the /24 is not
// registered: it gets a negative reply for the /24, not a's mapping.
func TestNestedSitePrefixes(t *testing.T) {
	s, out, _ := newTestServer(t, func(c *Config) {
		c.Sites = append(c.Sites, Site{Name: "inner", Key: []byte("inner"), Algorithm: wire.AlgHMACSHA196,
			AllowProxyReply: true, Prefixes: []SitePrefix{{EIDPrefix: eid(0, "10.1.5.0/24")}}})
	})
	s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, proxy: true,
		records: []wire.EIDRecord{rec(0, "10.1.0.0/16", 1440, loc("192.0.2.1"))}}), ap("192.0.2.1:4342"), netip.Addr{})
	// Site a may not register inside the inner site's prefix.
	s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, proxy: true,
		records: []wire.EIDRecord{rec(0, "10.1.5.128/25", 1440, loc("192.0.2.1"))}}), ap("192.0.2.1:4342"), netip.Addr{})
	if st := s.Stats(); st.RegisterOK != 1 || st.RegisterPrefixNotAllowed != 1 {
		t.Fatalf("stats %+v", st)
	}
	s.HandlePacket(buildRequest(t, itr, 0, "10.1.5.9/32", 1, nil), itr, netip.Addr{})
	r := parseAs[*wire.MapReply](t, onlyOne(t, out).b).Records[0]
	if _, p, _ := r.Prefix(); p != netip.MustParsePrefix("10.1.5.0/24") || r.RecordTTL != 1 || len(r.Locators) != 0 {
		t.Fatalf("reply for the unregistered nested prefix: %s ttl %d locators %d", p, r.RecordTTL, len(r.Locators))
	}
	s.HandlePacket(buildRequest(t, itr, 0, "10.1.6.9/32", 2, nil), itr, netip.Addr{})
	if rep := parseAs[*wire.MapReply](t, onlyOne(t, out).b); len(rep.Records[0].Locators) != 1 {
		t.Fatalf("reply beside the nested prefix %+v", rep.Records[0])
	}
	// Once the inner site registers, its mapping answers.
	s.HandlePacket(buildRegister(t, regOpts{key: []byte("inner"), alg: wire.AlgHMACSHA196, proxy: true,
		records: []wire.EIDRecord{rec(0, "10.1.5.0/24", 1440, loc("192.0.2.77"))}}), ap("192.0.2.77:4342"), netip.Addr{})
	s.HandlePacket(buildRequest(t, itr, 0, "10.1.5.9/32", 3, nil), itr, netip.Addr{})
	r = parseAs[*wire.MapReply](t, onlyOne(t, out).b).Records[0]
	if _, p, _ := r.Prefix(); p != netip.MustParsePrefix("10.1.5.0/24") || len(r.Locators) != 1 ||
		r.Locators[0].Address.IP != netip.MustParseAddr("192.0.2.77") {
		t.Fatalf("reply for the registered nested prefix: %s %+v", p, r.Locators)
	}
}
