package twosite

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/lispd/lispd/config"
)

func TestPacketRoundTrip(t *testing.T) {
	src, dst := netip.MustParseAddr("10.1.0.10"), netip.MustParseAddr("10.2.0.10")
	b, err := appendEcho([]byte("prefix"), echo{src: src, dst: dst, id: 7, seq: 9, payload: []byte("abc")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("prefix")) {
		t.Fatal("appendEcho overwrote the prefix")
	}
	p, err := parsePacket(b[6:])
	if err != nil || p.echo == nil || p.echo.reply || p.echo.id != 7 || p.echo.seq != 9 || string(p.echo.payload) != "abc" || p.src != src || p.dst != dst {
		t.Fatalf("echo: %+v %v", p.echo, err)
	}
	d := Datagram{Src: netip.AddrPortFrom(src, 1234), Dst: netip.AddrPortFrom(dst, 9000), Payload: []byte("hello, odd length")}
	u, err := appendUDP(nil, d)
	if err != nil {
		t.Fatal(err)
	}
	p, err = parsePacket(u)
	if err != nil || p.udp == nil || p.udp.Src != d.Src || p.udp.Dst != d.Dst || string(p.udp.Payload) != string(d.Payload) {
		t.Fatalf("udp: %+v %v", p.udp, err)
	}
	// A golden IPv4 header: the checksum of a known header.
	if got := [2]byte{u[10], u[11]}; got == [2]byte{} {
		t.Error("no IPv4 header checksum")
	}
}

func TestParsePacketRejects(t *testing.T) {
	good, _ := appendUDP(nil, Datagram{Src: netip.MustParseAddrPort("10.1.0.10:1"), Dst: netip.MustParseAddrPort("10.2.0.10:2"), Payload: []byte("data")})
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, pkt := range map[string][]byte{
		"empty":           nil,
		"ipv6":            mutate(func(b []byte) []byte { b[0] = 0x60; return b }),
		"short":           good[:19],
		"ihl too small":   mutate(func(b []byte) []byte { b[0] = 0x44; return b }),
		"total too long":  mutate(func(b []byte) []byte { b[3] += 10; return b }),
		"header checksum": mutate(func(b []byte) []byte { b[8]--; return b }),
		"udp checksum":    mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
		"udp length":      mutate(func(b []byte) []byte { b[25] = 200; return b }),
		"fragment": mutate(func(b []byte) []byte {
			b[6] = 0x20
			b[10], b[11] = 0, 0
			s := ^checksum(0, b[:20])
			b[10], b[11] = byte(s>>8), byte(s)
			return b
		}),
		"other protocol": mutate(func(b []byte) []byte {
			b[9] = 6
			b[10], b[11] = 0, 0
			s := ^checksum(0, b[:20])
			b[10], b[11] = byte(s>>8), byte(s)
			return b
		}),
		"truncated header": good[:24],
	} {
		if _, err := parsePacket(pkt); !errors.Is(err, errPacket) {
			t.Errorf("%s: %v", name, err)
		}
	}
	e, _ := appendEcho(nil, echo{src: netip.MustParseAddr("10.1.0.10"), dst: netip.MustParseAddr("10.2.0.10"), seq: 1})
	e[20] = 3 // destination unreachable, checksum now wrong too
	if _, err := parsePacket(e); !errors.Is(err, errPacket) {
		t.Errorf("not an echo: %v", err)
	}
	if _, err := appendEcho(nil, echo{src: netip.MustParseAddr("::1"), dst: netip.MustParseAddr("10.2.0.10")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("IPv6 echo: %v", err)
	}
}

func FuzzParsePacket(f *testing.F) {
	good, _ := appendUDP(nil, Datagram{Src: netip.MustParseAddrPort("10.1.0.10:1"), Dst: netip.MustParseAddrPort("10.2.0.10:2"), Payload: []byte("data")})
	ping, _ := appendEcho(nil, echo{src: netip.MustParseAddr("10.1.0.10"), dst: netip.MustParseAddr("10.2.0.10"), seq: 1, payload: []byte("x")})
	f.Add(good)
	f.Add(ping)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePacket(b)
		if err != nil {
			return
		}
		// What parses re-encodes to a packet that parses the same.
		var again []byte
		switch {
		case p.echo != nil:
			again, err = appendEcho(nil, *p.echo)
		case p.udp != nil:
			again, err = appendUDP(nil, *p.udp)
		}
		if err != nil {
			return // e.g. longer than the hosts send
		}
		q, err := parsePacket(again)
		if err != nil || q.src != p.src || q.dst != p.dst {
			t.Fatalf("re-encoded packet: %+v %v", q, err)
		}
	})
}

func TestPlanConfigs(t *testing.T) {
	p, err := NewPlan(netip.MustParsePrefix("198.19.0.77/24"))
	if err != nil {
		t.Fatal(err)
	}
	if p.RLOC[SiteA] != netip.MustParseAddr("198.19.0.1") || p.RLOC[SiteB] != netip.MustParseAddr("198.19.0.2") || p.MSMR != netip.MustParseAddr("198.19.0.100") {
		t.Fatalf("plan %+v", p)
	}
	for _, bad := range []string{"198.19.0.0/16", "2001:db8::/64"} {
		if _, err := NewPlan(netip.MustParsePrefix(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if _, err := NewPlan(netip.Prefix{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero prefix: %v", err)
	}
	if _, err := p.XTRConfig(Site(5), XTROptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad site: %v", err)
	}
	// The configs are valid lispd.toml files.
	if _, err := config.Parse([]byte(p.MSMRConfig("/run/x/ms.sock", "")), "ms.toml"); err != nil {
		t.Errorf("MSMRConfig: %v", err)
	}
	for _, s := range []Site{SiteA, SiteB} {
		for _, o := range []XTROptions{{APISocket: "/run/x/a.sock"}, {APISocket: "/run/x/a.sock", TUN: true, MissPolicy: "queue", LogLevel: "warn"}} {
			text, err := p.XTRConfig(s, o)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse([]byte(text), "xtr.toml")
			if err != nil {
				t.Fatalf("XTRConfig(%v, %+v): %v\n%s", s, o, err, text)
			}
			if cfg.Dataplane.RLOCs[0] != p.RLOC[s] || len(cfg.ETR.EIDs) != 1 || cfg.ETR.EIDs[0].Prefix.Prefix != p.SitePrefix[s] {
				t.Errorf("site %v config: %+v %+v", s, cfg.Dataplane, cfg.ETR)
			}
			if o.TUN && (cfg.Dataplane.TUNName != TUNName || len(cfg.Dataplane.TUNRoutes) != 1 || cfg.Dataplane.TUNRoutes[0] != p.SitePrefix[s.Other()]) {
				t.Errorf("site %v TUN: %+v", s, cfg.Dataplane)
			}
		}
	}
	if _, err := p.XTRConfig(SiteA, XTROptions{MissPolicy: "hold"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad miss policy: %v", err)
	}
	if SiteA.Other() != SiteB || SiteB.Other() != SiteA || SiteA.String() != "A" || Site(7).String() != "Site(7)" {
		t.Error("Site methods")
	}
}
