// Package config is the lispd daemon's configuration file: its TOML schema,
// the default of every key, validation whose errors name the file, line and
// key, and the difference between two configs that a reload (SIGHUP) applies.
//
// The schema is the Config struct. Every key is a struct field whose tags say
// everything about it, so that the decoder, the defaults, the documentation
// (Keys) and the reload diff (Diff) all come from one place:
//
//	toml:"name"       the kebab-case key
//	doc:"..."         what the key means (shown by Keys, checked by tests)
//	default:"..."     the default, written as a TOML value ('3m', 3, ['local'])
//	required:"true"   the key must be present (no default)
//	reload:"restart"  a change needs a daemon restart; Diff reports it
//	port:"4342"       for addresses: the port used when none is written
//	optional:"true"   for addresses: an empty string means "not set"
//	id:"name"         for arrays of tables: the field that names an element,
//	                  so Diff reports elements added, removed and changed
//
// To add a section, add a struct with tagged fields and a field of that type
// (a pointer when the section is optional) to Config, then its checks to
// validate.go. Sections are decoded, defaulted and documented without more
// code.
package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"time"
)

// Config is a parsed, defaulted and validated config file. Here and in the
// section types, each field's documentation is its doc tag, which Keys
// returns with the key's type and default.
type Config struct {
	// Path is the file the config was read from (or the name given to
	// Parse). It is not a key.
	Path string `toml:"-"`

	Daemon      Daemon       `toml:"daemon" doc:"Process-wide settings: roles, local API, metrics and logging."`
	Control     Control      `toml:"control" doc:"The LISP control-plane sockets (Map-Register, Map-Request, Map-Notify...)."`
	MapServer   *MapServer   `toml:"map-server" doc:"The Map-Server role (RFC 9301 Section 8.2); required when daemon.roles has \"ms\"."`
	MapResolver *MapResolver `toml:"map-resolver" doc:"The Map-Resolver role (RFC 9301 Section 8.4); required when daemon.roles has \"mr\"."`
	Dataplane   *Dataplane   `toml:"dataplane" doc:"The xTR packet path (RFC 9300): RLOCs, UDP 4341 sockets and the EID-side TUN device; required when daemon.roles has \"itr\" or \"etr\"."`
	ITR         *ITR         `toml:"itr" doc:"The Ingress Tunnel Router role: map-cache, Map-Requests, RLOC-probing; required when daemon.roles has \"itr\"."`
	ETR         *ETR         `toml:"etr" doc:"The Egress Tunnel Router role: EID database and its registration with Map-Servers; required when daemon.roles has \"etr\"."`
	Sync        *Sync        `toml:"sync" reload:"restart" doc:"The synchronization set: the peer ITRs whose map-caches this ITR keeps in step (needs the itr role)."`
	Failover    Failover     `toml:"failover" doc:"Failover in both directions (xTR roles): withdrawing an RLOC that cannot be served, covering for a dead member of the synchronization set, and the graceful drain."`
}

// Daemon is the [daemon] section.
type Daemon struct {
	Roles         []Role         `toml:"roles" required:"true" reload:"restart" doc:"The roles this daemon plays: any of \"itr\", \"etr\", \"ms\", \"mr\"; at least one."`
	APISocket     string         `toml:"api-socket" default:"'/run/lispd/lispd.sock'" reload:"restart" doc:"Path of the local API unix socket that lispctl talks to. Its directory is created with mode 0750 and the socket with mode 0660."`
	MetricsListen netip.AddrPort `toml:"metrics-listen" default:"''" optional:"true" doc:"TCP address (ip:port) for the Prometheus /metrics listener, e.g. \"127.0.0.1:9317\"; empty means no metrics listener."`
	LogLevel      slog.Level     `toml:"log-level" default:"'info'" doc:"Least severe level that is logged: debug, info, warn or error. lispctl log-level changes it at run time."`
	LogFormat     LogFormat      `toml:"log-format" default:"'text'" reload:"restart" doc:"Log encoding on stderr: text (key=value) or json."`
}

// Control is the [control] section.
type Control struct {
	Listen []netip.AddrPort `toml:"listen" default:"['0.0.0.0:4342']" port:"4342" doc:"UDP addresses (ip or ip:port, port 4342 when omitted) on which control-plane messages are received and from which they are sent."`
}

