package mapserver

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lispd/lispd/wire"
)

// nullSender discards datagrams, counting them.
type nullSender struct{ n atomic.Uint64 }

func (d *nullSender) Send(b []byte, to netip.AddrPort) error {
	d.n.Add(1)
	return nil
}

// benchServer is an MS+MR with 10,000 registered /24s in site a's /16s.
func benchServer(b *testing.B) (*Server, *nullSender) {
	b.Helper()
	out := &nullSender{}
	sites := []Site{{Name: "bench", Key: keyA, Algorithm: wire.AlgHMACSHA256128, AllowProxyReply: true,
		Prefixes: []SitePrefix{{EIDPrefix: eid(0, "10.0.0.0/8"), AcceptMoreSpecifics: true}}}}
	s, err := New(Config{MapServer: true, MapResolver: true, Sites: sites}, out, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		p := fmt.Sprintf("10.%d.%d.0/24", i/200, i%200)
		pkt := buildRegisterB(b, regOpts{key: keyA, alg: wire.AlgHMACSHA256128, proxy: i%2 == 0,
			records: []wire.EIDRecord{rec(0, p, 1440, loc("192.0.2.1"), loc("192.0.2.2"))}})
		s.HandlePacket(pkt, ap("192.0.2.1:4342"), netip.Addr{})
	}
	if st := s.Stats(); st.RegisterOK != 10000 {
		b.Fatalf("registered %d", st.RegisterOK)
	}
	return s, out
}

func buildRegisterB(b *testing.B, o regOpts) []byte {
	m := &wire.MapRegister{ProxyReply: o.proxy, AlgorithmID: o.alg, Records: o.records}
	pkt, err := m.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := wire.Sign(pkt, o.key); err != nil {
		b.Fatal(err)
	}
	return pkt
}

func requestB(b *testing.B, eidPrefix string) []byte {
	p := netip.MustParsePrefix(eidPrefix)
	req := &wire.MapRequest{Nonce: 1, ITRRLOCs: []wire.Address{wire.AddrFrom(itr.Addr())},
		Records: []wire.RequestRecord{wire.NewRequestRecord(0, p)}}
	pkt, err := wire.NewECM(itr, netip.AddrPortFrom(p.Addr(), ControlPort), req).AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	return pkt
}

// BenchmarkHandleRequest measures one Encapsulated Map-Request through the
// Map-Resolver and Map-Server to the datagram handed to the Sender, per
// outcome, in parallel on all CPUs: "worker" is the path the daemon takes
// (a Worker per goroutine, the zero-allocation parser), "wire-parse" the
// baseline that decodes with wire.Parse.
func BenchmarkHandleRequest(b *testing.B) {
	for _, c := range []struct{ name, eid string }{
		{"proxy-reply", "10.0.0.5/32"},
		{"forward-to-etr", "10.0.1.5/32"},
		{"negative-not-registered", "10.200.0.1/32"},
		{"negative-not-configured", "11.0.0.1/32"},
	} {
		for _, path := range []string{"wire-parse", "worker"} {
			b.Run(c.name+"/"+path, func(b *testing.B) {
				s, out := benchServer(b)
				pkt := requestB(b, c.eid)
				from := ap("198.18.0.1:4342")
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					w := s.NewWorker(nil)
					for pb.Next() {
						if path == "worker" {
							w.HandlePacket(pkt, from, netip.Addr{})
						} else {
							s.handle(nil, s.out, pkt, from, netip.Addr{})
						}
					}
				})
				b.StopTimer()
				if out.n.Load() == 0 {
					b.Fatal("nothing sent")
				}
			})
		}
	}
}

// BenchmarkRegisterRefresh measures an authenticated Map-Register refreshing
// an existing registration.
func BenchmarkRegisterRefresh(b *testing.B) {
	s, _ := benchServer(b)
	pkt := buildRegisterB(b, regOpts{key: keyA, alg: wire.AlgHMACSHA256128, proxy: true,
		records: []wire.EIDRecord{rec(0, "10.0.0.0/24", 1440, loc("192.0.2.1"), loc("192.0.2.2"))}})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s.HandlePacket(pkt, ap("192.0.2.1:4342"), netip.Addr{})
	}
}

