//go:build linux

package benchdata

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"time"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/lab/netns"
	"github.com/lispd/lispd/lab/twosite"
)

// firstPacketTimeout bounds the wait for the first delivered packet of a
// measurement (the ITR's first miss is resolved well within it).
const firstPacketTimeout = 10 * time.Second

// bench is one run of the benchmark.
type bench struct {
	c     Config
	n     *twosite.Netns
	snd   *sender
	rcv   *receiver
	steps int
	step  int
}

// Run runs the benchmark (see the package documentation). It needs root,
// ip and a kernel with network namespaces and TUN (netns.Supported).
// Everything it creates is removed before it returns.
func Run(ctx context.Context, c Config) (_ *Result, err error) {
	c, err = c.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(c.Relay[0]); err != nil {
		return nil, fmt.Errorf("%w: relay program: %v", ErrInvalid, err)
	}
	if err := netns.Supported(); err != nil {
		return nil, fmt.Errorf("benchdata: %w", err)
	}
	if err := netns.CleanupStale(netns.DefaultPrefix); err != nil {
		fmt.Fprintf(c.Progress, "removing stale labs: %v\n", err)
	}
	res := &Result{Date: time.Now().UTC(), Machine: machine(), DurationSeconds: c.Duration.Seconds(),
		Rounds: c.Rounds, Rate: RateName(c.Rate), SenderGSO: c.SenderGSO}
	fmt.Fprintln(c.Progress, "building the two-site topology in network namespaces")
	n, err := twosite.NewNetns(twosite.NetnsOptions{Lispd: c.Lispd, LogLevel: "warn"})
	if err != nil {
		return nil, fmt.Errorf("benchdata: %w", err)
	}
	defer func() {
		if cerr := n.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("benchdata: removing the topology: %w", cerr)
		}
	}()
	b := &bench{c: c, n: n, steps: 2 * c.Rounds * len(c.Sizes)}
	p := n.Plan()
	if err := n.StartMS(ctx); err != nil {
		return nil, fmt.Errorf("benchdata: %w", err)
	}
	if b.rcv, err = newReceiver(n.Node(twosite.NodeHostB), netip.AddrPortFrom(p.Host[twosite.SiteB], ReceiverPort)); err != nil {
		return nil, err
	}
	defer b.rcv.close()
	if b.snd, err = newSender(n.Node(twosite.NodeHostA), netip.AddrPortFrom(p.Host[twosite.SiteA], SenderPort),
		netip.AddrPortFrom(p.Host[twosite.SiteB], ReceiverPort), c.SenderGSO); err != nil {
		return nil, err
	}
	defer b.snd.close()

	tag := uint32(0)
	for _, size := range c.Sizes {
		sr := SizeResult{Size: size}
		for round := range c.Rounds {
			order := []Router{RouterLispd, RouterRelay}
			if round%2 == 1 {
				order = []Router{RouterRelay, RouterLispd}
			}
			var rd Round
			for _, r := range order {
				tag++
				m, err := b.measure(ctx, r, size, tag)
				if err != nil {
					return nil, err
				}
				if r == RouterLispd {
					rd.Lispd = m
				} else {
					rd.Relay = m
				}
			}
			rd.Ratio = ratio(rd.Lispd.PacketsPerSecond, rd.Relay.PacketsPerSecond)
			sr.Rounds = append(sr.Rounds, rd)
		}
		sr.summarize()
		fmt.Fprintf(c.Progress, "%d B: lispd/relay = %.2f (median of %d rounds)\n", size, sr.Ratio, c.Rounds)
		res.Sizes = append(res.Sizes, sr)
	}
	return res, nil
}

// routers is what runs on the xTR nodes during one measurement.
type routers struct {
	pids [2]string
	// check verifies, before stop, that the delivered packets went
	// through the routers.
	check func(ctx context.Context, delivered uint64) error
	stop  func() error
	alive func() error
}

