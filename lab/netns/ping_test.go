package netns

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Outputs of iputils ping 20221126 (Debian bookworm) with -n -D -O.
const (
	pingV6 = `PING 2001:db8::2(2001:db8::2) 56 data bytes
[1795655109.271212] no answer yet for icmp_seq=1
[1795655109.324924] no answer yet for icmp_seq=2
[1795655110.233046] 64 bytes from 2001:db8::2: icmp_seq=1 ttl=64 time=1017 ms
[1795655110.233079] 64 bytes from 2001:db8::2: icmp_seq=2 ttl=64 time=962 ms
[1795655110.233081] 64 bytes from 2001:db8::2: icmp_seq=3 ttl=64 time=908 ms

--- 2001:db8::2 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 109ms
rtt min/avg/max/mdev = 908.020/962.334/1017.282/44.608 ms, pipe 3
`
	pingAllLost = `PING 10.9.0.77 (10.9.0.77) 56(84) bytes of data.
[1795655110.552934] no answer yet for icmp_seq=1
[1795655110.872901] no answer yet for icmp_seq=2
[1795655111.220483] no answer yet for icmp_seq=3
[1795655111.544904] no answer yet for icmp_seq=4

--- 10.9.0.77 ping statistics ---
5 packets transmitted, 0 received, 100% packet loss, time 1308ms

`
	pingMixed = `PING 10.0.1.2 (10.0.1.2) 56(84) bytes of data.
[1795654618.429001] 64 bytes from 10.0.1.2: icmp_seq=1 ttl=64 time=0.332 ms
[1795654618.626446] 64 bytes from 10.0.1.2: icmp_seq=2 ttl=63 time=0.089 ms
[1795654618.626500] 64 bytes from 10.0.1.2: icmp_seq=2 ttl=63 time=0.091 ms (DUP!)
[1795654618.829021] From 10.0.1.1 icmp_seq=3 Destination Host Unreachable
[1795654619.029021] no answer yet for icmp_seq=4
[1795654619.229021] 64 bytes from 10.0.1.2: icmp_seq=5 ttl=64 time=12.5 ms

--- 10.0.1.2 ping statistics ---
5 packets transmitted, 3 received, +1 duplicates, +1 errors, 40% packet loss, time 803ms
rtt min/avg/max/mdev = 0.089/4.307/12.500/5.793 ms
`
	pingUnreachable = "ping: connect: Network is unreachable\n"
)

func TestParsePingV6(t *testing.T) {
	r, err := ParsePing([]byte(pingV6))
	if err != nil {
		t.Fatal(err)
	}
	if r.Target != "2001:db8::2" || r.Transmitted != 3 || r.Received != 3 || !r.Summary || r.Sent() != 3 {
		t.Fatalf("%+v", r)
	}
	if len(r.Replies) != 3 || len(r.Unanswered) != 2 || len(r.Lost()) != 0 || r.LossRatio() != 0 {
		t.Fatalf("%+v", r)
	}
	want := PingReply{Seq: 1, At: time.Unix(1795655110, 233046000), From: "2001:db8::2", TTL: 64, RTT: 1017 * time.Millisecond}
	if r.Replies[0] != want {
		t.Fatalf("reply 0 = %+v, want %+v", r.Replies[0], want)
	}
	if r.RTTMin != 908020*time.Microsecond || r.RTTAvg != 962334*time.Microsecond ||
		r.RTTMax != 1017282*time.Microsecond || r.RTTMDev != 44608*time.Microsecond {
		t.Fatalf("rtt %v %v %v %v", r.RTTMin, r.RTTAvg, r.RTTMax, r.RTTMDev)
	}
	if r.Unanswered[1] != (PingEvent{Seq: 2, At: time.Unix(1795655109, 324924000), Text: "no answer yet"}) {
		t.Fatalf("%+v", r.Unanswered[1])
	}
}

func TestParsePingAllLost(t *testing.T) {
	r, err := ParsePing([]byte(pingAllLost))
	if err != nil {
		t.Fatal(err)
	}
	if r.Transmitted != 5 || r.Received != 0 || len(r.Replies) != 0 || r.LastSeq != 4 {
		t.Fatalf("%+v", r)
	}
	if got := fmt.Sprint(r.Lost()); got != "[1 2 3 4 5]" || r.LossRatio() != 1 {
		t.Fatalf("Lost = %s", got)
	}
	if r.RTTAvg != 0 {
		t.Fatalf("rtt %v", r.RTTAvg)
	}
}

