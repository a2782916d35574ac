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
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
)

// The failover tests run, in one process, a Map-Server/Map-Resolver (proxy
// replies), a remote xTR B (10.2.1.0/24) and a site of two xTRs A1 and A2
// (10.1.1.0/24, both RLOCs at equal priority, a smart synchronization set),
// with control messages over UDP on 127.77.92.x and packets over an
// in-memory data plane. B's host sends flows to the site, spread by B's
// ITR over both RLOCs; A1 fails in one of three ways; the test checks that
// B stops sending to A1's RLOC at once (SMRs and Locator-Status-Bits), and
// that the site claims it again when A1 is back.
const (
	fvMS  = "127.77.92.100"
	fvA1  = "127.77.92.1"
	fvA2  = "127.77.92.2"
	fvB   = "127.77.92.3"
	fvEID = "10.1.1.0/24"
)

const fvMSConfig = `
[daemon]
roles = ["ms", "mr"]
[control]
listen = ["` + fvMS + `:4342"]
[map-server]
[[map-server.site]]
name = "site-a"
authentication-key = "key-a"
eid-prefixes = ["10.1.0.0/16"]
accept-more-specifics = true
proxy-reply = true
[[map-server.site]]
name = "site-b"
authentication-key = "key-b"
eid-prefixes = ["10.2.0.0/16"]
accept-more-specifics = true
proxy-reply = true
[map-resolver]
map-servers = ["local"]
`

// fvXTRConfig is an xTR of either site: itr and etr roles, its EID-prefix
// with the RLOCs rlocs, and the extra sections extra.
func fvXTRConfig(rloc, key, prefix string, rlocs []string, extra string) string {
	var ls []string
	for _, r := range rlocs {
		ls = append(ls, fmt.Sprintf("{address = %q, priority = 1, weight = 50}", r))
	}
	return fmt.Sprintf(`
[daemon]
roles = ["itr", "etr"]
[control]
listen = ["%[1]s:4342"]
[dataplane]
rlocs = ["%[1]s"]
[itr]
map-resolvers = ["%[2]s"]
miss-policy = "drop"
map-request-timeout = "300ms"
[etr]
[[etr.map-server]]
address = "%[2]s"
authentication-key = %[3]q
[[etr.eid]]
prefix = %[4]q
rlocs = [%[5]s]
%[6]s`, rloc, fvMS, key, prefix, strings.Join(ls, ", "), extra)
}

// fvSite is the running failover topology.
type fvSite struct {
	b, a1, a2 *stoppableDaemon
	a1Link    chan bool
	track     string // A1's VRRP track file
}

// startFVSite starts the topology, with failover on or off, and waits
// until B sends to both of the site's RLOCs.
func startFVSite(t *testing.T, healing bool) *fvSite {
	t.Helper()
	startStoppable(t, fvMSConfig, nil, nil)
	mn := dataplane.NewMemNetwork(1024)
	s := &fvSite{a1Link: make(chan bool, 4), track: filepath.Join(t.TempDir(), "vrrp", "track")}
	s.b = foSite(t, mn, fvB, fvXTRConfig(fvB, "key-b", "10.2.1.0/24", []string{fvB}, ""))
	sy1, sy2 := fvSyncSections(t)
	fo := func(track string) string {
		f := fmt.Sprintf("[failover]\nenabled = %v\n", healing)
		if track != "" {
			f += fmt.Sprintf("vrrp-track-file = %q\ndrain-quiet = \"300ms\"\n", track)
		}
		return f
	}
	site := []string{fvA1, fvA2}
	s.a1 = foSiteOpts(t, mn, fvA1, fvXTRConfig(fvA1, "key-a", fvEID, site, sy1+fo(s.track)), Options{EIDLinkUp: s.a1Link})
	s.a2 = foSite(t, mn, fvA2, fvXTRConfig(fvA2, "key-a", fvEID, site, sy2+fo("")))
	for _, x := range []*stoppableDaemon{s.b, s.a1, s.a2} {
		x.waitRegistered(t)
	}
	waitFor(t, "sync peers connected", func() bool {
		return s.a1.d.SyncMember().Stats().Connected == 1 && s.a2.d.SyncMember().Stats().Connected == 1
	})
	// B's flows: one per destination host; the flow hash spreads them
	// over A1 and A2.
	waitFor(t, "B sends to both RLOCs", func() bool {
		s.sendFlows(t, 1)
		return s.a1.counter("dataplane_decap_packets") > 0 && s.a2.counter("dataplane_decap_packets") > 0
	})
	return s
}

