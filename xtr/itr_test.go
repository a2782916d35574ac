package xtr

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

func TestNewITRValidates(t *testing.T) {
	out := &recordingSender{}
	good := ITRConfig{MapResolvers: []netip.AddrPort{mr1}, RLOCs: []netip.Addr{rlocA}}
	if _, err := NewITR(good, nil); !errors.Is(err, ErrNilSender) {
		t.Errorf("nil sender: %v", err)
	}
	for name, mod := range map[string]func(*ITRConfig){
		"no MR":        func(c *ITRConfig) { c.MapResolvers = nil },
		"no RLOC":      func(c *ITRConfig) { c.RLOCs = nil },
		"bad MR":       func(c *ITRConfig) { c.MapResolvers = []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:4342")} },
		"dup MR":       func(c *ITRConfig) { c.MapResolvers = []netip.AddrPort{mr1, mr1} },
		"dup RLOC":     func(c *ITRConfig) { c.RLOCs = []netip.Addr{rlocA, rlocA} },
		"big IID":      func(c *ITRConfig) { c.InstanceID = 1 << 24 },
		"policy":       func(c *ITRConfig) { c.MissPolicy = 7 },
		"negative":     func(c *ITRConfig) { c.QueueTotal = -1 },
		"refresh":      func(c *ITRConfig) { c.RefreshIfUsedWithin = -time.Second },
		"multicast RL": func(c *ITRConfig) { c.RLOCs = []netip.Addr{netip.MustParseAddr("224.0.0.1")} },
	} {
		cfg := good
		mod(&cfg)
		if _, err := NewITR(cfg, out); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	i, err := NewITR(good, out)
	if err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.MapResolvers = nil
	if err := i.SetConfig(bad); err == nil {
		t.Error("SetConfig accepted a bad config")
	}
	if got := i.settings.Load().mrs; len(got) != 1 || got[0] != mr1 {
		t.Errorf("a refused SetConfig changed the settings: %v", got)
	}
}

func TestMissSendsEncapsulatedMapRequest(t *testing.T) {
	i, out, clk := newTestITR(t, func(c *ITRConfig) {
		c.InstanceID = 7
		c.RLOCs = []netip.Addr{rlocA, netip.MustParseAddr("2001:db8::1")}
	})
	st := i.settings.Load()
	pkt := ipv4Packet("10.1.0.5", "10.2.3.4", 1000, 2000, 10)
	i.miss(st, netip.MustParseAddr("10.2.3.4"), netip.MustParseAddr("10.1.0.5"), pkt, clk.Now())
	i.miss(st, netip.MustParseAddr("10.2.3.4"), netip.MustParseAddr("10.1.0.5"), pkt, clk.Now())
	i.sendFresh()
	msgs := out.take()
	if len(msgs) != 1 {
		t.Fatalf("%d datagrams for two misses to one destination, want 1", len(msgs))
	}
	if msgs[0].to != mr1 {
		t.Errorf("sent to %s, want the first Map-Resolver %s", msgs[0].to, mr1)
	}
	ecm, req := innerRequest(t, msgs[0])
	if ecm.ToETR || ecm.ToMS {
		t.Errorf("ECM flags E=%v M=%v", ecm.ToETR, ecm.ToMS)
	}
	if ecm.Source != netip.MustParseAddrPort("192.0.2.1:4342") || ecm.Destination != netip.MustParseAddrPort("10.2.3.4:4342") {
		t.Errorf("inner header %s -> %s", ecm.Source, ecm.Destination)
	}
	if req.Nonce == 0 || req.Probe || req.SMR || req.SMRInvoked || len(req.ITRRLOCs) != 2 {
		t.Errorf("request = %+v", req)
	}
	if iid, p, ok := req.Records[0].Prefix(); !ok || iid != 7 || p != netip.MustParsePrefix("10.2.3.4/32") {
		t.Errorf("record = %d %s", iid, p)
	}
	if iid, ip, ok := req.SourceEID.InstanceIP(); !ok || iid != 7 || ip != netip.MustParseAddr("10.1.0.5") {
		t.Errorf("source EID = %s", req.SourceEID)
	}
	cs := i.Counters()
	if counter(cs, "misses") != 2 || counter(cs, "map_requests_sent") != 1 || counter(cs, "miss_packets_dropped") != 2 {
		t.Errorf("counters: misses %d sent %d dropped %d", counter(cs, "misses"), counter(cs, "map_requests_sent"), counter(cs, "miss_packets_dropped"))
	}
}

func TestRetriesWithBackoffThenGiveUp(t *testing.T) {
	i, out, clk := newTestITR(t, func(c *ITRConfig) {
		c.MapRequestTimeout = time.Second
		c.MapRequestRetries = 3
		c.MissPolicy = MissQueue
	})
	st := i.settings.Load()
	dst := netip.MustParseAddr("10.2.3.4")
	i.miss(st, dst, netip.Addr{}, ipv4Packet("10.1.0.5", "10.2.3.4", 1, 2, 0), clk.Now())
	i.sendFresh()
	first := out.take()
	_, req := innerRequest(t, first[0])
	nonce := req.Nonce
	// Retries after 1 s, then 2 s, then 4 s more, to the other MR in turn.
	wantAt := []time.Duration{time.Second, 3 * time.Second, 7 * time.Second}
	wantTo := []netip.AddrPort{mr2, mr1, mr2}
	start := clk.Now()
	for k, at := range wantAt {
		clk.Advance(start.Add(at).Sub(clk.Now()) - time.Millisecond)
		i.onTick(clk.Now())
		if got := out.take(); len(got) != 0 {
			t.Fatalf("retry %d sent %v early", k+1, got[0].to)
		}
		clk.Advance(time.Millisecond)
		i.onTick(clk.Now())
		got := out.take()
		if len(got) != 1 || got[0].to != wantTo[k] {
			t.Fatalf("retry %d at %s: %d datagrams (%v), want one to %s", k+1, at, len(got), got, wantTo[k])
		}
		if _, r := innerRequest(t, got[0]); r.Nonce != nonce {
			t.Errorf("retry %d has nonce %x, want the request's %x", k+1, r.Nonce, nonce)
		}
	}
	// After the last retry's 8 s the request is abandoned.
	clk.Advance(8*time.Second - time.Millisecond)
	i.onTick(clk.Now())
	if i.Outstanding() != 1 {
		t.Fatal("abandoned too early")
	}
	clk.Advance(time.Millisecond)
	i.onTick(clk.Now())
	if i.Outstanding() != 0 || len(out.take()) != 0 {
		t.Fatal("not abandoned after the last retry")
	}
	cs := i.Counters()
	if counter(cs, "map_request_retries") != 3 || counter(cs, "map_request_timeouts") != 1 ||
		counter(cs, "map_requests_sent") != 4 || counter(cs, "miss_packets_queued") != 1 || counter(cs, "miss_packets_dropped") != 1 {
		t.Errorf("counters %v", cs[:12])
	}
	// The late answer is now unsolicited.
	i.HandlePacket(mapReply(t, nonce, 0, "10.2.0.0/16", 10, "192.0.2.2"), mr1, netip.Addr{})
	if counter(i.Counters(), "map_replies_unsolicited") != 1 || i.Cache().Len() != 0 {
		t.Error("a reply after giving up was accepted")
	}
}

func TestGlobalRateLimit(t *testing.T) {
	i, out, clk := newTestITR(t, func(c *ITRConfig) { c.MapRequestRate = 2 })
	st := i.settings.Load()
	for k := range 5 {
		dst := netip.AddrFrom4([4]byte{10, 2, 0, byte(k + 1)})
		i.miss(st, dst, netip.Addr{}, nil, clk.Now())
	}
	i.sendFresh()
	if got := len(out.take()); got != 2 {
		t.Fatalf("%d Map-Requests sent with a limit of 2/s (burst 2)", got)
	}
	if n := counter(i.Counters(), "map_requests_rate_limited"); n != 3 {
		t.Errorf("rate_limited = %d, want 3", n)
	}
	if i.Outstanding() != 2 {
		t.Errorf("%d outstanding, want 2 (the refused ones are forgotten)", i.Outstanding())
	}
	// A second later the limiter has room again.
	clk.Advance(time.Second)
	i.miss(st, netip.MustParseAddr("10.2.0.9"), netip.Addr{}, nil, clk.Now())
	i.sendFresh()
	if got := len(out.take()); got != 1 {
		t.Errorf("%d sent after the limiter refilled", got)
	}
}

func TestMaxPending(t *testing.T) {
	i, _, clk := newTestITR(t, func(c *ITRConfig) { c.MaxPending = 2 })
	st := i.settings.Load()
	for k := range 3 {
		i.miss(st, netip.AddrFrom4([4]byte{10, 2, 0, byte(k + 1)}), netip.Addr{}, nil, clk.Now())
	}
	if i.Outstanding() != 2 || counter(i.Counters(), "pending_overflow") != 1 {
		t.Errorf("outstanding %d, overflow %d", i.Outstanding(), counter(i.Counters(), "pending_overflow"))
	}
	if err := i.Refresh(0, netip.MustParsePrefix("10.9.0.0/16")); !errors.Is(err, ErrBusy) {
		t.Errorf("Refresh with a full table: %v", err)
	}
}

func TestMapReplyAcceptedAndSpoofCounted(t *testing.T) {
	i, out, clk := newTestITR(t, nil)
	st := i.settings.Load()
	dst := netip.MustParseAddr("10.2.3.4")
	i.miss(st, dst, netip.Addr{}, nil, clk.Now())
	i.sendFresh()
	_, req := innerRequest(t, out.take()[0])

	// A reply with another nonce is a spoofing attempt.
	i.HandlePacket(mapReply(t, req.Nonce+1, 0, "10.2.0.0/16", 10, "192.0.2.2"), mr1, netip.Addr{})
	if i.Cache().Len() != 0 || counter(i.Counters(), "map_replies_unsolicited") != 1 {
		t.Fatal("a reply with an unknown nonce was accepted")
	}
	// A record that does not cover the EID asked for is ignored.
	rec1 := wire.NewEIDRecord(0, netip.MustParsePrefix("10.99.0.0/16"))
	rec1.RecordTTL = 10
	rec1.Locators = []wire.Locator{{Priority: 1, Weight: 1, Address: wire.AddrFrom(rlocC)}}
	rec2 := wire.NewEIDRecord(0, netip.MustParsePrefix("10.2.0.0/16"))
	rec2.RecordTTL = 10
	rec2.MapVersion = 5
	rec2.Locators = []wire.Locator{{Priority: 1, Weight: 50, Address: wire.AddrFrom(rlocB)}}
	m := wire.MapReply{Nonce: req.Nonce, Records: []wire.EIDRecord{rec1, rec2}}
	b, _ := m.AppendBinary(nil)
	from := netip.MustParseAddrPort("192.0.2.2:4342")
	i.HandlePacket(b, from, netip.Addr{})
	cs := i.Counters()
	if counter(cs, "map_replies_accepted") != 1 || counter(cs, "map_reply_records_ignored") != 1 {
		t.Errorf("accepted %d ignored %d", counter(cs, "map_replies_accepted"), counter(cs, "map_reply_records_ignored"))
	}
	e, ok := i.Cache().Get(mapcache.Key{Prefix: netip.MustParsePrefix("10.2.0.0/16")})
	if !ok {
		t.Fatal("the mapping was not installed")
	}
	if e.Source != mapcache.FromMapReply || e.Origin != "192.0.2.2" || e.TTL != 10*time.Minute ||
		!e.Expires.Equal(clk.Now().Add(10*time.Minute)) || e.MapVersion != 5 || len(e.RLOCs) != 1 || e.RLOCs[0].Addr != rlocB {
		t.Errorf("entry = %+v", e)
	}
	if _, ok := i.Cache().Get(mapcache.Key{Prefix: netip.MustParsePrefix("10.99.0.0/16")}); ok {
		t.Error("a record for another EID was installed")
	}
	if i.Outstanding() != 0 {
		t.Error("the request is still outstanding")
	}
	// The same reply again is unsolicited now.
	i.HandlePacket(b, from, netip.Addr{})
	if counter(i.Counters(), "map_replies_unsolicited") != 2 {
		t.Error("a replayed reply was accepted")
	}
	// Garbage is counted, not fatal.
	i.HandlePacket([]byte{0x20, 0, 0}, from, netip.Addr{})
	i.HandlePacket(nil, from, netip.Addr{})
	if counter(i.Counters(), "malformed") != 2 {
		t.Error("malformed datagrams not counted")
	}
}

func TestNegativeReplyAndTTLZero(t *testing.T) {
	i, out, clk := newTestITR(t, nil)
	st := i.settings.Load()
	i.miss(st, netip.MustParseAddr("10.5.0.1"), netip.Addr{}, nil, clk.Now())
	i.sendFresh()
	_, req := innerRequest(t, out.take()[0])
	i.HandlePacket(mapReply(t, req.Nonce, 0, "10.4.0.0/14", 15), mr1, netip.Addr{})
	e, ok := i.Cache().Lookup(0, netip.MustParseAddr("10.5.0.1"))
	if !ok || !e.Negative() || e.Action != mapcache.NativelyForward || e.TTL != 15*time.Minute {
		t.Fatalf("negative entry = %+v %v", e, ok)
	}
	if counter(i.Counters(), "negative_entries") != 1 {
		t.Error("negative entry not counted")
	}
	// A Record TTL of 0 removes the mapping.
	if err := i.Refresh(0, netip.MustParsePrefix("10.4.0.0/14")); err != nil {
		t.Fatal(err)
	}
	i.sendFresh()
	_, req = innerRequest(t, out.take()[0])
	if iid, p, _ := req.Records[0].Prefix(); iid != 0 || p != netip.MustParsePrefix("10.4.0.0/14") {
		t.Errorf("refresh asked for %s", p)
	}
	i.HandlePacket(mapReply(t, req.Nonce, 0, "10.4.0.0/14", 0), mr1, netip.Addr{})
	if i.Cache().Len() != 0 {
		t.Error("a Record TTL of 0 did not remove the mapping")
	}
}

func TestSMRInvokesMapRequest(t *testing.T) {
	i, out, clk := newTestITR(t, nil)
	insert(t, i.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: rlocs("192.0.2.2")})
	smr := func(prefix string) []byte {
		m := wire.MapRequest{SMR: true, Nonce: 77, SourceEID: wire.AddrFrom(netip.MustParsePrefix(prefix).Addr()),
			ITRRLOCs: []wire.Address{wire.AddrFrom(rlocB)},
			Records:  []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix(prefix))}}
		b, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	from := netip.MustParseAddrPort("192.0.2.2:4342")
	i.HandlePacket(smr("10.2.0.0/16"), from, netip.Addr{})
	i.HandlePacket(smr("10.2.0.0/16"), from, netip.Addr{}) // one outstanding at a time
	i.HandlePacket(smr("10.3.0.0/16"), from, netip.Addr{}) // not cached: ignored
	i.sendFresh()
	msgs := out.take()
	if len(msgs) != 1 || msgs[0].to != mr1 {
		t.Fatalf("%d datagrams, want one SMR-invoked Map-Request to the MR", len(msgs))
	}
	_, req := innerRequest(t, msgs[0])
	if !req.SMRInvoked || req.SMR {
		t.Errorf("s=%v S=%v, want s set", req.SMRInvoked, req.SMR)
	}
	if _, p, _ := req.Records[0].Prefix(); p != netip.MustParsePrefix("10.2.0.0/16") {
		t.Errorf("asked for %s", p)
	}
	cs := i.Counters()
	if counter(cs, "smr_received") != 3 || counter(cs, "smr_invoked_requests") != 1 || counter(cs, "smr_ignored") != 1 {
		t.Errorf("smr counters: %d %d %d", counter(cs, "smr_received"), counter(cs, "smr_invoked_requests"), counter(cs, "smr_ignored"))
	}
	// The cached mapping stays in use meanwhile; the reply replaces it.
	if _, ok := i.Cache().Lookup(0, netip.MustParseAddr("10.2.1.1")); !ok {
		t.Error("the mapping was dropped while being refreshed")
	}
	clk.Advance(time.Millisecond)
	i.HandlePacket(mapReply(t, req.Nonce, 0, "10.2.0.0/16", 10, "192.0.2.3"), from, netip.Addr{})
	e, _ := i.Cache().Lookup(0, netip.MustParseAddr("10.2.1.1"))
	if e.RLOCs[0].Addr != rlocC {
		t.Errorf("the SMR-invoked reply did not replace the mapping: %v", e.RLOCs)
	}
}