// startRouters starts r on xtrA and xtrB and waits until they forward.
func (b *bench) startRouters(ctx context.Context, r Router) (*routers, error) {
	n := b.n
	sites := []twosite.Site{twosite.SiteA, twosite.SiteB}
	if r == RouterLispd {
		if err := n.StartXTRs(ctx); err != nil {
			_ = n.StopXTRs()
			return nil, fmt.Errorf("benchdata: %w", err)
		}
		rt := &routers{stop: n.StopXTRs}
		for _, s := range sites {
			rt.pids[s] = strconv.Itoa(n.Lispd(twosite.XTRNode(s)).Pid())
		}
		rt.alive = func() error {
			for _, s := range sites {
				if p := n.Lispd(twosite.XTRNode(s)); p.Exited() {
					return fmt.Errorf("benchdata: lispd on %s exited:\n%s", p.Node(), p.Tail(20))
				}
			}
			return nil
		}
		rt.check = func(ctx context.Context, delivered uint64) error {
			st, err := n.API(twosite.NodeXTRB).Status(ctx)
			if err != nil {
				return fmt.Errorf("benchdata: xtrB's counters: %w", err)
			}
			if got := st.Counters["dataplane_decap_packets"]; got < delivered {
				return fmt.Errorf("benchdata: the receiver got %d packets but xtrB's lispd decapsulated only %d", delivered, got)
			}
			return nil
		}
		return rt, nil
	}
	p := n.Plan()
	var procs [2]*netns.Process
	stop := func() error {
		var errs []error
		for _, pr := range procs {
			if pr != nil {
				errs = append(errs, pr.Stop())
			}
		}
		return errors.Join(errs...)
	}
	for _, s := range sites {
		rc := RelayConfig{
			TUN:    twosite.TUNName,
			MTU:    dataplane.DefaultTUNMTU,
			Routes: []netip.Prefix{p.SitePrefix[s.Other()]},
			Listen: netip.AddrPortFrom(p.RLOC[s], twosite.DataPort),
			Peer:   netip.AddrPortFrom(p.RLOC[s.Other()], twosite.DataPort),
		}
		args := append(append([]string{}, b.c.Relay[1:]...), rc.Args()...)
		node := n.Node(twosite.XTRNode(s))
		pr, err := node.Start(context.Background(), netns.Command{Name: b.c.Relay[0], Args: args, Label: "relay-" + node.Name()})
		if err != nil {
			_ = stop()
			return nil, fmt.Errorf("benchdata: relay on %s: %w", node, err)
		}
		procs[s] = pr
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = pr.WaitOutput(wctx, RelayReady)
		cancel()
		if err != nil {
			_ = stop()
			return nil, fmt.Errorf("benchdata: relay on %s did not start: %w\n%s", node, err, pr.Tail(20))
		}
	}
	rt := &routers{stop: stop}
	for s, pr := range procs {
		rt.pids[s] = strconv.Itoa(pr.Pid())
	}
	rt.alive = func() error {
		for _, pr := range procs {
			if pr.Exited() {
				return fmt.Errorf("benchdata: relay on %s exited:\n%s", pr.Node(), pr.Tail(20))
			}
		}
		return nil
	}
	rt.check = func(context.Context, uint64) error { return nil }
	return rt, nil
}

