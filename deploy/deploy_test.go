package deploy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/daemon"
	"github.com/lispd/lispd/deploy/keepalived"
)

// guideConfigs are the lispd configs of the getting-started guide.
var guideConfigs = []string{"getting-started/ms1.toml", "getting-started/xtr-a1.toml", "getting-started/xtr-a2.toml"}

// TestGettingStartedConfigs loads each config of the guide as the guide
// has the operator complete it (the peer's public key pasted in) and
// builds a daemon from it, which checks everything short of opening
// sockets. The files as shipped must fail with a message that says what
// to paste where.
func TestGettingStartedConfigs(t *testing.T) {
	files, err := filepath.Glob("getting-started/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(files, guideConfigs) {
		t.Fatalf("getting-started configs = %q, want %q", files, guideConfigs)
	}
	dir := t.TempDir()
	keyFiles, public := syncKeys(t, dir, "xtr-a1", "xtr-a2")
	cfgs := map[string]*config.Config{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".toml")
		raw := readFile(t, f)
		text := fillIn(raw, keyFiles[name], public)
		path := filepath.Join(dir, name+".toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if _, err := daemon.New(cfg, daemon.Options{Stderr: io.Discard}); err != nil {
			t.Errorf("%s: daemon: %v", f, err)
		}
		cfgs[name] = cfg
		if text != raw {
			_, err := config.Parse([]byte(raw), f)
			if err == nil || !strings.Contains(err.Error(), "public-key") || !strings.Contains(err.Error(), "lispctl sync keygen") {
				t.Errorf("%s as shipped: want an error about the public key to paste, got %v", f, err)
			}
		}
	}
	if len(cfgs) != len(files) {
		return
	}
	// The three machines agree with each other.
	ms := cfgs["ms1"]
	msAddr := ms.Control.Listen[0]
	for _, x := range []string{"xtr-a1", "xtr-a2"} {
		c := cfgs[x]
		if c.ITR.MapResolvers[0] != msAddr || c.ETR.MapServers[0].Address != msAddr {
			t.Errorf("%s does not use ms1 (%s) as Map-Resolver and Map-Server", x, msAddr)
		}
		site := siteNamed(ms, "site-a")
		if site == nil || string(site.AuthenticationKey) != string(c.ETR.MapServers[0].AuthenticationKey) ||
			site.KeyID != c.ETR.MapServers[0].KeyID || site.Algorithm != c.ETR.MapServers[0].Algorithm {
			t.Errorf("%s: key, key-id or algorithm differ from ms1's site-a", x)
		}
		if c.ETR.EIDs[0].Prefix.String() != "10.1.0.0/24" {
			t.Errorf("%s registers %v", x, c.ETR.EIDs[0].Prefix)
		}
		// Each registers both xTRs' RLOCs, its own among them.
		var locs []netip.Addr
		for _, l := range c.ETR.EIDs[0].RLOCs {
			locs = append(locs, l.Address)
		}
		if !slices.Contains(locs, c.Dataplane.RLOCs[0]) || len(locs) != 2 {
			t.Errorf("%s registers locators %v", x, locs)
		}
		if !c.SyncEnabled() || len(c.Sync.Peers) != 1 {
			t.Errorf("%s has no synchronization set", x)
		}
	}
	if cfgs["xtr-a1"].Sync.Peers[0].Address.Addr() != cfgs["xtr-a2"].Dataplane.RLOCs[0] ||
		cfgs["xtr-a2"].Sync.Peers[0].Address.Addr() != cfgs["xtr-a1"].Dataplane.RLOCs[0] {
		t.Error("the two xTRs are not each other's sync peer")
	}
}

// siteNamed returns the Map-Server site called name.
func siteNamed(c *config.Config, name string) *config.Site {
	for i := range c.MapServer.Sites {
		if c.MapServer.Sites[i].Name == name {
			return &c.MapServer.Sites[i]
		}
	}
	return nil
}

// unitFile is a parsed systemd unit: section -> key -> values in order.
type unitFile map[string]map[string][]string

