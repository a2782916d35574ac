package benchcontrol

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/lispd/lispd/mapserver"
	"github.com/lispd/lispd/wire"
)

// The live heap of subscriptions is measured in this process, on the
// Map-Server code lispd runs (package mapserver): lispd, a separate process,
// cannot be asked to collect its garbage, so its RSS says little about a
// hundred bytes per subscription; here runtime.GC and HeapAlloc say it
// exactly.

// heapSender keeps what the in-process Map-Server sends.
type heapSender struct {
	mu  sync.Mutex
	out [][]byte
}

func (h *heapSender) Send(b []byte, _ netip.AddrPort) error {
	h.mu.Lock()
	h.out = append(h.out, slices.Clone(b))
	h.mu.Unlock()
	return nil
}

// take returns and forgets what was sent.
func (h *heapSender) take() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.out
	h.out = nil
	return out
}

// inprocITR is where the in-process subscribers are (nothing is sent
// there).
var inprocITR = netip.MustParseAddrPort("127.0.0.1:40000")

// liveHeapPerSubscription builds a Map-Server and Map-Resolver in this
// process configured as the lispd under test, registers the prefixes the
// shapes use, then creates and acknowledges each shape's subscriptions in
// turn (each on top of the ones before, as in lispd), and returns the live
// heap per subscription of each shape.
func liveHeapPerSubscription(shapes []memoryShape) ([]float64, error) {
	total, registered := 0, 0
	for _, sh := range shapes {
		total += sh.n
		registered = max(registered, sh.prefixes)
	}
	sites := []mapserver.Site{
		benchSite("bench-sha1", siteSHA1, "10.0.0.0/9"),
		benchSite("bench-sha256", siteSHA256, "10.128.0.0/9"),
	}
	out := &heapSender{}
	s, err := mapserver.New(mapserver.Config{
		MapServer:           true,
		MapResolver:         true,
		RegistrationTimeout: time.Hour,
		MaxRegistrations:    2 * maxPrefixes,
		Sites:               sites,
		PubSub: mapserver.PubSubConfig{
			Enabled:          true,
			Key:              []byte(pubsubKey),
			KeyID:            pubsubKeyID,
			Algorithm:        wire.AlgHMACSHA256128,
			MaxSubscriptions: total + 1,
			MaxPerITR:        total + 1,
		},
	}, out, nil)
	if err != nil {
		return nil, fmt.Errorf("benchcontrol: in-process Map-Server: %w", err)
	}
	etr := netip.MustParseAddrPort("127.0.0.1:4342")
	for i := 0; i < registered; i += 2 * recordsPerRegister {
		var bySite [2][]int
		for k := i; k < min(i+2*recordsPerRegister, registered); k++ {
			bySite[k%2] = append(bySite[k%2], k)
		}
		for site, ps := range bySite {
			if len(ps) == 0 {
				continue
			}
			b, err := buildRegister(site, ps, uint64(i+site+1), false)
			if err != nil {
				return nil, err
			}
			s.HandlePacket(b, etr, netip.Addr{})
		}
	}
	if n := s.Stats().SiteRegistrations; n["bench-sha1"]+n["bench-sha256"] != registered {
		return nil, fmt.Errorf("benchcontrol: in-process Map-Server registered %v, want %d", n, registered)
	}
	auth := wire.NewAuthenticator([]byte(pubsubKey))
	var res []float64
	held := 0
	for si, sh := range shapes {
		var before, after runtime.MemStats
		settleHeap()
		runtime.ReadMemStats(&before)
		for i := range sh.n {
			k, j := i/sh.perXTR, i%sh.perXTR
			eid := addrPlus(prefixOf(sh.prefix(k, j)).Addr(), uint32(1+k%14))
			b, err := subscribeRequest(inprocITR, eid, xtrID(sh.space, k), uint64(si)<<32+uint64(i)+1)
			if err != nil {
				return nil, err
			}
			s.HandlePacket(b, inprocITR, netip.Addr{})
			for _, m := range out.take() {
				if len(m) < 16 || wire.MessageType(m[0]>>4) != wire.TypeMapNotify {
					return nil, fmt.Errorf("benchcontrol: in-process Map-Server answered a subscription with a message of type %d", m[0]>>4)
				}
				if err := ackNotify(auth, m); err != nil {
					return nil, err
				}
				s.HandlePacket(m, inprocITR, netip.Addr{})
			}
		}
		held += sh.n
		if st := s.Stats(); st.Subscriptions != held || st.PubSubPending != 0 || st.SubscriptionsConfirmed != uint64(held) {
			return nil, fmt.Errorf("benchcontrol: in-process Map-Server holds %d subscriptions (%d confirmed, %d pending), want %d",
				st.Subscriptions, st.SubscriptionsConfirmed, st.PubSubPending, held)
		}
		settleHeap()
		runtime.ReadMemStats(&after)
		res = append(res, (float64(after.HeapAlloc)-float64(before.HeapAlloc))/float64(sh.n))
	}
	runtime.KeepAlive(s)
	return res, nil
}

// benchSite is the in-process form of a site of the lispd config.
func benchSite(name string, site int, prefix string) mapserver.Site {
	return mapserver.Site{
		Name:            name,
		Key:             siteKey(site),
		Algorithm:       siteAlg(site),
		AllowProxyReply: true,
		// The bench registers up to half of maxPrefixes per site.
		MaxPrefixes:      maxPrefixes,
		MaxRegistrations: maxPrefixes,
		Prefixes: []mapserver.SitePrefix{{
			EIDPrefix:           mapserver.EIDPrefix{Prefix: netip.MustParsePrefix(prefix)},
			AcceptMoreSpecifics: true,
		}},
	}
}

// settleHeap collects garbage twice: the second collection also empties
// the sync.Pools (whose contents survive one), so that their contents do
// not count.
func settleHeap() {
	runtime.GC()
	runtime.GC()
}
