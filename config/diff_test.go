package config

import (
	"reflect"
	"strings"
	"testing"
)

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse([]byte(src), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const diffBase = `[daemon]
roles = ["ms", "mr"]
log-level = "info"

[control]
listen = ["0.0.0.0:4342"]

[map-server]
[[map-server.site]]
name = "a"
authentication-key = "ka"
eid-prefixes = ["10.1.0.0/16"]
[[map-server.site]]
name = "b"
authentication-key = "kb"
eid-prefixes = ["10.2.0.0/16"]
[[map-server.site]]
name = "c"
authentication-key = "kc"
eid-prefixes = ["10.3.0.0/16"]

[map-resolver]
`

func TestDiffNone(t *testing.T) {
	a, b := mustParse(t, diffBase), mustParse(t, diffBase)
	ch := Diff(a, b)
	if !ch.Empty() || ch.String() != "no changes" {
		t.Errorf("Diff of equal configs = %+v", ch)
	}
	// Reordering sites is not a change.
	reordered := strings.Replace(diffBase, "name = \"a\"\nauthentication-key = \"ka\"\neid-prefixes = [\"10.1.0.0/16\"]\n[[map-server.site]]\n", "", 1) +
		""
	reordered = strings.Replace(reordered, "[map-resolver]\n", "[[map-server.site]]\nname = \"a\"\nauthentication-key = \"ka\"\neid-prefixes = [\"10.1.0.0/16\"]\n\n[map-resolver]\n", 1)
	if ch := Diff(a, mustParse(t, reordered)); !ch.Empty() {
		t.Errorf("reordered sites: %v", ch)
	}
}

func TestDiffChanges(t *testing.T) {
	old := mustParse(t, diffBase)
	src := diffBase
	src = strings.Replace(src, `roles = ["ms", "mr"]`, `roles = ["mr", "ms"]`, 1)
	src = strings.Replace(src, `log-level = "info"`, "log-level = \"debug\"\napi-socket = \"/tmp/x.sock\"\nmetrics-listen = \"127.0.0.1:9\"", 1)
	src = strings.Replace(src, `listen = ["0.0.0.0:4342"]`, `listen = ["0.0.0.0:4343"]`, 1)
	src = strings.Replace(src, `authentication-key = "kb"`, `authentication-key = "kb2"`, 1)
	src = strings.Replace(src, "[[map-server.site]]\nname = \"c\"\nauthentication-key = \"kc\"\neid-prefixes = [\"10.3.0.0/16\"]\n",
		"[[map-server.site]]\nname = \"d\"\nauthentication-key = \"kd\"\neid-prefixes = [\"10.3.0.0/16\"]\n", 1)
	src = strings.Replace(src, "[map-resolver]\n", "[map-resolver]\nnegative-ttl = \"5m\"\n", 1)
	ch := Diff(old, mustParse(t, src))

	wantSites := TableDiff{Added: []string{"d"}, Removed: []string{"c"}, Changed: []string{"b"}}
	if !reflect.DeepEqual(ch.Sites, wantSites) || !reflect.DeepEqual(ch.Tables["map-server.site"], wantSites) {
		t.Errorf("Sites = %+v, want %+v", ch.Sites, wantSites)
	}
	if !ch.ListenersChanged || !ch.LogLevelChanged || !ch.MetricsListenChanged {
		t.Errorf("flags = %+v", ch)
	}
	wantChanged := []string{"daemon.metrics-listen", "daemon.log-level", "control.listen", "map-resolver.negative-ttl"}
	if !reflect.DeepEqual(ch.Changed, wantChanged) {
		t.Errorf("Changed = %v, want %v", ch.Changed, wantChanged)
	}
	wantRestart := []string{"daemon.roles", "daemon.api-socket"}
	if !reflect.DeepEqual(ch.RestartRequired, wantRestart) {
		t.Errorf("RestartRequired = %v, want %v", ch.RestartRequired, wantRestart)
	}
	if ch.Empty() {
		t.Error("Empty() on changes")
	}
	s := ch.String()
	for _, part := range []string{"map-server.site added d", "map-server.site removed c", "map-server.site changed b", "restart required for daemon.roles,daemon.api-socket"} {
		if !strings.Contains(s, part) {
			t.Errorf("String() = %q, missing %q", s, part)
		}
	}
	if strings.Contains(s, "kb2") {
		t.Error("String() leaks a key")
	}
}

func TestDiffSections(t *testing.T) {
	msOnly := mustParse(t, "[daemon]\nroles = [\"ms\"]\n[map-server]\n[[map-server.site]]\nname = \"a\"\nauthentication-key = \"k\"\neid-prefixes = [\"10.0.0.0/8\"]\n")
	mrOnly := mustParse(t, "[daemon]\nroles = [\"mr\"]\n[map-resolver]\nmap-servers = [\"192.0.2.1\"]\n")
	ch := Diff(msOnly, mrOnly)
	if !reflect.DeepEqual(ch.Sites.Removed, []string{"a"}) {
		t.Errorf("removing the map-server removes its sites: %+v", ch.Sites)
	}
	wantChanged := []string{"map-server", "map-server.registration-timeout", "map-server.map-notify-retransmit",
		"map-server.map-notify-retries", "map-resolver", "map-resolver.map-servers", "map-resolver.negative-ttl",
		"map-resolver.unregistered-ttl"}
	if !reflect.DeepEqual(ch.Changed, wantChanged) {
		t.Errorf("Changed = %v\nwant %v", ch.Changed, wantChanged)
	}
	// The pub/sub keys of the removed map-server need a restart, as the
	// role does.
	wantRestart := []string{"daemon.roles", "map-server.max-registrations", "map-server.pubsub.algorithm", "map-server.pubsub.max-subscriptions",
		"map-server.pubsub.max-per-itr", "map-server.pubsub.negative-ttl", "map-server.pubsub.max-pending"}
	if !reflect.DeepEqual(ch.RestartRequired, wantRestart) {
		t.Errorf("RestartRequired = %v", ch.RestartRequired)
	}
	// nil configs do not panic.
	if ch := Diff(nil, nil); !ch.Empty() {
		t.Errorf("Diff(nil, nil) = %v", ch)
	}
	if ch := Diff(nil, msOnly); ch.Empty() || len(ch.Sites.Added) != 1 {
		t.Errorf("Diff(nil, c) = %+v", ch)
	}
}