// TestConcurrentUse races requests, registers, reconfiguration, timers and
// views against each other (run with -race).
func TestConcurrentUse(t *testing.T) {
	s, out, clk := newTestServer(t, nil)
	registerFixture(t, s, out)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	worker := func(f func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f(i)
			}
		}()
	}
	reqs := [][]byte{
		buildRequest(t, itr, 0, "10.1.1.1/32", 1, nil),
		buildRequest(t, itr, 0, "10.2.1.1/32", 2, nil),
		buildRequest(t, itr, 0, "10.1.9.1/32", 3, nil),
		buildRequest(t, itr, 0, "172.16.1.1/32", 4, nil),
	}
	for range 2 {
		worker(func(i int) { s.HandlePacket(reqs[i%len(reqs)], itr, netip.Addr{}) })
	}
	worker(func(i int) {
		x := wire.XTRID{byte(i % 3)}
		p := fmt.Sprintf("10.1.%d.0/24", i%50)
		s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, xtrID: &x, wantNotify: i%2 == 0,
			records: []wire.EIDRecord{rec(0, p, uint32(i%4), loc(fmt.Sprintf("192.0.2.%d", i%7+1)))}}), ap("192.0.2.1:4342"), netip.Addr{})
	})
	worker(func(i int) {
		sites := testSites()
		if i%2 == 0 {
			sites = sites[:1]
		}
		if err := s.SetSites(sites); err != nil {
			t.Error(err)
		}
	})
	worker(func(i int) {
		clk.Advance(7 * 1e9)
		s.runTimers(clk.Now())
		_ = s.Stats()
		_ = s.Registrations()
		out.take()
	})
	for s.Stats().RequestsReceived < 2000 || s.Stats().RegisterOK < 200 {
		if t.Failed() {
			break
		}
		clk.Advance(0)
	}
	close(stop)
	wg.Wait()
}

// TestRequestPathAllocations checks that handling a Map-Request allocates
// nothing beyond what parsing it does, for every outcome.
func TestRequestPathAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s, out, _ := newTestServer(t, nil)
	registerFixture(t, s, out)
	s.out = &nullSender{}
	for _, e := range []string{"10.1.1.1/32", "10.2.1.1/32", "10.1.9.1/32", "172.16.1.1/32"} {
		pkt := buildRequest(t, itr, 0, e, 1, nil)
		parse := testing.AllocsPerRun(100, func() { _, _ = wire.Parse(pkt) })
		handle := testing.AllocsPerRun(100, func() { s.HandlePacket(pkt, itr, netip.Addr{}) })
		if handle > parse {
			t.Errorf("request for %s: %v allocations, parsing alone %v", e, handle, parse)
		}
	}
	if st := s.Stats(); st.RequestsProxyReplied == 0 || st.RequestsForwardedToETR == 0 ||
		st.NegativeNotRegistered == 0 || st.MRNegative == 0 {
		t.Fatalf("not every outcome exercised: %+v", st)
	}
}

// BenchmarkRegisterPrefixes registers b.N new /28 prefixes, 32 records per
// Map-Register as ETRs send them, and reports the live heap per registered
// prefix (run with -benchtime 100000x for a figure at scale).
func BenchmarkRegisterPrefixes(b *testing.B) {
	sites := []Site{{Name: "bench", Key: keyA, Algorithm: wire.AlgHMACSHA256128, AllowProxyReply: true,
		Prefixes:    []SitePrefix{{EIDPrefix: eid(0, "10.0.0.0/8"), AcceptMoreSpecifics: true}},
		MaxPrefixes: 1 << 21, MaxRegistrations: 1 << 21}}
	s, err := New(Config{MapServer: true, MapResolver: true, Sites: sites, MaxRegistrations: 1 << 21}, &nullSender{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	const perMsg = 32
	pkts := make([][]byte, 0, b.N/perMsg+1)
	for i := 0; i < b.N; i += perMsg {
		var recs []wire.EIDRecord
		for k := i; k < min(i+perMsg, b.N, 1<<20); k++ {
			a := netip.AddrFrom4([4]byte{10, byte(k >> 12), byte(k >> 4), byte(k << 4)})
			recs = append(recs, rec(0, netip.PrefixFrom(a, 28).String(), 1440, loc("192.0.2.1")))
		}
		pkts = append(pkts, buildRegisterB(b, regOpts{key: keyA, alg: wire.AlgHMACSHA256128, proxy: true, records: recs}))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for _, pkt := range pkts {
		s.HandlePacket(pkt, ap("192.0.2.1:4342"), netip.Addr{})
	}
	b.StopTimer()
	pkts = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	n := s.Stats().SiteRegistrations["bench"]
	if n != min(b.N, 1<<20) {
		b.Fatalf("registered %d of %d", n, b.N)
	}
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "live-B/prefix")
	runtime.KeepAlive(s)
}
