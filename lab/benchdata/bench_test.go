package benchdata

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{Lispd: "/x/lispd", Relay: []string{"/x/lisplab", "relay"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Duration != DefaultDuration || c.Warmup != DefaultWarmup || c.Rounds != DefaultRounds || !slices.Equal(c.Sizes, DefaultSizes) ||
		c.Rate != RateAdaptive || c.Progress == nil {
		t.Errorf("defaults: %+v", c)
	}
	for name, bad := range map[string]Config{
		"no lispd":    {Relay: []string{"r"}},
		"no relay":    {Lispd: "l"},
		"empty relay": {Lispd: "l", Relay: []string{""}},
		"duration":    {Lispd: "l", Relay: []string{"r"}, Duration: -time.Second},
		"warm-up":     {Lispd: "l", Relay: []string{"r"}, Warmup: -time.Second},
		"rounds":      {Lispd: "l", Relay: []string{"r"}, Rounds: -1},
		"rate":        {Lispd: "l", Relay: []string{"r"}, Rate: -2},
		"small size":  {Lispd: "l", Relay: []string{"r"}, Sizes: []int{MinSize - 1}},
		"large size":  {Lispd: "l", Relay: []string{"r"}, Sizes: []int{64, MaxSize + 1}},
	} {
		if _, err := bad.withDefaults(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestMeasurement(t *testing.T) {
	m := measurement(RouterLispd, 1400, 1000, 750, 2*time.Second)
	if m.PacketsPerSecond != 375 || m.SentPerSecond != 500 || m.BitsPerSecond != 375*1400*8 || m.Loss != 0.25 || m.Seconds != 2 {
		t.Errorf("%+v", m)
	}
	// More delivered than counted as sent (datagrams in flight at the
	// first snapshot) is no negative loss; zero time no division.
	if m := measurement(RouterRelay, 64, 10, 12, time.Second); m.Loss != 0 {
		t.Errorf("loss %v", m.Loss)
	}
	if m := measurement(RouterRelay, 64, 10, 10, 0); m.PacketsPerSecond != 0 || math.IsNaN(m.BitsPerSecond) {
		t.Errorf("%+v", m)
	}
	if ratio(1, 0) != 0 || ratio(3, 4) != 0.75 {
		t.Error("ratio")
	}
}

func TestSummarize(t *testing.T) {
	round := func(l, r float64) Round {
		return Round{Lispd: Measurement{Router: RouterLispd, PacketsPerSecond: l}, Relay: Measurement{Router: RouterRelay, PacketsPerSecond: r}, Ratio: l / r}
	}
	s := SizeResult{Rounds: []Round{round(90, 100), round(50, 100), round(120, 110)}}
	s.summarize()
	if s.Lispd.PacketsPerSecond != 90 || s.Relay.PacketsPerSecond != 100 || s.Ratio != 0.9 {
		t.Errorf("odd: %+v %+v %v", s.Lispd, s.Relay, s.Ratio)
	}
	s = SizeResult{Rounds: []Round{round(80, 100), round(90, 100)}}
	s.summarize()
	if s.Lispd.PacketsPerSecond != 80 || math.Abs(s.Ratio-0.85) > 1e-9 {
		t.Errorf("even: %+v %v", s.Lispd, s.Ratio)
	}
	s = SizeResult{}
	s.summarize()
	if s.Ratio != 0 {
		t.Error("empty")
	}
}

func TestRelayConfig(t *testing.T) {
	c := RelayConfig{TUN: "lisp0", MTU: 1444, Routes: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")},
		Listen: netip.MustParseAddrPort("198.19.0.1:4341"), Peer: netip.MustParseAddrPort("198.19.0.2:4341")}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	want := []string{"--tun", "lisp0", "--mtu", "1444", "--listen", "198.19.0.1:4341", "--peer", "198.19.0.2:4341", "--route", "10.2.0.0/24"}
	if got := c.Args(); !slices.Equal(got, want) {
		t.Errorf("Args = %q", got)
	}
	for name, mutate := range map[string]func(*RelayConfig){
		"no tun":    func(c *RelayConfig) { c.TUN = "" },
		"long tun":  func(c *RelayConfig) { c.TUN = "a-very-long-tun-name" },
		"mtu":       func(c *RelayConfig) { c.MTU = 100 },
		"no listen": func(c *RelayConfig) { c.Listen = netip.AddrPort{} },
		"peer port": func(c *RelayConfig) { c.Peer = netip.MustParseAddrPort("198.19.0.2:0") },
		"families":  func(c *RelayConfig) { c.Peer = netip.MustParseAddrPort("[2001:db8::2]:4341") },
		"bad route": func(c *RelayConfig) { c.Routes = append(c.Routes, netip.Prefix{}) },
	} {
		bad := c
		mutate(&bad)
		if err := bad.validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if RateName(RateAdaptive) != "adaptive" || RateName(RateMax) != "max" || RateName(5000) != "5000" {
		t.Error("RateName")
	}
}
