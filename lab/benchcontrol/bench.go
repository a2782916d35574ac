package benchcontrol

import (
	"context"
	"errors"
	"fmt"
	"github.com/lispd/lispd/lab/labkit"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Config describes a run of the control-plane benchmark.
type Config struct {
	// Lispd is the lispd binary to test; empty means labkit.FindLispd's search.
	Lispd string
	// Rates are the offered Map-Request rates, one step each, in requests
	// per second; 0 means as fast as the generator can send.
	Rates []int
	// Step is the length of each rate step.
	Step time.Duration
	// Prefixes is how many EID-prefixes are registered before the request
	// steps and the Map-Register test (at most MaxPrefixes).
	Prefixes int
	// Registers is how many Map-Registers the register test sends per
	// authentication algorithm; 0 skips the test.
	Registers int
	// MemoryPrefixes is how many prefixes are registered for the memory
	// figure at the end; 0 skips it. It must be at least Prefixes.
	MemoryPrefixes int
	// PubSubSubscribers is how many xTRs (xTR-IDs) subscribe to one
	// prefix for the publication latency test; 0 skips it.
	PubSubSubscribers int
	// PubSubChanges is how many changes of that prefix's mapping the
	// latency test publishes (at least 1 when it runs).
	PubSubChanges int
	// PubSubSubscriptions is how many subscriptions each of the two memory
	// shapes creates; with the first one in place the request steps run a
	// second time. 0 skips both. It needs registered prefixes.
	PubSubSubscriptions int
	// Progress receives one line per phase; nil means none.
	Progress io.Writer

	// settle replaces memorySettle when positive (tests).
	settle time.Duration
}

// DefaultRates are the rate steps of the issue: 10k to 200k requests per
// second, then as fast as possible.
var DefaultRates = []int{10000, 25000, 50000, 100000, 200000, 0}

// Result is everything a run measured.
type Result struct {
	// Date is when the run started.
	Date time.Time `json:"date"`
	// Machine describes where it ran.
	Machine Machine `json:"machine"`
	// Prefixes is the number of prefixes registered for the request steps.
	Prefixes int `json:"prefixes"`
	// SetupSeconds is how long registering them took (bulk Map-Registers
	// of 32 records, acknowledged by Map-Notify).
	SetupSeconds float64 `json:"setup_seconds"`
	// Steps are the request rate steps.
	Steps []StepResult `json:"steps"`
	// PeakRepliesPerSecond is the highest reply rate of any step.
	PeakRepliesPerSecond float64 `json:"peak_replies_per_second"`
	// Registers are the Map-Register rate tests, one per algorithm.
	Registers []RegisterResult `json:"registers,omitempty"`
	// Memory are lispd's memory figures at several registration counts.
	Memory []MemoryResult `json:"memory,omitempty"`
	// PubSub are the publish/subscribe figures; nil when skipped.
	PubSub *PubSubResult `json:"pubsub,omitempty"`
	// LispdAlive reports that lispd was still running at the end.
	LispdAlive bool `json:"lispd_alive"`
}

// Machine describes the test machine.
type Machine struct {
	// CPUs is the number of logical CPUs.
	CPUs int `json:"cpus"`
	// Model is the CPU model name from /proc/cpuinfo.
	Model string `json:"cpu_model"`
	// Kernel is the kernel release.
	Kernel string `json:"kernel"`
	// Go is the Go version of the generator.
	Go string `json:"go"`
	// LoadAverage is the 1-minute load average when the run started: other
	// work on a shared machine takes CPU from both lispd and the generator.
	LoadAverage string `json:"load_average"`
}

// MemoryResult is lispd's memory with a number of registered prefixes.
type MemoryResult struct {
	// Prefixes is the number of registered prefixes.
	Prefixes int `json:"prefixes"`
	// RSS is lispd's resident memory (VmRSS) in bytes.
	RSS uint64 `json:"rss_bytes"`
	// PeakRSS is lispd's peak resident memory so far (VmHWM) in bytes.
	PeakRSS uint64 `json:"peak_rss_bytes"`
}

// ErrConfig is returned for an invalid Config.
var ErrConfig = errors.New("benchcontrol: invalid configuration")

func (c *Config) validate() error {
	switch {
	case len(c.Rates) == 0:
		return fmt.Errorf("%w: no rate", ErrConfig)
	case len(c.Rates) >= maxSteps:
		return fmt.Errorf("%w: at most %d rates", ErrConfig, maxSteps-1)
	case c.Step <= 0:
		return fmt.Errorf("%w: step must be positive", ErrConfig)
	case c.Prefixes < 0 || c.Prefixes > MaxPrefixes:
		return fmt.Errorf("%w: prefixes must be between 0 and %d", ErrConfig, MaxPrefixes)
	case c.Registers < 0:
		return fmt.Errorf("%w: registers must not be negative", ErrConfig)
	case c.Registers > 0 && c.Prefixes < 2:
		return fmt.Errorf("%w: the register test needs at least 2 registered prefixes", ErrConfig)
	case c.MemoryPrefixes != 0 && (c.MemoryPrefixes < c.Prefixes || c.MemoryPrefixes > MaxPrefixes):
		return fmt.Errorf("%w: memory prefixes must be between prefixes (%d) and %d", ErrConfig, c.Prefixes, MaxPrefixes)
	}
	for _, r := range c.Rates {
		if r < 0 {
			return fmt.Errorf("%w: negative rate %d", ErrConfig, r)
		}
	}
	switch {
	case c.PubSubSubscribers < 0 || c.PubSubSubscribers > MaxPubSubSubscriptions:
		return fmt.Errorf("%w: pub/sub subscribers must be between 0 and %d", ErrConfig, MaxPubSubSubscriptions)
	case c.PubSubChanges < 0 || c.PubSubChanges > MaxPubSubChanges:
		return fmt.Errorf("%w: pub/sub changes must be between 0 and %d", ErrConfig, MaxPubSubChanges)
	case c.PubSubSubscribers > 0 && c.PubSubChanges == 0:
		return fmt.Errorf("%w: the pub/sub latency test needs at least 1 change", ErrConfig)
	case c.PubSubSubscriptions < 0 || c.PubSubSubscriptions > MaxPubSubSubscriptions:
		return fmt.Errorf("%w: pub/sub subscriptions must be between 0 and %d", ErrConfig, MaxPubSubSubscriptions)
	case c.PubSubSubscriptions > 0 && c.Prefixes < 1:
		return fmt.Errorf("%w: pub/sub subscriptions need registered prefixes", ErrConfig)
	case c.PubSubSubscriptions > 0 && 2*len(c.Rates) >= maxSteps:
		return fmt.Errorf("%w: with pub/sub subscriptions, at most %d rates", ErrConfig, (maxSteps-1)/2)
	}
	return nil
}

// maxSubscriptions is the pub/sub capacity lispd is given: room for every
// subscription of the run, or 0 (pub/sub off) when it makes none.
func (c *Config) maxSubscriptions() int {
	if c.PubSubSubscribers == 0 && c.PubSubSubscriptions == 0 {
		return 0
	}
	return c.PubSubSubscribers + 2*c.PubSubSubscriptions + 1000
}

func (c *Config) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}

