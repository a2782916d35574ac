//go:build linux

package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/deploy/keepalived"
	"github.com/lispd/lispd/lab/netns"
)

// guideMachine is one machine of the getting-started guide.
type guideMachine struct {
	name     string
	rlocAddr string // eth0, on the RLOC network
	lanAddr  string // eth1, on site-a's LAN; empty for ms1
	node     *netns.Node
	socket   string
	track    string // the VRRP track file (/run/lispd/vrrp-drain in the guide)
	lispd    *netns.Process
}

// TestGettingStarted runs docs/getting-started.md in network namespaces:
// the three machines with the guide's lispd configs and keepalived files,
// unchanged but for file paths and the peer keys the guide has the
// operator paste in, each lispd running as an unprivileged user with only
// CAP_NET_ADMIN as the systemd unit has it. A host of site-a then pings
// site-b's EID 10.2.0.1 through its VRRP gateway, and again after the
// gateway moved to the other xTR.
func TestGettingStarted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three lispd, two keepalived and a network of namespaces")
	}
	netns.Require(t)
	for _, prog := range []string{"keepalived", "ping", "setpriv"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("%s is not installed", prog)
		}
	}
	// lispd runs as nobody, like the unit's lispd user, when nobody may
	// open /dev/net/tun (mode 0666 on Debian and Ubuntu); where the device
	// is root's only (some containers), as root, still with CAP_NET_ADMIN
	// as its only capability.
	runAs, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody to run lispd as: %v", err)
	}
	if fi, err := os.Stat("/dev/net/tun"); err != nil || fi.Mode().Perm()&0o006 != 0o006 {
		t.Logf("/dev/net/tun is not open to other users here (%v): lispd runs as root, with CAP_NET_ADMIN only", fi.Mode().Perm())
		runAs = &user.User{Uid: "0", Gid: "0"}
	}
	lispd, lispctl := binary(t, "lispd"), binary(t, "lispctl")

	lab, err := netns.New(netns.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var procs []*netns.Process // every process started, for the logs of a failure
	defer func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("--- %s on %s:\n%s", p.Name(), p.Node().Name(), p.Tail(40))
			}
		}
		if err := lab.Close(); err != nil {
			t.Errorf("lab: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The network of the guide's diagram.
	machines := []*guideMachine{
		{name: "ms1", rlocAddr: "192.0.2.10/24"},
		{name: "xtr-a1", rlocAddr: "192.0.2.11/24", lanAddr: "10.1.0.2/24"},
		{name: "xtr-a2", rlocAddr: "192.0.2.12/24", lanAddr: "10.1.0.3/24"},
	}
	rlocNet, err := lab.AddSwitch("rlocnet")
	if err != nil {
		t.Fatal(err)
	}
	lan, err := lab.AddSwitch("lan-a")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range machines {
		if m.node, err = lab.AddNode(m.name); err != nil {
			t.Fatal(err)
		}
		if _, err := rlocNet.AttachWith(m.node, netns.LinkConfig{NameA: "eth0", AddrsA: []string{m.rlocAddr}}); err != nil {
			t.Fatal(err)
		}
		if m.lanAddr != "" {
			if _, err := lan.AttachWith(m.node, netns.LinkConfig{NameA: "eth1", AddrsA: []string{m.lanAddr}}); err != nil {
				t.Fatal(err)
			}
			// The guide: sysctl -w net.ipv4.ip_forward=1 on the xTRs.
			if err := m.node.EnableForwarding(true, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	host, err := lab.AddNode("host-a1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lan.AttachWith(host, netns.LinkConfig{NameA: "eth0", AddrsA: []string{"10.1.0.100/24"}}); err != nil {
		t.Fatal(err)
	}
	if err := host.AddDefaultRoute("10.1.0.1"); err != nil {
		t.Fatal(err)
	}

	// /etc/lispd of each machine, owned by the user lispd runs as. The
	// sync keys are made as the guide makes them, with lispctl sync keygen.
	uid, _ := strconv.Atoi(runAs.Uid)
	gid, _ := strconv.Atoi(runAs.Gid)
	etc := filepath.Join(lab.Dir(), "etc")
	public := map[string]string{}
	keyFile := map[string]string{}
	for _, m := range machines {
		dir := filepath.Join(etc, m.name)
		if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(dir, "run"), uid, gid); err != nil {
			t.Fatal(err)
		}
		m.socket = filepath.Join(dir, "run", "lispd.sock")
		m.track = filepath.Join(dir, "run", "vrrp-drain")
		if m.lanAddr == "" {
			continue
		}
		keyFile[m.name] = filepath.Join(dir, "sync.key")
		out, err := exec.Command(lispctl, "sync", "keygen", keyFile[m.name]).Output()
		if err != nil {
			t.Fatalf("lispctl sync keygen: %v", err)
		}
		public[m.name] = strings.TrimSpace(string(out))
		if err := os.Chown(keyFile[m.name], uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range machines {
		raw := readFile(t, filepath.Join("getting-started", m.name+".toml"))
		text := fillIn(raw, keyFile[m.name], public)
		text = strings.Replace(text, "[daemon]\n", fmt.Sprintf("[daemon]\napi-socket = %q\n", m.socket), 1)
		text = strings.ReplaceAll(text, fmt.Sprintf("%q", keepalived.TrackFile), fmt.Sprintf("%q", m.track))
		path := filepath.Join(etc, m.name, "lispd.toml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// As the systemd unit runs it: an unprivileged user with
		// CAP_NET_ADMIN only.
		p, err := m.node.Start(ctx, netns.Command{
			Name: "setpriv",
			Args: []string{
				"--reuid=" + runAs.Uid, "--regid=" + runAs.Gid, "--clear-groups",
				"--inh-caps=-all,+net_admin", "--ambient-caps=-all,+net_admin", "--bounding-set=-all,+net_admin",
				lispd, "-c", path,
			},
			Label: "lispd",
		})
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
		m.lispd = p
	}
	ctl := func(m *guideMachine, args ...string) (string, error) {
		out, err := m.node.Exec(ctx, lispctl, append([]string{"--socket", m.socket}, args...)...)
		return string(out), err
	}
	waitFor := func(what string, cond func() (bool, error)) {
		t.Helper()
		if err := netns.WaitUntil(ctx, cond); err != nil {
			t.Fatalf("waiting until %s: %v", what, err)
		}
	}
	// "sudo lispctl etr show --check" on each: registered with ms1.
	for _, m := range machines {
		var last string
		err := netns.WaitUntil(ctx, func() (bool, error) {
			if m.lispd.Exited() {
				return false, fmt.Errorf("lispd exited: %v", m.lispd.Wait())
			}
			out, err := ctl(m, "etr", "show", "--check")
			last = out
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("%s does not register with ms1: %v\n%s", m.name, err, last)
		}
	}
	// One log line per registration event, on both sides.
	for _, m := range machines {
		_, logs, _ := m.lispd.Output()
		if !strings.Contains(string(logs), `msg="registered with Map-Server" component=etr map_server=192.0.2.10:4342`) {
			t.Errorf("%s's lispd did not log its registration:\n%s", m.name, logs)
		}
	}
	if _, logs, _ := machines[0].lispd.Output(); !strings.Contains(string(logs), "msg=registered component=mapserver site=site-a eid=10.1.0.0/24 iid=0") {
		t.Errorf("ms1's lispd did not log site-a's registration:\n%s", logs)
	}
	for _, m := range machines {
		out, _ := ctl(m, "etr", "show")
		t.Logf("%s: lispctl etr show:\n%s", m.name, out)
	}
	out, err := ctl(machines[0], "registrations", "show")
	t.Logf("ms1: lispctl registrations show:\n%s", out)
	if err != nil || !strings.Contains(out, "site-a") || !strings.Contains(out, "site-b") ||
		!strings.Contains(out, "192.0.2.11") || !strings.Contains(out, "192.0.2.12") {
		t.Fatalf("ms1's registrations: %v\n%s", err, out)
	}

	// keepalived with the guide's files.
	var kas []*netns.Process
	for i, m := range machines[1:] {
		text := readFile(t, keepalivedFiles[i])
		text = strings.ReplaceAll(text, lispctlInScripts+" ", lispctl+" --socket "+m.socket+" ")
		text = strings.ReplaceAll(text, lispctlInScripts+"\"", lispctl+" --socket "+m.socket+"\"")
		text = strings.ReplaceAll(text, keepalived.TrackFile, m.track)
		// The guide: install -m 0755 deploy/keepalived/lispd-vrrp-notify /etc/keepalived/
		hook := filepath.Join(etc, m.name, keepalived.NotifyScript)
		script, err := keepalived.File(keepalived.NotifyScript)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hook, script, 0o755); err != nil {
			t.Fatal(err)
		}
		text = strings.ReplaceAll(text, keepalived.NotifyPath, hook)
		conf := filepath.Join(etc, m.name, "keepalived.conf")
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		base := filepath.Join(etc, m.name, "keepalived")
		p, err := m.node.Start(ctx, netns.Command{
			Name: "keepalived",
			Args: []string{"--dont-fork", "--log-console", "--no-syslog", "--vrrp", "--use-file=" + conf,
				"--pid=" + base + ".pid", "--vrrp_pid=" + base + ".vrrp.pid",
				"--checkers_pid=" + base + ".checkers.pid", "--bfd_pid=" + base + ".bfd.pid"},
			Label: "keepalived",
		})
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
		kas = append(kas, p)
	}
	xa1, xa2 := machines[1], machines[2]
	if err := netns.WaitVIPOwner(ctx, "10.1.0.1", xa1.node, xa1.node, xa2.node); err != nil {
		t.Fatalf("xtr-a1 (priority 150) does not take the gateway address: %v", err)
	}
	// A keepalived that starts as BACKUP can be master for a moment before
	// it hears the master (seen with keepalived 2.2.7 and 0.1 s
	// advertisements), and its gratuitous ARPs then point the host's
	// gateway at xtr-a2 until xtr-a1's next ones (garp_master_refresh,
	// 5 s). The host would go through xtr-a2 meanwhile, losing nothing;
	// this test wants the traffic through xtr-a1, so once xtr-a2 is back
	// to BACKUP the host forgets the gateway's MAC.
	time.Sleep(time.Second)
	if err := netns.WaitVIPOwner(ctx, "10.1.0.1", xa1.node, xa1.node, xa2.node); err != nil {
		t.Fatalf("xtr-a1 (priority 150) does not keep the gateway address: %v", err)
	}
	if out, err := host.Exec(ctx, "ip", "neigh", "flush", "dev", "eth0"); err != nil {
		t.Fatalf("ip neigh flush: %v\n%s", err, out)
	}

	// The guide's test: ping site-b from a host of site-a.
	ping := func(label string) {
		t.Helper()
		var last netns.PingResult
		waitFor(label, func() (bool, error) {
			r, err := netns.Ping(ctx, host, "10.2.0.1", 5, 200*time.Millisecond)
			last = r
			return err == nil && len(r.Lost()) == 0, nil
		})
		t.Logf("%s: %d sent, lost %v", label, last.Sent(), last.Lost())
	}
	ping("host-a1 pings 10.2.0.1 through xtr-a1")
	out, err = ctl(xa1, "map-cache", "show", "10.2.0.1")
	t.Logf("xtr-a1: lispctl map-cache show 10.2.0.1:\n%s", out)
	if err != nil || !strings.Contains(out, "10.2.0.0/24") || !strings.Contains(out, "192.0.2.10") {
		t.Errorf("xtr-a1's map-cache: %v\n%s", err, out)
	}
	// The synchronization set: xtr-a2 holds the mapping before it needs it.
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	err = netns.WaitUntil(wctx, func() (bool, error) {
		out, err := ctl(xa2, "map-cache", "show", "10.2.0.1")
		return err == nil && strings.Contains(out, "sync"), nil
	})
	wcancel()
	if err != nil {
		for _, m := range []*guideMachine{xa1, xa2} {
			for _, args := range [][]string{{"map-cache", "show"}, {"sync", "peers"}, {"status"}} {
				out, _ := ctl(m, args...)
				t.Logf("%s: lispctl %s:\n%s", m.name, strings.Join(args, " "), out)
			}
		}
		t.Fatalf("xtr-a2 does not learn 10.2.0.0/24 from its sync peer: %v", err)
	}
	if out, err := ctl(xa2, "map-cache", "show", "10.2.0.1"); err == nil {
		t.Logf("xtr-a2: lispctl map-cache show 10.2.0.1:\n%s", out)
	}
	if out, err := ctl(xa1, "sync", "peers"); err != nil || !strings.Contains(out, "xtr-a2") || !strings.Contains(out, "connected") {
		t.Errorf("xtr-a1's sync peers: %v\n%s", err, out)
	}

	// The guide's planned maintenance: lispctl drain on xtr-a1 while
	// host-a1 pings: the remote site moves to xtr-a2's RLOC, then
	// keepalived hands the gateway over; not one ping is lost.
	type pingOut struct {
		r   netns.PingResult
		err error
	}
	pinged := make(chan pingOut, 1)
	go func() {
		r, err := netns.Ping(ctx, host, "10.2.0.1", 80, 50*time.Millisecond)
		pinged <- pingOut{r, err}
	}()
	time.Sleep(500 * time.Millisecond)
	out, err = ctl(xa1, "drain")
	t.Logf("xtr-a1: lispctl drain:\n%s", out)
	if err != nil {
		t.Fatalf("lispctl drain: %v", err)
	}
	if err := netns.WaitVIPOwner(ctx, "10.1.0.1", xa2.node, xa1.node, xa2.node); err != nil {
		t.Fatalf("xtr-a2 does not take the gateway address after the drain: %v", err)
	}
	po := <-pinged
	if po.err != nil || po.r.Sent() == 0 || len(po.r.Lost()) != 0 {
		t.Errorf("pings during the drain: %v, %d sent, lost %v", po.err, po.r.Sent(), po.r.Lost())
	}
	t.Logf("pings during the drain: %d sent, lost %v", po.r.Sent(), po.r.Lost())
	if out, err := ctl(xa2, "failover", "show"); err != nil || !strings.Contains(out, "192.0.2.11") || !strings.Contains(out, "drained") {
		t.Errorf("xtr-a2 does not withdraw the drained xtr-a1's RLOC: %v\n%s", err, out)
	}
	if out, err := ctl(xa1, "undrain"); err != nil {
		t.Fatalf("lispctl undrain: %v\n%s", err, out)
	}
	if err := netns.WaitVIPOwner(ctx, "10.1.0.1", xa1.node, xa1.node, xa2.node); err != nil {
		t.Fatalf("xtr-a1 does not take the gateway address back after undrain: %v", err)
	}
	ping("host-a1 pings 10.2.0.1 through xtr-a1 again")

	// The guide's failure: xtr-a1's LAN interface goes down. lispd watches
	// it without being told (the interface the kernel routes 10.1.0.0/24
	// through): it withdraws 192.0.2.11, ms1's ITR is told and stops using
	// it, and keepalived moves the gateway. When eth1 is back, everything
	// is restored.
	ms1 := machines[0]
	siteA := func() string {
		out, _ := ctl(ms1, "map-cache", "show", "10.1.0.100")
		return out
	}
	if err := xa1.node.Iface("eth1").SetDown(); err != nil {
		t.Fatal(err)
	}
	waitFor("ms1's ITR sees 192.0.2.11 withdrawn (priority 255)", func() (bool, error) {
		out := siteA()
		return strings.Contains(out, "192.0.2.11  255/"), nil
	})
	t.Logf("ms1: lispctl map-cache show 10.1.0.100 after xtr-a1's eth1 went down:\n%s", siteA())
	if out, err := ctl(xa1, "failover", "show"); err != nil || !strings.Contains(out, "eth1 (down)") {
		t.Errorf("xtr-a1's failover view: %v\n%s", err, out)
	}
	if err := netns.WaitVIPOwner(ctx, "10.1.0.1", xa2.node, xa1.node, xa2.node); err != nil {
		t.Fatalf("xtr-a2 does not take the gateway address when xtr-a1's eth1 is down: %v", err)
	}
	ping("host-a1 pings 10.2.0.1 through xtr-a2 while xtr-a1's eth1 is down")
	if err := xa1.node.Iface("eth1").SetUp(); err != nil {
		t.Fatal(err)
	}
	waitFor("ms1's ITR may use 192.0.2.11 again", func() (bool, error) {
		out := siteA()
		return strings.Contains(out, "192.0.2.11  1/50"), nil
	})
	if err := netns.WaitVIPOwner(ctx, "10.1.0.1", xa1.node, xa1.node, xa2.node); err != nil {
		t.Fatalf("xtr-a1 does not take the gateway address back: %v", err)
	}
	ping("host-a1 pings 10.2.0.1 after xtr-a1's eth1 is back")

	// Fail-over: keepalived on xtr-a1 stops; xtr-a2 takes the gateway.
	if err := kas[0].Stop(); err != nil {
		t.Logf("keepalived on xtr-a1: %v", err)
	}
	if err := netns.WaitVIPOwner(ctx, "10.1.0.1", xa2.node, xa1.node, xa2.node); err != nil {
		t.Fatalf("xtr-a2 does not take the gateway address: %v", err)
	}
	ping("host-a1 pings 10.2.0.1 through xtr-a2")
	out, err = ctl(xa2, "status")
	if err != nil || !strings.Contains(out, "dataplane_encap_packets") {
		t.Errorf("xtr-a2's status: %v\n%s", err, out)
	}
}
