package mapserver

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/lispd/lispd/wire"
)

var (
	fuzzOnce   sync.Once
	fuzzServer *Server
	fuzzOut    *capSender
	fuzzClock  *fakeClock
)

// FuzzHandlePacket feeds arbitrary datagrams to a Map-Server/Map-Resolver
// with live registrations: it must never panic, and everything it sends
// must be a well-formed LISP message.
func FuzzHandlePacket(f *testing.F) {
	f.Add(siteARegister(f, 1, true, true, loc("192.0.2.1")))
	f.Add(buildRegister(f, regOpts{key: keyB, keyID: 3, alg: wire.AlgHMACSHA256128, truncated: true, wantNotify: true,
		records: []wire.EIDRecord{rec(7, "2001:db8:2:1::/64", 60, loc("2001:db8:ffff::1"))}}))
	for _, e := range []string{"10.1.1.1/32", "10.2.1.1/32", "10.1.9.1/32", "172.16.1.1/32"} {
		f.Add(buildRequest(f, itr, 0, e, 1, nil))
	}
	f.Add(buildRequest(f, ap("[2001:db8::9]:4000"), 7, "2001:db8:2::1/128", 1, nil))
	n, _ := (&wire.MapNotifyAck{Nonce: 5, AlgorithmID: wire.AlgHMACSHA196}).AppendBinary(nil)
	f.Add(n)
	f.Add([]byte{0x80, 0, 0, 0, 0x45})
	// Pub/sub: a subscription, an unsubscription and an unsigned ack with
	// no records (lispers.net's).
	f.Add(subscribeReq(f, itr, "10.1.1.1/32", 9, subXTR1))
	f.Add(subscribeReq(f, itr, "10.1.200.1/32", 10, subXTR2))
	f.Add(buildRequest(f, itr, 0, "10.1.1.1/32", 11, func(m *wire.MapRequest) {
		m.XTRIDPresent, m.XTRID = true, subXTR1
		m.Records[0].NotifyRequested = true
		m.ITRRLOCs = []wire.Address{{}}
	}))
	f.Add([]byte{0x50, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		fuzzOnce.Do(func() {
			fuzzClock = newFakeClock()
			fuzzOut = &capSender{}
			s, err := New(Config{MapServer: true, MapResolver: true, Sites: testSites(), Clock: fuzzClock,
				PubSub: PubSubConfig{Enabled: true, Unauthenticated: true, MaxSubscriptions: 1000, MaxPending: 1000},
				Resolver: ResolverConfig{MapServers: []RemoteMapServer{{Address: ap("192.0.2.250:4342"),
					Prefixes: []EIDPrefix{eid(0, "172.16.0.0/12")}}}}}, fuzzOut, nil)
			if err != nil {
				panic(err)
			}
			registerFixture(t, s, fuzzOut)
			fuzzServer = s
		})
		fuzzServer.HandlePacket(pkt, ap("198.18.0.1:4342"), netip.MustParseAddr("198.18.0.2"))
		fuzzClock.Advance(1e9)
		fuzzServer.runTimers(fuzzClock.Now())
		for _, p := range fuzzOut.take() {
			if _, err := wire.Parse(p.b); err != nil {
				t.Fatalf("sent a datagram that does not parse (%v): %x", err, p.b)
			}
			if !p.to.IsValid() {
				t.Fatalf("sent to an invalid address: %x", p.b)
			}
		}
	})
}
