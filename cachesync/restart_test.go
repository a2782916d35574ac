package cachesync

import (
	"fmt"
	"testing"
	"time"
)

// TestRestartCatchUp: a member that stops misses changes; when it comes
// back it is brought up to date. With its cache kept (a reconnect, or the
// sync process restarting), the digests limit the transfer to the one
// record it missed; with an empty cache (the router restarting) it
// receives everything.
func TestRestartCatchUp(t *testing.T) {
	for _, mode := range allModes {
		t.Run(fmt.Sprintf("%v/missed-one", mode), func(t *testing.T) {
			s := newSet(t, mode, 2, defaultOpts())
			a, b := s.nodes[0], s.nodes[1]
			var last uint64
			for i := range 300 {
				last = a.learn(prefixN(i), time.Minute).Version
			}
			waitFor(t, 10*time.Second, "b has the 300 mappings", func() bool { return b.cache.Len() == 300 && b.has(prefixN(299), last) })
			// Gossip retransmits each broadcast a few times; let that
			// finish so that what b receives later is the catch-up only.
			waitFor(t, 10*time.Second, "broadcasts sent", func() bool { return a.queuedBroadcasts() == 0 })
			b.stop()
			waitFor(t, 10*time.Second, "a sees b gone", func() bool { return len(a.mem.Load().connectedPeers()) == 0 })
			e := a.learn(prefixN(1000), time.Minute)
			b.start()
			waitFor(t, 10*time.Second, "b catches up", func() bool { return b.has(prefixN(1000), e.Version) })
			time.Sleep(5 * s.o.round)
			st := b.stats()
			// TCP modes: the record, maybe twice (announced when b
			// reconnected, and pulled by the digest exchange). Gossip:
			// memberlist also retransmits a broadcast RetransmitMult
			// times (4 with two members): duplicates, ignored.
			limit := uint64(2)
			if mode == ModeGossip {
				limit = 5
			}
			if st.RecordsReceived > limit || st.RecordsApplied != 1 {
				t.Errorf("b received %d records and applied %d for one missed change", st.RecordsReceived, st.RecordsApplied)
			}
			// The whole cache is ~300 records of 45 bytes; the catch-up
			// costs a digest, a bucket's keys and one record.
			if st.BytesReceived > 4000 {
				t.Errorf("b received %d bytes for one missed change", st.BytesReceived)
			}
			t.Logf("%v: catch-up of one change: %d records, %d bytes received by b (%d frames)",
				mode, st.RecordsReceived, st.BytesReceived, st.FramesReceived)
		})
		t.Run(fmt.Sprintf("%v/empty", mode), func(t *testing.T) {
			s := newSet(t, mode, 3, defaultOpts())
			a, c := s.nodes[0], s.nodes[2]
			for i := range 50 {
				a.learn(prefixN(i), time.Minute)
			}
			waitFor(t, 10*time.Second, "c has the 50 mappings", func() bool { return c.cache.Len() == 50 })
			c.stop()
			c.newCache()
			var last uint64
			for i := 50; i < 80; i++ {
				last = s.nodes[1].learn(prefixN(i), time.Minute).Version
			}
			c.start()
			waitFor(t, 10*time.Second, "c catches up", func() bool { return c.cache.Len() == 80 && c.has(prefixN(79), last) })
		})
	}
}
