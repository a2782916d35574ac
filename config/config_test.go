package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("examples/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"examples/mr.toml", "examples/ms-mr.toml", "examples/ms.toml", "examples/xtr-ms-mr.toml", "examples/xtr.toml"}
	if !reflect.DeepEqual(files, want) {
		t.Fatalf("examples = %v, want %v", files, want)
	}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if c.Path != f {
			t.Errorf("%s: Path = %q", f, c.Path)
		}
	}
}

func TestParseMSMRExample(t *testing.T) {
	c, err := Load("examples/ms-mr.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Daemon.Roles, []Role{RoleMapServer, RoleMapResolver}) {
		t.Errorf("roles = %v", c.Daemon.Roles)
	}
	if got := c.Daemon.MetricsListen; got != netip.MustParseAddrPort("127.0.0.1:9317") {
		t.Errorf("metrics-listen = %v", got)
	}
	wantListen := []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:4342"), netip.MustParseAddrPort("[::]:4342")}
	if !slices.Equal(c.Control.Listen, wantListen) {
		t.Errorf("listen = %v", c.Control.Listen)
	}
	ms := c.MapServer
	if ms == nil || len(ms.Sites) != 2 {
		t.Fatalf("map-server = %+v", ms)
	}
	a := ms.Sites[0]
	wantPrefixes := []EIDPrefix{
		{0, netip.MustParsePrefix("10.1.0.0/16")},
		{1000, netip.MustParsePrefix("10.1.0.0/16")},
		{0, netip.MustParsePrefix("2001:db8:1::/48")},
	}
	if a.Name != "site-a" || string(a.AuthenticationKey) != "change-me-site-a" || a.Algorithm != AlgHMACSHA256 ||
		!a.AcceptMoreSpecifics || !a.ProxyReply || !slices.Equal(a.EIDPrefixes, wantPrefixes) {
		t.Errorf("site-a = %+v", a)
	}
	b := ms.Sites[1]
	if b.Algorithm != AlgHMACSHA256HKDF || b.KeyID != 0 || b.AcceptMoreSpecifics || !b.ProxyReply {
		t.Errorf("site-b defaults = %+v", b)
	}
	mr := c.MapResolver
	if mr == nil || len(mr.MapServers) != 1 || !mr.MapServers[0].Local || mr.NegativeTTL != 15*time.Minute ||
		mr.UnregisteredTTL != time.Minute {
		t.Errorf("map-resolver = %+v", mr)
	}
}

