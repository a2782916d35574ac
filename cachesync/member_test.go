package cachesync

import (
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// TestLearnedMappingReachesAll: a mapping learned by one member is
// usable on all, in every mode, with 2 and 5 members, and all agree on its
// expiry within a second.
func TestLearnedMappingReachesAll(t *testing.T) {
	for _, mode := range allModes {
		for _, n := range []int{2, 5} {
			t.Run(fmt.Sprintf("%v/%d", mode, n), func(t *testing.T) {
				s := newSet(t, mode, n, defaultOpts())
				first, last := s.nodes[0], s.nodes[n-1]
				e1 := first.learn("10.1.0.0/16", time.Minute)
				e2 := last.learn("10.2.0.0/16", time.Minute)
				for _, nd := range s.nodes {
					waitFor(t, 5*time.Second, nd.name+" has both mappings", func() bool {
						return nd.has("10.1.0.0/16", e1.Version) && nd.has("10.2.0.0/16", e2.Version)
					})
				}
				for _, nd := range s.nodes {
					for _, want := range []*mapcache.Entry{e1, e2} {
						got, ok := nd.cache.LookupAt(0, want.Prefix.Addr().Next(), nd.cache.Now().UnixNano())
						if !ok || got.Version != want.Version {
							t.Fatalf("%s: lookup in %v: %v", nd.name, want.Prefix, ok)
						}
						if d := got.Expires.Sub(want.Expires).Abs(); d > time.Second {
							t.Errorf("%s: %v expires %v apart from its origin", nd.name, want.Prefix, d)
						}
						if got != want && (got.Source != mapcache.FromSync || len(got.RLOCs) != 2 || got.RLOCs[1] != want.RLOCs[1]) {
							t.Errorf("%s: synced entry %+v", nd.name, got)
						}
					}
				}
			})
		}
	}
}

// TestNoLoops: in smart mode one change costs one record per peer; the
// receivers send nothing back.
func TestNoLoops(t *testing.T) {
	s := newSet(t, ModeSmart, 3, defaultOpts())
	e := s.nodes[0].learn("10.1.0.0/16", time.Minute)
	for _, nd := range s.nodes {
		waitFor(t, 5*time.Second, nd.name+" has the mapping", func() bool { return nd.has("10.1.0.0/16", e.Version) })
	}
	// Let a few rounds go by: nothing more may be sent.
	time.Sleep(3 * s.o.round)
	for i, nd := range s.nodes {
		st := nd.stats()
		want := uint64(0)
		if i == 0 {
			want = 2
		}
		if st.RecordsSent != want {
			t.Errorf("%s sent %d records, want %d", nd.name, st.RecordsSent, want)
		}
		if i > 0 && (st.RecordsApplied != 1 || st.RecordsReceived != 1) {
			t.Errorf("%s applied %d of %d records, want 1", nd.name, st.RecordsApplied, st.RecordsReceived)
		}
	}
}

// TestNaiveSendsWholeCache: in naive mode a change sends the whole cache.
func TestNaiveSendsWholeCache(t *testing.T) {
	s := newSet(t, ModeNaive, 2, defaultOpts())
	a, b := s.nodes[0], s.nodes[1]
	var last *mapcache.Entry
	for i := range 20 {
		last = a.learn(prefixN(i), time.Minute)
	}
	waitFor(t, 5*time.Second, "b has the 20 mappings", func() bool { return b.cache.Len() == 20 && b.has(prefixN(19), last.Version) })
	time.Sleep(3 * s.o.round)
	before := a.stats().RecordsSent
	e := a.learn(prefixN(20), time.Minute)
	waitFor(t, 5*time.Second, "b has the 21st mapping", func() bool { return b.has(prefixN(20), e.Version) })
	time.Sleep(3 * s.o.round)
	if got := a.stats().RecordsSent - before; got != 21 {
		t.Fatalf("one change sent %d records, want the whole cache (21)", got)
	}
}

// TestNewerVersionWins: whatever order versions of a mapping arrive in, the
// newest stays.
func TestNewerVersionWins(t *testing.T) {
	c := mapcache.New(mapcache.Config{})
	m, err := New(Config{Mode: ModeSmart, Name: "a", Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		PrivateKey: mustKey(t), Peers: []Peer{{Name: "b", Address: netip.MustParseAddrPort("127.0.0.1:9"), PublicKey: PublicKeyOf(mustKey(t))}}}, c)
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{name: "b"}
	rec := func(v uint64, rloc string) record {
		return record{key: mapcache.Key{Prefix: netip.MustParsePrefix("10.1.0.0/16")}, version: v, ttl: time.Minute,
			remaining: time.Minute, rlocs: []mapcache.RLOC{{Addr: netip.MustParseAddr(rloc), Priority: 1}}}
	}
	m.apply([]record{rec(50, "192.0.2.5")}, p, false)
	m.apply([]record{rec(30, "192.0.2.3")}, p, false)
	got, _ := c.Get(mapcache.Key{Prefix: netip.MustParsePrefix("10.1.0.0/16")})
	if got.Version != 50 || got.RLOCs[0].Addr != netip.MustParseAddr("192.0.2.5") {
		t.Fatalf("after v50 then v30: %d", got.Version)
	}
	if st := m.Stats(); st.RecordsApplied != 1 || st.RecordsIgnored != 1 {
		t.Fatalf("applied %d ignored %d", st.RecordsApplied, st.RecordsIgnored)
	}
	// The next local version is newer than anything seen.
	if v := m.NextVersion(); v <= 50 {
		t.Fatalf("next version %d", v)
	}
	// Naive "TTLs are reset": an equal version is installed again with the
	// sender's remaining time; smart leaves it.
	r := rec(50, "192.0.2.5")
	r.remaining = 10 * time.Second
	m.apply([]record{r}, p, false)
	if e, _ := c.Get(got.Key()); e != got {
		t.Fatal("smart re-installed an equal version")
	}
	m.apply([]record{r}, p, true)
	if e, _ := c.Get(got.Key()); e == got || e.Expires.Sub(c.Now()) > 11*time.Second {
		t.Fatal("naive did not reset the TTL to the sender's")
	}

	// Over the network, two members learning the same prefix at once end
	// with the newer version on both.
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			s := newSet(t, mode, 2, defaultOpts())
			a, b := s.nodes[0], s.nodes[1]
			ea := a.learn("10.9.0.0/16", time.Minute)
			eb := b.learn("10.9.0.0/16", time.Minute)
			if eb.Version <= ea.Version {
				t.Fatalf("versions %x %x", ea.Version, eb.Version)
			}
			waitFor(t, 5*time.Second, "both converge on the newer version", func() bool {
				return a.has("10.9.0.0/16", eb.Version) && b.has("10.9.0.0/16", eb.Version)
			})
		})
	}
}

func mustKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestPublishedMappingShared: a mapping a Map-Server published to one
// member (RFC 9437, Source FromPubSub) reaches every member, like one from
// a Map-Reply, in every mode; the receivers hold it as FromSync.
func TestPublishedMappingShared(t *testing.T) {
	for _, mode := range allModes {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			s := newSet(t, mode, 3, defaultOpts())
			first := s.nodes[0]
			e := testEntry(0, "10.7.0.0/16", time.Minute, first.mem.Load().NextVersion(), "192.0.2.1", "198.51.100.1")
			e.Source = mapcache.FromPubSub
			if _, err := first.cache.Insert(e); err != nil {
				t.Fatal(err)
			}
			for _, nd := range s.nodes[1:] {
				waitFor(t, 5*time.Second, nd.name+" has the published mapping", func() bool {
					return nd.has("10.7.0.0/16", e.Version)
				})
				got, _ := nd.cache.Get(mapcache.Key{Prefix: e.Prefix})
				if got.Source != mapcache.FromSync {
					t.Fatalf("%s holds it as %v", nd.name, got.Source)
				}
			}
		})
	}
}
