package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/goleak"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/api/apitest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// now is the fixed clock of the CLI in tests.
var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// startDaemon serves a fake backend on a socket in a temp dir until the
// test ends.
func startDaemon(t *testing.T, d apitest.Data) (string, *apitest.Backend) {
	t.Helper()
	b := &apitest.Backend{}
	b.Set(d)
	socket := filepath.Join(t.TempDir(), "lispd.sock")
	ln, err := api.ListenUnix(socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := api.NewServer(b, nil).ServeListener(ctx, ln); err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	t.Cleanup(func() {
		b.Unblock()
		cancel()
		<-done
	})
	return socket, b
}

type result struct {
	stdout, stderr string
	code           int
}

// runCLI runs lispctl in-process with the fixed clock and an environment
// holding env (KEY=VALUE).
func runCLI(t *testing.T, env []string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{
		stdout: &out,
		stderr: &errb,
		now:    func() time.Time { return now },
		getenv: func(k string) string {
			for _, kv := range env {
				if key, v, _ := strings.Cut(kv, "="); key == k {
					return v
				}
			}
			return ""
		},
	}
	code := run(context.Background(), args, a)
	return result{out.String(), errb.String(), code}
}

// cli runs lispctl against socket.
func cli(t *testing.T, socket string, args ...string) result {
	t.Helper()
	return runCLI(t, nil, append([]string{"--socket", socket}, args...)...)
}

var (
	status = api.Status{
		Version: "0.1.0", Roles: []string{"ms", "mr"}, PID: 4242, ConfigPath: "/etc/lispd/lispd.toml",
		StartedAt: now.Add(-3723 * time.Second), UptimeSeconds: 3723, LogLevel: "info",
		Listeners: []api.Listener{{Name: "control", Network: "udp", Address: "0.0.0.0:4342"},
			{Name: "api", Network: "unix", Address: "/run/lispd/lispd.sock"}},
		Counters: map[string]uint64{"map_request_received": 3, "map_register_received": 10},
	}
	rloc = func(a string, pri, wgt uint8, up bool) api.RLOC {
		return api.RLOC{Address: netip.MustParseAddr(a), Priority: pri, Weight: wgt, Reachable: up}
	}
	regs = []api.Registration{
		{
			Site: "site-b", EIDPrefix: netip.MustParsePrefix("10.2.0.0/16"),
			RLOCs:        []api.RLOC{rloc("192.0.2.2", 1, 100, true)},
			RegisteredBy: netip.MustParseAddrPort("192.0.2.2:4342"), LastRegistered: now.Add(-5 * time.Second),
			Expires: now.Add(175 * time.Second), TTLSeconds: 86400, Algorithm: "hmac-sha-256",
		},
		{
			Site: "site-a", InstanceID: 1000, EIDPrefix: netip.MustParsePrefix("10.1.0.0/16"),
			RLOCs:        []api.RLOC{rloc("192.0.2.1", 1, 50, true), rloc("2001:db8::1", 2, 50, false)},
			RegisteredBy: netip.MustParseAddrPort("192.0.2.1:4342"), LastRegistered: now.Add(-61 * time.Second),
			Expires: now.Add(119 * time.Second), ProxyReply: true, WantMapNotify: true, TTLSeconds: 86400,
		},
		{
			Site: "site-a", EIDPrefix: netip.MustParsePrefix("10.1.0.0/16"),
			RLOCs:        []api.RLOC{rloc("192.0.2.1", 1, 100, true)},
			RegisteredBy: netip.MustParseAddrPort("192.0.2.1:4342"), LastRegistered: now.Add(-time.Hour),
			Expires: now.Add(-time.Second), ProxyReply: true,
		},
		{
			Site: "site-a", EIDPrefix: netip.MustParsePrefix("10.1.2.0/24"),
			RLOCs:        []api.RLOC{rloc("192.0.2.9", 1, 100, true)},
			RegisteredBy: netip.MustParseAddrPort("192.0.2.9:4342"), LastRegistered: now,
			Expires: now.Add(3 * time.Minute),
		},
	}
	cache = []api.MapCacheEntry{
		{
			Prefix: netip.MustParsePrefix("10.9.0.0/16"), Action: api.ActionNativelyForward, TTLSeconds: 900,
			Expires: now.Add(14 * time.Minute), Source: api.SourceMapReply,
		},
		{
			Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: []api.RLOC{rloc("192.0.2.2", 1, 100, true), rloc("192.0.2.3", 1, 0, false)},
			Action: api.ActionNoAction, TTLSeconds: 86400, Expires: now.Add(23*time.Hour + 59*time.Minute),
			Source: api.SourceMapReply, MapVersion: 2, LastUsed: now.Add(-2 * time.Second),
		},
		{
			InstanceID: 7, Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: []api.RLOC{rloc("192.0.2.7", 1, 100, true)},
			Action: api.ActionNoAction, TTLSeconds: 3600, Source: api.SourceStatic,
		},
		{
			Prefix: netip.MustParsePrefix("10.2.3.0/24"), RLOCs: []api.RLOC{rloc("2001:db8::3", 1, 100, true)},
			Action: api.ActionNoAction, TTLSeconds: 86400, Expires: now.Add(time.Hour), Source: api.SourceSync,
		},
	}
	data = apitest.Data{Status: status, Registrations: regs, MapCache: cache}
)

func TestStatus(t *testing.T) {
	socket, _ := startDaemon(t, data)
	r := cli(t, socket, "status")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("%+v", r)
	}
	want := `version    0.1.0
pid        4242
roles      ms, mr
started    ` + status.StartedAt.Local().Format("2006-01-02 15:04:05 MST") + ` (up 1h2m3s)
config     /etc/lispd/lispd.toml
log level  info

LISTENER  NETWORK  ADDRESS
control   udp      0.0.0.0:4342
api       unix     /run/lispd/lispd.sock

COUNTER                VALUE
map_register_received  10
map_request_received   3
`
	if r.stdout != want {
		t.Errorf("got:\n%s\nwant:\n%s", r.stdout, want)
	}
	r = cli(t, socket, "status", "--json")
	var st api.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 {
		t.Fatalf("%v %+v", err, r)
	}
	st.StartedAt = st.StartedAt.UTC()
	if !reflect.DeepEqual(st, status) {
		t.Errorf("JSON status = %+v\nwant %+v", st, status)
	}
}