func TestRefreshIfUsedWithin(t *testing.T) {
	i, out, clk := newTestITR(t, func(c *ITRConfig) { c.RefreshIfUsedWithin = time.Minute })
	c := i.Cache()
	used := insert(t, c, &mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: rlocs("192.0.2.2"), TTL: 5 * time.Minute, Source: mapcache.FromMapReply})
	idle := insert(t, c, &mapcache.Entry{Prefix: netip.MustParsePrefix("10.3.0.0/16"), RLOCs: rlocs("192.0.2.3"), TTL: 5 * time.Minute, Source: mapcache.FromSync})
	_ = idle
	clk.Advance(4*time.Minute + 30*time.Second)
	used.Touch(clk.Now().UnixNano())
	clk.Advance(31 * time.Second)
	c.Sweep(clk.Now())
	if _, ok := c.Get(used.Key()); !ok {
		t.Fatal("an entry used within the window expired")
	}
	if _, ok := c.Get(mapcache.Key{Prefix: netip.MustParsePrefix("10.3.0.0/16")}); ok {
		t.Fatal("an idle entry was kept")
	}
	i.sendFresh()
	msgs := out.take()
	if len(msgs) != 1 {
		t.Fatalf("%d Map-Requests, want one refresh", len(msgs))
	}
	_, req := innerRequest(t, msgs[0])
	if _, p, _ := req.Records[0].Prefix(); p != netip.MustParsePrefix("10.2.0.0/16") {
		t.Errorf("refresh for %s", p)
	}
	if counter(i.Counters(), "expiry_refreshes") != 1 {
		t.Error("refresh not counted")
	}
	i.HandlePacket(mapReply(t, req.Nonce, 0, "10.2.0.0/16", 5, "192.0.2.2"), mr1, netip.Addr{})
	e, _ := c.Get(used.Key())
	if e == used || !e.Expires.Equal(clk.Now().Add(5*time.Minute)) {
		t.Errorf("the reply did not replace the entry: expires %s", e.Expires)
	}
	// With the window set to 0 the entry just expires.
	i.SetRefreshIfUsedWithin(0)
	e.Touch(clk.Now().Add(5 * time.Minute).UnixNano())
	clk.Advance(5*time.Minute + time.Second)
	c.Sweep(clk.Now())
	if c.Len() != 0 {
		t.Error("with refresh off the entry did not expire")
	}
	if i.RefreshIfUsedWithin() != 0 {
		t.Error("RefreshIfUsedWithin")
	}
}

