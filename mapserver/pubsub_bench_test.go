package mapserver

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// pubsubBenchServer is an MS+MR with pub/sub, n registered /28s
// (proxy-replied) in 10.0.0.0/8, a real clock, and nothing sent.
func pubsubBenchServer(b *testing.B, n int) (*Server, *capSender) {
	b.Helper()
	out := &capSender{}
	sites := []Site{{Name: "bench", Key: keyA, Algorithm: wire.AlgHMACSHA256128, AllowProxyReply: true,
		Prefixes:    []SitePrefix{{EIDPrefix: eid(0, "10.0.0.0/8"), AcceptMoreSpecifics: true}},
		MaxPrefixes: 1 << 21, MaxRegistrations: 1 << 21}}
	s, err := New(Config{MapServer: true, MapResolver: true, Sites: sites, MaxRegistrations: 1 << 21,
		PubSub: PubSubConfig{Enabled: true, Key: pubsubKey, MaxPerITR: 1 << 30, MaxPending: 1 << 30}}, out, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		s.HandlePacket(buildRegisterB(b, regOpts{key: keyA, alg: wire.AlgHMACSHA256128, proxy: true,
			records: []wire.EIDRecord{rec(0, benchPrefix(i), 1440, loc("192.0.2.1"))}}), ap("192.0.2.1:4342"), netip.Addr{})
	}
	out.take()
	return s, out
}

// benchPrefix is the i-th /28 of 10.0.0.0/8.
func benchPrefix(i int) string {
	return fmt.Sprintf("10.%d.%d.%d/28", i>>12&255, i>>4&255, (i&15)<<4)
}

// subscribeAll makes xtrs subscribers of each of the first prefixes, each
// confirmed (acked), from one ITR address.
func subscribeAll(b *testing.B, s *Server, out *capSender, xtrs, prefixes int) {
	b.Helper()
	itr := ap("198.51.100.7:4342")
	for x := range xtrs {
		var id wire.XTRID
		binary.BigEndian.PutUint64(id[:], uint64(x)+1)
		for p := range prefixes {
			pf := netip.MustParsePrefix(benchPrefix(p))
			s.HandlePacket(subscribeReq(b, itr, pf.Addr().Next().String()+"/32", uint64(p)+1, id), ms, netip.Addr{})
		}
		for _, sent := range out.take() {
			n, err := wire.Parse(sent.b)
			if err != nil {
				b.Fatal(err)
			}
			ack := wire.MapNotifyAck(*n.(*wire.MapNotify))
			ack.AuthData = nil
			a, _ := ack.AppendBinary(nil)
			if err := wire.Sign(a, pubsubKey); err != nil {
				b.Fatal(err)
			}
			s.HandlePacket(a, itr, netip.Addr{})
		}
	}
	if st := s.Stats(); st.Subscriptions != xtrs*prefixes || st.PubSubPending != 0 {
		b.Fatalf("%d subscriptions, %d pending", st.Subscriptions, st.PubSubPending)
	}
}

var ms = ap("192.0.2.100:4342")

// BenchmarkSubscriptionMemory reports the heap bytes one confirmed
// subscription costs, for 100,000 of them in two shapes: 1,000 xTRs on 100
// prefixes each, and 100,000 xTRs on one prefix each (of 100,000).
func BenchmarkSubscriptionMemory(b *testing.B) {
	for _, shape := range []struct{ xtrs, prefixes, registered int }{{1000, 100, 100}, {1, 100000, 100000}} {
		b.Run(fmt.Sprintf("xtrs=%d/prefixes=%d", shape.xtrs, shape.prefixes), func(b *testing.B) {
			for range b.N {
				s, out := pubsubBenchServer(b, shape.registered)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				subscribeAll(b, s, out, shape.xtrs, shape.prefixes)
				runtime.GC()
				runtime.ReadMemStats(&after)
				n := shape.xtrs * shape.prefixes
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "B/subscription")
				runtime.KeepAlive(s)
			}
		})
	}
}

// BenchmarkPublish1000 measures publishing one change to 1,000
// subscribers: from the Map-Register to the last Map-Notify handed to the
// Sender (building, signing and recording each).
func BenchmarkPublish1000(b *testing.B) {
	s, out := pubsubBenchServer(b, 1)
	subscribeAll(b, s, out, 1000, 1)
	regs := [2][]byte{}
	for k, l := range []string{"192.0.2.8", "192.0.2.9"} {
		regs[k] = buildRegisterB(b, regOpts{key: keyA, alg: wire.AlgHMACSHA256128, proxy: true,
			records: []wire.EIDRecord{rec(0, benchPrefix(0), 1440, loc(l))}})
	}
	b.ResetTimer()
	var worst time.Duration
	for i := range b.N {
		start := time.Now()
		s.HandlePacket(regs[i%2], ap("192.0.2.1:4342"), netip.Addr{})
		worst = max(worst, time.Since(start))
		if got := len(out.take()); got != 1000 {
			b.Fatalf("published to %d", got)
		}
		// Forget the pending publications (the subscribers would ack).
		s.subs.mu.Lock()
		var all []*pubPending
		for _, l := range s.subs.pending {
			all = append(all, l...)
		}
		for _, p := range all {
			s.subs.dropPending(p)
		}
		s.subs.mu.Unlock()
	}
	b.ReportMetric(float64(worst.Microseconds()), "worst-µs")
}
