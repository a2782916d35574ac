package paper

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/lab/netns"
	"github.com/lispd/lispd/lab/topo"
	"github.com/lispd/lispd/lab/traffic"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fast are options that keep the embedded experiment short in the test
// suite while leaving every relation of Table 1 measurable: the paper's
// LAN failure without the healing, each flow pinging every 100 ms, ITR1
// failing after at least 1 s, VRRP with the documented timers (takeover
// 361 ms after the last advertisement), and traffic going on 1 s after
// the switchover.
func fast() Options {
	return Options{
		Failures:     []Failure{FailLAN},
		Healing:      HealingOff,
		Tests:        []int{1, 2},
		Variants:     Variants(),
		PingInterval: 100 * time.Millisecond,
		WarmUp:       time.Second,
		AfterSwitch:  time.Second,
		Drain:        200 * time.Millisecond,
		Seed:         7,
	}
}

// checkRelations asserts, from the measured counters of each run, what
// the issue says must hold: with sync on in any mode, zero cache-miss
// losses on ITR2 and identical cache contents for the flows in use; with
// sync off, ITR2's misses equal the flows it had not seen.
func checkRelations(t *testing.T, res *Result) {
	t.Helper()
	for _, run := range res.Runs {
		name := topo.Test(run.Test).String() + " " + string(run.Variant)
		for _, c := range run.Failed() {
			t.Errorf("%s: check %q failed: %s", name, c.Name, c.Detail)
		}
		itr1, itr2 := run.ITR(topo.ITR1), run.ITR(topo.ITR2)
		if itr1 == nil || itr2 == nil {
			t.Fatalf("%s: missing ITR results", name)
		}
		// ITR1 carried USR1's 20 flows in both tests and USR2's 10 in
		// Test 1: it resolved them itself, whatever the sync mode.
		wantITR1 := CacheCount{Total: 30, USR1: 20, USR2: 10}
		if run.Test == 2 && run.Variant == Off {
			wantITR1 = CacheCount{Total: 20, USR1: 20, USR2: 0}
		}
		if itr1.BeforeFailure != wantITR1 {
			t.Errorf("%s: ITR1 MC %v, want %v", name, itr1.BeforeFailure, wantITR1)
		}
		lostToMisses := run.Traffic.After[traffic.LostAtITR]
		switch run.Variant {
		case Off:
			// ITR2 saw nothing in Test 1 and USR2's 10 flows in Test 2.
			unseen := 30
			if run.Test == 2 {
				unseen = 20
			}
			if run.UnseenFlows != unseen || run.ITR2Misses != unseen {
				t.Errorf("%s: ITR2 misses %d, unseen flows %d, want both %d", name, run.ITR2Misses, run.UnseenFlows, unseen)
			}
			if lostToMisses < unseen || run.ITR2MissDrops != lostToMisses {
				t.Errorf("%s: %d requests lost to misses, ITR2 counted %d miss drops, want >= %d and equal", name, lostToMisses, run.ITR2MissDrops, unseen)
			}
			if run.Sync != nil {
				t.Errorf("%s: sync result without a sync set", name)
			}
		default:
			if run.ITR2Misses != 0 || run.ITR2MissDrops != 0 || lostToMisses != 0 {
				t.Errorf("%s: ITR2 misses %d, miss drops %d, lost to misses %d, want 0", name, run.ITR2Misses, run.ITR2MissDrops, lostToMisses)
			}
			if itr2.BeforeFailure != (CacheCount{Total: 30, USR1: 20, USR2: 10}) {
				t.Errorf("%s: ITR2 MC %v, want 30/20/10", name, itr2.BeforeFailure)
			}
			if run.Sync == nil || run.Sync.TotalBytes == 0 {
				t.Errorf("%s: the sync set reported no bytes sent: %+v", name, run.Sync)
			}
		}
		// Every record ITR2 holds for a flow it never carried must have
		// its mechanism named, and with sync on it is the sync.
		for _, r := range itr2.Uncarried {
			if r.Mechanism == "" {
				t.Errorf("%s: record %v without a mechanism", name, r.Prefix)
			}
			if run.Variant != Off && r.Source != "sync" {
				t.Errorf("%s: uncarried record %v came from %q", name, r.Prefix, r.Source)
			}
		}
		// The gap lasts at least one master-down interval minus one
		// advertisement interval.
		if len(run.Switchovers) == 0 || run.Switchovers[0].After < res.Settings.MasterDownITR-res.Settings.VRRPAdvert-5*time.Millisecond {
			t.Errorf("%s: switchovers %+v (master down %v)", name, run.Switchovers, res.Settings.MasterDownITR)
		}
	}
}