// measure runs one measurement: r on the xTR nodes, datagrams of size
// bytes tagged tag.
func (b *bench) measure(ctx context.Context, r Router, size int, tag uint32) (m Measurement, err error) {
	b.step++
	fmt.Fprintf(b.c.Progress, "[%d/%d] %d B through %s: starting the routers\n", b.step, b.steps, size, r)
	rt, err := b.startRouters(ctx, r)
	if err != nil {
		return m, err
	}
	defer func() {
		if serr := rt.stop(); serr != nil && err == nil {
			err = fmt.Errorf("benchdata: stopping %s: %w", r, serr)
		}
	}()
	b.rcv.expect(size, tag)
	switch b.c.Rate {
	case RateAdaptive:
		b.snd.rate.Store(AdaptiveMinRate)
		stopCtl := b.adapt()
		defer stopCtl()
	case RateMax:
		b.snd.rate.Store(0)
	default:
		b.snd.rate.Store(uint64(b.c.Rate))
	}
	b.snd.start(size, tag)
	defer func() {
		if serr := b.snd.halt(); serr != nil && err == nil {
			err = serr
		}
	}()

	// Warm-up: the first delivered packet (after the ITR's miss and
	// ARP), then Warmup of steady traffic.
	deadline := time.Now().Add(firstPacketTimeout)
	for b.rcv.count.Load() == 0 {
		if err := firstError(rt.alive(), b.snd.failed()); err != nil {
			return m, err
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("%w: %s delivered nothing to hostB within %v (sent %d)", ErrNoTraffic, r, firstPacketTimeout, b.snd.sent.Load())
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return m, err
		}
	}
	if err := sleep(ctx, b.c.Warmup); err != nil {
		return m, err
	}

	s0, err := b.snapshot(rt)
	if err != nil {
		return m, err
	}
	if err := sleep(ctx, b.c.Duration); err != nil {
		return m, err
	}
	s1, err := b.snapshot(rt)
	if err != nil {
		return m, err
	}
	if err := firstError(rt.alive(), b.snd.failed()); err != nil {
		return m, err
	}
	if err := b.snd.halt(); err != nil {
		return m, err
	}
	if err := rt.check(ctx, b.rcv.count.Load()); err != nil {
		return m, err
	}
	d := s1.at.Sub(s0.at)
	m = measurement(r, size, s1.sent-s0.sent, s1.delivered-s0.delivered, d)
	pct := func(a, b time.Duration) float64 { return 100 * (b - a).Seconds() / d.Seconds() }
	m.ITRCPU = pct(s0.cpu[0], s1.cpu[0])
	m.ETRCPU = pct(s0.cpu[1], s1.cpu[1])
	m.GeneratorCPU = pct(s0.self, s1.self)
	m.MachineCPU = pct(s0.machine, s1.machine)
	fmt.Fprintf(b.c.Progress, "[%d/%d] %d B through %s: %.0f packets/s delivered (%.0f/s sent), CPU xtrA %.0f%% xtrB %.0f%% generator %.0f%% machine %.0f%%\n",
		b.step, b.steps, size, r, m.PacketsPerSecond, m.SentPerSecond, m.ITRCPU, m.ETRCPU, m.GeneratorCPU, m.MachineCPU)
	return m, nil
}

// adapt starts RoutineRateControl, which sets the sender's rate to
// AdaptiveHeadroom times the rate delivered in the last AdaptiveInterval
// (at least AdaptiveMinRate), and returns the function that stops it.
func (b *bench) adapt() (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() { // RoutineRateControl
		defer close(done)
		t := time.NewTicker(AdaptiveInterval)
		defer t.Stop()
		last, lastAt := b.rcv.count.Load(), time.Now()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				c := b.rcv.count.Load()
				delivered := float64(c-last) / now.Sub(lastAt).Seconds()
				last, lastAt = c, now
				b.snd.rate.Store(uint64(max(AdaptiveHeadroom*delivered, AdaptiveMinRate)))
			}
		}
	}()
	return func() { close(quit); <-done }
}

// snapshot is the state of the counters at one instant.
type snapshot struct {
	at              time.Time
	sent, delivered uint64
	cpu             [2]time.Duration
	self, machine   time.Duration
}

func (b *bench) snapshot(rt *routers) (snapshot, error) {
	s := snapshot{at: time.Now(), sent: b.snd.sent.Load(), delivered: b.rcv.count.Load()}
	var err error
	for i, pid := range rt.pids {
		if s.cpu[i], err = cpuTime(pid); err != nil {
			return s, fmt.Errorf("benchdata: CPU time of router process %s: %w", pid, err)
		}
	}
	if s.self, err = cpuTime("self"); err != nil {
		return s, fmt.Errorf("benchdata: %w", err)
	}
	if s.machine, err = machineBusy(); err != nil {
		return s, fmt.Errorf("benchdata: %w", err)
	}
	return s, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// firstError returns the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
