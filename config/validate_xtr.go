package config

import (
	"math"
	"strconv"
	"time"
)

// Bounds of the xTR keys.
const (
	maxTUNName       = 15 // IFNAMSIZ - 1
	minMTU           = 576
	maxTUNMTU        = 9000
	maxPathMTU       = 65535
	rtTableDefault   = 253 // the reserved kernel routing tables
	rtTableLocal     = 255
	maxLocalRLOCs    = 32 // ITR-RLOCs per Map-Request
	maxQueuePerDest  = 1024
	maxQueueTotal    = 1 << 20
	maxRetries       = 10
	maxProbeCount    = 100
	maxLocators      = 255
	minProbeInterval = time.Second
)

// validateXTR checks the [dataplane], [itr] and [etr] sections.
func validateXTR(c *Config, d *decoder) {
	if len(c.Daemon.Roles) > 0 {
		requireSection(c, d, RoleITR, "itr", c.ITR != nil)
		requireSection(c, d, RoleETR, "etr", c.ETR != nil)
		xtr := c.HasRole(RoleITR) || c.HasRole(RoleETR)
		switch {
		case xtr && c.Dataplane == nil:
			d.errorf("dataplane", "daemon.roles", "",
				"section is required because daemon.roles has \"itr\" or \"etr\"; add a [dataplane] section")
		case !xtr && c.Dataplane != nil:
			d.errorf("dataplane", "dataplane", "",
				"section is set but daemon.roles has neither \"itr\" nor \"etr\"; add a role or remove the section")
		}
	}
	if c.Dataplane != nil {
		validateDataplane(c.Dataplane, d)
	}
	if c.ITR != nil {
		validateITR(c, d)
	}
	if c.ETR != nil {
		validateETR(c, d)
	}
}

func validateDataplane(dp *Dataplane, d *decoder) {
	if len(dp.RLOCs) == 0 {
		d.errorf("dataplane.rlocs", "dataplane.rlocs", "[]", "must list at least one address")
	}
	if len(dp.RLOCs) > maxLocalRLOCs {
		d.errorf("dataplane.rlocs", "dataplane.rlocs", "", "lists %d addresses; a Map-Request carries at most %d", len(dp.RLOCs), maxLocalRLOCs)
	}
	for i, a := range dp.RLOCs {
		elem := indexPath("dataplane.rlocs", i)
		switch {
		case !a.IsValid():
			d.errorf("dataplane.rlocs", elem, `""`, "must be an IP address")
		case a.IsUnspecified() || a.IsMulticast() || a.Zone() != "":
			d.errorf("dataplane.rlocs", elem, strconv.Quote(a.String()), "must be a unicast address without a zone")
		case indexOf(dp.RLOCs, a) < i:
			d.errorf("dataplane.rlocs", elem, strconv.Quote(a.String()), "duplicate address")
		}
	}
	if len(dp.DataListen) == 0 {
		d.errorf("dataplane.data-listen", "dataplane.data-listen", "[]", "must list at least one address")
	}
	fam := map[bool]int{}
	for i, a := range dp.DataListen {
		elem := indexPath("dataplane.data-listen", i)
		v4 := a.Addr().Unmap().Is4()
		if j, dup := fam[v4]; dup {
			d.errorf("dataplane.data-listen", elem, strconv.Quote(a.String()),
				"a second address of the same family as dataplane.data-listen[%d]; use one per family (e.g. the wildcard)", j)
			continue
		}
		fam[v4] = i
	}
	if dp.InstanceID > MaxInstanceID {
		d.errorf("dataplane.instance-id", "dataplane.instance-id", strconv.FormatUint(uint64(dp.InstanceID), 10), "out of range 0..%d", MaxInstanceID)
	}
	switch n := dp.TUNName; {
	case n == "":
		d.errorf("dataplane.tun-name", "dataplane.tun-name", `""`, "must not be empty")
	case len(n) > maxTUNName:
		d.errorf("dataplane.tun-name", "dataplane.tun-name", strconv.Quote(n), "is %d bytes long; interface names are limited to %d", len(n), maxTUNName)
	}
	intRange(d, "dataplane.tun-mtu", dp.TUNMTU, minMTU, maxTUNMTU)
	intRange(d, "dataplane.path-mtu", dp.PathMTU, minMTU, maxPathMTU)
	intRange(d, "dataplane.route-table", dp.RouteTable, 1, math.MaxInt32)
	if dp.RouteTable >= rtTableDefault && dp.RouteTable <= rtTableLocal {
		d.errorf("dataplane.route-table", "dataplane.route-table", strconv.Itoa(dp.RouteTable), "is a reserved table (253 default, 254 main, 255 local)")
	}
	if dp.NativeForward && dp.FwMark == 0 {
		d.errorf("dataplane.fwmark", "dataplane.fwmark", "0", "must not be 0 when dataplane.native-forward is on")
	}
	for i, p := range dp.TUNAddresses {
		if !p.IsValid() {
			d.errorf("dataplane.tun-addresses", indexPath("dataplane.tun-addresses", i), `""`, "must be an address with a prefix length")
		}
	}
	for i, p := range dp.TUNRoutes {
		switch {
		case !p.IsValid():
			d.errorf("dataplane.tun-routes", indexPath("dataplane.tun-routes", i), `""`, "must be a prefix")
		case p.Masked() != p:
			d.errorf("dataplane.tun-routes", indexPath("dataplane.tun-routes", i), strconv.Quote(p.String()),
				"host bits are set (did you mean %s?)", p.Masked())
		}
	}
}