func TestParsePingMixed(t *testing.T) {
	r, err := ParsePing([]byte(pingMixed))
	if err != nil {
		t.Fatal(err)
	}
	if r.Transmitted != 5 || r.Received != 3 || r.Duplicates != 1 || r.Errors != 1 {
		t.Fatalf("%+v", r)
	}
	if len(r.Replies) != 4 || !r.Replies[2].Dup || r.Replies[2].Seq != 2 || r.Replies[1].TTL != 63 {
		t.Fatalf("replies %+v", r.Replies)
	}
	if r.Replies[3].RTT != 12500*time.Microsecond {
		t.Fatalf("rtt %v", r.Replies[3].RTT)
	}
	if len(r.ICMPErrors) != 1 || r.ICMPErrors[0].Seq != 3 || r.ICMPErrors[0].Text != "From 10.0.1.1 Destination Host Unreachable" {
		t.Fatalf("errors %+v", r.ICMPErrors)
	}
	if got := fmt.Sprint(r.Lost()); got != "[3 4]" {
		t.Fatalf("Lost = %s", got)
	}
	if !r.Answered(2) || r.Answered(3) || r.Answered(6) {
		t.Fatal("Answered")
	}
}

func TestParsePingNoSummary(t *testing.T) {
	r, err := ParsePing([]byte(pingUnreachable))
	if !errors.Is(err, ErrPingOutput) || !strings.Contains(err.Error(), "Network is unreachable") {
		t.Fatalf("err = %v", err)
	}
	if r.Summary || r.Sent() != 0 || r.Lost() != nil {
		t.Fatalf("%+v", r)
	}
}

// TestPingStreamed feeds output in pieces that split lines, as a pipe
// delivers it.
func TestPingStreamed(t *testing.T) {
	var p pingParser
	for i := 0; i < len(pingMixed); i += 7 {
		p.Write([]byte(pingMixed[i:min(i+7, len(pingMixed))]))
	}
	p.flush()
	want, _ := ParsePing([]byte(pingMixed))
	if fmt.Sprint(p.res) != fmt.Sprint(want) {
		t.Fatalf("streamed %+v\nwhole %+v", p.res, want)
	}
}

// TestPingSeqWrap checks that sequence numbers keep counting past 65535.
func TestPingSeqWrap(t *testing.T) {
	var b strings.Builder
	b.WriteString("PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n")
	seqs := []int{65533, 65534, 65535, 0, 1, 65535 /* late */, 2}
	for _, s := range seqs {
		fmt.Fprintf(&b, "[100.5] 64 bytes from 10.0.0.2: icmp_seq=%d ttl=64 time=0.1 ms\n", s)
	}
	var p pingParser
	p.lastRaw = 65532 // as if the run had got this far
	p.Write([]byte(b.String()))
	var got []int
	for _, r := range p.res.Replies {
		got = append(got, r.Seq)
	}
	if fmt.Sprint(got) != "[65533 65534 65535 65536 65537 65535 65538]" || p.res.LastSeq != 65538 {
		t.Fatalf("unwrapped %v, last %d", got, p.res.LastSeq)
	}
}

func TestParsePingGarbage(t *testing.T) {
	for _, in := range []string{
		"", "\n\n", "[", "[abc] 64 bytes from x: icmp_seq=1", "[1.2.3] no answer yet for icmp_seq=1",
		"64 bytes from 10.0.0.1: icmp_seq=-1 ttl=1 time=1 ms",
		"64 bytes from 10.0.0.1: icmp_seq=1 ttl=x time=NaN ms",
		"x packets transmitted, y received",
		"rtt min/avg/max/mdev = 1/2 ms",
		"no answer yet for icmp_seq=999999999999999999999",
		strings.Repeat("x", 10000),
	} {
		r, err := ParsePing([]byte(in))
		if err == nil || r.Summary {
			t.Errorf("ParsePing(%.40q) = %+v, nil", in, r)
		}
	}
}

func FuzzParsePing(f *testing.F) {
	for _, s := range []string{pingV6, pingAllLost, pingMixed, pingUnreachable} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParsePing(b)
		if err == nil && !r.Summary {
			t.Fatal("nil error without statistics")
		}
		lost := r.Lost()
		if len(lost) > max(r.Sent(), 0) {
			t.Fatalf("lost %d of %d", len(lost), r.Sent())
		}
		if r.LossRatio() < 0 || r.LossRatio() > 1 {
			t.Fatalf("loss ratio %v", r.LossRatio())
		}
		// Parsing in pieces gives the same result.
		var p pingParser
		for i := 0; i < len(b); i += 5 {
			p.Write(b[i:min(i+5, len(b))])
		}
		p.flush()
		if fmt.Sprint(p.res) != fmt.Sprint(r) {
			t.Fatalf("streamed %+v\nwhole %+v", p.res, r)
		}
	})
}
