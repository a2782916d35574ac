package xtr

import (
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

// seeds returns valid control messages of every kind the xTR handles.
func seeds(t testing.TB) [][]byte {
	var out [][]byte
	add := func(m wire.Message) {
		b, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	rec := wire.NewEIDRecord(0, netip.MustParsePrefix("10.2.0.0/16"))
	rec.RecordTTL = 10
	rec.Locators = []wire.Locator{{Priority: 1, Weight: 1, Address: wire.AddrFrom(rlocB)}}
	add(&wire.MapReply{Nonce: 1, Records: []wire.EIDRecord{rec}})
	add(&wire.MapReply{Probe: true, Nonce: 2, Records: []wire.EIDRecord{rec}})
	req := &wire.MapRequest{Nonce: 3, ITRRLOCs: []wire.Address{wire.AddrFrom(rlocA)},
		Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix("10.1.0.0/24"))}}
	add(req)
	smr := *req
	smr.SMR = true
	add(&smr)
	probe := *req
	probe.Probe = true
	add(&probe)
	ecm := wire.NewECM(netip.MustParseAddrPort("192.0.2.50:4342"), netip.MustParseAddrPort("10.1.0.1:4342"), req)
	ecm.ToETR = true
	add(ecm)
	n := &wire.MapNotify{Nonce: 4, AlgorithmID: wire.AlgHMACSHA256128, Records: []wire.EIDRecord{rec}}
	b, _ := n.AppendBinary(nil)
	_ = wire.Sign(b, msKey)
	out = append(out, b)
	return out
}

// FuzzITRHandlePacket feeds arbitrary datagrams to an ITR with an
// outstanding request and a cached mapping: it must never panic, and must
// not install anything from a datagram without the request's nonce.
func FuzzITRHandlePacket(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	// SMRs as OOR and lispd send them (smr_test.go).
	for _, h := range []string{oorSMR, oldLispdSMR} {
		b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		i, _, clk := newTestITR(t, nil)
		i.SetLocalEIDs(func(iid uint32, a netip.Addr) bool {
			return iid == 0 && netip.MustParsePrefix("10.1.1.0/24").Contains(a)
		})
		insert(t, i.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("10.1.0.0/24"), RLOCs: rlocs("192.0.2.9")})
		i.miss(i.settings.Load(), netip.MustParseAddr("10.2.0.1"), netip.Addr{}, nil, clk.Now())
		i.sendFresh()
		before := i.Cache().Len()
		i.HandlePacket(pkt, netip.MustParseAddrPort("192.0.2.2:4342"), netip.Addr{})
		if counter(i.Counters(), "map_replies_accepted") == 0 && i.Cache().Len() != before {
			t.Fatal("the cache changed without an accepted reply")
		}
	})
}

// FuzzETRHandlePacket feeds arbitrary datagrams to an ETR: it must never
// panic, and must never answer with anything but a Map-Reply or a
// Map-Notify-Ack.
func FuzzETRHandlePacket(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		e, out, _ := newTestETR(t, func(c *ETRConfig) { c.FollowMapServer = true })
		e.HandlePacket(pkt, msAddr, netip.MustParseAddr("192.0.2.1"))
		for _, s := range out.take() {
			switch s.msg.(type) {
			case *wire.MapReply, *wire.MapNotifyAck:
			default:
				t.Fatalf("answered with %T", s.msg)
			}
		}
	})
}

// FuzzITRHandleNotify feeds arbitrary datagrams to a subscribing ITR with a
// subscription to 10.2.0.0/16 (last nonce 1000) and an outstanding
// subscribing request for 10.3.0.1 (nonce 5000): OwnsNotify and
// HandlePacket must never panic, HandlePacket must acknowledge only what
// OwnsNotify claimed, and without an acknowledgement nothing may change the
// map-cache or the subscriptions (a fuzzer cannot sign with the key).
func FuzzITRHandleNotify(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	pub := wire.NewEIDRecord(0, netip.MustParsePrefix("10.2.0.0/16"))
	pub.RecordTTL = 10
	pub.Locators = []wire.Locator{{Priority: 1, Weight: 1, Address: wire.AddrFrom(rlocB)}}
	conf := wire.NewEIDRecord(0, netip.MustParsePrefix("10.3.0.0/16"))
	conf.RecordTTL = 15
	conf.Action = wire.NativelyForward
	removal := wire.NewEIDRecord(0, netip.MustParsePrefix("10.2.0.0/16"))
	removal.Action = wire.DropAuthFailure
	withdraw := wire.NewEIDRecord(0, netip.MustParsePrefix("10.2.0.0/16"))
	for _, n := range []struct {
		nonce uint64
		key   []byte
		rec   wire.EIDRecord
	}{
		{1001, psKey, pub}, {1001, nil, pub}, {5000, psKey, conf}, {1000, psKey, removal},
		{1002, psKey, withdraw}, {999, psKey, pub}, {1001, msKey, pub},
	} {
		b, err := encodeNotify(n.nonce, n.key, n.rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		i, _, clk := newPubSubITR(t, nil)
		now := clk.Now()
		insert(t, i.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: rlocs("192.0.2.9")})
		i.miss(i.settings.Load(), netip.MustParseAddr("10.3.0.1"), netip.Addr{}, nil, now)
		i.sendFresh()
		i.mu.Lock()
		for n, p := range i.byNonce {
			delete(i.byNonce, n)
			p.nonce = 5000
			i.byNonce[p.nonce] = p
		}
		s := &subscription{key: mapcache.Key{Prefix: netip.MustParsePrefix("10.2.0.0/16")}, sent: 1000, accepted: 1000, idx: -1}
		i.ps.schedule(s, now, time.Minute)
		i.ps.add(s)
		i.mu.Unlock()
		before, subs := i.Cache().Len(), i.Subscriptions()
		owns := i.OwnsNotify(pkt)
		i.HandlePacket(pkt, psMS, netip.Addr{})
		acks := counter(i.Counters(), "pubsub_acks_sent")
		if acks > 0 && !owns {
			t.Fatal("acknowledged a Map-Notify OwnsNotify did not claim")
		}
		if acks == 0 && counter(i.Counters(), "map_replies_accepted") == 0 &&
			(i.Cache().Len() != before || !slices.Equal(i.Subscriptions(), subs)) {
			t.Fatal("the map-cache or the subscriptions changed without an accepted message")
		}
	})
}
