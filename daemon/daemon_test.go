package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// msConfig is a Map-Server + Map-Resolver config on loopback with two sites,
// one per authentication algorithm, and a short registration timeout so
// expiry can be tested. %s is replaced by extra site tables.
const msConfig = `
[daemon]
roles = ["ms", "mr"]
log-level = "debug"

[control]
listen = ["127.0.0.1:0"]

[map-server]
registration-timeout = "%s"

[[map-server.site]]
name = "site-a"
authentication-key = "key-a"
algorithm = "hmac-sha-1"
eid-prefixes = ["10.1.0.0/16"]
proxy-reply = true

[[map-server.site]]
name = "site-b"
authentication-key = "key-b"
algorithm = "hmac-sha-256"
eid-prefixes = ["10.2.0.0/16", "iid:7/10.2.0.0/16"]
accept-more-specifics = true
proxy-reply = true
%s
[map-resolver]
map-servers = ["local"]
`

// testDaemon is a running in-process lispd.
type testDaemon struct {
	d      *Daemon
	path   string
	socket string
	logs   *syncBuffer
	addr   netip.AddrPort
	cancel context.CancelFunc
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startDaemon(t *testing.T, cfgText string) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "lispd.toml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	td := &testDaemon{path: path, socket: filepath.Join(dir, "run", "lispd.sock"), logs: &syncBuffer{}, done: make(chan error, 1)}
	td.d, err = New(cfg, Options{Stderr: td.logs, APISocket: td.socket})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	td.cancel = cancel
	go func() { td.done <- td.d.Run(ctx) }()
	waitFor(t, "control socket bound", func() bool { return len(td.d.ControlAddrs()) > 0 })
	td.addr = td.d.ControlAddrs()[0]
	waitFor(t, "api socket", func() bool { _, err := os.Stat(td.socket); return err == nil })
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-td.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("daemon did not stop within 5 s")
		}
		if t.Failed() {
			t.Logf("daemon logs:\n%s", td.logs.String())
		}
	})
	return td
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (td *testDaemon) counter(name string) uint64 { return td.d.counters()[name] }

// udpPeer is an ETR or ITR made of a UDP socket on loopback.
type udpPeer struct {
	t    *testing.T
	conn *net.UDPConn
}

func newPeer(t *testing.T) *udpPeer {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpPeer{t: t, conn: c}
}

func (p *udpPeer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *udpPeer) send(b []byte, to netip.AddrPort) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Fatal(err)
	}
}

// recv returns the next datagram, or nil after the timeout.
func (p *udpPeer) recv(timeout time.Duration) []byte {
	p.t.Helper()
	buf := make([]byte, 65535)
	p.conn.SetReadDeadline(time.Now().Add(timeout))
	n, _, err := p.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		p.t.Fatal(err)
	}
	return buf[:n]
}

// register builds a signed Map-Register for prefix with one RLOC.
func register(t *testing.T, alg wire.AlgorithmID, key string, nonce uint64, iid uint32, prefix string, rloc string) []byte {
	t.Helper()
	rec := wire.NewEIDRecord(iid, netip.MustParsePrefix(prefix))
	rec.RecordTTL = 1
	rec.Authoritative = true
	rec.Locators = []wire.Locator{{Priority: 1, Weight: 100, Local: true, Reachable: true, Address: wire.AddrFrom(netip.MustParseAddr(rloc))}}
	m := &wire.MapRegister{WantMapNotify: true, ProxyReply: true, Nonce: nonce, AlgorithmID: alg, Records: []wire.EIDRecord{rec}}
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Sign(b, []byte(key)); err != nil {
		t.Fatal(err)
	}
	return b
}

