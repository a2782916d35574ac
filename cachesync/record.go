package cachesync

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// record is one mapping as it travels between members: everything a
// map-cache Entry holds except what is local to a member (its last-use
// stamp, when it was learned). The expiry travels as the time remaining
// when the record was encoded, so that clock offsets between hosts do not
// matter: the receiver sets Expires = its now + remaining.
type record struct {
	key        mapcache.Key
	rlocs      []mapcache.RLOC
	action     mapcache.Action
	mapVersion uint16
	version    uint64
	ttl        time.Duration
	remaining  time.Duration
}

// Record encoding (big-endian), 27 bytes plus the EID address, then the
// locators:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Instance-ID                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   EID AFI     |  Prefix Len   |    Action     |     Flags   |S|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Map-Version          | Locator Count |               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+               +
//	|                     Version (64 bits) ...                     |
//	+                                               +-+-+-+-+-+-+-+-+
//	|                                               |               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+               +
//	|                    TTL (32 bits, ms or s)                     |
//	+                                               +-+-+-+-+-+-+-+-+
//	|                                               |               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+               +
//	|                 Remaining (32 bits, ms or s)                  |
//	+                                               +-+-+-+-+-+-+-+-+
//	|                                               |  EID prefix   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  address ...  +
//	|           (4 bytes for AFI 1, 16 for AFI 2)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// then Locator Count times:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  RLOC AFI     |   Flags   |R|L|   Priority    |    Weight     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  M Priority   |   M Weight    |  address (4 or 16 bytes) ...  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// AFI is 1 (IPv4) or 2 (IPv6), as in IANA's Address Family Numbers. S set
// means TTL and Remaining count seconds (used only when a value does not
// fit 32 bits of milliseconds, about 49 days); otherwise milliseconds.
// R is the locator's reachability when the record was sent, L its L bit.
// Reserved flag bits are sent as zero and ignored on receipt.
const (
	recordFixedLen  = 27
	locatorFixedLen = 6

	afiIPv4 = 1
	afiIPv6 = 2

	recFlagSeconds = 0x01
	locFlagLocal   = 0x01
	locFlagReach   = 0x02
)

// minRecordLen is the smallest encoded record (IPv4, no locators), used to
// bound counts before allocating.
const minRecordLen = recordFixedLen + 4

// appendRecord appends e's encoding to b with the time remaining until
// e.Expires as seen at now. It returns b unchanged and false when e cannot
// be shared: permanent, or already past its expiry.
func appendRecord(b []byte, e *mapcache.Entry, now time.Time) ([]byte, bool) {
	if e.TTL == mapcache.Permanent {
		return b, false
	}
	rem := e.Expires.Sub(now)
	if rem <= 0 {
		return b, false
	}
	ttl := e.TTL
	var flags byte
	ttlU, remU := durUnits(ttl, time.Millisecond, true), durUnits(rem, time.Millisecond, false)
	if ttlU > math.MaxUint32 || remU > math.MaxUint32 {
		flags |= recFlagSeconds
		ttlU, remU = durUnits(ttl, time.Second, true), durUnits(rem, time.Second, false)
		ttlU, remU = min(ttlU, math.MaxUint32), min(remU, math.MaxUint32)
	}
	p := e.Prefix
	afi := byte(afiIPv6)
	if p.Addr().Is4() {
		afi = afiIPv4
	}
	n := len(e.RLOCs)
	b = binary.BigEndian.AppendUint32(b, e.InstanceID)
	b = append(b, afi, byte(p.Bits()), byte(e.Action), flags)
	b = binary.BigEndian.AppendUint16(b, e.MapVersion)
	b = append(b, byte(n))
	b = binary.BigEndian.AppendUint64(b, e.Version)
	b = binary.BigEndian.AppendUint32(b, uint32(ttlU))
	b = binary.BigEndian.AppendUint32(b, uint32(remU))
	b = appendAddrBytes(b, p.Addr())
	for i := range e.RLOCs {
		l := &e.RLOCs[i]
		afi := byte(afiIPv6)
		if l.Addr.Is4() {
			afi = afiIPv4
		}
		var lf byte
		if l.Local {
			lf |= locFlagLocal
		}
		if e.Reachable(i) {
			lf |= locFlagReach
		}
		b = append(b, afi, lf, l.Priority, l.Weight, l.MPriority, l.MWeight)
		b = appendAddrBytes(b, l.Addr)
	}
	return b, true
}

// durUnits converts d to a count of unit, at least 1; ttl rounds up (a
// TTL is never shortened to zero), remaining rounds to nearest.
func durUnits(d, unit time.Duration, up bool) uint64 {
	var n int64
	if up {
		n = int64(d / unit)
		if d%unit != 0 {
			n++
		}
	} else {
		n = int64((d + unit/2) / unit)
	}
	return uint64(max(n, 1))
}

// appendAddrBytes appends the 4 or 16 bytes of a.
func appendAddrBytes(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return append(b, v[:]...)
	}
	v := a.As16()
	return append(b, v[:]...)
}

