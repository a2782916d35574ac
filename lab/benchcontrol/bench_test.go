package benchcontrol

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunTiny runs the whole benchmark at tiny rates and sizes against a
// freshly built lispd, so that the command cannot rot. It checks the
// figures are consistent, not how fast anything is.
func TestRunTiny(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build lispd")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "lispd")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/lispd/lispd/cmd/lispd").CombinedOutput(); err != nil {
		t.Fatalf("go build lispd: %v\n%s", err, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, Config{
		Lispd:          bin,
		Rates:          []int{300, 1000},
		Step:           300 * time.Millisecond,
		Prefixes:       200,
		Registers:      3000,
		MemoryPrefixes: 1000,
		// A tiny pub/sub run: 20 subscribers, 3 changes, 2,000
		// subscriptions per memory shape (20 xTR-IDs x 100 prefixes, and
		// 2,000 xTR-IDs x 1 prefix, 10 per prefix).
		PubSubSubscribers:   20,
		PubSubChanges:       3,
		PubSubSubscriptions: 2000,
		Progress:            testWriter{t},
		settle:              100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != 2 || res.Steps[0].Rate != 300 || res.Steps[1].Rate != 1000 {
		t.Fatalf("steps %+v", res.Steps)
	}
	for _, s := range res.Steps {
		if s.Sent == 0 || s.Replies != s.Sent {
			t.Errorf("rate %d: sent %d, replies %d: at this rate every request must be answered", s.Rate, s.Sent, s.Replies)
		}
		if s.P50Micros <= 0 || s.P99Micros < s.P50Micros {
			t.Errorf("rate %d: p50 %v µs, p99 %v µs", s.Rate, s.P50Micros, s.P99Micros)
		}
		if s.LispdCPU < 0 || s.GeneratorCPU < 0 || s.Seconds < 0.3 {
			t.Errorf("rate %d: %+v", s.Rate, s)
		}
	}
	if res.PeakRepliesPerSecond <= 0 {
		t.Errorf("peak %v", res.PeakRepliesPerSecond)
	}
	if len(res.Registers) != 2 {
		t.Fatalf("register results %+v", res.Registers)
	}
	for i, r := range res.Registers {
		if r.Algorithm != []string{"hmac-sha-1", "hmac-sha-256"}[i] || r.Sent != 3000 ||
			r.Accepted == 0 || r.Accepted > r.Sent || r.PerSecond <= 0 {
			t.Errorf("register result %+v", r)
		}
	}
	if len(res.Memory) != 3 || res.Memory[0].Prefixes != 0 || res.Memory[1].Prefixes != 200 || res.Memory[2].Prefixes != 1000 {
		t.Fatalf("memory %+v", res.Memory)
	}
	for _, m := range res.Memory {
		if m.RSS == 0 || m.PeakRSS < m.RSS {
			t.Errorf("memory %+v", m)
		}
	}
	if !res.LispdAlive || res.Machine.CPUs == 0 {
		t.Errorf("result %+v", res)
	}
	checkPubSub(t, res)
}

// checkPubSub checks the pub/sub figures of TestRunTiny.
func checkPubSub(t *testing.T, res *Result) {
	t.Helper()
	ps := res.PubSub
	if ps == nil || ps.Latency == nil {
		t.Fatalf("no pub/sub result: %+v", ps)
	}
	lat := ps.Latency
	if lat.Subscribers != 20 || lat.Changes != 3 || lat.Received != 60 || lat.Missing != 0 || lat.BadAuth != 0 {
		t.Errorf("latency: every publication must arrive, authenticated: %+v", lat)
	}
	if lat.FirstP50Micros <= 0 || lat.LastP50Micros < lat.FirstP50Micros || lat.LastP99Micros < lat.LastP50Micros ||
		lat.LastMaxMicros < lat.LastP99Micros || lat.LastMaxMicros >= 3e6 || lat.AllP50Micros <= 0 || lat.SubscribeSeconds <= 0 {
		t.Errorf("latency figures %+v", lat)
	}
	if len(ps.Memory) != 2 {
		t.Fatalf("memory shapes %+v", ps.Memory)
	}
	want := []PubSubMemory{
		{XTRIDs: 20, PrefixesPerXTR: 100, Prefixes: 100, Subscriptions: 2000, Held: 2020},
		{XTRIDs: 2000, PrefixesPerXTR: 1, Prefixes: 200, Subscriptions: 2000, Held: 4020},
	}
	for i, m := range ps.Memory {
		w := want[i]
		if m.XTRIDs != w.XTRIDs || m.PrefixesPerXTR != w.PrefixesPerXTR || m.Prefixes != w.Prefixes ||
			m.Subscriptions != w.Subscriptions || m.Held != w.Held {
			t.Errorf("shape %d: %+v, want %+v", i, m, w)
		}
		// A few thousand subscriptions move VmRSS by too little to check
		// its figure per subscription: it must be there.
		// A subscription is a 72-byte struct in a slice per prefix; the
		// second shape's go partly into the first one's slices, whose
		// room is paid for already.
		if m.LiveBytesPerSubscription <= 0 || m.LiveBytesPerSubscription > 1000 {
			t.Errorf("shape %d: live heap per subscription %.0f bytes", i, m.LiveBytesPerSubscription)
		}
		if m.RSSBefore == 0 || m.RSSAfter == 0 || m.Seconds <= 0 || m.PerSecond <= 0 {
			t.Errorf("shape %d: %+v", i, m)
		}
	}
	if ps.SubscriptionsDuringSteps != 2020 || len(ps.StepsWithSubscriptions) != len(res.Steps) {
		t.Fatalf("steps with subscriptions: %d subscriptions, %+v", ps.SubscriptionsDuringSteps, ps.StepsWithSubscriptions)
	}
	for i, s := range ps.StepsWithSubscriptions {
		if s.Rate != res.Steps[i].Rate || s.Sent == 0 || s.Replies != s.Sent {
			t.Errorf("rate %d with subscriptions: sent %d, replies %d", s.Rate, s.Sent, s.Replies)
		}
	}
	if ps.Publications != 60 || ps.GivenUp != 0 {
		t.Errorf("lispd published %d (want 60: nothing but the latency test's changes), gave up %d", ps.Publications, ps.GivenUp)
	}
	if ps.PeakWithSubscriptions <= 0 || ps.PeakRatio <= 0 || ps.CompareRate != 1000 ||
		ps.P99WithoutMicros <= 0 || ps.P99WithMicros <= 0 {
		t.Errorf("comparison %+v", ps)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestConfigValidation(t *testing.T) {
	good := Config{Rates: []int{10}, Step: time.Second, Prefixes: 10, Registers: 10, MemoryPrefixes: 20,
		PubSubSubscribers: 10, PubSubChanges: 5, PubSubSubscriptions: 100}
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Config){
		"no rates":         func(c *Config) { c.Rates = nil },
		"negative rate":    func(c *Config) { c.Rates = []int{-1} },
		"zero step":        func(c *Config) { c.Step = 0 },
		"too many":         func(c *Config) { c.Prefixes = MaxPrefixes + 1 },
		"memory below":     func(c *Config) { c.MemoryPrefixes = 5 },
		"registers, no pf": func(c *Config) { c.Prefixes, c.MemoryPrefixes = 1, 0 },
		"subscribers < 0":  func(c *Config) { c.PubSubSubscribers = -1 },
		"no change":        func(c *Config) { c.PubSubSubscribers, c.PubSubChanges = 10, 0 },
		"many changes":     func(c *Config) { c.PubSubSubscribers, c.PubSubChanges = 10, MaxPubSubChanges+1 },
		"subscriptions":    func(c *Config) { c.PubSubSubscriptions = MaxPubSubSubscriptions + 1 },
		"subs, no pf":      func(c *Config) { c.PubSubSubscriptions, c.Prefixes, c.Registers, c.MemoryPrefixes = 10, 0, 0, 0 },
		"subs, many rates": func(c *Config) { c.PubSubSubscriptions, c.Rates = 10, make([]int, (maxSteps+1)/2) },
	} {
		c := good
		mutate(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestStampedRequestsParse checks that stamping a nonce keeps the inner
// UDP checksum right.
func TestStampedRequestsParse(t *testing.T) {
	tmpls, err := requestTemplates(netip.MustParseAddrPort("127.0.0.1:40000"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 256)
	kinds := map[string]int{}
	for i := range 4000 {
		tm := &tmpls[i%len(tmpls)]
		nonce := r.Uint64()
		if i%7 == 0 {
			nonce = 0xffff_ffff_ffff_ffff
		}
		b := tm.stamp(buf, nonce)
		m, err := wire.Parse(b)
		if err != nil {
			t.Fatalf("stamped request %d (nonce %x) does not parse: %v", i, nonce, err)
		}
		req := m.(*wire.ECM).Inner.(*wire.MapRequest)
		if req.Nonce != nonce {
			t.Fatalf("nonce %x, want %x", req.Nonce, nonce)
		}
		_, p, _ := req.Records[0].Prefix()
		switch {
		case netip.MustParsePrefix("172.16.0.0/12").Contains(p.Addr()):
			kinds["no site"]++
		case inRegistered(p.Addr(), 1000):
			kinds["registered"]++
		default:
			kinds["unregistered"]++
		}
	}
	if kinds["registered"] != 2000 || kinds["no site"] != 1000 || kinds["unregistered"] != 1000 {
		t.Fatalf("request mix %v, want 2000 registered, 1000 unregistered, 1000 in no site", kinds)
	}
}

// inRegistered reports whether a lies in one of the first n prefixes.
func inRegistered(a netip.Addr, n int) bool {
	for i := range n {
		if prefixOf(i).Contains(a) {
			return true
		}
	}
	return false
}

func TestPrefixPlan(t *testing.T) {
	seen := map[netip.Prefix]bool{}
	for _, i := range []int{0, 1, 2, 3, 1000, MaxPrefixes - 1, maxPrefixes - 1} {
		p := prefixOf(i)
		if seen[p] || p.Bits() != prefixBits || p != p.Masked() {
			t.Fatalf("prefix %d: %s", i, p)
		}
		seen[p] = true
		site := netip.MustParsePrefix("10.0.0.0/9")
		if i%2 == siteSHA256 {
			site = netip.MustParsePrefix("10.128.0.0/9")
		}
		if !site.Contains(p.Addr()) {
			t.Fatalf("prefix %d (%s) outside its site %s", i, p, site)
		}
	}
	if prefixOf(maxPrefixes-2) == prefixOf(maxPrefixes-1) {
		t.Fatal("last prefixes collide")
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Fatal("empty histogram has a median")
	}
	for i := range 100 {
		h.add(time.Duration(i+1) * 10 * time.Microsecond) // 10 µs to 1 ms
	}
	h.add(5 * time.Second) // beyond the last bucket
	// The 51st of 101 samples is 510 µs; a quantile is its bucket's upper
	// bound.
	if got := h.quantile(0.5); got != 511*time.Microsecond {
		t.Errorf("p50 = %v, want 511µs", got)
	}
	if got := h.quantile(0.99); got != 1000*time.Microsecond+time.Microsecond {
		t.Errorf("p99 = %v, want 1.001ms", got)
	}
	for _, d := range []time.Duration{0, time.Microsecond, 1999 * time.Microsecond, 2 * time.Millisecond,
		15 * time.Millisecond, 150 * time.Millisecond, 1500 * time.Millisecond} {
		if up := bucketUpper(bucketOf(d)); up <= d || up > d+d/100+time.Microsecond {
			t.Errorf("%v falls in a bucket up to %v", d, up)
		}
	}
}

func TestCPUAndMemoryOfSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if _, err := cpuTime("self"); err != nil {
		t.Fatal(err)
	}
	rss, hwm, err := memory("self")
	if err != nil || rss == 0 || hwm < rss {
		t.Fatalf("rss %d hwm %d err %v", rss, hwm, err)
	}
	if _, err := cpuTime("0"); err == nil {
		t.Fatal("pid 0 has CPU times")
	}
}

func TestCompareSteps(t *testing.T) {
	steps := func(loss ...float64) []StepResult {
		var out []StepResult
		for i, r := range []int{10000, 50000, 100000, 0} {
			out = append(out, StepResult{Rate: r, Loss: loss[i], RepliesPerSecond: float64(r) + 1, P99Micros: float64(i + 1)})
		}
		return out
	}
	r := PubSubResult{StepsWithSubscriptions: steps(0, 0, 0.5, 0.2)}
	r.StepsWithSubscriptions[3].RepliesPerSecond = 180000
	r.compareSteps(steps(0, 0, 0, 0.1), 200000)
	if r.CompareRate != 50000 || r.P99WithoutMicros != 2 || r.P99WithMicros != 2 || r.PeakWithSubscriptions != 180000 || r.PeakRatio != 0.9 {
		t.Errorf("%+v", r)
	}
	// Without 50,000/s: the highest rate where neither lost over 1%.
	without, with := steps(0, 0, 0, 0.1), steps(0, 0, 0.005, 0.2)
	without[1].Rate, with[1].Rate = 20000, 20000
	r = PubSubResult{StepsWithSubscriptions: with}
	r.compareSteps(without, 100001)
	if r.CompareRate != 100000 || r.P99WithMicros != 3 {
		t.Errorf("%+v", r)
	}
	with[2].Loss = 0.02
	r = PubSubResult{StepsWithSubscriptions: with}
	r.compareSteps(without, 100001)
	if r.CompareRate != 20000 {
		t.Errorf("%+v", r)
	}
}

func TestMemoryShapes(t *testing.T) {
	sh := memoryShapes(100000, 100000)
	if a := sh[0]; a.xtrs != 1000 || a.perXTR != 100 || a.prefixes != 100 || a.prefix(5, 7) != 7 {
		t.Errorf("shape 1 %+v", a)
	}
	if b := sh[1]; b.xtrs != 100000 || b.perXTR != 1 || b.prefixes != 100000 || b.prefix(99999, 0) != 99999 {
		t.Errorf("shape 2 %+v", b)
	}
	// Fewer registered prefixes than subscriptions: they are shared.
	sh = memoryShapes(2000, 50)
	if a := sh[0]; a.xtrs != 40 || a.perXTR != 50 || a.prefixes != 50 {
		t.Errorf("shape 1 %+v", a)
	}
	if b := sh[1]; b.xtrs != 2000 || b.prefixes != 50 || b.prefix(1234, 0) != 34 {
		t.Errorf("shape 2 %+v", b)
	}
}

func TestSubscriptionNonces(t *testing.T) {
	s := &subscriberSet{base: 1 << 40, n: 3, confirmed: make([]bool, 3), progress: make(chan struct{}, 1)}
	s.notified(s.nonce(2), 0)
	s.notified(s.nonce(2), 0) // again: once
	s.notified(s.nonce(3), 0) // no such subscription
	if s.nconfirmed != 1 || !s.confirmed[2] {
		t.Fatalf("confirmed %v", s.confirmed)
	}
	s.startChange(1)
	at := s.sentAt
	s.notified(s.nonce(1)+1, at+3000)
	s.notified(s.nonce(0)+1, at+1000)
	s.notified(s.nonce(0)+1, at+9000) // a retransmission
	s.notified(s.nonce(2)+2, at+9000) // not this change
	s.notified(s.nonce(2)+1, at+5000)
	n, first, last := s.changeState()
	if n != 3 || first != time.Microsecond || last != 5*time.Microsecond || s.dups != 2 || s.received != 3 {
		t.Fatalf("n %d first %v last %v dups %d received %d", n, first, last, s.dups, s.received)
	}
	if got := nearestRank([]time.Duration{5, 1, 4, 2, 3}, 0.5); got != 3 {
		t.Errorf("median %v", got)
	}
	if got := nearestRank([]time.Duration{5, 1, 4, 2, 3}, 0.99); got != 5 {
		t.Errorf("p99 %v", got)
	}
}

// TestReceiveStamps checks the kernel's receive timestamps: the time a
// datagram arrived, not the time it was read.
func TestReceiveStamps(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SO_TIMESTAMPNS")
	}
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r, err := dialLoad(l.LocalAddr().(*net.UDPAddr).AddrPort(), 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.EnableStamps(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(stampsSettle)
	before := time.Now().UnixNano()
	for i := range 3 {
		if _, err := l.WriteToUDPAddrPort([]byte{byte(i)}, r.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	sent := time.Now().UnixNano()
	time.Sleep(50 * time.Millisecond)
	var got []int64
	for len(got) < 3 {
		if err := r.RecvBatchStamped(func(b []byte, at int64) {
			if len(b) != 1 || int(b[0]) != len(got) {
				t.Errorf("datagram %v", b)
			}
			got = append(got, at)
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, at := range got {
		// Stamped on arrival: before the 50 ms sleep ended.
		if at < before || at > sent+int64(20*time.Millisecond) {
			t.Errorf("stamp %d, sent between %d and %d", at, before, sent)
		}
	}
}
