package daemon

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/dataplane"
)

// TestXTRDecapFilter runs issue 13's injection against a site whose ETR
// has etr.decap-filter = "on": a host outside every mapping sends LISP
// packets to the site's RLOC and none reaches the site's hosts, while a
// remote site that resolved the site's EIDs through the mapping system
// (the ETR answered its Map-Request) gets through.
func TestXTRDecapFilter(t *testing.T) {
	startXTRDaemon(t, msmrConfig, nil, nil)
	mn := dataplane.NewMemNetwork(256)
	a := startSite(t, mn, xtrA, "drop", "key-a", "hmac-sha-256", "10.1.0.0/24", 100)
	host, xdev := dataplane.NewMemDevicePair("host-"+xtrB, "lisp0", 1500, 64)
	t.Cleanup(func() { host.Close() })
	conn, err := mn.Listen(netip.AddrPortFrom(netip.MustParseAddr(xtrB), 4341))
	if err != nil {
		t.Fatal(err)
	}
	cfgB := strings.Replace(fmt.Sprintf(siteConfig, xtrB, "drop", "key-b", "hmac-sha-1", "10.2.0.0/24", 100),
		"[etr]\n", "[etr]\ndecap-filter = \"on\"\n", 1)
	b := startXTRDaemon(t, cfgB, xdev, conn)
	b.host = host
	a.waitRegistered(t)
	b.waitRegistered(t)

	attacker, err := mn.Listen(netip.MustParseAddrPort("127.77.88.66:4341"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { attacker.Close() })
	injected := append([]byte{0x80, 0, 0, 1, 0, 0, 0, 0}, echo("10.9.0.1", "10.2.0.7", false, 1)...)
	to := []dataplane.Meta{{Addr: netip.AddrPortFrom(netip.MustParseAddr(xtrB), 4341)}}
	for range 10 {
		if _, err := attacker.Write([][]byte{injected}, to, 0); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the injected packets dropped", func() bool { return b.counter("dataplane_decap_drop_unknown_rloc") == 10 })

	// Site A resolves site B (its first packet is the miss), B's ETR
	// answers and learns A's RLOC, and A's next packet is delivered.
	a.hostSend(t, echo("10.1.0.5", "10.2.0.7", false, 1))
	waitFor(t, "site B's answer learned", func() bool { return b.counter("etr_decap_filter_learned") >= 1 })
	waitFor(t, "site A's mapping", func() bool {
		e, ok := a.d.ITRRole().Cache().Lookup(0, netip.MustParseAddr("10.2.0.7"))
		return ok && !e.Negative()
	})
	want := echo("10.1.0.5", "10.2.0.7", false, 2)
	a.hostSend(t, want)
	if got := b.hostRecv(t, 5*time.Second); got == nil || !sameInner(got, want) {
		t.Fatalf("site B's host got %x, want site A's packet", got)
	}
	if n := b.counter("dataplane_decap_drop_unknown_rloc"); n != 10 {
		t.Errorf("dataplane_decap_drop_unknown_rloc %d, want 10", n)
	}
}
