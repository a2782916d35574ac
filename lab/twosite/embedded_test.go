package twosite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer collects the daemons' logs for a failing test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startTest starts the topology for a test and closes it at the end.
func startTest(t *testing.T, o EmbeddedOptions) *Embedded {
	t.Helper()
	logs := &syncBuffer{}
	o.Logs = logs
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	e, err := StartEmbedded(context.Background(), o)
	if err != nil {
		t.Fatalf("StartEmbedded: %v\nlogs:\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	return e
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// counter reads one counter of a router through its API.
func counter(t *testing.T, r *Router, name string) uint64 {
	t.Helper()
	c, err := r.Counters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c[name]
}

// hasMapping reports whether a router's ITR has a positive mapping for
// addr.
func hasMapping(r *Router, addr netip.Addr) bool {
	e, ok := r.Daemon().ITRRole().Cache().Lookup(0, addr)
	return ok && !e.Negative()
}

func TestEmbeddedPingDropPolicy(t *testing.T) {
	e := startTest(t, EmbeddedOptions{})
	ctx := context.Background()
	p := e.Plan()
	a, b := e.Host(SiteA), e.Host(SiteB)
	xa, xb := e.XTR(SiteA), e.XTR(SiteB)
	if !p.RLOCNet.Addr().IsLoopback() || a.Addr() != p.Host[SiteA] || b.Addr() != p.Host[SiteB] {
		t.Fatalf("plan %+v, hosts %v %v", p, a.Addr(), b.Addr())
	}

	// The first echo misses xtrA's map-cache and is dropped (counted),
	// while the Map-Request resolves site B.
	if _, err := a.Ping(ctx, b.Addr(), 1, 300*time.Millisecond); !errors.Is(err, ErrNoReply) {
		t.Fatalf("ping 1: %v, want no reply", err)
	}
	waitFor(t, "xtrA's mapping of site B", func() bool { return hasMapping(xa, b.Addr()) })
	if got := counter(t, xa, "itr_miss_packets_dropped"); got != 1 {
		t.Errorf("xtrA dropped %d packets on a miss, want 1", got)
	}
	if b.Stats().EchoRequestsAnswered != 0 {
		t.Errorf("hostB answered the first echo")
	}

	// The second reaches hostB, whose reply misses xtrB's map-cache.
	if _, err := a.Ping(ctx, b.Addr(), 2, 300*time.Millisecond); !errors.Is(err, ErrNoReply) {
		t.Fatalf("ping 2: %v, want no reply (the reply misses at xtrB)", err)
	}
	if got := b.Stats().EchoRequestsAnswered; got != 1 {
		t.Errorf("hostB answered %d echoes, want 1", got)
	}
	waitFor(t, "xtrB's mapping of site A", func() bool { return hasMapping(xb, a.Addr()) })
	if got := counter(t, xb, "itr_miss_packets_dropped"); got != 1 {
		t.Errorf("xtrB dropped %d packets on a miss, want 1", got)
	}

	// From then on every echo is answered, both ways.
	for seq := uint16(3); seq <= 6; seq++ {
		if _, err := a.Ping(ctx, b.Addr(), seq, 5*time.Second); err != nil {
			t.Fatalf("ping %d from hostA: %v", seq, err)
		}
	}
	for seq := uint16(1); seq <= 4; seq++ {
		if _, err := b.Ping(ctx, a.Addr(), seq, 5*time.Second); err != nil {
			t.Fatalf("ping %d from hostB: %v", seq, err)
		}
	}
	// No late replies to the lost echoes, nothing malformed.
	if st := a.Stats(); st.EchoReplies != 4 || st.EchoRequestsAnswered != 4 || st.Malformed != 0 || st.NotForUs != 0 {
		t.Errorf("hostA: %+v", st)
	}
	if st := b.Stats(); st.EchoReplies != 4 || st.EchoRequestsAnswered != 5 || st.Malformed != 0 {
		t.Errorf("hostB: %+v", st)
	}
	for _, x := range []*Router{xa, xb} {
		c, err := x.Counters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c["itr_misses"] != 1 || c["itr_miss_packets_dropped"] != 1 || c["itr_map_replies_accepted"] != 1 {
			t.Errorf("%s: misses %d dropped %d replies accepted %d", x.Name(), c["itr_misses"], c["itr_miss_packets_dropped"], c["itr_map_replies_accepted"])
		}
		if c["dataplane_encap_packets"] < 4 || c["dataplane_decap_packets"] < 4 {
			t.Errorf("%s: encapsulated %d, decapsulated %d", x.Name(), c["dataplane_encap_packets"], c["dataplane_decap_packets"])
		}
	}
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddedPingQueuePolicy(t *testing.T) {
	e := startTest(t, EmbeddedOptions{MissPolicy: "queue"})
	ctx := context.Background()
	a, b := e.Host(SiteA), e.Host(SiteB)
	// Held at both ITRs during their misses and released: answered.
	if _, err := a.Ping(ctx, b.Addr(), 1, 5*time.Second); err != nil {
		t.Fatalf("first ping: %v", err)
	}
	for _, s := range []Site{SiteA, SiteB} {
		x := e.XTR(s)
		if q, r, d := counter(t, x, "itr_miss_packets_queued"), counter(t, x, "itr_miss_packets_released"), counter(t, x, "itr_miss_packets_dropped"); q != 1 || r != 1 || d != 0 {
			t.Errorf("%s: queued %d released %d dropped %d", x.Name(), q, r, d)
		}
	}
}

func TestEmbeddedUDP(t *testing.T) {
	e := startTest(t, EmbeddedOptions{MissPolicy: "queue"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, b := e.Host(SiteA), e.Host(SiteB)
	dst := netip.AddrPortFrom(b.Addr(), 9000)
	const n = 200
	// The queue policy holds 4 packets per destination during the miss:
	// resolve first, then send the burst.
	if _, err := a.Ping(ctx, b.Addr(), 1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		payload := fmt.Appendf(nil, "datagram %d %s", i, strings.Repeat("x", i*6))
		if err := a.SendUDP(40000, dst, payload); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	for i := range n {
		d, err := b.ReceiveUDP(ctx)
		if err != nil {
			t.Fatalf("receive %d: %v (hostB %+v)", i, err, b.Stats())
		}
		want := fmt.Appendf(nil, "datagram %d %s", i, strings.Repeat("x", i*6))
		if d.Src != netip.AddrPortFrom(a.Addr(), 40000) || d.Dst != dst || !bytes.Equal(d.Payload, want) {
			t.Fatalf("datagram %d: %v -> %v %q", i, d.Src, d.Dst, d.Payload)
		}
	}
	// And back.
	if err := b.SendUDP(9000, netip.AddrPortFrom(a.Addr(), 40000), []byte("reply")); err != nil {
		t.Fatal(err)
	}
	if d, err := a.ReceiveUDP(ctx); err != nil || string(d.Payload) != "reply" {
		t.Fatalf("reply: %q %v", d.Payload, err)
	}
	if err := a.SendUDP(1, dst, make([]byte, maxPayload+1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("oversized datagram: %v", err)
	}
}

// TestEmbeddedParallel starts two topologies at once: each picks its own
// loopback network.
func TestEmbeddedParallel(t *testing.T) {
	var (
		wg   sync.WaitGroup
		tops [2]*Embedded
		errs [2]error
	)
	for i := range tops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tops[i], errs[i] = StartEmbedded(context.Background(), EmbeddedOptions{MissPolicy: "queue"})
		}()
	}
	wg.Wait()
	for i, e := range tops {
		if errs[i] != nil {
			t.Fatalf("topology %d: %v", i, errs[i])
		}
		t.Cleanup(func() { _ = e.Close() })
	}
	if tops[0].Plan().RLOCNet == tops[1].Plan().RLOCNet {
		t.Fatalf("both on %v", tops[0].Plan().RLOCNet)
	}
	for _, e := range tops {
		if _, err := e.Host(SiteA).Ping(context.Background(), e.Plan().Host[SiteB], 1, 5*time.Second); err != nil {
			t.Fatalf("%v: %v", e.Plan().RLOCNet, err)
		}
	}
}

func TestEmbeddedClose(t *testing.T) {
	e, err := StartEmbedded(context.Background(), EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := e.dir
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory %s left behind: %v", dir, err)
	}
	if _, err := e.Host(SiteA).Ping(context.Background(), e.Plan().Host[SiteB], 1, time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("ping after Close: %v", err)
	}
	if _, err := e.Host(SiteB).ReceiveUDP(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("receive after Close: %v", err)
	}
	// The addresses are free again: a topology can take the same network.
	e2, err := StartEmbedded(context.Background(), EmbeddedOptions{RLOCNet: e.Plan().RLOCNet})
	if err != nil {
		t.Fatalf("restart on %v: %v", e.Plan().RLOCNet, err)
	}
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddedOptionsRefused(t *testing.T) {
	for _, o := range []EmbeddedOptions{
		{RLOCNet: netip.MustParsePrefix("10.0.0.0/24")},
		{RLOCNet: netip.MustParsePrefix("127.0.9.0/16")},
		{MissPolicy: "hold"},
		{StartTimeout: -time.Second},
	} {
		if e, err := StartEmbedded(context.Background(), o); !errors.Is(err, ErrInvalid) {
			if e != nil {
				_ = e.Close()
			}
			t.Errorf("%+v: %v, want ErrInvalid", o, err)
		}
	}
}

// TestEmbeddedAddressTaken: an explicit network whose address is taken is
// an error naming it, not a retry elsewhere.
func TestEmbeddedAddressTaken(t *testing.T) {
	p, err := pickLoopbackNet()
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := NewPlan(p)
	hold, err := netListenUDP(netip.AddrPortFrom(plan.RLOC[SiteB], DataPort))
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	e, err := StartEmbedded(context.Background(), EmbeddedOptions{RLOCNet: p, StartTimeout: 5 * time.Second})
	if err == nil {
		_ = e.Close()
		t.Fatal("started on a taken address")
	}
	if !addrInUse(err) || !strings.Contains(err.Error(), "xtrB") {
		t.Errorf("error %v does not say xtrB's address is in use", err)
	}
}

// netListenUDP binds a UDP socket (to hold an address).
func netListenUDP(a netip.AddrPort) (*net.UDPConn, error) {
	return net.ListenUDP("udp4", net.UDPAddrFromAddrPort(a))
}
