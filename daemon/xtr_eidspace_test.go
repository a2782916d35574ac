package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/dataplane"
)

// TestXTRITRConfigEIDSpace: itr.eid-space reaches the ITR.
func TestXTRITRConfigEIDSpace(t *testing.T) {
	text := fmt.Sprintf(siteConfig, xtrA, "drop", "key-a", "hmac-sha-256", "10.1.0.0/24", 100)
	for _, tc := range []struct {
		line string
		want []dataplane.EIDPrefix
	}{
		{"", nil},
		{`eid-space = ["10.0.0.0/8", "iid:7/2001:db8::/32"]`, []dataplane.EIDPrefix{
			{Prefix: netip.MustParsePrefix("10.0.0.0/8")},
			{InstanceID: 7, Prefix: netip.MustParsePrefix("2001:db8::/32")},
		}},
	} {
		src := strings.Replace(text, "[itr]\n", "[itr]\n"+tc.line+"\n", 1)
		cfg, err := config.Parse([]byte(src), "x.toml")
		if err != nil {
			t.Fatal(err)
		}
		c, err := itrConfig(cfg, 4342, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.EIDSpace, tc.want) {
			t.Errorf("%q: EIDSpace %v, want %v", tc.line, c.EIDSpace, tc.want)
		}
	}
}