// MapServer is the [map-server] section.
type MapServer struct {
	RegistrationTimeout time.Duration `toml:"registration-timeout" default:"'3m'" doc:"A registration that is not refreshed within this time expires. ETRs re-register every minute and RFC 9301 has the Map-Server time out after 3 minutes."`
	MapNotifyRetransmit time.Duration `toml:"map-notify-retransmit" default:"'1s'" doc:"Interval between retransmissions of a Map-Notify that has not been acknowledged with a Map-Notify-Ack."`
	MapNotifyRetries    int           `toml:"map-notify-retries" default:"3" doc:"How many times an unacknowledged Map-Notify is retransmitted before giving up (0: sent once)."`
	Sites               []Site        `toml:"site" id:"name" doc:"The LISP sites allowed to register: one [[map-server.site]] table each."`
	MaxRegistrations    int           `toml:"max-registrations" default:"1000000" reload:"restart" doc:"Most registrations (EID-prefix and registering xTR pairs) of all sites together: the Map-Server's memory bound, about 1.2 kB each. Beyond it a new registration is refused (counted in register_refused_limit_global, logged); refreshes of existing ones go on. 1..2147483647."`
	StateFile           string        `toml:"state-file" default:"''" reload:"restart" doc:"File that keeps the registration database across restarts, e.g. \"/var/lib/lispd/registrations.db\" (an absolute path, in a directory the daemon may write): written crash-safely at most every second after a change (every 30 s when registrations are only refreshed) and at shutdown, and read at start, so that a restarted Map-Server answers for the registered EIDs at once, with the registrations' remaining lifetimes. An unreadable or corrupt file is logged and the Map-Server starts empty. Empty: registrations are kept in memory only."`
	PubSub              PubSub        `toml:"pubsub" doc:"Publish/subscribe (RFC 9437): ITRs subscribe to the mappings they ask for, and the Map-Server sends them every change at once in Map-Notifies instead of letting them wait for the TTL or an SMR."`
}

// PubSub is the [map-server.pubsub] table. Its keys need a restart: the
// Map-Server's subscriptions are sized and keyed when it starts.
type PubSub struct {
	Enabled           bool          `toml:"enabled" default:"false" reload:"restart" doc:"Accept subscriptions: a Map-Request whose record has the N bit (and the I bit with the ITR's xTR-ID) is answered with a Map-Notify carrying the mapping, and every later change of that mapping (new locators, withdrawn, expired) is sent the same way to the subscriber until the subscription expires. Off: the N bit is ignored and such Map-Requests are answered like any other."`
	AuthenticationKey Secret        `toml:"authentication-key" default:"''" reload:"restart" doc:"The pre-shared pub/sub key (RFC 9437 Section 7.1) that signs the Map-Notifies sent to subscribers and authenticates their Map-Notify-Acks: the same as the ITRs' itr.pubsub-key. Use a key of its own, not a site's authentication-key. Required when enabled, unless unauthenticated."`
	KeyID             uint8         `toml:"key-id" default:"0" reload:"restart" doc:"The 8-bit Key ID of the pub/sub Map-Notifies (the ITRs' itr.pubsub-key-id)."`
	Algorithm         Algorithm     `toml:"algorithm" default:"'hmac-sha-256'" reload:"restart" doc:"Authentication algorithm of the pub/sub Map-Notifies and Map-Notify-Acks: \"hmac-sha-1\", \"hmac-sha-256\" or \"hmac-sha-256-hkdf\" (the ITRs' itr.pubsub-algorithm)."`
	Unauthenticated   bool          `toml:"unauthenticated" default:"false" reload:"restart" doc:"Send the pub/sub Map-Notifies unsigned (Algorithm ID 0) and accept unsigned Map-Notify-Acks, for lispers.net's xTRs, which neither sign nor check. Anyone who can send a Map-Request can then subscribe any address, and have Map-Notifies sent to any address: use it on closed networks only."`
	MaxSubscriptions  int           `toml:"max-subscriptions" default:"1000000" reload:"restart" doc:"Most subscriptions the Map-Server holds; beyond, a subscribing Map-Request is answered as if it did not subscribe (and counted). 1..2147483647."`
	MaxPerITR         int           `toml:"max-per-itr" default:"10000" reload:"restart" doc:"Most subscriptions whose Map-Notifies go to one ITR address, so that a flood of subscriptions from one source cannot take them all; beyond, the same as max-subscriptions. 1..2147483647."`
	NegativeTTL       time.Duration `toml:"negative-ttl" default:"'15m'" reload:"restart" doc:"Lifetime of a subscription to an EID that no ETR registered (RFC 9437 Section 5 recommends 15 minutes) and Record TTL of its negative record; a subscription to a registered mapping lives for the mapping's Record TTL (at most 24 hours). Every subscribing Map-Request renews it. A whole number of minutes."`
	MaxPending        int           `toml:"max-pending" default:"200000" reload:"restart" doc:"Most pub/sub Map-Notifies awaiting their Map-Notify-Ack (each is retransmitted every map-notify-retransmit, map-notify-retries times); beyond, a Map-Notify is sent once and not retransmitted. 1..2147483647."`
}

