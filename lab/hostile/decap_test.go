//go:build linux

package hostile

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// Case 6: the ETR's trust in what it decapsulates. With etr.decap-filter =
// "on", LISP data packets from an outer source the ETR does not know, with
// an inner source in the site's own EID prefix, or with the K bits
// (LISP-crypto) set are dropped and counted (dataplane_decap_drop_*), and
// none reaches the site: the suite listens on the site's EID address on
// the TUN device and sees only what a known RLOC sent, and what an ITR
// sends once the ETR answered its Map-Request. With the filter off (a
// reload), unknown sources get in, and the other two drops still hold.

const (
	decapCase = 6
	decapTUN  = "hstdec0"
	decapN    = 20 // packets of each kind
	decapPort = 7777
	decapKey  = "hostile-decap-site-key"
)

var (
	decapSite   = netip.MustParsePrefix("198.19.6.0/24")
	decapHost   = netip.AddrPortFrom(netip.MustParseAddr("198.19.6.1"), decapPort) // on the TUN
	decapRemote = netip.AddrPortFrom(netip.MustParseAddr("198.18.6.5"), 5000)      // a remote site's host
)

func decapConfig(sock, filter string) string {
	return fmt.Sprintf(`# lab/hostile: an ETR with a decapsulation filter
[daemon]
roles = ["etr"]
api-socket = %q
log-level = "info"

[control]
listen = [%q]

[dataplane]
rlocs = [%q]
data-listen = [%q]
tun-name = %q
tun-addresses = ["198.19.6.1/24"]
# The remote site is behind the TUN too, so that the kernel's reverse-path
# filter takes what the ETR delivers from it.
tun-routes = ["198.18.6.0/24"]

[etr]
decap-filter = %q
decap-filter-allow = [%q]
[[etr.map-server]]
address = %q
authentication-key = %q
[[etr.eid]]
prefix = %q

[failover]
enabled = false
`, sock, ap(decapCase, 1, ControlPort).String(), addr(decapCase, 1).String(), ap(decapCase, 1, DataPort).String(), decapTUN,
		filter, netip.PrefixFrom(addr(decapCase, 20), 32).String(), ap(decapCase, 9, ControlPort).String(), decapKey, decapSite.String())
}

