package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultControlPort is the LISP control-plane UDP port (RFC 9301), used when
// an address in the config file has no port.
const DefaultControlPort = 4342

// MaxInstanceID is the largest LISP Instance ID: the field is 24 bits wide
// in the data-plane header (RFC 9300) and in the Instance-ID LCAF (RFC 8060).
const MaxInstanceID = 1<<24 - 1

// EIDPrefix is an EID prefix qualified by a LISP Instance ID. Its text form
// is "iid:N/prefix" (for example "iid:1000/10.1.0.0/16"); the "iid:N/" part
// may be omitted when N is 0.
type EIDPrefix struct {
	// InstanceID is the 24-bit LISP Instance ID (0 is the default instance).
	InstanceID uint32
	// Prefix is the address prefix, always in canonical (masked) form.
	Prefix netip.Prefix
}

// ValueError reports a value that cannot be parsed: What names the kind of
// value ("EID prefix", "role" ...), Value is the text as written and Msg says
// what is wrong with it.
type ValueError struct {
	What  string // kind of value
	Value string // the value as written
	Msg   string // what is wrong with it
}

// Error returns "config: <what> "<value>": <msg>".
func (e *ValueError) Error() string {
	return "config: " + e.What + " " + strconv.Quote(e.Value) + ": " + e.Msg
}

// ParseEIDPrefix parses the "iid:N/prefix" or plain "prefix" syntax. The
// prefix must be canonical: host bits set (10.1.2.0/16) are an error, not
// silently masked, because they usually mean a typo.
func ParseEIDPrefix(s string) (EIDPrefix, error) {
	bad := func(msg string) (EIDPrefix, error) {
		return EIDPrefix{}, &ValueError{What: "EID prefix", Value: s, Msg: msg}
	}
	var p EIDPrefix
	rest := s
	if after, ok := strings.CutPrefix(s, "iid:"); ok {
		num, pfx, found := strings.Cut(after, "/")
		if !found {
			return bad("want iid:N/prefix")
		}
		iid, ok := parseIID(num)
		if !ok {
			return bad(fmt.Sprintf("instance ID %q is not an integer 0..%d", num, MaxInstanceID))
		}
		p.InstanceID = iid
		rest = pfx
	}
	if rest == "" {
		return bad("empty prefix")
	}
	addrText, bitsText, found := strings.Cut(rest, "/")
	if !found {
		return bad(fmt.Sprintf("missing prefix length (write %s/%d for a single address)", rest, hostBits(rest)))
	}
	pfx, err := netip.ParsePrefix(rest)
	if err != nil {
		if a, aerr := netip.ParseAddr(addrText); aerr == nil && a.Zone() == "" {
			return bad(fmt.Sprintf("invalid prefix: length %q must be 0..%d", bitsText, a.BitLen()))
		}
		return bad("invalid prefix")
	}
	if m := pfx.Masked(); m != pfx {
		return bad(fmt.Sprintf("host bits are set (did you mean %s?)", m))
	}
	p.Prefix = pfx
	return p, nil
}

// hostBits returns the full prefix length for the family of the address
// text s, for use in hints.
func hostBits(s string) int {
	if strings.Contains(s, ":") {
		return 128
	}
	return 32
}

// ParseInstanceID parses a decimal LISP Instance ID and checks its 24-bit
// range.
func ParseInstanceID(s string) (uint32, error) {
	iid, ok := parseIID(s)
	if !ok {
		return 0, &ValueError{What: "instance ID", Value: s, Msg: fmt.Sprintf("want an integer 0..%d", MaxInstanceID)}
	}
	return iid, nil
}

func parseIID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > MaxInstanceID {
		return 0, false
	}
	return uint32(n), true
}

// String returns the text form: "iid:N/prefix", or just the prefix when the
// Instance ID is 0. The zero EIDPrefix prints as "invalid EID prefix".
func (p EIDPrefix) String() string {
	if !p.Prefix.IsValid() {
		return "invalid EID prefix"
	}
	if p.InstanceID == 0 {
		return p.Prefix.String()
	}
	return "iid:" + strconv.FormatUint(uint64(p.InstanceID), 10) + "/" + p.Prefix.String()
}

// IsValid reports whether p holds a valid prefix and Instance ID.
func (p EIDPrefix) IsValid() bool {
	return p.Prefix.IsValid() && p.InstanceID <= MaxInstanceID
}

