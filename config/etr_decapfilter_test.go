package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestETRDecapFilter checks etr.decap-filter and etr.decap-filter-allow:
// off and empty by default, parsed when set, and refused with the line
// and key when wrong.
func TestETRDecapFilter(t *testing.T) {
	c, err := Parse([]byte(xtrBase), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.ETR.DecapFilter != DecapFilterOff || len(c.ETR.DecapFilterAllow) != 0 {
		t.Errorf("defaults: %q %v", c.ETR.DecapFilter, c.ETR.DecapFilterAllow)
	}
	on := strings.Replace(xtrBase, "[etr]\n", "[etr]\ndecap-filter = \"on\"\ndecap-filter-allow = [\"203.0.113.0/24\", \"2001:db8:f::/48\"]\n", 1)
	if c, err = Parse([]byte(on), "x.toml"); err != nil {
		t.Fatal(err)
	}
	if c.ETR.DecapFilter != DecapFilterOn || !slices.Equal(c.ETR.DecapFilterAllow,
		[]netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8:f::/48")}) {
		t.Errorf("parsed: %q %v", c.ETR.DecapFilter, c.ETR.DecapFilterAllow)
	}
	for _, tc := range []struct{ name, src, want string }{
		{"mode", strings.Replace(xtrBase, "[etr]\n", "[etr]\ndecap-filter = \"strict\"\n", 1),
			`x.toml:11: etr.decap-filter: "strict": must be "off" or "on"`},
		{"bool", strings.Replace(xtrBase, "[etr]\n", "[etr]\ndecap-filter = true\n", 1),
			`x.toml:11: etr.decap-filter`},
		{"host bits", strings.Replace(xtrBase, "[etr]\n", "[etr]\ndecap-filter-allow = [\"203.0.113.7/24\"]\n", 1),
			`x.toml:11: etr.decap-filter-allow: "203.0.113.7/24": host bits are set (did you mean 203.0.113.0/24?)`},
		{"mapped", strings.Replace(xtrBase, "[etr]\n", "[etr]\ndecap-filter-allow = [\"::ffff:203.0.113.0/120\"]\n", 1),
			`x.toml:11: etr.decap-filter-allow: "::ffff:203.0.113.0/120": is an IPv4-mapped prefix`},
		{"garbage", strings.Replace(xtrBase, "[etr]\n", "[etr]\ndecap-filter-allow = [\"203.0.113.0\"]\n", 1),
			`x.toml:11: etr.decap-filter-allow`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "x.toml")
			errs := Errors(err)
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("errors %v, want one containing %q", err, tc.want)
			}
		})
	}
}
