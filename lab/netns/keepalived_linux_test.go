//go:build linux

package netns

import (
	"errors"
	"io"
	"os"
	"strings"
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
	cfg := KeepalivedConfig{
		Interface:       "eth0",
		VirtualRouterID: 51,
		AdvertInt:       100 * time.Millisecond,
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
