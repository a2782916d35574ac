// Package api is lispd's local API: HTTP with JSON bodies over a unix
// socket, served by the daemon (Server) and used by lispctl and tests
// (Client), plus the Prometheus metrics endpoint.
//
// The daemon owns the state; this package only defines the JSON views of
// it and the Backend interface the daemon implements, so it imports none of
// the daemon's packages. The JSON field names are snake_case and stable:
// fields may be added, never renamed or removed.
//
// Endpoints (all under /v1/):
//
//	GET  /v1/status          Status
//	GET  /v1/registrations   []Registration
//	GET  /v1/map-cache       []MapCacheEntry
//	GET  /v1/etr             ETRStatus (daemons that implement ETRBackend)
//	GET  /v1/subscriptions   Subscriptions (daemons that implement PubSubBackend)
//	GET  /v1/sync/status     SyncStatus (daemons that implement SyncBackend)
//	GET  /v1/sync/peers      []SyncPeer (the same, peers only)
//	GET  /v1/failover        FailoverStatus (xTRs, see FailoverBackend)
//	POST /v1/failover/check  FailoverStatus
//	POST /v1/failover/peer   PeerOverride in, FailoverStatus out
//	POST /v1/drain           DrainRequest in, DrainResult out
//	POST /v1/undrain         FailoverStatus
//	POST /v1/reload          ReloadResult
//	PUT  /v1/log-level       LogLevel in, LogLevel out
//
// Errors are {"error": "..."} with a 4xx or 5xx status (see ErrorBody).
package api

import (
	"context"
	"encoding/hex"
	"errors"
	"net/netip"
	"time"
)

// Backend is what the daemon implements for the Server. Methods are called
// concurrently, one goroutine per request; ctx is canceled when the client
// goes away or the server shuts down. Return errors wrapped with WithKind
// (or wrapping ErrInvalidArgument, ErrNotFound, ErrFailedPrecondition,
// ErrUnavailable) to choose the HTTP status; other errors are 500s.
type Backend interface {
	// Status reports the daemon's identity and counters.
	Status(ctx context.Context) (Status, error)
	// Registrations lists the Map-Server's registrations (ErrUnavailable
	// when the daemon has no ms role).
	Registrations(ctx context.Context) ([]Registration, error)
	// MapCache lists the map-cache (ErrUnavailable when the daemon has no
	// map-cache).
	MapCache(ctx context.Context) ([]MapCacheEntry, error)
	// Reload re-reads the config file and applies it, as SIGHUP does.
	// A config with errors leaves the running config unchanged and
	// returns ErrFailedPrecondition with the errors.
	Reload(ctx context.Context) error
	// SetLogLevel changes the log level; level is one of "debug",
	// "info", "warn", "error" (the Server checks it first).
	SetLogLevel(ctx context.Context, level string) error
}

// Status describes the running daemon.
type Status struct {
	// Version is the daemon's version string.
	Version string `json:"version"`
	// Roles are the roles the daemon plays ("itr", "etr", "ms", "mr").
	Roles []string `json:"roles"`
	// PID is the daemon's process ID.
	PID int `json:"pid"`
	// ConfigPath is the config file the daemon was started with.
	ConfigPath string `json:"config_path"`
	// StartedAt is when the daemon started.
	StartedAt time.Time `json:"started_at"`
	// UptimeSeconds is how long the daemon has been running.
	UptimeSeconds int64 `json:"uptime_seconds"`
	// LogLevel is the current log level.
	LogLevel string `json:"log_level"`
	// Listeners are the sockets the daemon listens on.
	Listeners []Listener `json:"listeners"`
	// Counters are named event counters (messages received, sent,
	// dropped...), the same values the metrics endpoint exports.
	Counters map[string]uint64 `json:"counters"`
}

// Uptime returns UptimeSeconds as a duration.
func (s Status) Uptime() time.Duration { return time.Duration(s.UptimeSeconds) * time.Second }

// Listener is one socket the daemon listens on.
type Listener struct {
	// Name says what the socket is for: "control", "api", "metrics".
	Name string `json:"name"`
	// Network is "udp", "tcp" or "unix".
	Network string `json:"network"`
	// Address is the bound address (ip:port, or a socket path).
	Address string `json:"address"`
}

