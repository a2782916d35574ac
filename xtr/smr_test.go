package xtr

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

// SMRs as seen on the wire (see the top of smr.go), one line per field.
const (
	// oorSMR is what OOR 1.3 sends when its 10.2.2.0/24 changes, to the
	// xTR whose 10.1.1.0/24 it caches: nonce 0, Source-EID = its changed
	// prefix, EID-record = the receiver's prefix.
	oorSMR = "11000001" + // type 1, S bit, IRC 0, 1 record
		"0000000000000000" + // nonce 0
		"0001 0a020200" + // Source-EID 10.2.2.0
		"0001 0a630016" + // ITR-RLOC 10.99.0.22
		"00 18 0001 0a010100" // EID-record 10.1.1.0/24
	// oldLispdSMR is what lispd sent before: Source-EID and EID-record
	// both the changed prefix 10.1.1.0/24.
	oldLispdSMR = "11000001" +
		"0102030405060708" + // nonce
		"0001 0a010100" + // Source-EID 10.1.1.0
		"0001 0a63000b" + // ITR-RLOC 10.99.0.11
		"00 18 0001 0a010100" // EID-record 10.1.1.0/24
)

// unhex decodes hex with spaces.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	pfxSite1 = netip.MustParsePrefix("10.1.1.0/24") // lispd's site in the issue
	pfxSite2 = netip.MustParsePrefix("10.2.2.0/24") // OOR's site
)

// localIn returns a SetLocalEIDs function for prefixes of instance 0.
func localIn(ps ...netip.Prefix) func(uint32, netip.Addr) bool {
	return func(iid uint32, a netip.Addr) bool {
		for _, p := range ps {
			if iid == 0 && p.Contains(a) {
				return true
			}
		}
		return false
	}
}

// smrInvoked returns the single SMR-invoked Map-Request sent to the first
// Map-Resolver and the prefix it asks for.
func smrInvoked(t *testing.T, i *ITR, out *recordingSender) netip.Prefix {
	t.Helper()
	i.sendFresh()
	msgs := out.take()
	if len(msgs) != 1 || msgs[0].to != mr1 {
		t.Fatalf("%d datagrams (%v), want one SMR-invoked Map-Request to %s", len(msgs), msgs, mr1)
	}
	_, req := innerRequest(t, msgs[0])
	if !req.SMRInvoked || req.SMR || req.Nonce == 0 || len(req.Records) != 1 {
		t.Fatalf("request = %+v, want s set", req)
	}
	_, p, _ := req.Records[0].Prefix()
	return p
}

// smrCounters returns smr_received, smr_invoked_requests and smr_ignored.
func smrCounters(i *ITR) [3]uint64 {
	cs := i.Counters()
	return [3]uint64{counter(cs, "smr_received"), counter(cs, "smr_invoked_requests"), counter(cs, "smr_ignored")}
}

// OOR's SMR (nonce 0, changed prefix in the Source-EID, the receiver's own
// EID in the record) refreshes the cached 10.2.2.0/24 and nothing else,
// even with a default mapping that also covers the receiver's own EID.
func TestSMRFromOOR(t *testing.T) {
	i, out, _ := newTestITR(t, nil)
	insert(t, i.Cache(), &mapcache.Entry{Prefix: pfxSite2, RLOCs: rlocs("10.99.0.22")})
	insert(t, i.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Action: mapcache.NativelyForward})
	i.SetLocalEIDs(localIn(pfxSite1))
	from := netip.MustParseAddrPort("10.99.0.22:4342")
	b := unhex(t, oorSMR)
	if m, err := wire.Parse(b); err != nil || !m.(*wire.MapRequest).SMR || m.(*wire.MapRequest).Nonce != 0 {
		t.Fatalf("OOR's SMR does not parse: %v %+v", err, m)
	}
	i.HandlePacket(b, from, netip.Addr{})
	if p := smrInvoked(t, i, out); p != pfxSite2 {
		t.Errorf("asked for %s, want %s", p, pfxSite2)
	}
	if got := smrCounters(i); got != [3]uint64{1, 1, 0} {
		t.Errorf("smr_received, smr_invoked_requests, smr_ignored = %v", got)
	}

	// Without knowing its own EIDs the ITR would also refresh the default
	// mapping, which covers the record (its own 10.1.1.0/24).
	j, out2, _ := newTestITR(t, nil)
	insert(t, j.Cache(), &mapcache.Entry{Prefix: pfxSite2, RLOCs: rlocs("10.99.0.22")})
	insert(t, j.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Action: mapcache.NativelyForward})
	j.HandlePacket(b, from, netip.Addr{})
	j.sendFresh()
	if n := len(out2.take()); n != 2 {
		t.Errorf("without local EIDs: %d requests, want 2 (the default mapping too)", n)
	}
	// SetLocalEIDs(nil) restores that default.
	i.SetLocalEIDs(nil)
	if i.isLocalEID(0, pfxSite1.Addr()) {
		t.Error("SetLocalEIDs(nil) kept the function")
	}
}