// Site is one [[map-server.site]] table.
type Site struct {
	Name                string      `toml:"name" required:"true" doc:"Unique name of the site, used in logs, the API and lispctl."`
	AuthenticationKey   Secret      `toml:"authentication-key" required:"true" doc:"Shared secret the site's ETRs authenticate Map-Registers with (and the Map-Server its Map-Notifies)."`
	KeyID               uint8       `toml:"key-id" default:"0" doc:"The 8-bit RFC 9301 Key ID that selects this key in Map-Register messages."`
	Algorithm           Algorithm   `toml:"algorithm" default:"'hmac-sha-256'" doc:"Authentication algorithm: \"hmac-sha-1\" (Algorithm ID 1), \"hmac-sha-256\" (2) or \"hmac-sha-256-hkdf\" (3, per-message key derived with HKDF-SHA256)."`
	EIDPrefixes         []EIDPrefix `toml:"eid-prefixes" required:"true" doc:"EID prefixes the site may register, as \"prefix\" or \"iid:N/prefix\" with a 24-bit Instance ID N. Prefixes of different sites must not overlap."`
	AcceptMoreSpecifics bool        `toml:"accept-more-specifics" default:"false" doc:"Accept registrations of prefixes more specific than the configured ones (e.g. host routes of mobile EIDs)."`
	ProxyReply          bool        `toml:"proxy-reply" default:"true" doc:"Honour the P bit: when an ETR asks for it, the Map-Server answers Map-Requests for the ETR instead of forwarding them."`
	RegistrationPolicy  string      `toml:"registration-policy" default:"'auto'" doc:"What a Map-Register does to the registrations of the same EID prefix by other xTRs of the site. \"merge\": all are kept and their RLOCs served together. \"replace\": the latest Map-Register replaces every other registration of the prefix (one ETR at a time). \"auto\": registrations with an xTR-ID are merged (lispd and Cisco xTRs send one), while one without an xTR-ID (OOR sends none) replaces the other xTR-ID-less registrations of the prefix from other addresses, so that a renumbered ETR does not stay registered at its old address, unless it sets the a bit, lists the other's address among its locators, or an address it replaced registers again (several ETRs without xTR-IDs: merged from then on)."`
	MaxPrefixes         int         `toml:"max-prefixes" default:"10000" doc:"Most distinct EID prefixes the site's ETRs may register; beyond, a record for a new prefix is refused (counted in register_refused_limit_site_prefixes, logged) and the Map-Register gets no Map-Notify. 1..2147483647."`
	MaxRegistrations    int         `toml:"max-registrations" default:"20000" doc:"Most registrations (EID prefix and registering xTR pairs) of the site; beyond, the same as max-prefixes (register_refused_limit_site_registrations). 1..2147483647."`
}

// MapResolver is the [map-resolver] section.
type MapResolver struct {
	MapServers      []MapServerRef `toml:"map-servers" default:"['local']" port:"4342" doc:"Map-Servers that Map-Requests are forwarded to: \"local\" for the Map-Server role of this daemon, or an ip[:port] (port 4342 when omitted)."`
	NegativeTTL     time.Duration  `toml:"negative-ttl" default:"'15m'" doc:"TTL of negative Map-Replies for EIDs outside every known EID prefix (RFC 9301 Section 8.4 recommends 15 minutes). A whole number of minutes: the Record TTL field counts minutes."`
	UnregisteredTTL time.Duration  `toml:"unregistered-ttl" default:"'1m'" doc:"TTL of negative Map-Replies for EIDs inside a site's EID prefix that no ETR has registered (RFC 9301 Section 8.4 recommends 1 minute). A whole number of minutes."`
}

// HasRole reports whether the daemon plays role r.
func (c *Config) HasRole(r Role) bool { return slices.Contains(c.Daemon.Roles, r) }

// Load reads and parses the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse parses, defaults and validates the config in data; name is the file
// name used in error messages and stored in Config.Path. All problems are
// reported together, sorted by line, each as an *Error (see Errors).
func Parse(data []byte, name string) (*Config, error) {
	d := newDecoder(data, name)
	cfg, err := d.decode()
	if err != nil {
		return nil, err
	}
	cfg.Path = name
	return cfg, nil
}
