package mapserver

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/lispd/lispd/wire"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultRegistrationTimeout is how long a registration lives without a
	// refresh. RFC 9301 section 8.2: ETRs send a Map-Register every 60
	// seconds and a Map-Server SHOULD time out a registration after three
	// missed ones (three minutes).
	DefaultRegistrationTimeout = 3 * time.Minute
	// DefaultNotifyInterval is the retransmission interval of an
	// unsolicited Map-Notify (RFC 9301 section 5.7: 3 seconds).
	DefaultNotifyInterval = 3 * time.Second
	// DefaultNotifyRetries is how many times an unacknowledged unsolicited
	// Map-Notify is retransmitted before giving up (RFC 9301 section 5.7:
	// 3 retransmissions at the 3-second interval).
	DefaultNotifyRetries = 3
	// ControlPort is the LISP control-plane UDP port (RFC 9301 section 5.1).
	ControlPort = 4342
	// DefaultMaxRegistrations bounds the registrations (EID-prefix and xTR
	// pairs) of the whole Map-Server: the memory bound. A registration
	// costs about 1.2 kB of heap (BenchmarkRegisterPrefixes: a /28 with one
	// RLOC, its published view included), so the default holds about
	// 1.2 GB.
	DefaultMaxRegistrations = 1_000_000
	// DefaultSiteMaxPrefixes bounds the distinct EID-prefixes one site
	// registers.
	DefaultSiteMaxPrefixes = 10_000
	// DefaultSiteMaxRegistrations bounds the registrations of one site
	// (its prefixes times the xTRs registering each).
	DefaultSiteMaxRegistrations = 20_000
)

// Negative Map-Reply parameters (record TTLs are in minutes on the wire).
const (
	// NotConfiguredTTL is the TTL of the negative Map-Reply for an EID
	// that no configured EID-prefix holds: RFC 9301 section 8.3 ("If there
	// is no match, the Map-Server returns a Negative Map-Reply with action
	// code "Natively-Forward" and a 15-minute TTL") and section 8.4 (a
	// Map-Resolver that knows the EID is not in the mapping database
	// returns "Natively-Forward" with a 15-minute TTL).
	NotConfiguredTTL = 15 * time.Minute
	// NotRegisteredTTL is the TTL of the negative Map-Reply for an EID in a
	// configured EID-prefix that no ETR has registered: RFC 9301 section
	// 8.3 ("If none are found, then the Map-Server returns a Negative
	// Map-Reply with action code "Natively-Forward" and a 1-minute TTL").
	NotRegisteredTTL = 1 * time.Minute
	// NegativeAction is the action of both negative Map-Replies (RFC 9301
	// section 8.3).
	NegativeAction = wire.NativelyForward
)

// Config configures a Server. The daemon maps its configuration file onto it.
type Config struct {
	// MapServer enables the Map-Server role: Map-Register, Map-Notify-Ack
	// and Map-Requests for the configured sites.
	MapServer bool
	// MapResolver enables the Map-Resolver role: Encapsulated Map-Requests
	// from ITRs, resolved through the local Map-Server or a remote one.
	MapResolver bool
	// Sites are the LISP sites whose ETRs may register (Map-Server role).
	Sites []Site
	// Resolver configures the Map-Resolver role.
	Resolver ResolverConfig
	// RegistrationTimeout is how long a registration lives without a
	// refresh; 0 means DefaultRegistrationTimeout.
	RegistrationTimeout time.Duration
	// NotifyInterval is the retransmission interval of unsolicited
	// Map-Notify messages; 0 means DefaultNotifyInterval.
	NotifyInterval time.Duration
	// NotifyRetries is how many times an unacknowledged unsolicited
	// Map-Notify is retransmitted; 0 means DefaultNotifyRetries, a
	// negative value means never retransmit.
	NotifyRetries int
	// TruncatedAuth makes the server send the truncated authentication data
	// of RFC 9301's algorithm names (12 octets for HMAC-SHA-1-96, 16 for
	// HMAC-SHA-256-128) in unsolicited Map-Notify messages instead of the
	// full HMAC output that deployed routers expect. A Map-Notify that
	// acknowledges a Map-Register always uses the length the register used.
	TruncatedAuth bool
	// NotConfiguredTTL is the TTL of negative Map-Replies for EIDs outside
	// every configured EID-prefix; 0 means the RFC 9301 default
	// (NotConfiguredTTL). It is sent in whole minutes, at least one.
	NotConfiguredTTL time.Duration
	// NotRegisteredTTL is the TTL of negative Map-Replies for EIDs inside a
	// configured EID-prefix that no ETR registered; 0 means the default
	// (NotRegisteredTTL).
	NotRegisteredTTL time.Duration
	// PubSub configures publish/subscribe (RFC 9437; Map-Server role).
	PubSub PubSubConfig
	// MaxRegistrations bounds the registrations of all sites together;
	// beyond it new registrations are refused (and counted). 0 means
	// DefaultMaxRegistrations.
	MaxRegistrations int
	// StateFile, when not empty, is where the registration database is
	// kept across restarts (see persist.go): New restores it, Run writes
	// it after changes and when it returns.
	StateFile string
	// Clock is the time source; nil means the system clock.
	Clock Clock
}

