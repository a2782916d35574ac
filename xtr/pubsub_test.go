package xtr

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

var (
	psKey   = []byte("pubsub-key")
	psMS    = netip.MustParseAddrPort("192.0.2.200:4342")
	psXTRID = wire.XTRID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
)

// newPubSubITR returns a test ITR that subscribes, with psKey.
func newPubSubITR(t *testing.T, mod func(*ITRConfig)) (*ITR, *recordingSender, *fakeClock) {
	t.Helper()
	return newTestITR(t, func(c *ITRConfig) {
		c.Subscribe = true
		c.PubSubKey = psKey
		c.PubSubKeyID = 3
		c.XTRID = psXTRID
		c.SiteID = 7
		if mod != nil {
			mod(c)
		}
	})
}

// psRecord returns a mapping record for prefix with the locators locs.
func psRecord(prefix string, ttl uint32, locs ...string) wire.EIDRecord {
	rec := wire.NewEIDRecord(0, netip.MustParsePrefix(prefix))
	rec.RecordTTL = ttl
	for k, l := range locs {
		rec.Locators = append(rec.Locators, wire.Locator{Priority: uint8(1 + k), Weight: 100, Reachable: true, Address: wire.AddrFrom(netip.MustParseAddr(l))})
	}
	if len(locs) == 0 && ttl != 0 {
		rec.Action = wire.NativelyForward
	}
	return rec
}

