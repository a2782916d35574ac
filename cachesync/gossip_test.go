package cachesync

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// TestGossipWrongKey: a member with another gossip key can neither join
// nor read or inject mappings.
func TestGossipWrongKey(t *testing.T) {
	s := newSet(t, ModeGossip, 2, defaultOpts())
	a := s.nodes[0]
	ic := mapcache.New(mapcache.Config{})
	intr, err := New(Config{
		Mode: ModeGossip, Name: "intruder", Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Gossip: GossipConfig{
			Seeds: []netip.AddrPort{a.addr}, SecretKey: []byte("another key 16 b"),
			ProbeInterval: 100 * time.Millisecond, GossipInterval: 20 * time.Millisecond,
		},
		RoundInterval: s.o.round,
	}, ic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		intr.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	<-intr.Ready()
	ea := a.learn("10.1.0.0/16", time.Minute)
	if _, err := ic.Insert(testEntry(0, "10.66.0.0/16", time.Minute, intr.NextVersion(), "192.0.2.66")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b has a's mapping", func() bool { return s.nodes[1].has("10.1.0.0/16", ea.Version) })
	time.Sleep(10 * s.o.round)
	if st := intr.Stats(); st.Connected != 0 || ic.Len() != 1 {
		t.Errorf("intruder: %d members, %d mappings", st.Connected, ic.Len())
	}
	for _, nd := range s.nodes {
		if _, ok := nd.cache.Get(mapcache.Key{Prefix: netip.MustParsePrefix("10.66.0.0/16")}); ok {
			t.Errorf("%s took the intruder's mapping", nd.name)
		}
		for _, p := range nd.mem.Load().Peers() {
			if p.Name == "intruder" {
				t.Errorf("%s lists the intruder as a member", nd.name)
			}
		}
	}
}

// TestGossipOversizedRecord: a record too large for a UDP gossip message
// is sent directly to every member.
func TestGossipOversizedRecord(t *testing.T) {
	s := newSet(t, ModeGossip, 3, defaultOpts())
	a := s.nodes[0]
	e := &mapcache.Entry{Prefix: netip.MustParsePrefix("10.1.0.0/16"), TTL: time.Minute, Source: mapcache.FromMapReply,
		Version: a.mem.Load().NextVersion()}
	for i := range 100 { // 100 IPv6 locators: about 2.2 KB
		var b [16]byte
		b[0], b[1], b[15] = 0x20, 0x01, byte(i+1)
		e.RLOCs = append(e.RLOCs, mapcache.RLOC{Addr: netip.AddrFrom16(b), Priority: 1, Weight: 1})
	}
	if _, err := a.cache.Insert(e); err != nil {
		t.Fatal(err)
	}
	for _, nd := range s.nodes[1:] {
		waitFor(t, 5*time.Second, nd.name+" has the big record", func() bool { return nd.has("10.1.0.0/16", e.Version) })
	}
}
