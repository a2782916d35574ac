package xtr

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// TestETRWithdrawsLocator: a withdrawn locator is registered at once with
// priority 255 and the R bit clear, in its place (locators sorted by
// address), answered so to RLOC-probes, 0 in the Locator-Status-Bits, and
// restored the same way.
func TestETRWithdrawsLocator(t *testing.T) {
	e, out, clk := newTestETR(t, func(c *ETRConfig) {
		// Listed out of order: the ETR sorts them by address.
		c.Database[0].RLOCs = []Locator{{Addr: rlocB, Priority: 1, Weight: 40}, {Addr: rlocA, Priority: 1, Weight: 60}}
	})
	e.onTick(clk.Now())
	first := out.take()[0].msg.(*wire.MapRegister)
	locs := first.Records[0].Locators
	if _, a, _ := locs[0].Address.InstanceIP(); a != rlocA {
		t.Fatalf("first locator %v, want %v (sorted by address)", a, rlocA)
	}
	if lsb, ok := e.localLSB(0, netip.MustParseAddr("10.1.2.3")); !ok || lsb != 0b11 {
		t.Fatalf("LSBs %b, %v", lsb, ok)
	}

	changed, err := e.SetLocatorUsable(rlocB, false, "member dead")
	if err != nil || !changed {
		t.Fatalf("withdraw: %v %v", changed, err)
	}
	if again, _ := e.SetLocatorUsable(rlocB, false, "member dead"); again {
		t.Error("withdrawing twice changed something")
	}
	e.onTick(clk.Now())
	msgs := out.take()
	if len(msgs) != 1 {
		t.Fatalf("%d datagrams after the withdrawal, want a Map-Register at once", len(msgs))
	}
	reg := msgs[0].msg.(*wire.MapRegister)
	b := reg.Records[0].Locators[1]
	if b.Priority != 255 || b.MPriority != 255 || b.Reachable || b.Weight != 40 {
		t.Errorf("withdrawn locator registered as %+v", b)
	}
	if a := reg.Records[0].Locators[0]; a.Priority != 1 || !a.Reachable {
		t.Errorf("other locator registered as %+v", a)
	}
	if lsb, _ := e.localLSB(0, netip.MustParseAddr("10.1.2.3")); lsb != 0b01 {
		t.Errorf("LSBs %b after the withdrawal, want 01", lsb)
	}
	if w := e.Withdrawn(); len(w) != 1 || w[0].Addr != rlocB || w[0].Reason != "member dead" {
		t.Errorf("Withdrawn() = %+v", w)
	}
	// A probe of the withdrawn locator is answered with it withdrawn.
	probe := wire.MapRequest{Probe: true, Nonce: 5, ITRRLOCs: []wire.Address{wire.AddrFrom(rlocC)},
		Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix("10.1.0.0/16"))}}
	pb, _ := probe.AppendBinary(nil)
	e.HandlePacket(pb, netip.MustParseAddrPort("192.0.2.3:4342"), rlocB)
	rep := out.take()[0].msg.(*wire.MapReply)
	if l := rep.Records[0].Locators[1]; !l.Probed || l.Priority != 255 || l.Reachable {
		t.Errorf("probe reply locator %+v", l)
	}
	if !withdrawnIn(rep, rlocB) || withdrawnIn(rep, rlocA) {
		t.Error("withdrawnIn disagrees with the reply")
	}

	// A reload keeps the withdrawal.
	cfg := testETRConfig(clk)
	if err := e.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if lsb, _ := e.localLSB(0, netip.MustParseAddr("10.1.2.3")); lsb != 0b01 {
		t.Errorf("LSBs %b after a reload", lsb)
	}
	// Restored.
	if changed, err := e.SetLocatorUsable(rlocB, true, ""); err != nil || !changed {
		t.Fatalf("restore: %v %v", changed, err)
	}
	if lsb, _ := e.localLSB(0, netip.MustParseAddr("10.1.2.3")); lsb != 0b11 {
		t.Errorf("LSBs %b after restoring", lsb)
	}
	if len(e.Withdrawn()) != 0 {
		t.Error("still withdrawn")
	}
	// A locator in no mapping changes nothing.
	if changed, err := e.SetLocatorUsable(netip.MustParseAddr("198.51.100.1"), false, "x"); err != nil || changed {
		t.Errorf("foreign locator: %v %v", changed, err)
	}
	if got := e.DatabaseLocators(); len(got) != 2 || got[0] != rlocA || got[1] != rlocB {
		t.Errorf("DatabaseLocators() = %v", got)
	}
}

