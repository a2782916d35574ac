package xtr

import (
	"cmp"
	"container/heap"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// DefaultMaxRemoteITRs bounds the ETR's table of remote ITRs: past it the
// one seen longest ago is forgotten.
const DefaultMaxRemoteITRs = 4096

// remoteStampInterval is how often a packet loop refreshes the LastSeen of
// a remote ITR that keeps sending: at most once a second, so that a busy
// flow costs no lock.
const remoteStampInterval = time.Second

// RemoteITR is a remote ITR that encapsulated packets to this xTR: the RLOC
// they came from (outer source), their instance-ID, the inner source EID of
// the last one stamped (an address of the remote site, to which an SMR can
// be addressed), and when one was last seen (one-second resolution).
type RemoteITR struct {
	RLOC       netip.Addr
	InstanceID uint32
	EID        netip.Addr
	LastSeen   time.Time
}

// remoteKey identifies a remote ITR: its RLOC in an instance.
type remoteKey struct {
	rloc netip.Addr
	iid  uint32
}

// remoteNode is one remote ITR in the table's heap.
type remoteNode struct {
	key  remoteKey
	eid  netip.Addr
	seen int64 // Unix nanoseconds
}

// remoteITRTable is the bounded table of remote ITRs: a min-heap by
// LastSeen (the root is the one to evict, container/heap) with an index by
// key. Updating and evicting are O(log n) and allocate nothing; inserting
// allocates only while the table grows. The zero value is usable.
type remoteITRTable struct {
	mu  sync.Mutex
	max int // 0 means DefaultMaxRemoteITRs
	h   remoteHeap
}

// remoteHeap is the heap.Interface of the table: nodes ordered by seen,
// idx kept in step by Swap.
type remoteHeap struct {
	nodes []remoteNode
	idx   map[remoteKey]int
}

func (h *remoteHeap) Len() int           { return len(h.nodes) }
func (h *remoteHeap) Less(a, b int) bool { return h.nodes[a].seen < h.nodes[b].seen }
func (h *remoteHeap) Swap(a, b int) {
	h.nodes[a], h.nodes[b] = h.nodes[b], h.nodes[a]
	h.idx[h.nodes[a].key] = a
	h.idx[h.nodes[b].key] = b
}
func (h *remoteHeap) Push(x any) {
	n := x.(remoteNode)
	h.idx[n.key] = len(h.nodes)
	h.nodes = append(h.nodes, n)
}
func (h *remoteHeap) Pop() any {
	n := h.nodes[len(h.nodes)-1]
	h.nodes = h.nodes[:len(h.nodes)-1]
	delete(h.idx, n.key)
	return n
}

// stamp records that key was seen at seen with eid, keeping the newer
// stamp of an entry it already has, and evicting the oldest entry when the
// table is full (or dropping this one if it is older than all).
func (t *remoteITRTable) stamp(key remoteKey, eid netip.Addr, seen int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := &t.h
	if h.idx == nil {
		h.idx = map[remoteKey]int{}
	}
	if j, ok := h.idx[key]; ok {
		n := &h.nodes[j]
		if seen < n.seen {
			return
		}
		n.seen, n.eid = seen, eid
		heap.Fix(h, j)
		return
	}
	limit := t.max
	if limit <= 0 {
		limit = DefaultMaxRemoteITRs
	}
	if h.Len() >= limit {
		if seen <= h.nodes[0].seen {
			return
		}
		// Replace the oldest in place: no allocation at the bound.
		delete(h.idx, h.nodes[0].key)
		h.nodes[0] = remoteNode{key: key, eid: eid, seen: seen}
		h.idx[key] = 0
		heap.Fix(h, 0)
		return
	}
	heap.Push(h, remoteNode{key: key, eid: eid, seen: seen})
}

// list returns the entries seen at or after since (Unix nanoseconds),
// newest first.
func (t *remoteITRTable) list(since int64) []RemoteITR {
	t.mu.Lock()
	out := make([]RemoteITR, 0, len(t.h.nodes))
	for k := range t.h.nodes {
		n := &t.h.nodes[k]
		if n.seen >= since {
			out = append(out, RemoteITR{RLOC: n.key.rloc, InstanceID: n.key.iid, EID: n.eid, LastSeen: time.Unix(0, n.seen)})
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b RemoteITR) int {
		return cmp.Or(b.LastSeen.Compare(a.LastSeen), a.RLOC.Compare(b.RLOC), cmp.Compare(a.InstanceID, b.InstanceID))
	})
	return out
}

// RemoteITRs returns the remote ITRs that encapsulated packets to this xTR
// (delivered by its DataPlane) or that MergeRemoteITRs added, last seen
// within the given time before now, newest first; within <= 0 returns them
// all. The table keeps at most DefaultMaxRemoteITRs (RLOC, instance-ID)
// pairs, forgetting the one seen longest ago.
func (e *ETR) RemoteITRs(within time.Duration) []RemoteITR {
	since := int64(0)
	if within > 0 {
		since = e.now().Add(-within).UnixNano()
	}
	return e.remote.list(since)
}

// MergeRemoteITRs adds remote ITRs learned elsewhere (from the peers of the
// synchronization set) to the table: an entry already known keeps the newer
// LastSeen (and the EID that came with it). Their RLOCs become known to
// the decapsulation filter, so that packets a remote ITR sends to this
// member after asking another one for the mapping are accepted. Entries without a valid RLOC or
// EID, with an instance-ID over 24 bits or a zero LastSeen are ignored; a
// LastSeen in the future counts as now.
func (e *ETR) MergeRemoteITRs(rs []RemoteITR) {
	now := e.now().UnixNano()
	seen := make([]sighting, 0, len(rs))
	for _, r := range rs {
		rloc, eid := r.RLOC.Unmap(), r.EID.Unmap()
		if !rloc.IsValid() || !eid.IsValid() || r.InstanceID > 0xffffff || r.LastSeen.IsZero() {
			continue
		}
		at := min(r.LastSeen.UnixNano(), now)
		e.remote.stamp(remoteKey{rloc: rloc, iid: r.InstanceID}, eid, at)
		seen = append(seen, sighting{rloc, at})
	}
	e.countGleaned(e.filter.glean(seen, e.remote.lastSeenByRLOC))
}

// remoteSeenSlots is the size of a packet loop's memo of recent stamps.
const remoteSeenSlots = 16

// remoteSeen is a packet loop's memo of the remote ITRs it stamped
// recently, so that a remote ITR that keeps sending takes the table's lock
// once a second at most. It belongs to the loop's goroutine.
type remoteSeen struct {
	slots [remoteSeenSlots]struct {
		key remoteKey
		at  int64
	}
	next int
}

// see records in e's table that the RLOC rloc sent a packet from eid in
// instance iid at now (Unix nanoseconds), unless this loop did within the
// last second.
func (s *remoteSeen) see(e *ETR, iid uint32, rloc, eid netip.Addr, now int64) {
	if !rloc.IsValid() {
		return
	}
	k := remoteKey{rloc: rloc, iid: iid}
	j := -1
	for x := range s.slots {
		if s.slots[x].key == k {
			j = x
			break
		}
	}
	if j >= 0 {
		if d := now - s.slots[j].at; d >= 0 && d < int64(remoteStampInterval) {
			return
		}
	} else {
		j = s.next
		s.next = (s.next + 1) % remoteSeenSlots
	}
	s.slots[j].key, s.slots[j].at = k, now
	e.remote.stamp(k, eid, now)
}
