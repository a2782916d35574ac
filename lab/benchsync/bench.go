package benchsync

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/lispd/lispd/cachesync"
	"github.com/lispd/lispd/mapcache"
)

// Config configures a run. Zero fields take the defaults.
type Config struct {
	// Modes to measure (default naive, smart, gossip).
	Modes []cachesync.Mode
	// Sizes are the cache sizes for the cost per mapping (default 10,
	// 1,000 and 100,000 records).
	Sizes []int
	// Mappings is the number of new mappings per cost measurement
	// (default 20; naive at caches above 10,000 records uses 3: each
	// costs the whole cache).
	Mappings int
	// LatencySamples is the number of mappings timed per mode (default
	// 300).
	LatencySamples int
	// LatencyCacheSize is the cache size during the delay measurement
	// (default 1,000).
	LatencyCacheSize int
	// GossipMembers is the size of the large gossip set (default 16; 0
	// after defaults are applied never happens, use -1 to skip).
	GossipMembers int
	// GossipMappings is the number of mappings timed in the large gossip
	// set (default 30).
	GossipMappings int
	// GossipIdle is how long idle membership traffic is measured (default
	// 5 s).
	GossipIdle time.Duration
	// GossipInterval overrides memberlist's gossip interval (default: its
	// LAN default, 200 ms).
	GossipInterval time.Duration
	// GossipProbeInterval overrides memberlist's failure-detection probe
	// interval (default: its LAN default, 1 s); a gossip member takes up
	// to one to stop.
	GossipProbeInterval time.Duration
	// Progress receives progress lines (nil: discarded).
	Progress io.Writer
}

// CostRow is the cost of one new mapping in one mode and cache size.
type CostRow struct {
	Mode      string `json:"mode"`
	Members   int    `json:"members"`
	CacheSize int    `json:"cache_size"`
	Mappings  int    `json:"mappings"`
	// RecordsPerMapping, BytesPerMapping and WireBytesPerMapping are
	// totals over all members divided by Mappings.
	RecordsPerMapping   float64 `json:"records_per_mapping"`
	BytesPerMapping     float64 `json:"bytes_per_mapping"`
	WireBytesPerMapping float64 `json:"wire_bytes_per_mapping"`
}

// LatencyRow is the delay from a Map-Reply on one member to the record
// being usable on another.
type LatencyRow struct {
	Mode      string  `json:"mode"`
	Members   int     `json:"members"`
	CacheSize int     `json:"cache_size"`
	Samples   int     `json:"samples"`
	P50Micros float64 `json:"p50_us"`
	P99Micros float64 `json:"p99_us"`
	MaxMicros float64 `json:"max_us"`
}

// GossipRow is the large gossip set's figures.
type GossipRow struct {
	Members  int `json:"members"`
	Mappings int `json:"mappings"`
	// ConvergeP50Ms, ConvergeP99Ms and ConvergeMaxMs: time until every
	// member holds a new mapping.
	ConvergeP50Ms float64 `json:"converge_p50_ms"`
	ConvergeP99Ms float64 `json:"converge_p99_ms"`
	ConvergeMaxMs float64 `json:"converge_max_ms"`
	// BytesPerMemberPerMapping and WireBytesPerMemberPerMapping: what one
	// member sends, on average, per new mapping (wire: all memberlist
	// traffic during the measurement, membership included).
	BytesPerMemberPerMapping     float64 `json:"bytes_per_member_per_mapping"`
	WireBytesPerMemberPerMapping float64 `json:"wire_bytes_per_member_per_mapping"`
	// RecordsPerMemberPerMapping: records one member sends per mapping
	// (retransmissions and relays included).
	RecordsPerMemberPerMapping float64 `json:"records_per_member_per_mapping"`
	// IdleWireBytesPerMemberPerSecond: membership traffic of an idle set.
	IdleWireBytesPerMemberPerSecond float64 `json:"idle_wire_bytes_per_member_per_second"`
	GossipIntervalMs                float64 `json:"gossip_interval_ms"`
}

