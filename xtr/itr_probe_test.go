package xtr

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

// probeReply answers a probe request.
func probeReply(t *testing.T, req *wire.MapRequest) []byte {
	t.Helper()
	m := wire.MapReply{Probe: true, Nonce: req.Nonce, Records: []wire.EIDRecord{wire.NewEIDRecord(0, netip.MustParsePrefix("10.2.0.0/16"))}}
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// probes returns the probes among msgs by destination.
func probes(t *testing.T, msgs []sent) map[netip.Addr]*wire.MapRequest {
	t.Helper()
	out := map[netip.Addr]*wire.MapRequest{}
	for _, m := range msgs {
		req, ok := m.msg.(*wire.MapRequest)
		if !ok || !req.Probe {
			t.Fatalf("sent %T (probe=%v) to %s", m.msg, ok && req.Probe, m.to)
		}
		if m.to.Port() != ControlPort {
			t.Errorf("probe to port %d", m.to.Port())
		}
		out[m.to.Addr()] = req
	}
	return out
}

func TestRLOCProbingMarksDownAndUp(t *testing.T) {
	i, out, clk := newTestITR(t, func(c *ITRConfig) {
		c.RLOCProbeInterval = 10 * time.Second
		c.RLOCProbeMisses = 2
	})
	c := i.Cache()
	e := insert(t, c, &mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), TTL: time.Hour, RLOCs: []mapcache.RLOC{
		{Addr: rlocB, Priority: 1, Weight: 100, Reachable: true},
		{Addr: rlocC, Priority: 2, Weight: 100, Reachable: true},
	}})
	idle := insert(t, c, &mapcache.Entry{Prefix: netip.MustParsePrefix("10.9.0.0/16"), TTL: time.Hour, RLOCs: rlocs("192.0.2.9")})
	pick := func() netip.Addr {
		k, ok := chooseRLOC(e, 1, families{v4: true})
		if !ok {
			t.Fatal("no RLOC")
		}
		return e.RLOCs[k].Addr
	}
	round := func() map[netip.Addr]*wire.MapRequest {
		e.Touch(clk.Now().UnixNano())
		i.onTick(clk.Now())
		p := probes(t, out.take())
		clk.Advance(10 * time.Second)
		return p
	}
	// Round 1: both RLOCs of the used entry are probed, not the idle one's.
	p := round()
	if len(p) != 2 || p[rlocB] == nil || p[rlocC] == nil {
		t.Fatalf("probed %v, want %s and %s", p, rlocB, rlocC)
	}
	if iid, pfx, _ := p[rlocB].Records[0].Prefix(); iid != 0 || pfx != e.Prefix {
		t.Errorf("probe asks for %s", pfx)
	}
	// Only C answers, twice in a row: B goes down after two misses.
	i.HandlePacket(probeReply(t, p[rlocC]), netip.AddrPortFrom(rlocC, 4342), netip.Addr{})
	p = round()
	if pick() != rlocB {
		t.Fatal("B marked down after a single missed probe")
	}
	i.HandlePacket(probeReply(t, p[rlocC]), netip.AddrPortFrom(rlocC, 4342), netip.Addr{})
	p = round()
	if pick() != rlocC {
		t.Fatal("traffic did not move to C after B missed two probes")
	}
	if e.Reachable(0) || !e.Reachable(1) || !idle.Reachable(0) {
		t.Errorf("reachability B=%v C=%v idle=%v", e.Reachable(0), e.Reachable(1), idle.Reachable(0))
	}
	cs := i.Counters()
	if counter(cs, "rloc_down") != 1 || counter(cs, "probe_replies") != 2 || counter(cs, "probes_sent") != 6 {
		t.Errorf("down %d replies %d sent %d", counter(cs, "rloc_down"), counter(cs, "probe_replies"), counter(cs, "probes_sent"))
	}
	// A new mapping with B starts with B down too.
	e2 := &mapcache.Entry{Prefix: netip.MustParsePrefix("10.3.0.0/16"), TTL: time.Hour, RLOCs: rlocs("192.0.2.2")}
	insert(t, c, e2)
	i.probeKnownDown([]*mapcache.Entry{e2})
	if e2.Reachable(0) {
		t.Error("a new entry ignored B's probe state")
	}
	// B answers again: up at once, traffic back.
	i.HandlePacket(probeReply(t, p[rlocB]), netip.AddrPortFrom(rlocB, 4342), netip.Addr{})
	if pick() != rlocB || !e2.Reachable(0) {
		t.Fatal("B's reply did not bring it back")
	}
	if counter(i.Counters(), "rloc_up") != 1 {
		t.Error("rloc_up not counted")
	}
	// A probe reply with an unknown nonce is ignored.
	i.HandlePacket(probeReply(t, &wire.MapRequest{Nonce: 12345}), netip.AddrPortFrom(rlocB, 4342), netip.Addr{})
	if counter(i.Counters(), "probe_replies_unsolicited") != 1 {
		t.Error("unsolicited probe reply not counted")
	}
}

