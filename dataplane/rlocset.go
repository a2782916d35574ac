package dataplane

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// RLOCSet is an immutable set of RLOC addresses and prefixes: the outer
// source addresses a Decapsulator with a decapsulation filter accepts
// (Decapsulator.SetRLOCFilter). Membership is a longest-prefix lookup in a
// bart.Lite table, lock-free and allocation-free. Update returns a new set
// and leaves the old one untouched, so that readers holding it never see a
// change: build, then swap.
type RLOCSet struct {
	t *bart.Lite
}

// bulkUpdate is the number of changes from which Update clones the table
// once and changes the clone in place, rather than making one
// copy-on-write version per change (InsertPersist, DeletePersist: a few
// microseconds each, but cloning only the nodes on the prefix's path).
const bulkUpdate = 64

// NewRLOCSet returns the set of the given prefixes (masked; a host address
// is a /32 or /128). It fails for an invalid or IPv4-mapped prefix.
func NewRLOCSet(prefixes ...netip.Prefix) (*RLOCSet, error) {
	t := new(bart.Lite)
	for _, p := range prefixes {
		if !p.IsValid() || p.Addr().Is4In6() {
			return nil, fmt.Errorf("%w: invalid RLOC prefix %v", ErrInvalidConfig, p)
		}
		t.Insert(p.Masked())
	}
	return &RLOCSet{t: t}, nil
}

// HostPrefix returns the single-address prefix of a (unmapped, without
// zone): what an RLOCSet holds for one RLOC.
func HostPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen())
}

// Contains reports whether addr (unmapped first) is inside a prefix of the
// set. A nil set contains nothing. It does not allocate.
func (s *RLOCSet) Contains(addr netip.Addr) bool {
	if s == nil || !addr.IsValid() {
		return false
	}
	return s.t.Contains(addr.Unmap())
}

// Update returns a set with the prefixes of add inserted and those of del
// removed (exact prefixes, masked; invalid or IPv4-mapped ones are
// skipped), in that order; s is unchanged. A nil s is the empty set.
func (s *RLOCSet) Update(add, del []netip.Prefix) *RLOCSet {
	t := new(bart.Lite)
	if s != nil {
		t = s.t
	}
	ok := func(p netip.Prefix) bool { return p.IsValid() && !p.Addr().Is4In6() }
	if len(add)+len(del) >= bulkUpdate {
		t = t.Clone()
		for _, p := range add {
			if ok(p) {
				t.Insert(p.Masked())
			}
		}
		for _, p := range del {
			if ok(p) {
				t.Delete(p.Masked())
			}
		}
		return &RLOCSet{t: t}
	}
	for _, p := range add {
		if ok(p) {
			t = t.InsertPersist(p.Masked())
		}
	}
	for _, p := range del {
		if ok(p) {
			t = t.DeletePersist(p.Masked())
		}
	}
	return &RLOCSet{t: t}
}

// Len returns the number of prefixes in the set.
func (s *RLOCSet) Len() int {
	if s == nil {
		return 0
	}
	return s.t.Size()
}

// Prefixes returns the prefixes of the set, sorted (IPv4 first).
func (s *RLOCSet) Prefixes() []netip.Prefix {
	if s == nil {
		return nil
	}
	return slices.Collect(s.t.AllSorted())
}
