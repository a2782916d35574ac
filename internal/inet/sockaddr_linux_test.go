package inet

import (
	"net/netip"
	"testing"
)

func TestSockaddrRoundTrip(t *testing.T) {
	for _, c := range []struct {
		ap  string
		is6 bool
	}{{"192.0.2.1:4342", false}, {"[2001:db8::1]:4341", true}, {"[::ffff:192.0.2.9]:1", true}} {
		ap := netip.MustParseAddrPort(c.ap)
		var b Sockaddr
		n := PutSockaddr(&b, ap, c.is6)
		if (c.is6 && n != 28) || (!c.is6 && n != 16) {
			t.Errorf("%s: length %d", c.ap, n)
		}
		if got := ParseSockaddr(&b); got != ap {
			t.Errorf("%s: round trip gave %s", c.ap, got)
		}
	}
	var zero Sockaddr
	if got := ParseSockaddr(&zero); got.IsValid() {
		t.Errorf("AF_UNSPEC parsed as %s", got)
	}
}
