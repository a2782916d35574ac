package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

// The publish/subscribe test runs a Map-Server/Map-Resolver with pub/sub,
// two xTR sites whose ITRs subscribe, and an ITR-only site, over UDP on
// 127.77.94.x: Map-Notifies for the ETR (acknowledging its Map-Registers)
// and for the ITR (pub/sub) arrive on the same control socket, and the
// daemon's dispatch must tell them apart.
const (
	psMS = "127.77.94.100"
	psA  = "127.77.94.1"
	psB  = "127.77.94.2"
	psC  = "127.77.94.3"

	psKey = "pubsub-key"
	// psCXTRID is the ITR-only site's configured xTR-ID.
	psCXTRID = "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c"
)

const psMSConfig = `
[daemon]
roles = ["ms", "mr"]
log-level = "debug"
[control]
listen = ["` + psMS + `:4342"]
[map-server]
[map-server.pubsub]
enabled = true
authentication-key = "` + psKey + `"
[[map-server.site]]
name = "site-a"
authentication-key = "key-a"
eid-prefixes = ["10.1.0.0/24"]
proxy-reply = false
[[map-server.site]]
name = "site-b"
authentication-key = "key-b"
eid-prefixes = ["10.2.0.0/24"]
proxy-reply = false
[map-resolver]
map-servers = ["local"]
`

// psSiteConfig is a subscribing xTR; %s are the RLOC, the site key, the
// EID prefix and the locators' weight.
const psSiteConfig = `
[daemon]
roles = ["itr", "etr"]
log-level = "debug"
[control]
listen = ["%[1]s:4342"]
[dataplane]
rlocs = ["%[1]s"]
[itr]
map-resolvers = ["` + psMS + `"]
map-request-timeout = "300ms"
subscribe = true
pubsub-key = "` + psKey + `"
[etr]
register-interval = "1s"
site-id = 77
[[etr.map-server]]
address = "` + psMS + `"
authentication-key = "%[2]s"
[[etr.eid]]
prefix = "%[3]s"
rlocs = [{address = "%[1]s", weight = %[4]d}]
`

// psITRConfig is an ITR without the etr role, with its own xTR-ID.
const psITRConfig = `
[daemon]
roles = ["itr"]
log-level = "debug"
[control]
listen = ["` + psC + `:4342"]
[dataplane]
rlocs = ["` + psC + `"]
[itr]
map-resolvers = ["` + psMS + `"]
map-request-timeout = "300ms"
subscribe = true
pubsub-key = "` + psKey + `"
xtr-id = "` + psCXTRID + `"
site-id = 12
`

// startPubSubSite starts an xTR (or ITR) on mn from cfgText.
func startPubSubSite(t *testing.T, mn *dataplane.MemNetwork, rloc, cfgText string) *xtrDaemon {
	t.Helper()
	host, xdev := dataplane.NewMemDevicePair("host-"+rloc, "lisp0", 1500, 64)
	t.Cleanup(func() { host.Close() })
	conn, err := mn.Listen(netip.AddrPortFrom(netip.MustParseAddr(rloc), 4341))
	if err != nil {
		t.Fatal(err)
	}
	x := startXTRDaemon(t, cfgText, xdev, conn)
	x.host = host
	return x
}

// subscriptions asks x's API for its subscriptions.
func (x *xtrDaemon) subscriptions(t *testing.T) api.Subscriptions {
	t.Helper()
	c := api.NewClient(x.socket)
	defer c.Close()
	subs, err := c.Subscriptions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return subs
}

