//go:build linux

package hostile

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// Case 3: registration replays and renumbering. A byte-identical copy of a
// Map-Register that a later one of the same xTR superseded is refused
// (mapserver_register_replays) and the current mapping stays, while an
// identical retransmission of the latest one is still accepted; an ETR
// without xTR-ID that registers from a new address replaces its old
// registration at once.

const (
	replayCase = 3
	replayKey  = "hostile-replay-site-key"
)

func TestReplayAndRenumbering(t *testing.T) {
	t.Parallel()
	msAddr := ap(replayCase, 1, ControlPort)
	ms := startLispd(t, "map-server", func(sock string) string {
		return msConfig(sock, msAddr, "", site("replay", replayKey, "198.19.0.0/16", ""))
	})
	itr := listenPeer(t, ap(replayCase, 21, 0))
	attacker := listenPeer(t, ap(replayCase, 66, 0))

	t.Run("replayed-register", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			xtrID  bool
			prefix netip.Prefix
			etr    byte // host of the ETR
		}{
			{"with-xtr-id", true, netip.MustParsePrefix("198.19.3.0/24"), 20},
			{"without-xtr-id", false, netip.MustParsePrefix("198.19.4.0/24"), 22},
		} {
			t.Run(tc.name, func(t *testing.T) {
				etr := listenPeer(t, ap(replayCase, tc.etr, 0))
				oldRLOC, newRLOC := addr(replayCase, 100+tc.etr), addr(replayCase, 150+tc.etr)
				build := func(rloc netip.Addr) []byte {
					m := wire.MapRegister{ProxyReply: true, WantMapNotify: true, Nonce: rand.Uint64(),
						Records: []wire.EIDRecord{Record(tc.prefix, rloc)}}
					if tc.xtrID {
						m.XTRIDPresent, m.XTRID, m.SiteID = true, wire.XTRID{0x66, 3, tc.etr}, 3
					}
					b, err := SignedRegister(m, replayKey)
					if err != nil {
						t.Fatal(err)
					}
					return b
				}
				old, cur := build(oldRLOC), build(newRLOC)
				register(t, etr, msAddr, old)
				register(t, etr, msAddr, cur)
				eid := tc.prefix.Addr().Next()
				assertServed(t, itr, msAddr, eid, newRLOC)

				// The copy, from the attacker's address and from the
				// ETR's own (a spoofed source): refused, not notified.
				before := counters(t, ms)
				attacker.Drain()
				etr.Drain()
				send(t, attacker, old, msAddr)
				send(t, etr, old, msAddr)
				waitCounter(t, ms, "mapserver_register_replays", before["mapserver_register_replays"]+2, 3*time.Second)
				nonce, _ := NonceOf(old)
				for _, p := range []*Peer{attacker, etr} {
					if _, _, err := p.Recv(50*time.Millisecond, func(b []byte, _ netip.AddrPort) bool {
						n, ok := NonceOf(b)
						return ok && n == nonce && IsType(b, wire.TypeMapNotify)
					}); err == nil {
						t.Errorf("the replayed Map-Register sent from %s was acknowledged with a Map-Notify", p.Addr())
					}
				}
				after := counters(t, ms)
				if d := after["mapserver_register_ok"] - before["mapserver_register_ok"]; d != 0 {
					t.Errorf("mapserver_register_ok moved by %d for the replays", d)
				}
				assertServed(t, itr, msAddr, eid, newRLOC)

				// A retransmission of the current register is no replay.
				register(t, etr, msAddr, cur)
				if got := counters(t, ms)["mapserver_register_replays"]; got != after["mapserver_register_replays"] {
					t.Errorf("a retransmission of the latest Map-Register was counted as a replay")
				}
				assertServed(t, itr, msAddr, eid, newRLOC)
			})
		}
		if !strings.Contains(ms.Logs(), "replay") {
			t.Errorf("the refused replays were not logged")
		}
	})

	t.Run("renumbered-etr", func(t *testing.T) {
		// An ETR without xTR-ID (as OOR) moves from .30 to .31.
		prefix := netip.MustParsePrefix("198.19.5.0/24")
		eid := prefix.Addr().Next()
		oldETR := listenPeer(t, ap(replayCase, 30, 0))
		newETR := listenPeer(t, ap(replayCase, 31, 0))
		register(t, oldETR, msAddr, registerMsg(t, replayKey, rand.Uint64(), prefix, oldETR.Addr().Addr()))
		assertServed(t, itr, msAddr, eid, oldETR.Addr().Addr())
		before := counters(t, ms)
		register(t, newETR, msAddr, registerMsg(t, replayKey, rand.Uint64(), prefix, newETR.Addr().Addr()))
		assertServed(t, itr, msAddr, eid, newETR.Addr().Addr())
		if d := counters(t, ms)["mapserver_registrations_replaced"] - before["mapserver_registrations_replaced"]; d != 1 {
			t.Errorf("mapserver_registrations_replaced moved by %d, want 1", d)
		}
		var regs []string
		for _, r := range registrations(t, ms) {
			if strings.HasPrefix(r, prefix.String()+" ") {
				regs = append(regs, r)
			}
		}
		if want := []string{prefix.String() + " " + newETR.Addr().Addr().String() + " [" + newETR.Addr().Addr().String() + "]"}; !slices.Equal(regs, want) {
			t.Errorf("registrations of %s: %v, want %v", prefix, regs, want)
		}
	})
}

// assertServed checks that the Map-Resolver at mr answers a Map-Request
// for eid with exactly the locator want.
func assertServed(t *testing.T, itr *Peer, mr netip.AddrPort, eid, want netip.Addr) {
	t.Helper()
	got, ok := rlocsOf(lookup(t, itr, mr, eid, 3*time.Second), eid)
	if !ok || !slices.Equal(got, []netip.Addr{want}) {
		t.Fatalf("Map-Request for %s answered with %v, want exactly %s", eid, got, want)
	}
}