// socketBuffer is the generator's socket buffer size: room for a burst of
// replies while its receiver is descheduled.
const socketBuffer = 16 << 20

// Run starts lispd as a separate process on 127.0.0.1, registers
// cfg.Prefixes prefixes, offers each rate for cfg.Step, runs the
// publish/subscribe tests (with the rates again), measures the Map-Register
// rate and the memory, stops lispd and returns the figures.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lisplab-bench-control-")
	if err != nil {
		return nil, fmt.Errorf("benchcontrol: %w", err)
	}
	defer os.RemoveAll(dir)
	bin, err := labkit.FindLispd(ctx, cfg.Lispd, dir)
	if err != nil {
		return nil, err
	}
	res := &Result{Date: time.Now().UTC(), Machine: machine(), Prefixes: cfg.Prefixes}
	cfg.progress("starting %s", bin)
	p, err := startLispd(ctx, bin, dir, lispdOptions{maxSubscriptions: cfg.maxSubscriptions()})
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if err := runPhases(ctx, &cfg, p, res); err != nil {
		if !p.alive() {
			err = fmt.Errorf("%w (lispd exited; its logs: %s)", err, strings.TrimSpace(p.logs.String()))
		}
		return nil, err
	}
	res.LispdAlive = p.alive()
	if !res.LispdAlive {
		return nil, fmt.Errorf("benchcontrol: lispd exited during the run: %s", strings.TrimSpace(p.logs.String()))
	}
	return res, nil
}

