package config

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// goTypeName matches a Go type name such as "netip.Prefix", which means a
// schema type is missing from typeNames.
var goTypeName = regexp.MustCompile(`[a-z]\.[A-Z]`)

func TestKeysDocumentEverything(t *testing.T) {
	keys := Keys()
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.Path] {
			t.Errorf("%s listed twice", k.Path)
		}
		seen[k.Path] = true
		if strings.TrimSpace(k.Doc) == "" {
			t.Errorf("%s has no doc tag", k.Path)
		}
		if k.Type == "" || goTypeName.MatchString(k.Type) {
			t.Errorf("%s has no documented type (%q)", k.Path, k.Type)
		}
		if k.IsTable() {
			if k.Default != "" || k.Required {
				t.Errorf("table %s has a default or is required", k.Path)
			}
			continue
		}
		if k.Required == (k.Default != "") {
			t.Errorf("%s: a key needs exactly one of a default and required:\"true\" (default %q)", k.Path, k.Default)
		}
		if k.Default != "" {
			if _, err := parseDefault(k.Default); err != nil {
				t.Errorf("%s: default %s is not a TOML value: %v", k.Path, k.Default, err)
			}
		}
		if want := joinKey(k.Table, k.Name); want != k.Path {
			t.Errorf("%s: Table %q + Name %q = %q", k.Path, k.Table, k.Name, want)
		}
	}
	// Every field of every section struct is listed.
	var count func(reflect.Type) int
	count = func(t reflect.Type) int {
		n := 0
		for _, f := range fieldsOf(t) {
			n++
			if st := sectionType(t.Field(f.index).Type); st != nil {
				n += count(st)
			}
		}
		return n
	}
	if n := count(reflect.TypeFor[Config]()); n != len(keys) {
		t.Errorf("Keys lists %d entries, the schema has %d", len(keys), n)
	}
	for _, p := range []string{"daemon.roles", "map-server.site.eid-prefixes", "map-resolver.negative-ttl", "control.listen"} {
		if !seen[p] {
			t.Errorf("%s missing from Keys", p)
		}
	}
}

func TestKeysTypesAndFlags(t *testing.T) {
	want := map[string]Key{
		"daemon.roles":                    {Type: "array of roles", Required: true, RestartRequired: true},
		"daemon.api-socket":               {Type: "string", Default: "'/run/lispd/lispd.sock'", RestartRequired: true},
		"map-server":                      {Type: "optional table"},
		"map-server.site":                 {Type: "array of tables"},
		"map-server.site.eid-prefixes":    {Type: "array of EID prefixes", Required: true},
		"map-resolver.negative-ttl":       {Type: "duration", Default: "'15m'"},
		"map-resolver.unregistered-ttl":   {Type: "duration", Default: "'1m'"},
		"map-server.registration-timeout": {Type: "duration", Default: "'3m'"},
		"control.listen":                  {Type: "array of addresses", Default: "['0.0.0.0:4342']"},
	}
	for _, k := range Keys() {
		w, ok := want[k.Path]
		if !ok {
			continue
		}
		if k.Type != w.Type || k.Default != w.Default || k.Required != w.Required || k.RestartRequired != w.RestartRequired {
			t.Errorf("%s = %+v, want %+v", k.Path, k, w)
		}
		delete(want, k.Path)
	}
	for p := range want {
		t.Errorf("%s not listed", p)
	}
}

// TestDefaultsMatchKeys checks that the defaults Parse fills in are the
// ones Keys documents, by decoding each documented default on its own.
func TestDefaultsMatchKeys(t *testing.T) {
	c, err := Parse([]byte("[daemon]\nroles = [\"ms\", \"mr\", \"itr\", \"etr\"]\n[map-server]\n[[map-server.site]]\nname = \"a\"\nauthentication-key = \"k\"\neid-prefixes = [\"10.0.0.0/8\"]\n[map-resolver]\n"+
		"[dataplane]\nrlocs = [\"192.0.2.1\"]\n[itr]\nmap-resolvers = [\"192.0.2.9\"]\n[etr]\n[[etr.map-server]]\naddress = \"192.0.2.9\"\nauthentication-key = \"k\"\n"+
		"[[etr.eid]]\nprefix = \"10.0.0.0/8\"\nrlocs = [{address = \"192.0.2.1\"}]\n[sync]\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]reflect.Value{
		"daemon":            reflect.ValueOf(c.Daemon),
		"control":           reflect.ValueOf(c.Control),
		"map-server":        reflect.ValueOf(*c.MapServer),
		"map-server.site":   reflect.ValueOf(c.MapServer.Sites[0]),
		"map-server.pubsub": reflect.ValueOf(c.MapServer.PubSub),
		"map-resolver":      reflect.ValueOf(*c.MapResolver),
		"dataplane":         reflect.ValueOf(*c.Dataplane),
		"itr":               reflect.ValueOf(*c.ITR),
		"etr":               reflect.ValueOf(*c.ETR),
		"etr.map-server":    reflect.ValueOf(c.ETR.MapServers[0]),
		"etr.eid.rlocs":     reflect.ValueOf(c.ETR.EIDs[0].RLOCs[0]),
		"sync":              reflect.ValueOf(*c.Sync),
		"failover":          reflect.ValueOf(c.Failover),
	}
	checked := 0
	for _, k := range Keys() {
		if k.Default == "" {
			continue
		}
		sv, ok := values[k.Table]
		if !ok {
			t.Fatalf("no value for table %s", k.Table)
		}
		var f fieldInfo
		for _, fi := range fieldsOf(sv.Type()) {
			if fi.name == k.Name {
				f = fi
			}
		}
		got := sv.Field(f.index)
		v, err := parseDefault(k.Default)
		if err != nil {
			t.Fatal(err)
		}
		d := newDecoder(nil, "x")
		d.lines = lineIndex{}
		want := reflect.New(got.Type()).Elem()
		d.decodeValue(k.Path, k.Path, v, want, f)
		if len(d.errs) > 0 {
			t.Errorf("%s: default %s: %v", k.Path, k.Default, d.errs[0])
		}
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			t.Errorf("%s = %v, documented default %s", k.Path, got, k.Default)
		}
		checked++
	}
	if checked < 15 {
		t.Errorf("only %d defaults checked", checked)
	}
}