// Result is the outcome of a run.
type Result struct {
	Date    time.Time    `json:"date"`
	CPUs    int          `json:"cpus"`
	Cost    []CostRow    `json:"cost"`
	Latency []LatencyRow `json:"latency"`
	Gossip  *GossipRow   `json:"gossip,omitempty"`
}

func (c *Config) defaults() {
	if len(c.Modes) == 0 {
		c.Modes = []cachesync.Mode{cachesync.ModeNaive, cachesync.ModeSmart, cachesync.ModeGossip}
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []int{10, 1000, 100000}
	}
	if c.Mappings <= 0 {
		c.Mappings = 20
	}
	if c.LatencySamples <= 0 {
		c.LatencySamples = 300
	}
	if c.LatencyCacheSize <= 0 {
		c.LatencyCacheSize = 1000
	}
	if c.GossipMembers == 0 {
		c.GossipMembers = 16
	}
	if c.GossipMappings <= 0 {
		c.GossipMappings = 30
	}
	if c.GossipIdle <= 0 {
		c.GossipIdle = 5 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Run runs the benchmark.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	res := &Result{Date: time.Now().UTC(), CPUs: runtime.NumCPU()}
	for _, mode := range cfg.Modes {
		for _, size := range cfg.Sizes {
			n := cfg.Mappings
			if mode == cachesync.ModeNaive && size > 10000 {
				n = min(n, 3)
			}
			fmt.Fprintf(cfg.Progress, "cost: %v, %d records, %d new mappings\n", mode, size, n)
			row, err := measureCost(ctx, cfg, mode, size, n)
			if err != nil {
				return nil, fmt.Errorf("benchsync: cost %v/%d: %w", mode, size, err)
			}
			res.Cost = append(res.Cost, row)
		}
	}
	for _, mode := range cfg.Modes {
		fmt.Fprintf(cfg.Progress, "delay: %v, %d samples\n", mode, cfg.LatencySamples)
		row, err := measureLatency(ctx, cfg, mode)
		if err != nil {
			return nil, fmt.Errorf("benchsync: delay %v: %w", mode, err)
		}
		res.Latency = append(res.Latency, row)
	}
	if cfg.GossipMembers > 1 && slices.Contains(cfg.Modes, cachesync.ModeGossip) {
		fmt.Fprintf(cfg.Progress, "gossip: %d members, %d mappings\n", cfg.GossipMembers, cfg.GossipMappings)
		row, err := measureGossip(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("benchsync: gossip %d: %w", cfg.GossipMembers, err)
		}
		res.Gossip = row
	}
	return res, nil
}

// member is one running member with its cache.
type member struct {
	name   string
	key    ed25519.PrivateKey
	ln     net.Listener
	addr   netip.AddrPort
	cache  *mapcache.Cache
	m      *cachesync.Member
	cancel context.CancelFunc
	done   chan error
}

// set is a running set of members.
type set struct {
	mode    cachesync.Mode
	members []*member
}

// gossipKey is the benchmark's gossip secret.
var gossipKey = []byte("lisplab-bench-sync-gossip-key-32")

// startSet starts n members of mode on 127.0.0.1, each cache pre-filled
// with the same prefill records, and waits until they are connected.
func startSet(ctx context.Context, cfg Config, mode cachesync.Mode, n int, prefill int) (*set, error) {
	s := &set{mode: mode}
	for i := range n {
		mb := &member{name: fmt.Sprintf("itr-%02d", i)}
		mb.cache = mapcache.New(mapcache.Config{MaxEntries: max(prefill*2, 1000)})
		if err := fillCache(mb.cache, prefill); err != nil {
			return nil, err
		}
		if mode != cachesync.ModeGossip {
			k, err := cachesync.GenerateKey()
			if err != nil {
				return nil, err
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				s.stop()
				return nil, err
			}
			mb.key, mb.ln, mb.addr = k, ln, ln.Addr().(*net.TCPAddr).AddrPort()
		}
		s.members = append(s.members, mb)
	}
	for i, mb := range s.members {
		c := cachesync.Config{
			Mode:                mode,
			Name:                mb.name,
			RoundInterval:       time.Second,
			AntiEntropyInterval: time.Hour, // at connection only: measured traffic is the changes'
			ReconnectMin:        20 * time.Millisecond,
			ReconnectMax:        200 * time.Millisecond,
		}
		if mode == cachesync.ModeGossip {
			c.Listen = netip.MustParseAddrPort("127.0.0.1:0")
			c.Gossip = cachesync.GossipConfig{SecretKey: gossipKey, GossipInterval: cfg.GossipInterval, ProbeInterval: cfg.GossipProbeInterval}
			if i > 0 {
				c.Gossip.Seeds = []netip.AddrPort{s.members[0].addr}
			}
		} else {
			c.Listener, c.PrivateKey = mb.ln, mb.key
			for _, o := range s.members {
				if o != mb {
					c.Peers = append(c.Peers, cachesync.Peer{Name: o.name, Address: o.addr, PublicKey: cachesync.PublicKeyOf(o.key)})
				}
			}
		}
		m, err := cachesync.New(c, mb.cache)
		if err != nil {
			s.stop()
			return nil, err
		}
		mb.m = m
		mctx, cancel := context.WithCancel(ctx)
		mb.cancel, mb.done = cancel, make(chan error, 1)
		go func() { mb.done <- m.Run(mctx) }()
		if mode == cachesync.ModeGossip {
			select {
			case <-m.Ready():
				mb.addr = m.Addr()
			case err := <-mb.done:
				mb.cancel = nil
				s.stop()
				return nil, fmt.Errorf("member %s: %w", mb.name, err)
			}
		}
	}
	err := waitUntil(ctx, 30*time.Second, func() bool {
		for _, mb := range s.members {
			if mb.m.Stats().Connected < n-1 {
				return false
			}
		}
		return true
	})
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("members did not connect: %w", err)
	}
	return s, nil
}