func TestRegistrationsShow(t *testing.T) {
	socket, _ := startDaemon(t, data)
	r := cli(t, socket, "registrations", "show")
	want := `SITE    EID-PREFIX            RLOC         PRI/WGT  STATE  REGISTERED-BY   LAST-REGISTERED  EXPIRES  FLAGS
site-a  10.1.0.0/16           192.0.2.1    1/100    up     192.0.2.1:4342  1h ago           expired  P
site-a  10.1.2.0/24           192.0.2.9    1/100    up     192.0.2.9:4342  just now         3m       -
site-a  iid:1000/10.1.0.0/16  192.0.2.1    1/50     up     192.0.2.1:4342  1m1s ago         1m59s    PM
                              2001:db8::1  2/50     down
site-b  10.2.0.0/16           192.0.2.2    1/100    up     192.0.2.2:4342  5s ago           2m55s    -
`
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("code %d, stderr %q, got:\n%s\nwant:\n%s", r.code, r.stderr, r.stdout, want)
	}
}

// noRegistrationHint ends the message of a registrations filter that
// matched nothing.
const noRegistrationHint = `no ETR has registered it; check the ETR ("lispctl etr show" there) and the mapserver_register_* counters of "lispctl status" here`

func TestRegistrationsFilters(t *testing.T) {
	socket, _ := startDaemon(t, data)
	show := func(args ...string) ([]string, result) {
		t.Helper()
		r := cli(t, socket, append([]string{"registrations", "show", "--json"}, args...)...)
		var got []api.Registration
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("%v: %v %+v", args, err, r)
		}
		var ids []string
		for _, g := range got {
			ids = append(ids, g.Site+" "+eidString(g.InstanceID, g.EIDPrefix))
		}
		return ids, r
	}
	tests := []struct {
		args []string
		want []string
	}{
		{nil, []string{"site-a 10.1.0.0/16", "site-a 10.1.2.0/24", "site-a iid:1000/10.1.0.0/16", "site-b 10.2.0.0/16"}},
		// An EID: the longest match in each instance.
		{[]string{"10.1.2.3"}, []string{"site-a 10.1.2.0/24", "site-a iid:1000/10.1.0.0/16"}},
		{[]string{"10.1.2.3", "--iid", "0"}, []string{"site-a 10.1.2.0/24"}},
		{[]string{"iid:1000/10.1.2.3"}, []string{"site-a iid:1000/10.1.0.0/16"}},
		{[]string{"10.1.9.9"}, []string{"site-a 10.1.0.0/16", "site-a iid:1000/10.1.0.0/16"}},
		// A prefix: everything inside it.
		{[]string{"10.0.0.0/8", "--iid", "0"}, []string{"site-a 10.1.0.0/16", "site-a 10.1.2.0/24", "site-b 10.2.0.0/16"}},
		{[]string{"10.1.0.0/16"}, []string{"site-a 10.1.0.0/16", "site-a 10.1.2.0/24", "site-a iid:1000/10.1.0.0/16"}},
		{[]string{"--site", "site-b"}, []string{"site-b 10.2.0.0/16"}},
		{[]string{"--iid", "1000"}, []string{"site-a iid:1000/10.1.0.0/16"}},
	}
	for _, tt := range tests {
		got, r := show(tt.args...)
		if r.code != 0 || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v: code %d, got %v, want %v (stderr %q)", tt.args, r.code, got, tt.want, r.stderr)
		}
	}
	// Nothing matching a filter: exit 1, an empty JSON list, a message.
	got, r := show("192.168.0.1")
	if r.code != 1 || len(got) != 0 || strings.TrimSpace(r.stdout) != "[]" ||
		r.stderr != "lispctl: no registration covers 192.168.0.1 in any instance: "+noRegistrationHint+"\n" {
		t.Errorf("no match: %+v", r)
	}
	r = cli(t, socket, "registrations", "show", "--site", "nope", "10.1.2.3")
	if r.code != 1 || r.stdout != "" || r.stderr != "lispctl: no registration covers 10.1.2.3 in site \"nope\": "+noRegistrationHint+"\n" {
		t.Errorf("no match (table): %+v", r)
	}
	for _, bad := range [][]string{{"10.1.2.300"}, {"iid:x/10.0.0.0/8"}, {"iid:5/10.0.0.0/8", "--iid", "6"}, {"--iid", "16777216"}, {"a", "b"}} {
		r := cli(t, socket, append([]string{"registrations", "show"}, bad...)...)
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "Run 'lispctl registrations show --help' for usage.") {
			t.Errorf("%v: %+v", bad, r)
		}
	}
}

