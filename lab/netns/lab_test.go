//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// newLab makes a lab for a test (skipping when the lab cannot run here)
// and, when the test ends, closes it and checks that nothing is left.
func newLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	Require(t)
	before := hostLinks(t)
	l, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ids := labIDs(l)
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		assertGone(t, l, ids, before)
	})
	return l
}

// labIDs returns the namespace identities of the lab's nodes.
func labIDs(l *Lab) []nsID {
	var ids []nsID
	for _, n := range l.Nodes() {
		ids = append(ids, n.id)
	}
	return ids
}

// hostLinks returns the names and kinds of the host namespace's links.
func hostLinks(t *testing.T) map[string]string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("host links: %v", err)
	}
	m := map[string]string{}
	for _, l := range links {
		m[l.Attrs().Name] = l.Type()
	}
	return m
}

// childPids returns the PIDs of this process's children.
func childPids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		k := strings.LastIndexByte(string(b), ')')
		if k < 0 {
			continue
		}
		f := strings.Fields(string(b[k+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			out = append(out, pid)
		}
	}
	return out
}

// assertGone checks that a closed lab left nothing behind: no namespace
// file with its prefix, no process in its namespaces, no child process,
// no new link in the host namespace, no directory, no owner record.
func assertGone(t *testing.T, l *Lab, ids []nsID, hostBefore map[string]string) {
	t.Helper()
	left, err := namespacesWithPrefix(l.Prefix())
	if err != nil {
		t.Errorf("listing %s: %v", NetnsDir, err)
	}
	if len(left) > 0 {
		t.Errorf("namespaces left in %s: %v", NetnsDir, left)
	}
	if pids := processesIn(ids); len(pids) > 0 {
		t.Errorf("processes left in the lab's namespaces: %v", pids)
	}
	if pids := childPids(); len(pids) > 0 {
		t.Errorf("child processes left: %v", pids)
	}
	// Other packages' tests may add links to the host namespace while
	// this runs; look for the names this lab used.
	used := map[string]bool{}
	for _, n := range l.Nodes() {
		for _, i := range n.Interfaces() {
			used[i.Name()] = true
		}
	}
	for name, kind := range hostLinks(t) {
		if _, ok := hostBefore[name]; !ok && (used[name] || kind == "veth") {
			t.Errorf("new link in the host namespace: %s (%s)", name, kind)
		}
	}
	if _, err := os.Stat(l.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab directory %s still there (%v)", l.Dir(), err)
	}
	if _, err := os.Stat(l.owner); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("owner record %s still there (%v)", l.owner, err)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustNode(t *testing.T, l *Lab, name string) *Node {
	t.Helper()
	n, err := l.AddNode(name)
	if err != nil {
		t.Fatalf("AddNode(%s): %v", name, err)
	}
	return n
}

// pingOK pings and requires every reply.
func pingOK(t *testing.T, from *Node, dst string) PingResult {
	t.Helper()
	res, err := Ping(ctxTimeout(t, 10*time.Second), from, dst, 3, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("ping %s -> %s: %v", from, dst, err)
	}
	if res.Transmitted != 3 || res.Received != 3 || len(res.Lost()) != 0 || len(res.Replies) != 3 {
		t.Fatalf("ping %s -> %s: %+v", from, dst, res)
	}
	for i, r := range res.Replies {
		if r.Seq != i+1 || r.At.IsZero() || r.RTT <= 0 || r.From != dst {
			t.Errorf("ping %s -> %s: reply %d: %+v", from, dst, i, r)
		}
	}
	return res
}

func TestLinkPingDownUp(t *testing.T) {
	l := newLab(t, Options{})
	a, b := mustNode(t, l, "a"), mustNode(t, l, "b")
	if _, err := os.Stat(a.NsPath()); err != nil {
		t.Fatalf("namespace file: %v", err)
	}
	if !strings.HasPrefix(a.NsName(), l.Prefix()+"-") {
		t.Fatalf("namespace name %q lacks the lab prefix %q", a.NsName(), l.Prefix())
	}
	lp, err := l.Link(a, b, "10.0.1.1/24", "10.0.1.2/24")
	if err != nil {
		t.Fatalf("Link: %v", err)
	}
	if lp.A.Name() != "eth0" || lp.B.Name() != "eth0" || lp.A.Peer() != lp.B || lp.A.Node() != a {
		t.Fatalf("pair %v-%v", lp.A, lp.B)
	}
	if err := lp.A.AddAddr("2001:db8:1::1/64"); err != nil {
		t.Fatal(err)
	}
	if err := lp.B.AddAddr("2001:db8:1::2/64"); err != nil {
		t.Fatal(err)
	}
	addrs, err := lp.A.Addrs()
	if err != nil || len(addrs) != 2 || addrs[0].String() != "10.0.1.1/24" || addrs[1].String() != "2001:db8:1::1/64" {
		t.Fatalf("Addrs = %v, %v", addrs, err)
	}
	// `ip netns exec` works on the lab's namespaces, and sees the veth.
	out, err := a.Exec(ctxTimeout(t, 5*time.Second), "ip", "-o", "addr", "show", "dev", "eth0")
	if err != nil || !strings.Contains(string(out), "10.0.1.1/24") {
		t.Fatalf("ip addr in node: %v: %s", err, out)
	}

	pingOK(t, a, "10.0.1.2")
	pingOK(t, a, "2001:db8:1::2")

	// Failure: B's end down. A's end loses carrier; its route stays
	// (linkdown), so ping runs and loses everything.
	if err := lp.B.SetDown(); err != nil {
		t.Fatal(err)
	}
	if up, err := lp.A.IsUp(); err != nil || up {
		t.Fatalf("A IsUp = %v, %v after peer down", up, err)
	}
	res, err := Ping(ctxTimeout(t, 10*time.Second), a, "10.0.1.2", 3, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("ping with peer down: %v", err)
	}
	if res.Transmitted != 3 || res.Received != 0 || len(res.Lost()) != 3 || res.LossRatio() != 1 {
		t.Fatalf("ping with peer down: %+v", res)
	}
	// A's own end down: no route at all; ping fails to send.
	if err := lp.A.SetDown(); err != nil {
		t.Fatal(err)
	}
	if _, err := Ping(ctxTimeout(t, 10*time.Second), a, "10.0.1.2", 1, 20*time.Millisecond); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("ping with own link down: err = %v", err)
	}
	// Restore both: IPv4 and IPv6 work again (IPv6 addresses survived).
	if err := lp.A.SetUp(); err != nil {
		t.Fatal(err)
	}
	if err := lp.B.SetUp(); err != nil {
		t.Fatal(err)
	}
	pingOK(t, a, "10.0.1.2")
	pingOK(t, a, "2001:db8:1::2")

	// MTU on both ends.
	for _, i := range []*Iface{lp.A, lp.B} {
		if err := i.SetMTU(1400); err != nil {
			t.Fatal(err)
		}
		if m, err := i.MTU(); err != nil || m != 1400 {
			t.Fatalf("MTU = %d, %v", m, err)
		}
	}
	res, err = Ping(ctxTimeout(t, 10*time.Second), a, "10.0.1.2", 1, 20*time.Millisecond)
	if err != nil || res.Received != 1 {
		t.Fatalf("ping after MTU change: %+v, %v", res, err)
	}
}

