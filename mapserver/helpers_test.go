package mapserver

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a Clock whose time moves only when the test says so.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clk    *fakeClock
	c      chan time.Time
	at     time.Time
	active bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clk: c, c: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

// Advance moves the clock and fires the timers that came due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.fireLocked()
	c.mu.Unlock()
}

func (c *fakeClock) fireLocked() {
	for _, t := range c.timers {
		if t.active && !t.at.After(c.now) {
			t.active = false
			select {
			case t.c <- c.now:
			default:
			}
		}
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Reset(d time.Duration) {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	select { // like Go 1.23 timers: no stale value after Reset
	case <-t.c:
	default:
	}
	t.at = t.clk.now.Add(d)
	t.active = true
	t.clk.fireLocked()
}

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := t.active
	t.active = false
	select {
	case <-t.c:
	default:
	}
	return was
}

// sent is one datagram a capSender saw.
type sent struct {
	b  []byte
	to netip.AddrPort
}

// capSender records the datagrams sent through it.
type capSender struct {
	mu   sync.Mutex
	pkts []sent
	fail error
}

func (c *capSender) Send(b []byte, to netip.AddrPort) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.pkts = append(c.pkts, sent{b: bytes.Clone(b), to: to})
	return nil
}

// take returns and forgets the datagrams sent so far.
func (c *capSender) take() []sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pkts
	c.pkts = nil
	return p
}

// eventually polls cond until it holds or a few seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var (
	keyA = []byte("site-a secret")
	keyB = []byte("site-b secret")
)

// testSites: site a (HMAC-SHA-1, 10.1.0.0/16 with more-specifics, proxy
// replies allowed) and site b (HMAC-SHA-256, 10.2.0.0/16 exact and
// [7]2001:db8:2::/48 with more-specifics, proxy replies not allowed).
func testSites() []Site {
	return []Site{
		{
			Name: "a", Key: keyA, KeyID: 0, Algorithm: wire.AlgHMACSHA196, AllowProxyReply: true,
			Prefixes: []SitePrefix{{EIDPrefix: eid(0, "10.1.0.0/16"), AcceptMoreSpecifics: true}},
		},
		{
			Name: "b", Key: keyB, KeyID: 3, Algorithm: wire.AlgHMACSHA256128,
			Prefixes: []SitePrefix{
				{EIDPrefix: eid(0, "10.2.0.0/16")},
				{EIDPrefix: eid(7, "2001:db8:2::/48"), AcceptMoreSpecifics: true},
			},
		},
	}
}

// newTestServer returns an MS+MR server over a capSender and a fake clock.
func newTestServer(t *testing.T, mutate func(*Config)) (*Server, *capSender, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	cfg := Config{MapServer: true, MapResolver: true, Sites: testSites(), Clock: clk}
	if mutate != nil {
		mutate(&cfg)
	}
	out := &capSender{}
	s, err := New(cfg, out, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, out, clk
}

// loc returns a reachable locator record for ip, flagged local as an ETR
// registers its own.
func loc(ip string) wire.Locator {
	return wire.Locator{Priority: 1, Weight: 50, Reachable: true, Local: true, Address: wire.AddrFrom(netip.MustParseAddr(ip))}
}

// rec returns an EID record with the given TTL (minutes) and locators.
func rec(iid uint32, prefix string, ttl uint32, locs ...wire.Locator) wire.EIDRecord {
	r := wire.NewEIDRecord(iid, netip.MustParsePrefix(prefix))
	r.RecordTTL = ttl
	r.Authoritative = true
	r.Locators = locs
	return r
}

// regOpts describes a Map-Register to build.
type regOpts struct {
	key        []byte
	keyID      uint8
	alg        wire.AlgorithmID
	truncated  bool
	nonce      uint64
	proxy      bool
	wantNotify bool
	useTTL     bool
	merge      bool
	xtrID      *wire.XTRID
	siteID     uint64
	records    []wire.EIDRecord
}

// buildRegister encodes and signs a Map-Register as an ETR would.
func buildRegister(t testing.TB, o regOpts) []byte {
	t.Helper()
	m := &wire.MapRegister{
		ProxyReply:    o.proxy,
		WantMapNotify: o.wantNotify,
		UseTTL:        o.useTTL,
		MergeRequest:  o.merge,
		Nonce:         o.nonce,
		KeyID:         o.keyID,
		AlgorithmID:   o.alg,
		Records:       o.records,
	}
	if o.truncated {
		m.AuthData = make([]byte, o.alg.AuthLen(true))
	}
	if o.xtrID != nil {
		m.XTRIDPresent = true
		m.XTRID = *o.xtrID
		m.SiteID = o.siteID
	}
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatalf("encode Map-Register: %v", err)
	}
	if o.alg != wire.AlgNone {
		if err := wire.Sign(b, o.key); err != nil {
			t.Fatalf("sign Map-Register: %v", err)
		}
	}
	return b
}

// siteARegister is a valid register of [0]10.1.1.0/24 for site a.
func siteARegister(t testing.TB, nonce uint64, proxy, notify bool, locs ...wire.Locator) []byte {
	t.Helper()
	return buildRegister(t, regOpts{
		key: keyA, alg: wire.AlgHMACSHA196, nonce: nonce, proxy: proxy, wantNotify: notify,
		records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 1440, locs...)},
	})
}

// buildRequest encodes an ECM carrying a Map-Request for eid/len from an
// ITR at itr (inner source and ITR-RLOC) towards dst.
func buildRequest(t testing.TB, itr netip.AddrPort, iid uint32, eidPrefix string, nonce uint64, mutate func(*wire.MapRequest)) []byte {
	t.Helper()
	p := netip.MustParsePrefix(eidPrefix)
	req := &wire.MapRequest{
		Nonce:    nonce,
		ITRRLOCs: []wire.Address{wire.AddrFrom(itr.Addr())},
		Records:  []wire.RequestRecord{wire.NewRequestRecord(iid, p)},
	}
	if mutate != nil {
		mutate(req)
	}
	dst := p.Addr()
	if dst.Is4() != itr.Addr().Is4() {
		dst = itr.Addr()
	}
	b, err := wire.NewECM(itr, netip.AddrPortFrom(dst, ControlPort), req).AppendBinary(nil)
	if err != nil {
		t.Fatalf("encode ECM Map-Request: %v", err)
	}
	return b
}

// parseAs parses b and asserts its type.
func parseAs[T wire.Message](t testing.TB, b []byte) T {
	t.Helper()
	m, err := wire.Parse(b)
	if err != nil {
		t.Fatalf("parse sent datagram: %v", err)
	}
	v, ok := m.(T)
	if !ok {
		t.Fatalf("sent %T, want %T", m, *new(T))
	}
	return v
}

// onlyOne asserts that exactly one datagram was sent and returns it.
func onlyOne(t testing.TB, out *capSender) sent {
	t.Helper()
	p := out.take()
	if len(p) != 1 {
		t.Fatalf("sent %d datagrams, want 1", len(p))
	}
	return p[0]
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
