package mapcache

import (
	"fmt"
	"math"
	"net/netip"
	"sync/atomic"
	"time"
)

// Action is what an ITR does with packets that match a negative entry. The
// numbering is the 3-bit ACT field of a LISP Map-Reply record (RFC 9301
// section 5.4), so the value can be copied to and from the wire unchanged.
type Action uint8

// Actions defined by RFC 9301 section 5.4 for negative Map-Replies.
const (
	// NoAction keeps the entry alive; packets are not encapsulated.
	NoAction Action = 0
	// NativelyForward sends packets without LISP encapsulation.
	NativelyForward Action = 1
	// SendMapRequest triggers a Map-Request for packets that match.
	SendMapRequest Action = 2
	// Drop silently drops packets that match.
	Drop Action = 3
	// DropPolicyDenied drops packets; the mapping system denied the request by policy.
	DropPolicyDenied Action = 4
	// DropAuthFailure drops packets; the mapping system failed to authenticate the request.
	DropAuthFailure Action = 5
)

// maxAction is the highest Action assigned by RFC 9301.
const maxAction = DropAuthFailure

var actionNames = [...]string{
	NoAction:         "no-action",
	NativelyForward:  "natively-forward",
	SendMapRequest:   "send-map-request",
	Drop:             "drop",
	DropPolicyDenied: "drop-policy-denied",
	DropAuthFailure:  "drop-auth-failure",
}

// String returns the action's name as RFC 9301 spells it, in lower case.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Source says how an entry was learned.
type Source uint8

// Sources of map-cache entries.
const (
	// FromUnspecified is the zero value: the inserting code did not say.
	FromUnspecified Source = iota
	// FromMapReply is a mapping received in a Map-Reply to our Map-Request.
	FromMapReply
	// FromSync is a mapping learned from a peer of the synchronization set.
	FromSync
	// FromStatic is a mapping from the configuration file.
	FromStatic
	// FromProbe is a mapping carried by an RLOC-probe reply.
	FromProbe
	// FromPubSub is a mapping published by a Map-Server (RFC 9437 Map-Notify).
	FromPubSub
)

var sourceNames = [...]string{
	FromUnspecified: "unspecified",
	FromMapReply:    "map-reply",
	FromSync:        "sync",
	FromStatic:      "static",
	FromProbe:       "probe",
	FromPubSub:      "pubsub",
}

// String returns the source's name in lower case.
func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return fmt.Sprintf("source(%d)", uint8(s))
}

// Key identifies a map-cache entry: an EID prefix within an instance-ID.
type Key struct {
	InstanceID uint32
	Prefix     netip.Prefix
}

// String formats the key in the usual LISP notation, "[iid]prefix".
func (k Key) String() string {
	return fmt.Sprintf("[%d]%s", k.InstanceID, k.Prefix)
}

// MaxRLOCs is the largest locator set an entry may hold: the Locator Count of
// a LISP mapping record is an 8-bit field.
const MaxRLOCs = 255

// MaxMapVersion is the largest value of the 12-bit LISP Map-Version number.
const MaxMapVersion = 0x0fff

// Permanent is the TTL of an entry that never expires (for example a static
// entry from the configuration). Permanent entries are never passed to the
// expiry hook and never evicted to make room.
const Permanent time.Duration = math.MaxInt64

// TouchGranularity is the resolution of the last-used stamp: Entry.Touch only
// writes the stamp when it would move forward by more than this, so that the
// cache line holding a busy entry is not written by every packet.
const TouchGranularity = 100 * time.Millisecond

// RLOC is one locator of a mapping. It is a plain value; the live
// reachability of a locator inside a cached entry is kept by the entry (see
// Entry.Reachable) so that RLOC-probing can change it without replacing the
// entry.
type RLOC struct {
	// Addr is the locator address (IPv4 or IPv6).
	Addr netip.Addr
	// Priority and Weight drive unicast locator selection (RFC 9301 section 5.4);
	// Priority 255 means the locator must not be used for unicast.
	Priority, Weight uint8
	// MPriority and MWeight are the multicast counterparts.
	MPriority, MWeight uint8
	// Local reports that the locator belongs to this router (the L bit).
	Local bool
	// Reachable is the reachability the locator had when the entry was
	// inserted (for a Map-Reply, its R bit). Insert copies it into the entry's
	// live reachability; later changes are made with Entry.SetReachable and
	// read with Entry.Reachable, never through this field.
	Reachable bool
}