// The ITR's default local EIDs are the database of its DataPlane's ETR.
func TestSMRLocalEIDsFromDataPlane(t *testing.T) {
	i, _, _ := newTestITR(t, nil)
	e, _, _ := newTestETR(t, nil)
	if i.isLocalEID(0, netip.MustParseAddr("10.1.2.3")) {
		t.Fatal("local without a DataPlane")
	}
	i.dp.Store(&DataPlane{itr: i, etr: e})
	defer i.dp.Store(nil)
	if !i.isLocalEID(0, netip.MustParseAddr("10.1.2.3")) || i.isLocalEID(0, netip.MustParseAddr("10.2.2.3")) {
		t.Error("the DataPlane's ETR database is not the default")
	}
	i.SetLocalEIDs(func(uint32, netip.Addr) bool { return false })
	if i.isLocalEID(0, netip.MustParseAddr("10.1.2.3")) {
		t.Error("SetLocalEIDs does not override the default")
	}
	if !e.HasEID(7, netip.MustParseAddr("10.1.2.3")) || e.HasEID(8, netip.MustParseAddr("10.1.2.3")) {
		t.Error("HasEID ignores the instance")
	}
}

// lispd's old SMR (the changed prefix in both fields) is still accepted;
// an SMR naming nothing cached is ignored.
func TestSMRFromOldLispd(t *testing.T) {
	i, out, _ := newTestITR(t, nil)
	insert(t, i.Cache(), &mapcache.Entry{Prefix: pfxSite1, RLOCs: rlocs("10.99.0.11")})
	i.SetLocalEIDs(localIn(pfxSite2))
	from := netip.MustParseAddrPort("10.99.0.11:4342")
	i.HandlePacket(unhex(t, oldLispdSMR), from, netip.Addr{})
	if p := smrInvoked(t, i, out); p != pfxSite1 {
		t.Errorf("asked for %s, want %s", p, pfxSite1)
	}
	// An SMR for 10.3.3.0/24, which this ITR does not cache.
	i.HandlePacket(unhex(t, "11000001 0000000000000001 0001 0a030300 0001 0a63000b 00 18 0001 0a030300"), from, netip.Addr{})
	i.sendFresh()
	if n := len(out.take()); n != 0 {
		t.Errorf("an SMR for nothing cached sent %d datagrams", n)
	}
	if got := smrCounters(i); got != [3]uint64{2, 1, 1} {
		t.Errorf("smr_received, smr_invoked_requests, smr_ignored = %v", got)
	}
}

// site1ETR returns an ETR for 10.1.1.0/24 (lispd's site in the issue),
// registered and acknowledged.
func site1ETR(t *testing.T, mod func(*ETRConfig)) (*ETR, *recordingSender, *fakeClock, ETRConfig) {
	t.Helper()
	var cfg ETRConfig
	e, out, clk := newTestETR(t, func(c *ETRConfig) {
		c.Database = []Mapping{{Prefix: pfxSite1, RLOCs: []Locator{{Addr: rlocA, Priority: 1, Weight: 100}}}}
		if mod != nil {
			mod(c)
		}
		cfg = *c
	})
	e.onTick(clk.Now())
	reg := out.take()[0].msg.(*wire.MapRegister)
	e.HandlePacket(notifyFor(t, reg, msKey), msAddr, netip.Addr{})
	return e, out, clk, cfg
}

// ecmFrom builds the ECM a Map-Server forwards a Map-Request in, from
// source EID src (invalid: AFI 0) at itr for eid.
func ecmFrom(t *testing.T, src netip.Addr, itr netip.AddrPort, eid string, nonce uint64) []byte {
	t.Helper()
	req := wire.MapRequest{Nonce: nonce, SourceEID: wire.AddrFrom(src), ITRRLOCs: []wire.Address{wire.AddrFrom(itr.Addr())},
		Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.PrefixFrom(netip.MustParseAddr(eid), 32))}}
	ecm := wire.NewECM(itr, netip.AddrPortFrom(netip.MustParseAddr(eid), ControlPort), &req)
	ecm.ToETR = true
	b, err := ecm.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oorAccepts applies OOR's receive rules (tr_recv_map_request and