func TestProbingOffByDefault(t *testing.T) {
	i, out, clk := newTestITR(t, nil)
	e := insert(t, i.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: rlocs("192.0.2.2")})
	e.Touch(clk.Now().UnixNano())
	for range 3 {
		i.onTick(clk.Advance(time.Minute))
	}
	if n := len(out.take()); n != 0 {
		t.Errorf("%d datagrams with probing off", n)
	}
}

// TestProbeReplyWithdrawnLocator: an xTR that is up but cannot serve its
// RLOC answers probes with its own locator at priority 255 (or R clear):
// the prober stops using the RLOC at once, and uses it again when a later
// reply claims it.
func TestProbeReplyWithdrawnLocator(t *testing.T) {
	i, out, clk := newTestITR(t, func(c *ITRConfig) { c.RLOCProbeInterval = 10 * time.Second; c.RLOCProbeMisses = 100 })
	e := insert(t, i.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), TTL: time.Hour, RLOCs: []mapcache.RLOC{
		{Addr: rlocB, Priority: 1, Weight: 50, Reachable: true},
		{Addr: rlocC, Priority: 1, Weight: 50, Reachable: true},
	}})
	reply := func(req *wire.MapRequest, withdrawB bool, rbit bool) []byte {
		rec := wire.NewEIDRecord(0, e.Prefix)
		b := wire.Locator{Priority: 1, Weight: 50, Reachable: true, Address: wire.AddrFrom(rlocB)}
		if withdrawB {
			if rbit {
				b.Reachable = false
			} else {
				b.Priority = 255
			}
		}
		rec.Locators = []wire.Locator{b, {Priority: 1, Weight: 50, Reachable: true, Address: wire.AddrFrom(rlocC)}}
		m := wire.MapReply{Probe: true, Nonce: req.Nonce, Records: []wire.EIDRecord{rec}}
		out, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, rbit := range []bool{false, true} {
		e.Touch(clk.Now().UnixNano())
		i.onTick(clk.Now())
		p := probes(t, out.take())
		clk.Advance(10 * time.Second)
		i.HandlePacket(reply(p[rlocB], true, rbit), netip.AddrPortFrom(rlocB, 4342), netip.Addr{})
		if e.Reachable(0) || !e.Reachable(1) {
			t.Fatalf("rbit=%v: after a withdrawn reply B=%v C=%v", rbit, e.Reachable(0), e.Reachable(1))
		}
		e.Touch(clk.Now().UnixNano())
		i.onTick(clk.Now())
		p = probes(t, out.take())
		clk.Advance(10 * time.Second)
		i.HandlePacket(reply(p[rlocB], false, false), netip.AddrPortFrom(rlocB, 4342), netip.Addr{})
		if !e.Reachable(0) {
			t.Fatalf("rbit=%v: B not back after a reply claiming it", rbit)
		}
	}
	if counter(i.Counters(), "rloc_down") != 2 || counter(i.Counters(), "rloc_up") != 2 {
		t.Errorf("down %d up %d", counter(i.Counters(), "rloc_down"), counter(i.Counters(), "rloc_up"))
	}
}
