package lan

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/lab/traffic"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	usr1 = netip.MustParseAddr("192.0.2.11")
	usr2 = netip.MustParseAddr("192.0.2.12")
	vip  = netip.MustParseAddr("192.0.2.1")
	dst1 = netip.MustParseAddr("198.18.1.1")
	dst2 = netip.MustParseAddr("198.18.2.1")
)

func readOne(t *testing.T, dev dataplane.Device) []byte {
	t.Helper()
	bufs := [][]byte{make([]byte, bufSize)}
	sizes := []int{0}
	done := make(chan error, 1)
	go func() {
		_, err := dev.Read(bufs, sizes, dataplane.OutOffset)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no packet within 5 s")
	}
	return bufs[0][dataplane.OutOffset : dataplane.OutOffset+sizes[0]]
}

func write(t *testing.T, dev dataplane.Device, pkt []byte) {
	t.Helper()
	b := make([]byte, dataplane.OutOffset+len(pkt))
	copy(b[dataplane.OutOffset:], pkt)
	if n, err := dev.Write([][]byte{b}, dataplane.OutOffset); n != 1 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLANGatewayAndFailure(t *testing.T) {
	led, err := traffic.NewLedger([]traffic.Flow{
		{ID: 1, Host: "USR1", Src: usr1, Dst: dst1},
		{ID: 2, Host: "USR2", Src: usr2, Dst: dst2},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l := New(led, nil)
	r1, l1 := dataplane.NewMemDevicePair("itr1", "lan-itr1", 1500, 0)
	r2, l2 := dataplane.NewMemDevicePair("itr2", "lan-itr2", 1500, 0)
	for _, c := range []struct {
		n string
		d dataplane.Device
	}{{"ITR1", l1}, {"ITR2", l2}} {
		if err := l.AddRouter(c.n, c.d); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.AddHost("USR1", usr1, vip); err != nil {
		t.Fatal(err)
	}
	if err := l.AddHost("USR2", usr2, vip); err != nil {
		t.Fatal(err)
	}
	if err := l.AddHost("USR1", usr2, vip); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate host: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		_ = r1.Close()
		_ = r2.Close()
	}()

	// No gateway claimed yet: dropped.
	req := func(id, seq uint16) []byte {
		b, err := led.Request(id, seq)
		if err != nil {
			t.Fatal(err)
		}
		if err := led.Sent(b, time.Now()); err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := l.Send("USR1", req(1, 1)); !errors.Is(err, ErrDropped) {
		t.Errorf("send before any GARP: %v", err)
	}
	if err := l.GARP(vip, "ITR1"); err != nil {
		t.Fatal(err)
	}
	// USR1 -> ITR1, the router answers (as if the destination did).
	if err := l.Send("USR1", req(1, 2)); err != nil {
		t.Fatal(err)
	}
	got := readOne(t, r1)
	reply, err := led.Answer(got, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write(t, r1, reply)
	waitFor(t, "reply delivered", func() bool { return l.Stats()["ITR1"].Delivered == 1 })

	// ITR1 fails: USR2's request is lost in the gap; a reply ITR1's ETR
	// still decapsulates is dropped at its dead link.
	failAt := time.Now()
	if err := l.SetLinkUp("ITR1", false); err != nil {
		t.Fatal(err)
	}
	if err := l.Send("USR2", req(2, 1)); !errors.Is(err, ErrDropped) {
		t.Errorf("send to a dead gateway: %v", err)
	}
	lateReq := req(2, 2)
	if _, err := led.Answer(lateReq, time.Now()); err != nil { // reached the destination some other way
		t.Fatal(err)
	}
	lateReply, _ := traffic.Echo{Src: dst2, Dst: usr2, Type: traffic.EchoReply, ID: 2, Seq: 2}.AppendBinary(nil)
	write(t, r1, lateReply)
	waitFor(t, "reply dropped", func() bool { return l.Stats()["ITR1"].Dropped == 1 })

	// ITR2 claims the address: traffic flows through it.
	if err := l.GARP(vip, "ITR2"); err != nil {
		t.Fatal(err)
	}
	switchAt := time.Now()
	if err := l.Send("USR2", req(2, 3)); err != nil {
		t.Fatal(err)
	}
	if e, err := traffic.ParseEcho(readOne(t, r2)); err != nil || e.Seq != 3 {
		t.Fatalf("ITR2 got %+v, %v", e, err)
	}
	// Something that is not an echo reply is counted, not delivered.
	write(t, r2, []byte{0x45, 0, 0})
	waitFor(t, "foreign counted", func() bool { return l.Stats()["ITR2"].Foreign == 1 })

	if mv := l.ARPMoves(); len(mv) != 2 || mv[1].Router != "ITR2" || l.Resolve(vip) != "ITR2" {
		t.Errorf("ARP moves %+v", mv)
	}
	st := l.Stats()
	if st["ITR1"].Handed != 1 || st["ITR1"].DeadLink != 1 || st["ITR2"].Handed != 1 {
		t.Errorf("stats %+v", st)
	}
	s := led.Classify(start, traffic.ClassifyOptions{FailAt: failAt, Failed: "ITR1", SwitchAt: map[string]time.Time{"USR2": switchAt}})
	if s.Flows[0].Before[traffic.Delivered] != 1 || s.Flows[0].Before[traffic.LostUnseen] != 0 || s.Flows[0].Before[traffic.LostSwitchover] != 1 {
		t.Errorf("flow 1 before: %v", s.Flows[0].Before)
	}
	if a := s.Flows[1].After; a[traffic.LostSwitchover] != 1 || a[traffic.LostReturnFailed] != 1 || a[traffic.LostAtITR] != 1 {
		t.Errorf("flow 2 after: %v", a)
	}
	if err := l.SetLinkUp("nobody", true); !errors.Is(err, ErrUnknown) {
		t.Error(err)
	}
	if err := l.Send("nobody", nil); !errors.Is(err, ErrUnknown) {
		t.Error(err)
	}
	if err := l.GARP(vip, "nobody"); !errors.Is(err, ErrUnknown) {
		t.Error(err)
	}
}

func TestResponder(t *testing.T) {
	led, err := traffic.NewLedger([]traffic.Flow{{ID: 1, Host: "USR1", Src: usr1, Dst: dst1}})
	if err != nil {
		t.Fatal(err)
	}
	xtrEnd, lanEnd := dataplane.NewMemDevicePair("rx1", "lan-rx1", 1500, 0)
	defer xtrEnd.Close()
	r := NewResponder(lanEnd, led, []netip.Addr{dst1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	req, _ := led.Request(1, 7)
	write(t, xtrEnd, req)
	e, err := traffic.ParseEcho(readOne(t, xtrEnd))
	if err != nil || e.Type != traffic.EchoReply || e.Seq != 7 || e.Src != dst1 || e.Dst != usr1 {
		t.Fatalf("reply %+v, %v", e, err)
	}
	// A request to an address it does not own is not answered.
	other, _ := traffic.Echo{Src: usr1, Dst: dst2, Type: traffic.EchoRequest, ID: 1, Seq: 1}.AppendBinary(nil)
	write(t, xtrEnd, other)
	waitFor(t, "foreign counted", func() bool { return r.Foreign() == 1 })
	if r.Answered() != 1 {
		t.Errorf("answered %d", r.Answered())
	}
}
