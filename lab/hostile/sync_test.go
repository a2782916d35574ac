//go:build linux

package hostile

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/lispd/lispd/cachesync"
)

// Case 7: slow clients at the synchronization set's listener. Two xTRs in
// smart mode; the attacked one (A) has the larger public key, so it never
// dials its peer (B) unless it must. While 500 idle TCP connections, from
// one source and then from 125, hold A's listener (re-opened as soon as A
// closes them), B restarts: it must be back in the set within
// syncReconnectBound. A counts what it refused (sync_refused_source,
// sync_refused_busy), dials B when B cannot get in (sync_fallback_dials),
// and closes the idle connections after the handshake timeout
// (sync_handshake_timeouts).

const (
	syncCase = 7
	// syncReconnectBound bounds the time from B's restart to both
	// members seeing the session up. Without the fixes of issue 13, B
	// stayed out for the whole attack.
	syncReconnectBound = 10 * time.Second
	// syncHandshakeTimeout is the daemon's TLS handshake timeout
	// (docs/metrics.md, sync_handshake_timeouts).
	syncHandshakeTimeout = 10 * time.Second
	syncAttackConns      = 500
	// syncPendingLimit is how many unauthenticated connections a member
	// admits at once (docs/metrics.md, sync_refused_busy).
	syncPendingLimit = 64
	syncRedial       = 250 * time.Millisecond
)

// syncXTR is the config of an xTR (itr role only) at 127.66.c.h with the
// given [sync] section.
func syncXTR(sock string, c, h byte, tun, syncSection string) string {
	return fmt.Sprintf(`# lab/hostile: a member of a synchronization set
[daemon]
roles = ["itr"]
api-socket = %q
log-level = "info"

[control]
listen = [%q]

[dataplane]
rlocs = [%q]
data-listen = [%q]
tun-name = %q

[itr]
map-resolvers = [%q]

%s`, sock, ap(c, h, ControlPort).String(), addr(c, h).String(), ap(c, h, DataPort).String(), tun, ap(c, 9, ControlPort).String(), syncSection)
}

// syncKeys returns two sync keys, the first with the larger public key.
func syncKeys(t *testing.T) (big, small ed25519.PrivateKey) {
	t.Helper()
	a, err := cachesync.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := cachesync.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Compare(cachesync.PublicKeyOf(a), cachesync.PublicKeyOf(b)) < 0 {
		a, b = b, a
	}
	return a, b
}

// writeKey writes k as a member's private key file in dir.
func writeKey(t *testing.T, dir string, k ed25519.PrivateKey) string {
	t.Helper()
	p := filepath.Join(dir, "sync.key")
	if err := cachesync.WritePrivateKey(p, k); err != nil {
		t.Fatal(err)
	}
	return p
}

// freeLoopbackPort returns a TCP and UDP port free on 127.0.0.1 a moment
// ago.
func freeLoopbackPort(t *testing.T) uint16 {
	t.Helper()
	for range 20 {
		l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		l.Close()
		if err == nil {
			u.Close()
			return uint16(port)
		}
	}
	t.Fatal("no free port on 127.0.0.1")
	return 0
}

