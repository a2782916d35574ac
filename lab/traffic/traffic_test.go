package traffic

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	usr1 = netip.MustParseAddr("192.0.2.11")
	usr2 = netip.MustParseAddr("192.0.2.12")
	dst1 = netip.MustParseAddr("198.18.1.1")
	dst2 = netip.MustParseAddr("198.18.2.1")
)

func TestEchoGolden(t *testing.T) {
	// An echo request as Linux ping sends it (id 0x1234, seq 1, no data),
	// checked byte by byte, checksums included.
	e := Echo{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Type: EchoRequest, ID: 0x1234, Seq: 1}
	b, err := e.AppendBinary([]byte{0xaa})
	if err != nil {
		t.Fatal(err)
	}
	const want = "aa" + "4500001c12354000400114aa0a0000010a000002" + "0800e5ca12340001"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("AppendBinary =\n%s\nwant\n%s", got, want)
	}
	p, err := ParseEcho(b[1:])
	if err != nil {
		t.Fatal(err)
	}
	if p.Src != e.Src || p.Dst != e.Dst || p.ID != 0x1234 || p.Seq != 1 || p.Type != EchoRequest || p.TTL != 64 || len(p.Payload) != 0 {
		t.Errorf("ParseEcho = %+v", p)
	}
}

func TestParseEchoRejects(t *testing.T) {
	good, err := Echo{Src: usr1, Dst: dst1, Type: EchoReply, ID: 3, Seq: 9, Payload: []byte("hello")}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseEcho(good); err != nil {
		t.Fatalf("good packet: %v", err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string][]byte{
		"empty":       nil,
		"short":       good[:19],
		"ipv6":        mut(func(b []byte) []byte { b[0] = 0x65; return b }),
		"ip checksum": mut(func(b []byte) []byte { b[8]--; return b }),
		"icmp csum":   mut(func(b []byte) []byte { b[len(b)-1]++; return b }),
		"truncated":   good[:len(good)-1],
		"not icmp": mut(func(b []byte) []byte {
			b[9] = 17
			b[10], b[11] = 0, 0
			c := checksum(b[:20])
			b[10], b[11] = byte(c>>8), byte(c)
			return b
		}),
		"fragment": mut(func(b []byte) []byte {
			b[6] = 0x20
			b[10], b[11] = 0, 0
			c := checksum(b[:20])
			b[10], b[11] = byte(c>>8), byte(c)
			return b
		}),
		"bad ihl":      mut(func(b []byte) []byte { b[0] = 0x44; return b }),
		"icmp unreach": mut(func(b []byte) []byte { b[20] = 3; return b }),
	}
	for name, b := range cases {
		if _, err := ParseEcho(b); !errors.Is(err, ErrNotEcho) {
			t.Errorf("%s: ParseEcho = %v, want ErrNotEcho", name, err)
		}
	}
	if _, err := (Echo{Src: netip.MustParseAddr("::1"), Dst: dst1, Type: EchoRequest}).AppendBinary(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("IPv6 echo: %v", err)
	}
	if _, err := (Echo{Src: usr1, Dst: dst1, Type: 3}).AppendBinary(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("type 3: %v", err)
	}
}

func FuzzParseEcho(f *testing.F) {
	good, _ := Echo{Src: usr1, Dst: dst1, Type: EchoRequest, ID: 1, Seq: 1, Payload: payload[:]}.AppendBinary(nil)
	f.Add(good)
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEcho(b)
		if err != nil {
			return
		}
		again, err := e.AppendBinary(nil)
		if err != nil {
			t.Fatalf("re-encode of a parsed packet: %v", err)
		}
		e2, err := ParseEcho(again)
		if err != nil || e2.ID != e.ID || e2.Seq != e.Seq || e2.Src != e.Src || e2.Dst != e.Dst || string(e2.Payload) != string(e.Payload) {
			t.Fatalf("round trip: %+v -> %+v (%v)", e, e2, err)
		}
	})
}

