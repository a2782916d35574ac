package twosite

import (
	"fmt"
	"net/netip"
	"strings"
)

// Site names one of the two LISP sites.
type Site int

// The two sites.
const (
	SiteA Site = iota
	SiteB
)

// String returns "A" or "B".
func (s Site) String() string {
	switch s {
	case SiteA:
		return "A"
	case SiteB:
		return "B"
	}
	return fmt.Sprintf("Site(%d)", int(s))
}

// Other returns the other site.
func (s Site) Other() Site {
	if s == SiteA {
		return SiteB
	}
	return SiteA
}

// valid reports whether s is SiteA or SiteB.
func (s Site) valid() bool { return s == SiteA || s == SiteB }

// Node names of the topology, as the netns lab names its namespaces.
const (
	NodeHostA = "hostA"
	NodeXTRA  = "xtrA"
	NodeMS    = "ms"
	NodeXTRB  = "xtrB"
	NodeHostB = "hostB"
	NodeCore  = "core"
)

// Ports of the topology.
const (
	// ControlPort is the LISP control port every daemon listens on (the
	// Map-Server forwards Map-Requests to ETRs on it).
	ControlPort = 4342
	// DataPort is the LISP data port of the xTRs.
	DataPort = 4341
)

// Keys and algorithms of the two sites' registrations.
const (
	keySiteA = "twosite-a-key"
	keySiteB = "twosite-b-key"
	algSiteA = "hmac-sha-256"
	algSiteB = "hmac-sha-1"
)

// DefaultNetnsRLOCNet is the RLOC network of the netns topology (RFC 2544
// benchmarking space, only ever inside the lab's namespaces).
var DefaultNetnsRLOCNet = netip.MustParsePrefix("198.19.0.0/24")

// Plan is the addressing of the topology.
type Plan struct {
	// SitePrefix is each site's EID-prefix: 10.1.0.0/24 and 10.2.0.0/24.
	SitePrefix [2]netip.Prefix
	// Host is each site's host: .10 of its prefix.
	Host [2]netip.Addr
	// Gateway is each xTR's address on its host link (netns only): .1 of
	// the site's prefix.
	Gateway [2]netip.Addr
	// RLOCNet is the RLOC network (a /24).
	RLOCNet netip.Prefix
	// RLOC is each xTR's locator: .1 and .2 of RLOCNet.
	RLOC [2]netip.Addr
	// MSMR is the Map-Server/Map-Resolver's address: .100 of RLOCNet.
	MSMR netip.Addr
}

// NewPlan returns the plan with RLOC network rlocNet, which must be an IPv4
// /24 (its host part is ignored).
func NewPlan(rlocNet netip.Prefix) (Plan, error) {
	if !rlocNet.IsValid() || !rlocNet.Addr().Is4() || rlocNet.Bits() != 24 {
		return Plan{}, fmt.Errorf("%w: RLOC network %v is not an IPv4 /24", ErrInvalid, rlocNet)
	}
	rlocNet = rlocNet.Masked()
	b := rlocNet.Addr().As4()
	at := func(last byte) netip.Addr { return netip.AddrFrom4([4]byte{b[0], b[1], b[2], last}) }
	return Plan{
		SitePrefix: [2]netip.Prefix{netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("10.2.0.0/24")},
		Host:       [2]netip.Addr{netip.MustParseAddr("10.1.0.10"), netip.MustParseAddr("10.2.0.10")},
		Gateway:    [2]netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1")},
		RLOCNet:    rlocNet,
		RLOC:       [2]netip.Addr{at(1), at(2)},
		MSMR:       at(100),
	}, nil
}

// XTRNode is the node name of a site's xTR.
func XTRNode(s Site) string {
	if s == SiteA {
		return NodeXTRA
	}
	return NodeXTRB
}

// HostNode is the node name of a site's host.
func HostNode(s Site) string {
	if s == SiteA {
		return NodeHostA
	}
	return NodeHostB
}

