package dataplane

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// EIDPrefix is one local EID prefix of an ETR, in an instance-ID (0 for the
// default instance).
type EIDPrefix struct {
	// InstanceID is the 24-bit instance-ID.
	InstanceID uint32
	// Prefix is the EID prefix.
	Prefix netip.Prefix
}

// String formats the prefix as "[iid]prefix", or just the prefix for
// instance 0.
func (p EIDPrefix) String() string {
	if p.InstanceID == 0 {
		return p.Prefix.String()
	}
	return fmt.Sprintf("[%d]%s", p.InstanceID, p.Prefix)
}

// EIDSet is an immutable set of EID prefixes per instance-ID, answering
// "is this destination one of ours" without locks. Build a new set and swap
// it in (Decapsulator.SetEIDs) to change it.
type EIDSet struct {
	// Fast path for the common single-instance ETR.
	oneIID   uint32
	oneTable *bart.Lite
	tables   map[uint32]*bart.Lite
	prefixes []EIDPrefix
}

// NewEIDSet returns the set of the given prefixes (masked; duplicates are
// merged). It fails for an invalid prefix or an instance-ID over 24 bits.
func NewEIDSet(prefixes ...EIDPrefix) (*EIDSet, error) {
	s := &EIDSet{tables: make(map[uint32]*bart.Lite)}
	for _, p := range prefixes {
		if !p.Prefix.IsValid() {
			return nil, fmt.Errorf("%w: invalid EID prefix %v", ErrInvalidConfig, p.Prefix)
		}
		if p.InstanceID > 0xffffff {
			return nil, fmt.Errorf("%w: instance-ID %d over 24 bits", ErrInvalidConfig, p.InstanceID)
		}
		pfx := p.Prefix.Masked()
		if pfx.Addr().Is4In6() {
			return nil, fmt.Errorf("%w: IPv4-mapped EID prefix %v", ErrInvalidConfig, p.Prefix)
		}
		t := s.tables[p.InstanceID]
		if t == nil {
			t = new(bart.Lite)
			s.tables[p.InstanceID] = t
		}
		if !t.Get(pfx) {
			t.Insert(pfx)
			s.prefixes = append(s.prefixes, EIDPrefix{p.InstanceID, pfx})
		}
	}
	slices.SortFunc(s.prefixes, func(a, b EIDPrefix) int {
		if c := cmp.Compare(a.InstanceID, b.InstanceID); c != 0 {
			return c
		}
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits())
	})
	if len(s.tables) == 1 {
		for iid, t := range s.tables {
			s.oneIID, s.oneTable = iid, t
		}
	}
	return s, nil
}

// lookup reports whether the instance is served and whether addr is inside
// one of its prefixes.
func (s *EIDSet) lookup(iid uint32, addr netip.Addr) (served, inside bool) {
	if s == nil {
		return false, false
	}
	t := s.oneTable
	if t == nil || s.oneIID != iid {
		t = s.tables[iid]
		if t == nil {
			return false, false
		}
	}
	return true, t.Lookup(addr)
}

// Contains reports whether addr is inside one of the prefixes of instance
// iid.
func (s *EIDSet) Contains(iid uint32, addr netip.Addr) bool {
	_, in := s.lookup(iid, addr)
	return in
}

// Serves reports whether the set has any prefix in instance iid.
func (s *EIDSet) Serves(iid uint32) bool {
	if s == nil {
		return false
	}
	_, ok := s.tables[iid]
	return ok
}

// Prefixes returns the prefixes of the set, sorted by instance-ID, address
// and length.
func (s *EIDSet) Prefixes() []EIDPrefix {
	if s == nil {
		return nil
	}
	return slices.Clone(s.prefixes)
}