// fvSyncSections are A1's and A2's smart [sync] sections.
func fvSyncSections(t *testing.T) (string, string) {
	return syncSectionsFor(t, config.SyncSmart, fvA1, fvA2)
}

// sendFlows sends n packets of each of B's 16 flows.
func (s *fvSite) sendFlows(t *testing.T, n int) {
	t.Helper()
	for range n {
		for k := range 16 {
			s.b.hostSend(t, echo("10.2.1.7", fmt.Sprintf("10.1.1.%d", 10+k), false, uint16(k)))
		}
	}
}

// usable reports whether B's map-cache entry for the site lets B use the
// RLOC a (priority below 255 and reachable).
func (s *fvSite) usable(a string) bool {
	e, ok := s.b.d.ITRRole().Cache().Lookup(0, netip.MustParseAddr("10.1.1.10"))
	if !ok {
		return false
	}
	return rlocUsable(e, netip.MustParseAddr(a))
}

func rlocUsable(e *mapcache.Entry, a netip.Addr) bool {
	for k, r := range e.RLOCs {
		if r.Addr == a {
			return r.Priority != 255 && e.Reachable(k)
		}
	}
	return false
}

// withdrawnBy reports whether x registers a as unusable.
func withdrawnBy(x *stoppableDaemon, a string) bool {
	for _, w := range x.d.x.etr.Withdrawn() {
		if w.Addr == netip.MustParseAddr(a) {
			return true
		}
	}
	return false
}

// a1Quiet sends flows until A1 decapsulates nothing more for a round of
// them, and reports how long that took.
func (s *fvSite) waitA1Quiet(t *testing.T, what string) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, what, func() bool {
		before := s.a1.counter("dataplane_decap_packets")
		s.sendFlows(t, 2)
		time.Sleep(20 * time.Millisecond)
		return s.a1.counter("dataplane_decap_packets") == before
	})
	return time.Since(start)
}

// TestFailoverLinkDown: A1's EID-side link goes down: A1 withdraws its RLOC
// (registration, SMR to B), A2 learns it through the set and withdraws it
// too; B stops sending to A1 at once, and uses it again when the link is
// back.
func TestFailoverLinkDown(t *testing.T) {
	s := startFVSite(t, true)
	s.a1Link <- false
	took := s.waitA1Quiet(t, "B stops sending to A1")
	t.Logf("B stopped sending to A1 %v after its link went down", took)
	if s.usable(fvA1) {
		t.Errorf("B's mapping still lets it use A1")
	}
	waitFor(t, "A1 and A2 both withdraw A1's RLOC", func() bool { return withdrawnBy(s.a1, fvA1) && withdrawnBy(s.a2, fvA1) })
	if withdrawnBy(s.a1, fvA2) || withdrawnBy(s.a2, fvA2) {
		t.Errorf("A2's RLOC withdrawn too")
	}
	if s.b.counter("itr_smr_received") == 0 {
		t.Errorf("B received no SMR")
	}
	// The site's packets to B still flow (through A2, A1's RLOC withdrawn).
	waitFor(t, "B receives A2's packets", func() bool {
		s.a2.hostSend(t, echo("10.1.1.10", "10.2.1.7", true, 1))
		time.Sleep(20 * time.Millisecond)
		return s.b.counter("dataplane_decap_packets") > 0
	})

	s.a1Link <- true
	waitFor(t, "A1's RLOC restored everywhere", func() bool { return !withdrawnBy(s.a1, fvA1) && !withdrawnBy(s.a2, fvA1) })
	waitFor(t, "B uses A1 again", func() bool {
		before := s.a1.counter("dataplane_decap_packets")
		s.sendFlows(t, 1)
		time.Sleep(20 * time.Millisecond)
		return s.usable(fvA1) && s.a1.counter("dataplane_decap_packets") > before
	})
	st, err := s.a1.d.Failover(context.Background())
	if err != nil || st.Withdrawals == 0 || st.Restorations == 0 || len(st.RemoteITRs) == 0 {
		t.Errorf("A1's failover status %+v, %v", st, err)
	}
	// The members exchanged a few statuses, not a storm of them.
	for _, x := range []*stoppableDaemon{s.a1, s.a2} {
		n := x.d.SyncMember().Stats().BytesSent
		t.Logf("%s: %d sync bytes sent", x.path, n)
		if n > 64<<10 {
			t.Errorf("%s sent %d sync bytes", x.path, n)
		}
	}
}