// Entry is one EID-prefix to locator-set mapping in the cache.
//
// Entries are immutable once inserted, with two exceptions that are stored
// atomically: the last-used stamp (Touch, LastUsed) and the live reachability
// of each RLOC (SetReachable, Reachable). Replacing a mapping means inserting
// a new Entry with the same key. Insert takes ownership of the Entry it is
// given: the caller must not modify it afterwards, and an Entry can be
// inserted only once (even after it has left the cache), because readers may
// still hold it. Entries must be handled by pointer; copying one is a bug
// that go vet reports.
type Entry struct {
	// The small fields come first so that the struct packs into 192 bytes.

	// InstanceID is the LISP instance-ID (24 bits on the wire; the cache
	// accepts any uint32).
	InstanceID uint32
	// MapVersion is the 12-bit LISP Map-Version number (RFC 9302), 0 if none.
	MapVersion uint16
	// Action is what to do with matching packets when the entry is negative.
	Action Action
	// Source says how the mapping was learned.
	Source Source
	// Prefix is the EID prefix. It must be valid and masked (no host bits);
	// IPv4-mapped IPv6 prefixes are refused, use the IPv4 form.
	Prefix netip.Prefix
	// RLOCs is the locator set; empty for a negative entry.
	RLOCs []RLOC
	// TTL is the record TTL as received. It must be positive; Permanent means
	// the entry never expires.
	TTL time.Duration
	// Expires is the absolute expiry time. If zero, Insert sets it to the
	// cache clock plus TTL. It is zero for Permanent entries.
	Expires time.Time
	// Version orders the mappings of one key: an insert whose Version is older
	// than the cached one's is refused (ErrStale), so that the newest version
	// wins whatever order updates arrive in.
	Version uint64
	// Learned is when the mapping was learned. If zero, Insert sets it to the
	// cache clock.
	Learned time.Time
	// Origin optionally names where the mapping came from (a peer, a
	// map-resolver address...).
	Origin string

	// lastUsed is the last-used stamp in Unix nanoseconds, 0 if never used.
	lastUsed atomic.Int64
	// deadline is when the cache next considers the entry expired, in Unix
	// nanoseconds: Expires, or later if the expiry hook extended it;
	// math.MaxInt64 for a permanent entry. Written by the writer only.
	deadline atomic.Int64
	// reach holds the live reachability of RLOCs 0..63, one bit each.
	reach atomic.Uint64
	// reachExt holds the live reachability of RLOCs 64..MaxRLOCs-1; nil when
	// the entry has at most 64 RLOCs.
	reachExt *[3]atomic.Uint64

	// The fields below are written under the cache's writer lock only.

	// inserted is the cache clock at insertion, in Unix nanoseconds.
	inserted int64
	// heapIdx is the entry's position in the expiry heap, -1 if not in it.
	heapIdx int32
	// state is entryNew, entryLive or entryGone.
	state uint8
}

const (
	entryNew uint8 = iota
	entryLive
	entryGone
)

// Key returns the entry's key.
func (e *Entry) Key() Key {
	return Key{InstanceID: e.InstanceID, Prefix: e.Prefix}
}

// Negative reports whether the entry has no locators.
func (e *Entry) Negative() bool {
	return len(e.RLOCs) == 0
}

// Touch records that the entry was used at now (Unix nanoseconds). It is
// safe for concurrent use, never allocates, and writes only when the stamp
// moves forward by more than TouchGranularity.
func (e *Entry) Touch(now int64) {
	if now-e.lastUsed.Load() > int64(TouchGranularity) {
		e.lastUsed.Store(now)
	}
}

