package paper

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/lab/netns"
	"github.com/lispd/lispd/lab/traffic"
)

// TestNetnsObservers checks the netns lab's own instruments without lispd:
// a host pings a router's virtual address with the raw sender, the sniffer
// on the host sees the replies, keepalived moves the address when the
// master's LAN interface is shut, and the measured switchover is within
// keepalived's Master_Down_Interval bounds.
func TestNetnsObservers(t *testing.T) {
	netns.Require(t)
	lab, err := netns.New(netns.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	sw, err := lab.AddSwitch("lan")
	if err != nil {
		t.Fatal(err)
	}
	host, err := lab.AddNode("usr")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sw.AttachWith(host, netns.LinkConfig{NameA: "eth0", AddrsA: []string{"192.0.2.11/24"}}); err != nil {
		t.Fatal(err)
	}
	var routers []*netns.Node
	for i, name := range []string{"r1", "r2"} {
		n, err := lab.AddNode(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sw.AttachWith(n, netns.LinkConfig{NameA: "lan0", AddrsA: []string{netip.AddrFrom4([4]byte{192, 0, 2, byte(3 + i)}).String() + "/24"}}); err != nil {
			t.Fatal(err)
		}
		state, prio := netns.StateBackup, 100
		if i == 0 {
			state, prio = netns.StateMaster, 150
		}
		if _, err := n.StartKeepalived(netns.KeepalivedConfig{Interface: "lan0", VirtualRouterID: 1, Priority: prio, VirtualIPs: []string{"192.0.2.1/24"}, State: state}); err != nil {
			t.Fatal(err)
		}
		routers = append(routers, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := netns.WaitVIPOwner(ctx, "192.0.2.1", routers[0], routers...); err != nil {
		t.Fatal(err)
	}

	vip := netip.MustParseAddr("192.0.2.1")
	led, err := traffic.NewLedger([]traffic.Flow{{ID: 1, Host: "USR1", Src: netip.MustParseAddr("192.0.2.11"), Dst: vip}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var replies []uint16
	sn, err := startSniffer(host, "eth0", func(pkt []byte, outgoing bool, at time.Time) {
		e, err := traffic.ParseEcho(pkt)
		if err != nil || outgoing || e.Type != traffic.EchoReply {
			return
		}
		mu.Lock()
		replies = append(replies, e.Seq)
		mu.Unlock()
		_ = led.Received(pkt, at)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sn.close()
	rs, err := newRawSender(host)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.close()
	seq := uint16(0)
	ping := func() uint16 {
		t.Helper()
		seq++
		pkt, err := led.Request(1, seq)
		if err != nil {
			t.Fatal(err)
		}
		if err := led.Sent(pkt, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := rs.send(pkt, vip); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	answered := func(s uint16) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range replies {
			if r == s {
				return true
			}
		}
		return false
	}
	waitReply := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s := ping()
			time.Sleep(100 * time.Millisecond)
			if answered(s) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no echo reply from %s", what)
			}
		}
	}
	waitReply("the master's virtual address")

	failAt := time.Now()
	if err := routers[0].Iface("lan0").SetDown(); err != nil {
		t.Fatal(err)
	}
	var took time.Duration
	deadline := time.Now().Add(15 * time.Second)
	for {
		if ok, err := routers[1].HasAddr("192.0.2.1"); err == nil && ok {
			took = time.Since(failAt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the backup never took the virtual address")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The documented timers (deploy/keepalived: VRRPv3, advert_int 0.1),
	// priority 100: the backup takes over 0.361 s after the last
	// advertisement, so 0.26 to 0.37 s after the failure (plus
	// scheduling on a loaded machine).
	if took < 200*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("switchover after %v, want about 0.26-0.37 s", took)
	}
	waitReply("the backup after the switchover")
	sum := led.Classify(failAt.Add(-time.Hour), traffic.ClassifyOptions{FailAt: failAt})
	if sum.Before[traffic.Delivered] == 0 || sum.After[traffic.Delivered] == 0 {
		t.Errorf("replies before/after the failure: %v / %v", sum.Before, sum.After)
	}
}