// TestFailoverCrash: A1's lispd dies: A2 notices at once (the session
// closes), withdraws A1's RLOC and SMRs the remote ITRs A1 was serving;
// B stops sending to A1.
func TestFailoverCrash(t *testing.T) {
	s := startFVSite(t, true)
	start := time.Now()
	s.a1.stop()
	waitFor(t, "A2 withdraws A1's RLOC", func() bool { return withdrawnBy(s.a2, fvA1) })
	if d := time.Since(start); d > time.Second {
		t.Errorf("A2 withdrew A1's RLOC %v after the crash, want under 1 s", d)
	}
	waitFor(t, "B stops using A1", func() bool { return !s.usable(fvA1) })
	t.Logf("B stopped using A1 %v after the crash", time.Since(start))
	if !s.usable(fvA2) {
		t.Errorf("B cannot use A2")
	}
}

// TestFailoverDrain: lispctl drain on A1 moves B's traffic to A2, then
// writes the track file; undrain restores both.
func TestFailoverDrain(t *testing.T) {
	s := startFVSite(t, true)
	c := api.NewClient(s.a1.socket, api.WithTimeout(time.Minute))
	defer c.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // B keeps sending during the drain
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				s.sendFlows(t, 1)
			}
		}
	}()
	res, err := c.Drain(context.Background(), api.DrainRequest{Timeout: 10 * time.Second})
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drain waited %v, %d packets meanwhile", res.Waited, res.PacketsDuring)
	if !res.Quiet || res.TrackFile != s.track || !res.Status.Draining {
		t.Errorf("drain result %+v", res)
	}
	if b, err := os.ReadFile(s.track); err != nil || string(b) != "1\n" {
		t.Errorf("track file %q, %v", b, err)
	}
	if s.usable(fvA1) || !withdrawnBy(s.a2, fvA1) {
		t.Errorf("after the drain B may use A1 (%v) or A2 does not withdraw it", s.usable(fvA1))
	}
	if _, err := c.Undrain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(s.track); err != nil || string(b) != "0\n" {
		t.Errorf("track file after undrain %q, %v", b, err)
	}
	waitFor(t, "B may use A1 again", func() bool {
		s.sendFlows(t, 1)
		return s.usable(fvA1)
	})
}

// TestFailoverOff: with failover.enabled = false nothing is withdrawn: B
// keeps sending to A1 after its link went down (the behaviour the lab's
// "healing off" runs show), and the failover actions are refused.
func TestFailoverOff(t *testing.T) {
	s := startFVSite(t, false)
	s.a1Link <- false
	time.Sleep(500 * time.Millisecond)
	before := s.a1.counter("dataplane_decap_packets")
	s.sendFlows(t, 2)
	waitFor(t, "B still sends to A1", func() bool { return s.a1.counter("dataplane_decap_packets") > before })
	if withdrawnBy(s.a1, fvA1) || withdrawnBy(s.a2, fvA1) {
		t.Errorf("A1's RLOC withdrawn with failover off")
	}
	c := api.NewClient(s.a1.socket)
	defer c.Close()
	if _, err := c.Drain(context.Background(), api.DrainRequest{}); err == nil || !strings.Contains(err.Error(), "failover is off") {
		t.Errorf("drain with failover off: %v", err)
	}
}
