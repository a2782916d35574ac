//go:build linux

package hostile

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

var builder Builder

func TestMain(m *testing.M) {
	code := m.Run()
	if err := builder.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// addr returns 127.66.c.h, the address of host h in the subnet of case c.
// Linux routes all of 127/8 to lo, so each case has hosts of its own
// without touching any interface.
func addr(c, h byte) netip.Addr { return netip.AddrFrom4([4]byte{127, 66, c, h}) }

// ap returns 127.66.c.h:port.
func ap(c, h byte, port uint16) netip.AddrPort { return netip.AddrPortFrom(addr(c, h), port) }

// startLispd starts a lispd named name from the config config returns for
// its API socket path, and stops it when the test ends (dumping the tail
// of its logs if the test failed).
func startLispd(t *testing.T, name string, config func(socket string) string) *Lispd {
	t.Helper()
	bin, err := builder.Binary(context.Background())
	if err != nil {
		t.Fatalf("building lispd: %v", err)
	}
	l := NewLispd(bin, t.TempDir(), name)
	t.Cleanup(func() {
		l.Stop()
		if t.Failed() {
			t.Logf("%s logs (tail):\n%s", l.Name, l.LogTail(6000))
		}
	})
	if err := l.Start(context.Background(), config(l.Socket)); err != nil {
		t.Fatal(err)
	}
	return l
}

// restart starts a stopped lispd again from its config file.
func restart(t *testing.T, l *Lispd) {
	t.Helper()
	if err := l.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// counters returns l's counters.
func counters(t *testing.T, l *Lispd) map[string]uint64 {
	t.Helper()
	c, err := l.Counters(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sumPrefix sums the counters whose name starts with prefix.
func sumPrefix(c map[string]uint64, prefix string) uint64 {
	var n uint64
	for k, v := range c {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// poll is the interval at which eventually checks its condition.
const poll = 20 * time.Millisecond

// eventually polls cond until it holds or timeout passes, and returns
// whether it held and what it said last.
func eventually(timeout time.Duration, cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok || time.Now().After(deadline) {
			return ok, last
		}
		time.Sleep(poll)
	}
}

// waitFor waits until cond holds, failing the test with what cond said
// last if it does not within timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if ok, last := eventually(timeout, cond); !ok {
		t.Fatalf("%s: not within %v (%s)", what, timeout, last)
	}
}

// waitCounter waits until l's counter name reaches at least want.
func waitCounter(t *testing.T, l *Lispd, name string, want uint64, timeout time.Duration) {
	t.Helper()
	if ok, last := eventually(timeout, counterAtLeast(t, l, name, want)); !ok {
		t.Fatalf("%s: %s >= %d: not within %v (%s)", l.Name, name, want, timeout, last)
	}
}

// expectCounter is waitCounter that marks the test failed and goes on.
func expectCounter(t *testing.T, l *Lispd, name string, want uint64, timeout time.Duration) {
	t.Helper()
	if ok, last := eventually(timeout, counterAtLeast(t, l, name, want)); !ok {
		t.Errorf("%s: %s >= %d: not within %v (%s)", l.Name, name, want, timeout, last)
	}
}

// counterAtLeast is the condition that l's counter name is at least want.
func counterAtLeast(t *testing.T, l *Lispd, name string, want uint64) func() (bool, string) {
	return func() (bool, string) {
		c, err := l.Counters(t.Context())
		if err != nil {
			return false, err.Error()
		}
		return c[name] >= want, fmt.Sprintf("%s = %d", name, c[name])
	}
}

// waitLog waits until l logged a line containing s, and marks the test
// failed (and goes on) if it does not within timeout.
func waitLog(t *testing.T, l *Lispd, s string, timeout time.Duration) {
	t.Helper()
	if ok, _ := eventually(timeout, func() (bool, string) { return strings.Contains(l.Logs(), s), "" }); !ok {
		t.Errorf("%s did not log %q within %v", l.Name, s, timeout)
	}
}

// requireTUN skips the test unless lispd can create its TUN device: the
// itr and etr roles of the real binary need one (CAP_NET_ADMIN and
// /dev/net/tun), which CI, running as root, has.
func requireTUN(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the xTR roles of the lispd binary create a TUN device, which needs root (CAP_NET_ADMIN): run as root, as CI does")
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("the xTR roles of the lispd binary create a TUN device, which needs /dev/net/tun: %v", err)
	}
	f.Close()
}

// listenPeer binds a Peer to a (port 0: any) for the test's duration.
func listenPeer(t *testing.T, a netip.AddrPort) *Peer {
	t.Helper()
	p, err := ListenPeer(a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// send sends b from p to to.
func send(t *testing.T, p *Peer, b []byte, to netip.AddrPort) {
	t.Helper()
	if err := p.Send(b, to); err != nil {
		t.Fatal(err)
	}
}

// lookup asks the Map-Resolver at mr for eid as an ITR at p would, and
// returns the Map-Reply (nil if none came within timeout).
func lookup(t *testing.T, p *Peer, mr netip.AddrPort, eid netip.Addr, timeout time.Duration) *wire.MapReply {
	t.Helper()
	nonce := rand.Uint64()
	b, err := MapRequestECM(p.Addr(), eid, nonce)
	if err != nil {
		t.Fatal(err)
	}
	send(t, p, b, mr)
	got, _, err := p.Recv(timeout, func(b []byte, _ netip.AddrPort) bool {
		n, ok := NonceOf(b)
		return ok && n == nonce && IsType(b, wire.TypeMapReply)
	})
	if err != nil {
		return nil
	}
	return ParseMapReply(got)
}

// rlocsOf returns the locator addresses of the reply's record covering
// eid, and whether there is one with locators (a positive answer).
func rlocsOf(r *wire.MapReply, eid netip.Addr) ([]netip.Addr, bool) {
	if r == nil {
		return nil, false
	}
	for _, rec := range r.Records {
		_, p, ok := rec.Prefix()
		if !ok || !p.Contains(eid) || len(rec.Locators) == 0 {
			continue
		}
		var out []netip.Addr
		for _, l := range rec.Locators {
			out = append(out, l.Address.IP)
		}
		return out, true
	}
	return nil, false
}

// register sends the Map-Register b from p to the Map-Server at ms and
// waits for its Map-Notify (b must ask for one).
func register(t *testing.T, p *Peer, ms netip.AddrPort, b []byte) {
	t.Helper()
	nonce, _ := NonceOf(b)
	for try := range 3 {
		send(t, p, b, ms)
		_, _, err := p.Recv(2*time.Second, func(b []byte, _ netip.AddrPort) bool {
			n, ok := NonceOf(b)
			return ok && n == nonce && IsType(b, wire.TypeMapNotify)
		})
		if err == nil {
			return
		}
		t.Logf("no Map-Notify for nonce %#x (try %d): %v", nonce, try+1, err)
	}
	t.Fatalf("the Map-Server at %s never acknowledged the Map-Register with nonce %#x", ms, nonce)
}

// msConfig is the config of a Map-Server and Map-Resolver listening on
// listen, with the given extra [map-server] keys and site tables.
func msConfig(socket string, listen netip.AddrPort, msKeys, sites string) string {
	return fmt.Sprintf(`# lab/hostile: Map-Server and Map-Resolver under attack
[daemon]
roles = ["ms", "mr"]
api-socket = %q
log-level = "info"

[control]
listen = [%q]

[map-server]
%s
%s
[map-resolver]
map-servers = ["local"]
`, socket, listen.String(), msKeys, sites)
}

// site is one [[map-server.site]] table.
func site(name, key, prefix string, extra string) string {
	return fmt.Sprintf(`
[[map-server.site]]
name = %q
authentication-key = %q
eid-prefixes = [%q]
accept-more-specifics = true
%s
`, name, key, prefix, extra)
}

// registerMsg builds a signed Map-Register of prefix to rlocs, asking for
// a Map-Notify, without xTR-ID (as OOR sends them).
func registerMsg(t *testing.T, key string, nonce uint64, prefix netip.Prefix, rlocs ...netip.Addr) []byte {
	t.Helper()
	b, err := SignedRegister(wire.MapRegister{ProxyReply: true, WantMapNotify: true, Nonce: nonce, Records: []wire.EIDRecord{Record(prefix, rlocs...)}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// registrations returns the Map-Server's registrations as sorted
// "prefix xtr-source rlocs" lines.
func registrations(t *testing.T, ms *Lispd) []string {
	t.Helper()
	regs, err := ms.API().Registrations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range regs {
		var rl []string
		for _, l := range r.RLOCs {
			rl = append(rl, fmt.Sprint(l.Address))
		}
		out = append(out, fmt.Sprintf("%s %s %v", r.EIDPrefix, r.RegisteredBy.Addr(), rl))
	}
	slices.Sort(out)
	return out
}

// sendChunk is how many datagrams sendPaced sends before it waits for lispd
// to have received them.
const sendChunk = 100

// sendPaced sends the datagrams from p to to in chunks, waiting after each
// until l counted them received (or dropped by the kernel), so that the
// socket buffers never overflow and every datagram is looked at.
func sendPaced(t *testing.T, l *Lispd, p *Peer, to netip.AddrPort, msgs [][]byte) {
	t.Helper()
	seen := func(c map[string]uint64) uint64 {
		return c["control_received"] + c["control_drops_priority"] + c["control_drops_requests"]
	}
	base := seen(counters(t, l))
	for i := 0; i < len(msgs); i += sendChunk {
		end := min(i+sendChunk, len(msgs))
		for _, b := range msgs[i:end] {
			send(t, p, b, to)
		}
		want := base + uint64(end)
		waitFor(t, 10*time.Second, fmt.Sprintf("%s received %d datagrams", l.Name, end), func() (bool, string) {
			c, err := l.Counters(t.Context())
			if err != nil {
				return false, err.Error()
			}
			return seen(c) >= want, fmt.Sprintf("received+dropped %d of %d", seen(c)-base, end)
		})
	}
}