// stop stops the members, all at once (a gossip member takes up to a
// probe interval to stop).
func (s *set) stop() {
	for _, mb := range s.members {
		if mb.cancel != nil {
			mb.cancel()
		} else if mb.ln != nil {
			mb.ln.Close()
		}
	}
	for _, mb := range s.members {
		if mb.cancel != nil {
			<-mb.done
			mb.cancel = nil
		}
	}
}

// totals sums the members' counters.
func (s *set) totals() (records, bytes, wire uint64) {
	for _, mb := range s.members {
		st := mb.m.Stats()
		records += st.RecordsSent
		bytes += st.BytesSent
		wire += st.WireBytesSent
	}
	return
}

// prefillVersion is the version of pre-filled records: older than anything
// a member stamps.
const prefillVersion = 1

// fillCache inserts n shared records (as learned from a peer, so that they
// are not announced), identical on every member.
func fillCache(c *mapcache.Cache, n int) error {
	es := make([]*mapcache.Entry, n)
	for i := range es {
		es[i] = &mapcache.Entry{
			Prefix:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32),
			RLOCs:   []mapcache.RLOC{{Addr: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 50, Reachable: true}, {Addr: netip.MustParseAddr("198.51.100.1"), Priority: 2, Weight: 50, Reachable: true}},
			TTL:     24 * time.Hour,
			Source:  mapcache.FromSync,
			Version: prefillVersion,
			Origin:  "prefill",
		}
	}
	if errs := c.InsertBatch(es); errs != nil {
		return errors.Join(errs...)
	}
	return nil
}

// newMapping returns the i-th new mapping (outside the pre-filled space),
// stamped by m as a Map-Reply.
func newMapping(m *cachesync.Member, i int) *mapcache.Entry {
	return &mapcache.Entry{
		Prefix:  netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16 + byte(i>>16), byte(i >> 8), byte(i)}), 32),
		RLOCs:   []mapcache.RLOC{{Addr: netip.MustParseAddr("192.0.2.7"), Priority: 1, Weight: 100, Reachable: true}, {Addr: netip.MustParseAddr("2001:db8::7"), Priority: 1, Weight: 100, Reachable: true}},
		TTL:     time.Hour,
		Source:  mapcache.FromMapReply,
		Version: m.NextVersion(),
	}
}

