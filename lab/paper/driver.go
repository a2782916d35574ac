package paper

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/lab/topo"
	"github.com/lispd/lispd/lab/traffic"
)

// site is one built instance of the topology, embedded or in namespaces:
// what the driver needs to run the experiment on it.
type site interface {
	// clients are the local API clients of ITR1 and ITR2.
	clients() map[string]*api.Client
	// remotes are the local API clients of the remote xTRs, by name.
	remotes() map[string]*api.Client
	// mapServer is the local API client of the Map-Server/Map-Resolver.
	mapServer() *api.Client
	// ready returns nil once the site can carry traffic: registrations
	// in place, sync peers connected, VRRP masters elected.
	ready(ctx context.Context) error
	// startTraffic starts the hosts' pings (recorded in the ledger) and
	// the destinations' answers; it returns when the first ping is due.
	startTraffic(ctx context.Context) (time.Time, error)
	// stopTraffic stops sending pings; answers keep flowing.
	stopTraffic()
	// fail makes ITR1 fail as kind says and returns when the failure
	// began (for a drain, when Drain was called; fail returns once it
	// returned).
	fail(ctx context.Context, kind Failure) (time.Time, error)
	// drained is what ITR1's Drain said (nil unless it was drained).
	drained() *DrainOutcome
	// switchovers returns the failovers measured since failAt: for each
	// VRRP group ITR1 was master of, when ITR2 claimed its address. It
	// returns what it has (possibly nothing) when ctx ends.
	switchovers(ctx context.Context, failAt time.Time) []Switchover
	// handed is when router first received a request of flow from the
	// LAN.
	handed(flow uint16, router string) (time.Time, bool)
}

// errNoSwitchover is returned when VRRP did not fail over in time.
var errNoSwitchover = errors.New("paper: VRRP did not fail over")

// drive runs the experiment's phases on s and measures them.
func drive(ctx context.Context, o Options, p *progress, t *topo.Topology, spec Spec, s site, led *traffic.Ledger, rng *rand.Rand) (RunResult, error) {
	obs := &observation{topo: t, spec: spec, variant: spec.Variant, ledger: led, handed: s.handed}
	p.phase("waiting for registrations, sync peers and VRRP masters")
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := s.ready(readyCtx)
	cancel()
	if err != nil {
		return RunResult{}, err
	}
	clients, remotes := s.clients(), s.remotes()
	if obs.first, err = takeSnapshot(ctx, clients); err != nil {
		return RunResult{}, err
	}
	if obs.remoteFirst, err = takeSnapshot(ctx, remotes); err != nil {
		return RunResult{}, err
	}
	start, err := s.startTraffic(ctx)
	if err != nil {
		return RunResult{}, err
	}
	defer s.stopTraffic()
	obs.start = start

	// Warm-up: at least WarmUp, until every flow has had a reply, and
	// until nothing is being learned any more: no xTR inserted or
	// replaced a map-cache entry (by Map-Reply or sync) for two ping
	// intervals. This waits for the state the failure is meant to
	// interrupt, whatever it is, without assuming what it holds.
	p.phase("warm-up: %d flows pinging every %v for %v", len(t.Flows), o.PingInterval, o.WarmUp)
	warmDeadline := start.Add(o.WarmUp + 20*time.Second)
	var learning uint64
	var quietSince time.Time
	for {
		snap, err := takeSnapshot(ctx, clients)
		if err != nil {
			return RunResult{}, err
		}
		if n := learned(snap); n != learning || quietSince.IsZero() {
			learning, quietSince = n, time.Now()
		}
		if time.Since(start) >= o.WarmUp && allPositive(led.Delivered()) && time.Since(quietSince) >= 2*o.PingInterval {
			break
		}
		if time.Now().After(warmDeadline) {
			return RunResult{}, fmt.Errorf("paper: %v after the first ping the site had not settled (replies per flow %v, last map-cache change %v ago)%s",
				time.Since(start).Round(time.Millisecond), led.Delivered(), time.Since(quietSince).Round(time.Millisecond), counterDump(ctx, clients))
		}
		if err := sleep(ctx, o.PingInterval/4); err != nil {
			return RunResult{}, err
		}
	}
	// A random phase against the VRRP advertisements, from the seed.
	if err := sleep(ctx, time.Duration(rng.Int64N(int64(o.advertInt())))); err != nil {
		return RunResult{}, err
	}
	if obs.before, err = takeSnapshot(ctx, clients); err != nil {
		return RunResult{}, err
	}
	if obs.remoteBefore, err = takeSnapshot(ctx, remotes); err != nil {
		return RunResult{}, err
	}
	if obs.msBefore, err = msCounters(ctx, s.mapServer()); err != nil {
		return RunResult{}, err
	}
	// From now on the remote xTRs' map-caches are read every RemotePoll
	// (by the watch only) until ITR1's RLOC is withdrawn in each: it
	// starts before the failure, since a drain returns only once the
	// remote ITRs moved.
	x1, _ := t.XTR(topo.ITR1)
	watch := watchWithdrawal(ctx, remotes, t.SitePrefix, x1.RLOC)
	watching := true
	defer func() {
		if watching {
			watch.stop()
		}
	}()
	switch spec.Failure {
	case FailDrain:
		p.phase("draining ITR1 (the API's Drain, as lispctl drain): waiting for the ingress to move and the track file")
	case FailCrash:
		p.phase("crashing ITR1 (lispd and VRRP killed)")
	}
	if obs.failAt, err = s.fail(ctx, spec.Failure); err != nil {
		return RunResult{}, err
	}
	if spec.Failure == FailCrash {
		// ITR1's API died with it: it is read no more.
		alive := map[string]*api.Client{}
		for name, c := range clients {
			if name != topo.ITR1 {
				alive[name] = c
			}
		}
		clients = alive
	}
	switch spec.Failure {
	case FailDrain:
		p.phase("ITR1 drained after %v; waiting for VRRP (the track file puts ITR1 in FAULT: takeover after the skew time)", time.Since(obs.failAt).Round(time.Millisecond))
	case FailCrash:
		p.phase("ITR1 crashed; waiting for VRRP (takeover %v after the last advertisement)", o.masterDown().Round(time.Millisecond))
	default:
		p.phase("ITR1 failed (LAN interface down); waiting for VRRP (takeover %v after the last advertisement)", o.masterDown().Round(time.Millisecond))
	}

	swCtx, cancel := context.WithTimeout(ctx, 2*o.masterDown()+5*time.Second)

	obs.switched = s.switchovers(swCtx, obs.failAt)
	cancel()
	if err := ctx.Err(); err != nil {
		return RunResult{}, err
	}
	if len(obs.switched) == 0 {
		return RunResult{}, fmt.Errorf("%w within %v", errNoSwitchover, 2*o.masterDown()+5*time.Second)
	}
	obs.switchAt = map[string]time.Time{}
	var last time.Duration
	for _, sw := range obs.switched {
		last = max(last, sw.After)
		for _, h := range t.Hosts {
			if h.VRID == sw.VRID {
				obs.switchAt[h.Name] = obs.failAt.Add(sw.After)
			}
		}
	}
	p.phase("switchover after %v; observing for %v", last.Round(time.Millisecond), o.AfterSwitch)
	if err := sleep(ctx, time.Until(obs.failAt.Add(last+o.AfterSwitch))); err != nil {
		return RunResult{}, err
	}
	s.stopTraffic()
	obs.end = time.Now()
	p.phase("draining and collecting counters")
	if err := sleep(ctx, o.Drain); err != nil {
		return RunResult{}, err
	}
	if obs.last, err = takeSnapshot(ctx, clients); err != nil {
		return RunResult{}, err
	}
	obs.withdrawnAt, watching = watch.stop(), false
	if obs.remoteLast, err = takeSnapshot(ctx, remotes); err != nil {
		return RunResult{}, err
	}
	if obs.msLast, err = msCounters(ctx, s.mapServer()); err != nil {
		return RunResult{}, err
	}
	run := analyze(obs)
	run.Drain = s.drained()
	return run, nil
}

