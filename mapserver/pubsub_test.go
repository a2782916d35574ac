package mapserver

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/lispd/lispd/wire"
)

var pubsubKey = []byte("pub/sub secret")

// newPubSubServer is newTestServer with pub/sub on (pre-shared key, key ID
// 7, HMAC-SHA-256) and mutate applied after.
func newPubSubServer(t *testing.T, mutate func(*Config)) (*Server, *capSender, *fakeClock) {
	t.Helper()
	return newTestServer(t, func(c *Config) {
		c.PubSub = PubSubConfig{Enabled: true, Key: pubsubKey, KeyID: 7}
		if mutate != nil {
			mutate(c)
		}
	})
}

var (
	subXTR1 = wire.XTRID{1, 1, 1, 1}
	subXTR2 = wire.XTRID{2, 2, 2, 2}
)

// subscribeReq is an ECM Map-Request from itr for eid with the N bit and
// the I bit with xtr.
func subscribeReq(t testing.TB, itr netip.AddrPort, eidPrefix string, nonce uint64, xtr wire.XTRID) []byte {
	t.Helper()
	return buildRequest(t, itr, 0, eidPrefix, nonce, func(m *wire.MapRequest) {
		m.XTRIDPresent, m.XTRID, m.SiteID = true, xtr, 9
		m.Records[0].NotifyRequested = true
	})
}

// notifyTo returns the one Map-Notify in out, checking where it went and
// that it is signed with the pub/sub key.
func notifyTo(t *testing.T, out *capSender, to netip.AddrPort) (*wire.MapNotify, []byte) {
	t.Helper()
	var p sent
	n := 0
	for _, q := range out.take() {
		if q.to == to {
			p = q
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d datagrams sent to %s, want 1", n, to)
	}
	m := parseAs[*wire.MapNotify](t, p.b)
	if m.KeyID != 7 || m.AlgorithmID != wire.AlgHMACSHA256128 {
		t.Fatalf("Map-Notify key %d algorithm %d", m.KeyID, m.AlgorithmID)
	}
	if err := wire.Verify(p.b, pubsubKey); err != nil {
		t.Fatalf("Map-Notify authentication: %v", err)
	}
	return m, p.b
}

func onlyRecord(t *testing.T, n *wire.MapNotify) (netip.Prefix, *wire.EIDRecord) {
	t.Helper()
	if len(n.Records) != 1 {
		t.Fatalf("Map-Notify has %d records", len(n.Records))
	}
	_, p, ok := n.Records[0].Prefix()
	if !ok {
		t.Fatal("record prefix")
	}
	return p, &n.Records[0]
}

// TestPubSubSubscribePublish follows one subscription: confirmation instead
// of the proxy reply, ack, publication of a changed locator set with the
// next nonce, retransmission until acked, withdrawal with TTL 0.
func TestPubSubSubscribePublish(t *testing.T) {
	s, out, clk := newPubSubServer(t, nil)
	ms := ap("192.0.2.100:4342")
	etr := ap("192.0.2.1:4342")
	s.HandlePacket(siteARegister(t, 1, true, false, loc("192.0.2.1")), etr, netip.Addr{})
	out.take()

	itr := ap("198.51.100.7:4342")
	s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", 1000, subXTR1), ms, netip.Addr{})
	n, raw := notifyTo(t, out, itr)
	if n.Nonce != 1000 {
		t.Fatalf("confirmation nonce %d, want the request's", n.Nonce)
	}
	if p, r := onlyRecord(t, n); p != netip.MustParsePrefix("10.1.1.0/24") || len(r.Locators) != 1 || r.RecordTTL != 1440 {
		t.Fatalf("confirmation record %s %+v", p, r)
	}
	v := s.Subscriptions()
	if len(v) != 1 || v[0].Confirmed || v[0].XTRID != subXTR1 || v[0].SiteID != 9 || v[0].ITR != itr {
		t.Fatalf("subscriptions %+v", v)
	}
	s.HandlePacket(ackFor(t, raw, pubsubKey), itr, netip.Addr{})
	if v := s.Subscriptions(); !v[0].Confirmed || v[0].Pending != 0 {
		t.Fatalf("after ack %+v", v)
	}

	// A second ETR joins: the merged set changes and is published.
	s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, nonce: 2, proxy: true,
		xtrID: &wire.XTRID{9}, records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 1440, loc("192.0.2.2"))}}),
		ap("192.0.2.2:4342"), netip.Addr{})
	n, raw = notifyTo(t, out, itr)
	if n.Nonce != 1001 {
		t.Fatalf("publication nonce %d, want 1001", n.Nonce)
	}
	if _, r := onlyRecord(t, n); len(r.Locators) != 2 {
		t.Fatalf("published %d locators", len(r.Locators))
	}
	// Not acked: retransmitted with the same bytes.
	clk.Advance(DefaultNotifyInterval)
	s.runTimers(clk.Now())
	if _, b := notifyTo(t, out, itr); string(b) != string(raw) {
		t.Fatal("retransmission differs")
	}
	s.HandlePacket(ackFor(t, raw, pubsubKey), itr, netip.Addr{})
	clk.Advance(DefaultNotifyInterval)
	s.runTimers(clk.Now())
	for _, p := range out.take() {
		if p.to == itr {
			t.Fatal("retransmitted after the ack")
		}
	}

	// The first ETR withdraws; then the second: TTL 0.
	s.HandlePacket(siteARegisterTTL0(t, 3), etr, netip.Addr{})
	n, raw = notifyTo(t, out, itr)
	if _, r := onlyRecord(t, n); len(r.Locators) != 1 || n.Nonce != 1002 {
		t.Fatalf("after one withdrawal: %d locators nonce %d", len(r.Locators), n.Nonce)
	}
	s.HandlePacket(ackFor(t, raw, pubsubKey), itr, netip.Addr{})
	s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, nonce: 4, proxy: true,
		xtrID: &wire.XTRID{9}, records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 0)}}), ap("192.0.2.2:4342"), netip.Addr{})
	n, _ = notifyTo(t, out, itr)
	if p, r := onlyRecord(t, n); p != netip.MustParsePrefix("10.1.1.0/24") || r.RecordTTL != 0 || len(r.Locators) != 0 {
		t.Fatalf("withdrawal %s ttl %d locators %d", p, r.RecordTTL, len(r.Locators))
	}
	st := s.Stats()
	if st.SubscriptionsCreated != 1 || st.SubscriptionsConfirmed != 1 || st.Publications != 3 || st.PubSubMapNotifyAcked != 3 ||
		st.PubSubMapNotifyRetransmitted != 1 || st.RequestsProxyReplied != 0 || st.Subscriptions != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// siteARegisterTTL0 withdraws site a's 10.1.1.0/24 (no xTR-ID).