// LastUsed returns when the entry (or an entry with the same key that it
// replaced) was last touched, with TouchGranularity resolution, or the zero
// time if it never was.
func (e *Entry) LastUsed() time.Time {
	n := e.lastUsed.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// LastUsedNano is LastUsed in Unix nanoseconds, 0 if never used.
func (e *Entry) LastUsedNano() int64 {
	return e.lastUsed.Load()
}

// Deadline returns when the cache will next consider the entry expired:
// Expires, or later if the expiry hook extended it. It is the zero time for
// a Permanent entry or one that was never inserted.
func (e *Entry) Deadline() time.Time {
	d := e.deadline.Load()
	if d == 0 || d == math.MaxInt64 {
		return time.Time{}
	}
	return time.Unix(0, d)
}

// Reachable reports the live reachability of RLOC i. It is false when i is
// out of range.
func (e *Entry) Reachable(i int) bool {
	switch {
	case i < 0 || i >= len(e.RLOCs):
		return false
	case i < 64:
		return e.reach.Load()&(1<<uint(i)) != 0
	default:
		return e.reachExt[(i-64)/64].Load()&(1<<uint(i%64)) != 0
	}
}

// ReachableMask returns the live reachability of RLOCs 0..63 as a bit set
// (bit i for RLOCs[i]), for locator selection on the packet path.
func (e *Entry) ReachableMask() uint64 {
	return e.reach.Load()
}

// SetReachable sets the live reachability of RLOC i, as RLOC-probing does,
// without replacing the entry. It is safe for concurrent use and reports
// whether the state changed; it does nothing and returns false when i is out
// of range. The change is not published on the change feed.
func (e *Entry) SetReachable(i int, up bool) bool {
	if i < 0 || i >= len(e.RLOCs) {
		return false
	}
	w := &e.reach
	if i >= 64 {
		w = &e.reachExt[(i-64)/64]
	}
	bit := uint64(1) << uint(i%64)
	for {
		old := w.Load()
		nw := old &^ bit
		if up {
			nw = old | bit
		}
		if nw == old {
			return false
		}
		if w.CompareAndSwap(old, nw) {
			return true
		}
	}
}

// initReach copies the RLOCs' initial reachability into the live bit sets.
func (e *Entry) initReach() {
	var words [4]uint64
	for i := range e.RLOCs {
		if e.RLOCs[i].Reachable {
			words[i/64] |= 1 << uint(i%64)
		}
	}
	e.reach.Store(words[0])
	if len(e.RLOCs) > 64 {
		e.reachExt = new([3]atomic.Uint64)
		for i := range e.reachExt {
			e.reachExt[i].Store(words[i+1])
		}
	}
}

// validate checks the fields a caller provides; it does not look at the
// cache.
func (e *Entry) validate() error {
	k := e.Key()
	p := e.Prefix
	if !p.IsValid() {
		return fmt.Errorf("%w: %v", ErrInvalidPrefix, k)
	}
	if p.Addr().Is4In6() {
		return fmt.Errorf("%w: IPv4-mapped prefix %v, use the IPv4 form", ErrInvalidPrefix, k)
	}
	if p != p.Masked() {
		return fmt.Errorf("%w: %v has host bits set", ErrInvalidPrefix, k)
	}
	if len(e.RLOCs) > MaxRLOCs {
		return fmt.Errorf("%w: %v has %d locators, at most %d", ErrInvalidRLOC, k, len(e.RLOCs), MaxRLOCs)
	}
	for i := range e.RLOCs {
		a := e.RLOCs[i].Addr
		if !a.IsValid() || a.IsUnspecified() {
			return fmt.Errorf("%w: %v locator %d address %v", ErrInvalidRLOC, k, i, a)
		}
		for j := range i {
			if e.RLOCs[j].Addr == a {
				return fmt.Errorf("%w: %v locator %v listed twice", ErrInvalidRLOC, k, a)
			}
		}
	}
	if e.Action > maxAction {
		return fmt.Errorf("%w: %v action %d", ErrInvalidAction, k, uint8(e.Action))
	}
	if e.TTL <= 0 {
		return fmt.Errorf("%w: %v TTL %v", ErrInvalidTTL, k, e.TTL)
	}
	if e.MapVersion > MaxMapVersion {
		return fmt.Errorf("%w: %v map-version %d exceeds 12 bits", ErrInvalidMapVersion, k, e.MapVersion)
	}
	return nil
}
