package config

import (
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxSocketPath is the longest unix socket path Linux accepts: sun_path is
// 108 bytes including the terminating NUL.
const maxSocketPath = 107

// maxMapNotifyRetries bounds map-server.map-notify-retries.
const maxMapNotifyRetries = 100

// validate checks what the types alone cannot: value ranges, references
// between sections, duplicates and overlaps. It runs only when decoding
// succeeded, so every field holds a parsed value.
func validate(c *Config, d *decoder) {
	validateDaemon(c, d)
	validateControl(c, d)
	// With no roles (already reported) the checks that depend on them
	// would only add noise.
	if len(c.Daemon.Roles) > 0 {
		requireSection(c, d, RoleMapServer, "map-server", c.MapServer != nil)
		requireSection(c, d, RoleMapResolver, "map-resolver", c.MapResolver != nil)
	}
	if c.MapServer != nil {
		validateMapServer(c.MapServer, d)
	}
	if c.MapResolver != nil {
		validateMapResolver(c, d)
	}
	validateXTR(c, d)
	validateSync(c, d)
	validateFailover(c, d)
}

func validateDaemon(c *Config, d *decoder) {
	dm := &c.Daemon
	if len(dm.Roles) == 0 {
		d.errorf("daemon.roles", "daemon.roles", "[]", "must list at least one of itr, etr, ms, mr")
	}
	for i, r := range dm.Roles {
		if slices.Index(dm.Roles, r) < i {
			d.errorf("daemon.roles", indexPath("daemon.roles", i), strconv.Quote(string(r)), "duplicate role")
		}
	}
	switch s := dm.APISocket; {
	case s == "":
		d.errorf("daemon.api-socket", "daemon.api-socket", `""`, "must not be empty")
	case !filepath.IsAbs(s):
		d.errorf("daemon.api-socket", "daemon.api-socket", strconv.Quote(s), "must be an absolute path")
	case len(s) > maxSocketPath:
		d.errorf("daemon.api-socket", "daemon.api-socket", strconv.Quote(s),
			"path is %d bytes long; unix socket paths are limited to %d", len(s), maxSocketPath)
	}
}

func validateControl(c *Config, d *decoder) {
	l := c.Control.Listen
	if len(l) == 0 {
		d.errorf("control.listen", "control.listen", "[]", "must list at least one address")
	}
	for i, a := range l {
		if slices.Index(l, a) < i {
			d.errorf("control.listen", indexPath("control.listen", i), strconv.Quote(a.String()), "duplicate address")
		}
	}
}

// requireSection checks that the section of a role is present exactly when
// the role is.
func requireSection(c *Config, d *decoder, r Role, section string, present bool) {
	switch has := c.HasRole(r); {
	case has && !present:
		d.errorf(section, "daemon.roles", "",
			"section is required because daemon.roles has %q; add a [%s] section", string(r), section)
	case !has && present:
		d.errorf(section, section, "",
			"section is set but daemon.roles has no %q; add the role or remove the section", string(r))
	}
}

func validateMapServer(ms *MapServer, d *decoder) {
	positive(d, "map-server.registration-timeout", ms.RegistrationTimeout)
	positive(d, "map-server.map-notify-retransmit", ms.MapNotifyRetransmit)
	if n := ms.MapNotifyRetries; n < 0 || n > maxMapNotifyRetries {
		d.errorf("map-server.map-notify-retries", "map-server.map-notify-retries", strconv.Itoa(n),
			"out of range 0..%d", maxMapNotifyRetries)
	}
	validatePubSub(&ms.PubSub, d)
	intRange(d, "map-server.max-registrations", ms.MaxRegistrations, 1, math.MaxInt32)
	if f := ms.StateFile; f != "" && !filepath.IsAbs(f) {
		d.errorf("map-server.state-file", "map-server.state-file", strconv.Quote(f), "must be an absolute path")
	}
	names := map[string]int{}
	type owned struct {
		p    EIDPrefix
		site int
		elem int
	}
	var all []owned
	for i, s := range ms.Sites {
		path := indexPath("map-server.site", i)
		if s.Name == "" {
			d.errorf(path+".name", path+".name", `""`, "must not be empty")
		} else if j, dup := names[s.Name]; dup {
			d.errorf(path+".name", path+".name", strconv.Quote(s.Name),
				"duplicate site name (first used by map-server.site[%d]%s)", j, onLine(d, indexPath("map-server.site", j)+".name"))
		} else {
			names[s.Name] = i
		}
		if s.AuthenticationKey == "" {
			d.errorf(path+".authentication-key", path+".authentication-key", `""`, "must not be empty")
		}
		if !slices.Contains(RegistrationPolicies(), s.RegistrationPolicy) {
			d.errorf(path+".registration-policy", path+".registration-policy", strconv.Quote(s.RegistrationPolicy),
				"unknown policy: want %s", strings.Join(RegistrationPolicies(), ", "))
		}
		intRange(d, path+".max-prefixes", s.MaxPrefixes, 1, math.MaxInt32)
		intRange(d, path+".max-registrations", s.MaxRegistrations, 1, math.MaxInt32)
		key := path + ".eid-prefixes"
		if len(s.EIDPrefixes) == 0 {
			d.errorf(key, key, "[]", "must list at least one EID prefix")
		}
		for j, p := range s.EIDPrefixes {
			if !p.IsValid() {
				continue // already reported by the decoder
			}
			if k := slices.Index(s.EIDPrefixes, p); k < j {
				d.errorf(key, indexPath(key, j), strconv.Quote(p.String()), "duplicate EID prefix")
				continue
			}
			all = append(all, owned{p: p, site: i, elem: j})
		}
	}
	// Sorted, a prefix comes before the prefixes it contains, so an overlap
	// between sites shows as a prefix contained in an open enclosing one.
	slices.SortStableFunc(all, func(a, b owned) int { return a.p.Compare(b.p) })
	var open []owned
	for _, cur := range all {
		for len(open) > 0 && !open[len(open)-1].p.Overlaps(cur.p) {
			open = open[:len(open)-1]
		}
		if len(open) > 0 {
			if o := open[len(open)-1]; o.site != cur.site {
				key := indexPath("map-server.site", cur.site) + ".eid-prefixes"
				d.errorf(key, indexPath(key, cur.elem), strconv.Quote(cur.p.String()),
					"overlaps %s of site %q (map-server.site[%d]%s); sites must not share EID space",
					o.p, ms.Sites[o.site].Name, o.site, onLine(d, indexPath(indexPath("map-server.site", o.site)+".eid-prefixes", o.elem)))
			}
		}
		open = append(open, cur)
	}
}

// RegistrationPolicies lists the values of map-server.site.registration-policy.
func RegistrationPolicies() []string { return []string{"auto", "merge", "replace"} }

// validatePubSub checks the [map-server.pubsub] table.
func validatePubSub(ps *PubSub, d *decoder) {
	const t = "map-server.pubsub"
	if ps.Enabled && ps.AuthenticationKey == "" && !ps.Unauthenticated {
		d.errorf(t+".authentication-key", t+".enabled", "",
			"must be set when %s.enabled is true: subscribers' Map-Notifies are signed with it (or set %s.unauthenticated = true for xTRs that neither sign nor check, such as lispers.net's)", t, t)
	}
	intRange(d, t+".max-subscriptions", ps.MaxSubscriptions, 1, math.MaxInt32)
	intRange(d, t+".max-per-itr", ps.MaxPerITR, 1, math.MaxInt32)
	intRange(d, t+".max-pending", ps.MaxPending, 1, math.MaxInt32)
	ttlMinutes(d, t+".negative-ttl", ps.NegativeTTL)
}

func validateMapResolver(c *Config, d *decoder) {
	mr := c.MapResolver
	refs := mr.MapServers
	if len(refs) == 0 {
		d.errorf("map-resolver.map-servers", "map-resolver.map-servers", "[]", "must list at least one Map-Server")
	}
	for i, r := range refs {
		elem := indexPath("map-resolver.map-servers", i)
		if slices.Index(refs, r) < i {
			d.errorf("map-resolver.map-servers", elem, strconv.Quote(r.String()), "duplicate Map-Server")
		}
		if r.Local && len(c.Daemon.Roles) > 0 && !c.HasRole(RoleMapServer) {
			d.errorf("map-resolver.map-servers", elem, `"local"`,
				`"local" needs the ms role in daemon.roles; list remote Map-Servers as ip[:port]`)
		}
	}
	ttlMinutes(d, "map-resolver.negative-ttl", mr.NegativeTTL)
	ttlMinutes(d, "map-resolver.unregistered-ttl", mr.UnregisteredTTL)
}

func positive(d *decoder, key string, v time.Duration) {
	if v <= 0 {
		d.errorf(key, key, strconv.Quote(v.String()), "must be greater than zero")
	}
}

// ttlMinutes checks a Map-Reply TTL: the Record TTL field is an unsigned
// 32-bit count of minutes.
func ttlMinutes(d *decoder, key string, v time.Duration) {
	switch {
	case v < time.Minute:
		d.errorf(key, key, strconv.Quote(v.String()), "must be at least 1m (Record TTLs count minutes)")
	case v%time.Minute != 0:
		d.errorf(key, key, strconv.Quote(v.String()), "must be a whole number of minutes (Record TTLs count minutes)")
	case v/time.Minute > math.MaxUint32:
		d.errorf(key, key, strconv.Quote(v.String()), "too long for the 32-bit Record TTL field")
	}
}

// onLine returns " on line N" for path, or "" when its line is unknown.
func onLine(d *decoder, path string) string {
	if l := d.lines.lineOf(path); l > 0 {
		return " on line " + strconv.Itoa(l)
	}
	return ""
}
