package config

import (
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
)

func TestEIDPrefix(t *testing.T) {
	good := []struct {
		in   string
		want EIDPrefix
		str  string
	}{
		{"10.1.0.0/16", EIDPrefix{0, netip.MustParsePrefix("10.1.0.0/16")}, "10.1.0.0/16"},
		{"iid:0/10.1.0.0/16", EIDPrefix{0, netip.MustParsePrefix("10.1.0.0/16")}, "10.1.0.0/16"},
		{"iid:1000/10.1.0.0/16", EIDPrefix{1000, netip.MustParsePrefix("10.1.0.0/16")}, "iid:1000/10.1.0.0/16"},
		{"iid:16777215/2001:db8::/32", EIDPrefix{MaxInstanceID, netip.MustParsePrefix("2001:db8::/32")}, "iid:16777215/2001:db8::/32"},
		{"0.0.0.0/0", EIDPrefix{0, netip.MustParsePrefix("0.0.0.0/0")}, "0.0.0.0/0"},
		{"::/0", EIDPrefix{0, netip.MustParsePrefix("::/0")}, "::/0"},
	}
	for _, tt := range good {
		p, err := ParseEIDPrefix(tt.in)
		if err != nil || p != tt.want {
			t.Errorf("ParseEIDPrefix(%q) = %v, %v; want %v", tt.in, p, err, tt.want)
			continue
		}
		if p.String() != tt.str {
			t.Errorf("String = %q, want %q", p.String(), tt.str)
		}
		var q EIDPrefix
		b, err := p.MarshalText()
		if err != nil || q.UnmarshalText(b) != nil || q != p {
			t.Errorf("text round trip of %v: %s, %v, %v", p, b, err, q)
		}
	}
	bad := map[string]string{
		"":                       "empty prefix",
		"iid:5/":                 "empty prefix",
		"10.1.0.0":               "missing prefix length (write 10.1.0.0/32 for a single address)",
		"2001:db8::1":            "missing prefix length (write 2001:db8::1/128 for a single address)",
		"10.1.0.0/33":            `invalid prefix: length "33" must be 0..32`,
		"2001:db8::/129":         `invalid prefix: length "129" must be 0..128`,
		"10.1.0.0/-1":            `invalid prefix: length "-1" must be 0..32`,
		"10.1.0.1/16":            "host bits are set (did you mean 10.1.0.0/16?)",
		"iid:/10.0.0.0/8":        `instance ID "" is not an integer 0..16777215`,
		"iid:-1/10.0.0.0/8":      `instance ID "-1" is not an integer 0..16777215`,
		"iid:16777216/1.0.0.0/8": `instance ID "16777216" is not an integer 0..16777215`,
		"iid:5":                  "want iid:N/prefix",
		"iid:5/x/8":              "invalid prefix",
		"fe80::%eth0/64":         "invalid prefix",
		"[::]/0":                 "invalid prefix",
	}
	for in, msg := range bad {
		_, err := ParseEIDPrefix(in)
		var ve *ValueError
		if !errors.As(err, &ve) || ve.Msg != msg || ve.Value != in {
			t.Errorf("ParseEIDPrefix(%q) error = %#v, want message %q", in, err, msg)
		}
	}
	var zero EIDPrefix
	if zero.IsValid() || zero.String() != "invalid EID prefix" {
		t.Errorf("zero EIDPrefix: valid=%v %q", zero.IsValid(), zero)
	}
	if _, err := zero.MarshalText(); err == nil {
		t.Error("MarshalText of the zero EIDPrefix succeeded")
	}
}