// Site is one LISP site: the EID-prefixes its ETRs may register and the key
// that authenticates them (RFC 9301 section 8.2).
type Site struct {
	// Name identifies the site in views, statistics and logs; unique.
	Name string
	// Key is the shared authentication key (the password of RFC 9301
	// section 5.6). It must not be empty.
	Key []byte
	// KeyID is the 8-bit Key ID a Map-Register must carry (RFC 9301 section
	// 5.6; deployed routers send 0).
	KeyID uint8
	// Algorithm is the authentication algorithm a Map-Register must use and
	// that Map-Notify messages use (wire.AlgorithmID; None is refused).
	Algorithm wire.AlgorithmID
	// Prefixes are the EID-prefixes the site's ETRs may register.
	Prefixes []SitePrefix
	// AllowProxyReply lets the Map-Server answer Map-Requests on behalf of
	// the site's ETRs when they set the proxy Map-Reply (P) bit in their
	// Map-Register (RFC 9301 section 8.3). When false the P bit is ignored
	// and requests are always forwarded to an ETR.
	AllowProxyReply bool
	// Policy says what a Map-Register does to the registrations of the
	// same EID-prefix by other xTRs (see RegistrationPolicy); the zero
	// value is PolicyAuto.
	Policy RegistrationPolicy
	// MaxPrefixes bounds the distinct EID-prefixes the site registers; 0
	// means DefaultSiteMaxPrefixes.
	MaxPrefixes int
	// MaxRegistrations bounds the site's registrations (EID-prefix and
	// xTR pairs); 0 means DefaultSiteMaxRegistrations.
	MaxRegistrations int
}

// SitePrefix is an EID-prefix a site may register.
type SitePrefix struct {
	EIDPrefix
	// AcceptMoreSpecifics lets ETRs register prefixes more specific than
	// this one; otherwise only the exact prefix is accepted.
	AcceptMoreSpecifics bool
}

// ResolverConfig configures the Map-Resolver role.
type ResolverConfig struct {
	// MapServers are the remote Map-Servers the Map-Resolver forwards
	// Encapsulated Map-Requests to when the local Map-Server does not serve
	// the EID. The one with the longest matching prefix wins; among those
	// serving everything, the first.
	MapServers []RemoteMapServer
}