func TestMapCacheShow(t *testing.T) {
	socket, _ := startDaemon(t, data)
	r := cli(t, socket, "map-cache", "show")
	want := `EID-PREFIX         RLOC         PRI/WGT  STATE  ACTION            SOURCE     TTL  EXPIRES  LAST-USED
10.2.0.0/16        192.0.2.2    1/100    up     no-action         map-reply  24h  23h59m   2s ago
                   192.0.2.3    1/0      down
10.2.3.0/24        2001:db8::3  1/100    up     no-action         sync       24h  1h       never
10.9.0.0/16        -            -        -      natively-forward  map-reply  15m  14m      never
iid:7/10.2.0.0/16  192.0.2.7    1/100    up     no-action         static     1h   never    never
`
	if r.code != 0 || r.stdout != want {
		t.Errorf("got:\n%s\nwant:\n%s", r.stdout, want)
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"10.2.3.4"}, []string{"10.2.3.0/24", "iid:7/10.2.0.0/16"}},
		{[]string{"10.2.9.9", "--iid", "0"}, []string{"10.2.0.0/16"}},
		{[]string{"10.0.0.0/8", "--iid", "0"}, []string{"10.2.0.0/16", "10.2.3.0/24", "10.9.0.0/16"}},
		{[]string{"iid:7/0.0.0.0/0"}, []string{"iid:7/10.2.0.0/16"}},
		{[]string{"::/0"}, nil},
	} {
		r := cli(t, socket, append([]string{"map-cache", "show", "--json"}, tt.args...)...)
		var got []api.MapCacheEntry
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("%v: %v %+v", tt.args, err, r)
		}
		var ids []string
		for _, g := range got {
			ids = append(ids, eidString(g.InstanceID, g.Prefix))
		}
		wantCode := 0
		if tt.want == nil {
			wantCode = 1
		}
		if r.code != wantCode || !reflect.DeepEqual(ids, tt.want) {
			t.Errorf("%v: code %d, got %v, want %v", tt.args, r.code, ids, tt.want)
		}
	}
}