func TestEmbeddedPaper(t *testing.T) {
	o := fast()
	if testing.Short() {
		o.Tests = []int{1}
		o.Variants = []Variant{Off, Smart}
	}
	var progress bytes.Buffer
	o.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("%d runs in %v", len(res.Runs), time.Since(start).Round(time.Millisecond))
	if len(res.Runs) != len(res.Settings.Tests)*len(res.Settings.Variants) || len(res.Runs) != len(res.Settings.Plan) {
		t.Fatalf("%d runs for %v x %v", len(res.Runs), res.Settings.Tests, res.Settings.Variants)
	}
	checkRelations(t, res)
	if !bytes.Contains(progress.Bytes(), []byte("left)")) || !bytes.Contains(progress.Bytes(), []byte("warm-up")) {
		t.Errorf("progress lacks phases and time left:\n%s", progress.String())
	}
	if len(res.Scaled) == 0 {
		t.Error("the result does not say what was scaled")
	}
}

func TestEmbeddedCancel(t *testing.T) {
	// Cancelling mid-run stops everything (goleak checks the goroutines)
	// and returns the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	o := fast()
	o.Tests, o.Variants = []int{2}, []Variant{Gossip}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o.Progress = w
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if bytes.Contains(buf[:n], []byte("warm-up")) {
				cancel()
			}
			if err != nil {
				return
			}
		}
	}()
	_, err = Run(ctx, o)
	w.Close()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel: %v, want context.Canceled", err)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{
		{Tests: []int{3}},
		{Variants: []Variant{"eager"}},
		{Failures: []Failure{"fire"}},
		{Healing: "sometimes"},
		{Failures: []Failure{FailDrain}, Healing: HealingOff},
		{PingInterval: time.Millisecond},
		{WarmUp: 10 * time.Millisecond},
		{AfterSwitch: 10 * time.Millisecond},
		{VRRPAdvert: 5 * time.Millisecond},
		{VRRPAdvert: 105 * time.Millisecond},
	} {
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrInvalid) {
			t.Errorf("Run(%+v) = %v, want ErrInvalid", o, err)
		}
	}
	n, err := Options{}.normalized()
	if err != nil || n.VRRPAdvert != DefaultVRRPAdvert || n.AfterSwitch < 10*time.Second || n.Healing != HealingBoth {
		t.Errorf("normalized: %+v, %v", n, err)
	}
	// The default plan: lan in both tests without sync and with smart,
	// crash and drain in Test 1 with smart; healing off and on side by
	// side, a drain with healing on only.
	var got []string
	for _, s := range n.Plan() {
		got = append(got, s.String())
	}
	want := []string{
		"lan failure, healing off, Test 1, sync off", "lan failure, healing on, Test 1, sync off",
		"lan failure, healing off, Test 1, sync smart", "lan failure, healing on, Test 1, sync smart",
		"lan failure, healing off, Test 2, sync off", "lan failure, healing on, Test 2, sync off",
		"lan failure, healing off, Test 2, sync smart", "lan failure, healing on, Test 2, sync smart",
		"crash failure, healing off, Test 1, sync smart", "crash failure, healing on, Test 1, sync smart",
		"drain failure, healing on, Test 1, sync smart",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("default plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The documented keepalived timers: 0.1 s adverts, a priority-100
	// backup takes over 3 x 100 ms + 156/256 x 100 ms later.
	if got := n.masterDown(); got != 360937500*time.Nanosecond {
		t.Errorf("master down = %v, want 360.9375ms", got)
	}
	if est := n.estimate() * time.Duration(len(n.Plan())); est > 3*time.Minute {
		t.Errorf("the default plan is estimated at %v, want under 3 minutes", est)
	}
}

// TestNetnsPaper runs the experiment with real lispd processes, network
// namespaces and keepalived (root only; CI runs it as root). To stay
// within CI's budget it runs four of the eight runs, covering both tests
// and every sync variant: Test 1 with sync off and naive, Test 2 with
// smart and gossip; `lisplab paper --netns` runs all eight.
func TestNetnsPaper(t *testing.T) {
	netns.Require(t)
	if testing.Short() {
		t.Skip("netns experiment skipped in -short mode")
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var all Result
	for _, part := range []struct {
		test     int
		variants []Variant
	}{{1, []Variant{Off, Naive}}, {2, []Variant{Smart, Gossip}}} {
		res, err := Run(ctx, Options{Netns: true, Failures: []Failure{FailLAN}, Healing: HealingOff, AfterSwitch: 2 * time.Second,
			Tests: []int{part.test}, Variants: part.variants, Seed: 3, Progress: &progress})
		if err != nil {
			t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
		}
		all.Settings = res.Settings
		all.Runs = append(all.Runs, res.Runs...)
	}
	checkRelations(t, &all)
}