// siteName is the Map-Server's name of a site.
func siteName(s Site) string { return "site-" + strings.ToLower(s.String()) }

func siteKey(s Site) string {
	if s == SiteA {
		return keySiteA
	}
	return keySiteB
}

func siteAlg(s Site) string {
	if s == SiteA {
		return algSiteA
	}
	return algSiteB
}

// MSMRConfig returns the lispd.toml of the Map-Server/Map-Resolver: both
// sites, no proxy replies (the Map-Server forwards Map-Requests to the
// ETRs, which answer the ITRs themselves). logLevel "" means "info".
func (p Plan) MSMRConfig(apiSocket, logLevel string) string {
	if logLevel == "" {
		logLevel = "info"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Map-Server/Map-Resolver of the two-site lab topology (lab/twosite)
[daemon]
roles = ["ms", "mr"]
api-socket = %q
log-level = %q

[control]
listen = [%q]

[map-server]
`, apiSocket, logLevel, netip.AddrPortFrom(p.MSMR, ControlPort).String())
	for _, s := range []Site{SiteA, SiteB} {
		fmt.Fprintf(&b, `
[[map-server.site]]
name = %q
authentication-key = %q
algorithm = %q
eid-prefixes = [%q]
proxy-reply = false
`, siteName(s), siteKey(s), siteAlg(s), p.SitePrefix[s].String())
	}
	b.WriteString(`
[map-resolver]
map-servers = ["local"]
`)
	return b.String()
}

// XTROptions are the parts of an xTR's lispd.toml that differ between runs.
type XTROptions struct {
	// APISocket is the daemon's API socket.
	APISocket string
	// LogLevel is the daemon's log level; "" means "info".
	LogLevel string
	// MissPolicy is the ITR's miss policy, "drop" or "queue"; "" means
	// "drop".
	MissPolicy string
	// TUN makes the daemon create the TUN device "lisp0" with a route to
	// the other site's prefix (the netns topology). Without it the daemon
	// is given an in-memory device (daemon.Options.DataDevice).
	TUN bool
}

// TUNName is the name of the xTRs' TUN device in the netns topology.
const TUNName = "lisp0"

// XTRConfig returns the lispd.toml of site s's xTR: ITR and ETR, control
// and data sockets on its RLOC, registering the site's prefix with the
// Map-Server.
func (p Plan) XTRConfig(s Site, o XTROptions) (string, error) {
	if !s.valid() {
		return "", fmt.Errorf("%w: site %v", ErrInvalid, s)
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	switch o.MissPolicy {
	case "":
		o.MissPolicy = "drop"
	case "drop", "queue":
	default:
		return "", fmt.Errorf("%w: miss policy %q (want drop or queue)", ErrInvalid, o.MissPolicy)
	}
	rloc := p.RLOC[s]
	var b strings.Builder
	fmt.Fprintf(&b, `# xTR of site %v of the two-site lab topology (lab/twosite)
[daemon]
roles = ["itr", "etr"]
api-socket = %q
log-level = %q

[control]
listen = [%q]

[dataplane]
rlocs = [%q]
data-listen = [%q]
`, s, o.APISocket, o.LogLevel, netip.AddrPortFrom(rloc, ControlPort).String(), rloc.String(),
		netip.AddrPortFrom(rloc, DataPort).String())
	if o.TUN {
		fmt.Fprintf(&b, "tun-name = %q\ntun-routes = [%q]\n", TUNName, p.SitePrefix[s.Other()].String())
	}
	fmt.Fprintf(&b, `
[itr]
map-resolvers = [%q]
miss-policy = %q
map-request-timeout = "500ms"

[etr]
site-id = %d

[[etr.map-server]]
address = %q
authentication-key = %q
algorithm = %q

[[etr.eid]]
prefix = %q
rlocs = [{address = %q, priority = 1, weight = 100}]
`, p.MSMR.String(), o.MissPolicy, int(s)+1, p.MSMR.String(), siteKey(s), siteAlg(s),
		p.SitePrefix[s].String(), rloc.String())
	return b.String(), nil
}
