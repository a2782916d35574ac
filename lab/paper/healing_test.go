package paper

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lispd/lispd/lab/netns"
	"github.com/lispd/lispd/lab/traffic"
)

// healingOptions run each failure kind once with healing off and once on
// (a drain with healing on only), in Test 1 with smart sync: 5 runs, with
// 3 s of traffic after the switchover, long enough for the healing (the
// sync set notices a dead member within 1 s; remote ITRs move on the SMR)
// and short enough for CI.
func healingOptions() Options {
	return Options{
		Failures:     Failures(),
		Healing:      HealingBoth,
		Tests:        []int{1},
		Variants:     []Variant{Smart},
		PingInterval: 100 * time.Millisecond,
		WarmUp:       time.Second,
		AfterSwitch:  3 * time.Second,
		Drain:        300 * time.Millisecond,
		Seed:         11,
	}
}

// maxGapPerFlow is the most requests one flow lost in the VRRP gap.
func maxGapPerFlow(run RunResult) int {
	n := 0
	for _, fr := range run.Traffic.Flows {
		n = max(n, fr.After[traffic.LostSwitchover])
	}
	return n
}

// checkHealing asserts the healing's targets from the measured counters
// of each run:
//   - healing on, lan and crash: at most 1 return-path loss per flow among
//     the requests sent after the switchover;
//   - healing on, drain: no request lost at all after the drain began;
//   - healing off, lan and crash: the return-path losses are there (a
//     flow lost more than 1 after the switchover), so that the test above
//     measures something and can fail;
//   - every run: the VRRP gap costs each flow under maxGap of pings.
func checkHealing(t *testing.T, res *Result, maxGap time.Duration) {
	t.Helper()
	seen := map[Spec]bool{}
	for _, run := range res.Runs {
		spec := run.Spec()
		seen[spec] = true
		name := spec.String()
		t.Logf("%s: lost after the failure gap %d, cache miss %d, return %d, other %d; max return losses of a flow after the switchover %d; last return loss %v after the failure; switchovers %+v",
			name, run.Losses.Gap, run.Losses.CacheMiss, run.Losses.Return, run.Losses.Other, run.MaxReturnAfterSwitch, run.LastReturnLoss.Round(time.Millisecond), run.Switchovers)
		for _, c := range run.Failed() {
			t.Logf("%s: check %q failed: %s", name, c.Name, c.Detail)
		}
		if len(run.Switchovers) == 0 {
			t.Errorf("%s: no VRRP switchover measured", name)
		}
		if g := time.Duration(maxGapPerFlow(run)) * res.Settings.PingInterval; g >= maxGap {
			t.Errorf("%s: a flow lost %v of pings in the VRRP gap, want under %v", name, g, maxGap)
		}
		switch {
		case spec.Failure == FailDrain:
			if n := run.Losses.Total(); n != 0 || run.Traffic.After.Lost() != 0 {
				t.Errorf("%s: %d requests lost after the drain began (gap %d, cache miss %d, return %d, other %d), want 0",
					name, n, run.Losses.Gap, run.Losses.CacheMiss, run.Losses.Return, run.Losses.Other)
			}
			if run.Drain == nil {
				t.Errorf("%s: no drain outcome", name)
			} else if !run.Drain.Quiet {
				t.Errorf("%s: the drain timed out before the ingress moved: %+v", name, *run.Drain)
			}
		case spec.Healing:
			if run.MaxReturnAfterSwitch > 1 {
				t.Errorf("%s: a flow lost %d replies on the return path to ITR1's RLOC after the switchover (all flows %d, last %v after the failure), want at most 1",
					name, run.MaxReturnAfterSwitch, sumInts(run.ReturnAfterSwitch), run.LastReturnLoss.Round(time.Millisecond))
			}
		default:
			if run.Losses.Return == 0 || run.MaxReturnAfterSwitch <= 1 {
				t.Errorf("%s: without the healing the return path to the failed RLOC lost %d replies (at most %d of a flow after the switchover): the experiment no longer shows the problem the healing fixes",
					name, run.Losses.Return, run.MaxReturnAfterSwitch)
			}
		}
	}
	for _, s := range res.Settings.Plan {
		if !seen[s] {
			t.Errorf("no result for %s", s)
		}
	}
}

// TestEmbeddedHealing runs lan, crash and drain with healing off and on,
// embedded, and asserts the healing's targets (see checkHealing).
func TestEmbeddedHealing(t *testing.T) {
	o := healingOptions()
	var progress bytes.Buffer
	o.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, o)
	if err != nil && !errors.Is(err, ErrChecks) {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("%d runs in %v", len(res.Runs), time.Since(start).Round(time.Millisecond))
	if len(res.Runs) != 5 {
		t.Fatalf("%d runs, want 5 (lan and crash with healing off and on, drain)", len(res.Runs))
	}
	// The embedded VRRP model is exact: the gap is at most one
	// Master_Down_Interval, 361 ms.
	checkHealing(t, res, 500*time.Millisecond)
}

// TestNetnsHealing is TestEmbeddedHealing with real lispd processes,
// keepalived with the documented timers (VRRPv3, 0.1 s adverts) and real
// ICMP (root only): the VRRP gap must cost each flow under 0.5 s of pings.
func TestNetnsHealing(t *testing.T) {
	netns.Require(t)
	if testing.Short() {
		t.Skip("netns experiment skipped in -short mode")
	}
	o := healingOptions()
	o.Netns = true
	var progress bytes.Buffer
	o.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, o)
	if err != nil && !errors.Is(err, ErrChecks) {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	checkHealing(t, res, 500*time.Millisecond)
}

// everyModePlans are the healing runs of the other sync modes: lan in
// every mode (the failed xTR withdraws its own RLOC, with or without a
// set), crash in naive and gossip (only a synchronization set notices a
// dead member; smart is in healingOptions).
func everyModePlans() []Options {
	lan, crash := healingOptions(), healingOptions()
	lan.Failures, lan.Healing, lan.Variants = []Failure{FailLAN}, HealingOn, []Variant{Off, Naive, Gossip}
	crash.Failures, crash.Healing, crash.Variants = []Failure{FailCrash}, HealingOn, []Variant{Naive, Gossip}
	return []Options{lan, crash}
}

// runEveryMode runs everyModePlans (embedded or netns) and checks the
// healing's targets.
func runEveryMode(t *testing.T, netnsMode bool) {
	for _, o := range everyModePlans() {
		o.Netns = netnsMode
		var progress bytes.Buffer
		o.Progress = &progress
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		res, err := Run(ctx, o)
		cancel()
		if err != nil && !errors.Is(err, ErrChecks) {
			t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
		}
		checkHealing(t, res, 500*time.Millisecond)
	}
}

// TestEmbeddedHealingEveryMode: the healing's targets hold in every sync
// mode, embedded.
func TestEmbeddedHealingEveryMode(t *testing.T) { runEveryMode(t, false) }

// TestNetnsHealingEveryMode: the same with real lispd, keepalived and ICMP
// in namespaces (root only). A killed member is noticed at once in naive
// mode (its TCP sessions close) and, in gossip mode, by keepalived's notify
// hook (lispctl failover check probes the member's port when this router
// becomes master).
func TestNetnsHealingEveryMode(t *testing.T) {
	netns.Require(t)
	if testing.Short() {
		t.Skip("netns experiment skipped in -short mode")
	}
	runEveryMode(t, true)
}