func TestEmptyLists(t *testing.T) {
	socket, _ := startDaemon(t, apitest.Data{})
	r := cli(t, socket, "map-cache", "show")
	if r.code != 0 || r.stdout != "" || r.stderr != "the map-cache is empty\n" {
		t.Errorf("%+v", r)
	}
	r = cli(t, socket, "registrations", "show", "--json")
	if r.code != 0 || r.stdout != "[]\n" || r.stderr != "" {
		t.Errorf("%+v", r)
	}
}

func TestReload(t *testing.T) {
	socket, b := startDaemon(t, data)
	r := cli(t, socket, "reload")
	if r.code != 0 || r.stdout != "config reloaded\n" || b.Reloads() != 1 {
		t.Errorf("%+v, reloads %d", r, b.Reloads())
	}
	r = cli(t, socket, "reload", "--json")
	if r.code != 0 || r.stdout != "{\n  \"reloaded\": true\n}\n" {
		t.Errorf("%+v", r)
	}
	b.FailWith("Reload", api.WithKind(api.ErrFailedPrecondition,
		errors.New("lispd.toml:3: daemon.roles: \"x\": unknown role")))
	r = cli(t, socket, "reload")
	if r.code != 1 || r.stdout != "" || r.stderr != "lispctl: lispd.toml:3: daemon.roles: \"x\": unknown role\n" {
		t.Errorf("failed reload: %+v", r)
	}
}

