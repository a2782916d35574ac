package benchcontrol

import (
	"context"
	"math/rand/v2"
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
		Progress:       testWriter{t},
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
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestConfigValidation(t *testing.T) {
	good := Config{Rates: []int{10}, Step: time.Second, Prefixes: 10, Registers: 10, MemoryPrefixes: 20}
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