// parseUnit reads the key=value lines of a systemd unit.
func parseUnit(t *testing.T, text string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("lispd.service:%d: not a key=value line in a section: %q", i+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// TestSystemdUnit checks lispd.service: the lispd command lines are ones
// lispd accepts (run with the guide's config), the runtime directory is
// where lispd puts its socket, the capabilities and device access are the
// ones lispd needs, and systemd-analyze verify accepts the unit.
func TestSystemdUnit(t *testing.T) {
	text := readFile(t, "lispd.service")
	u := parseUnit(t, text)
	svc := u["Service"]
	if svc == nil || u["Unit"] == nil || u["Install"] == nil {
		t.Fatalf("sections: %v", u)
	}
	want := map[string]string{
		"Type": "simple", "User": "lispd", "Group": "lispd", "RuntimeDirectory": "lispd",
		"RuntimeDirectoryMode": "0750", "AmbientCapabilities": "CAP_NET_ADMIN", "CapabilityBoundingSet": "CAP_NET_ADMIN",
		"DeviceAllow": "/dev/net/tun rw", "DevicePolicy": "closed", "NoNewPrivileges": "yes",
	}
	for k, v := range want {
		if got := svc[k]; len(got) != 1 || got[0] != v {
			t.Errorf("Service.%s = %q, want %q", k, got, v)
		}
	}
	// lispd's default socket is in the runtime directory systemd makes.
	for _, k := range config.Keys() {
		if k.Path == "daemon.api-socket" && filepath.Dir(strings.Trim(k.Default, `'"`)) != "/run/"+svc["RuntimeDirectory"][0] {
			t.Errorf("daemon.api-socket defaults to %s, outside RuntimeDirectory=%s", k.Default, svc["RuntimeDirectory"][0])
		}
	}
	if filepath.Dir(api.DefaultSocket) != "/run/"+svc["RuntimeDirectory"][0] {
		t.Errorf("lispctl's default socket %s is outside RuntimeDirectory", api.DefaultSocket)
	}
	if r := svc["ExecReload"]; !slices.Contains(r, "/bin/kill -HUP $MAINPID") {
		t.Errorf("ExecReload = %q: lispd reloads on SIGHUP", r)
	}
	if f := svc["RestrictAddressFamilies"]; len(f) != 1 || !strings.Contains(f[0], "AF_NETLINK") || !strings.Contains(f[0], "AF_UNIX") {
		t.Errorf("RestrictAddressFamilies = %q: lispd needs unix (API), inet, inet6 and netlink (TUN addresses and routes)", f)
	}

	// Every lispd command line runs: the flags are lispd's, and with the
	// guide's MS/MR config (-check added, so that nothing starts) it exits 0.
	lispd := binary(t, "lispd")
	ms1, err := filepath.Abs(guideConfigs[0])
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, k := range []string{"ExecStartPre", "ExecStart", "ExecReload"} {
		lines = append(lines, svc[k]...)
	}
	ran := 0
	for _, line := range lines {
		args := strings.Fields(line)
		if len(args) == 0 || filepath.Base(args[0]) != "lispd" {
			continue
		}
		if args[0] != "/usr/local/bin/lispd" {
			t.Errorf("%q: the guide installs lispd as /usr/local/bin/lispd", line)
		}
		for i := range args {
			if args[i] == "/etc/lispd/lispd.toml" {
				args[i] = ms1
			}
		}
		if !slices.Contains(args, "-check") {
			args = append(args, "-check")
		}
		out, err := exec.Command(lispd, args[1:]...).CombinedOutput()
		if err != nil {
			t.Errorf("%q: %v\n%s", line, err, out)
		}
		ran++
	}
	if ran < 3 || len(svc["ExecStart"]) != 1 {
		t.Errorf("%d lispd command lines, ExecStart %q", ran, svc["ExecStart"])
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit's syntax is not verified")
	}
	// systemd-analyze verify checks that the programs exist: point the
	// unit at the binary just built.
	dir := t.TempDir()
	unit := filepath.Join(dir, "lispd.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(text, "/usr/local/bin/lispd", lispd)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, sa, "verify", unit).CombinedOutput()
	var complaints []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "lispd.service") {
			complaints = append(complaints, l)
		}
	}
	if err != nil || len(complaints) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(complaints, "\n"))
	}
}

// keepalivedFiles are the keepalived configs of site-a's two xTRs.
var keepalivedFiles = []string{"keepalived/xtr-a1.conf", "keepalived/xtr-a2.conf"}

// lispctlInScripts is where the keepalived health check expects lispctl.
const lispctlInScripts = "/usr/local/bin/lispctl"