func TestRoutedChain(t *testing.T) {
	hostFwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	l := newLab(t, Options{})
	a, r, c := mustNode(t, l, "a"), mustNode(t, l, "r"), mustNode(t, l, "c")
	ar, err := l.LinkWith(a, r, LinkConfig{
		AddrsA: []string{"10.1.0.2/24", "2001:db8:a::2/64"},
		AddrsB: []string{"10.1.0.1/24", "2001:db8:a::1/64"},
		NameB:  "to-a", MTU: 1450,
	})
	if err != nil {
		t.Fatal(err)
	}
	if ar.B.Name() != "to-a" {
		t.Fatalf("name %q", ar.B.Name())
	}
	if m, err := ar.B.MTU(); err != nil || m != 1450 {
		t.Fatalf("MTU %d, %v", m, err)
	}
	if _, err := l.LinkWith(r, c, LinkConfig{
		AddrsA: []string{"10.2.0.1/24", "2001:db8:c::1/64"},
		AddrsB: []string{"10.2.0.2/24", "2001:db8:c::2/64"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.EnableForwarding(true, true); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		n         *Node
		dst, via  string
		wantError bool
	}{
		{a, "default", "10.1.0.1", false},
		{a, "default", "2001:db8:a::1", false},
		{c, "10.1.0.0/24", "10.2.0.1", false},
		{c, "2001:db8:a::/64", "eth0", false}, // device route: on-link
		{c, "default", "eth0", true},          // family unknown
		{c, "10.9.0.0/16", "2001:db8:c::1", true},
	} {
		err := step.n.AddRoute(step.dst, step.via)
		if (err != nil) != step.wantError {
			t.Fatalf("%s: AddRoute(%s, %s) = %v", step.n, step.dst, step.via, err)
		}
		if step.wantError && !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: AddRoute(%s, %s) = %v, want ErrInvalid", step.n, step.dst, step.via, err)
		}
	}
	// c's IPv6 return route is on-link; r answers neighbour discovery for
	// nothing there, so give c a proper route instead.
	if err := c.DelRoute("2001:db8:a::/64", "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddRoute("2001:db8:a::/64", "2001:db8:c::1"); err != nil {
		t.Fatal(err)
	}
	pingOK(t, a, "10.2.0.2")
	pingOK(t, a, "2001:db8:c::2")

	// Sysctls are per node: r forwards, a does not, the host is untouched.
	ctx := ctxTimeout(t, 5*time.Second)
	for _, tc := range []struct {
		n    *Node
		want string
	}{{r, "1"}, {a, "0"}} {
		out, err := tc.n.Exec(ctx, "sysctl", "-n", "net.ipv4.ip_forward")
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Fatalf("%s ip_forward = %q, %v", tc.n, out, err)
		}
		v, err := tc.n.Sysctl("net/ipv6/conf/all/forwarding")
		if err != nil || v != tc.want {
			t.Fatalf("%s ipv6 forwarding = %q, %v", tc.n, v, err)
		}
	}
	if got, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(got) != string(hostFwd) {
		t.Fatalf("host ip_forward changed: %q -> %q", hostFwd, got)
	}

	// Interface shutdown on a: its default routes go with it; SetUp puts
	// them back.
	if err := ar.A.SetDown(); err != nil {
		t.Fatal(err)
	}
	if _, err := Ping(ctxTimeout(t, 5*time.Second), a, "10.2.0.2", 1, 20*time.Millisecond); err == nil {
		t.Fatal("ping through a downed interface succeeded")
	}
	if err := ar.A.SetUp(); err != nil {
		t.Fatal(err)
	}
	pingOK(t, a, "10.2.0.2")
	pingOK(t, a, "2001:db8:c::2")
}