// mapRequest builds an ECM Map-Request for eid from itr.
func mapRequest(t *testing.T, itr netip.AddrPort, iid uint32, eid string, nonce uint64) []byte {
	t.Helper()
	a := netip.MustParseAddr(eid)
	req := &wire.MapRequest{
		Nonce:     nonce,
		SourceEID: wire.Address{AFI: wire.AFINone},
		ITRRLOCs:  []wire.Address{wire.AddrFrom(itr.Addr())},
		Records:   []wire.RequestRecord{wire.NewRequestRecord(iid, netip.PrefixFrom(a, a.BitLen()))},
	}
	// The inner IP header must be of the EID's family; an IPv4 ITR asking
	// for an IPv6 EID uses the unspecified address (the reply goes to the
	// ITR-RLOC at the inner source port).
	src := itr
	if src.Addr().Is4() != a.Is4() {
		src = netip.AddrPortFrom(netip.IPv6Unspecified(), itr.Port())
	}
	b, err := wire.NewECM(src, netip.AddrPortFrom(a, 4342), req).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reply waits for a Map-Reply with nonce at p.
func (p *udpPeer) reply(nonce uint64) *wire.MapReply {
	p.t.Helper()
	for {
		b := p.recv(3 * time.Second)
		if b == nil {
			p.t.Fatalf("no Map-Reply with nonce %x", nonce)
		}
		m, err := wire.Parse(b)
		if err != nil {
			p.t.Fatalf("bad reply: %v", err)
		}
		if r, ok := m.(*wire.MapReply); ok && r.Nonce == nonce {
			return r
		}
	}
}

func TestRegisterNotifyLookupBothAlgorithms(t *testing.T) {
	td := startDaemon(t, fmt.Sprintf(msConfig, "3m", ""))
	etr := newPeer(t)
	itr := newPeer(t)

	cases := []struct {
		alg    wire.AlgorithmID
		key    string
		iid    uint32
		prefix string
		rloc   string
		eid    string
	}{
		{wire.AlgHMACSHA196, "key-a", 0, "10.1.0.0/16", "192.0.2.1", "10.1.2.3"},
		{wire.AlgHMACSHA256128, "key-b", 0, "10.2.1.0/24", "192.0.2.2", "10.2.1.9"},
		{wire.AlgHMACSHA256128, "key-b", 7, "10.2.0.0/16", "192.0.2.3", "10.2.200.1"},
	}
	for i, c := range cases {
		nonce := uint64(0x1000 + i)
		etr.send(register(t, c.alg, c.key, nonce, c.iid, c.prefix, c.rloc), td.addr)
		b := etr.recv(3 * time.Second)
		if b == nil {
			t.Fatalf("%s: no Map-Notify", c.prefix)
		}
		if err := wire.Verify(b, []byte(c.key)); err != nil {
			t.Fatalf("%s: Map-Notify does not verify with the site key: %v", c.prefix, err)
		}
		m, err := wire.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		n, ok := m.(*wire.MapNotify)
		if !ok || n.Nonce != nonce || n.AlgorithmID != c.alg {
			t.Fatalf("%s: got %T %+v, want Map-Notify nonce %x alg %v", c.prefix, m, m, nonce, c.alg)
		}

		rn := uint64(0x2000 + i)
		itr.send(mapRequest(t, itr.addr(), c.iid, c.eid, rn), td.addr)
		r := itr.reply(rn)
		if len(r.Records) != 1 {
			t.Fatalf("%s: %d records", c.eid, len(r.Records))
		}
		iid, p, _ := r.Records[0].Prefix()
		if iid != c.iid || p.String() != c.prefix {
			t.Errorf("%s: reply for iid %d %s, want iid %d %s", c.eid, iid, p, c.iid, c.prefix)
		}
		if len(r.Records[0].Locators) != 1 || r.Records[0].Locators[0].Address.IP.String() != c.rloc {
			t.Errorf("%s: locators %+v, want %s", c.eid, r.Records[0].Locators, c.rloc)
		}
	}
	if got := td.counter("mapserver_register_ok"); got != 3 {
		t.Errorf("register_ok = %d, want 3", got)
	}

	// The API shows the registrations.
	regs, err := api.NewClient(td.socket).Registrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 3 {
		t.Fatalf("API shows %d registrations, want 3: %+v", len(regs), regs)
	}
}

func TestRefusedRegistersAreCounted(t *testing.T) {
	td := startDaemon(t, fmt.Sprintf(msConfig, "3m", ""))
	etr := newPeer(t)

	etr.send(register(t, wire.AlgHMACSHA196, "wrong-key", 1, 0, "10.1.0.0/16", "192.0.2.1"), td.addr)
	etr.send(register(t, wire.AlgHMACSHA196, "key-a", 2, 0, "10.9.0.0/16", "192.0.2.1"), td.addr)    // no site has it
	etr.send(register(t, wire.AlgHMACSHA196, "key-a", 3, 0, "10.1.0.0/8", "192.0.2.1"), td.addr)     // less specific than the site's
	etr.send(register(t, wire.AlgHMACSHA196, "key-a", 4, 0, "10.1.1.0/24", "192.0.2.1"), td.addr)    // more specific, not accepted by site-a
	etr.send(register(t, wire.AlgHMACSHA256128, "key-a", 5, 0, "10.1.0.0/16", "192.0.2.1"), td.addr) // wrong algorithm for the site
	etr.send([]byte{0x30, 0x00}, td.addr)                                                            // malformed

	waitFor(t, "refusals counted", func() bool {
		c := td.d.counters()
		return c["mapserver_register_auth_failure"] >= 2 &&
			c["mapserver_register_unknown_site"]+c["mapserver_register_prefix_not_allowed"] >= 2 &&
			c["control_received"] >= 6
	})
	if b := etr.recv(200 * time.Millisecond); b != nil {
		t.Errorf("a refused Map-Register was answered: %x", b)
	}
	if c := td.d.counters(); c["mapserver_register_ok"] != 0 {
		t.Errorf("register_ok = %d, want 0", c["mapserver_register_ok"])
	}
	var malformed uint64
	for name, v := range td.d.counters() {
		if strings.HasPrefix(name, "mapserver_malformed") {
			malformed += v
		}
	}
	if malformed != 1 {
		t.Errorf("malformed = %d, want 1 (counters %v)", malformed, td.d.counters())
	}
}

func TestRegistrationExpires(t *testing.T) {
	td := startDaemon(t, fmt.Sprintf(msConfig, "1s", ""))
	etr := newPeer(t)
	etr.send(register(t, wire.AlgHMACSHA196, "key-a", 1, 0, "10.1.0.0/16", "192.0.2.1"), td.addr)
	if etr.recv(3*time.Second) == nil {
		t.Fatal("no Map-Notify")
	}
	if n := len(td.d.MapServer().Registrations()); n != 1 {
		t.Fatalf("%d registrations, want 1", n)
	}
	waitFor(t, "registration expiry", func() bool { return len(td.d.MapServer().Registrations()) == 0 })
	if td.counter("mapserver_expired") != 1 {
		t.Errorf("expired = %d, want 1", td.counter("mapserver_expired"))
	}
	// Now an ITR gets a negative reply for the site's prefix (1-minute TTL).
	itr := newPeer(t)
	itr.send(mapRequest(t, itr.addr(), 0, "10.1.2.3", 9), td.addr)
	r := itr.reply(9)
	if len(r.Records) != 1 || len(r.Records[0].Locators) != 0 || r.Records[0].Action != wire.NativelyForward || r.Records[0].RecordTTL != 1 {
		t.Fatalf("want a negative Natively-Forward reply with TTL 1, got %+v", r.Records)
	}
}

func TestNegativeReplyPrefixes(t *testing.T) {
	td := startDaemon(t, fmt.Sprintf(msConfig, "3m", `
[[map-server.site]]
name = "site-c"
authentication-key = "key-c"
eid-prefixes = ["11.3.0.0/16", "2001:db8:1::/48"]
`))
	etr := newPeer(t)
	etr.send(register(t, wire.AlgHMACSHA256128, "key-b", 1, 0, "10.2.128.0/17", "192.0.2.2"), td.addr)
	if etr.recv(3*time.Second) == nil {
		t.Fatal("no Map-Notify")
	}
	itr := newPeer(t)
	cases := []struct {
		eid, want string
		ttl       uint32
	}{
		{"10.3.3.3", "10.3.0.0/16", 15},    // between site-b's 10.2/16 and nothing above
		{"11.2.0.1", "11.2.0.0/16", 15},    // next to site-c's 11.3/16
		{"10.1.2.3", "10.1.0.0/16", 1},     // configured, not registered
		{"10.2.1.1", "10.2.0.0/17", 1},     // in site-b's 10.2/16 beside the registered /17
		{"192.168.1.1", "128.0.0.0/1", 15}, // far from everything
		{"2001:db8:2::1", "2001:db8:2::/47", 15},
	}
	for i, c := range cases {
		nonce := uint64(100 + i)
		itr.send(mapRequest(t, itr.addr(), 0, c.eid, nonce), td.addr)
		r := itr.reply(nonce)
		_, p, _ := r.Records[0].Prefix()
		if p.String() != c.want || len(r.Records[0].Locators) != 0 || r.Records[0].RecordTTL != c.ttl {
			t.Errorf("%s: negative reply %s ttl %d with %d locators, want %s ttl %d",
				c.eid, p, r.Records[0].RecordTTL, len(r.Records[0].Locators), c.want, c.ttl)
		}
	}
}

func TestReloadKeepsRegistrations(t *testing.T) {
	td := startDaemon(t, fmt.Sprintf(msConfig, "3m", ""))
	etr := newPeer(t)
	etr.send(register(t, wire.AlgHMACSHA196, "key-a", 1, 0, "10.1.0.0/16", "192.0.2.1"), td.addr)
	if etr.recv(3*time.Second) == nil {
		t.Fatal("no Map-Notify")
	}

	// A bad config is refused and everything stays.
	if err := os.WriteFile(td.path, []byte("[daemon]\nroles = [\"ms\"]\nbogus = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := td.d.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("bad reload: err = %v, want one naming the bad key", err)
	}
	if n := len(td.d.MapServer().Registrations()); n != 1 {
		t.Fatalf("after a refused reload: %d registrations, want 1", n)
	}

	// Adding a site keeps site-a's registration and the new site works.
	next := fmt.Sprintf(msConfig, "3m", `
[[map-server.site]]
name = "site-c"
authentication-key = "key-c"
eid-prefixes = ["10.3.0.0/16"]
`)
	if err := os.WriteFile(td.path, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := td.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(td.d.MapServer().Registrations()); n != 1 {
		t.Fatalf("after adding a site: %d registrations, want 1", n)
	}
	etr.send(register(t, wire.AlgHMACSHA256128, "key-c", 2, 0, "10.3.0.0/16", "192.0.2.3"), td.addr)
	if etr.recv(3*time.Second) == nil {
		t.Fatal("the new site's Map-Register was not answered")
	}
	if n := len(td.d.MapServer().Registrations()); n != 2 {
		t.Fatalf("%d registrations, want 2", n)
	}

	// Removing site-a drops its registration only.
	noA := strings.Replace(next, `name = "site-a"
authentication-key = "key-a"
algorithm = "hmac-sha-1"
eid-prefixes = ["10.1.0.0/16"]`, `name = "site-a2"
authentication-key = "key-a"
algorithm = "hmac-sha-1"
eid-prefixes = ["10.8.0.0/16"]`, 1)
	if err := os.WriteFile(td.path, []byte(noA), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := td.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	regs := td.d.MapServer().Registrations()
	if len(regs) != 1 || regs[0].Site != "site-c" {
		t.Fatalf("after removing site-a: %+v, want only site-c's", regs)
	}
}

func TestStatusOverAPI(t *testing.T) {
	td := startDaemon(t, fmt.Sprintf(msConfig, "3m", ""))
	c := api.NewClient(td.socket)
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(st.Roles, ",") != "ms,mr" || st.PID != os.Getpid() || st.LogLevel != "debug" {
		t.Errorf("status = %+v", st)
	}
	if _, ok := st.Counters["mapserver_register_ok"]; !ok {
		t.Errorf("status counters lack mapserver_register_ok: %v", st.Counters)
	}
	if err := c.SetLogLevel(context.Background(), "warn"); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Status(context.Background()); st.LogLevel != "warn" {
		t.Errorf("log level = %q after set to warn", st.LogLevel)
	}
	if err := c.SetLogLevel(context.Background(), "loud"); err == nil {
		t.Error("an unknown log level was accepted")
	}
}

func TestUnavailableRoleRefused(t *testing.T) {
	cfg, err := config.Parse([]byte(`
[daemon]
roles = ["itr"]
`), "x.toml")
	if err != nil {
		t.Skipf("config does not parse an itr-only config yet: %v", err)
	}
	if _, err := New(cfg, Options{}); !errors.Is(err, ErrRoleNotAvailable) {
		t.Fatalf("New with role itr: err = %v, want ErrRoleNotAvailable", err)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := strings.Replace(fmt.Sprintf(msConfig, "3m", ""), `log-level = "debug"`,
		`log-level = "debug"`+"\nmetrics-listen = \""+addr+"\"", 1)
	td := startDaemon(t, cfg)
	etr := newPeer(t)
	etr.send(register(t, wire.AlgHMACSHA196, "key-a", 1, 0, "10.1.0.0/16", "192.0.2.1"), td.addr)
	if etr.recv(3*time.Second) == nil {
		t.Fatal("no Map-Notify")
	}
	var body string
	waitFor(t, "metrics endpoint", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	})
	for _, want := range []string{"lispd_mapserver_register_ok_total 1", "lispd_control_received_total", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
