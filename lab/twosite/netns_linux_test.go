//go:build linux

package twosite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/capture"
	"github.com/lispd/lispd/lab/netns"
)

func beforeTests() {
	if os.Geteuid() == 0 {
		// Leftovers of crashed runs; live labs are left alone.
		if err := netns.CleanupStale(netns.DefaultPrefix); err != nil {
			fmt.Fprintln(os.Stderr, "CleanupStale:", err)
		}
	}
}

// buildCommands builds the named lispd commands into a temporary
// directory and returns their paths.
func buildCommands(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for _, name := range names {
		out[name] = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", out[name], "github.com/lispd/lispd/cmd/"+name)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, b)
		}
	}
	return out
}

// labNamespaces lists the namespaces in /run/netns whose names start with
// prefix.
func labNamespaces(t *testing.T, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(netns.NetnsDir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// newTestNetns builds the topology for a test; at the end it is closed
// and nothing of it may be left.
func newTestNetns(t *testing.T, o NetnsOptions) *Netns {
	t.Helper()
	n, err := NewNetns(o)
	if err != nil {
		t.Fatalf("NewNetns: %v", err)
	}
	prefix, dir := n.Lab().Prefix(), n.Lab().Dir()
	if got := labNamespaces(t, prefix); len(got) != 6 {
		t.Errorf("namespaces %v, want 6", got)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, node := range []string{NodeMS, NodeXTRA, NodeXTRB} {
				if p := n.Lispd(node); p != nil {
					t.Logf("lispd on %s:\n%s", node, p.Tail(30))
				}
			}
		}
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if left := labNamespaces(t, prefix); len(left) != 0 {
			t.Errorf("namespaces left after Close: %v", left)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("lab directory %s left after Close: %v", dir, err)
		}
	})
	return n
}

// TestNetnsPing runs the topology with real lispd processes and TUN
// devices: the system's ping from hostA to hostB is answered once both
// ITRs have resolved the other site, the capture of the RLOC network
// decodes in tshark and in lispctl with no malformed packet, and the xTRs
// can be stopped and started again (as lisplab bench dataplane does).
func TestNetnsPing(t *testing.T) {
	netns.Require(t)
	if _, err := capture.LookTshark(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI installs tshark: %v", err)
		}
		t.Skipf("tshark not installed: %v", err)
	}
	bins := buildCommands(t, "lispd", "lispctl")
	n := newTestNetns(t, NetnsOptions{Lispd: bins["lispd"], LogLevel: "debug"})
	p := n.Plan()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	capt, err := n.StartCapture("rloc.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pingAndCheck(ctx, t, n)

	// The reverse direction: both map-caches are warm, nothing is lost.
	res, err := netns.Ping(ctx, n.Node(NodeHostB), p.Host[SiteA].String(), 3, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if lost := res.Lost(); len(lost) != 0 || res.Received != 3 {
		t.Errorf("hostB -> hostA: lost %v, received %d of %d", lost, res.Received, res.Transmitted)
	}

	if err := capt.Stop(); err != nil {
		t.Fatal(err)
	}
	checkCapture(ctx, t, capt.Path(), bins["lispctl"])

	// Stop the xTRs: their TUN devices go; start them again: the sites
	// register again and traffic flows after fresh misses.
	if err := n.StopXTRs(); err != nil {
		t.Fatal(err)
	}
	if n.API(NodeXTRA) != nil || n.Lispd(NodeXTRB) != nil {
		t.Error("xTRs still listed after StopXTRs")
	}
	if out, err := n.Node(NodeXTRA).Exec(ctx, "ip", "link", "show", TUNName); err == nil {
		t.Errorf("%s still exists after StopXTRs:\n%s", TUNName, out)
	}
	if err := n.StartXTRs(ctx); err != nil {
		t.Fatal(err)
	}
	pingAndCheck(ctx, t, n)
	if err := n.StartMS(ctx); err == nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("second StartMS: %v, want ErrInvalid", err)
	}
}

// pingAndCheck pings hostB from hostA with empty map-caches: the first
// echo is lost at xtrA's miss, the first reply at xtrB's miss (the drop
// policy), every later one is answered, and each lost packet is one the
// ITRs counted.
func pingAndCheck(ctx context.Context, t *testing.T, n *Netns) {
	t.Helper()
	const count = 8
	res, err := netns.Ping(ctx, n.Node(NodeHostA), n.Plan().Host[SiteB].String(), count, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	lost := res.Lost()
	drops := 0
	for _, node := range []string{NodeXTRA, NodeXTRB} {
		st, err := n.API(node).Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d := int(st.Counters["itr_miss_packets_dropped"])
		if d < 1 {
			t.Errorf("%s dropped %d packets on a miss, want at least 1", node, d)
		}
		if st.Counters["itr_map_replies_accepted"] < 1 || st.Counters["dataplane_encap_packets"] < 1 || st.Counters["dataplane_decap_packets"] < 1 {
			t.Errorf("%s counters: %v", node, st.Counters)
		}
		drops += d
	}
	// Lost: a run of the first sequence numbers (normally 1 and 2), one
	// for every counted miss drop; the rest answered.
	want := make([]int, 0, count)
	for seq := 1; seq <= drops; seq++ {
		want = append(want, seq)
	}
	if !slices.Equal(lost, want) || len(lost) > 3 || res.Received != count-len(lost) {
		t.Errorf("hostA -> hostB: lost %v (received %d of %d), want the first %d (the ITRs' miss drops)", lost, res.Received, res.Transmitted, drops)
	}
}

// checkCapture checks the capture of the RLOC network: LISP control and
// data packets, none malformed for tshark, and lispctl decodes it all.
func checkCapture(ctx context.Context, t *testing.T, path, lispctl string) {
	t.Helper()
	pkts, err := capture.TsharkPackets(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var data, control int
	types := map[string]bool{}
	for i := range pkts {
		pk := &pkts[i]
		if pk.Malformed {
			t.Errorf("frame %d is malformed for tshark: %v %v", pk.Frame, pk.Protocols, pk.Expert)
		}
		switch {
		case pk.HasProtocol("lisp-data"):
			data++
		case pk.HasProtocol("lisp"):
			control++
			types[pk.Field("lisp.type")] = true
		default:
			t.Errorf("frame %d is not LISP for tshark: %v", pk.Frame, pk.Protocols)
		}
	}
	// 8 + 3 echoes, replies, registrations, a Map-Request and a Map-Reply
	// per ITR at least.
	if data < 16 || control < 6 {
		t.Errorf("capture holds %d LISP data and %d control packets (types %v)", data, control, types)
	}
	out, err := exec.CommandContext(ctx, lispctl, "decode", "--pcap", path).CombinedOutput()
	if err != nil {
		t.Fatalf("lispctl decode --pcap: %v\n%s", err, out)
	}
	for _, want := range []string{"Map-Register", "Map-Notify", "Map-Reply", "Encapsulated-Control-Message"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lispctl decode shows no %s", want)
		}
	}
}

func TestNetnsOptionsRefused(t *testing.T) {
	netns.Require(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []NetnsOptions{
		{},
		{Lispd: filepath.Join(t.TempDir(), "missing")},
		{Lispd: t.TempDir()},
		{Lispd: self, MissPolicy: "hold"},
		{Lispd: self, StartTimeout: -1},
	} {
		if n, err := NewNetns(o); !errors.Is(err, ErrInvalid) {
			if n != nil {
				_ = n.Close()
			}
			t.Errorf("%+v: %v, want ErrInvalid", o, err)
		}
	}
}
