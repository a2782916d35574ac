package mapcache

import (
	"fmt"
	"slices"
	"sync/atomic"
)

// ChangeKind says what happened to an entry.
type ChangeKind uint8

// Kinds of changes on the feed.
const (
	// Added: Entry was inserted under a new key.
	Added ChangeKind = iota + 1
	// Replaced: Entry replaced Old, which had the same key.
	Replaced
	// Deleted: Entry was removed by Delete or DeleteFunc.
	Deleted
	// Expired: Entry was removed by a sweep because its deadline passed.
	Expired
	// Evicted: Entry was removed to keep the cache within MaxEntries.
	Evicted
	// Resync: the subscriber's buffer overflowed and changes were dropped.
	// Entry and Old are nil. The subscriber must rebuild its view from
	// Snapshot (or All) taken after receiving Resync, then keep applying the
	// changes that follow; some of those may already be reflected in the
	// snapshot, and applying them again in order yields the same state.
	Resync
)

var kindNames = [...]string{
	Added:    "added",
	Replaced: "replaced",
	Deleted:  "deleted",
	Expired:  "expired",
	Evicted:  "evicted",
	Resync:   "resync",
}

// String returns the kind's name in lower case.
func (k ChangeKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Change is one event on the change feed.
type Change struct {
	// Kind is what happened.
	Kind ChangeKind
	// Entry is the entry added, or the new entry of a replacement, or the
	// entry removed; nil for Resync.
	Entry *Entry
	// Old is the replaced entry for Replaced, nil otherwise.
	Old *Entry
}

// Subscription receives the cache's changes in the order they were applied.
// The cache never blocks on a subscriber: when the subscriber's buffer is
// full, changes are dropped and a Resync is delivered in their place (a
// slot is reserved for it), as soon as the subscriber reads.
type Subscription struct {
	c   *Cache
	ch  chan Change
	buf int // changes other than Resync are sent only while len(ch) < buf

	// Guarded by the cache's writer lock.
	sent     uint64 // changes sent, Resync included
	resyncAt uint64 // value of sent just after the last Resync was sent
	closed   bool

	dropped atomic.Uint64
}

// Subscribe opens a change-feed subscription with room for buf changes (0 or
// less means Config.FeedBuffer). The subscriber must read C until it calls
// Close.
func (c *Cache) Subscribe(buf int) *Subscription {
	if buf <= 0 {
		buf = c.feedBuffer
	}
	s := &Subscription{c: c, ch: make(chan Change, buf+1), buf: buf}
	c.w.Lock()
	c.w.subs = append(c.w.subs, s)
	c.w.Unlock()
	return s
}

// C returns the channel of changes. It is closed by Close.
func (s *Subscription) C() <-chan Change {
	return s.ch
}

// Dropped returns how many changes were dropped because the buffer was full.
func (s *Subscription) Dropped() uint64 {
	return s.dropped.Load()
}

// Close ends the subscription and closes C. Changes still buffered can be
// read. Close is idempotent and safe to call concurrently with cache
// operations.
func (s *Subscription) Close() {
	c := s.c
	c.w.Lock()
	defer c.w.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if i := slices.Index(c.w.subs, s); i >= 0 {
		c.w.subs = slices.Delete(c.w.subs, i, i+1)
	}
	close(s.ch)
}

// publishLocked offers ch to every subscriber without blocking. It is called
// with the writer lock held, after the change is applied, which is what
// makes a Snapshot taken after receiving Resync include every dropped change.
func (c *Cache) publishLocked(ch Change) {
	for _, s := range c.w.subs {
		if len(s.ch) < s.buf {
			select {
			case s.ch <- ch:
				s.sent++
				continue
			default: // unreachable: the cache is the only sender
			}
		}
		s.dropped.Add(1)
		c.overflow.Add(1)
		// A Resync is due unless one the subscriber has not received yet is
		// still queued: then the snapshot it will take covers this change.
		consumed := s.sent - uint64(len(s.ch))
		if s.resyncAt > consumed {
			continue
		}
		select {
		case s.ch <- Change{Kind: Resync}:
			s.sent++
			s.resyncAt = s.sent
		default: // unreachable: the reserved slot is free when no Resync is queued
		}
	}
}
