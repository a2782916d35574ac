//go:build linux

package hostile

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Case 8: the gossip port. Three xTRs in gossip mode: A, B with the set's
// key, and C with another key. C never joins, and both A and C count
// (sync_gossip_key_failures) and say why. Garbage UDP datagrams and TCP
// streams to A's gossip port are counted (sync_gossip_malformed), and the
// set keeps working: a mapping B learns reaches A.

const (
	gossipCase    = 8
	gossipUDP     = 200 // garbage datagrams
	gossipStreams = 50  // garbage TCP streams
)

func TestGossipGarbageAndWrongKey(t *testing.T) {
	t.Parallel()
	requireTUN(t)
	setKey, otherKey := gossipKey(t), gossipKey(t)
	mr := listenPeer(t, ap(gossipCase, 9, ControlPort))
	gossipPort := uint16(4343)
	member := func(name string, h byte, key string, seeds ...netip.AddrPort) func(string) string {
		var quoted []string
		for _, s := range seeds {
			quoted = append(quoted, fmt.Sprintf("%q", s.String()))
		}
		section := fmt.Sprintf(`[sync]
mode = "gossip"
name = %q
listen = %q
gossip-key = %q
seeds = [%s]
`, name, ap(gossipCase, h, gossipPort).String(), key, strings.Join(quoted, ", "))
		return func(sock string) string {
			cfg := syncXTR(sock, gossipCase, h, fmt.Sprintf("hstgos%d", h), section)
			if name == "b" {
				// B's hosts send to the remote EIDs through its TUN.
				cfg = strings.Replace(cfg, "tun-name =", "tun-routes = [\"198.18.8.0/24\"]\ntun-name =", 1)
			}
			return cfg
		}
	}
	seed := ap(gossipCase, 1, gossipPort)
	a := startLispd(t, "member-a", member("a", 1, setKey))
	b := startLispd(t, "member-b", member("b", 2, setKey, seed))
	waitConnected(t, 10*time.Second, a, b)

	t.Run("wrong-key", func(t *testing.T) {
		before := counters(t, a)
		c := startLispd(t, "member-c", member("c", 3, otherKey, seed))
		waitCounter(t, a, "sync_gossip_key_failures", before["sync_gossip_key_failures"]+1, 10*time.Second)
		waitCounter(t, c, "sync_gossip_key_failures", 1, 10*time.Second)
		if got := counters(t, a); got["sync_peers"] != 1 {
			t.Errorf("A knows %d other members, want 1 (B): the member with the wrong key got in", got["sync_peers"])
		}
		if got := counters(t, c); got["sync_peers_connected"] != 0 {
			t.Errorf("C, with the wrong key, has %d members connected", got["sync_peers_connected"])
		}
		// Both say why in their logs (rate-limited).
		waitLog(t, c, "sync: gossip cannot join the seeds: they use another gossip key", 5*time.Second)
		waitLog(t, a, "sync: gossip: refused a message that no key of this member decrypts", 5*time.Second)
	})

	t.Run("garbage", func(t *testing.T) {
		before := counters(t, a)
		attacker := listenPeer(t, ap(gossipCase, 66, 0))
		for i := range gossipUDP {
			b := make([]byte, i%300)
			rand.Read(b)
			send(t, attacker, b, seed)
		}
		for i := range gossipStreams {
			d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(ap(gossipCase, 67, 0)), Timeout: 2 * time.Second}
			c, err := d.Dial("tcp", seed.String())
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 1+i*7)
			rand.Read(b)
			c.Write(b)
			c.Close()
		}
		// Garbage whose first byte reads as memberlist's encrypted
		// message fails decryption: a key failure, not malformed.
		refused := func(c map[string]uint64) uint64 { return c["sync_gossip_malformed"] + c["sync_gossip_key_failures"] }
		want := refused(before) + gossipUDP + gossipStreams
		waitFor(t, 10*time.Second, "A counts every garbage datagram and stream", func() (bool, string) {
			c, err := a.Counters(t.Context())
			if err != nil {
				return false, err.Error()
			}
			return refused(c) >= want, fmt.Sprintf("sync_gossip_malformed+sync_gossip_key_failures moved by %d of %d", refused(c)-refused(before), gossipUDP+gossipStreams)
		})
		after := counters(t, a)
		t.Logf("%d garbage datagrams and %d garbage streams: sync_gossip_malformed +%d, sync_gossip_key_failures +%d",
			gossipUDP, gossipStreams, after["sync_gossip_malformed"]-before["sync_gossip_malformed"],
			after["sync_gossip_key_failures"]-before["sync_gossip_key_failures"])
		if d := after["sync_gossip_malformed"] - before["sync_gossip_malformed"]; d < (gossipUDP+gossipStreams)*9/10 {
			t.Errorf("sync_gossip_malformed moved by %d only", d)
		}
		waitLog(t, a, "sync: gossip: refused a malformed packet or stream", 5*time.Second)
		if n := strings.Count(a.Logs(), "refused a malformed packet or stream"); n > 10 {
			t.Errorf("A logged the garbage %d times: not rate-limited", n)
		}
	})

	t.Run("set-still-works", func(t *testing.T) {
		// B learns a mapping from its Map-Resolver; it reaches A.
		waitConnected(t, 10*time.Second, a, b)
		host, err := NewDeviceSender("hstgos2")
		if err != nil {
			t.Fatal(err)
		}
		defer host.Close()
		eid := netip.MustParseAddr("198.18.8.20")
		prefix := netip.MustParsePrefix("198.18.8.16/28")
		var req []byte
		waitFor(t, 5*time.Second, "B's Map-Request", func() (bool, string) {
			host.Send([]byte("hostile"), netip.AddrPortFrom(eid, 9))
			b, _, err := mr.Recv(500*time.Millisecond, func(b []byte, _ netip.AddrPort) bool { return ParseMapRequest(b) != nil })
			if err != nil {
				return false, err.Error()
			}
			req = b
			return true, ""
		})
		reply, err := MapReply(ParseMapRequest(req).Nonce, Record(prefix, addr(gossipCase, 50)))
		if err != nil {
			t.Fatal(err)
		}
		send(t, mr, reply, ap(gossipCase, 2, ControlPort))
		want := fmt.Sprintf("%s [%s]", prefix, addr(gossipCase, 50))
		waitFor(t, 10*time.Second, "the mapping B learned in A's map-cache", func() (bool, string) {
			e := cacheEntry(t, a, prefix)
			return e == want, fmt.Sprintf("A has %q", e)
		})
	})
}

// gossipKey returns a random gossip key in config form.
func gossipKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}