// TestKeepalivedConfigs checks the two keepalived configs: they agree
// with each other and with the lispd configs, they have the documented
// timers (VRRPv3, advert_int 0.1), drain track file and notify hook,
// their health check tells a running lispd from a stopped one, and
// keepalived --config-test accepts them.
func TestKeepalivedConfigs(t *testing.T) {
	a1, a2 := readFile(t, keepalivedFiles[0]), readFile(t, keepalivedFiles[1])
	// The two files differ only in their names and priorities.
	norm := func(s, self, peer string) string {
		s = strings.ReplaceAll(s, self, "SELF")
		s = strings.ReplaceAll(s, peer, "PEER")
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.Contains(l, "priority ") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	if norm(a1, "xtr-a1", "xtr-a2") != norm(a2, "xtr-a2", "xtr-a1") {
		t.Error("xtr-a1.conf and xtr-a2.conf differ in more than names and priorities")
	}
	if !strings.Contains(a1, "priority 150") || !strings.Contains(a2, "priority 100") {
		t.Error("xtr-a1 should be the preferred gateway (priority 150 over 100)")
	}
	// The virtual address is site-a's gateway, inside the EID prefix the
	// xTRs register.
	_, public := syncKeys(t, t.TempDir(), "xtr-a2")
	cfg, err := config.Parse([]byte(fillIn(readFile(t, guideConfigs[1]), "/k", public)), "x")
	if err != nil {
		cfg = nil // the test of the configs reports it
	}
	if !strings.Contains(a1, "10.1.0.1/24 dev eth1") {
		t.Error("the VRRP address is not 10.1.0.1/24 on eth1")
	} else if cfg != nil && !cfg.ETR.EIDs[0].Prefix.Prefix.Contains(netip.MustParseAddr("10.1.0.1")) {
		t.Error("the VRRP address is outside the site's EID prefix")
	}

	// The health check: exit 0 with lispd running, non-zero without.
	script := scriptLine(t, a1)
	args := strings.Fields(script)
	if args[0] != lispctlInScripts {
		t.Fatalf("health check %q does not run %s", script, lispctlInScripts)
	}
	lispctl := binary(t, "lispctl")
	socket := startMSMR(t)
	run := func(sock string) error {
		cmd := exec.Command(lispctl, args[1:]...)
		cmd.Env = append(os.Environ(), "LISPD_SOCKET="+sock)
		return cmd.Run()
	}
	if err := run(socket); err != nil {
		t.Errorf("health check with lispd running: %v", err)
	}
	var ee *exec.ExitError
	if err := run(filepath.Join(t.TempDir(), "none.sock")); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("health check with lispd stopped: %v, want exit status 3", err)
	}

	// The documented timers and hooks, the same on both xTRs (norm above).
	for _, want := range []string{
		"vrrp_version 3", "advert_int 0.1",
		"track_file lispd_drain {\n    file \"" + keepalived.TrackFile + "\"\n    weight 0\n}",
		"track_file {\n        lispd_drain\n    }",
		"notify \"" + keepalived.NotifyPath + " " + lispctlInScripts + "\"",
	} {
		if !strings.Contains(a1, want) {
			t.Errorf("xtr-a1.conf lacks %q", want)
		}
	}

	keepalivedConfigTest(t, lispctl)
}