// Overlaps reports whether p and q are in the same instance and one of the
// prefixes contains the other.
func (p EIDPrefix) Overlaps(q EIDPrefix) bool {
	return p.InstanceID == q.InstanceID && p.Prefix.Overlaps(q.Prefix)
}

// Contains reports whether the EID a in instance iid falls inside p.
func (p EIDPrefix) Contains(iid uint32, a netip.Addr) bool {
	return p.InstanceID == iid && p.Prefix.Contains(a)
}

// Compare orders prefixes by Instance ID, then address family, address and
// prefix length (shorter first), so that a prefix sorts before the prefixes
// it contains.
func (p EIDPrefix) Compare(q EIDPrefix) int {
	switch {
	case p.InstanceID < q.InstanceID:
		return -1
	case p.InstanceID > q.InstanceID:
		return 1
	}
	if c := p.Prefix.Addr().Compare(q.Prefix.Addr()); c != 0 {
		return c
	}
	switch {
	case p.Prefix.Bits() < q.Prefix.Bits():
		return -1
	case p.Prefix.Bits() > q.Prefix.Bits():
		return 1
	}
	return 0
}

// MarshalText implements encoding.TextMarshaler.
func (p EIDPrefix) MarshalText() ([]byte, error) {
	if !p.IsValid() {
		return nil, errors.New("config: invalid EID prefix")
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler using ParseEIDPrefix.
func (p *EIDPrefix) UnmarshalText(b []byte) error {
	q, err := ParseEIDPrefix(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// Role is a part the daemon plays.
type Role string

// The roles a daemon can play.
const (
	RoleITR         Role = "itr" // Ingress Tunnel Router
	RoleETR         Role = "etr" // Egress Tunnel Router
	RoleMapServer   Role = "ms"  // Map-Server
	RoleMapResolver Role = "mr"  // Map-Resolver
)

// Roles lists every valid role.
func Roles() []Role { return []Role{RoleITR, RoleETR, RoleMapServer, RoleMapResolver} }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts only the
// names in Roles.
func (r *Role) UnmarshalText(b []byte) error {
	for _, v := range Roles() {
		if string(b) == string(v) {
			*r = v
			return nil
		}
	}
	return &ValueError{What: "role", Value: string(b), Msg: "unknown role: want one of itr, etr, ms, mr"}
}

// Algorithm is a Map-Register authentication algorithm. Its value is the
// Algorithm ID of RFC 9301 and IANA's "LISP Algorithm ID Numbers" registry.
type Algorithm uint8

// The authentication algorithms (IANA "LISP Algorithm ID Numbers").
const (
	// AlgHMACSHA1 is HMAC-SHA-1-96-None (Algorithm ID 1).
	AlgHMACSHA1 Algorithm = 1
	// AlgHMACSHA256 is HMAC-SHA-256-128-None (Algorithm ID 2).
	AlgHMACSHA256 Algorithm = 2
	// AlgHMACSHA256HKDF is HMAC-SHA256-128+HKDF-SHA256 (Algorithm ID 3):
	// the MAC key is derived per message from the shared key.
	AlgHMACSHA256HKDF Algorithm = 3
)

// algorithmNames maps every accepted config spelling to its algorithm;
// String returns the canonical one.
var algorithmNames = map[string]Algorithm{
	"hmac-sha-1":        AlgHMACSHA1,
	"hmac-sha-1-96":     AlgHMACSHA1,
	"hmac-sha-256":      AlgHMACSHA256,
	"hmac-sha-256-128":  AlgHMACSHA256,
	"hmac-sha-256-hkdf": AlgHMACSHA256HKDF,
}

// String returns the config name of a ("hmac-sha-256" ...), or
// "algorithm-N" for an ID this package does not know.
func (a Algorithm) String() string {
	switch a {
	case AlgHMACSHA1:
		return "hmac-sha-1"
	case AlgHMACSHA256:
		return "hmac-sha-256"
	case AlgHMACSHA256HKDF:
		return "hmac-sha-256-hkdf"
	}
	return "algorithm-" + strconv.Itoa(int(a))
}

// MarshalText implements encoding.TextMarshaler.
func (a Algorithm) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. It accepts
// "hmac-sha-1" (alias "hmac-sha-1-96"), "hmac-sha-256" (alias
// "hmac-sha-256-128") and "hmac-sha-256-hkdf".
func (a *Algorithm) UnmarshalText(b []byte) error {
	v, ok := algorithmNames[string(b)]
	if !ok {
		return &ValueError{What: "algorithm", Value: string(b), Msg: "unknown algorithm: want hmac-sha-1, hmac-sha-256 or hmac-sha-256-hkdf"}
	}
	*a = v
	return nil
}

// LogFormat is the daemon's log encoding.
type LogFormat string

// The log formats.
const (
	LogFormatText LogFormat = "text" // slog.TextHandler: key=value
	LogFormatJSON LogFormat = "json" // slog.JSONHandler: one JSON object a line
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *LogFormat) UnmarshalText(b []byte) error {
	switch LogFormat(b) {
	case LogFormatText, LogFormatJSON:
		*f = LogFormat(b)
		return nil
	}
	return &ValueError{What: "log format", Value: string(b), Msg: "unknown log format: want text or json"}
}

// LogLevelNames lists the log levels accepted by ParseLogLevel, from most to
// least verbose.
func LogLevelNames() []string { return []string{"debug", "info", "warn", "error"} }

// ParseLogLevel parses one of "debug", "info", "warn", "error" (also
// "warning"), in any case. Unlike slog.Level.UnmarshalText it refuses
// offsets such as "info+2", which operators should not need.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, &ValueError{What: "log level", Value: s, Msg: "unknown log level: want debug, info, warn or error"}
}

// LogLevelName returns the name ParseLogLevel accepts for l: "debug",
// "info", "warn" or "error" (levels in between round down to the nearest).
func LogLevelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// Secret is a string that does not print: String and GoString hide it, so a
// Config can be logged or dumped with %v without leaking keys. Convert with
// string(s) where the value itself is needed.
type Secret string

// String returns "<redacted>" (or "" for an empty secret).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<redacted>"
}

// GoString returns the same as String, for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MapServerRef names a Map-Server a Map-Resolver sends requests to: the
// Map-Server in this process ("local") or a remote one by address.
type MapServerRef struct {
	// Local is true for "local", the Map-Server role of this daemon.
	Local bool
	// Addr is the remote Map-Server's control address when Local is false.
	Addr netip.AddrPort
}

// String returns "local" or the address with its port.
func (r MapServerRef) String() string {
	if r.Local {
		return "local"
	}
	return r.Addr.String()
}

// MarshalText implements encoding.TextMarshaler.
func (r MapServerRef) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: "local", or an IP
// address with an optional port (default 4342).
func (r *MapServerRef) UnmarshalText(b []byte) error {
	if string(b) == "local" {
		*r = MapServerRef{Local: true}
		return nil
	}
	ap, err := ParseAddrPort(string(b), DefaultControlPort)
	if err != nil {
		msg := err.Error()
		var ve *ValueError
		if errors.As(err, &ve) {
			msg = ve.Msg
		}
		return &ValueError{What: "map-server", Value: string(b), Msg: msg + ` (want "local" or ip[:port])`}
	}
	*r = MapServerRef{Addr: ap}
	return nil
}

// ParseAddrPort parses "ip", "ip:port", "[ipv6]:port", "[ipv6]" or a bare
// IPv6 address. When the port is missing, defaultPort is used; a negative
// defaultPort makes the port mandatory. Host names are refused: the daemon
// binds and sends to literal addresses only. IPv4-mapped IPv6 addresses are
// unmapped to IPv4.
func ParseAddrPort(s string, defaultPort int) (netip.AddrPort, error) {
	bad := func(msg string) (netip.AddrPort, error) {
		return netip.AddrPort{}, &ValueError{What: "address", Value: s, Msg: msg}
	}
	if s == "" {
		return bad("empty address")
	}
	host, portText, err := net.SplitHostPort(s)
	if err == nil && portText == "" {
		return bad("empty port")
	}
	if err != nil {
		// No port: a bare address, possibly a bracketed or unbracketed IPv6.
		host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
		portText = ""
	}
	addr, aerr := netip.ParseAddr(host)
	if aerr != nil {
		return bad("not an IP address (host names are not resolved)")
	}
	if addr.Zone() != "" {
		return bad("zoned IPv6 addresses are not supported")
	}
	var port uint64
	if portText == "" {
		if defaultPort < 0 || defaultPort > 65535 {
			return bad("missing port")
		}
		port = uint64(defaultPort)
	} else {
		port, err = strconv.ParseUint(portText, 10, 64)
		if err != nil || port > 65535 {
			return bad(fmt.Sprintf("port %s out of range 0..65535", portText))
		}
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}