func TestEIDPrefixRelations(t *testing.T) {
	p := func(s string) EIDPrefix {
		v, err := ParseEIDPrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if !p("10.0.0.0/8").Overlaps(p("10.1.0.0/16")) || p("10.0.0.0/8").Overlaps(p("iid:1/10.1.0.0/16")) ||
		p("10.0.0.0/8").Overlaps(p("11.0.0.0/8")) {
		t.Error("Overlaps wrong")
	}
	if !p("iid:3/10.0.0.0/8").Contains(3, netip.MustParseAddr("10.9.9.9")) || p("iid:3/10.0.0.0/8").Contains(0, netip.MustParseAddr("10.9.9.9")) {
		t.Error("Contains wrong")
	}
	list := []EIDPrefix{p("iid:1/10.0.0.0/8"), p("10.1.0.0/16"), p("10.0.0.0/8"), p("::/0"), p("10.0.0.0/16")}
	slices.SortFunc(list, EIDPrefix.Compare)
	want := []EIDPrefix{p("10.0.0.0/8"), p("10.0.0.0/16"), p("10.1.0.0/16"), p("::/0"), p("iid:1/10.0.0.0/8")}
	if !slices.Equal(list, want) {
		t.Errorf("sorted = %v, want %v", list, want)
	}
}

func TestParseAddrPort(t *testing.T) {
	good := []struct {
		in   string
		def  int
		want string
	}{
		{"192.0.2.1", 4342, "192.0.2.1:4342"},
		{"192.0.2.1:1", 4342, "192.0.2.1:1"},
		{"0.0.0.0:0", -1, "0.0.0.0:0"},
		{"::", 4342, "[::]:4342"},
		{"2001:db8::1", 4342, "[2001:db8::1]:4342"},
		{"[2001:db8::1]", 4342, "[2001:db8::1]:4342"},
		{"[2001:db8::1]:65535", -1, "[2001:db8::1]:65535"},
		{"[::ffff:192.0.2.1]:9", -1, "192.0.2.1:9"},
	}
	for _, tt := range good {
		got, err := ParseAddrPort(tt.in, tt.def)
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseAddrPort(%q, %d) = %v, %v; want %s", tt.in, tt.def, got, err, tt.want)
		}
	}
	bad := []struct {
		in  string
		def int
		msg string
	}{
		{"", 4342, "empty address"},
		{"192.0.2.1", -1, "missing port"},
		{"192.0.2.1:", 4342, "empty port"},
		{"192.0.2.1:65536", 4342, "port 65536 out of range 0..65535"},
		{"192.0.2.1:-1", 4342, "port -1 out of range 0..65535"},
		{"example.net:4342", 4342, "not an IP address (host names are not resolved)"},
		{"[fe80::1%eth0]:4342", 4342, "zoned IPv6 addresses are not supported"},
	}
	for _, tt := range bad {
		_, err := ParseAddrPort(tt.in, tt.def)
		var ve *ValueError
		if !errors.As(err, &ve) || ve.Msg != tt.msg {
			t.Errorf("ParseAddrPort(%q, %d) error = %v, want %q", tt.in, tt.def, err, tt.msg)
		}
	}
}

func TestEnums(t *testing.T) {
	for _, name := range []string{"hmac-sha-1", "hmac-sha-1-96", "hmac-sha-256", "hmac-sha-256-128", "hmac-sha-256-hkdf"} {
		var a Algorithm
		if err := a.UnmarshalText([]byte(name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		b, _ := a.MarshalText()
		var again Algorithm
		if err := again.UnmarshalText(b); err != nil || again != a {
			t.Errorf("%s: round trip via %s gave %v", name, b, again)
		}
	}
	if AlgHMACSHA1 != 1 || AlgHMACSHA256 != 2 || AlgHMACSHA256HKDF != 3 {
		t.Error("Algorithm IDs do not match the IANA registry")
	}
	if Algorithm(9).String() != "algorithm-9" {
		t.Error(Algorithm(9).String())
	}
	var a Algorithm
	if a.UnmarshalText([]byte("none")) == nil {
		t.Error("algorithm none accepted")
	}
	for _, r := range Roles() {
		var got Role
		if err := got.UnmarshalText([]byte(r)); err != nil || got != r {
			t.Errorf("role %s: %v", r, err)
		}
	}
	var r Role
	if r.UnmarshalText([]byte("MS")) == nil {
		t.Error("role names are case-sensitive")
	}
	for _, name := range LogLevelNames() {
		l, err := ParseLogLevel(name)
		if err != nil || LogLevelName(l) != name {
			t.Errorf("log level %s: %v %v", name, l, err)
		}
	}
	if l, err := ParseLogLevel("WARNING"); err != nil || l != slog.LevelWarn {
		t.Errorf("WARNING: %v %v", l, err)
	}
	if _, err := ParseLogLevel("info+2"); err == nil {
		t.Error("info+2 accepted")
	}
	if LogLevelName(slog.LevelInfo+2) != "info" || LogLevelName(slog.LevelError+4) != "error" || LogLevelName(-8) != "debug" {
		t.Error("LogLevelName rounding wrong")
	}
	var ref MapServerRef
	if err := ref.UnmarshalText([]byte("local")); err != nil || !ref.Local || ref.String() != "local" {
		t.Errorf("local: %v %v", ref, err)
	}
	if err := ref.UnmarshalText([]byte("192.0.2.9")); err != nil || ref.Local || ref.String() != "192.0.2.9:4342" {
		t.Errorf("addr: %v %v", ref, err)
	}
	if Secret("").String() != "" || Secret("x").String() != "<redacted>" {
		t.Error("Secret String wrong")
	}
}
