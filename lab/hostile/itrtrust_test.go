//go:build linux

package hostile

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// Case 5: the ITR's trust in Map-Replies. The xTR's Map-Resolver is the
// suite's socket, so the suite sees each Map-Request (and its nonce) and
// answers as a fake Map-Resolver or ETR would: a default route, locators
// that must never be installed (loopback, the xTR's own RLOC, link-local,
// broadcast, "this network", multicast), a record outside itr.eid-space,
// a record for another EID, a reply with a wrong nonce. Each is refused,
// counted, and absent from the map-cache, while a legitimate reply
// (or the legitimate locators of a mixed one) is installed.

const (
	itrCase   = 5
	itrTUN    = "hstitr0"
	remoteLoc = "198.51.100.7" // TEST-NET-2: installed, never sent to
)

var (
	// itrRLOC is the xTR's own RLOC. Not a loopback address: an xTR whose
	// own RLOC is loopback takes loopback locators too (a lab on one
	// host), and the case checks that 127.0.0.1 is refused. Nothing is
	// ever sent to it (the fake Map-Resolver answers the control socket).
	itrRLOC  = netip.MustParseAddr("192.0.2.1")
	itrSpace = netip.MustParsePrefix("198.18.0.0/15")
)

func TestITRTrust(t *testing.T) {
	t.Parallel()
	requireTUN(t)
	xAddr := ap(itrCase, 1, ControlPort)
	mr := listenPeer(t, ap(itrCase, 9, ControlPort))
	xtr := startLispd(t, "xtr", func(sock string) string {
		return fmt.Sprintf(`# lab/hostile: an ITR whose Map-Resolver lies
[daemon]
roles = ["itr"]
api-socket = %q
log-level = "info"

[control]
listen = [%q]

[dataplane]
rlocs = [%q]
data-listen = [%q]
tun-name = %q
tun-addresses = ["198.19.5.1/32"]
tun-routes = ["198.18.5.0/24"]

[itr]
map-resolvers = [%q]
eid-space = [%q]
miss-policy = "drop"

[failover]
enabled = false
`, sock, xAddr.String(), itrRLOC.String(), ap(itrCase, 1, DataPort).String(), itrTUN, mr.Addr().String(), itrSpace.String())
	})
	host, err := NewDeviceSender(itrTUN)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()

	// ask has a host send a packet to eid through the TUN device and
	// returns the nonce of the Map-Request the ITR sends for it.
	ask := func(t *testing.T, eid netip.Addr) uint64 {
		t.Helper()
		var nonce uint64
		waitFor(t, 5*time.Second, "a Map-Request for "+eid.String(), func() (bool, string) {
			if err := host.Send([]byte("hostile"), netip.AddrPortFrom(eid, 9)); err != nil {
				return false, err.Error()
			}
			b, _, err := mr.Recv(500*time.Millisecond, func(b []byte, _ netip.AddrPort) bool {
				r := ParseMapRequest(b)
				if r == nil || len(r.Records) != 1 {
					return false
				}
				_, p, ok := r.Records[0].Prefix()
				return ok && p.Contains(eid)
			})
			if err != nil {
				return false, err.Error()
			}
			nonce = ParseMapRequest(b).Nonce
			return true, ""
		})
		return nonce
	}
	reply := func(t *testing.T, nonce uint64, recs ...wire.EIDRecord) {
		t.Helper()
		b, err := MapReply(nonce, recs...)
		if err != nil {
			t.Fatal(err)
		}
		send(t, mr, b, xAddr)
	}
	rec := func(prefix string, locs ...string) wire.EIDRecord {
		var as []netip.Addr
		for _, l := range locs {
			as = append(as, netip.MustParseAddr(l))
		}
		r := Record(netip.MustParsePrefix(prefix), as...)
		for i := range r.Locators {
			r.Locators[i].Local = false
		}
		return r
	}

	host5 := byte(10)
	nextEID := func() netip.Addr { host5++; return netip.AddrFrom4([4]byte{198, 18, 5, host5}) }

	for _, tc := range []struct {
		name    string
		record  func(eid netip.Addr) wire.EIDRecord
		counter string
	}{
		{"default-route", func(netip.Addr) wire.EIDRecord { return rec("0.0.0.0/0", remoteLoc) }, "itr_records_refused_default_route"},
		{"outside-eid-space", func(netip.Addr) wire.EIDRecord { return rec("198.0.0.0/8", remoteLoc) }, "itr_records_refused_eid_space"},
		{"loopback-locator", func(netip.Addr) wire.EIDRecord { return rec("198.18.5.0/24", "127.0.0.1") }, "itr_locators_refused"},
		{"own-rloc", func(netip.Addr) wire.EIDRecord { return rec("198.18.5.0/24", itrRLOC.String()) }, "itr_locators_refused"},
		{"link-local-locator", func(netip.Addr) wire.EIDRecord { return rec("198.18.5.0/24", "169.254.1.1") }, "itr_locators_refused"},
		{"broadcast-locator", func(netip.Addr) wire.EIDRecord { return rec("198.18.5.0/24", "255.255.255.255") }, "itr_locators_refused"},
		{"this-network-locator", func(netip.Addr) wire.EIDRecord { return rec("198.18.5.0/24", "0.1.2.3") }, "itr_locators_refused"},
		{"multicast-locator", func(netip.Addr) wire.EIDRecord { return rec("198.18.5.0/24", "224.0.0.5") }, "itr_locators_refused"},
		{"another-eid", func(netip.Addr) wire.EIDRecord { return rec("198.18.99.0/24", remoteLoc) }, "itr_map_reply_records_ignored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eid := nextEID()
			nonce := ask(t, eid)
			before := counters(t, xtr)
			r := tc.record(eid)
			reply(t, nonce, r)
			waitCounter(t, xtr, tc.counter, before[tc.counter]+1, 3*time.Second)
			if c := counters(t, xtr); c["itr_map_replies_accepted"] != before["itr_map_replies_accepted"]+1 {
				t.Errorf("itr_map_replies_accepted moved by %d, want 1 (the reply answered the request)", c["itr_map_replies_accepted"]-before["itr_map_replies_accepted"])
			}
			_, p, _ := r.Prefix()
			if e := cacheEntry(t, xtr, p); e != "" {
				t.Errorf("the refused mapping is in the map-cache: %s", e)
			}
		})
	}

	t.Run("wrong-nonce", func(t *testing.T) {
		eid := nextEID()
		nonce := ask(t, eid)
		before := counters(t, xtr)
		reply(t, nonce^0x5a5a, rec("198.18.5.0/24", remoteLoc))
		waitCounter(t, xtr, "itr_map_replies_unsolicited", before["itr_map_replies_unsolicited"]+1, 3*time.Second)
		if e := cacheEntry(t, xtr, netip.MustParsePrefix("198.18.5.0/24")); e != "" {
			t.Errorf("a Map-Reply with a wrong nonce was installed: %s", e)
		}
	})

	t.Run("mixed-locators", func(t *testing.T) {
		// The bad locator goes, the good one is installed.
		eid := nextEID()
		nonce := ask(t, eid)
		before := counters(t, xtr)
		prefix := netip.PrefixFrom(eid, 32)
		reply(t, nonce, rec(prefix.String(), "127.0.0.1", remoteLoc))
		waitCounter(t, xtr, "itr_locators_refused", before["itr_locators_refused"]+1, 3*time.Second)
		waitFor(t, 3*time.Second, "the mapping installed with its good locator only", func() (bool, string) {
			e := cacheEntry(t, xtr, prefix)
			return e == prefix.String()+" ["+remoteLoc+"]", e
		})
	})

	t.Run("legitimate", func(t *testing.T) {
		eid := nextEID()
		nonce := ask(t, eid)
		prefix := netip.PrefixFrom(eid, 32)
		reply(t, nonce, rec(prefix.String(), remoteLoc))
		waitFor(t, 3*time.Second, "the legitimate mapping installed", func() (bool, string) {
			e := cacheEntry(t, xtr, prefix)
			return e == prefix.String()+" ["+remoteLoc+"]", e
		})
	})

	// Nothing refused made it into the map-cache.
	entries, err := xtr.API().MapCache(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		for _, r := range e.RLOCs {
			if a := r.Address; a.IsLoopback() || a == itrRLOC || a.IsLinkLocalUnicast() || a.IsMulticast() || !a.IsGlobalUnicast() {
				t.Errorf("map-cache entry %s has the locator %s", e.Prefix, a)
			}
		}
		if e.Prefix.Bits() == 0 || !itrSpace.Overlaps(e.Prefix) {
			t.Errorf("map-cache entry %s is outside the EID space", e.Prefix)
		}
	}
}

// cacheEntry returns the xTR's map-cache entry for exactly p as
// "prefix [rlocs]", or "".
func cacheEntry(t *testing.T, l *Lispd, p netip.Prefix) string {
	t.Helper()
	entries, err := l.API().MapCache(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Prefix != p {
			continue
		}
		var rl []string
		for _, r := range e.RLOCs {
			rl = append(rl, r.Address.String())
		}
		slices.Sort(rl)
		return fmt.Sprintf("%s %v", e.Prefix, rl)
	}
	return ""
}
