package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/cachesync"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/dataplane"
)

// The failover test runs, in one process, a Map-Server/Map-Resolver, a
// remote site (an ETR with five EID prefixes) and a site of two ITRs, with
// control messages over UDP on 127.77.90.x and packets over an in-memory
// data plane. Flows go through the first ITR; it is stopped; the same flows
// go through the second.
const (
	foMS  = "127.77.90.100"
	foA1  = "127.77.90.1"
	foA2  = "127.77.90.2"
	foB   = "127.77.90.3"
	foKey = "key-b"
	flows = 5
)

const foMSConfig = `
[daemon]
roles = ["ms", "mr"]
[control]
listen = ["` + foMS + `:4342"]
[map-server]
[[map-server.site]]
name = "site-b"
authentication-key = "` + foKey + `"
eid-prefixes = ["10.2.0.0/16"]
accept-more-specifics = true
proxy-reply = false
[map-resolver]
map-servers = ["local"]
`

// foBConfig is the remote site's ETR: flows prefixes 10.2.k.0/24.
func foBConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, `
[daemon]
roles = ["etr"]
[control]
listen = ["%[1]s:4342"]
[dataplane]
rlocs = ["%[1]s"]
[etr]
[[etr.map-server]]
address = "%[2]s"
authentication-key = "%[3]s"
`, foB, foMS, foKey)
	for k := 1; k <= flows; k++ {
		fmt.Fprintf(&b, "[[etr.eid]]\nprefix = \"10.2.%d.0/24\"\n", k)
	}
	return b.String()
}

// foITRConfig is a site ITR with the [sync] section syncText.
func foITRConfig(rloc, syncText string) string {
	return fmt.Sprintf(`
[daemon]
roles = ["itr"]
[control]
listen = ["%[1]s:4342"]
[dataplane]
rlocs = ["%[1]s"]
[itr]
map-resolvers = ["%[2]s"]
miss-policy = "drop"
map-request-timeout = "300ms"
%[3]s`, rloc, foMS, syncText)
}

// syncSection returns the [sync] sections of the two site ITRs in mode.
func syncSections(t *testing.T, mode string) (string, string) {
	return syncSectionsFor(t, mode, foA1, foA2)
}

// syncSectionsFor is syncSections for members at the addresses a1 and a2.
func syncSectionsFor(t *testing.T, mode, a1, a2 string) (string, string) {
	if mode == config.SyncOff {
		return "", ""
	}
	common := "round-interval = \"200ms\"\nanti-entropy-interval = \"1s\"\n"
	if mode == config.SyncGossip {
		key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
		sec := func(self, other string) string {
			return fmt.Sprintf("[sync]\nmode = \"gossip\"\nname = %q\nlisten = \"%s:4343\"\nseeds = [\"%s:4343\"]\ngossip-key = %q\n%s",
				self, self, other, key, common)
		}
		return sec(a1, a2), sec(a2, a1)
	}
	dir := t.TempDir()
	pub := map[string]string{}
	file := map[string]string{}
	for _, n := range []string{a1, a2} {
		k, err := cachesync.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		file[n] = filepath.Join(dir, n+".key")
		if err := cachesync.WritePrivateKey(file[n], k); err != nil {
			t.Fatal(err)
		}
		pub[n] = cachesync.FormatPublicKey(cachesync.PublicKeyOf(k))
	}
	sec := func(self, other string) string {
		return fmt.Sprintf("[sync]\nmode = %q\nname = %q\nlisten = \"%s:4343\"\nprivate-key = %q\n%s\n[[sync.peer]]\nname = %q\naddress = \"%s:4343\"\npublic-key = %q\n",
			mode, self, self, file[self], common, other, other, pub[other])
	}
	return sec(a1, a2), sec(a2, a1)
}

// stoppableDaemon is a running daemon that a test can stop early.
type stoppableDaemon struct {
	*xtrDaemon
	stop func()
}

// startStoppable starts a daemon from cfgText with the given data plane;
// stop ends it (also at cleanup).
func startStoppable(t *testing.T, cfgText string, dev dataplane.Device, conn dataplane.Conn) *stoppableDaemon {
	t.Helper()
	return startStoppableOpts(t, cfgText, Options{DataDevice: dev, DataConn: conn})
}