func TestBridgeLAN(t *testing.T) {
	l := newLab(t, Options{})
	br, err := l.AddSwitch("lan")
	if err != nil {
		t.Fatal(err)
	}
	if br.Name() != "br0" || br.Node().Name() != "lan" {
		t.Fatalf("switch %s/%s", br.Node(), br.Name())
	}
	var nodes []*Node
	for i := 1; i <= 3; i++ {
		n := mustNode(t, l, fmt.Sprintf("h%d", i))
		lp, err := br.Attach(n, fmt.Sprintf("192.168.7.%d/24", i))
		if err != nil {
			t.Fatal(err)
		}
		if lp.B.Bridge() != br || lp.B.Node() != br.Node() || lp.A.Node() != n {
			t.Fatalf("attach: %v %v", lp.A, lp.B)
		}
		nodes = append(nodes, n)
	}
	// The switch node itself joins the LAN through its bridge interface.
	if err := br.Iface().AddAddr("192.168.7.100/24"); err != nil {
		t.Fatal(err)
	}
	if got := len(br.Node().Interfaces()); got != 4 {
		t.Fatalf("switch has %d interfaces, want br0 and 3 ports", got)
	}
	for i, from := range nodes {
		for j := range nodes {
			if i != j {
				pingOK(t, from, fmt.Sprintf("192.168.7.%d", j+1))
			}
		}
		pingOK(t, from, "192.168.7.100")
	}
}

