package paper

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/lab/netns"
	"github.com/lispd/lispd/lab/topo"
)

// pubsubOptions run a crash in Test 1 with smart sync and pub/sub, with
// healing off and on (2 runs of about 7 s): with the healing, the
// survivor's re-registration must reach every remote ITR by publication
// alone; without it, nothing is published and the return path stays
// broken.
func pubsubOptions() Options {
	o := healingOptions()
	o.Failures, o.Healing, o.PubSub = []Failure{FailCrash}, HealingBoth, true
	return o
}

// checkPubSub asserts the healing's targets (checkHealing) and, from the
// remote xTRs' own counters and map-caches, that pub/sub alone carried
// the failover to them: every check of the run holds, every remote ITR
// subscribed, and with the healing each installed a published mapping
// after the failure and showed ITR1's RLOC withdrawn within the window,
// having learned nothing by SMR or Locator-Status-Bits; without it none
// did.
func checkPubSub(t *testing.T, res *Result) {
	t.Helper()
	checkHealing(t, res, 500*time.Millisecond)
	if !res.Settings.PubSub {
		t.Error("Settings.PubSub not set")
	}
	for _, run := range res.Runs {
		name := run.Spec().String()
		if !run.PubSub || !strings.HasSuffix(name, ", pub/sub") {
			t.Errorf("%s: not a pub/sub run", name)
		}
		for _, c := range run.Failed() {
			t.Errorf("%s: check %q failed: %s", name, c.Name, c.Detail)
		}
		ps := run.PubSubSummary
		if ps == nil || len(run.Remotes) != 3 || ps.Remotes != 3 {
			t.Fatalf("%s: pub/sub summary %+v, %d remotes", name, ps, len(run.Remotes))
		}
		t.Logf("%s: published %d, installed %d, SMRs %d/%d, LSB down %d, moved %d of %d in %v..%v",
			name, ps.Publications, ps.Installed, ps.SMRReceived, ps.SMRInvoked, ps.LSBDown, ps.Moved, ps.Remotes, ps.FirstMoved, ps.LastMoved)
		for _, r := range run.Remotes {
			if r.Counters["itr_subscriptions_confirmed"] == 0 {
				t.Errorf("%s: %s confirmed no subscription: %v", name, r.Name, nonZero(r.Counters))
			}
			if n := r.Counters[ctrSMRReceived] + r.Counters[ctrSMRInvoked] + r.Counters[ctrLSBDown]; n != 0 {
				t.Errorf("%s: %s learned by SMR or Locator-Status-Bits: %v", name, r.Name, nonZero(r.Counters))
			}
			if run.Healing {
				if r.CountersAfterFailure[ctrPubSubInstalled] == 0 || !r.Withdrawn || !r.WithdrawnAtEnd || r.SiteSource != api.SourcePubSub {
					t.Errorf("%s: %s: installed %d after the failure, withdrawn seen %v (after %v), at end %v, source %q",
						name, r.Name, r.CountersAfterFailure[ctrPubSubInstalled], r.Withdrawn, r.WithdrawnAfter, r.WithdrawnAtEnd, r.SiteSource)
				}
				// The survivor withdraws ITR1's RLOC once the sync set
				// found it dead (failover.dead-after, 1 s; at once
				// when its sessions close); the publication follows.
				if r.Withdrawn && (r.WithdrawnAfter < 0 || r.WithdrawnAfter > 2*time.Second) {
					t.Errorf("%s: %s saw ITR1's RLOC withdrawn %v after the failure, want within 2 s", name, r.Name, r.WithdrawnAfter)
				}
			} else if r.Withdrawn || r.WithdrawnAtEnd {
				t.Errorf("%s: %s saw ITR1's RLOC withdrawn without the healing", name, r.Name)
			}
		}
		if run.Healing && (ps.Publications == 0 || ps.Installed < uint64(ps.Remotes) || ps.Moved != ps.Remotes) {
			t.Errorf("%s: published %d, installed %d, moved %d of %d", name, ps.Publications, ps.Installed, ps.Moved, ps.Remotes)
		}
	}
	var out bytes.Buffer
	if err := WritePubSub(&out, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Pub/sub (RFC 9437)", "RX1", "ITR1 withdrawn after"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("WritePubSub output lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// TestEmbeddedPubSub: after a crash with the healing, the Map-Server's
// publications alone move every remote ITR off ITR1's RLOC, with at most
// 1 return-path loss per flow after the switchover; without the healing
// nothing is published.
func TestEmbeddedPubSub(t *testing.T) {
	o := pubsubOptions()
	var progress bytes.Buffer
	o.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, o)
	if err != nil && !errors.Is(err, ErrChecks) {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("%d runs in %v", len(res.Runs), time.Since(start).Round(time.Millisecond))
	if len(res.Runs) != 2 {
		t.Fatalf("%d runs, want 2 (crash with healing off and on)", len(res.Runs))
	}
	checkPubSub(t, res)
}

// TestNetnsPubSub is TestEmbeddedPubSub with real lispd processes,
// keepalived and ICMP in namespaces (root only).
func TestNetnsPubSub(t *testing.T) {
	netns.Require(t)
	if testing.Short() {
		t.Skip("netns experiment skipped in -short mode")
	}
	o := pubsubOptions()
	o.Netns = true
	var progress bytes.Buffer
	o.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, o)
	if err != nil && !errors.Is(err, ErrChecks) {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	checkPubSub(t, res)
}

// TestPubSubConfigsParse: the lispd.toml files of a pub/sub run are ones
// lispd accepts, with pub/sub on the Map-Server, every xTR subscribing
// with the same key and ignoring Locator-Status-Bits, and the failover
// sending no SMRs.
func TestPubSubConfigsParse(t *testing.T) {
	dir := t.TempDir()
	tp, err := topo.Paper(topo.Test1, netip.MustParsePrefix("127.0.78.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := syncKeys(tp, dir)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := config.Parse([]byte(msmrConfig(tp, dir+"/msmr.sock", true)), "msmr.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !ms.MapServer.PubSub.Enabled || string(ms.MapServer.PubSub.AuthenticationKey) != pubsubKey {
		t.Errorf("Map-Server pub/sub: %+v", ms.MapServer.PubSub)
	}
	site := siteSpec(tp, tp.XTRs[0], Smart, keys)
	site.ProxyReply = siteProxyReply(true)
	specs := []xtrSpec{site, remoteSpec(tp, tp.Remotes[0])}
	for i, s := range specs {
		s.Healing, s.PubSub = true, true
		text := xtrConfig(s, dir+"/x.sock")
		c, err := config.Parse([]byte(text), s.Name+".toml")
		if err != nil {
			t.Fatalf("%s: %v\n%s", s.Name, err, text)
		}
		checkPubSubXTR(t, s.Name, c)
		if c.ETR.ProxyReply != (i == 0) {
			t.Errorf("%s: etr.proxy-reply %v", s.Name, c.ETR.ProxyReply)
		}
	}
}

// checkPubSubXTR checks an xTR's parsed config of a pub/sub run.
func checkPubSubXTR(t *testing.T, name string, c *config.Config) {
	t.Helper()
	if c.ITR == nil || !c.ITR.Subscribe || string(c.ITR.PubSubKey) != pubsubKey || !c.ITR.IgnoreLocatorStatusBits {
		t.Errorf("%s: [itr] %+v", name, c.ITR)
	}
	if !c.Failover.Enabled || c.Failover.SolicitMapRequests {
		t.Errorf("%s: [failover] %+v", name, c.Failover)
	}
}
