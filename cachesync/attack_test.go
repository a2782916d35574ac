package cachesync

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// attacker holds idle TCP connections to a member's sync listener: it
// sends nothing, and re-opens (after a short pause) each connection the
// member closes.
type attacker struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	opened atomic.Int64 // connections opened, in all
}

// attack opens n connections to addr from sources (round robin).
func attack(t *testing.T, addr netip.AddrPort, sources []netip.Addr, n int) *attacker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &attacker{cancel: cancel}
	for i := range n {
		src := sources[i%len(sources)]
		a.wg.Go(func() {
			d := net.Dialer{Timeout: time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr.String())
				if err == nil {
					a.opened.Add(1)
					stop := context.AfterFunc(ctx, func() { c.Close() })
					var b [1]byte
					c.Read(b[:]) // until the member closes it
					stop()
					c.Close()
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	t.Cleanup(a.stop)
	waitFor(t, 10*time.Second, "the attack under way", func() bool { return a.opened.Load() >= int64(n) })
	return a
}

func (a *attacker) stop() {
	a.cancel()
	a.wg.Wait()
}

// sources returns n loopback addresses from 127.0.0.2 on.
func sources(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)})
	}
	return out
}

// TestSyncListenerFlood: 500 idle connections to the sync listener of the
// member that never dials (the larger key) do not keep its peer out when
// the peer restarts: from one source the per-source limit leaves room for
// the peer; from many sources (the listener full) the attacked member dials
// the peer whose connection it had to refuse. The refusals are counted.
func TestSyncListenerFlood(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sources int
	}{
		{"one-source", 1},
		{"many-sources", 40}, // 40 x 4 pending: the global limit is full
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOpts()
			o.tweak = func(c *Config) {
				// Idle connections hold their slot for the whole test, and
				// the timed fallback never fires: only admission and the
				// refusal-triggered dial can let the peer in.
				c.HandshakeTimeout = 10 * time.Second
				c.FallbackDialAfter = time.Minute
			}
			s := newSet(t, ModeSmart, 2, o)
			att, peer := s.nodes[0], s.nodes[1]
			if att.mem.Load().Peers()[0].Dials {
				att, peer = peer, att
			}
			a := attack(t, att.addr, sources(tc.sources), 500)
			peer.stop()
			waitFor(t, 5*time.Second, "the attacked member sees its peer gone", func() bool {
				return len(att.mem.Load().connectedPeers()) == 0
			})
			peer.start()
			start := time.Now()
			waitFor(t, 5*time.Second, "the restarted peer back in the set", func() bool {
				return len(att.mem.Load().connectedPeers()) == 1 && len(peer.mem.Load().connectedPeers()) == 1
			})
			t.Logf("%s: peer back after %v under attack", tc.name, time.Since(start).Round(time.Millisecond))
			// The set still works.
			e := peer.learn("10.1.0.0/16", time.Minute)
			waitFor(t, 5*time.Second, "the attacked member has the peer's mapping", func() bool { return att.has("10.1.0.0/16", e.Version) })
			st := att.stats()
			t.Logf("%s: refused busy %d, per source %d; fallback dials %d; handshake timeouts %d",
				tc.name, st.RefusedBusy, st.RefusedSource, st.FallbackDials, st.HandshakeTimeouts)
			if tc.sources == 1 && (st.RefusedSource == 0 || st.RefusedBusy != 0) {
				t.Errorf("one source: %d refused per source, %d busy", st.RefusedSource, st.RefusedBusy)
			}
			if tc.sources > 1 && (st.RefusedBusy == 0 || st.FallbackDials == 0) {
				t.Errorf("listener full: %d refused busy, %d fallback dials", st.RefusedBusy, st.FallbackDials)
			}
			a.stop()
		})
	}
}

// TestBothDial: when both members dial each other at once (the fallback
// dial due at once), both keep the same session (the one dialed by the
// member with the smaller key, unless only the other came up), it stays,
// and nobody is declared dead on the way.
func TestBothDial(t *testing.T) {
	o := defaultOpts()
	o.tweak = func(c *Config) {
		c.FallbackDialAfter = time.Millisecond
		// This test is about which session both keep, not liveness:
		// a loaded machine must not make it declare a peer dead.
		c.DeadAfter = 5 * time.Second
	}
	s := newSet(t, ModeSmart, 2, o)
	a, b := s.nodes[0], s.nodes[1]
	var superseded, fallback uint64
	count := func() {
		for _, nd := range s.nodes {
			st := nd.stats()
			superseded += st.SessionsSuperseded
			fallback += st.FallbackDials
		}
	}
	drain := func() {
		for _, nd := range s.nodes {
			for len(nd.events) > 0 {
				<-nd.events
			}
		}
	}
	for round := range 10 {
		if round > 0 {
			// Restart both at once: both dial at once again.
			count()
			a.stop()
			b.stop()
			drain() // the peers the restart killed
			a.start()
			b.start()
			s.waitConnected()
		}
		// Both hold the same session, and keep it for three rounds
		// (a canonical dial in flight may still replace a
		// non-canonical session once).
		var sa, sb *session
		var since time.Time
		deadline := time.Now().Add(5 * time.Second)
		for {
			na, nb := a.mem.Load().peers[0].session(), b.mem.Load().peers[0].session()
			same := na != nil && nb != nil && na.canonical == nb.canonical &&
				na.conn.LocalAddr().String() == nb.conn.RemoteAddr().String()
			if !same || na != sa || nb != sb {
				sa, sb, since = na, nb, time.Now()
			}
			if same && time.Since(since) >= 3*o.round {
				break
			}
			if time.Now().After(deadline) {
				desc := func(s *session) string {
					if s == nil {
						return "none"
					}
					return fmt.Sprintf("canonical=%v %v->%v", s.canonical, s.conn.LocalAddr(), s.conn.RemoteAddr())
				}
				t.Fatalf("round %d: no common session: a: %s %+v; b: %s %+v", round, desc(na), a.mem.Load().Peers()[0], desc(nb), b.mem.Load().Peers()[0])
			}
			time.Sleep(5 * time.Millisecond)
		}
		e := a.learn(prefixN(round), time.Minute)
		waitFor(t, 5*time.Second, "b has a's mapping", func() bool { return b.has(prefixN(round), e.Version) })
		for _, nd := range s.nodes {
			for len(nd.events) > 0 {
				if ev := <-nd.events; !ev.Alive {
					t.Errorf("round %d: %s declared %s dead: %s", round, nd.name, ev.Peer, ev.Cause)
				}
			}
		}
	}
	count()
	t.Logf("10 rounds: %d fallback dials, %d sessions superseded", fallback, superseded)
	if fallback == 0 || superseded == 0 {
		t.Error("the members never dialed each other at once")
	}
}

// TestIdleHandshakeTimeout: a connection that never starts its TLS
// handshake is closed after HandshakeTimeout, and counted.
func TestIdleHandshakeTimeout(t *testing.T) {
	o := defaultOpts()
	o.tweak = func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond }
	s := newSet(t, ModeSmart, 2, o)
	a := s.nodes[0]
	c, err := net.Dial("tcp", a.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err == nil {
		t.Fatal("the member sent something to an idle client")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the member kept an idle connection open")
	}
	waitFor(t, 5*time.Second, "the timeout counted", func() bool {
		st := a.stats()
		return st.HandshakeTimeouts == 1 && st.HandshakeFailures == 1
	})
}
