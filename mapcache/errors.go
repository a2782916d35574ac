package mapcache

import (
	"errors"
	"fmt"
)

// Errors returned by the cache. Validation errors wrap one of these with the
// offending key and value, so test them with errors.Is.
var (
	// ErrNilEntry is returned when Insert is given a nil entry.
	ErrNilEntry = errors.New("mapcache: nil entry")
	// ErrInvalidPrefix is returned for an invalid, unmasked or IPv4-mapped EID prefix.
	ErrInvalidPrefix = errors.New("mapcache: invalid EID prefix")
	// ErrInvalidRLOC is returned for an invalid, unspecified or duplicate
	// locator address, or too many locators.
	ErrInvalidRLOC = errors.New("mapcache: invalid RLOC")
	// ErrInvalidAction is returned for an action RFC 9301 does not define.
	ErrInvalidAction = errors.New("mapcache: invalid action")
	// ErrInvalidTTL is returned for a TTL that is not positive.
	ErrInvalidTTL = errors.New("mapcache: invalid TTL")
	// ErrInvalidMapVersion is returned for a map-version that does not fit in 12 bits.
	ErrInvalidMapVersion = errors.New("mapcache: invalid map-version")
	// ErrExpired is returned when an entry's Expires is not after the cache clock.
	ErrExpired = errors.New("mapcache: entry already expired")
	// ErrEntryReused is returned when an Entry that was already inserted is
	// inserted again; insert a new Entry instead.
	ErrEntryReused = errors.New("mapcache: entry already inserted")
	// ErrStale is matched (errors.Is) by the *StaleError returned when an
	// insert carries an older version than the cached entry.
	ErrStale = errors.New("mapcache: stale version")
	// ErrFull is returned when the cache is at MaxEntries and holds only
	// permanent entries, so nothing can be evicted.
	ErrFull = errors.New("mapcache: full of permanent entries")
	// ErrRunning is returned by Run when another Run is already active.
	ErrRunning = errors.New("mapcache: sweeper already running")
)

// StaleError reports an insert refused because the cache holds a newer
// version of the same key. errors.Is(err, ErrStale) is true for it.
type StaleError struct {
	// Key is the key of the refused entry.
	Key Key
	// Cached is the version in the cache.
	Cached uint64
	// Offered is the version of the refused entry.
	Offered uint64
}

// Error implements error.
func (e *StaleError) Error() string {
	return fmt.Sprintf("mapcache: stale version %d for %v, cache has %d", e.Offered, e.Key, e.Cached)
}

// Is makes errors.Is(err, ErrStale) true.
func (e *StaleError) Is(target error) bool {
	return target == ErrStale
}
