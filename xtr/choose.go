package xtr

import (
	"net/netip"

	"github.com/lispd/lispd/mapcache"
)

// unusablePriority is the locator priority that RFC 9301 section 5.4
// reserves for "do not use for unicast forwarding".
const unusablePriority = 255

// families says which address families of RLOCs the ITR can encapsulate to:
// those of its own local RLOCs (an outer header needs a source of the same
// family as the destination).
type families struct{ v4, v6 bool }

// has reports whether an RLOC of a's family can be used.
func (f families) has(a netip.Addr) bool {
	if a.Is4() || a.Is4In6() {
		return f.v4
	}
	return f.v6
}

// ChooseRLOC returns the index in e.RLOCs of the locator that a flow with
// the given flow hash (dataplane.FlowHash) is sent to, as RFC 9301 section
// 5.4 and RFC 9300 section 12 describe: among the locators that are
// reachable (Entry.Reachable), whose priority is not 255 and whose family is
// one of v4 and v6 (the families of the ITR's own RLOCs), those with the
// lowest priority are used, and flows are spread over them in proportion to
// their weights by hash modulo the total weight. When every weight of that
// set is 0 the flows are spread evenly. When all locators of the best
// priority are unreachable, the next priority is used. ok is false when no
// locator can be used.
//
// The choice is deterministic: the same entry and hash always give the same
// locator, so the redundant ITRs of a site send a flow to the same RLOC. It
// does not allocate.
func ChooseRLOC(e *mapcache.Entry, hash uint32, v4, v6 bool) (idx int, ok bool) {
	return chooseRLOC(e, hash, families{v4: v4, v6: v6})
}

func chooseRLOC(e *mapcache.Entry, hash uint32, fam families) (int, bool) {
	rlocs := e.RLOCs
	mask := e.ReachableMask()
	best := unusablePriority
	var total uint32
	n := uint32(0)
	for i := range rlocs {
		r := &rlocs[i]
		if int(r.Priority) > best || r.Priority == unusablePriority || !reachable(e, mask, i) || !fam.has(r.Addr) {
			continue
		}
		if int(r.Priority) < best {
			best, total, n = int(r.Priority), 0, 0
		}
		total += uint32(r.Weight)
		n++
	}
	if n == 0 {
		return 0, false
	}
	// Spread by weight, or evenly when every weight is 0.
	var k uint32
	if total > 0 {
		k = hash % total
	} else {
		k = hash % n
	}
	for i := range rlocs {
		r := &rlocs[i]
		if int(r.Priority) != best || !reachable(e, mask, i) || !fam.has(r.Addr) {
			continue
		}
		w := uint32(1)
		if total > 0 {
			w = uint32(r.Weight)
		}
		if k < w {
			return i, true
		}
		k -= w
	}
	return 0, false // unreachable: k < total by construction
}

// reachable reads the live reachability of RLOC i from the mask of the
// first 64 locators, or from the entry beyond.
func reachable(e *mapcache.Entry, mask uint64, i int) bool {
	if i < 64 {
		return mask&(1<<uint(i)) != 0
	}
	return e.Reachable(i)
}