// TestETRFollowsMergedRegistration: with FollowMapServer, an unsolicited
// Map-Notify whose merged record shows another xTR's locator withdrawn
// makes the ETR answer and signal it withdrawn, without registering it so;
// a later one showing it usable restores it. Its own locator is never
// learned from the Map-Server.
func TestETRFollowsMergedRegistration(t *testing.T) {
	for _, follow := range []bool{false, true} {
		e, out, clk := newTestETR(t, func(c *ETRConfig) { c.FollowMapServer = follow })
		e.onTick(clk.Now())
		out.take()
		notify := func(nonce uint64, aDown, bDown bool) {
			rec := wire.NewEIDRecord(0, netip.MustParsePrefix("10.1.0.0/16"))
			rec.RecordTTL = 1440
			a := wire.Locator{Priority: 1, Weight: 60, Reachable: true, Address: wire.AddrFrom(rlocA)}
			b := wire.Locator{Priority: 1, Weight: 40, Reachable: true, Address: wire.AddrFrom(rlocB)}
			if aDown {
				withdraw(&a)
			}
			if bDown {
				withdraw(&b)
			}
			rec.Locators = []wire.Locator{a, b}
			n := &wire.MapRegister{XTRIDPresent: true, Nonce: nonce, AlgorithmID: wire.AlgHMACSHA256128, Records: []wire.EIDRecord{rec}}
			e.HandlePacket(notifyFor(t, n, msKey), msAddr, netip.Addr{})
		}
		src := netip.MustParseAddr("10.1.2.3")
		notify(1001, true, true)
		lsb, _ := e.localLSB(0, src)
		w := e.Withdrawn()
		if !follow {
			if lsb != 0b11 || len(w) != 0 {
				t.Errorf("not following: LSBs %b, withdrawn %+v", lsb, w)
			}
			continue
		}
		if lsb != 0b01 || len(w) != 1 || w[0].Addr != rlocB || w[0].Reason != learnedReason {
			t.Fatalf("LSBs %b, withdrawn %+v; want B only (A is this xTR's own)", lsb, w)
		}
		// Answered withdrawn, registered as configured.
		e.HandlePacket(ecmRequest(t, "10.1.2.3", netip.MustParseAddrPort("192.0.2.50:50000"), 99, false), msAddr, rlocA)
		var rep *wire.MapReply
		for _, m := range out.take() {
			if r, ok := m.msg.(*wire.MapReply); ok {
				rep = r
			}
		}
		if rep == nil || rep.Records[0].Locators[1].Priority != 255 {
			t.Fatalf("Map-Reply %+v", rep)
		}
		clk.Advance(time.Hour)
		e.onTick(clk.Now())
		for _, m := range out.take() {
			if reg, ok := m.msg.(*wire.MapRegister); ok && reg.Records[0].Locators[1].Priority != 1 {
				t.Errorf("learned withdrawal registered: %+v", reg.Records[0].Locators[1])
			}
		}
		notify(1002, false, false)
		if lsb, _ := e.localLSB(0, src); lsb != 0b11 || len(e.Withdrawn()) != 0 {
			t.Errorf("after the all-clear: LSBs %b, withdrawn %+v", lsb, e.Withdrawn())
		}
	}
}
