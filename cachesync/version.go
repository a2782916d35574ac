package cachesync

import (
	"hash/fnv"
	"sync/atomic"
	"time"
)

// Version layout: a map-cache Version made by a VersionClock is a hybrid
// logical clock reading in microseconds in its top 52 bits (enough until the
// year 2112) and the origin member's ID in its low 12 bits.
const (
	originBits = 12
	// MaxOriginID is the largest member origin ID.
	MaxOriginID = 1<<originBits - 1
	originMask  = MaxOriginID
	// maxAhead bounds how far ahead of the local clock a version seen
	// from a peer may pull this member's clock; a version further ahead
	// (a peer with a wild clock) is still applied but not followed.
	maxAhead = time.Hour
)

// VersionClock hands out map-cache versions ("newer wins") for the mappings
// this member learns: a hybrid logical clock, max(local time in
// microseconds, highest time seen + 1), tagged with the member's origin ID
// in the low bits so that two members never produce the same version and
// ties are broken by origin. The ITR stamps every Map-Reply it inserts with
// Next, so that a mapping learned later anywhere in the set wins over an
// older one whatever order they arrive in. It is safe for concurrent use.
type VersionClock struct {
	origin uint64
	now    func() time.Time
	last   atomic.Uint64 // last version handed out or observed (time part)
}

// NewVersionClock returns a clock for the member with the given origin ID
// (1..MaxOriginID; 0 and larger values are folded into that range), reading
// time from now (nil: time.Now).
func NewVersionClock(origin uint16, now func() time.Time) *VersionClock {
	if now == nil {
		now = time.Now
	}
	o := uint64(origin) & originMask
	if o == 0 {
		o = 1
	}
	return &VersionClock{origin: o, now: now}
}

// OriginID derives a member's origin ID from its name: a hash folded into
// 1..MaxOriginID. Members of one set must have distinct IDs; a collision is
// detected at the handshake and logged (see Member).
func OriginID(name string) uint16 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return uint16(h.Sum32()%MaxOriginID + 1)
}

// Origin returns the clock's origin ID.
func (c *VersionClock) Origin() uint16 { return uint16(c.origin) }

// VersionOrigin returns the origin ID carried by a version.
func VersionOrigin(v uint64) uint16 { return uint16(v & originMask) }

// VersionTime returns the time carried by a version.
func VersionTime(v uint64) time.Time { return time.UnixMicro(int64(v >> originBits)) }

// Next returns a version newer than every version this clock has handed
// out or observed.
func (c *VersionClock) Next() uint64 {
	phys := uint64(max(c.now().UnixMicro(), 0))
	for {
		old := c.last.Load()
		t := max(phys, old>>originBits+1)
		if t >= 1<<(64-originBits) { // saturate rather than wrap
			t = 1<<(64-originBits) - 1
		}
		v := t<<originBits | c.origin
		if c.last.CompareAndSwap(old, v) {
			return v
		}
	}
}

// Observe records a version seen from a peer, so that the next local
// version is newer. Versions more than an hour ahead of the local clock are
// not followed.
func (c *VersionClock) Observe(v uint64) {
	limit := uint64(max(c.now().Add(maxAhead).UnixMicro(), 0))
	t := v >> originBits
	if t > limit {
		return
	}
	for {
		old := c.last.Load()
		if t <= old>>originBits {
			return
		}
		if c.last.CompareAndSwap(old, t<<originBits|c.origin) {
			return
		}
	}
}
