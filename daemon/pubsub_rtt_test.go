package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

// The addresses of the one-round-trip and restart tests.
const (
	rtMS  = "127.77.95.100"
	rtITR = "127.77.95.3"
	rtETR = "127.77.95.2"
)

// rtMSConfig is a Map-Server/Map-Resolver with pub/sub and one site that
// proxy-replies.
const rtMSConfig = `
[daemon]
roles = ["ms", "mr"]
[control]
listen = ["` + rtMS + `:4342"]
[map-server]
[map-server.pubsub]
enabled = true
authentication-key = "` + psKey + `"
[[map-server.site]]
name = "site-b"
authentication-key = "key-b"
eid-prefixes = ["10.2.0.0/24"]
proxy-reply = true
[map-resolver]
map-servers = ["local"]
`

// rtITRConfig is a subscribing ITR; %s is its subscribe-refresh.
const rtITRConfig = `
[daemon]
roles = ["itr"]
[control]
listen = ["` + rtITR + `:4342"]
[dataplane]
rlocs = ["` + rtITR + `"]
[itr]
map-resolvers = ["` + rtMS + `"]
subscribe = true
subscribe-refresh = "%s"
pubsub-key = "` + psKey + `"
`

// rawETR is an ETR played by the test: Map-Registers from its own socket.
type rawETR struct {
	t     *testing.T
	conn  *net.UDPConn
	nonce uint64
}

func newRawETR(t *testing.T) *rawETR {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(rtETR+":4342")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawETR{t: t, conn: c}
}

// register sends a Map-Register (M bit, P bit) for 10.2.0.0/24 with locator
// rloc and returns how long its Map-Notify took.
func (r *rawETR) register(rloc string) time.Duration {
	t := r.t
	t.Helper()
	msAddr := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(rtMS + ":4342"))
	r.nonce++
	nonce := r.nonce
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
	if _, err := r.conn.WriteToUDP(b, msAddr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		_ = r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := r.conn.ReadFromUDP(buf)
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
	ms1 := startXTRDaemon(t, rtMSConfig, nil, nil)
	mn := dataplane.NewMemNetwork(64)
	x := startPubSubSite(t, mn, rtITR, fmt.Sprintf(rtITRConfig, "1m"))
	etr := newRawETR(t)
	etr.register(rtETR)

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
	rtt := etr.register(moved)
	if got := ms1.d.MapServer().Stats().Publications; got != pubs+1 {
		t.Fatalf("when the Map-Register was acknowledged, %d publications had been sent, want %d", got-pubs, 1)
	}
	// Poll finely: the time it takes is what is measured.
	start := time.Now()
	for {
		e, ok := x.d.ITRRole().Cache().Lookup(0, eid)
		if ok && e.Source == mapcache.FromPubSub && len(e.RLOCs) == 1 && e.RLOCs[0].Addr == netip.MustParseAddr(moved) {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the ITR's map-cache never showed the new locator")
		}
		time.Sleep(50 * time.Microsecond)
	}
	took := time.Since(start)
	if n := x.counter("itr_map_requests_sent"); n != requests {
		t.Errorf("the ITR sent %d Map-Requests to learn the change; the publication alone should do", n-requests)
	}
	t.Logf("Map-Register round trip %v; the ITR had the new mapping %v after the acknowledgment", rtt, took)
}

// TestPubSubMapServerRestart: a Map-Server that restarts forgets every
// subscription; the ITR renews the ones it uses every subscribe-refresh, so
// a change after the restart reaches it again.
func TestPubSubMapServerRestart(t *testing.T) {
	ms1 := startStoppable(t, rtMSConfig, nil, nil)
	mn := dataplane.NewMemNetwork(64)
	x := startPubSubSite(t, mn, rtITR, fmt.Sprintf(rtITRConfig, "1s"))
	etr := newRawETR(t)
	etr.register(rtETR)
	eid := netip.MustParseAddr("10.2.0.7")
	if _, err := x.d.ITRRole().Resolve(context.Background(), 0, eid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first subscription", func() bool { return ms1.d.MapServer().Stats().SubscriptionsConfirmed == 1 })

	// Traffic keeps using the mapping (the refresh renews used ones only).
	stopUse := make(chan struct{})
	defer close(stopUse)
	go func() {
		for {
			select {
			case <-stopUse:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if e, ok := x.d.ITRRole().Cache().Lookup(0, eid); ok {
				e.Touch(time.Now().UnixNano())
			}
		}
	}()

	ms1.stop()
	restarted := time.Now()
	ms2 := startStoppable(t, rtMSConfig, nil, nil)
	etr.register(rtETR) // the ETR's next periodic register
	waitFor(t, "the ITR to subscribe again", func() bool { return ms2.d.MapServer().Stats().SubscriptionsConfirmed == 1 })
	t.Logf("subscribed again %v after the restart", time.Since(restarted).Round(time.Millisecond))

	moved := "127.77.95.23"
	etr.register(moved)
	waitFor(t, "the change published after the restart", func() bool {
		e, ok := x.d.ITRRole().Cache().Lookup(0, eid)
		return ok && e.Source == mapcache.FromPubSub && len(e.RLOCs) == 1 && e.RLOCs[0].Addr == netip.MustParseAddr(moved)
	})
	if n := x.counter("itr_subscribe_refreshes"); n == 0 {
		t.Errorf("no subscription refresh counted")
	}
}