// arrivals watches a cache's change feed and reports when each key is
// inserted. When the feed overflows (a naive whole-cache transfer of a
// large cache replaces every entry at once), wait falls back to looking the
// key up, which dates the arrival less precisely.
type arrivals struct {
	c    *mapcache.Cache
	mu   sync.Mutex
	at   map[mapcache.Key]time.Time
	cond chan struct{}
	sub  *mapcache.Subscription
	done chan struct{}
}

func watch(c *mapcache.Cache) *arrivals {
	a := &arrivals{c: c, at: map[mapcache.Key]time.Time{}, cond: make(chan struct{}, 1), sub: c.Subscribe(1 << 16), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for ch := range a.sub.C() {
			if ch.Kind != mapcache.Added && ch.Kind != mapcache.Replaced {
				continue
			}
			now := time.Now()
			a.mu.Lock()
			if _, ok := a.at[ch.Entry.Key()]; !ok {
				a.at[ch.Entry.Key()] = now
			}
			a.mu.Unlock()
			select {
			case a.cond <- struct{}{}:
			default:
			}
		}
	}()
	return a
}

func (a *arrivals) stop() { a.sub.Close(); <-a.done }

// wait waits until k has arrived and returns when.
func (a *arrivals) wait(ctx context.Context, k mapcache.Key, timeout time.Duration) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		a.mu.Lock()
		t, ok := a.at[k]
		a.mu.Unlock()
		if ok {
			return t, nil
		}
		if _, ok := a.c.Get(k); ok {
			return time.Now(), nil
		}
		select {
		case <-a.cond:
		case <-time.After(5 * time.Millisecond):
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("%v did not arrive within %v", k, timeout)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// measureCost measures the records and bytes the set sends per new
// mapping learned by its first member.
func measureCost(ctx context.Context, cfg Config, mode cachesync.Mode, size, n int) (CostRow, error) {
	s, err := startSet(ctx, cfg, mode, 2, size)
	if err != nil {
		return CostRow{}, err
	}
	defer s.stop()
	a, b := s.members[0], s.members[1]
	if err := settle(ctx, s, cfg.quietPeriod()); err != nil {
		return CostRow{}, err
	}
	w := watch(b.cache)
	defer w.stop()
	r0, b0, w0 := s.totals()
	for i := range n {
		e := newMapping(a.m, i)
		if _, err := a.cache.Insert(e); err != nil {
			return CostRow{}, err
		}
		if _, err := w.wait(ctx, e.Key(), 30*time.Second); err != nil {
			return CostRow{}, err
		}
	}
	if err := settle(ctx, s, cfg.quietPeriod()); err != nil {
		return CostRow{}, err
	}
	r1, b1, w1 := s.totals()
	return CostRow{
		Mode: mode.String(), Members: 2, CacheSize: size, Mappings: n,
		RecordsPerMapping:   float64(r1-r0) / float64(n),
		BytesPerMapping:     float64(b1-b0) / float64(n),
		WireBytesPerMapping: float64(w1-w0) / float64(n),
	}, nil
}

// settle waits until the set has sent no record for quiet (gossip
// retransmissions, naive transfers in flight).
func settle(ctx context.Context, s *set, quiet time.Duration) error {
	last, _, _ := s.totals()
	since := time.Now()
	return waitUntil(ctx, 60*time.Second, func() bool {
		time.Sleep(20 * time.Millisecond)
		if r, _, _ := s.totals(); r != last {
			last, since = r, time.Now()
		}
		return time.Since(since) >= quiet
	})
}

// quietPeriod is how long a set must send nothing to count as settled:
// five gossip intervals (retransmissions are spaced by one), at least
// 300 ms.
func (c *Config) quietPeriod() time.Duration {
	gi := c.GossipInterval
	if gi <= 0 {
		gi = 200 * time.Millisecond
	}
	return max(5*gi, 300*time.Millisecond)
}

// measureLatency times mappings learned by one member until usable on the
// other.
func measureLatency(ctx context.Context, cfg Config, mode cachesync.Mode) (LatencyRow, error) {
	s, err := startSet(ctx, cfg, mode, 2, cfg.LatencyCacheSize)
	if err != nil {
		return LatencyRow{}, err
	}
	defer s.stop()
	a, b := s.members[0], s.members[1]
	w := watch(b.cache)
	defer w.stop()
	var ds []time.Duration
	for i := range cfg.LatencySamples {
		e := newMapping(a.m, 100000+i)
		start := time.Now()
		if _, err := a.cache.Insert(e); err != nil {
			return LatencyRow{}, err
		}
		at, err := w.wait(ctx, e.Key(), 30*time.Second)
		if err != nil {
			return LatencyRow{}, err
		}
		ds = append(ds, at.Sub(start))
	}
	p50, p99, mx := quantiles(ds)
	return LatencyRow{Mode: mode.String(), Members: 2, CacheSize: cfg.LatencyCacheSize, Samples: len(ds),
		P50Micros: micros(p50), P99Micros: micros(p99), MaxMicros: micros(mx)}, nil
}

// measureGossip runs the large gossip set.
func measureGossip(ctx context.Context, cfg Config) (*GossipRow, error) {
	n := cfg.GossipMembers
	s, err := startSet(ctx, cfg, cachesync.ModeGossip, n, 1000)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	if err := settle(ctx, s, cfg.quietPeriod()); err != nil {
		return nil, err
	}
	// Idle membership traffic.
	_, _, w0 := s.totals()
	select {
	case <-time.After(cfg.GossipIdle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	_, _, w1 := s.totals()
	idle := float64(w1-w0) / float64(n) / cfg.GossipIdle.Seconds()

	ws := make([]*arrivals, n)
	for i, mb := range s.members {
		ws[i] = watch(mb.cache)
		defer ws[i].stop()
	}
	r0, b0, w0 := s.totals()
	start := time.Now()
	var ds []time.Duration
	for i := range cfg.GossipMappings {
		src := s.members[i%n]
		e := newMapping(src.m, 200000+i)
		t0 := time.Now()
		if _, err := src.cache.Insert(e); err != nil {
			return nil, err
		}
		var last time.Time
		for j, w := range ws {
			if j == i%n {
				continue
			}
			at, err := w.wait(ctx, e.Key(), 60*time.Second)
			if err != nil {
				return nil, err
			}
			if at.After(last) {
				last = at
			}
		}
		ds = append(ds, last.Sub(t0))
	}
	if err := settle(ctx, s, cfg.quietPeriod()); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	r1, b1, w1 := s.totals()
	m := float64(cfg.GossipMappings)
	// Take the idle membership traffic of the measurement's duration out
	// of the wire bytes.
	wire := float64(w1-w0)/float64(n) - idle*elapsed.Seconds()
	p50, p99, mx := quantiles(ds)
	gi := cfg.GossipInterval
	if gi <= 0 {
		gi = 200 * time.Millisecond
	}
	return &GossipRow{
		Members: n, Mappings: cfg.GossipMappings,
		ConvergeP50Ms: ms(p50), ConvergeP99Ms: ms(p99), ConvergeMaxMs: ms(mx),
		BytesPerMemberPerMapping:        float64(b1-b0) / float64(n) / m,
		WireBytesPerMemberPerMapping:    max(wire, 0) / m,
		RecordsPerMemberPerMapping:      float64(r1-r0) / float64(n) / m,
		IdleWireBytesPerMemberPerSecond: idle,
		GossipIntervalMs:                ms(gi),
	}, nil
}

func quantiles(ds []time.Duration) (p50, p99, mx time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.5) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return at(0.50), at(0.99), s[len(s)-1]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64     { return float64(d) / float64(time.Millisecond) }

// waitUntil polls cond every 5 ms until it holds, timeout passes or ctx
// ends.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