// psNotify encodes a Map-Notify as lispd's Map-Server sends it: Key ID 3,
// HMAC-SHA-256-128 signed with key; with a nil key, unsigned (Algorithm ID
// 0, as lispers.net sends it).
func psNotify(t testing.TB, nonce uint64, key []byte, recs ...wire.EIDRecord) []byte {
	t.Helper()
	b, err := encodeNotify(nonce, key, recs...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encodeNotify is psNotify for goroutines other than the test's.
func encodeNotify(nonce uint64, key []byte, recs ...wire.EIDRecord) ([]byte, error) {
	m := wire.MapNotify{Nonce: nonce, Records: recs}
	if key != nil {
		m.KeyID = 3
		m.AlgorithmID = wire.AlgHMACSHA256128
		m.AuthData = make([]byte, wire.AlgHMACSHA256128.AuthLen(false))
	}
	b, err := m.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	return b, wire.Sign(b, key)
}

// removalNotice encodes the Map-Server's notice that it dropped the
// subscription to prefix.
func removalNotice(t *testing.T, nonce uint64, key []byte, prefix string) []byte {
	t.Helper()
	rec := psRecord(prefix, 0)
	rec.Action = wire.DropAuthFailure
	return psNotify(t, nonce, key, rec)
}

// subscribe makes the ITR send a subscribing Map-Request for dst (a miss)
// and returns it.
func subscribe(t *testing.T, i *ITR, out *recordingSender, clk *fakeClock, dst string) *wire.MapRequest {
	t.Helper()
	i.miss(i.settings.Load(), netip.MustParseAddr(dst), netip.Addr{}, ipv4Packet("10.1.0.5", dst, 1, 2, 0), clk.Now())
	i.sendFresh()
	msgs := out.take()
	if len(msgs) != 1 {
		t.Fatalf("%d datagrams for a miss, want one Map-Request", len(msgs))
	}
	_, req := innerRequest(t, msgs[0])
	return req
}

// takeAck returns the one Map-Notify-Ack sent, checking where it went.
func takeAck(t *testing.T, out *recordingSender) (*wire.MapNotifyAck, []byte) {
	t.Helper()
	msgs := out.take()
	if len(msgs) != 1 {
		t.Fatalf("%d datagrams sent, want one Map-Notify-Ack", len(msgs))
	}
	ack, ok := msgs[0].msg.(*wire.MapNotifyAck)
	if !ok {
		t.Fatalf("sent %T, want a Map-Notify-Ack", msgs[0].msg)
	}
	if msgs[0].to != psMS {
		t.Errorf("ack sent to %s, want the Map-Notify's source %s", msgs[0].to, psMS)
	}
	return ack, msgs[0].b
}

// confirmed subscribes to 10.2.0.0/16 (through a miss for 10.2.3.4) and
// confirms it with a locator, leaving nothing sent; it returns the
// request's nonce.
func confirmed(t *testing.T, i *ITR, out *recordingSender, clk *fakeClock) uint64 {
	t.Helper()
	req := subscribe(t, i, out, clk, "10.2.3.4")
	i.HandlePacket(psNotify(t, req.Nonce, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.2")), psMS, netip.Addr{})
	takeAck(t, out)
	if n := len(i.Subscriptions()); n != 1 {
		t.Fatalf("%d subscriptions after the confirmation", n)
	}
	return req.Nonce
}

func entryOf(t *testing.T, i *ITR, prefix string) *mapcache.Entry {
	t.Helper()
	e, ok := i.Cache().Get(mapcache.Key{Prefix: netip.MustParsePrefix(prefix)})
	if !ok {
		t.Fatalf("no map-cache entry for %s", prefix)
	}
	return e
}

func TestPubSubConfig(t *testing.T) {
	out := &recordingSender{}
	good := ITRConfig{MapResolvers: []netip.AddrPort{mr1}, RLOCs: []netip.Addr{rlocA}, Subscribe: true, PubSubKey: psKey}
	for name, mod := range map[string]func(*ITRConfig){
		"no key":    func(c *ITRConfig) { c.PubSubKey = nil },
		"refresh":   func(c *ITRConfig) { c.SubscribeRefresh = -time.Second },
		"algorithm": func(c *ITRConfig) { c.PubSubAlgorithm = 9 },
	} {
		cfg := good
		mod(&cfg)
		if _, err := NewITR(cfg, out); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	unauth := good
	unauth.PubSubKey = nil
	unauth.PubSubUnauthenticated = true
	if err := unauth.Validate(); err != nil {
		t.Errorf("unauthenticated without a key: %v", err)
	}
	i, err := NewITR(good, out)
	if err != nil {
		t.Fatal(err)
	}
	st := i.settings.Load()
	x := st.xtrID
	if x == (wire.XTRID{}) || st.psAlg != wire.AlgHMACSHA256128 || st.subRefresh != DefaultSubscribeRefresh {
		t.Errorf("defaults: xTR-ID %s, algorithm %s, refresh %s", x, st.psAlg, st.subRefresh)
	}
	if err := i.SetConfig(good); err != nil {
		t.Fatal(err)
	}
	if i.settings.Load().xtrID != x {
		t.Error("the random xTR-ID changed with SetConfig")
	}
	bad := good
	bad.PubSubKey = nil
	if err := i.SetConfig(bad); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("SetConfig without a key: %v", err)
	}
}

func TestPubSubSubscribeRequestBits(t *testing.T) {
	i, out, clk := newPubSubITR(t, nil)
	i.miss(i.settings.Load(), netip.MustParseAddr("10.2.3.4"), netip.Addr{}, nil, clk.Now())
	i.sendFresh()
	msgs := out.take()
	if len(msgs) != 1 {
		t.Fatalf("%d datagrams", len(msgs))
	}
	// The bytes: ECM header (4), inner IPv4 (20) and UDP (8) headers, then
	// the Map-Request.
	b := msgs[0].b
	if len(b) < 32+4 {
		t.Fatalf("%d bytes", len(b))
	}
	mreq := b[32:]
	if mreq[0]>>4 != 1 || mreq[1]&0x10 == 0 {
		t.Errorf("Map-Request first word %x: want type 1 and the I bit (0x00100000)", mreq[:4])
	}
	nonce := binary.BigEndian.Uint64(mreq[4:12])
	if nonce == 0 || nonce >= 1<<62 {
		t.Errorf("first subscribing nonce %#x, want one in [1, 2^62)", nonce)
	}
	tail := mreq[len(mreq)-24:]
	if !bytes.Equal(tail[:16], psXTRID[:]) || binary.BigEndian.Uint64(tail[16:]) != 7 {
		t.Errorf("trailing xTR-ID and site-ID %x", tail)
	}
	// The record (one ITR-RLOC, no Source-EID): N bit, mask-len 32.
	rec := mreq[12+2+6:]
	if rec[0]&0x80 == 0 || rec[1] != 32 {
		t.Errorf("EID record starts %x: want the N bit and mask-len 32", rec[:2])
	}
	_, req := innerRequest(t, msgs[0])
	if !req.XTRIDPresent || req.XTRID != psXTRID || req.SiteID != 7 || req.NoSiteID ||
		len(req.Records) != 1 || !req.Records[0].NotifyRequested || req.Nonce != nonce {
		t.Errorf("parsed request %+v", req)
	}
	if c := counter(i.Counters(), "subscribe_requests_sent"); c != 1 {
		t.Errorf("subscribe_requests_sent = %d", c)
	}
	// Retries keep the nonce.
	clk.Advance(time.Second)
	i.onTick(clk.Now())
	if _, r := innerRequest(t, out.take()[0]); r.Nonce != nonce || !r.Records[0].NotifyRequested {
		t.Errorf("retry: nonce %#x N %v", r.Nonce, r.Records[0].NotifyRequested)
	}

	// Without Subscribe: no N, no I.
	j, out2, clk2 := newTestITR(t, nil)
	j.miss(j.settings.Load(), netip.MustParseAddr("10.2.3.4"), netip.Addr{}, nil, clk2.Now())
	j.sendFresh()
	if _, r := innerRequest(t, out2.take()[0]); r.XTRIDPresent || r.Records[0].NotifyRequested {
		t.Error("a request subscribed with Subscribe off")
	}
}

func TestPubSubRLOCProbesDoNotSubscribe(t *testing.T) {
	i, out, clk := newPubSubITR(t, func(c *ITRConfig) { c.RLOCProbeInterval = 10 * time.Second })
	e := insert(t, i.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: rlocs("192.0.2.2")})
	e.Touch(clk.Now().UnixNano())
	i.onTick(clk.Now())
	msgs := out.take()
	if len(msgs) != 1 {
		t.Fatalf("%d datagrams, want one probe", len(msgs))
	}
	if req, ok := msgs[0].msg.(*wire.MapRequest); !ok || !req.Probe || req.XTRIDPresent || req.Records[0].NotifyRequested {
		t.Errorf("probe %+v", msgs[0].msg)
	}
}

func TestPubSubConfirmationInstallsAndAcks(t *testing.T) {
	i, out, clk := newPubSubITR(t, func(c *ITRConfig) { c.MissPolicy = MissQueue })
	req := subscribe(t, i, out, clk, "10.2.3.4")
	// A second destination of the prefix waits too.
	i.miss(i.settings.Load(), netip.MustParseAddr("10.2.9.9"), netip.Addr{}, ipv4Packet("10.1.0.5", "10.2.9.9", 1, 2, 0), clk.Now())
	i.sendFresh()
	out.take()
	if !i.OwnsNotify(psNotify(t, req.Nonce, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.2"))) {
		t.Fatal("OwnsNotify false for the confirmation")
	}
	n := psNotify(t, req.Nonce, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.2"))
	i.HandlePacket(n, psMS, netip.Addr{})

	e := entryOf(t, i, "10.2.0.0/16")
	if e.Source != mapcache.FromPubSub || e.Origin != psMS.Addr().String() || len(e.RLOCs) != 1 || e.RLOCs[0].Addr != rlocB || e.TTL != time.Hour {
		t.Errorf("entry %+v", e)
	}
	ack, raw := takeAck(t, out)
	if ack.Nonce != req.Nonce || ack.KeyID != 3 || ack.AlgorithmID != wire.AlgHMACSHA256128 || len(ack.Records) != 1 {
		t.Errorf("ack %+v", ack)
	}
	if err := wire.Verify(raw, psKey); err != nil {
		t.Errorf("ack does not verify with the pub/sub key: %v", err)
	}
	if raw[0]>>4 != 5 || !bytes.Equal(raw[16+32:], n[16+32:]) {
		t.Error("the ack is not the Map-Notify with type 5")
	}
	subs := i.Subscriptions()
	want := Subscription{Prefix: netip.MustParsePrefix("10.2.0.0/16"), MapServer: psMS.Addr(), Nonce: req.Nonce,
		Subscribed: clk.Now(), LastNotify: clk.Now(), Notifies: 1}
	if len(subs) != 1 || subs[0] != want {
		t.Errorf("subscriptions %+v, want %+v", subs, want)
	}
	cs := i.Counters()
	for name, v := range map[string]uint64{
		"subscriptions_confirmed": 1, "pubsub_notifies_received": 1, "pubsub_notifies_installed": 1,
		"pubsub_acks_sent": 1, "map_replies_unsolicited": 0, "pubsub_notify_auth_failures": 0,
		"miss_packets_dropped": 2, // released with no DataPlane
	} {
		if got := counter(cs, name); got != v {
			t.Errorf("%s = %d, want %d", name, got, v)
		}
	}

	// A retransmission (our ack was lost) is acked again, nothing else.
	i.HandlePacket(n, psMS, netip.Addr{})
	takeAck(t, out)
	if counter(i.Counters(), "pubsub_notify_duplicates") != 1 || counter(i.Counters(), "subscriptions_confirmed") != 1 {
		t.Error("retransmitted confirmation not counted as a duplicate")
	}
	if entryOf(t, i, "10.2.0.0/16") != e {
		t.Error("a retransmitted confirmation was installed again")
	}
	// Both requests are finished: no retry.
	clk.Advance(time.Second)
	i.onTick(clk.Now())
	if i.Outstanding() != 0 || len(out.take()) != 0 {
		t.Errorf("%d requests outstanding after the confirmation", i.Outstanding())
	}
}

func TestPubSubNegativeConfirmation(t *testing.T) {
	i, out, clk := newPubSubITR(t, nil)
	req := subscribe(t, i, out, clk, "10.3.0.1")
	i.HandlePacket(psNotify(t, req.Nonce, psKey, psRecord("10.3.0.0/16", 15)), psMS, netip.Addr{})
	takeAck(t, out)
	e := entryOf(t, i, "10.3.0.0/16")
	if !e.Negative() || e.Action != mapcache.NativelyForward || e.Source != mapcache.FromPubSub {
		t.Errorf("negative entry %+v", e)
	}
	if s := i.Subscriptions(); len(s) != 1 || s[0].Prefix != netip.MustParsePrefix("10.3.0.0/16") {
		t.Errorf("subscriptions %+v", s)
	}
}

func TestPubSubPublicationReplacesAndWithdraws(t *testing.T) {
	i, out, clk := newPubSubITR(t, nil)
	nonce := confirmed(t, i, out, clk)
	clk.Advance(time.Second)
	i.HandlePacket(psNotify(t, nonce+1, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.3")), psMS, netip.Addr{})
	if e := entryOf(t, i, "10.2.0.0/16"); len(e.RLOCs) != 1 || e.RLOCs[0].Addr != rlocC || e.Source != mapcache.FromPubSub {
		t.Errorf("after the publication: %+v", e)
	}
	if ack, raw := takeAck(t, out); ack.Nonce != nonce+1 || wire.Verify(raw, psKey) != nil {
		t.Errorf("ack %+v", ack)
	}
	// A more specific mapping inside the subscription is published too.
	i.HandlePacket(psNotify(t, nonce+2, psKey, psRecord("10.2.5.0/24", 60, "192.0.2.9")), psMS, netip.Addr{})
	takeAck(t, out)
	entryOf(t, i, "10.2.5.0/24")
	// A withdrawal: Record TTL 0, no locators.
	i.HandlePacket(psNotify(t, nonce+3, psKey, psRecord("10.2.0.0/16", 0)), psMS, netip.Addr{})
	takeAck(t, out)
	if _, ok := i.Cache().Get(mapcache.Key{Prefix: netip.MustParsePrefix("10.2.0.0/16")}); ok {
		t.Error("a TTL-0 publication did not delete the entry")
	}
	subs := i.Subscriptions()
	if len(subs) != 1 || subs[0].Nonce != nonce+3 || subs[0].Notifies != 4 || !subs[0].LastNotify.Equal(clk.Now()) {
		t.Errorf("subscriptions %+v", subs)
	}
	cs := i.Counters()
	if counter(cs, "pubsub_withdrawals") != 1 || counter(cs, "pubsub_notifies_installed") != 3 || counter(cs, "pubsub_acks_sent") != 4 {
		t.Errorf("withdrawals %d installed %d acks %d", counter(cs, "pubsub_withdrawals"),
			counter(cs, "pubsub_notifies_installed"), counter(cs, "pubsub_acks_sent"))
	}
	// A record outside every subscription is not the ITR's.
	i.HandlePacket(psNotify(t, nonce+4, psKey, psRecord("10.7.0.0/16", 60, "192.0.2.9")), psMS, netip.Addr{})
	if len(out.take()) != 0 || counter(i.Counters(), "pubsub_notify_unmatched") != 1 {
		t.Error("a Map-Notify for no subscription was accepted")
	}
	if _, ok := i.Cache().Get(mapcache.Key{Prefix: netip.MustParsePrefix("10.7.0.0/16")}); ok {
		t.Error("a Map-Notify for no subscription was installed")
	}
}

func TestPubSubReplayDropped(t *testing.T) {
	i, out, clk := newPubSubITR(t, nil)
	nonce := confirmed(t, i, out, clk)
	pub := psNotify(t, nonce+1, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.3"))
	i.HandlePacket(pub, psMS, netip.Addr{})
	takeAck(t, out)
	e := entryOf(t, i, "10.2.0.0/16")

	// The same publication again: a retransmission, acked, not installed.
	i.HandlePacket(pub, psMS, netip.Addr{})
	takeAck(t, out)
	if entryOf(t, i, "10.2.0.0/16") != e || counter(i.Counters(), "pubsub_notify_duplicates") != 1 {
		t.Error("a repeated publication was installed again")
	}
	// An older nonce, with other contents: a replay, dropped, not acked.
	i.HandlePacket(psNotify(t, nonce, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.9")), psMS, netip.Addr{})
	if got := entryOf(t, i, "10.2.0.0/16"); got != e {
		t.Errorf("a replay was installed: %+v", got)
	}
	if n := len(out.take()); n != 0 {
		t.Errorf("%d datagrams sent for a replay", n)
	}
	if c := counter(i.Counters(), "pubsub_notify_replays"); c != 1 {
		t.Errorf("pubsub_notify_replays = %d", c)
	}
}

func TestPubSubWrongKeyDropped(t *testing.T) {
	i, out, clk := newPubSubITR(t, nil)
	req := subscribe(t, i, out, clk, "10.2.3.4")
	rec := psRecord("10.2.0.0/16", 60, "192.0.2.2")
	bad := [][]byte{
		psNotify(t, req.Nonce, []byte("another-key"), rec),
		psNotify(t, req.Nonce, nil, rec), // unsigned, not allowed
	}
	wrongID := psNotify(t, req.Nonce, psKey, rec)
	wrongID[12] = 4
	_ = wire.Sign(wrongID, psKey)
	bad = append(bad, wrongID)
	for k, b := range bad {
		i.HandlePacket(b, psMS, netip.Addr{})
		if got := counter(i.Counters(), "pubsub_notify_auth_failures"); got != uint64(k+1) {
			t.Errorf("case %d: auth failures %d", k, got)
		}
	}
	if i.Cache().Len() != 0 || len(out.take()) != 0 || len(i.Subscriptions()) != 0 || i.Outstanding() != 1 {
		t.Error("a Map-Notify that failed authentication changed something")
	}
	// The request is still answered by the right one.
	i.HandlePacket(psNotify(t, req.Nonce, psKey, rec), psMS, netip.Addr{})
	takeAck(t, out)
	entryOf(t, i, "10.2.0.0/16")
}

func TestPubSubUnauthenticated(t *testing.T) {
	i, out, clk := newPubSubITR(t, func(c *ITRConfig) {
		c.PubSubKey = nil
		c.PubSubUnauthenticated = true
	})
	req := subscribe(t, i, out, clk, "10.2.3.4")
	// lispers.net's confirmation: the Map-Reply turned into a Map-Notify,
	// Key ID, Algorithm ID and length 0.
	i.HandlePacket(psNotify(t, req.Nonce, nil, psRecord("10.2.0.0/16", 1440, "192.0.2.2")), psMS, netip.Addr{})
	ack, raw := takeAck(t, out)
	if ack.AlgorithmID != wire.AlgNone || len(ack.AuthData) != 0 || ack.Nonce != req.Nonce || len(raw) != len(psNotify(t, req.Nonce, nil, psRecord("10.2.0.0/16", 1440, "192.0.2.2"))) {
		t.Errorf("ack %+v", ack)
	}
	if e := entryOf(t, i, "10.2.0.0/16"); e.Source != mapcache.FromPubSub {
		t.Errorf("entry %+v", e)
	}
	// lispers.net publishes with the subscription's nonce again.
	i.HandlePacket(psNotify(t, req.Nonce, nil, psRecord("10.2.0.0/16", 1440, "192.0.2.3")), psMS, netip.Addr{})
	takeAck(t, out)
	if e := entryOf(t, i, "10.2.0.0/16"); e.RLOCs[0].Addr != rlocC {
		t.Errorf("a publication with the same nonce was not installed: %+v", e)
	}
	// A signed one without a key cannot be checked.
	i.HandlePacket(psNotify(t, req.Nonce+1, psKey, psRecord("10.2.0.0/16", 1440, "192.0.2.9")), psMS, netip.Addr{})
	if counter(i.Counters(), "pubsub_notify_auth_failures") != 1 || len(out.take()) != 0 {
		t.Error("a signed Map-Notify was accepted without a key")
	}
}

func TestPubSubRemovalNotice(t *testing.T) {
	i, out, clk := newPubSubITR(t, nil)
	nonce := confirmed(t, i, out, clk)
	e := entryOf(t, i, "10.2.0.0/16")
	// The Map-Server never got the ack of the confirmation: it drops the
	// subscription and says so with the same nonce.
	i.HandlePacket(removalNotice(t, nonce, psKey, "10.2.0.0/16"), psMS, netip.Addr{})
	takeAck(t, out)
	if n := len(i.Subscriptions()); n != 0 {
		t.Errorf("%d subscriptions after the removal notice", n)
	}
	if got := entryOf(t, i, "10.2.0.0/16"); got != e {
		t.Errorf("the removal notice changed the mapping: %+v", got)
	}
	if c := counter(i.Counters(), "subscriptions_removed_by_ms"); c != 1 {
		t.Errorf("subscriptions_removed_by_ms = %d", c)
	}
	// Without the subscription, publications are not the ITR's.
	if i.OwnsNotify(psNotify(t, nonce+1, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.3"))) {
		t.Error("OwnsNotify true with no subscription")
	}
}

func TestPubSubReplyThenConfirmation(t *testing.T) {
	i, out, clk := newPubSubITR(t, nil)
	req := subscribe(t, i, out, clk, "10.2.3.4")
	// The ETR's Map-Reply (the site does not proxy-reply) comes first.
	i.HandlePacket(mapReply(t, req.Nonce, 0, "10.2.0.0/16", 60, "192.0.2.2"), netip.MustParseAddrPort("192.0.2.2:4342"), netip.Addr{})
	if e := entryOf(t, i, "10.2.0.0/16"); e.Source != mapcache.FromMapReply {
		t.Errorf("entry %+v", e)
	}
	if !i.OwnsNotify(psNotify(t, req.Nonce, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.2"))) {
		t.Error("OwnsNotify false for a confirmation after the Map-Reply")
	}
	i.HandlePacket(psNotify(t, req.Nonce, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.2")), psMS, netip.Addr{})
	takeAck(t, out)
	if e := entryOf(t, i, "10.2.0.0/16"); e.Source != mapcache.FromPubSub {
		t.Errorf("entry after the confirmation %+v", e)
	}
	clk.Advance(time.Minute)
	i.onTick(clk.Now())
	cs := i.Counters()
	if counter(cs, "map_replies_unsolicited") != 0 || counter(cs, "map_replies_accepted") != 1 ||
		counter(cs, "subscriptions_confirmed") != 1 || counter(cs, "subscriptions_refused") != 0 || len(i.Subscriptions()) != 1 {
		t.Errorf("counters %v", cs)
	}
}

func TestPubSubConfirmationThenReply(t *testing.T) {
	i, out, clk := newPubSubITR(t, nil)
	req := subscribe(t, i, out, clk, "10.2.3.4")
	i.HandlePacket(psNotify(t, req.Nonce, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.2")), psMS, netip.Addr{})
	takeAck(t, out)
	e := entryOf(t, i, "10.2.0.0/16")
	i.HandlePacket(mapReply(t, req.Nonce, 0, "10.2.0.0/16", 60, "192.0.2.3"), netip.MustParseAddrPort("192.0.2.2:4342"), netip.Addr{})
	if entryOf(t, i, "10.2.0.0/16") != e {
		t.Error("the Map-Reply after the confirmation was installed")
	}
	cs := i.Counters()
	if counter(cs, "map_replies_unsolicited") != 0 || counter(cs, "pubsub_late_replies") != 1 {
		t.Errorf("unsolicited %d late %d", counter(cs, "map_replies_unsolicited"), counter(cs, "pubsub_late_replies"))
	}
	// A second one is a duplicate, as for any request.
	i.HandlePacket(mapReply(t, req.Nonce, 0, "10.2.0.0/16", 60, "192.0.2.3"), netip.MustParseAddrPort("192.0.2.2:4342"), netip.Addr{})
	if counter(i.Counters(), "map_replies_unsolicited") != 1 {
		t.Error("a second Map-Reply was not counted unsolicited")
	}
}

func TestPubSubRefused(t *testing.T) {
	i, out, clk := newPubSubITR(t, nil)
	req := subscribe(t, i, out, clk, "10.2.3.4")
	i.HandlePacket(mapReply(t, req.Nonce, 0, "10.2.0.0/16", 60, "192.0.2.2"), mr1, netip.Addr{})
	clk.Advance(i.settings.Load().requestWindow() - time.Millisecond)
	i.onTick(clk.Now())
	if counter(i.Counters(), "subscriptions_refused") != 0 {
		t.Fatal("refused before the request window passed")
	}
	clk.Advance(time.Millisecond)
	i.onTick(clk.Now())
	if counter(i.Counters(), "subscriptions_refused") != 1 || len(i.Subscriptions()) != 0 {
		t.Error("a subscription answered only by a Map-Reply was not counted as refused")
	}
	// The confirmation is no longer expected.
	if i.OwnsNotify(psNotify(t, req.Nonce, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.2"))) {
		t.Error("OwnsNotify true after the window")
	}
}

func TestPubSubRefresh(t *testing.T) {
	const every = time.Minute
	i, out, clk := newPubSubITR(t, func(c *ITRConfig) { c.SubscribeRefresh = every })
	nonce := confirmed(t, i, out, clk)
	e := entryOf(t, i, "10.2.0.0/16")
	clk.Advance(every / 2)
	e.Touch(clk.Now().UnixNano())
	i.onTick(clk.Now())
	i.sendFresh()
	if n := len(out.take()); n != 0 {
		t.Fatalf("%d datagrams before the refresh interval", n)
	}
	clk.Advance(every / 2)
	i.onTick(clk.Now())
	i.sendFresh()
	msgs := out.take()
	if len(msgs) != 1 {
		t.Fatalf("%d datagrams at the refresh, want one subscribing Map-Request", len(msgs))
	}
	_, req := innerRequest(t, msgs[0])
	iid, pfx, _ := req.Records[0].Prefix()
	if iid != 0 || pfx != netip.MustParsePrefix("10.2.0.0/16") || !req.Records[0].NotifyRequested || !req.XTRIDPresent {
		t.Errorf("refresh request for %s N=%v I=%v", pfx, req.Records[0].NotifyRequested, req.XTRIDPresent)
	}
	if req.Nonce != nonce+1 {
		t.Errorf("refresh nonce %#x, want the last one plus one %#x", req.Nonce, nonce+1)
	}
	if c := counter(i.Counters(), "subscribe_refreshes"); c != 1 {
		t.Errorf("subscribe_refreshes = %d", c)
	}
	if s := i.Subscriptions(); len(s) != 1 || s[0].Nonce != nonce+1 {
		t.Errorf("subscriptions %+v", s)
	}
	i.HandlePacket(psNotify(t, req.Nonce, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.2")), psMS, netip.Addr{})
	takeAck(t, out)

	// Not used in the next interval: not renewed.
	clk.Advance(every)
	i.onTick(clk.Now())
	i.sendFresh()
	if n := len(out.take()); n != 0 {
		t.Errorf("%d datagrams for an unused subscription", n)
	}
	// No entry for an interval: forgotten.
	i.Cache().Delete(mapcache.Key{Prefix: netip.MustParsePrefix("10.2.0.0/16")})
	clk.Advance(every)
	i.onTick(clk.Now())
	if len(i.Subscriptions()) != 1 {
		t.Fatal("forgotten at once")
	}
	clk.Advance(every)
	i.onTick(clk.Now())
	if len(i.Subscriptions()) != 0 || counter(i.Counters(), "subscriptions_forgotten") != 1 {
		t.Error("a subscription without a map-cache entry was kept")
	}
	// A new subscription then gets a nonce above every one used before.
	req = subscribe(t, i, out, clk, "10.2.3.4")
	if req.Nonce <= nonce+1 {
		t.Errorf("new subscription nonce %#x not above the old %#x", req.Nonce, nonce+1)
	}
}

func TestPubSubOwnsNotify(t *testing.T) {
	i, out, clk := newPubSubITR(t, nil)
	for _, b := range [][]byte{nil, {0x40}, make([]byte, 15), {0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff, 0xff},
		mapReply(t, 1, 0, "10.2.0.0/16", 60, "192.0.2.2")} {
		if i.OwnsNotify(b) {
			t.Errorf("OwnsNotify(%x) with no subscription", b)
		}
	}
	req := subscribe(t, i, out, clk, "10.2.3.4")
	rec := psRecord("10.2.0.0/16", 60, "192.0.2.2")
	if !i.OwnsNotify(psNotify(t, req.Nonce, psKey, rec)) {
		t.Error("not the confirmation's owner")
	}
	if i.OwnsNotify(psNotify(t, req.Nonce+1, psKey, rec)) {
		t.Error("owner of another nonce with no subscription")
	}
	i.HandlePacket(psNotify(t, req.Nonce, psKey, rec), psMS, netip.Addr{})
	takeAck(t, out)
	rec5 := wire.NewEIDRecord(5, netip.MustParsePrefix("10.2.0.0/16"))
	rec5.RecordTTL = 60
	ack := psNotify(t, req.Nonce+1, psKey, rec)
	ack[0] = 0x50
	for name, c := range map[string]struct {
		b    []byte
		want bool
	}{
		"publication":    {psNotify(t, req.Nonce+1, psKey, rec), true},
		"less specific":  {psNotify(t, req.Nonce+2, psKey, psRecord("10.0.0.0/8", 60, "192.0.2.2")), true},
		"more specific":  {psNotify(t, req.Nonce+2, psKey, psRecord("10.2.3.0/24", 60, "192.0.2.2")), true},
		"replay":         {psNotify(t, req.Nonce-1, psKey, rec), true},
		"other prefix":   {psNotify(t, req.Nonce+1, psKey, psRecord("10.3.0.0/16", 60, "192.0.2.2")), false},
		"far nonce":      {psNotify(t, req.Nonce+1<<40, psKey, rec), false},
		"ETR's key":      {psNotify(t, req.Nonce+1, msKey, rec), false},
		"unsigned":       {psNotify(t, req.Nonce+1, nil, rec), false},
		"no record":      {psNotify(t, req.Nonce+1, psKey), false},
		"truncated":      {psNotify(t, req.Nonce+1, psKey, rec)[:40], false},
		"Map-Notify-Ack": {ack, false},
		"instance 5":     {psNotify(t, req.Nonce+1, psKey, rec5), false},
	} {
		if got := i.OwnsNotify(c.b); got != c.want {
			t.Errorf("%s: OwnsNotify = %v, want %v", name, got, c.want)
		}
	}
	if len(out.take()) != 0 || counter(i.Counters(), "pubsub_notifies_received") != 1 {
		t.Error("OwnsNotify changed something")
	}
}

// TestPubSubConcurrent runs misses, Map-Notifies, OwnsNotify, Subscriptions
// and the control loop at once, for the race detector.
func TestPubSubConcurrent(t *testing.T) {
	i, out, _ := newTestITR(t, func(c *ITRConfig) {
		c.Subscribe = true
		c.PubSubKey = psKey
		c.PubSubKeyID = 3
		c.Clock = nil
		c.TickInterval = time.Millisecond
		c.SubscribeRefresh = 5 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = i.Run(ctx)
	}()
	// The Map-Server: confirms every subscribing request, then publishes.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, s := range out.take() {
				ecm, ok := s.msg.(*wire.ECM)
				if !ok {
					continue
				}
				req, ok := ecm.Inner.(*wire.MapRequest)
				if !ok || len(req.Records) != 1 {
					continue
				}
				_, pfx, _ := req.Records[0].Prefix()
				p16, _ := pfx.Addr().Prefix(16)
				rec := wire.NewEIDRecord(0, p16)
				rec.RecordTTL = 60
				rec.Locators = []wire.Locator{{Priority: 1, Weight: 1, Address: wire.AddrFrom(rlocB)}}
				for _, nonce := range []uint64{req.Nonce, req.Nonce + 1} {
					n, err := encodeNotify(nonce, psKey, rec)
					if err == nil && i.OwnsNotify(n) {
						i.HandlePacket(n, psMS, netip.Addr{})
					}
				}
				_ = i.Subscriptions()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	st := i.settings.Load()
	for k := range 200 {
		dst := netip.AddrFrom4([4]byte{10, byte(k % 20), byte(k), 1})
		i.miss(st, dst, netip.Addr{}, nil, time.Now())
		if e, ok := i.Cache().Lookup(0, dst); ok {
			e.Touch(time.Now().UnixNano())
		}
		time.Sleep(100 * time.Microsecond)
	}
	waitFor(t, "subscriptions", func() bool { return len(i.Subscriptions()) > 0 })
	cancel()
	wg.Wait()
}

// TestPubSubTakeNotify: the dispatcher's one-pass entry point handles what
// the ITR owns (a confirmation, then a publication, each acked and
// installed) and leaves the rest, untouched, to the ETR.
func TestPubSubTakeNotify(t *testing.T) {
	i, out, clk := newPubSubITR(t, nil)
	if i.TakeNotify(psNotify(t, 1, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.2")), psMS) {
		t.Fatal("took a Map-Notify with no subscription")
	}
	req := subscribe(t, i, out, clk, "10.2.3.4")
	if !i.TakeNotify(psNotify(t, req.Nonce, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.2")), psMS) {
		t.Fatal("confirmation not taken")
	}
	takeAck(t, out)
	if !i.TakeNotify(psNotify(t, req.Nonce+1, psKey, psRecord("10.2.0.0/16", 60, "192.0.2.9")), psMS) {
		t.Fatal("publication not taken")
	}
	takeAck(t, out)
	if e := entryOf(t, i, "10.2.0.0/16"); e.RLOCs[0].Addr != netip.MustParseAddr("192.0.2.9") {
		t.Fatalf("publication not installed: %+v", e.RLOCs)
	}
	before := counter(i.Counters(), "pubsub_notifies_received")
	if i.TakeNotify(psNotify(t, req.Nonce+2, msKey, psRecord("10.2.0.0/16", 60, "192.0.2.7")), psMS) {
		t.Fatal("took a Map-Notify signed with the ETR's key")
	}
	if counter(i.Counters(), "pubsub_notifies_received") != before || len(out.take()) != 0 {
		t.Fatal("a Map-Notify left to the ETR changed the ITR")
	}
}
