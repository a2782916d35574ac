package topo

import (
	"errors"
	"net/netip"
	"testing"
)

func TestPaperTopology(t *testing.T) {
	for _, test := range []Test{Test1, Test2} {
		tp, err := Paper(test, netip.MustParsePrefix("127.0.10.0/24"))
		if err != nil {
			t.Fatal(err)
		}
		// 30 destinations, 20 pinged by USR1 and 10 by USR2, each its own
		// prefix with a single RLOC (one remote xTR).
		per := map[string]int{}
		seen := map[netip.Prefix]bool{}
		for i, f := range tp.Flows {
			if int(f.ID) != i+1 {
				t.Errorf("flow %d has ID %d", i, f.ID)
			}
			per[f.Host]++
			p, remote, ok := tp.DestPrefix(f.Dst)
			if !ok || remote == "" || seen[p] {
				t.Errorf("flow %v: prefix %v remote %q ok %v (duplicate %v)", f, p, remote, ok, seen[p])
			}
			seen[p] = true
			if got := tp.FlowsTo(p); len(got) != 1 || got[0] != f {
				t.Errorf("FlowsTo(%v) = %v", p, got)
			}
			h, _ := tp.Host(f.Host)
			if f.Src != h.Addr || !tp.SitePrefix.Contains(f.Src) {
				t.Errorf("flow %v source %v", f, f.Src)
			}
		}
		if per[USR1] != 20 || per[USR2] != 10 || len(seen) != Destinations {
			t.Errorf("%v: flows per host %v, %d prefixes", test, per, len(seen))
		}
		if tp.XTRs[0].Weight != tp.XTRs[1].Weight {
			t.Errorf("ingress weights %d:%d, want 50:50", tp.XTRs[0].Weight, tp.XTRs[1].Weight)
		}
		if tp.MapTTL.Minutes() != 10 {
			t.Errorf("map TTL %v", tp.MapTTL)
		}
		if tp.XTRs[0].RLOC != netip.MustParseAddr("127.0.10.11") || tp.MSMR != netip.MustParseAddr("127.0.10.1") {
			t.Errorf("RLOC plan: %v %v", tp.XTRs[0].RLOC, tp.MSMR)
		}
		switch test {
		case Test1:
			if tp.GatewayOf(USR1) != ITR1 || tp.GatewayOf(USR2) != ITR1 || len(tp.Groups) != 1 {
				t.Errorf("test 1 gateways %s %s", tp.GatewayOf(USR1), tp.GatewayOf(USR2))
			}
		case Test2:
			if tp.GatewayOf(USR1) != ITR1 || tp.GatewayOf(USR2) != ITR2 || len(tp.Groups) != 2 {
				t.Errorf("test 2 gateways %s %s", tp.GatewayOf(USR1), tp.GatewayOf(USR2))
			}
		}
		for _, g := range tp.Groups {
			if g.Priority(g.Master) <= g.Priority(g.Backup) {
				t.Errorf("group %d priorities", g.VRID)
			}
		}
	}
}

func TestPaperErrors(t *testing.T) {
	for _, c := range []struct {
		test Test
		net  string
	}{{3, "127.0.10.0/24"}, {1, "127.0.10.0/28"}, {1, "2001:db8::/64"}} {
		if _, err := Paper(c.test, netip.MustParsePrefix(c.net)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Paper(%v, %s) = %v", c.test, c.net, err)
		}
	}
	if _, err := Paper(Test1, netip.Prefix{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero prefix: %v", err)
	}
}
