package netns

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/deploy/keepalived"
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
		TrackInterface:  "rloc0",
		Lispctl:         "/lab/lispctl --socket /lab/r1.sock",
		NotifyHook:      "/lab/lispd-vrrp-notify",
		TrackFile:       "/lab/r1.drain",
	}
	got, err := cfg.Render("lt12345-r1")
	if err != nil {
		t.Fatal(err)
	}
	want := `# rendered by lispd lab/netns from deploy/keepalived/xtr-a1.conf
global_defs {
    router_id lt12345-r1
    enable_script_security
    script_user root
    vrrp_version 3
}

vrrp_script lispd_up {
    script "/lab/lispctl --socket /lab/r1.sock --timeout 2s status"
    interval 2
    timeout 3
    fall 2
    rise 2
}

track_file lispd_drain {
    file "/lab/r1.drain"
    weight 0
}

vrrp_instance VI_7 {
    state BACKUP
    interface eth1
    virtual_router_id 7
    priority 150
    advert_int 0.05
    nopreempt
    unicast_peer {
        10.1.1.2
    }
    garp_master_refresh 5
    track_interface {
        rloc0
    }
    track_script {
        lispd_up
    }
    track_file {
        lispd_drain
    }
    notify "/lab/lispd-vrrp-notify /lab/lispctl --socket /lab/r1.sock"
    notify_master "/bin/touch /tmp/x"
    virtual_ipaddress {
        10.1.1.254/24 dev eth1
        10.1.1.253/24 dev eth1
    }
}
`
	if got != want {
		t.Fatalf("Render:\n%s\nwant:\n%s", got, want)
	}

	// Without lispctl, track interface or track file: no health check,
	// notify hook, interface tracking or drain file; the documented
	// timers.
	v := KeepalivedConfig{Interface: "eth0", VirtualRouterID: 1, VirtualIPs: []string{"192.0.2.1/24"}, State: StateMaster}
	got, err = v.Render("r")
	if err != nil {
		t.Fatal(err)
	}
	const wantBare = `# rendered by lispd lab/netns from deploy/keepalived/xtr-a1.conf
global_defs {
    router_id r
    enable_script_security
    script_user root
    vrrp_version 3
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 1
    priority 100
    advert_int 0.1
    garp_master_refresh 5
    virtual_ipaddress {
        192.0.2.1/24 dev eth0
    }
}
`
	if got != wantBare {
		t.Fatalf("Render:\n%s\nwant:\n%s", got, wantBare)
	}

	// VRRPv2 on request, with whole seconds.
	v.Version = 2
	got, err = v.Render("r")
	if err != nil || !strings.Contains(got, "    version 2\n    advert_int 1\n") {
		t.Fatalf("VRRPv2: %v\n%s", err, got)
	}
}

// TestKeepalivedRenderDocumented renders the documented machines' own
// values: the result is the documented file, comments aside. So the lab
// changes nothing but what its fields replace.
func TestKeepalivedRenderDocumented(t *testing.T) {
	for _, m := range []struct {
		file, router string
		prio         int
	}{{keepalived.ConfigA1, "xtr-a1", 150}, {keepalived.ConfigA2, "xtr-a2", 100}} {
		cfg := KeepalivedConfig{
			Instance:        keepalived.Instance,
			Interface:       keepalived.LANInterface,
			VirtualRouterID: keepalived.VirtualRouterID,
			Priority:        m.prio,
			VirtualIPs:      []string{keepalived.VirtualIP},
			TrackInterface:  keepalived.RLOCInterface,
			Lispctl:         keepalived.Lispctl,
			NotifyHook:      keepalived.NotifyPath,
			TrackFile:       keepalived.TrackFile,
		}
		got, err := cfg.Render(m.router)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := keepalived.File(m.file)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := stmtLines(t, got), stmtLines(t, string(doc)); !slices.Equal(a, b) {
			t.Errorf("rendering %s's values differs from %s:\n%s\nwant:\n%s", m.router, m.file, strings.Join(a, "\n"), strings.Join(b, "\n"))
		}
	}
	c, err := KeepalivedConfig{Interface: "eth0", VirtualRouterID: 1, VirtualIPs: []string{"192.0.2.1/24"}}.normalize()
	if err != nil || c.Version != 3 || c.AdvertInt != 100*time.Millisecond {
		t.Fatalf("documented timers: version %d, advert_int %v, %v", c.Version, c.AdvertInt, err)
	}
}

// stmtLines returns the statements of a keepalived config, one per line,
// without comments and indentation.
func stmtLines(t *testing.T, text string) []string {
	t.Helper()
	stmts, err := parseKeepalived(text)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func([]*kaStmt)
	walk = func(ss []*kaStmt) {
		for _, s := range ss {
			if s.isBlk {
				out = append(out, s.line()+" {")
				walk(s.block)
				out = append(out, "}")
			} else {
				out = append(out, s.line())
			}
		}
	}
	walk(stmts)
	return out
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
		"lispctl quote":      func(c *KeepalivedConfig) { c.Lispctl = `lispctl --socket "x"` },
		"relative hook":      func(c *KeepalivedConfig) { c.NotifyHook = "lispd-vrrp-notify" },
		"track file space":   func(c *KeepalivedConfig) { c.TrackFile = "/tmp/a b" },
		"track iface slash":  func(c *KeepalivedConfig) { c.TrackInterface = "a/b" },
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
