package mapserver

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
)

// This file computes the EID-prefix of a negative Map-Reply.
//
// RFC 9301 section 8.4 asks a Map-Resolver that knows an EID is not in the
// mapping database to "return the least-specific prefix that both matches the
// original query and does not match any EID-Prefix known to exist in the
// LISP-capable infrastructure", and section 8.3 lets a Map-Server answer for a
// configured EID-prefix that holds no registration. Both come down to one
// computation: the largest prefix that contains the EID, holds no configured
// or registered prefix other than those that contain the EID, and lies within
// the most specific configured prefix that contains the EID when there is one.
//
// With c the length of that covering configured prefix (0 when none) and S the
// known prefixes that do not contain the EID:
//
//	L = max(c, 1 + max{ commonPrefixLen(EID, s.Addr()) : s in S })
//
// and the answer is EID/L, masked. For s in S the first cpl(EID, s) bits agree
// and bit cpl differs (s does not contain the EID, so cpl < s.Bits()), hence
// EID/(cpl+1) is disjoint from s while EID/cpl contains s: L is both safe and
// the shortest safe length.
//
// Configured prefixes change only on SetSites, so they are kept in sorted
// slices where the s of largest common prefix is a neighbour of the EID in
// sort order. Registered prefixes change with every new registration; they
// live in an immutable bart table, searched with OverlapsPrefix: no registered
// prefix contains the EID (else the answer would not be negative), so EID/L
// overlaps a registered prefix exactly when it holds one, which is monotone in
// L and binary-searchable.

// overlapper reports whether any stored prefix overlaps p. *bart.Table
// implements it.
type overlapper interface {
	OverlapsPrefix(p netip.Prefix) bool
}

// famKey selects the prefixes of one instance-ID and address family.
type famKey struct {
	iid uint32
	v6  bool
}

// sortedPrefixes holds masked prefixes of one family ordered by address, then
// length, without duplicates. It is immutable once built.
type sortedPrefixes []netip.Prefix

// prefixSet is an immutable collection of prefixes split by instance-ID and
// address family, for the neighbour search of commonPrefixLen.
type prefixSet struct {
	m map[famKey]sortedPrefixes
}

// newPrefixSet builds a prefixSet from the given instance-ID/prefix pairs.
// Invalid prefixes are skipped; prefixes are masked.
func newPrefixSet(ps []EIDPrefix) *prefixSet {
	m := make(map[famKey]sortedPrefixes)
	for _, p := range ps {
		if !p.Prefix.IsValid() {
			continue
		}
		pfx := p.Prefix.Masked()
		k := famKey{iid: p.InstanceID, v6: pfx.Addr().Is6()}
		m[k] = append(m[k], pfx)
	}
	for k, v := range m {
		slices.SortFunc(v, comparePrefix)
		m[k] = slices.Compact(v)
	}
	return &prefixSet{m: m}
}

// comparePrefix orders prefixes by address, then by length.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// family returns the sorted prefixes of one instance-ID and family.
func (s *prefixSet) family(iid uint32, v6 bool) sortedPrefixes {
	if s == nil {
		return nil
	}
	return s.m[famKey{iid: iid, v6: v6}]
}

// maxNonCoveringCPL returns the largest commonPrefixLen(e, p.Addr()) over the
// prefixes p of s that do not contain e, or -1 when every prefix contains e
// (or s is empty).
//
// For addresses x <= e, cpl(e, x) grows as x approaches e, and likewise from
// above, so the maximum is at the nearest non-containing prefix on either
// side of e. Prefixes above e never contain it; on the left, the prefixes
// between e and the nearest non-containing one all contain e, and there are
// at most one per prefix length.
func (s sortedPrefixes) maxNonCoveringCPL(e netip.Addr) int {
	// i is the index of the first prefix whose address is greater than e.
	i, _ := slices.BinarySearchFunc(s, e, func(p netip.Prefix, e netip.Addr) int {
		if p.Addr().Compare(e) <= 0 {
			return -1
		}
		return 1
	})
	best := -1
	if i < len(s) {
		best = commonPrefixLen(e, s[i].Addr())
	}
	for j := i - 1; j >= 0; j-- {
		if s[j].Contains(e) {
			continue
		}
		best = max(best, commonPrefixLen(e, s[j].Addr()))
		break
	}
	return best
}

// negativePrefix returns the EID-prefix of a negative Map-Reply for e: the
// largest prefix containing e that is at least coverBits long (the length of
// the most specific configured prefix containing e, 0 when none), holds no
// prefix of conf that does not contain e, and overlaps no prefix of reg. reg
// may be nil. No prefix of reg may contain e.
func negativePrefix(e netip.Addr, coverBits int, conf sortedPrefixes, reg overlapper) netip.Prefix {
	maxBits := e.BitLen()
	lower := max(coverBits, 0)
	if c := conf.maxNonCoveringCPL(e); c >= 0 {
		lower = max(lower, c+1)
	}
	lower = min(lower, maxBits)
	l := lower
	if reg != nil && reg.OverlapsPrefix(prefixOf(e, lower)) {
		// Smallest l in (lower, maxBits] with no overlap; overlapping is
		// monotone (a shorter prefix holds everything a longer one holds).
		lo, hi := lower+1, maxBits
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if reg.OverlapsPrefix(prefixOf(e, mid)) {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		l = lo
	}
	return prefixOf(e, l)
}

// prefixOf returns e/bits masked. bits must be within [0, e.BitLen()].
func prefixOf(e netip.Addr, n int) netip.Prefix {
	p, err := e.Prefix(n)
	if err != nil {
		// Unreachable for the lengths computed above; keep a valid answer.
		return netip.PrefixFrom(e, e.BitLen())
	}
	return p
}

// commonPrefixLen returns the number of leading bits a and b share. a and b
// must be of the same family.
func commonPrefixLen(a, b netip.Addr) int {
	if a.Is4() {
		x, y := a.As4(), b.As4()
		return bits.LeadingZeros32(binary.BigEndian.Uint32(x[:]) ^ binary.BigEndian.Uint32(y[:]))
	}
	x, y := a.As16(), b.As16()
	hi := binary.BigEndian.Uint64(x[:8]) ^ binary.BigEndian.Uint64(y[:8])
	if hi != 0 {
		return bits.LeadingZeros64(hi)
	}
	return 64 + bits.LeadingZeros64(binary.BigEndian.Uint64(x[8:])^binary.BigEndian.Uint64(y[8:]))
}
