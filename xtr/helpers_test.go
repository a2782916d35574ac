package xtr

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// sent is one datagram a recordingSender was given.
type sent struct {
	to  netip.AddrPort
	b   []byte
	msg wire.Message
}

// recordingSender records what is sent. fail makes Send fail.
type recordingSender struct {
	mu   sync.Mutex
	msgs []sent
	fail error
}

func (s *recordingSender) Send(b []byte, to netip.AddrPort) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	c := append([]byte(nil), b...)
	m, _ := wire.Parse(c)
	s.msgs = append(s.msgs, sent{to: to, b: c, msg: m})
	return nil
}

// take returns and forgets what was sent so far.
func (s *recordingSender) take() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.msgs
	s.msgs = nil
	return out
}

// waitSent waits until n datagrams were sent and returns them all.
func (s *recordingSender) waitSent(t *testing.T, n int) []sent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		got := len(s.msgs)
		s.mu.Unlock()
		if got >= n {
			return s.take()
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d datagrams, have %d", n, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// counter returns the named counter.
func counter(cs []dataplane.Counter, name string) uint64 {
	for _, c := range cs {
		if c.Name == name {
			return c.Value
		}
	}
	panic("no counter " + name)
}

var (
	mr1   = netip.MustParseAddrPort("192.0.2.100:4342")
	mr2   = netip.MustParseAddrPort("192.0.2.101:4342")
	rlocA = netip.MustParseAddr("192.0.2.1")
	rlocB = netip.MustParseAddr("192.0.2.2")
	rlocC = netip.MustParseAddr("192.0.2.3")
)

// newTestITR returns an ITR with a fake clock and a recording sender.
func newTestITR(t *testing.T, mod func(*ITRConfig)) (*ITR, *recordingSender, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	out := &recordingSender{}
	cfg := ITRConfig{
		MapResolvers: []netip.AddrPort{mr1, mr2},
		RLOCs:        []netip.Addr{rlocA},
		Clock:        clk.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	i, err := NewITR(cfg, out)
	if err != nil {
		t.Fatal(err)
	}
	return i, out, clk
}

// insert puts a mapping into c.
func insert(t *testing.T, c *mapcache.Cache, e *mapcache.Entry) *mapcache.Entry {
	t.Helper()
	if e.TTL == 0 {
		e.TTL = time.Hour
	}
	if _, err := c.Insert(e); err != nil {
		t.Fatal(err)
	}
	return e
}

func rlocs(addrs ...string) []mapcache.RLOC {
	var out []mapcache.RLOC
	for _, a := range addrs {
		out = append(out, mapcache.RLOC{Addr: netip.MustParseAddr(a), Priority: 1, Weight: 100, Reachable: true})
	}
	return out
}

// ipv4Packet builds an IPv4 UDP packet.
func ipv4Packet(src, dst string, sport, dport uint16, payload int) []byte {
	p := make([]byte, 28+payload)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	p[6] = 0x40 // DF
	p[8] = 64
	p[9] = 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[10:12], ipChecksum(p[:20]))
	binary.BigEndian.PutUint16(p[20:22], sport)
	binary.BigEndian.PutUint16(p[22:24], dport)
	binary.BigEndian.PutUint16(p[24:26], uint16(8+payload))
	return p
}

// icmpEcho builds an IPv4 ICMP echo request (or reply) with a valid ICMP
// checksum.
func icmpEcho(src, dst string, reply bool, id, seq uint16) []byte {
	p := make([]byte, 20+8+16)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	p[8] = 64
	p[9] = 1
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[10:12], ipChecksum(p[:20]))
	icmp := p[20:]
	if reply {
		icmp[0] = 0
	} else {
		icmp[0] = 8
	}
	binary.BigEndian.PutUint16(icmp[4:6], id)
	binary.BigEndian.PutUint16(icmp[6:8], seq)
	copy(icmp[8:], "lispd-echo-data!")
	binary.BigEndian.PutUint16(icmp[2:4], ipChecksum(icmp))
	return p
}

func ipChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// mapReply encodes a Map-Reply with one record for prefix.
func mapReply(t *testing.T, nonce uint64, iid uint32, prefix string, ttl uint32, locs ...string) []byte {
	t.Helper()
	rec := wire.NewEIDRecord(iid, netip.MustParsePrefix(prefix))
	rec.RecordTTL = ttl
	rec.Authoritative = true
	for k, l := range locs {
		rec.Locators = append(rec.Locators, wire.Locator{Priority: uint8(1 + k), Weight: 100, Reachable: true, Address: wire.AddrFrom(netip.MustParseAddr(l))})
	}
	if len(locs) == 0 {
		rec.Action = wire.NativelyForward
	}
	m := wire.MapReply{Nonce: nonce, Records: []wire.EIDRecord{rec}}
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// innerRequest returns the Map-Request inside an ECM datagram.
func innerRequest(t *testing.T, s sent) (*wire.ECM, *wire.MapRequest) {
	t.Helper()
	ecm, ok := s.msg.(*wire.ECM)
	if !ok {
		t.Fatalf("sent %T to %s, want an ECM", s.msg, s.to)
	}
	req, ok := ecm.Inner.(*wire.MapRequest)
	if !ok {
		t.Fatalf("ECM carries %T", ecm.Inner)
	}
	return ecm, req
}

// discardConn is a Conn that accepts and counts writes and blocks reads
// until closed.
type discardConn struct {
	addr   netip.AddrPort
	mu     sync.Mutex
	n      int
	closed chan struct{}
	once   sync.Once
}

func newDiscardConn(a string) *discardConn {
	return &discardConn{addr: netip.MustParseAddrPort(a), closed: make(chan struct{})}
}

func (c *discardConn) Read([][]byte, []int, []dataplane.Meta, int) (int, error) {
	<-c.closed
	return 0, dataplane.ErrClosed
}

func (c *discardConn) Write(b [][]byte, _ []dataplane.Meta, _ int) (int, error) {
	c.mu.Lock()
	c.n += len(b)
	c.mu.Unlock()
	return len(b), nil
}

func (c *discardConn) BatchSize() int            { return 64 }
func (c *discardConn) LocalAddr() netip.AddrPort { return c.addr }
func (c *discardConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// discardDevice is a Device that counts writes and blocks reads until
// closed.
type discardDevice struct {
	discardConn
}

func newDiscardDevice() *discardDevice {
	return &discardDevice{discardConn{closed: make(chan struct{})}}
}

func (d *discardDevice) Read([][]byte, []int, int) (int, error) {
	<-d.closed
	return 0, dataplane.ErrClosed
}
func (d *discardDevice) Write(b [][]byte, _ int) (int, error) {
	d.mu.Lock()
	d.n += len(b)
	d.mu.Unlock()
	return len(b), nil
}
func (d *discardDevice) MTU() (int, error) { return 1500, nil }
func (d *discardDevice) Name() string      { return "discard" }