// msCounters reads the Map-Server's counters.
func msCounters(ctx context.Context, c *api.Client) (map[string]uint64, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("paper: Map-Server status: %w", err)
	}
	return st.Counters, nil
}

// learned sums the map-cache inserts and replacements of every xTR.
func learned(s snapshot) uint64 {
	var n uint64
	for _, c := range s.counters {
		n += c[ctrCacheInserts] + c[ctrCacheReplaces]
	}
	return n
}

func allPositive(xs []int) bool {
	for _, x := range xs {
		if x == 0 {
			return false
		}
	}
	return len(xs) > 0
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Run runs the experiment as o says and returns its result. When a
// relation that must hold does not, it returns the result with an error
// wrapping ErrChecks.
func Run(ctx context.Context, o Options) (*Result, error) {
	o, err := o.normalized()
	if err != nil {
		return nil, err
	}
	mode := "embedded"
	if o.Netns {
		mode = "netns"
	}
	plan := o.Plan()
	res := &Result{Mode: mode, Seed: o.Seed, Settings: o.settings(), Scaled: o.scaled(), Paper: PaperTable1()}
	p := newProgress(o.Progress, len(plan), o.estimate())
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0x9e3779b97f4a7c15))
	var env runner
	if o.Netns {
		env, err = newNetnsRunner(ctx, o, p)
	} else {
		env, err = newEmbeddedRunner(o, p)
	}
	if err != nil {
		return nil, err
	}
	defer env.close()
	for i, spec := range plan {
		p.run(i+1, spec.String())
		run, err := env.run(ctx, spec, i+1, rng)
		if err != nil {
			return nil, fmt.Errorf("paper: %s: %w", spec, err)
		}
		res.Runs = append(res.Runs, run)
		if f := run.Failed(); len(f) > 0 {
			p.phase("done; %d check(s) FAILED", len(f))
		} else {
			p.phase("done; all %d checks hold", len(run.Checks))
		}
	}
	var failed []string
	for _, run := range res.Runs {
		for _, c := range run.Failed() {
			failed = append(failed, fmt.Sprintf("%s: %s", run.Spec(), c.Name))
		}
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("%w: %v", ErrChecks, failed)
	}
	return res, nil
}

// runner builds and runs the topology in one mode.
type runner interface {
	// run builds the topology for spec (the i-th run), drives the
	// experiment, tears the topology down and returns the result.
	run(ctx context.Context, spec Spec, i int, rng *rand.Rand) (RunResult, error)
	// close releases what the runner keeps between runs.
	close()
}

// counterDump formats the non-zero counters of the site's xTRs, to explain
// a run that went wrong.
func counterDump(ctx context.Context, clients map[string]*api.Client) string {
	snap, err := takeSnapshot(ctx, clients)
	if err != nil {
		return "; " + err.Error()
	}
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(snap.counters)) {
		fmt.Fprintf(&b, "\n%s counters:", name)
		for _, k := range slices.Sorted(maps.Keys(snap.counters[name])) {
			if v := snap.counters[name][k]; v != 0 {
				fmt.Fprintf(&b, " %s=%d", k, v)
			}
		}
	}
	return b.String()
}
