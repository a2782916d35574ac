package mapserver

import (
	"bytes"
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

var (
	xtr1     = wire.XTRID{0xaa, 1}
	xtr2     = wire.XTRID{0xaa, 2}
	xtr1Addr = ap("192.0.2.1:4342")
	xtr2Addr = ap("192.0.2.2:50000")
)

// twoXTRs registers 10.1.1.0/24 from xtr1, then from xtr2 with another RLOC,
// which changes the merged RLOC-set and so notifies xtr1. It returns the
// unsolicited Map-Notify.
func twoXTRs(t *testing.T, s *Server, out *capSender) sent {
	t.Helper()
	s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, xtrID: &xtr1, siteID: 11,
		records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 1440, loc("192.0.2.1"))}}), xtr1Addr, netip.Addr{})
	if p := out.take(); len(p) != 0 {
		t.Fatalf("first registration sent %d datagrams", len(p))
	}
	s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, xtrID: &xtr2, siteID: 11,
		records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 1440, loc("192.0.2.2"))}}), xtr2Addr, netip.Addr{})
	got := onlyOne(t, out)
	if got.to != xtr1Addr {
		t.Fatalf("unsolicited Map-Notify sent to %s, want xTR 1 at %s", got.to, xtr1Addr)
	}
	return got
}

