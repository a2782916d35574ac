package netns

import (
	"errors"
	"testing"
	"time"
)

func TestKeepalivedRender(t *testing.T) {
	cfg := KeepalivedConfig{
		Interface:       "eth1",
		VirtualRouterID: 7,
		Priority:        150,
		AdvertInt:       50 * time.Millisecond,
		VirtualIPs:      []string{"10.1.1.254/24", "10.1.1.253/24"},
		NoPreempt:       true,
		UnicastPeers:    []string{"10.1.1.2"},
		NotifyMaster:    "/bin/touch /tmp/x",
	}
	got, err := cfg.Render("lt12345-r1")
	if err != nil {
		t.Fatal(err)
	}
	want := `# written by lispd lab/netns
global_defs {
    router_id lt12345-r1
    script_user root
}

vrrp_instance VI_7 {
    state BACKUP
    interface eth1
    virtual_router_id 7
    priority 150
    version 3
    advert_int 0.05
    nopreempt
    unicast_peer {
        10.1.1.2
    }
    virtual_ipaddress {
        10.1.1.254/24 dev eth1
        10.1.1.253/24 dev eth1
    }
    notify_master "/bin/touch /tmp/x"
}
`
	if got != want {
		t.Fatalf("Render:\n%s\nwant:\n%s", got, want)
	}

	v2 := KeepalivedConfig{Interface: "eth0", VirtualRouterID: 1, VirtualIPs: []string{"192.0.2.1/24"}, State: StateMaster}
	got, err = v2.Render("r")
	if err != nil {
		t.Fatal(err)
	}
	const wantV2 = `# written by lispd lab/netns
global_defs {
    router_id r
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 1
    priority 100
    version 2
    advert_int 1
    virtual_ipaddress {
        192.0.2.1/24 dev eth0
    }
}
`
	if got != wantV2 {
		t.Fatalf("Render:\n%s\nwant:\n%s", got, wantV2)
	}
}

func TestKeepalivedConfigInvalid(t *testing.T) {
	base := KeepalivedConfig{Interface: "eth0", VirtualRouterID: 1, VirtualIPs: []string{"192.0.2.1/24"}}
	for name, mod := range map[string]func(*KeepalivedConfig){
		"no interface":       func(c *KeepalivedConfig) { c.Interface = "" },
		"interface quote":    func(c *KeepalivedConfig) { c.Interface = `a"b` },
		"vrid 256":           func(c *KeepalivedConfig) { c.VirtualRouterID = 256 },
		"priority 256":       func(c *KeepalivedConfig) { c.Priority = 256 },
		"no vip":             func(c *KeepalivedConfig) { c.VirtualIPs = nil },
		"vip without length": func(c *KeepalivedConfig) { c.VirtualIPs = []string{"192.0.2.1"} },
		"mixed families":     func(c *KeepalivedConfig) { c.VirtualIPs = append(c.VirtualIPs, "2001:db8::1/64") },
		"v2 subsecond":       func(c *KeepalivedConfig) { c.Version = 2; c.AdvertInt = 500 * time.Millisecond },
		"v2 ipv6":            func(c *KeepalivedConfig) { c.Version = 2; c.VirtualIPs = []string{"2001:db8::1/64"} },
		"v3 5ms":             func(c *KeepalivedConfig) { c.AdvertInt = 5 * time.Millisecond },
		"v3 too long":        func(c *KeepalivedConfig) { c.Version = 3; c.AdvertInt = 41 * time.Second },
		"version 4":          func(c *KeepalivedConfig) { c.Version = 4 },
		"state FAULT":        func(c *KeepalivedConfig) { c.State = StateFault },
		"nopreempt master":   func(c *KeepalivedConfig) { c.State = StateMaster; c.NoPreempt = true },
		"preempt delay frac": func(c *KeepalivedConfig) { c.PreemptDelay = 1500 * time.Millisecond },
		"unicast family":     func(c *KeepalivedConfig) { c.UnicastPeers = []string{"2001:db8::2"} },
		"notify quote":       func(c *KeepalivedConfig) { c.Notify = `echo "x"` },
		"notify newline":     func(c *KeepalivedConfig) { c.NotifyFault = "a\nb" },
		"instance space":     func(c *KeepalivedConfig) { c.Instance = "VI 1" },
	} {
		c := base
		c.VirtualIPs = append([]string(nil), base.VirtualIPs...)
		mod(&c)
		if _, err := c.Render("r"); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Render error = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := base.Render("bad id"); !errors.Is(err, ErrInvalid) {
		t.Errorf("router_id with a space: %v", err)
	}
	// IPv6 alone picks VRRPv3.
	c := base
	c.VirtualIPs = []string{"2001:db8::1/64"}
	n, err := c.normalize()
	if err != nil || n.Version != 3 {
		t.Fatalf("IPv6 VIP: version %d, %v", n.Version, err)
	}
}

func TestLastKeepalivedState(t *testing.T) {
	log := []byte(`Thu Nov 26 00:57:14 2026: (VI_1) Entering BACKUP STATE (init)
Thu Nov 26 00:57:14 2026: (VI_2) Entering MASTER STATE
Thu Nov 26 00:57:14 2026: (VI_1) Entering MASTER STATE
Thu Nov 26 00:57:16 2026: (VI_1) Entering FAULT STATE
`)
	if s := lastKeepalivedState(log, "VI_1"); s != StateFault {
		t.Fatalf("VI_1 = %q", s)
	}
	if s := lastKeepalivedState(log, "VI_2"); s != StateMaster {
		t.Fatalf("VI_2 = %q", s)
	}
	if s := lastKeepalivedState(log, "VI_3"); s != StateUnknown {
		t.Fatalf("VI_3 = %q", s)
	}
	if s := lastKeepalivedState([]byte("(VI_1) Entering "), "VI_1"); s != StateUnknown {
		t.Fatalf("truncated = %q", s)
	}
}