// readAddr reads an address of family afi from b.
func readAddr(b []byte, afi byte) (netip.Addr, int, error) {
	switch afi {
	case afiIPv4:
		if len(b) < 4 {
			return netip.Addr{}, 0, errTruncated("address")
		}
		return netip.AddrFrom4([4]byte(b[:4])), 4, nil
	case afiIPv6:
		if len(b) < 16 {
			return netip.Addr{}, 0, errTruncated("address")
		}
		return netip.AddrFrom16([16]byte(b[:16])), 16, nil
	}
	return netip.Addr{}, 0, fmt.Errorf("%w: address family %d", ErrMalformed, afi)
}

func errTruncated(what string) error {
	return fmt.Errorf("%w: truncated %s", ErrMalformed, what)
}

// parseRecord decodes one record from the start of b and returns it with
// the number of bytes it took. It checks everything the map-cache checks
// on insert (a masked, non-mapped prefix; valid, distinct locators; a
// defined action; a 12-bit map-version; positive times), so that a frame
// that decodes can be applied whole.
func parseRecord(b []byte) (record, int, error) {
	var r record
	if len(b) < recordFixedLen {
		return r, 0, errTruncated("record")
	}
	iid := binary.BigEndian.Uint32(b[0:4])
	afi, bits, action, flags := b[4], int(b[5]), mapcache.Action(b[6]), b[7]
	r.mapVersion = binary.BigEndian.Uint16(b[8:10])
	n := int(b[10])
	r.version = binary.BigEndian.Uint64(b[11:19])
	ttlU := binary.BigEndian.Uint32(b[19:23])
	remU := binary.BigEndian.Uint32(b[23:27])
	off := recordFixedLen
	addr, k, err := readAddr(b[off:], afi)
	if err != nil {
		return r, 0, err
	}
	off += k
	if bits > addr.BitLen() {
		return r, 0, fmt.Errorf("%w: prefix length %d for AFI %d", ErrMalformed, bits, afi)
	}
	if addr.Is4In6() {
		return r, 0, fmt.Errorf("%w: IPv4-mapped EID prefix %v", ErrMalformed, addr)
	}
	p := netip.PrefixFrom(addr, bits)
	if p.Masked() != p {
		return r, 0, fmt.Errorf("%w: EID prefix %v has host bits set", ErrMalformed, p)
	}
	r.key = mapcache.Key{InstanceID: iid, Prefix: p}
	if action > mapcache.DropAuthFailure {
		return r, 0, fmt.Errorf("%w: %v action %d", ErrMalformed, r.key, uint8(action))
	}
	r.action = action
	if r.mapVersion > mapcache.MaxMapVersion {
		return r, 0, fmt.Errorf("%w: %v map-version %d", ErrMalformed, r.key, r.mapVersion)
	}
	if ttlU == 0 || remU == 0 {
		return r, 0, fmt.Errorf("%w: %v zero TTL or remaining time", ErrMalformed, r.key)
	}
	unit := time.Millisecond
	if flags&recFlagSeconds != 0 {
		unit = time.Second
	}
	r.ttl, r.remaining = time.Duration(ttlU)*unit, time.Duration(remU)*unit
	if n > 0 {
		// Each locator takes at least locatorFixedLen+4 bytes.
		if len(b)-off < n*(locatorFixedLen+4) {
			return r, 0, errTruncated("locator set")
		}
		r.rlocs = make([]mapcache.RLOC, n)
	}
	for i := range n {
		if len(b)-off < locatorFixedLen {
			return r, 0, errTruncated("locator")
		}
		lafi, lf := b[off], b[off+1]
		l := &r.rlocs[i]
		l.Priority, l.Weight, l.MPriority, l.MWeight = b[off+2], b[off+3], b[off+4], b[off+5]
		l.Local = lf&locFlagLocal != 0
		l.Reachable = lf&locFlagReach != 0
		off += locatorFixedLen
		a, k, err := readAddr(b[off:], lafi)
		if err != nil {
			return r, 0, err
		}
		off += k
		if a.IsUnspecified() {
			return r, 0, fmt.Errorf("%w: %v locator %d is unspecified", ErrMalformed, r.key, i)
		}
		for j := range i {
			if r.rlocs[j].Addr == a {
				return r, 0, fmt.Errorf("%w: %v locator %v listed twice", ErrMalformed, r.key, a)
			}
		}
		l.Addr = a
	}
	return r, off, nil
}

// entry returns the map-cache entry for r received at now (the cache
// clock) from a peer: Source FromSync, Expires now + remaining.
func (r *record) entry(now time.Time, origin string) *mapcache.Entry {
	return &mapcache.Entry{
		InstanceID: r.key.InstanceID,
		Prefix:     r.key.Prefix,
		RLOCs:      r.rlocs,
		Action:     r.action,
		TTL:        r.ttl,
		Expires:    now.Add(r.remaining),
		Source:     mapcache.FromSync,
		Version:    r.version,
		MapVersion: r.mapVersion,
		Origin:     origin,
	}
}