func validateITR(c *Config, d *decoder) {
	it := c.ITR
	if len(it.MapResolvers) == 0 {
		d.errorf("itr.map-resolvers", "itr.map-resolvers", "[]", "must list at least one Map-Resolver")
	}
	for i, a := range it.MapResolvers {
		elem := indexPath("itr.map-resolvers", i)
		switch {
		case a.Addr().IsUnspecified() || a.Addr().IsMulticast():
			d.errorf("itr.map-resolvers", elem, strconv.Quote(a.String()), "must be a unicast address")
		case indexOf(it.MapResolvers, a) < i:
			d.errorf("itr.map-resolvers", elem, strconv.Quote(a.String()), "duplicate Map-Resolver")
		}
	}
	intRange(d, "itr.queue-per-destination", it.QueuePerDestination, 1, maxQueuePerDest)
	intRange(d, "itr.queue-total", it.QueueTotal, 1, maxQueueTotal)
	if it.QueueTotal > 0 && it.QueueTotal < it.QueuePerDestination {
		d.errorf("itr.queue-total", "itr.queue-total", strconv.Itoa(it.QueueTotal), "is smaller than itr.queue-per-destination (%d)", it.QueuePerDestination)
	}
	intRange(d, "itr.map-request-rate", it.MapRequestRate, 1, 1_000_000)
	intRange(d, "itr.map-request-retries", it.MapRequestRetries, 0, maxRetries)
	positive(d, "itr.map-request-timeout", it.MapRequestTimeout)
	if v := it.RLOCProbeInterval; v != 0 && v < minProbeInterval {
		d.errorf("itr.rloc-probe-interval", "itr.rloc-probe-interval", strconv.Quote(v.String()), "must be \"0s\" (off) or at least %s", minProbeInterval)
	}
	intRange(d, "itr.rloc-probe-count", it.RLOCProbeCount, 1, maxProbeCount)
	intRange(d, "itr.map-cache-size", it.MapCacheSize, 1, 1<<30)
	for i, p := range it.EIDSpace {
		if p.IsValid() && indexOf(it.EIDSpace, p) < i {
			d.errorf("itr.eid-space", indexPath("itr.eid-space", i), strconv.Quote(p.String()), "duplicate EID prefix")
		}
	}
	validateSubscribe(c, d)
}

// validateSubscribe checks the pub/sub keys of [itr].
func validateSubscribe(c *Config, d *decoder) {
	it := c.ITR
	if it.Subscribe && it.PubSubKey == "" && !it.PubSubUnauthenticated {
		d.errorf("itr.pubsub-key", "itr.subscribe", "",
			"must be set when itr.subscribe is true: the Map-Server's Map-Notifies are authenticated with it (or set itr.pubsub-unauthenticated = true for a Map-Server that neither signs nor checks, such as lispers.net's)")
	}
	if v := it.SubscribeRefresh; v < time.Second {
		d.errorf("itr.subscribe-refresh", "itr.subscribe-refresh", strconv.Quote(v.String()), "must be at least 1s")
	}
	// One xTR, one xTR-ID: with the etr role the ITR subscribes with the
	// ETR's.
	if c.ETR == nil || !c.HasRole(RoleETR) {
		return
	}
	if it.XTRID != (XTRID{}) && it.XTRID != c.ETR.XTRID {
		etrID := strconv.Quote(c.ETR.XTRID.String())
		if c.ETR.XTRID == (XTRID{}) {
			etrID = "empty: a random one"
		}
		d.errorf("itr.xtr-id", "itr.xtr-id", strconv.Quote(it.XTRID.String()),
			"differs from etr.xtr-id (%s): with the etr role the ITR subscribes with the ETR's xTR-ID (one xTR, one xTR-ID); remove itr.xtr-id", etrID)
	}
	if it.SiteID != 0 && it.SiteID != c.ETR.SiteID {
		d.errorf("itr.site-id", "itr.site-id", strconv.FormatUint(it.SiteID, 10),
			"differs from etr.site-id (%d): with the etr role the ITR sends the ETR's site-ID; remove itr.site-id", c.ETR.SiteID)
	}
}