// tr_reply_to_smr) to an SMR: one record, which must lie in OOR's own
// database (local); the prefix refreshed is the map-cache entry covering
// the Source-EID (cached). It returns that entry.
func oorAccepts(req *wire.MapRequest, local, cached netip.Prefix) (netip.Prefix, bool) {
	if !req.SMR || len(req.Records) != 1 {
		return netip.Prefix{}, false
	}
	if _, p, ok := req.Records[0].Prefix(); !ok || !local.Contains(p.Addr()) {
		return netip.Prefix{}, false // "EID ... not locally configured!"
	}
	_, src, ok := req.SourceEID.InstanceIP()
	if !ok || !cached.Contains(src) {
		return netip.Prefix{}, false
	}
	return cached, true
}

// After a database change the ETR sends each ITR that asked an SMR with the
// changed prefix as Source-EID and the ITR's own EID (learned from its
// Map-Request) as record, at port 4342 whatever port the reply went to: OOR
// accepts it, and lispd's ITR does too.
func TestSMRSentAfterChange(t *testing.T) {
	e, out, clk, cfg := site1ETR(t, nil)
	oor := netip.MustParseAddrPort("10.99.0.22:61000") // ephemeral request port
	plain := netip.MustParseAddrPort("10.99.0.33:4342")
	own := netip.MustParseAddrPort("10.99.0.44:4342")
	e.HandlePacket(ecmFrom(t, netip.MustParseAddr("10.2.2.5"), oor, "10.1.1.7", 1), msAddr, netip.Addr{})
	e.HandlePacket(ecmFrom(t, netip.Addr{}, plain, "10.1.1.7", 2), msAddr, netip.Addr{})
	// A Source-EID inside this site is no EID of the requester's.
	e.HandlePacket(ecmFrom(t, netip.MustParseAddr("10.1.1.9"), own, "10.1.1.7", 3), msAddr, netip.Addr{})
	if msgs := out.take(); len(msgs) != 3 || msgs[0].to != oor {
		t.Fatalf("replies: %v", msgs)
	}

	clk.Advance(time.Millisecond)
	cfg.Database[0].RLOCs = []Locator{{Addr: rlocB, Priority: 1, Weight: 100}}
	if err := e.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	e.onTick(clk.Advance(time.Millisecond))
	reg := out.take()[0].msg.(*wire.MapRegister)
	e.HandlePacket(notifyFor(t, reg, msKey), msAddr, netip.Addr{})
	e.onTick(clk.Advance(time.Millisecond))
	msgs := out.take()
	if len(msgs) != 3 {
		t.Fatalf("%d SMRs, want 3", len(msgs))
	}
	records := map[netip.AddrPort]netip.Prefix{}
	for _, m := range msgs {
		req, ok := m.msg.(*wire.MapRequest)
		if !ok || !req.SMR || req.Nonce == 0 || len(req.Records) != 1 {
			t.Fatalf("SMR to %s = %+v", m.to, m.msg)
		}
		if m.to.Port() != ControlPort {
			t.Errorf("SMR to %s, want port %d", m.to, ControlPort)
		}
		if !req.SourceEID.Equal(wire.AddrFrom(pfxSite1.Addr())) {
			t.Errorf("Source-EID %s, want the changed prefix", req.SourceEID)
		}
		if len(req.ITRRLOCs) != 1 || !req.ITRRLOCs[0].Equal(wire.AddrFrom(rlocA)) {
			t.Errorf("ITR-RLOCs %v", req.ITRRLOCs)
		}
		_, p, _ := req.Records[0].Prefix()
		records[m.to] = p
	}
	host := netip.MustParsePrefix("10.2.2.5/32")
	want := map[netip.AddrPort]netip.Prefix{
		netip.AddrPortFrom(oor.Addr(), ControlPort): host,
		plain: pfxSite1, // no Source-EID: the RFC form
		own:   pfxSite1,
	}
	for to, p := range want {
		if records[to] != p {
			t.Errorf("SMR to %s names %s, want %s", to, records[to], p)
		}
	}

	// The bytes, nonce aside, and OOR's rules.
	var toOOR, toPlain sent
	for _, m := range msgs {
		switch m.to.Addr() {
		case oor.Addr():
			toOOR = m
		case plain.Addr():
			toPlain = m
		}
	}
	b := toOOR.b
	wantHex := "11000001" + hex.EncodeToString(b[4:12]) + "0001 0a010100" + "0001 c0000201" + "00 20 0001 0a020205"
	if got, w := hex.EncodeToString(b), strings.ReplaceAll(wantHex, " ", ""); got != w {
		t.Errorf("SMR = %s\nwant  %s", got, w)
	}
	req := toOOR.msg.(*wire.MapRequest)
	if p, ok := oorAccepts(req, pfxSite2, pfxSite1); !ok || p != pfxSite1 {
		t.Error("OOR would drop the SMR")
	}
	// Without the ITR's EID the SMR has the RFC form, which OOR drops.
	if _, ok := oorAccepts(toPlain.msg.(*wire.MapRequest), pfxSite2, pfxSite1); ok {
		t.Error("oorAccepts accepts the RFC form")
	}

	// lispd's ITR at OOR's site reads it too.
	i, iout, _ := newTestITR(t, nil)
	insert(t, i.Cache(), &mapcache.Entry{Prefix: pfxSite1, RLOCs: rlocs("192.0.2.1")})
	i.SetLocalEIDs(localIn(pfxSite2))
	i.HandlePacket(b, netip.AddrPortFrom(rlocA, ControlPort), netip.Addr{})
	if p := smrInvoked(t, i, iout); p != pfxSite1 {
		t.Errorf("lispd's ITR asked for %s", p)
	}
}

