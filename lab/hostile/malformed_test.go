//go:build linux

package hostile

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// Case 1: malformed, truncated and garbage control datagrams at a
// Map-Server and at an xTR (and garbage at the xTR's data port). Nothing
// crashes, nothing is accepted, the malformed counters move, the warnings
// are rate-limited, and a legitimate Map-Request is answered afterwards.

const (
	malCase      = 1
	malSiteKey   = "hostile-malformed-site-key"
	malFlips     = 300
	malRandom    = 200
	malMaxLogged = 200 // log lines an attack of ~1000 datagrams may cause
)

var (
	malSubnet   = netip.MustParsePrefix("127.66.1.0/24")
	malLegitEID = netip.MustParsePrefix("198.19.1.0/24") // registered by a peer
	malXTREID   = netip.MustParsePrefix("198.19.2.0/24") // the xTR's own
)

func TestMalformed(t *testing.T) {
	t.Parallel()
	msAddr := ap(malCase, 1, ControlPort)
	ms := startLispd(t, "map-server", func(sock string) string {
		return msConfig(sock, msAddr, "", site("hostile", malSiteKey, "198.19.0.0/16", ""))
	})
	etr := listenPeer(t, ap(malCase, 20, 0))
	legitReg := registerMsg(t, malSiteKey, 1, malLegitEID, addr(malCase, 20))
	register(t, etr, msAddr, legitReg)

	t.Run("map-server", func(t *testing.T) {
		itr := listenPeer(t, ap(malCase, 21, 0))
		req, err := MapRequestECM(itr.Addr(), malLegitEID.Addr().Next(), 7)
		if err != nil {
			t.Fatal(err)
		}
		direct, err := MapRequest(itr.Addr().Addr(), malLegitEID.Addr().Next(), 8, false)
		if err != nil {
			t.Fatal(err)
		}
		ack := wire.MapNotifyAck{Nonce: 9, AlgorithmID: wire.AlgHMACSHA256128, Records: []wire.EIDRecord{Record(malLegitEID, addr(malCase, 20))}}
		ackb, err := ack.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := wire.Sign(ackb, []byte(malSiteKey)); err != nil {
			t.Fatal(err)
		}
		valid := [][]byte{legitReg, registerMsg(t, malSiteKey, 2, malLegitEID, addr(malCase, 20), addr(malCase, 22)), req, direct, ackb}
		attack := containedMutations(t, valid, 1)
		truncs := 0
		for _, v := range valid {
			truncs += len(v)
		}

		before := counters(t, ms)
		regsBefore := registrations(t, ms)
		logBefore := strings.Count(ms.Logs(), "\n")
		attacker := listenPeer(t, ap(malCase, 66, 0))
		sendPaced(t, ms, attacker, msAddr, attack)
		after := counters(t, ms)

		if !ms.Alive() {
			t.Fatal("the Map-Server died under malformed input")
		}
		malformed := sumPrefix(after, "mapserver_malformed_") - sumPrefix(before, "mapserver_malformed_")
		t.Logf("%d datagrams sent (%d truncations); mapserver_malformed_* +%d, register_auth_failure +%d",
			len(attack), truncs, malformed, after["mapserver_register_auth_failure"]-before["mapserver_register_auth_failure"])
		if malformed < uint64(truncs) {
			t.Errorf("mapserver_malformed_* moved by %d, want at least %d (every truncation of a message the Map-Server parses is malformed)", malformed, truncs)
		}
		if d := after["mapserver_register_ok"] - before["mapserver_register_ok"]; d != 0 {
			t.Errorf("mapserver_register_ok moved by %d under attack: a mutated Map-Register was accepted", d)
		}
		if regs := registrations(t, ms); !slices.Equal(regs, regsBefore) {
			t.Errorf("registrations changed under attack:\nbefore %v\nafter  %v", regsBefore, regs)
		}
		if n := strings.Count(ms.Logs(), "\n") - logBefore; n > malMaxLogged {
			t.Errorf("the attack made the Map-Server log %d lines: its warnings about remote input are not rate-limited", n)
		} else {
			t.Logf("the Map-Server logged %d lines about it", n)
		}
		r := lookup(t, itr, msAddr, malLegitEID.Addr().Next(), 3*time.Second)
		if got, ok := rlocsOf(r, malLegitEID.Addr().Next()); !ok || !slices.Equal(got, []netip.Addr{addr(malCase, 20)}) {
			t.Fatalf("after the attack a legitimate Map-Request got %v, want the registered RLOC %s", got, addr(malCase, 20))
		}
	})

	t.Run("xtr", func(t *testing.T) {
		requireTUN(t)
		xAddr := ap(malCase, 2, ControlPort)
		xtr := startLispd(t, "xtr", func(sock string) string {
			return fmt.Sprintf(`# lab/hostile: xTR under attack
[daemon]
roles = ["itr", "etr"]
api-socket = %q
log-level = "info"

[control]
listen = [%q]

[dataplane]
rlocs = [%q]
data-listen = [%q]
tun-name = "hstmal0"
# The EID prefix on the TUN: whatever is decapsulated stays on this host.
tun-addresses = ["198.19.2.1/24"]

[itr]
map-resolvers = [%q]

[etr]
[[etr.map-server]]
address = %q
authentication-key = %q
[[etr.eid]]
prefix = %q

[failover]
enabled = false
`, sock, xAddr.String(), xAddr.Addr().String(), ap(malCase, 2, DataPort).String(), msAddr.String(), msAddr.String(), malSiteKey, malXTREID.String())
		})
		// Registered with the Map-Server: the xTR is up.
		waitCounter(t, xtr, "etr_map_notifies_received", 1, 10*time.Second)

		itr := listenPeer(t, ap(malCase, 23, 0))
		eid := malXTREID.Addr().Next().Next()
		direct, err := MapRequest(itr.Addr().Addr(), eid, 11, false)
		if err != nil {
			t.Fatal(err)
		}
		probe, err := MapRequest(itr.Addr().Addr(), eid, 12, true)
		if err != nil {
			t.Fatal(err)
		}
		reply, err := MapReply(13, Record(netip.MustParsePrefix("198.19.9.0/24"), addr(malCase, 24)))
		if err != nil {
			t.Fatal(err)
		}
		notify := wire.MapNotify{Nonce: 14, AlgorithmID: wire.AlgHMACSHA256128, Records: []wire.EIDRecord{Record(malXTREID, addr(malCase, 2))}}
		notifyb, err := notify.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := wire.Sign(notifyb, []byte(malSiteKey)); err != nil {
			t.Fatal(err)
		}
		smr := wire.MapRequest{SMR: true, Nonce: 15, ITRRLOCs: []wire.Address{wire.AddrFrom(itr.Addr().Addr())},
			Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix("198.19.9.0/24"))}}
		smrb, err := smr.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		valid := [][]byte{direct, probe, reply, notifyb, smrb}
		attack := containedMutations(t, valid, 2)
		truncs := 0
		for _, v := range valid {
			truncs += len(v)
		}

		data, err := DataPacket(wire.DataHeader{N: true, I: true, Nonce: 0x123456},
			netip.AddrPortFrom(netip.MustParseAddr("198.18.1.5"), 5000), netip.AddrPortFrom(eid, 9), []byte("hostile"))
		if err != nil {
			t.Fatal(err)
		}
		dataAttack := Mutations([][]byte{data}, 100, 100, 3)

		before := counters(t, xtr)
		logBefore := strings.Count(xtr.Logs(), "\n")
		attacker := listenPeer(t, ap(malCase, 67, 0))
		sendPaced(t, xtr, attacker, xAddr, attack)
		for _, b := range dataAttack {
			send(t, attacker, b, ap(malCase, 2, DataPort))
		}
		waitCounter(t, xtr, "dataplane_conn4_rx_packets", before["dataplane_conn4_rx_packets"]+uint64(len(dataAttack)), 5*time.Second)
		after := counters(t, xtr)

		if !xtr.Alive() {
			t.Fatal("the xTR died under malformed input")
		}
		malformed := after["itr_malformed"] + after["etr_malformed"] - before["itr_malformed"] - before["etr_malformed"]
		badData := sumPrefix(after, "dataplane_decap_drop_") - sumPrefix(before, "dataplane_decap_drop_")
		t.Logf("%d control datagrams sent (%d truncations): itr_malformed+etr_malformed +%d; %d data datagrams: dataplane_decap_drop_* +%d",
			len(attack), truncs, malformed, len(dataAttack), badData)
		if malformed < uint64(truncs) {
			t.Errorf("itr_malformed+etr_malformed moved by %d, want at least %d (every truncation is malformed)", malformed, truncs)
		}
		if d := after["etr_map_notifies_received"] - before["etr_map_notifies_received"]; d != 0 {
			t.Errorf("etr_map_notifies_received moved by %d: a mutated Map-Notify passed authentication", d)
		}
		if d := after["itr_map_replies_accepted"] - before["itr_map_replies_accepted"]; d != 0 {
			t.Errorf("itr_map_replies_accepted moved by %d: a Map-Reply nobody asked for was accepted", d)
		}
		if badData < uint64(dataTruncations(data)) {
			t.Errorf("dataplane_decap_drop_* moved by %d, want at least %d (the truncations of the LISP header and inner IP header)", badData, dataTruncations(data))
		}
		if n := strings.Count(xtr.Logs(), "\n") - logBefore; n > malMaxLogged {
			t.Errorf("the attack made the xTR log %d lines: its warnings about remote input are not rate-limited", n)
		} else {
			t.Logf("the xTR logged %d lines about it", n)
		}
		itr.Drain()
		req, err := MapRequest(itr.Addr().Addr(), eid, rand.Uint64(), false)
		if err != nil {
			t.Fatal(err)
		}
		nonce, _ := NonceOf(req)
		send(t, itr, req, xAddr)
		b, _, err := itr.Recv(3*time.Second, func(b []byte, _ netip.AddrPort) bool {
			n, ok := NonceOf(b)
			return ok && n == nonce && IsType(b, wire.TypeMapReply)
		})
		if err != nil {
			t.Fatalf("after the attack the ETR did not answer a legitimate Map-Request: %v", err)
		}
		if got, ok := rlocsOf(ParseMapReply(b), eid); !ok || !slices.Equal(got, []netip.Addr{xAddr.Addr()}) {
			t.Fatalf("after the attack the ETR answered %v, want its RLOC %s", got, xAddr.Addr())
		}
	})
}

// dataTruncations is how many truncations of the data packet b
// (LISP header and IPv4/UDP inner packet) leave no whole inner IP header:
// each must be dropped as a bad header or a bad inner packet.
func dataTruncations(b []byte) int { return min(len(b), wire.DataHeaderLen+20) }

// containedMutations returns the Mutations of valid that cannot make
// lispd send outside the case's subnet (Contained).
func containedMutations(t *testing.T, valid [][]byte, seed uint64) [][]byte {
	t.Helper()
	var out [][]byte
	dropped := 0
	for _, b := range Mutations(valid, malFlips, malRandom, seed) {
		if Contained(b, malSubnet) {
			out = append(out, b)
		} else {
			dropped++
		}
	}
	t.Logf("%d mutations (%d left out: they would have lispd answer outside %s)", len(out), dropped, malSubnet)
	return out
}