// RemoteMapServer is a Map-Server this Map-Resolver can forward to.
type RemoteMapServer struct {
	// Address is the Map-Server's address; port 0 means ControlPort.
	Address netip.AddrPort
	// Prefixes are the EID-prefixes it serves; empty means all of them.
	Prefixes []EIDPrefix
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.RegistrationTimeout == 0 {
		c.RegistrationTimeout = DefaultRegistrationTimeout
	}
	if c.NotifyInterval == 0 {
		c.NotifyInterval = DefaultNotifyInterval
	}
	if c.NotifyRetries == 0 {
		c.NotifyRetries = DefaultNotifyRetries
	} else if c.NotifyRetries < 0 {
		c.NotifyRetries = 0
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.NotConfiguredTTL == 0 {
		c.NotConfiguredTTL = NotConfiguredTTL
	}
	if c.NotRegisteredTTL == 0 {
		c.NotRegisteredTTL = NotRegisteredTTL
	}
	if c.MaxRegistrations == 0 {
		c.MaxRegistrations = DefaultMaxRegistrations
	}
	c.PubSub = c.PubSub.withDefaults()
	return c
}

// validate checks the timing fields of c (after withDefaults).
func (c *Config) validate() error {
	if c.RegistrationTimeout < 0 {
		return &ConfigError{Field: "registration timeout", Reason: "negative"}
	}
	if c.NotifyInterval < 0 {
		return &ConfigError{Field: "notify interval", Reason: "negative"}
	}
	if c.NotConfiguredTTL < 0 || c.NotRegisteredTTL < 0 {
		return &ConfigError{Field: "negative Map-Reply TTL", Reason: "negative"}
	}
	if c.MaxRegistrations < 0 {
		return &ConfigError{Field: "max registrations", Reason: "negative"}
	}
	return c.PubSub.validate()
}

// validateSites checks a site list: unique non-empty names, a key and a
// supported algorithm per site, valid masked prefixes, and no prefix claimed
// twice.
func validateSites(sites []Site) error {
	names := make(map[string]bool, len(sites))
	owner := make(map[EIDPrefix]string)
	for i := range sites {
		s := &sites[i]
		where := fmt.Sprintf("site %q", s.Name)
		if s.Name == "" {
			return &ConfigError{Where: fmt.Sprintf("site #%d", i+1), Field: "name", Reason: "empty"}
		}
		if names[s.Name] {
			return &ConfigError{Where: where, Field: "name", Reason: "duplicate site name"}
		}
		names[s.Name] = true
		if len(s.Key) == 0 {
			return &ConfigError{Where: where, Field: "key", Reason: "empty authentication key"}
		}
		if !supportedAlgorithm(s.Algorithm) {
			return &ConfigError{Where: where, Field: "algorithm",
				Reason: fmt.Sprintf("unsupported authentication algorithm %d", s.Algorithm)}
		}
		if len(s.Prefixes) == 0 {
			return &ConfigError{Where: where, Field: "prefixes", Reason: "no EID-prefix"}
		}
		if !s.Policy.valid() {
			return &ConfigError{Where: where, Field: "registration policy", Reason: fmt.Sprintf("unknown policy %d", s.Policy)}
		}
		if s.MaxPrefixes < 0 || s.MaxRegistrations < 0 {
			return &ConfigError{Where: where, Field: "limits", Reason: "negative"}
		}
		for _, p := range s.Prefixes {
			if !validPrefix(p.Prefix) {
				return &ConfigError{Where: where, Field: "prefixes",
					Reason: fmt.Sprintf("invalid EID-prefix %s (must be masked, not IPv4-mapped)", p)}
			}
			if o, dup := owner[p.EIDPrefix]; dup {
				return &ConfigError{Where: where, Field: "prefixes",
					Reason: fmt.Sprintf("EID-prefix %s already belongs to site %q", p, o)}
			}
			owner[p.EIDPrefix] = s.Name
		}
	}
	return nil
}

// validateResolver checks the remote Map-Server list.
func validateResolver(r ResolverConfig) error {
	for i, ms := range r.MapServers {
		where := fmt.Sprintf("map-server #%d (%s)", i+1, ms.Address)
		a := ms.Address.Addr()
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.Is4In6() {
			return &ConfigError{Where: where, Field: "address", Reason: "not a usable unicast address"}
		}
		for _, p := range ms.Prefixes {
			if !validPrefix(p.Prefix) {
				return &ConfigError{Where: where, Field: "prefixes",
					Reason: fmt.Sprintf("invalid EID-prefix %s (must be masked, not IPv4-mapped)", p)}
			}
		}
	}
	return nil
}

// supportedAlgorithm reports whether a is an authentication algorithm a site
// may use: one wire implements, other than None.
func supportedAlgorithm(a wire.AlgorithmID) bool {
	return a != wire.AlgNone && a.Known()
}
