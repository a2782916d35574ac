//go:build linux

package hostile

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Case 4: with map-server.state-file set, registrations survive a restart
// of the Map-Server, clean (SIGTERM) or a crash (SIGKILL once the state
// was written): the first Map-Request after the restart is answered, with
// the registration's remaining lifetime. A corrupt or crafted state file
// does not stop the Map-Server, which starts empty and serves new
// registrations.

const (
	restartCase = 4
	restartKey  = "hostile-restart-site-key"
)

func TestRestartKeepsRegistrations(t *testing.T) {
	t.Parallel()
	msAddr := ap(restartCase, 1, ControlPort)
	var state string
	ms := startLispd(t, "map-server", func(sock string) string {
		state = filepath.Join(filepath.Dir(sock), "registrations.db")
		return msConfig(sock, msAddr, fmt.Sprintf("state-file = %q", state), site("restart", restartKey, "198.19.0.0/16", ""))
	})
	etr := listenPeer(t, ap(restartCase, 20, 0))
	itr := listenPeer(t, ap(restartCase, 21, 0))

	for i, tc := range []struct {
		name string
		stop func()
	}{
		{"sigterm", ms.Stop},
		{"sigkill", ms.Kill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(10 + i), 0}), 24)
			eid := prefix.Addr().Next()
			rloc := addr(restartCase, byte(120+i))
			writes := counters(t, ms)["mapserver_state_writes"]
			register(t, etr, msAddr, registerMsg(t, restartKey, rand.Uint64(), prefix, rloc))
			if tc.name == "sigkill" {
				// A crash loses only what was not yet written.
				waitCounter(t, ms, "mapserver_state_writes", writes+1, 5*time.Second)
			}
			expires := expiry(t, ms, prefix)
			tc.stop()
			restart(t, ms)
			// The first Map-Request after the restart is answered.
			got, ok := rlocsOf(lookup(t, itr, msAddr, eid, time.Second), eid)
			if !ok || len(got) != 1 || got[0] != rloc {
				t.Fatalf("right after the restart, a Map-Request for %s got %v, want %s", eid, got, rloc)
			}
			if c := counters(t, ms); c["mapserver_state_restored"] == 0 {
				t.Errorf("mapserver_state_restored is 0 after the restart")
			}
			if d := expiry(t, ms, prefix).Sub(expires); d < -time.Second || d > time.Second {
				t.Errorf("the restored registration expires %v later than before the restart: its lifetime was not kept", d)
			}
		})
	}

	t.Run("hostile-state-file", func(t *testing.T) {
		ms.Stop()
		good, err := os.ReadFile(state)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range corruptStates(good) {
			t.Run(tc.name, func(t *testing.T) {
				if err := os.WriteFile(state, tc.data, 0o600); err != nil {
					t.Fatal(err)
				}
				restart(t, ms)
				defer ms.Stop()
				// Whatever the file held, the Map-Server runs, and
				// serves only what was registered (nothing, or the
				// restored registrations as they were).
				eid := netip.MustParseAddr("198.19.10.1")
				if got, ok := rlocsOf(lookup(t, itr, msAddr, eid, 2*time.Second), eid); ok && (len(got) != 1 || got[0] != addr(restartCase, 120)) {
					t.Errorf("from a %s state file the Map-Server serves %v for %s", tc.name, got, eid)
				}
				prefix := netip.MustParsePrefix("198.19.20.0/24")
				register(t, etr, msAddr, registerMsg(t, restartKey, rand.Uint64(), prefix, addr(restartCase, 130)))
				assertServed(t, itr, msAddr, prefix.Addr().Next(), addr(restartCase, 130))
				if line := lastLine(ms.LogTail(1<<16), "state file"); line == "" {
					t.Errorf("a %s state file was not logged", tc.name)
				} else {
					t.Log(line)
				}
			})
		}
	})
}

// lastLine returns the last line of logs that contains s, or "".
func lastLine(logs, s string) string {
	lines := strings.Split(logs, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return lines[i]
		}
	}
	return ""
}

// expiry returns when the Map-Server's registration of prefix expires.
func expiry(t *testing.T, ms *Lispd, prefix netip.Prefix) time.Time {
	t.Helper()
	regs, err := ms.API().Registrations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regs {
		if r.EIDPrefix == prefix {
			return r.Expires
		}
	}
	t.Fatalf("no registration of %s", prefix)
	return time.Time{}
}

// stateVariant is a hostile state file.
type stateVariant struct {
	name string
	data []byte
}

// corruptStates returns hostile variants of the state file good: empty,
// truncated, a flipped bit, random bytes, and crafted ones whose checksum
// was recomputed (a registration count and a registration length of 2^32-1,
// a body cut short), which only the decoder's own bounds checks stop.
func corruptStates(good []byte) []stateVariant {
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	resum := func(b []byte) []byte {
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
		return b
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0x10
	random := make([]byte, len(good))
	for i := range random {
		random[i] = byte(rand.Uint32())
	}
	// The header: magic [8] | version u16 | reserved u16 | written i64 |
	// count u32, then the first registration's length u32.
	const countOff, firstLenOff = 20, 24
	hugeCount := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(hugeCount[countOff:], 0xffffffff)
	hugeLen := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(hugeLen[firstLenOff:], 0xffffffff)
	cut := append(append([]byte(nil), good[:len(good)/2]...), 0, 0, 0, 0)
	return []stateVariant{
		{"empty", nil},
		{"truncated", good[:len(good)/2]},
		{"bit-flipped", flipped},
		{"random", random},
		{"crafted-count", resum(hugeCount)},
		{"crafted-length", resum(hugeLen)},
		{"crafted-cut", resum(cut)},
	}
}
