package xtr

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// fakeMapServer answers the ETR's Map-Registers with Map-Notifies while it
// is up and remembers what they registered; down, it drops them and
// forgets (a restart without a state file).
type fakeMapServer struct {
	t          *testing.T
	e          *ETR
	out        *recordingSender
	up         bool
	registered map[netip.Prefix]bool
	registers  int // Map-Registers it saw, up or down
}

func newFakeMapServer(t *testing.T, e *ETR, out *recordingSender) *fakeMapServer {
	return &fakeMapServer{t: t, e: e, out: out, up: true, registered: map[netip.Prefix]bool{}}
}

// serve handles what the ETR sent since the last call.
func (m *fakeMapServer) serve() {
	for _, s := range m.out.take() {
		reg, ok := s.msg.(*wire.MapRegister)
		if !ok || s.to != msAddr {
			continue
		}
		m.registers++
		if !m.up {
			continue
		}
		for _, r := range reg.Records {
			_, p, _ := r.Prefix()
			m.registered[p] = true
		}
		m.e.HandlePacket(notifyFor(m.t, reg, msKey), msAddr, netip.Addr{})
	}
}

func (m *fakeMapServer) setUp(up bool) {
	m.up = up
	if !up {
		clear(m.registered)
	}
}

// bigDatabase is 300 /24s: several Map-Registers a round.
func bigDatabase(c *ETRConfig) {
	c.Database = nil
	for k := range 300 {
		c.Database = append(c.Database, Mapping{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(k >> 8), byte(k), 0}), 24),
			RLOCs: []Locator{{Addr: rlocA, Priority: 1, Weight: 100}}})
	}
}

// TestETRReregistersWhenMapServerReturns: while its Map-Server is down the
// ETR keeps retrying every few seconds (before: backing off to the register
// interval), so that the whole database is registered again within
// registerRetryMax of the Map-Server coming back (before: up to a minute of
// negative answers).
func TestETRReregistersWhenMapServerReturns(t *testing.T) {
	e, out, clk := newTestETR(t, bigDatabase)
	ms := newFakeMapServer(t, e, out)
	tick := func() {
		e.onTick(clk.Now())
		ms.serve()
	}
	tick()
	if len(ms.registered) != 300 || e.Registrations()[0].State != StateUp {
		t.Fatalf("registered %d prefixes, state %s", len(ms.registered), e.Registrations()[0].State)
	}
	perRound := ms.registers
	ms.setUp(false)
	for range 10 * 60 {
		clk.Advance(time.Second)
		tick()
	}
	seen := ms.registers
	for range 60 {
		clk.Advance(time.Second)
		tick()
	}
	if rounds := (ms.registers - seen) / perRound; rounds < 10 {
		t.Fatalf("%d rounds of Map-Registers in the last minute the Map-Server was down: it retries too seldom", rounds)
	}
	ms.setUp(true)
	back := clk.Now()
	for len(ms.registered) < 300 {
		if clk.Now().Sub(back) > registerRetryMax {
			t.Fatalf("%d of 300 prefixes registered %v after the Map-Server came back", len(ms.registered), clk.Now().Sub(back))
		}
		clk.Advance(time.Second)
		tick()
	}
	t.Logf("registered again %v after the Map-Server came back", clk.Now().Sub(back))
	if s := e.Registrations()[0]; s.State != StateUp {
		t.Fatalf("state %s", s.State)
	}
	// Up again, it registers at the register interval.
	ms.registers = 0
	for range 59 {
		clk.Advance(time.Second)
		tick()
	}
	if ms.registers != 0 {
		t.Fatalf("%d Map-Registers within the interval once acknowledged", ms.registers)
	}
}

// TestETRStaleAckKeepsRetrying: the acknowledgment of an earlier round
// (here one sent before the database changed) shows the Map-Server is
// there but not that it has the last round: the ETR registers again a
// second later (before: it took the old ack for the new round and waited a
// whole interval).
func TestETRStaleAckKeepsRetrying(t *testing.T) {
	e, out, clk := newTestETR(t, nil)
	e.onTick(clk.Now())
	old := out.take()[0].msg.(*wire.MapRegister)
	clk.Advance(500 * time.Millisecond)
	cfg := testETRConfig(clk)
	cfg.Database[0].RLOCs[0].Weight = 10
	if err := e.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	e.onTick(clk.Now())
	if n := len(out.take()); n != 1 {
		t.Fatalf("%d Map-Registers after the change", n)
	}
	e.HandlePacket(notifyFor(t, old, msKey), msAddr, netip.Addr{})
	if s := e.Registrations()[0]; s.State != StateUp {
		t.Fatalf("the Map-Server answered; state %s", s.State)
	}
	clk.Advance(time.Second)
	e.onTick(clk.Now())
	sent := out.take()
	if len(sent) != 1 {
		t.Fatalf("%d Map-Registers a second after a stale ack", len(sent))
	}
	if w := sent[0].msg.(*wire.MapRegister).Records[0].Locators[0].Weight; w != 10 {
		t.Fatalf("registered weight %d, want the new database", w)
	}
}

// TestETRUnsolicitedNotifyWhileDown: a Map-Notify from a Map-Server the ETR
// has had no answer from shows it is back: the ETR registers at once
// instead of at its next retry.
func TestETRUnsolicitedNotifyWhileDown(t *testing.T) {
	e, out, clk := newTestETR(t, nil)
	for range 120 {
		e.onTick(clk.Now())
		clk.Advance(time.Second)
	}
	out.take()
	// The last register went a second or more ago; the next is due later.
	for {
		e.onTick(clk.Now())
		if len(out.take()) != 0 {
			break
		}
		clk.Advance(time.Second)
	}
	clk.Advance(2 * time.Second)
	e.onTick(clk.Now())
	if len(out.take()) != 0 {
		t.Fatal("retried within 2 s at the capped backoff")
	}
	n := wire.MapNotify{Nonce: 0xabcdef, AlgorithmID: wire.AlgHMACSHA256128,
		Records: []wire.EIDRecord{wire.NewEIDRecord(0, netip.MustParsePrefix("10.1.0.0/16"))}}
	b, _ := n.AppendBinary(nil)
	if err := wire.Sign(b, msKey); err != nil {
		t.Fatal(err)
	}
	e.HandlePacket(b, msAddr, netip.Addr{})
	out.take() // the Map-Notify-Ack
	e.onTick(clk.Now())
	sent := out.take()
	if len(sent) != 1 {
		t.Fatalf("%d datagrams after the Map-Server showed up, want a Map-Register at once", len(sent))
	}
	if _, ok := sent[0].msg.(*wire.MapRegister); !ok {
		t.Fatalf("sent %T", sent[0].msg)
	}
}

// TestETRRegisterNoncesIncrease: Map-Register nonces count wall-clock
// nanoseconds and increase, which lets the Map-Server refuse old copies.
func TestETRRegisterNoncesIncrease(t *testing.T) {
	e, out, clk := newTestETR(t, bigDatabase)
	before := uint64(time.Now().UnixNano())
	e.onTick(clk.Now())
	var last uint64
	for _, s := range out.take() {
		n := s.msg.(*wire.MapRegister).Nonce
		if n <= last || n < before || n > uint64(time.Now().UnixNano())+uint64(time.Second) {
			t.Fatalf("nonce %d after %d (now %d)", n, last, time.Now().UnixNano())
		}
		last = n
	}
}