func TestSyncListenerSlowClients(t *testing.T) {
	t.Parallel()
	requireTUN(t)
	keyA, keyB := syncKeys(t)
	listenPeer(t, ap(syncCase, 9, ControlPort)) // the Map-Resolver, silent
	listenA := ap(syncCase, 1, 4343)
	// B listens on 127.0.0.1, the source address its own connections
	// get on lo: A then knows B's connections as coming from B's
	// configured address, as on a real network.
	listenB := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freeLoopbackPort(t))
	member := func(name, listen, key, peerName string, peer netip.AddrPort, peerKey ed25519.PrivateKey) string {
		return fmt.Sprintf(`[sync]
mode = "smart"
name = %q
listen = %q
private-key = %q

[[sync.peer]]
name = %q
address = %q
public-key = %q
`, name, listen, key, peerName, peer.String(), cachesync.FormatPublicKey(cachesync.PublicKeyOf(peerKey)))
	}
	a := startLispd(t, "member-a", func(sock string) string {
		return syncXTR(sock, syncCase, 1, "hstsyn0", member("a", listenA.String(), writeKey(t, filepath.Dir(sock), keyA), "b", listenB, keyB))
	})
	b := startLispd(t, "member-b", func(sock string) string {
		return syncXTR(sock, syncCase, 2, "hstsyn1", member("b", listenB.String(), writeKey(t, filepath.Dir(sock), keyB), "a", listenA, keyA))
	})
	waitConnected(t, syncReconnectBound, a, b)

	for _, tc := range []struct {
		name    string
		sources []netip.Addr
		counter string   // on A
		logs    []string // A's log lines (rate-limited) about it
	}{
		{"one-source", []netip.Addr{addr(syncCase, 99)}, "sync_refused_source",
			[]string{"sync: refusing connections: too many handshakes pending from one source"}},
		{"many-sources", hosts(syncCase, 100, 125), "sync_refused_busy",
			[]string{"sync: refusing connections: too many handshakes pending; peers that cannot get in are dialed instead",
				"sync: dialing a peer that should dial this member"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counters(t, a)
			per := syncAttackConns / len(tc.sources)
			attack := StartSlowClients(listenA, tc.sources, per, syncRedial)
			defer attack.Close()
			// The listener is full: the connections beyond the limits
			// are refused, and counted.
			expectCounter(t, a, tc.counter, before[tc.counter]+syncAttackConns-syncPendingLimit, 5*time.Second)
			started := time.Now()

			b.Stop()
			waitFor(t, 5*time.Second, "A sees B gone", func() (bool, string) {
				c := counters(t, a)
				return c["sync_peers_connected"] == 0, fmt.Sprintf("sync_peers_connected = %d", c["sync_peers_connected"])
			})
			restarted := time.Now()
			restart(t, b)
			waitConnected(t, syncReconnectBound, a, b)
			t.Logf("B back in the set %v after it was started again, under %d idle connections from %d sources (%d attempts so far)",
				time.Since(restarted).Round(time.Millisecond), syncAttackConns, len(tc.sources), attack.Attempts.Load())

			after := counters(t, a)
			for _, name := range []string{"sync_refused_source", "sync_refused_busy", "sync_fallback_dials", "sync_handshake_timeouts", "sync_handshake_failures"} {
				t.Logf("A: %s +%d", name, after[name]-before[name])
			}
			if tc.counter == "sync_refused_busy" && after["sync_fallback_dials"] == before["sync_fallback_dials"] {
				t.Errorf("B was refused at A's full listener, yet A did not dial B (sync_fallback_dials did not move)")
			}
			// A says so in its log (rate-limited).
			for _, line := range tc.logs {
				waitLog(t, a, line, 2*time.Second)
			}
			if !a.Alive() || !b.Alive() {
				t.Fatal("a member died under the attack")
			}
			// The idle connections A admitted (all it admits) are
			// closed at the handshake timeout.
			if tc.name == "many-sources" {
				wait := max(syncHandshakeTimeout+3*time.Second-time.Since(started), time.Second)
				waitCounter(t, a, "sync_handshake_timeouts", before["sync_handshake_timeouts"]+syncPendingLimit, wait)
			}
		})
	}
}

// hosts returns 127.66.c.first and the n-1 addresses after it.
func hosts(c, first byte, n int) []netip.Addr {
	var out []netip.Addr
	for i := range n {
		out = append(out, addr(c, first+byte(i)))
	}
	return out
}

// waitConnected waits until every member sees all its peers connected.
func waitConnected(t *testing.T, timeout time.Duration, members ...*Lispd) {
	t.Helper()
	waitFor(t, timeout, "the synchronization set connected", func() (bool, string) {
		for _, m := range members {
			c, err := m.Counters(t.Context())
			if err != nil {
				return false, err.Error()
			}
			if c["sync_peers_connected"] != c["sync_peers"] || c["sync_peers"] == 0 {
				return false, fmt.Sprintf("%s: %d of %d peers connected", m.Name, c["sync_peers_connected"], c["sync_peers"])
			}
		}
		return true, ""
	})
}