func TestPubSubSites(t *testing.T) {
	ms := startXTRDaemon(t, psMSConfig, nil, nil)
	mn := dataplane.NewMemNetwork(256)
	a := startPubSubSite(t, mn, psA, fmt.Sprintf(psSiteConfig, psA, "key-a", "10.1.0.0/24", 100))
	b := startPubSubSite(t, mn, psB, fmt.Sprintf(psSiteConfig, psB, "key-b", "10.2.0.0/24", 100))
	c := startPubSubSite(t, mn, psC, psITRConfig)
	a.waitRegistered(t)
	b.waitRegistered(t)

	// A miss at site A and at the ITR-only site C makes their ITRs
	// subscribe to site B's prefix.
	eidB := netip.MustParseAddr("10.2.0.7")
	pfxB := netip.MustParsePrefix("10.2.0.0/24")
	a.hostSend(t, echo("10.1.0.5", "10.2.0.7", false, 1))
	c.hostSend(t, echo("10.3.0.5", "10.2.0.7", false, 1))
	for _, x := range []*xtrDaemon{a, c} {
		waitFor(t, "the ITR's subscription", func() bool {
			subs := x.d.ITRRole().Subscriptions()
			return len(subs) == 1 && subs[0].Prefix == pfxB && subs[0].MapServer == netip.MustParseAddr(psMS)
		})
		waitFor(t, "the mapping", func() bool {
			e, ok := x.d.ITRRole().Cache().Lookup(0, eidB)
			return ok && !e.Negative()
		})
		if n := x.counter("itr_subscriptions_confirmed"); n != 1 {
			t.Errorf("subscriptions confirmed %d", n)
		}
	}
	// The Map-Server holds both, confirmed, with each ITR's xTR-ID: the
	// ETR's for site A (one xTR, one xTR-ID), the configured one for C.
	waitFor(t, "confirmed subscriptions", func() bool {
		subs := ms.subscriptions(t).MapServer
		return len(subs) == 2 && subs[0].Confirmed && subs[1].Confirmed
	})
	subs := ms.subscriptions(t)
	if subs.ITR != nil {
		t.Errorf("a Map-Server has ITR subscriptions: %+v", subs.ITR)
	}
	ids := map[api.XTRID]api.MapServerSubscription{}
	for _, s := range subs.MapServer {
		ids[s.XTRID] = s
	}
	aID := api.XTRID(a.d.ETRRole().XTRID())
	var cID api.XTRID
	if err := cID.UnmarshalText([]byte(psCXTRID)); err != nil {
		t.Fatal(err)
	}
	if s, ok := ids[aID]; !ok || s.SiteID != 77 || s.Prefix != pfxB || s.ITR.Addr() != netip.MustParseAddr(psA) || s.Negative {
		t.Errorf("site A's subscription (xTR-ID %s): %+v", aID, subs.MapServer)
	}
	if s, ok := ids[cID]; !ok || s.SiteID != 12 || s.ITR.Addr() != netip.MustParseAddr(psC) {
		t.Errorf("site C's subscription (xTR-ID %s): %+v", cID, subs.MapServer)
	}
	if st := ms.d.MapServer().Stats(); st.Subscriptions != 2 || st.SubscriptionsConfirmed != 2 || st.PubSubAckAuthFailure != 0 {
		t.Errorf("map-server stats: %+v", st)
	}
	// The ITR's own view over the API.
	if got := a.subscriptions(t); len(got.ITR) != 1 || got.ITR[0].Prefix != pfxB || got.ITR[0].Notifies < 1 ||
		got.ITR[0].Subscribed.IsZero() || len(got.MapServer) != 0 || got.MapServer != nil {
		t.Errorf("site A's subscriptions over the API: %+v", got)
	}

	// The ETRs' own Map-Notifies still reach the ETRs (they register every
	// second): registrations stay up, nothing fails authentication.
	regs := a.counter("etr_map_notifies_received")
	waitFor(t, "site A's next registrations acknowledged", func() bool {
		return a.counter("etr_map_notifies_received") >= regs+2
	})
	for _, x := range []*xtrDaemon{a, b} {
		if x.counter("etr_map_notify_auth_failures") != 0 || x.counter("itr_pubsub_notify_auth_failures") != 0 {
			t.Errorf("auth failures: etr %d itr %d", x.counter("etr_map_notify_auth_failures"), x.counter("itr_pubsub_notify_auth_failures"))
		}
	}

	// Site B changes its mapping: the Map-Server publishes it to both
	// subscribers at once (site B's ETR may send them SMRs as well).
	next := fmt.Sprintf(psSiteConfig, psB, "key-b", "10.2.0.0/24", 40)
	if err := os.WriteFile(b.path, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*xtrDaemon{a, c} {
		waitFor(t, "the published mapping", func() bool {
			e, ok := x.d.ITRRole().Cache().Lookup(0, eidB)
			return ok && len(e.RLOCs) == 1 && e.RLOCs[0].Weight == 40 && e.Source == mapcache.FromPubSub
		})
	}
	waitFor(t, "the publications acknowledged", func() bool {
		st := ms.d.MapServer().Stats()
		return st.Publications >= 2 && st.PubSubPending == 0 && st.PubSubMapNotifyAcked >= 4 &&
			st.SubscriptionsRemovedUnacked == 0
	})
}

// TestPubSubDispatch checks the routing of Map-Notifies between the ITR
// and the ETR of one daemon: a Map-Notify goes to the ITR only when the
// ITR owns it.
func TestPubSubDispatch(t *testing.T) {
	cfg, err := config.Parse([]byte(fmt.Sprintf(psSiteConfig, psA, "key-a", "10.1.0.0/24", 100)), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{Stderr: &syncBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	from := netip.MustParseAddrPort(psMS + ":4342")
	local := netip.MustParseAddr(psA)
	// An ETR's Map-Notify (random nonce, its own prefix; signed with
	// another key): the ETR's, which finds it does not authenticate. The
	// ITR holds no subscription and asked for none, so it does not own it.
	rec := wire.NewEIDRecord(0, netip.MustParsePrefix("10.1.0.0/24"))
	rec.RecordTTL = 1
	n := wire.MapNotify{Nonce: 0x1234, AlgorithmID: wire.AlgHMACSHA256128,
		AuthData: make([]byte, wire.AlgHMACSHA256128.AuthLen(false)), Records: []wire.EIDRecord{rec}}
	pkt, err := n.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.x.itr.OwnsNotify(pkt) {
		t.Fatal("the ITR owns a Map-Notify it never asked for")
	}
	d.dispatch(pkt, from, local, nil)
	if got := d.counters(); got["etr_map_notify_auth_failures"]+got["etr_map_notify_unknown_source"]+got["etr_malformed"] == 0 ||
		got["itr_pubsub_notifies_received"] != 0 {
		t.Errorf("a Map-Notify the ITR does not own did not go to the ETR: %v", got)
	}

	// An ITR without an ETR takes every Map-Notify.
	cfg, err = config.Parse([]byte(strings.Replace(psITRConfig, `xtr-id = "`+psCXTRID+`"`, "", 1)), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	d, err = New(cfg, Options{Stderr: &syncBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	d.dispatch(pkt, from, netip.MustParseAddr(psC), nil)
	if got := d.counters(); got["itr_pubsub_notifies_received"] != 1 || got["itr_pubsub_notify_unmatched"] != 1 {
		t.Errorf("an ITR alone did not get the Map-Notify: %v", got)
	}
}

// TestPubSubReload: the Map-Server's pub/sub keys need a restart, so a
// reload keeps the running ones (and says so); the ITR's apply.
func TestPubSubReload(t *testing.T) {
	off := strings.Replace(psMSConfig, "enabled = true", "enabled = false", 1)
	ms := startXTRDaemon(t, off, nil, nil)
	if err := os.WriteFile(ms.path, []byte(psMSConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ms.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ms.d.Config().MapServer.PubSub.Enabled {
		t.Error("the reload turned pub/sub on without a restart")
	}
	if !strings.Contains(ms.logs.String(), "map-server.pubsub.enabled") {
		t.Errorf("the reload did not name the key that needs a restart:\n%s", ms.logs.String())
	}
	// The next reload reports it again.
	if err := ms.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(ms.logs.String(), "need a restart"); n != 2 {
		t.Errorf("restart warnings: %d", n)
	}

	mn := dataplane.NewMemNetwork(16)
	noSub := strings.Replace(fmt.Sprintf(psSiteConfig, psA, "key-a", "10.1.0.0/24", 100), "subscribe = true\n", "", 1)
	a := startPubSubSite(t, mn, psA, noSub)
	if err := os.WriteFile(a.path, []byte(fmt.Sprintf(psSiteConfig, psA, "key-a", "10.1.0.0/24", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !a.d.Config().ITR.Subscribe || strings.Contains(a.logs.String(), "need a restart") {
		t.Errorf("itr.subscribe was not applied by the reload:\n%s", a.logs.String())
	}
}
