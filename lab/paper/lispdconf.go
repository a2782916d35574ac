package paper

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/lispd/lispd/lab/topo"
)

// siteKey is the Map-Register key of a LISP site of the lab.
func siteKey(site string) string { return "lisplab-" + site + "-key" }

// msmrConfig is the lispd.toml of the Map-Server/Map-Resolver whose API
// socket is apiSocket: one site for the paper's site and one per remote
// xTR; with pubsub, it takes subscriptions (RFC 9437).
func msmrConfig(t *topo.Topology, apiSocket string, pubsub bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Map-Server/Map-Resolver of lisplab paper
[daemon]
roles = ["ms", "mr"]
api-socket = %q
log-level = "info"

[control]
listen = [%q]

[map-server]
registration-timeout = "3m"
`, apiSocket, netip.AddrPortFrom(t.MSMR, 4342).String())
	if pubsub {
		b.WriteString(msPubSubConfig())
	}
	site := func(name string, prefixes []netip.Prefix) {
		var ps []string
		for _, p := range prefixes {
			ps = append(ps, fmt.Sprintf("%q", p.String()))
		}
		fmt.Fprintf(&b, `
[[map-server.site]]
name = %q
authentication-key = %q
algorithm = "hmac-sha-256"
eid-prefixes = [%s]
proxy-reply = true
`, name, siteKey(name), strings.Join(ps, ", "))
	}
	site(topo.SiteA, []netip.Prefix{t.SitePrefix})
	for _, rx := range t.Remotes {
		site(strings.ToLower(rx.Name), rx.Prefixes)
	}
	b.WriteString(`
[map-resolver]
map-servers = ["local"]
`)
	return b.String()
}

// locator is one RLOC of a mapping an ETR registers.
type locator struct {
	Addr             netip.Addr
	Priority, Weight uint8
}

// eidSpec is one EID prefix of an ETR's database.
type eidSpec struct {
	Prefix   netip.Prefix
	Locators []locator
}

// xtrSpec is what an xTR's lispd.toml says: its RLOC, its database and
// Map-Server, its Map-Resolver, and its synchronization set.
type xtrSpec struct {
	Name string
	RLOC netip.Addr
	// Site names the Map-Server site it registers into (for the key).
	Site string
	MSMR netip.Addr
	EIDs []eidSpec
	TTL  time.Duration
	// TUN and TUNRoutes are the TUN interface and the remote EID space
	// routed into it (netns mode; the embedded lab gives the daemon an
	// in-memory device instead).
	TUN       string
	TUNRoutes []netip.Prefix
	// Sync is the synchronization set; nil for none.
	Sync *syncSpec
	// Healing is [failover] enabled; TrackFile its vrrp-track-file (site
	// xTRs with healing on).
	Healing   bool
	TrackFile string
	// Watch are the EID-side interfaces of failover.watch-interfaces
	// (netns).
	Watch []string
	// PubSub: the ITR subscribes to the mappings it asks for and ignores
	// Locator-Status-Bits, and the failover sends no SMRs (Options.PubSub).
	PubSub bool
	// ProxyReply sets etr.proxy-reply: the Map-Server answers for the
	// ETR (the site's xTRs in a pub/sub run, see siteProxyReply).
	ProxyReply bool
}

// remoteSpec is the spec of a remote xTR: its destinations' prefixes,
// each with its single RLOC.
func remoteSpec(t *topo.Topology, rx topo.Remote) xtrSpec {
	s := xtrSpec{Name: rx.Name, RLOC: rx.RLOC, Site: strings.ToLower(rx.Name), MSMR: t.MSMR, TTL: t.MapTTL, TUNRoutes: []netip.Prefix{t.SitePrefix}}
	for _, p := range rx.Prefixes {
		s.EIDs = append(s.EIDs, eidSpec{Prefix: p, Locators: []locator{{Addr: rx.RLOC, Priority: 1, Weight: 100}}})
	}
	return s
}

// siteSpec is the spec of one of the site's xTRs: the site's prefix with
// both RLOCs at equal priority and weight (50:50 ingress), and the sync set
// of variant v.
func siteSpec(t *topo.Topology, x topo.XTR, v Variant, keys *syncKeySet) xtrSpec {
	s := xtrSpec{Name: x.Name, RLOC: x.RLOC, Site: topo.SiteA, MSMR: t.MSMR, TTL: t.MapTTL}
	var locs []locator
	for _, o := range t.XTRs {
		locs = append(locs, locator{Addr: o.RLOC, Priority: 1, Weight: o.Weight})
	}
	s.EIDs = []eidSpec{{Prefix: t.SitePrefix, Locators: locs}}
	for _, rx := range t.Remotes {
		s.TUNRoutes = append(s.TUNRoutes, rx.Prefixes...)
	}
	s.Sync = syncFor(t, x, v, keys)
	return s
}

// xtrConfig is the lispd.toml of an xTR whose API socket is apiSocket.
func xtrConfig(s xtrSpec, apiSocket string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# %s of lisplab paper
[daemon]
roles = ["itr", "etr"]
api-socket = %q
log-level = "info"

[control]
listen = [%q]

[dataplane]
rlocs = [%q]
data-listen = [%q]
`, s.Name, apiSocket, netip.AddrPortFrom(s.RLOC, 4342).String(), s.RLOC.String(), netip.AddrPortFrom(s.RLOC, 4341).String())
	if s.TUN != "" {
		var routes []string
		for _, p := range s.TUNRoutes {
			routes = append(routes, fmt.Sprintf("%q", p.String()))
		}
		fmt.Fprintf(&b, "tun-name = %q\ntun-routes = [%s]\n", s.TUN, strings.Join(routes, ", "))
	}
	fmt.Fprintf(&b, `
[itr]
map-resolvers = [%q]
miss-policy = "drop"
%s
[etr]
register-interval = "1m"
record-ttl = %q
%s
[[etr.map-server]]
address = %q
authentication-key = %q
algorithm = "hmac-sha-256"
`, s.MSMR.String(), itrPubSubConfig(s.PubSub), fmt.Sprintf("%dm", int(s.TTL/time.Minute)), proxyReplyConfig(s.ProxyReply), s.MSMR.String(), siteKey(s.Site))
	for _, e := range s.EIDs {
		var ls []string
		for _, l := range e.Locators {
			ls = append(ls, fmt.Sprintf("{address = %q, priority = %d, weight = %d}", l.Addr.String(), l.Priority, l.Weight))
		}
		fmt.Fprintf(&b, "\n[[etr.eid]]\nprefix = %q\nrlocs = [%s]\n", e.Prefix.String(), strings.Join(ls, ", "))
	}
	if s.Sync != nil {
		b.WriteString(s.Sync.config())
	}
	b.WriteString(failoverConfig(s.Healing, s.TrackFile, s.Watch, s.PubSub))
	return b.String()
}
