package xtr

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

var (
	msAddr = netip.MustParseAddrPort("192.0.2.100:4342")
	msKey  = []byte("site-key")
)

func testETRConfig(clk *fakeClock) ETRConfig {
	return ETRConfig{
		Database: []Mapping{
			{Prefix: netip.MustParsePrefix("10.1.0.0/16"), RLOCs: []Locator{{Addr: rlocA, Priority: 1, Weight: 60}, {Addr: rlocB, Priority: 1, Weight: 40}}},
			{InstanceID: 7, Prefix: netip.MustParsePrefix("10.1.0.0/16"), RLOCs: []Locator{{Addr: rlocA, Priority: 1, Weight: 100}}},
		},
		MapServers: []MapServer{{Address: msAddr, Key: msKey, Algorithm: wire.AlgHMACSHA256128}},
		LocalRLOCs: []netip.Addr{rlocA},
		SiteID:     42,
		Clock:      clk.Now,
	}
}

func newTestETR(t *testing.T, mod func(*ETRConfig)) (*ETR, *recordingSender, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	cfg := testETRConfig(clk)
	if mod != nil {
		mod(&cfg)
	}
	out := &recordingSender{}
	e, err := NewETR(cfg, out)
	if err != nil {
		t.Fatal(err)
	}
	return e, out, clk
}