func TestResolve(t *testing.T) {
	i, out, clk := newTestITR(t, func(c *ITRConfig) { c.TickInterval = time.Millisecond; c.MapRequestRetries = -1 })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- i.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	type result struct {
		e   *mapcache.Entry
		err error
	}
	res := make(chan result, 1)
	go func() {
		e, err := i.Resolve(context.Background(), 0, netip.MustParseAddr("10.2.3.4"))
		res <- result{e, err}
	}()
	msgs := out.waitSent(t, 1)
	_, req := innerRequest(t, msgs[0])
	i.HandlePacket(mapReply(t, req.Nonce, 0, "10.2.0.0/16", 10, "192.0.2.2"), mr1, netip.Addr{})
	r := <-res
	if r.err != nil || r.e.Prefix != netip.MustParsePrefix("10.2.0.0/16") {
		t.Fatalf("Resolve = %+v", r)
	}
	// Cached now: no Map-Request.
	if e, err := i.Resolve(context.Background(), 0, netip.MustParseAddr("10.2.9.9")); err != nil || e == nil || len(out.take()) != 0 {
		t.Errorf("cached Resolve: %v", err)
	}
	// Unanswered, with no retries: ErrNoAnswer once the timeout passes.
	go func() {
		_, err := i.Resolve(context.Background(), 0, netip.MustParseAddr("10.7.0.1"))
		res <- result{nil, err}
	}()
	out.waitSent(t, 1)
	clk.Advance(2 * time.Second)
	if r := <-res; !errors.Is(r.err, ErrNoAnswer) {
		t.Errorf("unanswered Resolve: %v", r.err)
	}
	// A canceled context ends the wait.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := i.Resolve(cctx, 0, netip.MustParseAddr("10.8.0.1")); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Resolve: %v", err)
	}
	if _, err := i.Resolve(context.Background(), 1<<24, netip.MustParseAddr("10.8.0.1")); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("bad IID: %v", err)
	}
}

func TestRunTwiceAndStop(t *testing.T) {
	i, _, clk := newTestITR(t, func(c *ITRConfig) { c.TickInterval = time.Millisecond; c.MissPolicy = MissQueue })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- i.Run(ctx) }()
	waitFor(t, "Run started", i.running.Load)
	if err := i.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v", err)
	}
	st := i.settings.Load()
	i.miss(st, netip.MustParseAddr("10.2.0.1"), netip.Addr{}, []byte{1, 2, 3}, clk.Now())
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if i.Outstanding() != 0 || i.heldTotal != 0 {
		t.Errorf("after Run: %d outstanding, %d held", i.Outstanding(), i.heldTotal)
	}
	if _, err := i.Resolve(context.Background(), 0, netip.MustParseAddr("10.2.0.2")); !errors.Is(err, ErrStopped) {
		t.Errorf("Resolve after stop: %v", err)
	}
}