// runPhases runs the phases of a run against a started lispd.
func runPhases(ctx context.Context, cfg *Config, p *lispdProc, res *Result) error {
	if err := measureMemory(p, 0, res); err != nil {
		return err
	}
	reg, err := newRegistrar(p)
	if err != nil {
		return err
	}
	defer reg.close()
	cfg.progress("registering %d prefixes", cfg.Prefixes)
	start := time.Now()
	if err := reg.register(ctx, 0, cfg.Prefixes); err != nil {
		return err
	}
	res.SetupSeconds = time.Since(start).Seconds()
	if err := measureMemory(p, cfg.Prefixes, res); err != nil {
		return err
	}

	l, err := newLoad(p, cfg.Prefixes, socketBuffer)
	if err != nil {
		return err
	}
	defer l.close()
	if res.Steps, err = runSteps(ctx, cfg, p, l, 1, ""); err != nil {
		return err
	}
	for _, st := range res.Steps {
		res.PeakRepliesPerSecond = max(res.PeakRepliesPerSecond, st.RepliesPerSecond)
	}
	if err := runPubSub(ctx, cfg, p, l, res); err != nil {
		return err
	}

	if cfg.Registers > 0 {
		for _, site := range []int{siteSHA1, siteSHA256} {
			cfg.progress("Map-Register rate, %s: %d registers", algorithmName(site), cfg.Registers)
			r, err := registerRate(ctx, p, site, cfg.Prefixes, cfg.Registers)
			if err != nil {
				return err
			}
			res.Registers = append(res.Registers, r)
		}
	}
	if cfg.MemoryPrefixes > cfg.Prefixes {
		cfg.progress("registering up to %d prefixes for the memory figure", cfg.MemoryPrefixes)
		if err := reg.register(ctx, cfg.Prefixes, cfg.MemoryPrefixes); err != nil {
			return err
		}
		if err := measureMemory(p, cfg.MemoryPrefixes, res); err != nil {
			return err
		}
	}
	cs, err := p.counters(ctx)
	if err != nil {
		return err
	}
	if got := cs["mapserver_expired"]; got != 0 {
		return fmt.Errorf("benchcontrol: %d registrations expired during the run", got)
	}
	if ps := res.PubSub; ps != nil {
		ps.Publications = cs["mapserver_publications"]
		ps.Retransmissions = cs["mapserver_pubsub_map_notify_retransmitted"]
		ps.GivenUp = cs["mapserver_pubsub_map_notify_given_up"]
	}
	return nil
}

// runSteps warms up, then offers each rate of cfg, tagging step i (from 0)
// with firstTag+i; what is added to each progress line.
func runSteps(ctx context.Context, cfg *Config, p *lispdProc, l *load, firstTag int, what string) ([]StepResult, error) {
	// Warm up (tag 0 is not reported).
	if _, err := l.run(ctx, 0, cfg.Rates[0], min(cfg.Step, 500*time.Millisecond)); err != nil {
		return nil, err
	}
	l.drain(0)
	var out []StepResult
	for i, rate := range cfg.Rates {
		st, err := runStep(ctx, p, l, firstTag+i, rate, cfg.Step)
		if err != nil {
			return nil, err
		}
		cfg.progress("step %s%s: sent %d, replies %d (%.0f/s), loss %.2f%%, p50 %.0fµs, p99 %.0fµs, lispd CPU %.0f%%",
			RateName(rate), what, st.Sent, st.Replies, st.RepliesPerSecond, 100*st.Loss, st.P50Micros, st.P99Micros, st.LispdCPU)
		out = append(out, st)
	}
	return out, nil
}

