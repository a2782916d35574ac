//go:build linux

package netns

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// countICMPEchoes counts the ICMPv4 echo requests and replies in a pcapng
// file.
func countICMPEchoes(t *testing.T, path string) (requests, replies int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return requests, replies
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		pkt := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		icmp, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if !ok {
			continue
		}
		switch icmp.TypeCode.Type() {
		case layers.ICMPv4TypeEchoRequest:
			requests++
		case layers.ICMPv4TypeEchoReply:
			replies++
		}
	}
}

// TestKeepalivedFailover is the paper's site LAN in small: two routers
// and a host on one segment, VRRP between the routers. The VIP is on the
// higher-priority router; shutting its LAN interface moves the VIP to the
// other, and the host's ping to the VIP carries on.
func TestKeepalivedFailover(t *testing.T) {
	l := newLab(t, Options{})
	lan, err := l.AddSwitch("lan")
	if err != nil {
		t.Fatal(err)
	}
	r1, r2, h := mustNode(t, l, "r1"), mustNode(t, l, "r2"), mustNode(t, l, "h")
	r1lan, err := lan.Attach(r1, "10.0.9.1/24")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lan.Attach(r2, "10.0.9.2/24"); err != nil {
		t.Fatal(err)
	}
	if _, err := lan.Attach(h, "10.0.9.10/24"); err != nil {
		t.Fatal(err)
	}
	const vip = "10.0.9.254"
	// The documented timers (deploy/keepalived: VRRPv3, 100 ms).
	cfg := KeepalivedConfig{
		Interface:       "eth0",
		VirtualRouterID: 51,
		VirtualIPs:      []string{vip + "/24"},
	}
	cfg.Priority = 200
	k1, err := r1.StartKeepalived(cfg)
	if err != nil {
		t.Fatalf("keepalived on r1: %v", err)
	}
	cfg.Priority = 100
	k2, err := r2.StartKeepalived(cfg)
	if err != nil {
		t.Fatalf("keepalived on r2: %v", err)
	}
	if k1.Config().Version != 3 || k1.Config().Instance != "VI_51" {
		t.Fatalf("normalized config: %+v", k1.Config())
	}
	ctx := ctxTimeout(t, 20*time.Second)
	if err := WaitVIPOwner(ctxTimeout(t, 5*time.Second), vip, r1, r1, r2, h); err != nil {
		t.Fatal(err)
	}
	if err := k1.WaitState(ctxTimeout(t, 5*time.Second), StateMaster); err != nil {
		t.Fatal(err)
	}
	if err := k2.WaitState(ctxTimeout(t, 5*time.Second), StateBackup); err != nil {
		t.Fatal(err)
	}
	if own, err := k1.OwnsVIP(); err != nil || !own {
		t.Fatalf("r1 OwnsVIP = %v, %v", own, err)
	}

	ps, err := StartPing(ctx, h, vip, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitUntil(ctxTimeout(t, 5*time.Second), func() (bool, error) {
		s := ps.Snapshot()
		return len(s.Replies) >= 10, nil
	}); err != nil {
		t.Fatalf("no replies from the VIP before the failure: %+v", ps.Snapshot())
	}

	// ITR1 fails by interface shutdown.
	failedAt := time.Now()
	if err := r1lan.A.SetDown(); err != nil {
		t.Fatal(err)
	}
	if err := WaitVIPOwner(ctxTimeout(t, 5*time.Second), vip, r2, r1, r2, h); err != nil {
		t.Fatal(err)
	}
	tookOver := time.Since(failedAt)
	if err := k1.WaitState(ctxTimeout(t, 5*time.Second), StateFault); err != nil {
		t.Fatal(err)
	}
	if err := k2.WaitState(ctxTimeout(t, 5*time.Second), StateMaster); err != nil {
		t.Fatal(err)
	}
	// The host keeps reaching the VIP, now at r2.
	afterFailover := func() int {
		n := 0
		for _, r := range ps.Snapshot().Replies {
			if r.At.After(failedAt.Add(tookOver)) {
				n++
			}
		}
		return n
	}
	if err := WaitUntil(ctxTimeout(t, 5*time.Second), func() (bool, error) { return afterFailover() >= 20, nil }); err != nil {
		t.Fatalf("ping to the VIP did not resume after failover (%d replies since)", afterFailover())
	}
	res, err := ps.Stop()
	if err != nil {
		t.Fatalf("ping Stop: %v", err)
	}
	if !res.Summary || res.Received == 0 || res.Transmitted < 30 {
		t.Fatalf("ping result: %d/%d summary=%v", res.Received, res.Transmitted, res.Summary)
	}
	lost := res.Lost()
	for _, s := range lost {
		if s > res.Transmitted-5 {
			t.Fatalf("probe %d of %d lost after the failover settled (lost: %v)", s, res.Transmitted, lost)
		}
	}
	t.Logf("failover took %v; ping lost %d of %d probes (%v)", tookOver.Round(time.Millisecond), len(lost), res.Transmitted, lost)

	// r1 comes back and, with the higher priority, takes the VIP back.
	if err := r1lan.A.SetUp(); err != nil {
		t.Fatal(err)
	}
	if err := WaitVIPOwner(ctxTimeout(t, 5*time.Second), vip, r1, r1, r2, h); err != nil {
		t.Fatal(err)
	}
	if err := k2.Stop(); err != nil {
		t.Fatalf("keepalived Stop: %v", err)
	}
	out, errOut, _ := k2.Process().Output()
	if !strings.Contains(string(out)+string(errOut), "Stopping") {
		t.Logf("keepalived log:\n%s", k2.Process().Tail(20))
	}
}

func TestStartKeepalivedErrors(t *testing.T) {
	l := newLab(t, Options{})
	n := mustNode(t, l, "n")
	// Invalid configurations never reach keepalived.
	if _, err := n.StartKeepalived(KeepalivedConfig{Interface: "eth0", VirtualRouterID: 0, VirtualIPs: []string{"10.0.0.1/24"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("VRID 0: %v", err)
	}
	// An interface the node lacks: keepalived refuses it (config test or
	// start), and StartKeepalived says so rather than hanging.
	_, err := n.StartKeepalived(KeepalivedConfig{Interface: "eth7", VirtualRouterID: 3, VirtualIPs: []string{"10.0.0.1/24"}})
	if err == nil {
		t.Fatal("keepalived on a missing interface started")
	}
	t.Logf("missing interface: %v", err)
}

// vrrpPair is two routers on a LAN switch, each with an RLOC-side link to
// the other (the tracked interface), running keepalived with the
// documented config: r1 (priority 150) is the master, r2 (100) the
// backup. Their lispctl is a stub that records its arguments.
type vrrpPair struct {
	l        *Lab
	r1, r2   *Node
	k1, k2   *Keepalived
	cfg1     KeepalivedConfig
	vip      string
	stubLogs map[*Node]string
}

func newVRRPPair(t *testing.T) *vrrpPair {
	t.Helper()
	l := newLab(t, Options{})
	lan, err := l.AddSwitch("lan")
	if err != nil {
		t.Fatal(err)
	}
	p := &vrrpPair{l: l, r1: mustNode(t, l, "r1"), r2: mustNode(t, l, "r2"), vip: "10.0.9.254", stubLogs: map[*Node]string{}}
	if _, err := lan.AttachWith(p.r1, LinkConfig{NameA: "lan0", AddrsA: []string{"10.0.9.1/24"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := lan.AttachWith(p.r2, LinkConfig{NameA: "lan0", AddrsA: []string{"10.0.9.2/24"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.LinkWith(p.r1, p.r2, LinkConfig{NameA: "rloc0", NameB: "rloc0", AddrsA: []string{"198.19.0.1/24"}, AddrsB: []string{"198.19.0.2/24"}}); err != nil {
		t.Fatal(err)
	}
	cfg := func(n *Node, prio int) KeepalivedConfig {
		stub := filepath.Join(l.Dir(), "lispctl-"+n.Name())
		p.stubLogs[n] = stub + ".calls"
		script := "#!/bin/sh\necho \"$*\" >> " + p.stubLogs[n] + "\nexit 0\n"
		if err := os.WriteFile(stub, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return KeepalivedConfig{
			Instance:        "site_a",
			Interface:       "lan0",
			TrackInterface:  "rloc0",
			VirtualRouterID: 51,
			Priority:        prio,
			VirtualIPs:      []string{p.vip + "/24"},
			Lispctl:         stub + " --socket " + filepath.Join(l.Dir(), n.Name()+".sock"),
		}
	}
	p.cfg1 = cfg(p.r1, 150)
	if p.k1, err = p.r1.StartKeepalived(p.cfg1); err != nil {
		t.Fatalf("keepalived on r1: %v", err)
	}
	if p.k2, err = p.r2.StartKeepalived(cfg(p.r2, 100)); err != nil {
		t.Fatalf("keepalived on r2: %v", err)
	}
	for _, k := range []*Keepalived{p.k1, p.k2} {
		if c := k.Config(); c.Version != 3 || c.AdvertInt != 100*time.Millisecond {
			t.Fatalf("not the documented timers: version %d, advert_int %v", c.Version, c.AdvertInt)
		}
	}
	p.waitMaster(t, p.r1, p.k1, p.k2)
	return p
}

// waitMaster waits until master holds the VIP alone and its keepalived
// says MASTER, the other BACKUP.
func (p *vrrpPair) waitMaster(t *testing.T, master *Node, km, kb *Keepalived) {
	t.Helper()
	if err := WaitVIPOwner(ctxTimeout(t, 10*time.Second), p.vip, master, p.r1, p.r2); err != nil {
		t.Fatal(err)
	}
	if err := km.WaitState(ctxTimeout(t, 5*time.Second), StateMaster); err != nil {
		t.Fatal(err)
	}
	if err := kb.WaitState(ctxTimeout(t, 5*time.Second), StateBackup); err != nil {
		t.Fatal(err)
	}
}

// waitVIP waits until n holds the VIP, polling every millisecond, and
// returns how long after since that was.
func (p *vrrpPair) waitVIP(t *testing.T, n *Node, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		ok, err := n.HasAddr(p.vip)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return time.Since(since)
		}
		if time.Since(since) > limit {
			t.Fatalf("%s does not hold %s %v after the failure", n.Name(), p.vip, limit)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitFailoverCheck waits until n's notify hook has run `lispctl failover
// check`, with n's lispctl options, count times in all.
func (p *vrrpPair) waitFailoverCheck(t *testing.T, n *Node, count int) {
	t.Helper()
	want := "--socket " + filepath.Join(p.l.Dir(), n.Name()+".sock") + " --timeout 3s failover check"
	var got int
	err := WaitUntil(ctxTimeout(t, 5*time.Second), func() (bool, error) {
		b, _ := os.ReadFile(p.stubLogs[n])
		got = strings.Count(string(b), want+"\n")
		return got >= count, nil
	})
	if err != nil {
		b, _ := os.ReadFile(p.stubLogs[n])
		t.Fatalf("%s: %d of %d %q by the notify hook; lispctl calls:\n%s", n.Name(), got, count, want, b)
	}
}

// vrrpTakeoverLimit is the gap the documented timers promise: 3 x 0.1 s
// + skew (0.06 s at priority 100), with some room for a loaded machine.
const vrrpTakeoverLimit = 500 * time.Millisecond

// TestKeepalivedDocumentedTakeover runs the documented keepalived config
// (deploy/keepalived) on two routers, kills the master's keepalived with
// SIGKILL (no priority-0 advertisement: a crash) and measures the time
// until the backup holds the VIP. The notify hook runs `lispctl failover
// check` on each router that becomes MASTER.
func TestKeepalivedDocumentedTakeover(t *testing.T) {
	p := newVRRPPair(t)
	p.waitFailoverCheck(t, p.r1, 1)
	const rounds = 3
	var gaps []time.Duration
	for i := range rounds {
		killedAt := time.Now()
		if err := p.k1.Process().Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		gap := p.waitVIP(t, p.r2, killedAt, 5*time.Second)
		gaps = append(gaps, gap)
		if err := p.k2.WaitState(ctxTimeout(t, 5*time.Second), StateMaster); err != nil {
			t.Fatal(err)
		}
		p.waitFailoverCheck(t, p.r2, i+1)
		_ = p.k1.Process().Wait()
		// r1 comes back (its keepalived removes the VIP the crash left)
		// and, with the higher priority, takes the VIP back.
		var err error
		if p.k1, err = p.r1.StartKeepalived(p.cfg1); err != nil {
			t.Fatalf("restarting keepalived on r1: %v", err)
		}
		p.waitMaster(t, p.r1, p.k1, p.k2)
		p.waitFailoverCheck(t, p.r1, i+2)
	}
	t.Logf("take-over after SIGKILL of the master: %v (limit %v)", gaps, vrrpTakeoverLimit)
	for _, g := range gaps {
		if g > vrrpTakeoverLimit {
			t.Errorf("take-over took %v, want under %v (all: %v)", g, vrrpTakeoverLimit, gaps)
		}
	}
}

// TestKeepalivedDrainHandover writes a non-zero value into the master's
// drain track file, as lispd does on `lispctl drain`: with the documented
// track_file (weight 0) the master goes to FAULT, sends a priority-0
// advertisement, and the backup takes over at once. Writing 0 (`lispctl
// undrain`) gives the address back.
func TestKeepalivedDrainHandover(t *testing.T) {
	p := newVRRPPair(t)
	if b, err := os.ReadFile(p.k1.TrackFile()); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Fatalf("track file %s: %q, %v; want 0", p.k1.TrackFile(), b, err)
	}
	var gaps []time.Duration
	for range 3 {
		drainedAt := time.Now()
		if err := p.k1.SetTrackFile(1); err != nil {
			t.Fatal(err)
		}
		gaps = append(gaps, p.waitVIP(t, p.r2, drainedAt, 5*time.Second))
		if err := WaitVIPOwner(ctxTimeout(t, 5*time.Second), p.vip, p.r2, p.r1, p.r2); err != nil {
			t.Fatal(err)
		}
		if err := p.k1.WaitState(ctxTimeout(t, 5*time.Second), StateFault); err != nil {
			t.Fatal(err)
		}
		if err := p.k2.WaitState(ctxTimeout(t, 5*time.Second), StateMaster); err != nil {
			t.Fatal(err)
		}
		// Undrained, r1 preempts again.
		if err := p.k1.SetTrackFile(0); err != nil {
			t.Fatal(err)
		}
		p.waitMaster(t, p.r1, p.k1, p.k2)
	}
	_, errOut, _ := p.k2.Process().Output()
	if !strings.Contains(string(errOut), "received priority 0 advertisement") {
		t.Errorf("r2 never logged a priority-0 advertisement:\n%s", p.k2.Process().Tail(30))
	}
	t.Logf("hand-over after the drain file went to 1: %v (limit %v)", gaps, vrrpTakeoverLimit)
	for _, g := range gaps {
		if g > vrrpTakeoverLimit {
			t.Errorf("drain hand-over took %v, want under %v (all: %v)", g, vrrpTakeoverLimit, gaps)
		}
	}
}