// SolicitITRs sends SMRs for the changed prefixes of the target's instance
// to the given RLOCs at 4342, after the holdoff, deduplicated, within the
// SMR rate limit; SolicitITRsNow skips the holdoff.
func TestSMRSolicitITRs(t *testing.T) {
	e, out, clk := newTestETR(t, func(c *ETRConfig) { c.SMRRate = 3 })
	e.onTick(clk.Now())
	reg := out.take()[0].msg.(*wire.MapRegister)
	e.HandlePacket(notifyFor(t, reg, msKey), msAddr, netip.Addr{})
	clk.Advance(time.Second) // refills the limiter

	t1 := SMRTarget{RLOC: netip.MustParseAddr("198.51.100.1"), EID: netip.MustParseAddr("10.2.2.5")}
	t2 := SMRTarget{RLOC: netip.MustParseAddr("198.51.100.2")}
	t3 := SMRTarget{RLOC: netip.MustParseAddr("198.51.100.3"), InstanceID: 7}
	t4 := SMRTarget{RLOC: netip.MustParseAddr("198.51.100.4")}
	bad := SMRTarget{RLOC: netip.IPv4Unspecified()}
	if n := e.SolicitITRs([]SMRTarget{t1, t2, t3, t4, bad}, nil); n != 4 {
		t.Fatalf("queued %d SMRs, want 4 (one per target, its instance's prefix)", n)
	}
	if n := e.SolicitITRs([]SMRTarget{t1, t2}, []dataplane.EIDPrefix{{Prefix: netip.MustParsePrefix("10.1.0.0/16")}}); n != 0 {
		t.Errorf("queued %d duplicates", n)
	}
	e.onTick(clk.Advance(time.Second))
	if got := out.take(); len(got) != 0 {
		t.Fatalf("%d SMRs before the holdoff", len(got))
	}
	e.onTick(clk.Advance(time.Second))
	msgs := out.take()
	if len(msgs) != 3 {
		t.Fatalf("%d SMRs, want 3 (rate 3/s)", len(msgs))
	}
	cs := e.Counters()
	if counter(cs, "smrs_sent") != 3 || counter(cs, "smrs_rate_limited") != 1 {
		t.Errorf("smrs_sent %d, smrs_rate_limited %d", counter(cs, "smrs_sent"), counter(cs, "smrs_rate_limited"))
	}
	for _, m := range msgs {
		req := m.msg.(*wire.MapRequest)
		iid, p, _ := req.Records[0].Prefix()
		switch m.to {
		case netip.AddrPortFrom(t1.RLOC, ControlPort):
			if iid != 0 || p != netip.MustParsePrefix("10.2.2.5/32") {
				t.Errorf("SMR to t1 names [%d]%s", iid, p)
			}
		case netip.AddrPortFrom(t2.RLOC, ControlPort):
			if iid != 0 || p != netip.MustParsePrefix("10.1.0.0/16") {
				t.Errorf("SMR to t2 names [%d]%s", iid, p)
			}
		case netip.AddrPortFrom(t3.RLOC, ControlPort):
			if iid != 7 || p != netip.MustParsePrefix("10.1.0.0/16") || !req.SourceEID.Equal(wire.IIDAddr(7, p.Addr())) {
				t.Errorf("SMR to t3 names [%d]%s from %s", iid, p, req.SourceEID)
			}
		default:
			t.Errorf("SMR to %s", m.to)
		}
	}

	// SolicitITRsNow: at the next tick.
	if n := e.SolicitITRsNow([]SMRTarget{t2}, nil); n != 1 {
		t.Fatalf("queued %d", n)
	}
	e.onTick(clk.Advance(time.Second))
	if msgs := out.take(); len(msgs) != 1 || msgs[0].to != netip.AddrPortFrom(t2.RLOC, ControlPort) {
		t.Errorf("SolicitITRsNow sent %v", msgs)
	}
}