func TestDefaultsFilled(t *testing.T) {
	c, err := Parse([]byte("[daemon]\nroles = [\"ms\", \"mr\"]\n[map-server]\n[map-resolver]\n"), "min.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path: "min.toml",
		Daemon: Daemon{
			Roles:     []Role{RoleMapServer, RoleMapResolver},
			APISocket: "/run/lispd/lispd.sock",
			LogLevel:  slog.LevelInfo,
			LogFormat: LogFormatText,
		},
		Control: Control{Listen: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:4342")}},
		MapServer: &MapServer{
			RegistrationTimeout: 3 * time.Minute,
			MapNotifyRetransmit: time.Second,
			MapNotifyRetries:    3,
			MaxRegistrations:    1_000_000,
			PubSub: PubSub{
				Algorithm: AlgHMACSHA256, MaxSubscriptions: 1_000_000, MaxPerITR: 10_000,
				NegativeTTL: 15 * time.Minute, MaxPending: 200_000,
			},
		},
		MapResolver: &MapResolver{
			MapServers:      []MapServerRef{{Local: true}},
			NegativeTTL:     15 * time.Minute,
			UnregisteredTTL: time.Minute,
		},
		Failover: Failover{
			Enabled: true, WatchInterfaces: []string{}, HeartbeatInterval: 200 * time.Millisecond,
			DeadAfter: time.Second, DrainQuiet: time.Second, DrainTimeout: 30 * time.Second, SolicitMapRequests: true,
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v %+v %+v\nwant %+v %+v %+v", c, c.MapServer, c.MapResolver, want, want.MapServer, want.MapResolver)
	}
	// A site's own defaults.
	c, err = Parse([]byte("[daemon]\nroles=[\"ms\"]\n[[map-server.site]]\nname=\"a\"\nauthentication-key=\"k\"\neid-prefixes=[\"10.0.0.0/8\"]\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	s := c.MapServer.Sites[0]
	if s.KeyID != 0 || s.Algorithm != AlgHMACSHA256 || s.AcceptMoreSpecifics || !s.ProxyReply ||
		s.RegistrationPolicy != "auto" || s.MaxPrefixes != 10_000 || s.MaxRegistrations != 20_000 {
		t.Errorf("site defaults = %+v", s)
	}
}

// base is a valid config; tests append or replace lines to break it.
const base = `[daemon]
roles = ["ms", "mr"]

[control]
listen = ["0.0.0.0:4342"]

[map-server]
[[map-server.site]]
name = "site-a"
authentication-key = "s3cret"
eid-prefixes = ["10.1.0.0/16"]

[map-resolver]
`

func TestBaseIsValid(t *testing.T) {
	if _, err := Parse([]byte(base), "lispd.toml"); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each error, in order, as "line: text" substrings
	}{
		{"bad prefix", base + "", nil},
		{
			"prefix length", strings.Replace(base, `["10.1.0.0/16"]`, `["10.1.0.0/16",
  "10.1.0.0/33"]`, 1),
			[]string{`lispd.toml:12: map-server.site[0].eid-prefixes: "10.1.0.0/33": invalid prefix`},
		},
		{
			"prefix garbage", strings.Replace(base, `"10.1.0.0/16"`, `"10.1.0.x/16"`, 1),
			[]string{`lispd.toml:11: map-server.site[0].eid-prefixes: "10.1.0.x/16": invalid prefix`},
		},
		{
			"host bits", strings.Replace(base, `"10.1.0.0/16"`, `"10.1.2.3/16"`, 1),
			[]string{`lispd.toml:11: map-server.site[0].eid-prefixes: "10.1.2.3/16": host bits are set (did you mean 10.1.0.0/16?)`},
		},
		{
			"no prefix length", strings.Replace(base, `"10.1.0.0/16"`, `"10.1.2.3"`, 1),
			[]string{`:11: map-server.site[0].eid-prefixes: "10.1.2.3": missing prefix length (write 10.1.2.3/32`},
		},
		{
			"instance ID range", strings.Replace(base, `"10.1.0.0/16"`, `"iid:16777216/10.1.0.0/16"`, 1),
			[]string{`:11: map-server.site[0].eid-prefixes: "iid:16777216/10.1.0.0/16": instance ID "16777216" is not an integer 0..16777215`},
		},
		{
			"bad duration", base + "negative-ttl = \"15 minutes\"\n",
			[]string{`lispd.toml:14: map-resolver.negative-ttl: "15 minutes": invalid duration`},
		},
		{
			"negative duration", strings.Replace(base, "[map-server]\n", "[map-server]\nregistration-timeout = \"-3m\"\n", 1),
			[]string{`lispd.toml:8: map-server.registration-timeout: "-3m": must not be negative`},
		},
		{
			"zero duration", strings.Replace(base, "[map-server]\n", "[map-server]\nmap-notify-retransmit = \"0s\"\n", 1),
			[]string{`lispd.toml:8: map-server.map-notify-retransmit: "0s": must be greater than zero`},
		},
		{
			"ttl not minutes", base + "unregistered-ttl = \"90s\"\n",
			[]string{`lispd.toml:14: map-resolver.unregistered-ttl: "1m30s": must be a whole number of minutes`},
		},
		{
			"duration wrong type", base + "negative-ttl = 15\n",
			[]string{`lispd.toml:14: map-resolver.negative-ttl: 15: must be a duration string such as "90s" or "3m", not an integer`},
		},
		{
			"unknown role", strings.Replace(base, `["ms", "mr"]`, `["ms", "mr", "pxtr"]`, 1),
			[]string{`lispd.toml:2: daemon.roles: "pxtr": unknown role: want one of itr, etr, ms, mr`},
		},
		{
			"duplicate role", strings.Replace(base, `["ms", "mr"]`, `["ms", "mr", "ms"]`, 1),
			[]string{`lispd.toml:2: daemon.roles: "ms": duplicate role`},
		},
		{
			"no roles", strings.Replace(base, `["ms", "mr"]`, `[]`, 1),
			[]string{
				`lispd.toml:2: daemon.roles: []: must list at least one of itr, etr, ms, mr`,
			},
		},
		{
			"roles missing", strings.Replace(base, "roles = [\"ms\", \"mr\"]\n", "", 1),
			[]string{`lispd.toml:1: daemon.roles: required key is missing`},
		},
		{
			"unknown algorithm", strings.Replace(base, "name = \"site-a\"\n", "name = \"site-a\"\nalgorithm = \"hmac-md5\"\n", 1),
			[]string{`lispd.toml:10: map-server.site[0].algorithm: "hmac-md5": unknown algorithm`},
		},
		{
			"port out of range", strings.Replace(base, `["0.0.0.0:4342"]`, `["0.0.0.0:65536"]`, 1),
			[]string{`lispd.toml:5: control.listen: "0.0.0.0:65536": port 65536 out of range 0..65535`},
		},
		{
			"host name", strings.Replace(base, `["0.0.0.0:4342"]`, `["localhost:4342"]`, 1),
			[]string{`lispd.toml:5: control.listen: "localhost:4342": not an IP address (host names are not resolved)`},
		},
		{
			"metrics port missing", strings.Replace(base, "[daemon]\n", "[daemon]\nmetrics-listen = \"127.0.0.1\"\n", 1),
			[]string{`lispd.toml:2: daemon.metrics-listen: "127.0.0.1": missing port`},
		},
		{
			"map-server port", base + "map-servers = [\"192.0.2.1:0x10\"]\n",
			[]string{`lispd.toml:14: map-resolver.map-servers: "192.0.2.1:0x10": port 0x10 out of range 0..65535`},
		},
		{
			"duplicate listener", strings.Replace(base, `["0.0.0.0:4342"]`, `["0.0.0.0", "0.0.0.0:4342"]`, 1),
			[]string{`lispd.toml:5: control.listen: "0.0.0.0:4342": duplicate address`},
		},
		{
			"duplicate site name", base + "[[map-server.site]]\nname = \"site-a\"\nauthentication-key = \"k\"\neid-prefixes = [\"10.2.0.0/16\"]\n",
			[]string{`lispd.toml:15: map-server.site[1].name: "site-a": duplicate site name (first used by map-server.site[0] on line 9)`},
		},
		{
			"overlapping sites", base + "[[map-server.site]]\nname = \"site-b\"\nauthentication-key = \"k\"\neid-prefixes = [\"10.2.0.0/16\",\n \"10.1.128.0/17\"]\n",
			[]string{`lispd.toml:18: map-server.site[1].eid-prefixes: "10.1.128.0/17": overlaps 10.1.0.0/16 of site "site-a" (map-server.site[0] on line 11)`},
		},
		{
			"overlap across instances is fine", base + "[[map-server.site]]\nname = \"site-b\"\nauthentication-key = \"k\"\neid-prefixes = [\"iid:5/10.1.0.0/16\"]\n",
			nil,
		},
		{
			"duplicate prefix in a site", strings.Replace(base, `["10.1.0.0/16"]`, `["10.1.0.0/16", "10.1.0.0/16"]`, 1),
			[]string{`lispd.toml:11: map-server.site[0].eid-prefixes: "10.1.0.0/16": duplicate EID prefix`},
		},
		{
			"missing map-server section", strings.Replace(base, "[map-server]\n[[map-server.site]]\nname = \"site-a\"\nauthentication-key = \"s3cret\"\neid-prefixes = [\"10.1.0.0/16\"]\n", "", 1),
			[]string{`lispd.toml:2: map-server: section is required because daemon.roles has "ms"; add a [map-server] section`},
		},
		{
			"missing map-resolver section", strings.Replace(base, "[map-resolver]\n", "", 1),
			[]string{`lispd.toml:2: map-resolver: section is required because daemon.roles has "mr"`},
		},
		{
			"section without its role", strings.Replace(base, `["ms", "mr"]`, `["ms"]`, 1),
			[]string{`lispd.toml:13: map-resolver: section is set but daemon.roles has no "mr"; add the role or remove the section`},
		},
		{
			"local without ms", "[daemon]\nroles = [\"mr\"]\n[map-resolver]\nmap-servers = [\"192.0.2.1\", \"local\"]\n",
			[]string{`lispd.toml:4: map-resolver.map-servers: "local": "local" needs the ms role`},
		},
		{
			"empty key", strings.Replace(base, `"s3cret"`, `""`, 1),
			[]string{`lispd.toml:10: map-server.site[0].authentication-key: "": must not be empty`},
		},
		{
			"missing key", strings.Replace(base, "authentication-key = \"s3cret\"\n", "", 1),
			[]string{`lispd.toml:8: map-server.site[0].authentication-key: required key is missing`},
		},
		{
			"empty site name", strings.Replace(base, `name = "site-a"`, `name = ""`, 1),
			[]string{`lispd.toml:9: map-server.site[0].name: "": must not be empty`},
		},
		{
			"key-id range", strings.Replace(base, "name = \"site-a\"\n", "name = \"site-a\"\nkey-id = 256\n", 1),
			[]string{`lispd.toml:10: map-server.site[0].key-id: 256: out of range 0..255`},
		},
		{
			"retries range", strings.Replace(base, "[map-server]\n", "[map-server]\nmap-notify-retries = -1\n", 1),
			[]string{`lispd.toml:8: map-server.map-notify-retries: -1: out of range 0..100`},
		},
		{
			"registration policy", strings.Replace(base, "name = \"site-a\"\n", "name = \"site-a\"\nregistration-policy = \"latest\"\nmax-prefixes = 0\n", 1),
			[]string{`lispd.toml:10: map-server.site[0].registration-policy: "latest": unknown policy: want auto, merge, replace`,
				`lispd.toml:11: map-server.site[0].max-prefixes: 0: out of range 1..2147483647`},
		},
		{
			"map-server limits and state file", strings.Replace(base, "[map-server]\n", "[map-server]\nmax-registrations = -5\nstate-file = \"registrations.db\"\n", 1),
			[]string{`lispd.toml:8: map-server.max-registrations: -5: out of range 1..2147483647`,
				`lispd.toml:9: map-server.state-file: "registrations.db": must be an absolute path`},
		},
		{
			"wrong type bool", strings.Replace(base, "name = \"site-a\"\n", "name = \"site-a\"\nproxy-reply = \"yes\"\n", 1),
			[]string{`lispd.toml:10: map-server.site[0].proxy-reply: "yes": must be true or false, not a string`},
		},
		{
			"unknown key", strings.Replace(base, "[control]\n", "[control]\nlisten-port = 4342\n", 1),
			[]string{`lispd.toml:5: control.listen-port: unknown key`},
		},
		{
			"unknown key suggestion", strings.Replace(base, "name = \"site-a\"\n", "name = \"site-a\"\nauthentication_key = \"x\"\n", 1),
			[]string{`lispd.toml:10: map-server.site[0].authentication_key: unknown key (did you mean "authentication-key"?)`},
		},
		{
			"unknown section", base + "[pxtr]\nmap-resolvers = []\n",
			[]string{`lispd.toml:14: pxtr: unknown key`},
		},
		{
			"unknown array table", base + "[[map-server.sites]]\nname = \"x\"\n",
			[]string{`lispd.toml:14: map-server.sites: unknown key (did you mean "site"?)`},
		},
		{
			"relative socket", strings.Replace(base, "[daemon]\n", "[daemon]\napi-socket = \"lispd.sock\"\n", 1),
			[]string{`lispd.toml:2: daemon.api-socket: "lispd.sock": must be an absolute path`},
		},
		{
			"socket too long", strings.Replace(base, "[daemon]\n", "[daemon]\napi-socket = \"/"+strings.Repeat("x", 120)+"\"\n", 1),
			[]string{`path is 121 bytes long; unix socket paths are limited to 107`},
		},
		{
			"log level", strings.Replace(base, "[daemon]\n", "[daemon]\nlog-level = \"verbose\"\n", 1),
			[]string{`lispd.toml:2: daemon.log-level: "verbose": unknown log level: want debug, info, warn or error`},
		},
		{
			"log format", strings.Replace(base, "[daemon]\n", "[daemon]\nlog-format = \"xml\"\n", 1),
			[]string{`lispd.toml:2: daemon.log-format: "xml": unknown log format: want text or json`},
		},
		{
			"section wrong type", "map-server = 3\n[daemon]\nroles = [\"ms\"]\n",
			[]string{`lispd.toml:1: map-server: 3: must be a table, not an integer`},
		},
		{
			"site as a plain table", strings.Replace(base, "[[map-server.site]]", "[map-server.site]", 1),
			[]string{`lispd.toml:8: map-server.site: must be an array of tables: write [[map-server.site]] (two brackets) for each element`},
		},
		{
			"string for an array", strings.Replace(base, `["10.1.0.0/16"]`, `"10.1.0.0/16"`, 1),
			[]string{`lispd.toml:11: map-server.site[0].eid-prefixes: "10.1.0.0/16": must be an array, not a string`},
		},
		{
			"empty file", "",
			[]string{`lispd.toml: daemon.roles: required key is missing`},
		},
		{
			"syntax error", base + "name = = 3\n",
			[]string{`lispd.toml:14: syntax error: `},
		},
		{
			"duplicate key is a syntax error", strings.Replace(base, "[control]\n", "[control]\nlisten = []\n", 1),
			[]string{`lispd.toml:6: syntax error: `},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "lispd.toml")
			errs := Errors(err)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q\nwant it to contain %q", i, errs[i], w)
				}
				if !strings.HasPrefix(errs[i].Error(), "lispd.toml:") {
					t.Errorf("error %d %q does not start with the file name", i, errs[i])
				}
			}
		})
	}
}