// notifyFor builds the Map-Notify a Map-Server acknowledges reg with.
func notifyFor(t *testing.T, reg *wire.MapRegister, key []byte) []byte {
	t.Helper()
	n := wire.MapNotify{XTRIDPresent: reg.XTRIDPresent, Nonce: reg.Nonce, KeyID: reg.KeyID, AlgorithmID: reg.AlgorithmID,
		Records: reg.Records, XTRID: reg.XTRID, SiteID: reg.SiteID}
	b, err := n.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Sign(b, key); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestETRValidates(t *testing.T) {
	clk := newFakeClock()
	for name, mod := range map[string]func(*ETRConfig){
		"empty key":    func(c *ETRConfig) { c.MapServers[0].Key = nil },
		"alg none":     func(c *ETRConfig) { c.MapServers[0].Algorithm = wire.AlgNone },
		"dup MS":       func(c *ETRConfig) { c.MapServers = append(c.MapServers, c.MapServers[0]) },
		"no RLOC":      func(c *ETRConfig) { c.Database[0].RLOCs = nil },
		"dup RLOC":     func(c *ETRConfig) { c.Database[0].RLOCs[1].Addr = rlocA },
		"unmasked":     func(c *ETRConfig) { c.Database[0].Prefix = netip.MustParsePrefix("10.1.2.3/16") },
		"dup prefix":   func(c *ETRConfig) { c.Database[1].InstanceID = 0 },
		"ttl minutes":  func(c *ETRConfig) { c.RecordTTL = 90 * time.Second },
		"big IID":      func(c *ETRConfig) { c.Database[1].InstanceID = 1 << 24 },
		"bad RLOC":     func(c *ETRConfig) { c.Database[0].RLOCs[0].Addr = netip.IPv4Unspecified() },
		"bad local":    func(c *ETRConfig) { c.LocalRLOCs = []netip.Addr{{}} },
		"neg interval": func(c *ETRConfig) { c.RegisterInterval = -time.Second },
	} {
		cfg := testETRConfig(clk)
		cfg.Database[0].RLOCs = append([]Locator(nil), cfg.Database[0].RLOCs...)
		mod(&cfg)
		if _, err := NewETR(cfg, &recordingSender{}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestETRRegistersAndVerifiesNotify(t *testing.T) {
	e, out, clk := newTestETR(t, nil)
	if s := e.Registrations()[0]; s.State != StateRegistering {
		t.Errorf("before registering: %s", s.State)
	}
	e.onTick(clk.Now())
	msgs := out.take()
	if len(msgs) != 1 || msgs[0].to != msAddr {
		t.Fatalf("%d datagrams, want one Map-Register to %s", len(msgs), msAddr)
	}
	reg, ok := msgs[0].msg.(*wire.MapRegister)
	if !ok {
		t.Fatalf("sent %T", msgs[0].msg)
	}
	if err := wire.Verify(msgs[0].b, msKey); err != nil {
		t.Fatalf("the Map-Register does not verify with the key: %v", err)
	}
	if !reg.WantMapNotify || !reg.XTRIDPresent || reg.ProxyReply || reg.SiteID != 42 || reg.XTRID == (wire.XTRID{}) ||
		reg.KeyID != 0 || reg.AlgorithmID != wire.AlgHMACSHA256128 || len(reg.AuthData) != 32 {
		t.Errorf("register flags: %+v", reg)
	}
	if len(reg.Records) != 2 {
		t.Fatalf("%d records", len(reg.Records))
	}
	r := reg.Records[0]
	if iid, p, _ := r.Prefix(); iid != 0 || p != netip.MustParsePrefix("10.1.0.0/16") || r.RecordTTL != 1440 || !r.Authoritative ||
		len(r.Locators) != 2 || !r.Locators[0].Local || r.Locators[1].Local || !r.Locators[0].Reachable || r.Locators[0].Weight != 60 {
		t.Errorf("record = %+v", r)
	}
	if iid, _, _ := reg.Records[1].Prefix(); iid != 7 {
		t.Errorf("second record in instance %d", iid)
	}
	// No answer: a retry after 1 s, then 2 s...
	clk.Advance(999 * time.Millisecond)
	e.onTick(clk.Now())
	if len(out.take()) != 0 {
		t.Fatal("retried too early")
	}
	clk.Advance(time.Millisecond)
	e.onTick(clk.Now())
	msgs = out.take()
	if len(msgs) != 1 {
		t.Fatalf("no retry after 1 s")
	}
	reg2 := msgs[0].msg.(*wire.MapRegister)
	clk.Advance(time.Second)
	e.onTick(clk.Now())
	if len(out.take()) != 0 {
		t.Fatal("second retry before 2 s")
	}
	// A Map-Notify with a wrong key is refused.
	e.HandlePacket(notifyFor(t, reg2, []byte("wrong")), msAddr, netip.Addr{})
	if s := e.Registrations()[0]; s.State != StateRegistering || s.AuthFailures != 1 {
		t.Errorf("after a bad notify: %+v", s)
	}
	// One from an unknown source too.
	e.HandlePacket(notifyFor(t, reg2, msKey), netip.MustParseAddrPort("192.0.2.77:4342"), netip.Addr{})
	// The right one acknowledges: up, no Map-Notify-Ack, next in 60 s.
	e.HandlePacket(notifyFor(t, reg2, msKey), msAddr, netip.Addr{})
	s := e.Registrations()[0]
	if s.State != StateUp || s.NotifiesReceived != 1 || !s.LastNotify.Equal(clk.Now()) || s.RegistersSent != 2 {
		t.Errorf("after the notify: %+v", s)
	}
	if n := len(out.take()); n != 0 {
		t.Errorf("%d datagrams in answer to a solicited Map-Notify", n)
	}
	cs := e.Counters()
	if counter(cs, "map_notifies_received") != 1 || counter(cs, "map_notify_auth_failures") != 1 || counter(cs, "map_notify_unknown_source") != 1 {
		t.Errorf("counters %v", cs)
	}
	clk.Advance(58 * time.Second) // 59 s after the last register
	e.onTick(clk.Now())
	if len(out.take()) != 0 {
		t.Fatal("re-registered before the interval")
	}
	clk.Advance(time.Second)
	e.onTick(clk.Now())
	if len(out.take()) != 1 {
		t.Fatal("no re-registration after 60 s")
	}
	// Three intervals without a notify: down.
	for range 4 {
		clk.Advance(time.Minute)
		e.onTick(clk.Now())
	}
	if s := e.Registrations()[0]; s.State != StateDown {
		t.Errorf("after 4 unacknowledged minutes: %s", s.State)
	}
}

func TestETRAcksUnsolicitedNotify(t *testing.T) {
	e, out, clk := newTestETR(t, nil)
	e.onTick(clk.Now())
	out.take()
	n := wire.MapNotify{Nonce: 0xabcdef, AlgorithmID: wire.AlgHMACSHA256128,
		Records: []wire.EIDRecord{wire.NewEIDRecord(0, netip.MustParsePrefix("10.1.0.0/16"))}}
	b, _ := n.AppendBinary(nil)
	if err := wire.Sign(b, msKey); err != nil {
		t.Fatal(err)
	}
	from := netip.MustParseAddrPort("192.0.2.100:61000")
	e.HandlePacket(b, from, netip.Addr{})
	msgs := out.take()
	if len(msgs) != 1 || msgs[0].to != from {
		t.Fatalf("%d datagrams, want a Map-Notify-Ack to %s", len(msgs), from)
	}
	ack, ok := msgs[0].msg.(*wire.MapNotifyAck)
	if !ok || ack.Nonce != n.Nonce || len(ack.Records) != 1 {
		t.Fatalf("sent %T %+v", msgs[0].msg, msgs[0].msg)
	}
	if err := wire.Verify(msgs[0].b, msKey); err != nil {
		t.Errorf("the ack does not verify: %v", err)
	}
	if counter(e.Counters(), "map_notify_acks_sent") != 1 || counter(e.Counters(), "map_notifies_unsolicited") != 1 {
		t.Error("ack not counted")
	}
	if s := e.Registrations()[0]; s.State != StateRegistering {
		t.Errorf("an unsolicited notify changed the state: %s", s.State)
	}
}

// ecmRequest builds the ECM a Map-Server forwards an ITR's request in.
func ecmRequest(t *testing.T, eid string, itr netip.AddrPort, nonce uint64, probe bool) []byte {
	t.Helper()
	req := wire.MapRequest{Nonce: nonce, Probe: probe, ITRRLOCs: []wire.Address{wire.AddrFrom(netip.MustParseAddr("2001:db8::9")), wire.AddrFrom(itr.Addr())},
		Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.PrefixFrom(netip.MustParseAddr(eid), 32))}}
	ecm := wire.NewECM(itr, netip.AddrPortFrom(netip.MustParseAddr(eid), 4342), &req)
	ecm.ToETR = true
	b, err := ecm.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestETRAnswersMapRequests(t *testing.T) {
	e, out, _ := newTestETR(t, nil)
	itr := netip.MustParseAddrPort("192.0.2.50:50000")
	e.HandlePacket(ecmRequest(t, "10.1.2.3", itr, 99, false), msAddr, netip.MustParseAddr("192.0.2.1"))
	msgs := out.take()
	if len(msgs) != 1 || msgs[0].to != itr {
		t.Fatalf("%d datagrams (to %v), want a Map-Reply to the IPv4 ITR-RLOC at the inner source port %s", len(msgs), msgs, itr)
	}
	rep := msgs[0].msg.(*wire.MapReply)
	if rep.Nonce != 99 || rep.Probe || len(rep.Records) != 1 || !rep.Records[0].Authoritative || rep.Records[0].RecordTTL != 1440 ||
		len(rep.Records[0].Locators) != 2 {
		t.Errorf("reply = %+v", rep)
	}
	// An EID outside the database is not answered.
	e.HandlePacket(ecmRequest(t, "10.9.2.3", itr, 100, false), msAddr, netip.Addr{})
	if len(out.take()) != 0 || counter(e.Counters(), "map_requests_not_ours") != 1 {
		t.Error("a request for a foreign EID was answered")
	}
	// An RLOC-probe is answered to its source with the P bit, and the
	// probed locator marked.
	probe := wire.MapRequest{Probe: true, Nonce: 5, ITRRLOCs: []wire.Address{wire.AddrFrom(rlocC)},
		Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix("10.1.0.0/16"))}}
	b, _ := probe.AppendBinary(nil)
	from := netip.MustParseAddrPort("192.0.2.3:4342")
	e.HandlePacket(b, from, rlocB)
	msgs = out.take()
	if len(msgs) != 1 || msgs[0].to != from {
		t.Fatalf("probe answered to %v", msgs)
	}
	rep = msgs[0].msg.(*wire.MapReply)
	if !rep.Probe || rep.Nonce != 5 || rep.Records[0].Locators[0].Probed || !rep.Records[0].Locators[1].Probed {
		t.Errorf("probe reply = %+v", rep.Records[0].Locators)
	}
	if counter(e.Counters(), "probe_replies_sent") != 1 || counter(e.Counters(), "map_replies_sent") != 1 {
		t.Error("replies not counted")
	}
	if e.Requesters() != 2 {
		t.Errorf("%d requesters remembered, want 2", e.Requesters())
	}
	// D bit: no answer.
	probe.Probe, probe.DontMapReply = false, true
	b, _ = probe.AppendBinary(nil)
	e.HandlePacket(b, from, netip.Addr{})
	if len(out.take()) != 0 {
		t.Error("answered a request with the D bit")
	}
}

func TestETRSendsSMRsOnChange(t *testing.T) {
	e, out, clk := newTestETR(t, nil)
	e.onTick(clk.Now())
	reg := out.take()[0].msg.(*wire.MapRegister)
	e.HandlePacket(notifyFor(t, reg, msKey), msAddr, netip.Addr{})
	itr1 := netip.MustParseAddrPort("192.0.2.50:4342")
	itr2 := netip.MustParseAddrPort("192.0.2.51:4342")
	e.HandlePacket(ecmRequest(t, "10.1.2.3", itr1, 1, false), msAddr, netip.Addr{})
	e.HandlePacket(ecmRequest(t, "10.1.2.3", itr2, 2, false), msAddr, netip.Addr{})
	out.take()

	// Reloading the same database sends nothing.
	if err := e.SetConfig(testETRConfig(clk)); err != nil {
		t.Fatal(err)
	}
	e.onTick(clk.Advance(3 * time.Second))
	if got := out.take(); len(got) != 0 {
		t.Fatalf("an unchanged reload sent %d datagrams", len(got))
	}

	// Changing 10.1.0.0/16: re-register at once, SMR after the notify.
	cfg := testETRConfig(clk)
	cfg.Database[0].RLOCs = []Locator{{Addr: rlocA, Priority: 1, Weight: 100}}
	if err := e.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	e.onTick(clk.Advance(time.Millisecond))
	msgs := out.take()
	if len(msgs) != 1 {
		t.Fatalf("%d datagrams after the change, want just the Map-Register", len(msgs))
	}
	reg = msgs[0].msg.(*wire.MapRegister)
	if len(reg.Records[0].Locators) != 1 {
		t.Error("the new mapping was not registered")
	}
	e.HandlePacket(notifyFor(t, reg, msKey), msAddr, netip.Addr{})
	e.onTick(clk.Advance(time.Millisecond))
	msgs = out.take()
	if len(msgs) != 2 {
		t.Fatalf("%d SMRs, want one per ITR", len(msgs))
	}
	tos := map[netip.AddrPort]bool{}
	for _, m := range msgs {
		req := m.msg.(*wire.MapRequest)
		tos[m.to] = true
		if !req.SMR || len(req.ITRRLOCs) != 1 {
			t.Errorf("SMR = %+v", req)
		}
		if _, p, _ := req.Records[0].Prefix(); p != netip.MustParsePrefix("10.1.0.0/16") {
			t.Errorf("SMR for %s", p)
		}
		if _, ip, _ := req.SourceEID.InstanceIP(); ip != netip.MustParseAddr("10.1.0.0") {
			t.Errorf("SMR source EID %s", req.SourceEID)
		}
	}
	if !tos[itr1] || !tos[itr2] {
		t.Errorf("SMRs went to %v", tos)
	}
	if counter(e.Counters(), "smrs_sent") != 2 {
		t.Error("SMRs not counted")
	}
	// Without an acknowledgment the SMRs go after 2 s anyway.
	e.HandlePacket(ecmRequest(t, "10.1.2.3", itr1, 3, false), msAddr, netip.Addr{})
	out.take()
	cfg.Database[0].RLOCs = []Locator{{Addr: rlocB, Priority: 1, Weight: 100}}
	if err := e.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	e.onTick(clk.Advance(time.Millisecond))
	out.take() // the register
	e.onTick(clk.Advance(time.Second))
	for _, m := range out.take() {
		if _, ok := m.msg.(*wire.MapRequest); ok {
			t.Fatal("SMR sent before the holdoff without an acknowledgment")
		}
	}
	e.onTick(clk.Advance(time.Second))
	smrs := 0
	for _, m := range out.take() {
		if r, ok := m.msg.(*wire.MapRequest); ok && r.SMR {
			smrs++
		}
	}
	if smrs != 1 {
		t.Errorf("%d SMRs after the holdoff, want 1", smrs)
	}
	// The decapsulation set follows the database.
	cfg.Database = cfg.Database[1:]
	if err := e.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if e.Decapsulator().EIDs().Contains(0, netip.MustParseAddr("10.1.2.3")) || !e.Decapsulator().EIDs().Contains(7, netip.MustParseAddr("10.1.2.3")) {
		t.Error("the EID set did not follow the database")
	}
	if len(e.Database()) != 1 {
		t.Error("Database()")
	}
}

func TestETRRegisterSplitsLargeDatabases(t *testing.T) {
	e, out, clk := newTestETR(t, func(c *ETRConfig) {
		c.Database = nil
		for k := range 300 {
			c.Database = append(c.Database, Mapping{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(k >> 8), byte(k), 0}), 24),
				RLOCs: []Locator{{Addr: rlocA, Priority: 1, Weight: 100}}})
		}
	})
	e.onTick(clk.Now())
	msgs := out.take()
	if len(msgs) < 2 {
		t.Fatalf("%d Map-Registers for 300 records", len(msgs))
	}
	total := 0
	for _, m := range msgs {
		if len(m.b) > maxRegisterSize {
			t.Errorf("Map-Register of %d bytes", len(m.b))
		}
		if err := wire.Verify(m.b, msKey); err != nil {
			t.Error(err)
		}
		total += len(m.msg.(*wire.MapRegister).Records)
	}
	if total != 300 {
		t.Errorf("%d records registered, want 300", total)
	}
	// Any of the nonces is acknowledged.
	e.HandlePacket(notifyFor(t, msgs[len(msgs)-1].msg.(*wire.MapRegister), msKey), msAddr, netip.Addr{})
	if e.Registrations()[0].State != StateUp {
		t.Error("not up")
	}
}

func TestETRRequesterBound(t *testing.T) {
	e, out, _ := newTestETR(t, func(c *ETRConfig) { c.MaxRequesters = 16 })
	for k := range 40 {
		itr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(50 + k)}), 4342)
		e.HandlePacket(ecmRequest(t, "10.1.2.3", itr, uint64(k+1), false), msAddr, netip.Addr{})
	}
	out.take()
	if n := e.Requesters(); n > 16 || n < 8 {
		t.Errorf("%d requesters remembered with a bound of 16", n)
	}
}
