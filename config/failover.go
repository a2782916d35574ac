package config

import (
	"path/filepath"
	"strconv"
	"time"
)

// This file holds the [failover] section: how an xTR stops claiming an
// RLOC it cannot serve, how the synchronization set covers for a dead
// member, and the graceful drain.

// Bounds of the [failover] keys.
const (
	minHeartbeat     = 10 * time.Millisecond
	maxInterfaceName = 15 // IFNAMSIZ - 1
)

// Failover is the [failover] section. It matters for the itr and etr roles;
// its defaults turn the healing on.
type Failover struct {
	Enabled            bool          `toml:"enabled" default:"true" reload:"restart" doc:"Heal failovers in both directions: an xTR whose EID-side interfaces are down (or that is drained) registers its RLOC with priority 255 and the R bit clear, answers RLOC-probes so, sends SMRs to the remote ITRs and clears its Locator-Status-Bit in the packets the site encapsulates; the members of the synchronization set do the same for a member that died or is down. Off: RLOCs are always claimed (the behaviour before lispd 0.2)."`
	WatchInterfaces    []string      `toml:"watch-interfaces" default:"[]" reload:"restart" doc:"EID-side interfaces whose link state this xTR depends on: when all of them are down (or gone), it withdraws its RLOCs; when one is back, it restores them. Empty: the interfaces the kernel routes this xTR's EID-prefixes through (the TUN excluded), looked up at start."`
	HeartbeatInterval  time.Duration `toml:"heartbeat-interval" default:"'200ms'" reload:"restart" doc:"How often the members of the synchronization set send each other a heartbeat (naive, smart) or probe each other (gossip). At least 10ms."`
	DeadAfter          time.Duration `toml:"dead-after" default:"'1s'" reload:"restart" doc:"A member silent for this long is declared dead and the others withdraw its RLOCs (a member whose process ends is noticed at once: its connections close). At least twice heartbeat-interval."`
	DrainQuiet         time.Duration `toml:"drain-quiet" default:"'1s'" reload:"restart" doc:"lispctl drain waits, after withdrawing this xTR's RLOCs, until no LISP packet arrived for this long (the remote ITRs moved to the other RLOCs) before it hands the gateway over."`
	DrainTimeout       time.Duration `toml:"drain-timeout" default:"'30s'" reload:"restart" doc:"Longest time lispctl drain waits for the ingress to move; then it hands the gateway over anyway and says so."`
	SolicitMapRequests bool          `toml:"solicit-map-requests" default:"true" reload:"restart" doc:"When the site's locators change (a withdrawal or a restoration), send SMRs to the remote ITRs that encapsulated to the site in the last 10 minutes, so that they ask for the new mapping at once. Turn it off only where every remote ITR subscribes to the site's mapping (publish/subscribe, itr.subscribe) or honours the Locator-Status-Bits."`
	VRRPTrackFile      string        `toml:"vrrp-track-file" default:"''" reload:"restart" doc:"Absolute path of the file keepalived's track_file watches (deploy/keepalived): lispd writes 0 there at start and on lispctl undrain, and 1 once lispctl drain has moved the ingress away, which makes keepalived hand the gateway over. Empty: no file (hand the gateway over yourself)."`
}

// validateFailover checks the [failover] section.
func validateFailover(c *Config, d *decoder) {
	f := &c.Failover
	if f.HeartbeatInterval < minHeartbeat {
		d.errorf("failover.heartbeat-interval", "failover.heartbeat-interval", strconv.Quote(f.HeartbeatInterval.String()), "must be at least %v", minHeartbeat)
	}
	if f.DeadAfter < 2*f.HeartbeatInterval {
		d.errorf("failover.dead-after", "failover.dead-after", strconv.Quote(f.DeadAfter.String()),
			"must be at least twice failover.heartbeat-interval (%v): one late heartbeat must not kill a member", f.HeartbeatInterval)
	}
	positive(d, "failover.drain-quiet", f.DrainQuiet)
	if f.DrainTimeout <= f.DrainQuiet {
		d.errorf("failover.drain-timeout", "failover.drain-timeout", strconv.Quote(f.DrainTimeout.String()),
			"must be longer than failover.drain-quiet (%v)", f.DrainQuiet)
	}
	if f.VRRPTrackFile != "" && !filepath.IsAbs(f.VRRPTrackFile) {
		d.errorf("failover.vrrp-track-file", "failover.vrrp-track-file", strconv.Quote(f.VRRPTrackFile), "must be an absolute path")
	}
	seen := map[string]bool{}
	for i, n := range f.WatchInterfaces {
		path := indexPath("failover.watch-interfaces", i)
		switch {
		case n == "" || len(n) > maxInterfaceName:
			d.errorf(path, path, strconv.Quote(n), "an interface name is 1..%d bytes", maxInterfaceName)
		case seen[n]:
			d.errorf(path, path, strconv.Quote(n), "listed twice")
		}
		seen[n] = true
	}
}