func TestRunStopExec(t *testing.T) {
	l := newLab(t, Options{StopGrace: 500 * time.Millisecond})
	n := mustNode(t, l, "n")

	p := n.Run(context.Background(), "sleep", "60")
	if p.Pid() == 0 || p.Exited() {
		t.Fatalf("sleep did not start: %v", p.Wait())
	}
	// It runs inside the node's namespace as soon as Run returns.
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", p.Pid()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Ino != n.id.ino {
		t.Fatalf("sleep runs in netns %d, node is %d", st.Ino, n.id.ino)
	}
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !p.Exited() || time.Since(start) > 400*time.Millisecond {
		t.Fatalf("sleep took %v to stop", time.Since(start))
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// A failing program: its status and output tail are reported.
	p = n.Run(context.Background(), "sh", "-c", "echo starting; echo boom >&2; exit 3")
	err := p.Wait()
	var pe *ProcessError
	if !errors.As(err, &pe) || p.ExitCode() != 3 || !strings.Contains(pe.Tail, "boom") || !strings.Contains(pe.Tail, "starting") {
		t.Fatalf("Wait = %v (exit %d)", err, p.ExitCode())
	}

	// A program that does not exist.
	p = n.Run(context.Background(), "no-such-program-xyz")
	if err := p.Wait(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing program: %v", err)
	}

	// One that ignores SIGTERM is killed after the grace period, and so
	// is the child it left in its process group.
	p = n.Run(context.Background(), "sh", "-c", "trap '' TERM; sleep 60 & echo started; wait")
	if err := p.WaitOutput(ctxTimeout(t, 5*time.Second), "started"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop of a TERM-ignoring process: %v", err)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 3*time.Second {
		t.Fatalf("Stop took %v, want the 500ms grace", d)
	}
	if err := WaitUntil(ctxTimeout(t, 5*time.Second), func() (bool, error) {
		return len(processesIn([]nsID{n.id})) == 0, nil
	}); err != nil {
		t.Fatalf("group members left: %v", processesIn([]nsID{n.id}))
	}

	// The context stops a process.
	ctx, cancel := context.WithCancel(context.Background())
	p = n.Run(ctx, "sleep", "60")
	cancel()
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled context did not stop the process")
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait after cancel: %v", err)
	}

	// Exec: output and status.
	out, err := n.Exec(ctxTimeout(t, 5*time.Second), "sh", "-c", "echo out; echo err >&2")
	if err != nil || !strings.Contains(string(out), "out") || !strings.Contains(string(out), "err") {
		t.Fatalf("Exec = %q, %v", out, err)
	}
	if _, err := n.Exec(ctxTimeout(t, 5*time.Second), "false"); !errors.As(err, &pe) {
		t.Fatalf("Exec false = %v", err)
	}
	ectx, ecancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer ecancel()
	if _, err := n.Exec(ectx, "sleep", "10"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Exec past its deadline = %v", err)
	}

	// Processes left running are stopped by Close (checked by newLab).
	n.Run(context.Background(), "sleep", "60")
	if len(l.Processes()) != 1 {
		t.Fatalf("%d processes running, want 1", len(l.Processes()))
	}
}