// TestKeepalivedNotify runs the notify hook as keepalived does (the
// configured words, then TYPE NAME STATE PRIORITY) with a stub lispctl:
// on MASTER it runs `lispctl failover check` with the configured lispctl
// options, on other states nothing; it always exits 0, also when lispctl
// fails or hangs, and then within its timeout.
func TestKeepalivedNotify(t *testing.T) {
	hook, err := filepath.Abs("keepalived/" + keepalived.NotifyScript)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(hook); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("%s is not executable: %v", hook, err)
	}
	if embedded, err := keepalived.File(keepalived.NotifyScript); err != nil || string(embedded) != readFile(t, "keepalived/"+keepalived.NotifyScript) {
		t.Fatalf("embedded notify hook differs: %v", err)
	}
	if out, err := exec.Command("sh", "-n", hook).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	stub := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho \"$*\" >> "+calls+"\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok, fails, hangs := stub("ok", "exit 0\n"), stub("fails", "echo boom >&2; exit 3\n"), stub("hangs", "exec sleep 60\n")
	shells := []string{"sh"}
	if _, err := exec.LookPath("dash"); err == nil {
		shells = append(shells, "dash")
	}
	for _, sh := range shells {
		for _, c := range []struct {
			name string
			args []string
			want string // calls file afterwards
		}{
			{"master", []string{ok, "--socket", "/x.sock", "INSTANCE", "site_a", "MASTER", "150"}, "--socket /x.sock --timeout 3s failover check\n"},
			{"backup", []string{ok, "INSTANCE", "site_a", "BACKUP", "100"}, ""},
			{"fault", []string{ok, "INSTANCE", "site_a", "FAULT", "0"}, ""},
			{"group master", []string{ok, "GROUP", "g", "MASTER", "0"}, "--timeout 3s failover check\n"},
			{"too few", []string{"MASTER", "150"}, ""},
			{"lispctl fails", []string{fails, "INSTANCE", "site_a", "MASTER", "150"}, "--timeout 3s failover check\n"},
			{"lispctl hangs", []string{hangs, "INSTANCE", "site_a", "MASTER", "150"}, "--timeout 3s failover check\n"},
		} {
			os.Remove(calls)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			start := time.Now()
			out, err := exec.CommandContext(ctx, sh, append([]string{hook}, c.args...)...).CombinedOutput()
			took := time.Since(start)
			cancel()
			if err != nil {
				t.Errorf("%s %s: %v\n%s", sh, c.name, err, out)
			}
			if took > 8*time.Second {
				t.Errorf("%s %s: took %v, want at most the 5 s timeout and a little", sh, c.name, took)
			}
			got, _ := os.ReadFile(calls)
			if string(got) != c.want {
				t.Errorf("%s %s: lispctl called with %q, want %q", sh, c.name, got, c.want)
			}
		}
	}
}

// scriptLine returns the command of the vrrp_script.
func scriptLine(t *testing.T, conf string) string {
	t.Helper()
	for _, l := range strings.Split(conf, "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(l), "script "); ok {
			return strings.Trim(s, `"`)
		}
	}
	t.Fatal("no script line")
	return ""
}

// startMSMR runs a Map-Server/Map-Resolver daemon in-process until the
// test ends and returns its API socket.
func startMSMR(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	socket := filepath.Join(dir, "lispd.sock")
	cfg, err := config.Parse([]byte(`
[daemon]
roles = ["ms", "mr"]
[control]
listen = ["127.0.0.1:0"]
[map-server]
[map-resolver]
`), "msmr.toml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, daemon.Options{Stderr: io.Discard, APISocket: socket})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	c := api.NewClient(socket, api.WithTimeout(time.Second))
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Status(context.Background()); err == nil {
			return socket
		}
		select {
		case err := <-done:
			done <- nil
			t.Fatalf("daemon stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon's API did not come up within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// keepalivedConfigTest runs keepalived --config-test on both files in a
// private network namespace that has their interfaces (eth0, eth1), with
// the health check pointing at lispctl. It skips when keepalived, root or
// unshare is missing.
func keepalivedConfigTest(t *testing.T, lispctl string) {
	kd, err := exec.LookPath("keepalived")
	if err != nil {
		t.Skip("keepalived is not installed: the configs are not checked by keepalived itself")
	}
	if os.Geteuid() != 0 {
		t.Skip("keepalived --config-test needs the configs' interfaces, which needs root to create")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare is not installed")
	}
	dir := t.TempDir()
	// The notify hook where keepalived accepts scripts run as root (a
	// directory only root can write to), the drain file in the test's
	// directory.
	hook := filepath.Join(binDir, keepalived.NotifyScript)
	if err := os.WriteFile(hook, []byte(readFile(t, "keepalived/"+keepalived.NotifyScript)), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range keepalivedFiles {
		conf := filepath.Join(dir, filepath.Base(f))
		text := strings.ReplaceAll(readFile(t, f), lispctlInScripts, lispctl)
		text = strings.ReplaceAll(text, keepalived.NotifyPath, hook)
		text = strings.ReplaceAll(text, keepalived.TrackFile, filepath.Join(dir, "vrrp-drain"))
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		script := `ip link add eth0 type veth peer name eth0-peer && ip link add eth1 type veth peer name eth1-peer && exec "$0" --config-test -f "$1"`
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, unshare, "--net", "sh", "-c", script, kd, conf).CombinedOutput()
		cancel()
		if bytes.Contains(out, []byte("Operation not permitted")) {
			t.Skipf("cannot make a network namespace here: %s", out)
		}
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("keepalived --config-test %s: %v\n%s", f, err, out)
		}
	}
}