// RLOC is one locator of a mapping, as registered or cached.
type RLOC struct {
	// Address is the locator address.
	Address netip.Addr `json:"address"`
	// Priority is the unicast priority (255: do not use for unicast).
	Priority uint8 `json:"priority"`
	// Weight is the unicast weight among RLOCs of equal priority.
	Weight uint8 `json:"weight"`
	// MPriority is the multicast priority.
	MPriority uint8 `json:"m_priority"`
	// MWeight is the multicast weight.
	MWeight uint8 `json:"m_weight"`
	// Local is the L bit: the RLOC belongs to the sender of the mapping.
	Local bool `json:"local"`
	// Probed is the p bit: the mapping came in an RLOC-probe reply.
	Probed bool `json:"probed"`
	// Reachable is the R bit or the result of RLOC-probing.
	Reachable bool `json:"reachable"`
}

// XTRID is the 128-bit xTR-ID of a Map-Register (RFC 9301). Its JSON form
// is 32 lowercase hex digits.
type XTRID [16]byte

// String returns the 32 hex digits.
func (x XTRID) String() string { return hex.EncodeToString(x[:]) }

// MarshalText implements encoding.TextMarshaler.
func (x XTRID) MarshalText() ([]byte, error) { return []byte(x.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: exactly 32 hex digits.
func (x *XTRID) UnmarshalText(b []byte) error {
	var v XTRID
	if len(b) != 2*len(v) {
		return errors.New("api: xtr_id must be 32 hex digits")
	}
	if _, err := hex.Decode(v[:], b); err != nil {
		return errors.New("api: xtr_id must be 32 hex digits")
	}
	*x = v
	return nil
}

// Registration is one EID prefix registered with the Map-Server.
type Registration struct {
	// Site is the name of the configured site the prefix belongs to.
	Site string `json:"site"`
	// InstanceID is the 24-bit LISP Instance ID of the prefix.
	InstanceID uint32 `json:"iid"`
	// EIDPrefix is the registered prefix.
	EIDPrefix netip.Prefix `json:"eid_prefix"`
	// XTRID is the xTR-ID of the registering ETR (zero when the I bit was
	// not set).
	XTRID XTRID `json:"xtr_id"`
	// SiteID is the 64-bit Site-ID of the Map-Register.
	SiteID uint64 `json:"site_id"`
	// RLOCs are the registered locators.
	RLOCs []RLOC `json:"rlocs"`
	// RegisteredBy is the source address and port of the last
	// Map-Register.
	RegisteredBy netip.AddrPort `json:"registered_by"`
	// FirstRegistered is when the prefix was first registered.
	FirstRegistered time.Time `json:"first_registered"`
	// LastRegistered is when the last Map-Register refreshed it.
	LastRegistered time.Time `json:"last_registered"`
	// Expires is when the registration times out unless refreshed.
	Expires time.Time `json:"expires"`
	// ProxyReply is the P bit: the Map-Server answers Map-Requests for it.
	ProxyReply bool `json:"proxy_reply"`
	// WantMapNotify is the M bit: the ETR asked for a Map-Notify.
	WantMapNotify bool `json:"want_map_notify"`
	// TTLSeconds is the Record TTL the ETR registered, in seconds.
	TTLSeconds uint32 `json:"ttl_seconds"`
	// KeyID is the 8-bit Key ID that authenticated the Map-Register.
	KeyID uint8 `json:"key_id"`
	// Algorithm names the authentication algorithm ("hmac-sha-1",
	// "hmac-sha-256", "hmac-sha-256-hkdf").
	Algorithm string `json:"algorithm"`
}

// Action is the action of a negative mapping (RFC 9301 Map-Reply ACT).
type Action string

// The Map-Reply actions of RFC 9301 Section 5.4.
const (
	ActionNoAction         Action = "no-action"
	ActionNativelyForward  Action = "natively-forward"
	ActionSendMapRequest   Action = "send-map-request"
	ActionDrop             Action = "drop"
	ActionDropPolicyDenied Action = "drop-policy-denied"
	ActionDropAuthFailure  Action = "drop-auth-failure"
)

// The sources of map-cache entries in MapCacheEntry.Source; a daemon may
// add more.
const (
	SourceMapReply = "map-reply" // learned from a Map-Reply
	SourceStatic   = "static"    // configured
	SourceSync     = "sync"      // learned from a peer of the synchronization set
	SourcePubSub   = "pubsub"    // published by a Map-Server (RFC 9437 Map-Notify)
)

// MapCacheEntry is one entry of an ITR's map-cache.
type MapCacheEntry struct {
	// InstanceID is the 24-bit LISP Instance ID.
	InstanceID uint32 `json:"iid"`
	// Prefix is the EID prefix.
	Prefix netip.Prefix `json:"prefix"`
	// RLOCs are the locators; empty for a negative entry.
	RLOCs []RLOC `json:"rlocs"`
	// Action is the action for a negative entry (empty RLOCs).
	Action Action `json:"action"`
	// TTLSeconds is the TTL the entry was installed with.
	TTLSeconds uint32 `json:"ttl_seconds"`
	// Expires is when the entry expires; absent for entries that do not.
	Expires time.Time `json:"expires,omitzero"`
	// Source says how the entry was learned (SourceMapReply...).
	Source string `json:"source"`
	// MapVersion is the 12-bit Map-Version number (0: none).
	MapVersion uint16 `json:"version"`
	// LastUsed is when a packet last matched the entry; absent if never.
	LastUsed time.Time `json:"last_used,omitzero"`
}

// ETRBackend is implemented by daemons with an ETR; the Server answers
// GET /v1/etr through it (ErrUnavailable for a Backend without it, or when
// the daemon has no etr role). It is separate from Backend so that existing
// Backends keep compiling.
type ETRBackend interface {
	// ETR reports the ETR's registration state and EID database.
	ETR(ctx context.Context) (ETRStatus, error)
}

// ETRStatus is the ETR's view of its registrations: its identity, its
// EID database and its state with each Map-Server.
type ETRStatus struct {
	// XTRID is the xTR-ID the ETR registers with.
	XTRID XTRID `json:"xtr_id"`
	// SiteID is the site-ID the ETR registers with.
	SiteID uint64 `json:"site_id"`
	// TTLSeconds is the Record TTL of its mappings, in seconds.
	TTLSeconds uint32 `json:"ttl_seconds"`
	// ProxyReply is the P bit of its Map-Registers.
	ProxyReply bool `json:"proxy_reply"`
	// Database is the EID database.
	Database []ETRMapping `json:"database"`
	// MapServers is the registration state with each Map-Server.
	MapServers []ETRRegistration `json:"map_servers"`
}

// ETRMapping is one EID prefix of an ETR's database.
type ETRMapping struct {
	// InstanceID is the 24-bit LISP Instance ID.
	InstanceID uint32 `json:"iid"`
	// EIDPrefix is the prefix.
	EIDPrefix netip.Prefix `json:"eid_prefix"`
	// RLOCs are its locators (Local marks this xTR's own).
	RLOCs []RLOC `json:"rlocs"`
}

// The states of ETRRegistration.State.
const (
	ETRStateRegistering = "registering" // no Map-Notify yet
	ETRStateUp          = "up"          // acknowledged within 3 register intervals
	ETRStateDown        = "down"        // no acknowledgment for 3 register intervals
)

// ETRRegistration is an ETR's registration with one Map-Server.
type ETRRegistration struct {
	// MapServer is the Map-Server's address and port.
	MapServer netip.AddrPort `json:"map_server"`
	// State is ETRStateRegistering, ETRStateUp or ETRStateDown.
	State string `json:"state"`
	// LastRegister is when the last Map-Register was sent; absent if never.
	LastRegister time.Time `json:"last_register,omitzero"`
	// LastNotify is when a Map-Notify last acknowledged one; absent if
	// never.
	LastNotify time.Time `json:"last_notify,omitzero"`
	// RegistersSent counts Map-Registers sent to it.
	RegistersSent uint64 `json:"registers_sent"`
	// NotifiesReceived counts acknowledging Map-Notifies from it.
	NotifiesReceived uint64 `json:"notifies_received"`
	// AuthFailures counts Map-Notifies from it that failed authentication.
	AuthFailures uint64 `json:"auth_failures"`
	// KeyID is the Key ID of the Map-Registers.
	KeyID uint8 `json:"key_id"`
	// Algorithm names the authentication algorithm ("hmac-sha-256" ...).
	Algorithm string `json:"algorithm"`
}

// ReloadResult is the answer to POST /v1/reload.
type ReloadResult struct {
	// Reloaded is true when the new config was applied.
	Reloaded bool `json:"reloaded"`
}

// LogLevel is the body of PUT /v1/log-level and of its answer.
type LogLevel struct {
	// Level is "debug", "info", "warn" or "error".
	Level string `json:"level"`
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	// Error says what went wrong, for a human.
	Error string `json:"error"`
}
