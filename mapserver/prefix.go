package mapserver

import (
	"net/netip"
	"strconv"
)

// EIDPrefix is an EID-prefix in one instance-ID (RFC 8060 section 4.1;
// instance-ID 0 is the default, plain-AFI EID space).
type EIDPrefix struct {
	// InstanceID is the 24-bit LISP instance-ID (RFC 9300 section 5.5 and
	// RFC 8060 section 4.1 carry it in 24 and 32 bits; lispd accepts 32).
	InstanceID uint32
	// Prefix is the EID-prefix; it must be masked (no host bits set).
	Prefix netip.Prefix
}

// String formats the prefix as "[iid]prefix", the notation of lispd's CLI.
func (p EIDPrefix) String() string {
	return "[" + strconv.FormatUint(uint64(p.InstanceID), 10) + "]" + p.Prefix.String()
}

// Contains reports whether q lies within p (same instance-ID, q equal to or
// more specific than p).
func (p EIDPrefix) Contains(q EIDPrefix) bool {
	return p.InstanceID == q.InstanceID && p.Prefix.Bits() <= q.Prefix.Bits() &&
		p.Prefix.Contains(q.Prefix.Addr())
}

// validPrefix reports whether p is a usable EID-prefix: valid, masked and not
// an IPv4-mapped IPv6 prefix (which would alias IPv4 space).
func validPrefix(p netip.Prefix) bool {
	return p.IsValid() && p == p.Masked() && !p.Addr().Is4In6() && p.Addr().Zone() == ""
}