func TestDoUDP(t *testing.T) {
	l := newLab(t, Options{})
	a, b := mustNode(t, l, "a"), mustNode(t, l, "b")
	if _, err := l.Link(a, b, "10.0.3.1/30", "10.0.3.2/30"); err != nil {
		t.Fatal(err)
	}
	// The address exists only inside b: binding to it works only there.
	if c, err := net.ListenPacket("udp4", "10.0.3.2:0"); err == nil {
		c.Close()
		t.Fatal("bound 10.0.3.2 in the host namespace")
	}
	var srv, cli net.PacketConn
	if err := b.Do(func() (err error) {
		srv, err = net.ListenPacket("udp4", "10.0.3.2:0")
		return err
	}); err != nil {
		t.Fatalf("Do in b: %v", err)
	}
	defer srv.Close()
	if err := a.Do(func() (err error) {
		cli, err = net.ListenPacket("udp4", "10.0.3.1:0")
		return err
	}); err != nil {
		t.Fatalf("Do in a: %v", err)
	}
	defer cli.Close()
	// The sockets stay in their namespaces after Do returns.
	if _, err := cli.WriteTo([]byte("hello"), srv.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	k, from, err := srv.ReadFrom(buf)
	if err != nil || string(buf[:k]) != "hello" || from.String() != cli.LocalAddr().String() {
		t.Fatalf("ReadFrom = %q from %v, %v", buf[:k], from, err)
	}
	// fn's error comes back.
	sentinel := errors.New("sentinel")
	if err := a.Do(func() error { return sentinel }); err != sentinel {
		t.Fatalf("Do error = %v", err)
	}
}

func TestCapture(t *testing.T) {
	l := newLab(t, Options{})
	a, b := mustNode(t, l, "a"), mustNode(t, l, "b")
	if _, err := l.Link(a, b, "10.0.4.1/30", "10.0.4.2/30"); err != nil {
		t.Fatal(err)
	}
	c, err := a.StartCapture("eth0", "icmp", "a-eth0.pcapng")
	if err != nil {
		t.Fatalf("StartCapture: %v", err)
	}
	if filepath.Dir(c.Path()) != l.Dir() {
		t.Fatalf("capture path %s not in %s", c.Path(), l.Dir())
	}
	pingOK(t, a, "10.0.4.2")
	if err := c.Stop(); err != nil {
		t.Fatalf("capture Stop: %v", err)
	}
	t.Logf("capture log: %s", c.Process().Tail(10))
	req, rep := countICMPEchoes(t, c.Path())
	if req != 3 || rep != 3 {
		t.Fatalf("capture has %d echo requests and %d replies, want 3 and 3", req, rep)
	}
	if _, err := a.StartCapture("nosuch0", "", "x.pcapng"); err == nil {
		t.Fatal("capture on a missing interface started")
	}
}

func TestCloseAfterFailure(t *testing.T) {
	Require(t)
	before := hostLinks(t)
	l, err := New(Options{StopGrace: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a, b := mustNode(t, l, "a"), mustNode(t, l, "b")
	if _, err := l.AddNode("a"); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate node: %v", err)
	}
	if _, err := l.AddNode("bad/name"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad node name: %v", err)
	}
	// A namespace file that is not the lab's is neither used nor removed.
	foreign := filepath.Join(NetnsDir, l.Prefix()+"-foreign")
	if err := os.WriteFile(foreign, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(foreign)
	if _, err := l.AddNode("foreign"); !errors.Is(err, ErrExists) {
		t.Fatalf("AddNode over a foreign file: %v", err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatalf("foreign file removed: %v", err)
	}
	os.Remove(foreign)
	if _, err := l.Link(a, b, "10.0.5.1/24", "10.0.5.2/24"); err != nil {
		t.Fatal(err)
	}
	p := a.Run(context.Background(), "sleep", "60")
	if p.Exited() {
		t.Fatal(p.Wait())
	}
	// A bad address is refused before anything is created.
	if _, err := l.Link(a, b, "10.0.6.1", "10.0.6.2/24"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Link with a bad address: %v", err)
	}
	// The kernel refuses the second of two identical addresses, after the
	// veth exists: the pair is deleted again.
	_, err = l.LinkWith(a, b, LinkConfig{AddrsA: []string{"10.0.7.1/24", "10.0.7.1/24"}})
	if err == nil {
		t.Fatal("duplicate address accepted")
	}
	if got := len(a.Interfaces()); got != 1 {
		t.Fatalf("a has %d lab interfaces after the failed link, want 1", got)
	}
	out, err := a.Exec(ctxTimeout(t, 5*time.Second), "ip", "-o", "link")
	if err != nil || strings.Count(string(out), "\n") != 2 {
		t.Fatalf("a's links after the failed link: %v\n%s", err, out)
	}
	// A name that is too long, a bridge name taken.
	if _, err := l.LinkWith(a, b, LinkConfig{NameA: "much-too-long-name"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("long name: %v", err)
	}
	if _, err := l.AddBridge(a, "eth0"); !errors.Is(err, ErrExists) {
		t.Fatalf("bridge over eth0: %v", err)
	}

	ids := labIDs(l)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !p.Exited() {
		t.Fatal("process survived Close")
	}
	assertGone(t, l, ids, before)
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Nothing works after Close, and nothing reaches the host.
	if _, err := l.AddNode("c"); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddNode after Close: %v", err)
	}
	if err := a.Iface("eth0").SetDown(); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetDown after Close: %v", err)
	}
	if err := a.Do(func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
	if err := a.Run(context.Background(), "true").Wait(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
}

func TestCleanupStale(t *testing.T) {
	Require(t)
	before := hostLinks(t)
	crashed, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { crashed.Close() })
	live := newLab(t, Options{})
	mustNode(t, live, "x")

	a, b := mustNode(t, crashed, "a"), mustNode(t, crashed, "b")
	if _, err := crashed.Link(a, b, "10.0.8.1/24", "10.0.8.2/24"); err != nil {
		t.Fatal(err)
	}
	p := a.Run(context.Background(), "sleep", "60")
	if p.Exited() || len(processesIn([]nsID{a.id})) != 1 {
		t.Fatalf("sleep not running in a when Run returned: %v", processesIn([]nsID{a.id}))
	}
	ids := labIDs(crashed)
	markOwnerDead(t, crashed)
	if err := CleanupStale(DefaultPrefix); err != nil {
		t.Fatalf("CleanupStale: %v", err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("CleanupStale did not kill the stale lab's process")
	}
	if left, _ := namespacesWithPrefix(crashed.Prefix()); len(left) > 0 {
		t.Fatalf("stale namespaces left: %v", left)
	}
	if _, err := os.Stat(crashed.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale directory left: %v", err)
	}
	// The live lab is untouched.
	if left, _ := namespacesWithPrefix(live.Prefix()); len(left) != 1 {
		t.Fatalf("live lab's namespaces: %v", left)
	}
	pingRes, err := Ping(ctxTimeout(t, 5*time.Second), live.Node("x"), "127.0.0.1", 1, 10*time.Millisecond)
	if err != nil || pingRes.Received != 1 {
		t.Fatalf("live lab after CleanupStale: %+v, %v", pingRes, err)
	}
	// Closing the cleaned-up lab still works.
	if err := crashed.Close(); err != nil {
		t.Fatalf("Close after CleanupStale: %v", err)
	}
	assertGone(t, crashed, ids, before)
	if err := CleanupStale(""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("CleanupStale(\"\") = %v", err)
	}
}

// markOwnerDead rewrites a lab's owner record as if its process had died
// (a PID that is not running), keeping what it records.
func markOwnerDead(t *testing.T, l *Lab) {
	t.Helper()
	b, err := os.ReadFile(l.owner)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "pid="):
			line = fmt.Sprintf("pid=%d", 1<<22-1)
		case strings.HasPrefix(line, "start="):
			line = "start=1"
		}
		out = append(out, line)
	}
	if err := os.WriteFile(l.owner, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// foreignNamespace creates a namespace with `ip netns add`, as another
// user or program would, with a process in it; the test removes both.
func foreignNamespace(t *testing.T, name string) (nsID, *exec.Cmd) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	cmd := exec.Command("ip", "netns", "exec", name, "sleep", "60")
	if err := cmd.Start(); err != nil {
		exec.Command("ip", "netns", "del", name).Run()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(NetnsDir, name), &st); err != nil {
		t.Fatal(err)
	}
	id := nsID{dev: st.Dev, ino: st.Ino}
	waitUntil(t, 5*time.Second, "sleep running in "+name, func() bool { return len(processesIn([]nsID{id})) == 1 })
	return id, cmd
}

// TestCleanupStaleLeavesForeign: CleanupStale removes only what an owner
// record of ours proves a crashed lab created. Namespaces merely named like
// a lab's survive with their processes: one with no record at all, one
// named in a record that is not ours (another user's), and one named in our
// stale record that was deleted and re-created by other means since.
func TestCleanupStaleLeavesForeign(t *testing.T) {
	Require(t)
	// 1. No owner record at all.
	unrecorded := DefaultPrefix + randomSuffix(5) + "-x"
	idUnrecorded, _ := foreignNamespace(t, unrecorded)

	// 2. A record naming it, but not written by this user.
	otherPrefix := DefaultPrefix + randomSuffix(5)
	otherNS := otherPrefix + "-x"
	idOther, _ := foreignNamespace(t, otherNS)
	otherRec := filepath.Join(ownerDir, otherPrefix+".owner")
	if err := os.WriteFile(otherRec, []byte(fmt.Sprintf("pid=%d\nstart=1\n%s", 1<<22-1,
		formatNamespace(recordedNS{name: otherNS, id: idOther}))), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(otherRec) })
	if err := os.Chown(otherRec, 65534, 65534); err != nil {
		t.Fatal(err)
	}

	// 3. A stale record of ours naming it with its device and inode (as
	// if the kernel had given a recorded inode number to a new namespace)
	// but another cookie.
	reusedPrefix := DefaultPrefix + randomSuffix(5)
	reusedNS := reusedPrefix + "-x"
	idReused, _ := foreignNamespace(t, reusedNS)
	reusedRec := filepath.Join(ownerDir, reusedPrefix+".owner")
	if err := os.WriteFile(reusedRec, []byte(fmt.Sprintf("pid=%d\nstart=1\n%s", 1<<22-1,
		formatNamespace(recordedNS{name: reusedNS, id: idReused, cookie: 1 << 63}))), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(reusedRec) })

	// 4. A crashed lab of ours: node a is still the namespace it made;
	// node b's namespace was deleted and another made under its name.
	crashed, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { crashed.Close() })
	a, b := mustNode(t, crashed, "a"), mustNode(t, crashed, "b")
	p := a.Run(context.Background(), "sleep", "60")
	if err := unix.Unmount(b.nsPath, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(b.nsPath); err != nil {
		t.Fatal(err)
	}
	idReplaced, _ := foreignNamespace(t, b.nsName)
	markOwnerDead(t, crashed)

	if err := CleanupStale(DefaultPrefix); err != nil {
		t.Fatalf("CleanupStale: %v", err)
	}
	// Ours is gone, with its process and record.
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("CleanupStale did not kill the stale lab's process")
	}
	if _, err := os.Stat(a.nsPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale lab's namespace %s is left: %v", a.nsName, err)
	}
	if _, err := os.Stat(crashed.owner); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale owner record is left: %v", err)
	}
	// The others are untouched, their processes alive.
	for name, id := range map[string]nsID{unrecorded: idUnrecorded, otherNS: idOther, reusedNS: idReused, b.nsName: idReplaced} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(NetnsDir, name), &st); err != nil || (nsID{dev: st.Dev, ino: st.Ino}) != id {
			t.Errorf("%s was removed or replaced: %v", name, err)
		}
		if n := len(processesIn([]nsID{id})); n != 1 {
			t.Errorf("%d processes left in %s, want its sleep", n, name)
		}
	}
	if _, err := os.Stat(otherRec); err != nil {
		t.Errorf("another user's owner record was removed: %v", err)
	}
}

func TestSysctlOnlyNet(t *testing.T) {
	l := newLab(t, Options{})
	n := mustNode(t, l, "n")
	for _, key := range []string{"kernel.hostname", "vm.swappiness", "net/../kernel/hostname", "net", "net..ipv4"} {
		if err := n.SetSysctl(key, "1"); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetSysctl(%q) = %v, want ErrInvalid", key, err)
		}
	}
	if err := n.SetSysctl("net.ipv4.conf.all.rp_filter", "2"); err != nil {
		t.Fatal(err)
	}
	if v, err := n.Sysctl("net.ipv4.conf.all.rp_filter"); err != nil || v != "2" {
		t.Fatalf("rp_filter = %q, %v", v, err)
	}
	if v, err := n.Sysctl("net.ipv6.conf.all.keep_addr_on_down"); err != nil || v != "1" {
		t.Fatalf("keep_addr_on_down = %q, %v", v, err)
	}
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pollEvery)
	}
}
