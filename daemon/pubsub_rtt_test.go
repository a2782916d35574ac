package daemon

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

// TestPubSubOneRoundTrip: a subscribed lispd ITR has a changed mapping
// within one round trip of the Map-Register that changed it. A Map-Server
// daemon and a subscribing ITR daemon talk over UDP on loopback; the ETR is
// this test, sending Map-Registers (M bit) from its own socket. When the
// ETR's Map-Register is acknowledged (one round trip), the Map-Server has
// already sent the publication (it sends publications before the
// acknowledgment), and the ITR installs it without a Map-Request of its
// own: nothing but the one Map-Register exchange and the pushed
// Map-Notify moves the mapping.
func TestPubSubOneRoundTrip(t *testing.T) {
	const (
		ms   = "127.77.95.100"
		itr  = "127.77.95.3"
		etrA = "127.77.95.2"
	)
	ms1 := startXTRDaemon(t, `
[daemon]
roles = ["ms", "mr"]
[control]
listen = ["`+ms+`:4342"]
[map-server]
[map-server.pubsub]
enabled = true
authentication-key = "`+psKey+`"
[[map-server.site]]
name = "site-b"
authentication-key = "key-b"
eid-prefixes = ["10.2.0.0/24"]
proxy-reply = true
[map-resolver]
map-servers = ["local"]
`, nil, nil)
	mn := dataplane.NewMemNetwork(64)
	x := startPubSubSite(t, mn, itr, `
[daemon]
roles = ["itr"]
[control]
listen = ["`+itr+`:4342"]
[dataplane]
rlocs = ["`+itr+`"]
[itr]
map-resolvers = ["`+ms+`"]
subscribe = true
pubsub-key = "`+psKey+`"
`)

	etr, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(etrA+":4342")))
	if err != nil {
		t.Fatal(err)
	}
	defer etr.Close()
	msAddr := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(ms + ":4342"))
	nonce := uint64(0)
	// register sends a Map-Register for 10.2.0.0/24 with locator rloc and
	// returns how long its Map-Notify took.
	register := func(rloc string) time.Duration {
		t.Helper()
		nonce++
		rec := wire.NewEIDRecord(0, netip.MustParsePrefix("10.2.0.0/24"))
		rec.RecordTTL, rec.Authoritative = 1440, true
		rec.Locators = []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Local: true, Address: wire.AddrFrom(netip.MustParseAddr(rloc))}}
		m := wire.MapRegister{ProxyReply: true, WantMapNotify: true, Nonce: nonce, AlgorithmID: wire.AlgHMACSHA256128, Records: []wire.EIDRecord{rec}}
		b, err := m.AppendBinary(nil)
		if err == nil {
			err = wire.Sign(b, []byte("key-b"))
		}
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := etr.WriteToUDP(b, msAddr); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		for {
			_ = etr.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := etr.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("no Map-Notify for Map-Register %d: %v", nonce, err)
			}
			if msg, err := wire.Parse(buf[:n]); err == nil {
				if mn, ok := msg.(*wire.MapNotify); ok && mn.Nonce == nonce {
					return time.Since(start)
				}
			}
		}
	}
	register(etrA)

	// The ITR resolves 10.2.0.7 and subscribes to 10.2.0.0/24.
	eid := netip.MustParseAddr("10.2.0.7")
	if _, err := x.d.ITRRole().Resolve(context.Background(), 0, eid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ITR's confirmed subscription", func() bool {
		st := ms1.d.MapServer().Stats()
		return len(x.d.ITRRole().Subscriptions()) == 1 && st.SubscriptionsConfirmed == 1 && st.PubSubPending == 0
	})
	requests := x.counter("itr_map_requests_sent")
	pubs := ms1.d.MapServer().Stats().Publications

	// The site renumbers its ETR's locator.
	moved := "127.77.95.22"
	rtt := register(moved)
	if got := ms1.d.MapServer().Stats().Publications; got != pubs+1 {
		t.Fatalf("when the Map-Register was acknowledged, %d publications had been sent, want %d", got-pubs, 1)
	}
	var took time.Duration
	start := time.Now()
	waitFor(t, "the ITR's map-cache to show the new locator", func() bool {
		e, ok := x.d.ITRRole().Cache().Lookup(0, eid)
		took = time.Since(start)
		return ok && e.Source == mapcache.FromPubSub && len(e.RLOCs) == 1 && e.RLOCs[0].Addr == netip.MustParseAddr(moved)
	})
	if n := x.counter("itr_map_requests_sent"); n != requests {
		t.Errorf("the ITR sent %d Map-Requests to learn the change; the publication alone should do", n-requests)
	}
	t.Logf("Map-Register round trip %v; the ITR had the new mapping %v after the acknowledgment", rtt, took)
}