// ackFor builds the Map-Notify-Ack an xTR returns for notify, signed with key.
func ackFor(t *testing.T, notify []byte, key []byte) []byte {
	t.Helper()
	n := parseAs[*wire.MapNotify](t, notify)
	ack := wire.MapNotifyAck(*n)
	ack.AuthData = nil
	b, err := ack.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Sign(b, key); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnsolicitedNotifyAcked(t *testing.T) {
	s, out, clk := newTestServer(t, nil)
	got := twoXTRs(t, s, out)
	n := parseAs[*wire.MapNotify](t, got.b)
	if err := wire.Verify(got.b, keyA); err != nil {
		t.Fatalf("unsolicited Map-Notify does not verify: %v", err)
	}
	if !n.XTRIDPresent || n.XTRID != xtr1 || n.SiteID != 11 || len(n.AuthData) != 20 {
		t.Fatalf("Map-Notify header %+v", n)
	}
	if len(n.Records) != 1 || len(n.Records[0].Locators) != 2 {
		t.Fatalf("Map-Notify should carry the merged RLOC-set: %+v", n.Records)
	}
	if s.notify.pending() != 1 {
		t.Fatal("Map-Notify not pending")
	}

	// An ack with an unknown nonce or a wrong key changes nothing.
	bad := ackFor(t, got.b, keyB)
	s.HandlePacket(bad, xtr1Addr, netip.Addr{})
	other := parseAs[*wire.MapNotify](t, got.b)
	other.Nonce++
	other.AuthData = nil
	ob, _ := (*wire.MapNotifyAck)(other).AppendBinary(nil)
	if err := wire.Sign(ob, keyA); err != nil {
		t.Fatal(err)
	}
	s.HandlePacket(ob, xtr1Addr, netip.Addr{})
	if st := s.Stats(); st.MapNotifyAckAuthFailure != 1 || st.MapNotifyAckUnknown != 1 || st.MapNotifyAcked != 0 {
		t.Fatalf("stats %+v", st)
	}

	s.HandlePacket(ackFor(t, got.b, keyA), xtr1Addr, netip.Addr{})
	if st := s.Stats(); st.MapNotifyAcked != 1 || s.notify.pending() != 0 {
		t.Fatalf("ack not taken: %+v", st)
	}
	clk.Advance(time.Minute)
	s.runTimers(clk.Now())
	if p := out.take(); len(p) != 0 || s.Stats().MapNotifyRetransmitted != 0 {
		t.Fatal("acknowledged Map-Notify retransmitted")
	}
	// A second ack for the same nonce is unknown now.
	s.HandlePacket(ackFor(t, got.b, keyA), xtr1Addr, netip.Addr{})
	if st := s.Stats(); st.MapNotifyAckUnknown != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnsolicitedNotifyGivesUp(t *testing.T) {
	s, out, clk := newTestServer(t, func(c *Config) { c.NotifyRetries = 2; c.NotifyInterval = 5 * time.Second })
	got := twoXTRs(t, s, out)
	for i := 1; i <= 2; i++ {
		clk.Advance(4 * time.Second)
		s.runTimers(clk.Now())
		if p := out.take(); len(p) != 0 {
			t.Fatalf("retransmitted before the interval")
		}
		clk.Advance(time.Second)
		s.runTimers(clk.Now())
		re := onlyOne(t, out)
		if re.to != got.to || !bytes.Equal(re.b, got.b) {
			t.Fatalf("retransmission %d differs from the original", i)
		}
	}
	clk.Advance(5 * time.Second)
	next := s.runTimers(clk.Now())
	if p := out.take(); len(p) != 0 {
		t.Fatal("retransmitted more than NotifyRetries times")
	}
	st := s.Stats()
	if st.MapNotifyRetransmitted != 2 || st.MapNotifyGivenUp != 1 || st.MapNotifySent != 1 || s.notify.pending() != 0 {
		t.Fatalf("stats %+v", st)
	}
	if want := clk.Now().Add(DefaultRegistrationTimeout - 15*time.Second); !next.Equal(want) {
		t.Fatalf("next timer %v, want the registration expiry %v", next, want)
	}
}

func TestNotifyOnExpiryAndNoNotifyOnRefresh(t *testing.T) {
	s, out, clk := newTestServer(t, nil)
	got := twoXTRs(t, s, out)
	s.HandlePacket(ackFor(t, got.b, keyA), xtr1Addr, netip.Addr{})
	// Refreshing with the same RLOCs changes nothing: no Map-Notify.
	clk.Advance(time.Minute)
	s.HandlePacket(buildRegister(t, regOpts{key: keyA, alg: wire.AlgHMACSHA196, xtrID: &xtr1, siteID: 11,
		records: []wire.EIDRecord{rec(0, "10.1.1.0/24", 1440, loc("192.0.2.1"))}}), xtr1Addr, netip.Addr{})
	if p := out.take(); len(p) != 0 {
		t.Fatalf("refresh sent %d datagrams", len(p))
	}
	// xtr2 stops refreshing: when it expires, xtr1 is told the new set.
	clk.Advance(DefaultRegistrationTimeout - time.Minute)
	s.runTimers(clk.Now())
	n := onlyOne(t, out)
	m := parseAs[*wire.MapNotify](t, n.b)
	if n.to != xtr1Addr || len(m.Records[0].Locators) != 1 || s.Stats().Expired != 1 {
		t.Fatalf("after xtr2 expired: to %s, %+v", n.to, m.Records)
	}
}

// TestRunDrivesTimers runs the timer loop with a fake clock: an unsolicited
// Map-Notify is retransmitted and given up, a registration expires, and Run
// stops with its context.
func TestRunDrivesTimers(t *testing.T) {
	s, out, clk := newTestServer(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var runErr error
	go func() {
		defer wg.Done()
		runErr = s.Run(ctx)
	}()
	defer func() {
		cancel()
		wg.Wait()
		if runErr != nil {
			t.Errorf("Run: %v", runErr)
		}
	}()
	eventually(t, "Run to start", func() bool { return s.running.Load() })
	if err := s.Run(ctx); err != ErrAlreadyRunning {
		t.Fatalf("second Run: %v", err)
	}
	twoXTRs(t, s, out)
	eventually(t, "retransmissions and give-up", func() bool {
		clk.Advance(time.Second)
		return s.Stats().MapNotifyGivenUp == 1
	})
	if st := s.Stats(); st.MapNotifyRetransmitted != DefaultNotifyRetries {
		t.Fatalf("retransmitted %d times, want %d", st.MapNotifyRetransmitted, DefaultNotifyRetries)
	}
	eventually(t, "registrations to expire", func() bool {
		clk.Advance(10 * time.Second)
		return s.Stats().Expired == 2
	})
	if len(s.Registrations()) != 0 {
		t.Fatal("registrations left")
	}
}