// startStoppableOpts is startStoppable with more Options (Stderr and
// APISocket are the test's).
func startStoppableOpts(t *testing.T, cfgText string, opts Options) *stoppableDaemon {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "lispd.toml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	x := &xtrDaemon{path: path, socket: filepath.Join(dir, "run", "lispd.sock"), logs: &syncBuffer{}}
	opts.Stderr, opts.APISocket = x.logs, x.socket
	x.d, err = New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.d.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("daemon did not stop within 10 s")
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("logs of %s:\n%s", path, x.logs.String())
		}
	})
	waitFor(t, "daemon listening", func() bool {
		select {
		case err := <-done:
			t.Fatalf("Run: %v", err)
		default:
		}
		_, err := os.Stat(x.socket)
		return err == nil && len(x.d.ControlAddrs()) > 0
	})
	return &stoppableDaemon{xtrDaemon: x, stop: stop}
}

// foSite starts a daemon with an in-memory device pair and a conn on mn.
func foSite(t *testing.T, mn *dataplane.MemNetwork, rloc, cfgText string) *stoppableDaemon {
	t.Helper()
	return foSiteOpts(t, mn, rloc, cfgText, Options{})
}

// foSiteOpts is foSite with more Options.
func foSiteOpts(t *testing.T, mn *dataplane.MemNetwork, rloc, cfgText string, opts Options) *stoppableDaemon {
	t.Helper()
	host, xdev := dataplane.NewMemDevicePair("host-"+rloc, "lisp0", 1500, 64)
	t.Cleanup(func() { host.Close() })
	conn, err := mn.Listen(netip.AddrPortFrom(netip.MustParseAddr(rloc), 4341))
	if err != nil {
		t.Fatal(err)
	}
	opts.DataDevice, opts.DataConn = xdev, conn
	x := startStoppableOpts(t, cfgText, opts)
	x.host = host
	return x
}

// hasFlows reports whether the daemon's map-cache holds a positive mapping
// for every flow's destination.
func hasFlows(x *stoppableDaemon) bool {
	for k := 1; k <= flows; k++ {
		e, ok := x.d.ITRRole().Cache().Lookup(0, netip.MustParseAddr(fmt.Sprintf("10.2.%d.7", k)))
		if !ok || e.Negative() {
			return false
		}
	}
	return true
}

// TestSyncFailover: two ITRs of a site behind one gateway; flows go
// through the first, which fails; the same flows then go through the
// second. With the synchronization set on (any mode) the second ITR has
// no cache miss; with it off it misses once per flow it had never seen.
func TestSyncFailover(t *testing.T) {
	for _, mode := range []string{config.SyncOff, config.SyncNaive, config.SyncSmart, config.SyncGossip} {
		t.Run(mode, func(t *testing.T) {
			startStoppable(t, foMSConfig, nil, nil)
			mn := dataplane.NewMemNetwork(256)
			b := foSite(t, mn, foB, foBConfig())
			b.waitRegistered(t)
			s1, s2 := syncSections(t, mode)
			a1 := foSite(t, mn, foA1, foITRConfig(foA1, s1))
			a2 := foSite(t, mn, foA2, foITRConfig(foA2, s2))
			if mode != config.SyncOff {
				waitFor(t, "sync peers connected", func() bool {
					return a1.d.SyncMember().Stats().Connected == 1 && a2.d.SyncMember().Stats().Connected == 1
				})
			}
			// The flows go through a1: the first packet of each misses
			// and triggers a Map-Request; the next ones are encapsulated.
			for k := 1; k <= flows; k++ {
				a1.hostSend(t, echo("10.1.0.5", fmt.Sprintf("10.2.%d.7", k), false, 1))
			}
			waitFor(t, "a1 has the flows' mappings", func() bool { return hasFlows(a1) })
			for k := 1; k <= flows; k++ {
				a1.hostSend(t, echo("10.1.0.5", fmt.Sprintf("10.2.%d.7", k), false, 2))
			}
			waitFor(t, "a1 encapsulates", func() bool { return a1.counter("dataplane_encap_packets") >= flows })
			if got := a1.counter("itr_misses"); got != flows {
				t.Fatalf("a1 missed %d times, want %d", got, flows)
			}
			if mode != config.SyncOff {
				waitFor(t, "a2 has the flows' mappings", func() bool { return hasFlows(a2) })
			}

			a1.stop() // the first ITR fails; VRRP moves the flows to a2

			for k := 1; k <= flows; k++ {
				a2.hostSend(t, echo("10.1.0.5", fmt.Sprintf("10.2.%d.7", k), false, 3))
			}
			waitFor(t, "a2 handles every packet", func() bool {
				return a2.counter("dataplane_encap_packets")+a2.counter("itr_miss_packets_dropped") >= flows
			})
			want := uint64(0)
			if mode == config.SyncOff {
				want = flows
			}
			if got := a2.counter("itr_misses"); got != want {
				t.Errorf("a2 missed %d times after the failover, want %d", got, want)
			}
			if mode == config.SyncOff {
				return
			}
			st := a2.d.SyncMember().Stats()
			if st.RecordsApplied < flows || st.Announced != 0 {
				t.Errorf("a2 applied %d records and announced %d", st.RecordsApplied, st.Announced)
			}
		})
	}
}