func flows() []Flow {
	return []Flow{
		{ID: 1, Host: "USR1", Src: usr1, Dst: dst1},
		{ID: 2, Host: "USR2", Src: usr2, Dst: dst2},
	}
}

func TestLedgerFates(t *testing.T) {
	l, err := NewLedger(flows())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	fail := at(1000)
	req := func(id, seq uint16) []byte {
		b, err := l.Request(id, seq)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Flow 1, seq 1 (before): delivered via itr1, reply via itr2.
	r := req(1, 1)
	must(l.Sent(r, at(0)))
	must(l.Handed(r, "itr1", at(0)))
	rep, err := l.Answer(r, at(1))
	must(err)
	must(l.ReplyOut(rep, "itr2", false, at(2)))
	must(l.Received(rep, at(2)))
	// Flow 1, seq 2 (before): dropped by itr1 (miss).
	r = req(1, 2)
	must(l.Sent(r, at(200)))
	must(l.Handed(r, "itr1", at(200)))
	// Flow 1, seq 3 (after): the LAN sent it to itr1's dead link.
	r = req(1, 3)
	must(l.Sent(r, at(1100)))
	must(l.LANDropped(r, "itr1", at(1100)))
	// Flow 1, seq 4 (after): itr2 drops it (miss).
	r = req(1, 4)
	must(l.Sent(r, at(2000)))
	must(l.Handed(r, "itr2", at(2000)))
	// Flow 2, seq 1 (after): reaches the destination, reply to itr1's
	// RLOC, dropped at its dead link.
	r = req(2, 1)
	must(l.Sent(r, at(1200)))
	must(l.Handed(r, "itr2", at(1200)))
	rep, err = l.Answer(r, at(1201))
	must(err)
	must(l.ReplyOut(rep, "itr1", true, at(1202)))
	// Flow 2, seq 2 (after): reaches the destination, reply never seen.
	r = req(2, 2)
	must(l.Sent(r, at(1300)))
	must(l.Handed(r, "itr2", at(1300)))
	_, err = l.Answer(r, at(1301))
	must(err)
	// Flow 2, seq 3 (after, before USR2's switch): seen nowhere -> gap.
	r = req(2, 3)
	must(l.Sent(r, at(1400)))
	// Flow 2, seq 4 (after the switch): seen nowhere -> unseen.
	r = req(2, 4)
	must(l.Sent(r, at(3000)))
	// Not a flow of the ledger.
	other, _ := Echo{Src: usr1, Dst: dst2, Type: EchoRequest, ID: 1, Seq: 1}.AppendBinary(nil)
	if err := l.Sent(other, at(5)); !errors.Is(err, ErrInvalid) {
		t.Errorf("foreign packet: %v", err)
	}
	if err := l.Sent([]byte{1, 2, 3}, at(5)); !errors.Is(err, ErrNotEcho) {
		t.Errorf("garbage: %v", err)
	}

	s := l.Classify(start, ClassifyOptions{FailAt: fail, Failed: "itr1", SwitchAt: map[string]time.Time{"USR2": at(2500)}})
	f1, f2 := s.Flows[0], s.Flows[1]
	if f1.Before[Delivered] != 1 || f1.Before[LostAtITR] != 1 || f1.Before.Sent() != 2 {
		t.Errorf("flow 1 before = %v", f1.Before)
	}
	if f1.After[LostSwitchover] != 1 || f1.After[LostAtITR] != 1 || f1.After.Sent() != 2 {
		t.Errorf("flow 1 after = %v", f1.After)
	}
	if f2.After[LostReturnFailed] != 1 || f2.After[LostReturnOther] != 1 || f2.After[LostSwitchover] != 1 || f2.After[LostUnseen] != 1 || f2.ArrivedAfter != 2 {
		t.Errorf("flow 2 after = %v arrived %d", f2.After, f2.ArrivedAfter)
	}
	if s.After.Lost() != 6 || s.Before.Lost() != 1 || s.Unexpected != 2 {
		t.Errorf("totals before %v after %v unexpected %d", s.Before, s.After, s.Unexpected)
	}
	if got := s.Carried["itr1"]; len(got) != 1 || got[0] != 1 {
		t.Errorf("carried by itr1 before the failure = %v, want [1]", got)
	}
	if len(s.Timeline) != 8 || s.Timeline[2].At != 1100*time.Millisecond || s.Timeline[2].Fate != LostSwitchover {
		t.Errorf("timeline = %+v", s.Timeline)
	}
	// A crashed router: a request handed to it after the failure is lost
	// with it, in the gap; one handed to the live ITR is still its drop.
	r = req(1, 5)
	must(l.Sent(r, at(1050)))
	must(l.Handed(r, "itr1", at(1051)))
	crash := l.Classify(start, ClassifyOptions{FailAt: fail, Failed: "itr1", Crashed: true})
	if a := crash.Flows[0].After; a[LostSwitchover] != 2 || a[LostAtITR] != 1 {
		t.Errorf("flow 1 after a crash = %v, want 2 in the gap (dead link, dying router) and 1 ITR drop", a)
	}
	if a := l.Classify(start, ClassifyOptions{FailAt: fail, Failed: "itr1"}).Flows[0].After; a[LostAtITR] != 2 {
		t.Errorf("flow 1 after a link failure = %v, want 2 ITR drops", a)
	}
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"switchover":1`) {
		t.Errorf("JSON lacks the fate names: %s", js)
	}
}

func TestNewLedgerErrors(t *testing.T) {
	if _, err := NewLedger(nil); !errors.Is(err, ErrInvalid) {
		t.Error(err)
	}
	if _, err := NewLedger([]Flow{{ID: 2, Src: usr1, Dst: dst1}}); !errors.Is(err, ErrInvalid) {
		t.Error(err)
	}
	if _, err := NewLedger([]Flow{{ID: 1, Src: netip.MustParseAddr("::1"), Dst: dst1}}); !errors.Is(err, ErrInvalid) {
		t.Error(err)
	}
	l, _ := NewLedger(flows())
	if _, err := l.Request(9, 1); !errors.Is(err, ErrInvalid) {
		t.Error(err)
	}
}

func TestPingerSchedule(t *testing.T) {
	l, err := NewLedger(flows())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[uint16][]uint16{}
	p := &Pinger{Ledger: l, Hosts: []string{"USR1", "USR2"}, Interval: 10 * time.Millisecond, Send: func(f Flow, pkt []byte) error {
		e, err := ParseEcho(pkt)
		if err != nil {
			return err
		}
		mu.Lock()
		got[f.ID] = append(got[f.ID], e.Seq)
		mu.Unlock()
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got[1]) + len(got[2])
		mu.Unlock()
		if n >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pinger too slow")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for id, seqs := range got {
		for i, s := range seqs {
			if int(s) != i+1 {
				t.Fatalf("flow %d sequence numbers %v, want 1, 2, ...", id, seqs)
			}
		}
	}
	if d := len(got[1]) - len(got[2]); d < 0 || d > 1 {
		t.Errorf("flows sent %d and %d requests: not interleaved", len(got[1]), len(got[2]))
	}
	s := l.Classify(time.Now(), ClassifyOptions{FailAt: time.Now()})
	if s.Before.Sent() != int(p.SentCount()) || s.Before[LostUnseen] != s.Before.Sent() {
		t.Errorf("ledger counted %v, pinger sent %d", s.Before, p.SentCount())
	}
	bad := &Pinger{Ledger: l, Interval: time.Second}
	if err := bad.Run(context.Background()); !errors.Is(err, ErrInvalid) {
		t.Errorf("pinger without Send: %v", err)
	}
}