func validateETR(c *Config, d *decoder) {
	e := c.ETR
	if e.RegisterInterval < time.Second {
		d.errorf("etr.register-interval", "etr.register-interval", strconv.Quote(e.RegisterInterval.String()), "must be at least 1s")
	}
	ttlMinutes(d, "etr.record-ttl", e.RecordTTL)
	switch e.DecapFilter {
	case DecapFilterOff, DecapFilterOn:
	default:
		d.errorf("etr.decap-filter", "etr.decap-filter", strconv.Quote(e.DecapFilter), `must be "off" or "on"`)
	}
	for i, p := range e.DecapFilterAllow {
		elem := indexPath("etr.decap-filter-allow", i)
		switch {
		case !p.IsValid():
			d.errorf("etr.decap-filter-allow", elem, `""`, "must be a prefix")
		case p.Addr().Is4In6():
			d.errorf("etr.decap-filter-allow", elem, strconv.Quote(p.String()), "is an IPv4-mapped prefix; write it in IPv4 form")
		case p.Masked() != p:
			d.errorf("etr.decap-filter-allow", elem, strconv.Quote(p.String()), "host bits are set (did you mean %s?)", p.Masked())
		}
	}
	if len(e.MapServers) == 0 {
		d.errorf("etr.map-server", "etr", "", "must have at least one [[etr.map-server]] table")
	}
	for i, ms := range e.MapServers {
		path := indexPath("etr.map-server", i)
		a := ms.Address
		switch {
		case a.Addr().IsUnspecified() || a.Addr().IsMulticast():
			d.errorf(path+".address", path+".address", strconv.Quote(a.String()), "must be a unicast address")
		case indexOfFunc(e.MapServers, func(o ETRMapServer) bool { return o.Address == a }) < i:
			d.errorf(path+".address", path+".address", strconv.Quote(a.String()), "duplicate Map-Server")
		}
		if ms.AuthenticationKey == "" {
			d.errorf(path+".authentication-key", path+".authentication-key", `""`, "must not be empty")
		}
	}
	if len(e.EIDs) == 0 {
		d.errorf("etr.eid", "etr", "", "must have at least one [[etr.eid]] table")
	}
	for i, eid := range e.EIDs {
		path := indexPath("etr.eid", i)
		if eid.Prefix.IsValid() && indexOfFunc(e.EIDs, func(o ETREID) bool { return o.Prefix == eid.Prefix }) < i {
			d.errorf(path+".prefix", path+".prefix", strconv.Quote(eid.Prefix.String()), "duplicate EID prefix")
		}
		if len(eid.RLOCs) > maxLocators {
			d.errorf(path+".rlocs", path+".rlocs", "", "lists %d locators; a mapping holds at most %d", len(eid.RLOCs), maxLocators)
		}
		usable := len(eid.RLOCs) == 0
		for j, l := range eid.RLOCs {
			lpath := indexPath(path+".rlocs", j)
			switch {
			case !l.Address.IsValid():
				d.errorf(lpath+".address", lpath+".address", `""`, "must be an IP address")
			case l.Address.IsUnspecified() || l.Address.IsMulticast() || l.Address.Zone() != "":
				d.errorf(lpath+".address", lpath+".address", strconv.Quote(l.Address.String()), "must be a unicast address without a zone")
			case indexOfFunc(eid.RLOCs, func(o ETRLocator) bool { return o.Address == l.Address }) < j:
				d.errorf(lpath+".address", lpath+".address", strconv.Quote(l.Address.String()), "duplicate locator")
			}
			if l.Priority != 255 {
				usable = true
			}
		}
		if !usable {
			d.errorf(path+".rlocs", path+".rlocs", "", "every locator has priority 255, so ITRs can use none")
		}
	}
}

// intRange checks that an integer key is within lo..hi.
func intRange(d *decoder, key string, v, lo, hi int) {
	if v < lo || v > hi {
		d.errorf(key, key, strconv.Itoa(v), "out of range %d..%d", lo, hi)
	}
}

// indexOf returns the index of the first element of s equal to v.
func indexOf[T comparable](s []T, v T) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// indexOfFunc returns the index of the first element of s for which f is
// true.
func indexOfFunc[T any](s []T, f func(T) bool) int {
	for i, x := range s {
		if f(x) {
			return i
		}
	}
	return -1
}