func siteARegisterTTL0(t testing.TB, nonce uint64) []byte {
	t.Helper()
	return buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, nonce: nonce, proxy: true,
		records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 0)}})
}

// TestPubSubExpiryPublished: a registration that times out is published
// with TTL 0.
func TestPubSubExpiryPublished(t *testing.T) {
	s, out, clk := newPubSubServer(t, nil)
	s.HandlePacket(siteARegister(t, 1, true, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	itr := ap("198.51.100.7:4342")
	s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", 5, subXTR1), ap("192.0.2.100:4342"), netip.Addr{})
	_, raw := notifyTo(t, out, itr)
	s.HandlePacket(ackFor(t, raw, pubsubKey), itr, netip.Addr{})
	clk.Advance(DefaultRegistrationTimeout + time.Second)
	s.runTimers(clk.Now())
	n, _ := notifyTo(t, out, itr)
	if _, r := onlyRecord(t, n); r.RecordTTL != 0 || n.Nonce != 6 {
		t.Fatalf("expiry published ttl %d nonce %d", r.RecordTTL, n.Nonce)
	}
}

// TestPubSubForwardedAndNegative: a site that does not proxy-reply gets
// the request forwarded as well; an unregistered EID is subscribed on its
// negative prefix, and a registration inside it is published.
func TestPubSubForwardedAndNegative(t *testing.T) {
	s, out, _ := newPubSubServer(t, nil)
	s.HandlePacket(siteARegister(t, 1, false, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	out.take()
	itr := ap("198.51.100.7:4342")
	s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", 77, subXTR1), ap("192.0.2.100:4342"), netip.Addr{})
	ps := out.take()
	if len(ps) != 2 {
		t.Fatalf("sent %d datagrams, want a forwarded request and a confirmation", len(ps))
	}
	var sawECM, sawNotify bool
	for _, p := range ps {
		switch m := parseAs[wire.Message](t, p.b).(type) {
		case *wire.ECM:
			sawECM = p.to == ap("192.0.2.1:4342") && m.ToETR
		case *wire.MapNotify:
			sawNotify = p.to == itr && m.Nonce == 77
		}
	}
	if !sawECM || !sawNotify {
		t.Fatalf("forward %v confirmation %v", sawECM, sawNotify)
	}

	// Unregistered, in site a's configured 10.1.0.0/16.
	s.HandlePacket(subscribeReq(t, itr, "10.1.200.1/32", 80, subXTR1), ap("192.0.2.100:4342"), netip.Addr{})
	n, raw := notifyTo(t, out, itr)
	neg, r := onlyRecord(t, n)
	if len(r.Locators) != 0 || r.Action != wire.NativelyForward || !neg.Contains(netip.MustParseAddr("10.1.200.1")) {
		t.Fatalf("negative confirmation %s %+v", neg, r)
	}
	s.HandlePacket(ackFor(t, raw, pubsubKey), itr, netip.Addr{})
	if v := s.Subscriptions(); len(v) != 2 || !v[1].Negative && !v[0].Negative {
		t.Fatalf("subscriptions %+v", v)
	}
	// 10.1.200.0/24 registered: inside the negative prefix.
	s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, nonce: 3,
		records: []wire.EIDRecord{rec(0, "10.1.200.0/24", 60, loc("192.0.2.5"))}}), ap("192.0.2.5:4342"), netip.Addr{})
	n, _ = notifyTo(t, out, itr)
	if p, r := onlyRecord(t, n); p != netip.MustParsePrefix("10.1.200.0/24") || len(r.Locators) != 1 || n.Nonce != 81 {
		t.Fatalf("published %s %+v nonce %d", p, r, n.Nonce)
	}
}

// TestPubSubNeverAcked: an ITR that never acks its confirmation gets the
// retransmissions and is then forgotten, silently; one that stops acking
// publications is forgotten and told once (no locators, action 5).
func TestPubSubNeverAcked(t *testing.T) {
	s, out, clk := newPubSubServer(t, nil)
	s.HandlePacket(siteARegister(t, 1, true, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	itr := ap("198.51.100.7:4342")
	s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", 5, subXTR1), ap("192.0.2.100:4342"), netip.Addr{})
	out.take()
	for k := 0; k < DefaultNotifyRetries; k++ {
		clk.Advance(DefaultNotifyInterval)
		s.runTimers(clk.Now())
		if p := onlyOne(t, out); parseAs[*wire.MapNotify](t, p.b).Nonce != 5 {
			t.Fatal("retransmission nonce")
		}
	}
	clk.Advance(DefaultNotifyInterval)
	s.runTimers(clk.Now())
	if p := out.take(); len(p) != 0 {
		t.Fatalf("%d datagrams to a subscriber that never acknowledged", len(p))
	}
	if v := s.Subscriptions(); len(v) != 0 {
		t.Fatalf("subscription kept: %+v", v)
	}
	st := s.Stats()
	if st.SubscriptionsRemovedUnacked != 1 || st.PubSubMapNotifyGivenUp != 1 || st.Subscriptions != 0 || st.PubSubPending != 0 {
		t.Fatalf("stats %+v", st)
	}

	// Confirmed, then silent: the publication is retried, then the notice.
	s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", 6, subXTR1), ap("192.0.2.100:4342"), netip.Addr{})
	_, raw := notifyTo(t, out, itr)
	s.HandlePacket(ackFor(t, raw, pubsubKey), itr, netip.Addr{})
	s.HandlePacket(siteARegister(t, 2, true, false, loc("192.0.2.9")), ap("192.0.2.1:4342"), netip.Addr{})
	n, _ := notifyTo(t, out, itr)
	for k := 0; k < DefaultNotifyRetries; k++ {
		clk.Advance(DefaultNotifyInterval)
		s.runTimers(clk.Now())
		notifyTo(t, out, itr)
	}
	clk.Advance(DefaultNotifyInterval)
	s.runTimers(clk.Now())
	notice, _ := notifyTo(t, out, itr)
	if _, r := onlyRecord(t, notice); r.Action != wire.DropAuthFailure || len(r.Locators) != 0 || notice.Nonce != n.Nonce {
		t.Fatalf("removal notice %+v nonce %d, want %d", r, notice.Nonce, n.Nonce)
	}
	if st := s.Stats(); st.SubscriptionsRemovedUnacked != 2 || st.Subscriptions != 0 {
		t.Fatalf("stats %+v", st)
	}
	clk.Advance(time.Hour)
	s.runTimers(clk.Now())
	if p := out.take(); len(p) != 0 {
		t.Fatalf("%d datagrams after the subscription was removed", len(p))
	}
}

// TestPubSubReplayAndRetarget: an old nonce is dropped, the same one from
// the same ITR re-confirmed; a request that moves the subscription to
// another address takes effect only when that address acks.
func TestPubSubReplayAndRetarget(t *testing.T) {
	s, out, _ := newPubSubServer(t, nil)
	ms := ap("192.0.2.100:4342")
	s.HandlePacket(siteARegister(t, 1, true, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	itr := ap("198.51.100.7:4342")
	s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", 50, subXTR1), ms, netip.Addr{})
	_, raw := notifyTo(t, out, itr)
	s.HandlePacket(ackFor(t, raw, pubsubKey), itr, netip.Addr{})

	s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", 50, subXTR1), ms, netip.Addr{})
	if n, _ := notifyTo(t, out, itr); n.Nonce != 50 {
		t.Fatalf("re-confirmation nonce %d", n.Nonce)
	}
	// An older nonce: a replay (or a restarted ITR). It gets the mapping
	// in a confirmation, but nothing changes unless that is acked.
	s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", 49, subXTR1), ms, netip.Addr{})
	if n, _ := notifyTo(t, out, itr); n.Nonce != 49 || s.Stats().SubscriptionsReplays != 1 {
		t.Fatalf("old nonce: confirmation nonce %d, replays %d", n.Nonce, s.Stats().SubscriptionsReplays)
	}
	if v := s.Subscriptions(); v[0].Nonce != 50 {
		t.Fatalf("an unacknowledged old request changed the subscription: %+v", v[0])
	}

	// A forged move to an attacker's address: confirmed there only if it
	// acks with the key, which it cannot.
	evil := ap("203.0.113.66:4342")
	s.HandlePacket(subscribeReq(t, evil, "10.1.1.9/32", 1<<60, subXTR1), ms, netip.Addr{})
	_, forged := notifyTo(t, out, evil)
	s.HandlePacket(ackFor(t, forged, []byte("guess")), evil, netip.Addr{})
	if st := s.Stats(); st.PubSubAckAuthFailure != 1 {
		t.Fatalf("stats %+v", st)
	}
	if v := s.Subscriptions(); v[0].ITR != itr {
		t.Fatalf("subscription moved to %s without an authenticated ack", v[0].ITR)
	}
	// The genuine ITR still refreshes with its next nonce.
	s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", 51, subXTR1), ms, netip.Addr{})
	_, raw = notifyTo(t, out, itr)
	s.HandlePacket(ackFor(t, raw, pubsubKey), itr, netip.Addr{})

	// A real move, acked from the new address.
	moved := ap("198.51.100.8:4342")
	s.HandlePacket(subscribeReq(t, moved, "10.1.1.9/32", 52, subXTR1), ms, netip.Addr{})
	_, raw = notifyTo(t, out, moved)
	s.HandlePacket(ackFor(t, raw, pubsubKey), moved, netip.Addr{})
	if v := s.Subscriptions(); v[0].ITR != moved || s.Stats().SubscriptionsRefreshed != 2 {
		t.Fatalf("after the move %+v %+v", v, s.Stats())
	}
}

// TestPubSubFlood: subscriptions from one ITR address with random xTR-IDs
// stop at the per-ITR bound; the total bound holds too.
func TestPubSubFlood(t *testing.T) {
	s, out, _ := newPubSubServer(t, func(c *Config) { c.PubSub.MaxPerITR = 100; c.PubSub.MaxSubscriptions = 150 })
	s.HandlePacket(siteARegister(t, 1, true, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	itr := ap("198.51.100.7:4342")
	for k := range 5000 {
		var x wire.XTRID
		binary.BigEndian.PutUint64(x[:], uint64(k)+1)
		s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", uint64(k)+1, x), ap("192.0.2.100:4342"), netip.Addr{})
	}
	out.take()
	st := s.Stats()
	if st.Subscriptions != 100 || st.SubscriptionsRefusedLimit != 4900 || st.PubSubPending != 100 {
		t.Fatalf("one ITR: %d subscriptions, %d refused, %d pending", st.Subscriptions, st.SubscriptionsRefusedLimit, st.PubSubPending)
	}
	for k := range 100 {
		other := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 101, byte(k)}), 4342)
		s.HandlePacket(subscribeReq(t, other, "10.1.1.9/32", 1, wire.XTRID{3, byte(k)}), ap("192.0.2.100:4342"), netip.Addr{})
	}
	out.take()
	if st := s.Stats(); st.Subscriptions != 150 || st.SubscriptionsRefusedLimit != 4950 {
		t.Fatalf("total bound: %d subscriptions, %d refused", st.Subscriptions, st.SubscriptionsRefusedLimit)
	}
	// A refused subscriber still gets its mapping: the proxy reply.
	s.HandlePacket(subscribeReq(t, ap("198.51.102.1:4342"), "10.1.1.9/32", 1, wire.XTRID{4}), ap("192.0.2.100:4342"), netip.Addr{})
	if rep := parseAs[*wire.MapReply](t, onlyOne(t, out).b); len(rep.Records[0].Locators) != 1 {
		t.Fatalf("refused subscriber's reply %+v", rep)
	}
}

// TestPubSubUnsubscribe: an AFI-0 ITR-RLOC removes the subscription once
// the Map-Notify sent to the request's source is acked.
func TestPubSubUnsubscribe(t *testing.T) {
	s, out, _ := newPubSubServer(t, nil)
	ms := ap("192.0.2.100:4342")
	s.HandlePacket(siteARegister(t, 1, true, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	itr := ap("198.51.100.7:4342")
	s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", 10, subXTR1), ms, netip.Addr{})
	_, raw := notifyTo(t, out, itr)
	s.HandlePacket(ackFor(t, raw, pubsubKey), itr, netip.Addr{})
	unsub := buildRequest(t, itr, 0, "10.1.1.9/32", 11, func(m *wire.MapRequest) {
		m.XTRIDPresent, m.XTRID = true, subXTR1
		m.Records[0].NotifyRequested = true
		m.ITRRLOCs = []wire.Address{{}}
	})
	s.HandlePacket(unsub, ms, netip.Addr{})
	n, raw := notifyTo(t, out, itr)
	if n.Nonce != 11 || len(n.Records) != 0 {
		t.Fatalf("unsubscribe confirmation %+v", n)
	}
	if len(s.Subscriptions()) != 1 {
		t.Fatal("removed before the ack")
	}
	s.HandlePacket(ackFor(t, raw, pubsubKey), itr, netip.Addr{})
	if v := s.Subscriptions(); len(v) != 0 || s.Stats().SubscriptionsUnsubscribed != 1 {
		t.Fatalf("after the ack %+v", v)
	}
}

// TestPubSubLispersNet: lispers.net subscribes with an xTR-ID and no
// site-ID, neither signs nor checks, and acks with a record count but no
// records; in unauthenticated mode that works.
func TestPubSubLispersNet(t *testing.T) {
	s, out, _ := newTestServer(t, func(c *Config) { c.PubSub = PubSubConfig{Enabled: true, Unauthenticated: true} })
	s.HandlePacket(siteARegister(t, 1, true, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	itr := ap("198.51.100.7:53000")
	req := buildRequest(t, itr, 0, "10.1.1.9/32", 0xabc, func(m *wire.MapRequest) {
		m.XTRIDPresent, m.XTRID, m.NoSiteID = true, subXTR2, true
		m.Records[0].NotifyRequested = true
	})
	s.HandlePacket(req, ap("192.0.2.100:4342"), netip.Addr{})
	p := onlyOne(t, out)
	n := parseAs[*wire.MapNotify](t, p.b)
	if p.to != itr || n.AlgorithmID != wire.AlgNone || len(n.AuthData) != 0 || n.Nonce != 0xabc {
		t.Fatalf("unsigned confirmation to %s: %+v", p.to, n)
	}
	// The ack as lispers.net builds it: header and nonce, record count 1,
	// no record bytes.
	ack := append([]byte(nil), p.b[:16]...)
	ack[0] = byte(wire.TypeMapNotifyAck)<<4 | ack[0]&0x0f
	s.HandlePacket(ack, itr, netip.Addr{})
	if v := s.Subscriptions(); len(v) != 1 || !v[0].Confirmed {
		t.Fatalf("lispers.net ack not taken: %+v", v)
	}
}

// TestPubSubDisabledAndConfig: without pub/sub the N bit is ignored; a
// signed pub/sub needs a key.
func TestPubSubDisabledAndConfig(t *testing.T) {
	s, out, _ := newTestServer(t, nil)
	s.HandlePacket(siteARegister(t, 1, true, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	s.HandlePacket(subscribeReq(t, ap("198.51.100.7:4342"), "10.1.1.9/32", 1, subXTR1), ap("192.0.2.100:4342"), netip.Addr{})
	parseAs[*wire.MapReply](t, onlyOne(t, out).b)
	if st := s.Stats(); st.SubscriptionsIgnored != 1 || st.Subscriptions != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := New(Config{MapServer: true, PubSub: PubSubConfig{Enabled: true}}, out, nil); err == nil {
		t.Fatal("pub/sub without a key accepted")
	}
}

// TestPubSubSubscriptionMemory bounds the bytes a subscription costs.
func TestPubSubSubscriptionMemory(t *testing.T) {
	if n := int(unsafeSizeofSubscription()); n > 72 {
		t.Fatalf("subscription is %d bytes", n)
	}
}

func unsafeSizeofSubscription() uintptr { return unsafe.Sizeof(subscription{}) }

// TestPubSubRestartedITR: an ITR that restarted keeps its xTR-ID but not
// its nonces; its first request is older than the last acknowledged one.
// It still gets its mapping, and once it acks, its nonce sequence starts
// again, so its next publication is the one after its new nonce.
func TestPubSubRestartedITR(t *testing.T) {
	s, out, _ := newPubSubServer(t, nil)
	ms := ap("192.0.2.100:4342")
	s.HandlePacket(siteARegister(t, 1, true, false, loc("192.0.2.1")), ap("192.0.2.1:4342"), netip.Addr{})
	itr := ap("198.51.100.7:4342")
	s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", 1<<40, subXTR1), ms, netip.Addr{})
	_, raw := notifyTo(t, out, itr)
	s.HandlePacket(ackFor(t, raw, pubsubKey), itr, netip.Addr{})

	s.HandlePacket(subscribeReq(t, itr, "10.1.1.9/32", 7, subXTR1), ms, netip.Addr{})
	n, raw := notifyTo(t, out, itr)
	if _, r := onlyRecord(t, n); n.Nonce != 7 || len(r.Locators) != 1 {
		t.Fatalf("restarted ITR's confirmation nonce %d %+v", n.Nonce, r)
	}
	s.HandlePacket(ackFor(t, raw, pubsubKey), itr, netip.Addr{})
	s.HandlePacket(siteARegister(t, 2, true, false, loc("192.0.2.9")), ap("192.0.2.1:4342"), netip.Addr{})
	if n, _ := notifyTo(t, out, itr); n.Nonce != 8 {
		t.Fatalf("publication after the restart has nonce %d, want 8", n.Nonce)
	}
	if st := s.Stats(); st.SubscriptionsNonceResets != 1 || st.Subscriptions != 1 {
		t.Fatalf("stats %+v", st)
	}
}