// runPubSub runs the publish/subscribe tests: the publication latency, then
// the first memory shape, the request steps again with its subscriptions,
// and the second memory shape.
func runPubSub(ctx context.Context, cfg *Config, p *lispdProc, l *load, res *Result) error {
	if cfg.PubSubSubscribers == 0 && cfg.PubSubSubscriptions == 0 {
		return nil
	}
	ps := &PubSubResult{}
	res.PubSub = ps
	if n := cfg.PubSubSubscribers; n > 0 {
		cfg.progress("pub/sub latency: %d subscribers of one prefix, %d changes", n, cfg.PubSubChanges)
		lat, err := pubsubLatency(ctx, p, n, cfg.PubSubChanges)
		if err != nil {
			return err
		}
		ps.Latency = lat
		cfg.progress("pub/sub latency: subscribed in %.2f s; last subscriber p50 %.0fµs, p99 %.0fµs, max %.0fµs; %d of %d received",
			lat.SubscribeSeconds, lat.LastP50Micros, lat.LastP99Micros, lat.LastMaxMicros, lat.Received, n*cfg.PubSubChanges)
	}
	if cfg.PubSubSubscriptions == 0 {
		return nil
	}
	shapes := memoryShapes(cfg.PubSubSubscriptions, cfg.Prefixes)
	for i, sh := range shapes {
		cfg.progress("pub/sub memory: %d xTR-IDs x %d prefixes (%d subscriptions)", sh.xtrs, sh.perXTR, sh.n)
		settle := memorySettle
		if cfg.settle > 0 {
			settle = cfg.settle
		}
		m, err := subscribeShape(ctx, p, sh, settle)
		if err != nil {
			return err
		}
		ps.Memory = append(ps.Memory, m)
		cfg.progress("pub/sub memory: %d subscriptions in %.2f s, VmRSS %.1f -> %.1f MiB, %.0f bytes per subscription",
			m.Subscriptions, m.Seconds, float64(m.RSSBefore)/(1<<20), float64(m.RSSAfter)/(1<<20), m.BytesPerSubscription)
		if i > 0 {
			continue
		}
		cs, err := p.counters(ctx)
		if err != nil {
			return err
		}
		ps.SubscriptionsDuringSteps = heldSubscriptions(cs)
		what := fmt.Sprintf(" (%d subscriptions)", ps.SubscriptionsDuringSteps)
		if ps.StepsWithSubscriptions, err = runSteps(ctx, cfg, p, l, len(cfg.Rates)+1, what); err != nil {
			return err
		}
		ps.compareSteps(res.Steps, res.PeakRepliesPerSecond)
	}
	cfg.progress("pub/sub memory: the same subscriptions in this process, for the live heap")
	live, err := liveHeapPerSubscription(shapes[:])
	if err != nil {
		return err
	}
	for i := range ps.Memory {
		ps.Memory[i].LiveBytesPerSubscription = live[i]
	}
	cfg.progress("pub/sub memory: live heap per subscription %.0f bytes (%d x %d), %.0f bytes (%d x %d)",
		live[0], shapes[0].xtrs, shapes[0].perXTR, live[1], shapes[1].xtrs, shapes[1].perXTR)
	return nil
}

// runStep offers one rate and collects its figures.
func runStep(ctx context.Context, p *lispdProc, l *load, tag, rate int, d time.Duration) (StepResult, error) {
	st := StepResult{Rate: rate}
	c0, err := p.counters(ctx)
	if err != nil {
		return st, err
	}
	lcpu0, err := cpuTime(p.pid())
	if err != nil {
		return st, err
	}
	gcpu0, err := cpuTime("self")
	if err != nil {
		return st, err
	}
	gdrops0 := l.conn.Drops()
	start := time.Now()
	sent, err := l.run(ctx, tag, rate, d)
	if err != nil {
		return st, err
	}
	elapsed := time.Since(start)
	lcpu1, err := cpuTime(p.pid())
	if err != nil {
		return st, err
	}
	gcpu1, err := cpuTime("self")
	if err != nil {
		return st, err
	}
	replies := l.drain(tag)
	c1, err := p.counters(ctx)
	if err != nil {
		return st, err
	}
	sc := l.steps[tag]
	st.Seconds = elapsed.Seconds()
	st.Sent = sent
	st.Replies = replies
	if sent > 0 && replies < sent {
		st.Loss = float64(sent-replies) / float64(sent)
	}
	st.SentPerSecond = float64(sent) / st.Seconds
	st.RepliesPerSecond = float64(replies) / st.Seconds
	st.P50Micros = float64(sc.hist.quantile(0.50).Microseconds())
	st.P99Micros = float64(sc.hist.quantile(0.99).Microseconds())
	st.LispdCPU = 100 * (lcpu1 - lcpu0).Seconds() / st.Seconds
	st.GeneratorCPU = 100 * (gcpu1 - gcpu0).Seconds() / st.Seconds
	st.LispdDrops = sumDrops(c1) - min(sumDrops(c0), sumDrops(c1))
	st.GeneratorDrops = l.conn.Drops() - gdrops0
	return st, nil
}

// measureMemory appends lispd's memory with n registered prefixes.
func measureMemory(p *lispdProc, n int, res *Result) error {
	rss, hwm, err := memory(p.pid())
	if err != nil {
		return err
	}
	res.Memory = append(res.Memory, MemoryResult{Prefixes: n, RSS: rss, PeakRSS: hwm})
	return nil
}

// RateName formats a rate for people: "max" for 0.
func RateName(rate int) string {
	if rate == 0 {
		return "max"
	}
	return fmt.Sprint(rate)
}

// machine describes this machine.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.LoadAverage = f[0]
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
