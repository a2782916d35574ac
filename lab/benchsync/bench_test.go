package benchsync

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/cachesync"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunSmall runs every measurement at a small scale and checks the
// figures are those of each mode's design.
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		Sizes: []int{10, 200}, Mappings: 3, LatencySamples: 20,
		GossipMembers: 4, GossipMappings: 3, GossipIdle: 500 * time.Millisecond,
		GossipInterval: 20 * time.Millisecond, GossipProbeInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cost) != 6 || len(res.Latency) != 3 || res.Gossip == nil {
		t.Fatalf("result %+v", res)
	}
	for _, c := range res.Cost {
		switch c.Mode {
		case cachesync.ModeSmart.String():
			// One record to the one peer.
			if c.RecordsPerMapping != 1 || c.BytesPerMapping < 40 || c.BytesPerMapping > 200 {
				t.Errorf("smart: %+v", c)
			}
		case cachesync.ModeNaive.String():
			// The whole cache, which grows by the new mappings.
			if c.RecordsPerMapping < float64(c.CacheSize+1) || c.RecordsPerMapping > float64(c.CacheSize+c.Mappings) {
				t.Errorf("naive: %+v", c)
			}
		case cachesync.ModeGossip.String():
			// Retransmissions: a few records, independent of the size.
			if c.RecordsPerMapping < 1 || c.RecordsPerMapping > 10 {
				t.Errorf("gossip: %+v", c)
			}
		}
		if c.WireBytesPerMapping <= 0 {
			t.Errorf("no wire bytes: %+v", c)
		}
	}
	for _, l := range res.Latency {
		if l.Samples != 20 || l.P50Micros <= 0 || l.P99Micros < l.P50Micros || l.MaxMicros < l.P99Micros {
			t.Errorf("latency %+v", l)
		}
	}
	if g := res.Gossip; g.Members != 4 || g.ConvergeP50Ms <= 0 || g.RecordsPerMemberPerMapping <= 0 || g.IdleWireBytesPerMemberPerSecond <= 0 {
		t.Errorf("gossip %+v", g)
	}
}