// TestSyncAPIAndMetrics: the daemon answers lispctl's sync endpoints and
// exports the per-peer metrics.
func TestSyncAPIAndMetrics(t *testing.T) {
	startStoppable(t, foMSConfig, nil, nil)
	mn := dataplane.NewMemNetwork(256)
	b := foSite(t, mn, foB, foBConfig())
	b.waitRegistered(t)
	s1, s2 := syncSections(t, config.SyncSmart)
	a1 := foSite(t, mn, foA1, foITRConfig(foA1, s1))
	a2 := foSite(t, mn, foA2, foITRConfig(foA2, s2))
	waitFor(t, "sync peers connected", func() bool {
		return a1.d.SyncMember().Stats().Connected == 1 && a2.d.SyncMember().Stats().Connected == 1
	})
	a1.hostSend(t, echo("10.1.0.5", "10.2.1.7", false, 1))
	waitFor(t, "a2 has the mapping", func() bool {
		e, ok := a2.d.ITRRole().Cache().Lookup(0, netip.MustParseAddr("10.2.1.7"))
		return ok && !e.Negative()
	})

	c := api.NewClient(a1.socket)
	defer c.Close()
	st, err := c.SyncStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != "smart" || st.Name != foA1 || st.Listen != netip.MustParseAddrPort(foA1+":4343") || len(st.PublicKey) != 44 ||
		st.PeersConnected != 1 || st.Counters.RecordsSent < 1 || st.Counters.Announced < 1 || st.RoundIntervalSeconds != 0.2 {
		t.Errorf("status %+v", st)
	}
	peers, err := c.SyncPeers(context.Background())
	if err != nil || len(peers) != 1 || peers[0].Name != foA2 || peers[0].State != api.SyncPeerConnected || peers[0].RecordsSent < 1 {
		t.Errorf("peers %+v %v", peers, err)
	}
	ds, err := c.Status(context.Background())
	if err != nil || ds.Counters["sync_peers"] != 1 || ds.Counters["sync_peers_connected"] != 1 || ds.Counters["sync_records_sent"] < 1 {
		t.Errorf("status counters %v %v", ds.Counters, err)
	}
	mfs, err := a1.d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if got["lispd_sync_peer_up,peer="+foA2] != 1 || got["lispd_sync_peer_records_total,direction=sent,peer="+foA2] < 1 ||
		got["lispd_sync_records_sent_total"] < 1 {
		t.Errorf("metrics: peer_up %v, records sent %v, total %v", got["lispd_sync_peer_up,peer="+foA2],
			got["lispd_sync_peer_records_total,direction=sent,peer="+foA2], got["lispd_sync_records_sent_total"])
	}
	// A daemon without a set answers 503.
	cb := api.NewClient(b.socket)
	defer cb.Close()
	if _, err := cb.SyncStatus(context.Background()); err == nil || !strings.Contains(err.Error(), "no synchronization set") {
		t.Errorf("no set: %v", err)
	}
}
