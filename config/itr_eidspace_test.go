package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestITREIDSpace(t *testing.T) {
	c := mustParse(t, xtrBase)
	if len(c.ITR.EIDSpace) != 0 {
		t.Errorf("default eid-space %v, want empty (unrestricted)", c.ITR.EIDSpace)
	}
	src := strings.Replace(xtrBase, "[itr]\n", "[itr]\neid-space = [\"10.0.0.0/8\", \"iid:1000/10.0.0.0/8\", \"2001:db8::/32\"]\n", 1)
	c2 := mustParse(t, src)
	want := []EIDPrefix{
		{0, netip.MustParsePrefix("10.0.0.0/8")},
		{1000, netip.MustParsePrefix("10.0.0.0/8")},
		{0, netip.MustParsePrefix("2001:db8::/32")},
	}
	if !slices.Equal(c2.ITR.EIDSpace, want) {
		t.Errorf("eid-space %v, want %v", c2.ITR.EIDSpace, want)
	}
	// Reloadable.
	if ch := Diff(c, c2); !slices.Equal(ch.Changed, []string{"itr.eid-space"}) || len(ch.RestartRequired) != 0 {
		t.Errorf("diff: changed %v, restart %v", ch.Changed, ch.RestartRequired)
	}
	for _, tc := range []struct{ val, want string }{
		{`["10.0.0.0/8", "10.0.0.0/8"]`, `x.toml:8: itr.eid-space: "10.0.0.0/8": duplicate EID prefix`},
		{`["10.1.0.0/8"]`, `x.toml:8: itr.eid-space: "10.1.0.0/8": host bits are set (did you mean 10.0.0.0/8?)`},
		{`["iid:16777216/10.0.0.0/8"]`, `x.toml:8: itr.eid-space`},
		{`"10.0.0.0/8"`, `x.toml:8: itr.eid-space`},
	} {
		_, err := Parse([]byte(strings.Replace(xtrBase, "[itr]\n", "[itr]\neid-space = "+tc.val+"\n", 1)), "x.toml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("eid-space = %s: err %v, want %q", tc.val, err, tc.want)
		}
	}
}