func TestErrorsCollectedAndSorted(t *testing.T) {
	src := `[daemon]
roles = ["ms", "bogus"]
log-level = "loud"

[map-server]
[[map-server.site]]
name = "a"
authentication-key = ""
eid-prefixes = ["10.0.0.0/33"]
typo = 1
[[map-server.site]]
name = "a"
authentication-key = "k"
eid-prefixes = ["10.0.0.0/8"]
`
	_, err := Parse([]byte(src), "f.toml")
	errs := Errors(err)
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	want := []int{2, 3, 8, 9, 10, 12}
	if !slices.Equal(lines, want) {
		t.Fatalf("lines = %v, want %v\n%v", lines, want, err)
	}
	// The joined error prints one problem a line, in the same order.
	if got := strings.Split(err.Error(), "\n"); len(got) != len(errs) || got[0] != errs[0].Error() {
		t.Errorf("joined error = %q", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestSecretDoesNotPrint(t *testing.T) {
	c, err := Parse([]byte(base), "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, c.MapServer.Sites); strings.Contains(out, "s3cret") {
			t.Errorf("%s leaks the key: %s", format, out)
		}
	}
	if string(c.MapServer.Sites[0].AuthenticationKey) != "s3cret" {
		t.Error("key value lost")
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "f", Line: 3, Key: "a.b", Value: `"x"`, Msg: "bad"}, `f:3: a.b: "x": bad`},
		{Error{File: "f", Key: "a", Msg: "bad"}, `f: a: bad`},
		{Error{File: "f", Line: 1, Msg: "syntax error: x"}, `f:1: syntax error: x`},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if Errors(nil) != nil || Errors(errors.New("x")) != nil {
		t.Error("Errors of non-config errors should be nil")
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"examples/ms-mr.toml", "examples/ms.toml", "examples/mr.toml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(base))
	f.Add([]byte("a = '''\n[x]\n'''\n[[b]]\n[[b]]\nc = {d = [1, {e = 2}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c, err)
		}
		if err != nil {
			for _, e := range Errors(err) {
				if e.File != "fuzz.toml" || e.Msg == "" {
					t.Fatalf("malformed error %#v", e)
				}
			}
			return
		}
		// A valid config diffs empty against itself and survives a reparse.
		if ch := Diff(c, c); !ch.Empty() {
			t.Fatalf("Diff(c, c) = %v", ch)
		}
	})
}