func TestDecapFilter(t *testing.T) {
	t.Parallel()
	requireTUN(t)
	listenPeer(t, ap(decapCase, 9, ControlPort)) // the Map-Server, silent
	etr := startLispd(t, "etr", func(sock string) string { return decapConfig(sock, "on") })
	site, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(decapHost))
	if err != nil {
		t.Fatalf("listening on the site's EID address on the TUN: %v", err)
	}
	defer site.Close()

	allowed := listenPeer(t, ap(decapCase, 20, 0)) // in decap-filter-allow
	stranger := listenPeer(t, ap(decapCase, 30, 0))
	itr := listenPeer(t, ap(decapCase, 21, 0)) // a remote ITR: asks first
	dataTo := ap(decapCase, 1, DataPort)

	// burst sends decapN packets tagged tag from p, with inner source
	// src and LISP header reserved bits (R, K, K) kk.
	burst := func(t *testing.T, p *Peer, tag string, src netip.AddrPort, kk uint8) {
		t.Helper()
		for i := range decapN {
			b, err := DataPacket(wire.DataHeader{N: true, I: true, Nonce: rand.Uint32() & 0xffffff, Reserved: kk}, src, decapHost, fmt.Appendf(nil, "%s %d", tag, i))
			if err != nil {
				t.Fatal(err)
			}
			send(t, p, b, dataTo)
		}
	}
	// expect checks that the counter moved by decapN, and that the site
	// received exactly decapN packets of each tag of want (none of the
	// other tags sent).
	expect := func(t *testing.T, before map[string]uint64, counter string, want ...string) {
		t.Helper()
		waitCounter(t, etr, counter, before[counter]+decapN, 3*time.Second)
		if len(want) == 0 {
			if d := counters(t, etr)["dataplane_decap_packets"] - before["dataplane_decap_packets"]; d != 0 {
				t.Errorf("dataplane_decap_packets moved by %d: dropped packets were delivered", d)
			}
		}
		got := receiveTags(t, site, len(want)*decapN)
		var wantTags []string
		for _, w := range want {
			for range decapN {
				wantTags = append(wantTags, w)
			}
		}
		if !slices.Equal(got, wantTags) {
			t.Errorf("the site received %v, want %d of each of %v", summarize(got), decapN, want)
		}
	}

	t.Run("filter-on", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			from    *Peer
			src     netip.AddrPort
			kk      uint8
			counter string
		}{
			{"unknown-rloc", stranger, decapRemote, 0, "dataplane_decap_drop_unknown_rloc"},
			{"not-yet-asked", itr, decapRemote, 0, "dataplane_decap_drop_unknown_rloc"},
			{"own-eid-source", allowed, netip.AddrPortFrom(netip.MustParseAddr("198.19.6.77"), 5000), 0, "dataplane_decap_drop_own_eid_source"},
			{"k-bits", allowed, decapRemote, 0x03, "dataplane_decap_drop_lisp_crypto"},
			{"one-k-bit", allowed, decapRemote, 0x01, "dataplane_decap_drop_lisp_crypto"},
			{"legitimate", allowed, decapRemote, 0, "dataplane_decap_packets"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := counters(t, etr)
				burst(t, tc.from, tc.name, tc.src, tc.kk)
				var want []string
				if tc.counter == "dataplane_decap_packets" {
					want = []string{tc.name}
				}
				expect(t, before, tc.counter, want...)
			})
		}
		t.Run("after-map-request", func(t *testing.T) {
			// The remote ITR resolves an EID of the site with the ETR
			// (as a Map-Server forwards its request); then it sends.
			req, err := MapRequest(itr.Addr().Addr(), decapHost.Addr(), rand.Uint64(), false)
			if err != nil {
				t.Fatal(err)
			}
			nonce, _ := NonceOf(req)
			send(t, itr, req, ap(decapCase, 1, ControlPort))
			if _, _, err := itr.Recv(3*time.Second, func(b []byte, _ netip.AddrPort) bool {
				n, ok := NonceOf(b)
				return ok && n == nonce && IsType(b, wire.TypeMapReply)
			}); err != nil {
				t.Fatalf("the ETR did not answer the remote ITR's Map-Request: %v", err)
			}
			before := counters(t, etr)
			burst(t, itr, "after-map-request", decapRemote, 0)
			expect(t, before, "dataplane_decap_packets", "after-map-request")
		})
	})

	t.Run("filter-off", func(t *testing.T) {
		if err := os.WriteFile(etr.ConfigPath(), []byte(decapConfig(etr.Socket, "off")), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := etr.API().Reload(t.Context()); err != nil {
			t.Fatalf("reload with decap-filter off: %v", err)
		}
		stranger2 := listenPeer(t, ap(decapCase, 31, 0))
		for _, tc := range []struct {
			name    string
			from    *Peer
			src     netip.AddrPort
			kk      uint8
			counter string
		}{
			{"own-eid-source", stranger2, netip.AddrPortFrom(netip.MustParseAddr("198.19.6.78"), 5000), 0, "dataplane_decap_drop_own_eid_source"},
			{"k-bits", stranger2, decapRemote, 0x02, "dataplane_decap_drop_lisp_crypto"},
			{"unknown-rloc", stranger2, decapRemote, 0, "dataplane_decap_packets"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := counters(t, etr)
				burst(t, tc.from, "off-"+tc.name, tc.src, tc.kk)
				var want []string
				if tc.counter == "dataplane_decap_packets" {
					want = []string{"off-" + tc.name}
				}
				expect(t, before, tc.counter, want...)
			})
		}
	})
}

// receiveTags reads what the site's socket received until n datagrams
// came (then a little longer, to catch extra ones) or nothing more comes,
// and returns their tags (the payload up to its space).
func receiveTags(t *testing.T, c *net.UDPConn, n int) []string {
	t.Helper()
	var tags []string
	buf := make([]byte, 2048)
	wait := 2 * time.Second
	if n == 0 {
		wait = 300 * time.Millisecond
	}
	for {
		if len(tags) >= n {
			wait = 200 * time.Millisecond
		}
		c.SetReadDeadline(time.Now().Add(wait))
		k, err := c.Read(buf)
		if err != nil {
			return tags
		}
		tag, _, _ := strings.Cut(string(buf[:k]), " ")
		tags = append(tags, tag)
	}
}

// summarize counts tags: "tag×n ...".
func summarize(tags []string) string {
	counts := map[string]int{}
	var order []string
	for _, t := range tags {
		if counts[t] == 0 {
			order = append(order, t)
		}
		counts[t]++
	}
	var parts []string
	for _, t := range order {
		parts = append(parts, fmt.Sprintf("%s×%d", t, counts[t]))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