func TestLogLevel(t *testing.T) {
	socket, b := startDaemon(t, data)
	if r := cli(t, socket, "log-level"); r.code != 0 || r.stdout != "info\n" {
		t.Errorf("show: %+v", r)
	}
	if r := cli(t, socket, "log-level", "DEBUG"); r.code != 0 || r.stdout != "debug\n" {
		t.Errorf("set: %+v", r)
	}
	if r := cli(t, socket, "log-level", "--json"); r.code != 0 || r.stdout != "{\n  \"level\": \"debug\"\n}\n" {
		t.Errorf("show json: %+v", r)
	}
	r := cli(t, socket, "log-level", "loud")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown log level "loud": want one of debug, info, warn, error`) {
		t.Errorf("bad level: %+v", r)
	}
	if got := b.LogLevels(); !reflect.DeepEqual(got, []string{"debug"}) {
		t.Errorf("backend levels = %v", got)
	}
}

func TestExitCodes(t *testing.T) {
	socket, b := startDaemon(t, data)
	missing := filepath.Join(t.TempDir(), "missing.sock")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"ok", []string{"--socket", socket, "status"}, 0, ""},
		{"help", []string{"--help"}, 0, ""},
		{"no command", nil, 0, ""},
		{"noun alone", []string{"map-cache"}, 0, ""},
		{"not running", []string{"--socket", missing, "status"}, 3,
			"lispctl: lispd is not running (no socket at " + missing + "); start it or pass --socket\n"},
		{"unknown command", []string{"frobnicate"}, 2, "lispctl: unknown command \"frobnicate\" for \"lispctl\"\nRun 'lispctl --help' for usage.\n"},
		{"unknown verb", []string{"map-cache", "flush"}, 2, "unknown command \"flush\" for \"lispctl map-cache\""},
		{"unknown flag", []string{"status", "--frob"}, 2, "lispctl: unknown flag: --frob\nRun 'lispctl status --help' for usage.\n"},
		{"extra argument", []string{"--socket", socket, "status", "x"}, 2, `"lispctl status" takes no arguments`},
		{"bad timeout", []string{"--timeout", "-1s", "status"}, 2, "--timeout must be positive"},
		{"bad timeout syntax", []string{"--timeout", "soon", "status"}, 2, "invalid argument \"soon\""},
		{"empty socket", []string{"--socket", "", "status"}, 2, "--socket must not be empty"},
		{"daemon error", []string{"--socket", socket, "registrations", "show"}, 1, "lispctl: this daemon has no ms role\n"},
	}
	b.FailWith("Registrations", api.WithKind(api.ErrUnavailable, errors.New("this daemon has no ms role")))
	for _, tt := range tests {
		r := runCLI(t, nil, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%s: code %d stderr %q, want %d %q", tt.name, r.code, r.stderr, tt.code, tt.stderr)
		}
		if tt.code != 0 && r.stdout != "" {
			t.Errorf("%s: failure printed on stdout: %q", tt.name, r.stdout)
		}
	}
}

func TestTimeoutIsUnreachable(t *testing.T) {
	socket, b := startDaemon(t, data)
	b.Block()
	r := cli(t, socket, "--timeout", "50ms", "status")
	if r.code != 3 || !strings.Contains(r.stderr, "lispd did not answer on "+socket+" within 50ms") {
		t.Errorf("%+v", r)
	}
}

func TestSocketFromEnvironment(t *testing.T) {
	socket, _ := startDaemon(t, data)
	if r := runCLI(t, []string{"LISPD_SOCKET=" + socket}, "log-level"); r.code != 0 || r.stdout != "info\n" {
		t.Errorf("env socket: %+v", r)
	}
	// The flag wins over the environment.
	missing := filepath.Join(t.TempDir(), "x.sock")
	r := runCLI(t, []string{"LISPD_SOCKET=" + socket}, "--socket", missing, "log-level")
	if r.code != 3 || !strings.Contains(r.stderr, missing) {
		t.Errorf("flag over env: %+v", r)
	}
	// Without either, the default socket is named.
	r = runCLI(t, nil, "--help")
	if !strings.Contains(r.stdout, api.DefaultSocket) {
		t.Errorf("help does not show the default socket:\n%s", r.stdout)
	}
}

func TestEveryCommandDocumented(t *testing.T) {
	root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		n++
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%q lacks Short, Long or Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if n < 8 {
		t.Errorf("only %d commands found", n)
	}
	for _, name := range []string{"socket", "json", "timeout"} {
		if root.PersistentFlags().Lookup(name) == nil {
			t.Errorf("global flag --%s missing", name)
		}
	}
}

func TestSubcommandRegistry(t *testing.T) {
	saved := subcommands
	defer func() { subcommands = saved }()
	subcommands = append(append([]func(*cobra.Command){}, saved...), func(root *cobra.Command) {
		root.AddCommand(&cobra.Command{
			Use: "probe", Short: "s", Long: "l", Example: "e",
			RunE: func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usageErrorf("bad %s", args[0])
				}
				if jsonOutput(cmd) {
					return writeJSON(cmd, map[string]string{"socket": socket(cmd), "timeout": timeout(cmd).String()})
				}
				return errors.New("probe failed")
			},
		})
	})
	if r := runCLI(t, nil, "probe"); r.code != 1 || r.stderr != "lispctl: probe failed\n" {
		t.Errorf("failure: %+v", r)
	}
	if r := runCLI(t, nil, "probe", "x"); r.code != 2 || !strings.Contains(r.stderr, "bad x") {
		t.Errorf("usage: %+v", r)
	}
	r := runCLI(t, nil, "probe", "--json", "--socket", "/s", "--timeout", "2s")
	if r.code != 0 || r.stdout != "{\n  \"socket\": \"/s\",\n  \"timeout\": \"2s\"\n}\n" {
		t.Errorf("flags: %+v", r)
	}
}

func TestFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 1500 * time.Millisecond: "2s", 3 * time.Minute: "3m", 24 * time.Hour: "24h",
		90 * time.Minute: "1h30m", 3723 * time.Second: "1h2m3s", time.Hour + 5*time.Second: "1h0m5s",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if fmtUntil(time.Time{}, now) != "never" || fmtUntil(now, now) != "expired" || fmtAgo(now.Add(time.Second), now) != "just now" {
		t.Error("fmtUntil/fmtAgo edge cases")
	}
}
