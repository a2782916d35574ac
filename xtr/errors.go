package xtr

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/dataplane"
)

// Errors returned by this package. They are matched with errors.Is; wrapped
// errors keep the "xtr:" prefix.
var (
	// ErrInvalidConfig is wrapped by every configuration error.
	ErrInvalidConfig = errors.New("xtr: invalid configuration")
	// ErrNilSender is returned by NewITR and NewETR without a Sender.
	ErrNilSender = errors.New("xtr: nil sender")
	// ErrRunning is returned by Run when another Run is active.
	ErrRunning = errors.New("xtr: already running")
	// ErrBusy is returned when the table of outstanding Map-Requests is
	// full.
	ErrBusy = errors.New("xtr: too many outstanding Map-Requests")
	// ErrNoAnswer is returned by ITR.Resolve when every retry of the
	// Map-Request went unanswered.
	ErrNoAnswer = errors.New("xtr: no Map-Reply")
	// ErrRateLimited is returned by ITR.Resolve when the global
	// Map-Request rate limit refused the request.
	ErrRateLimited = errors.New("xtr: Map-Request rate limit reached")
	// ErrStopped is returned by ITR.Resolve when the ITR stopped before an
	// answer came.
	ErrStopped = errors.New("xtr: stopped")
)

// configError returns an error wrapping ErrInvalidConfig.
func configError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// Sender sends one control-plane datagram from the control port (UDP 4342):
// the same shape as mapserver.Sender, so the daemon's sockets serve both.
// Send must not retain b after it returns and may be called from several
// goroutines at once.
type Sender interface {
	// Send sends b as the payload of one UDP datagram to to.
	Send(b []byte, to netip.AddrPort) error
}

// ControlPort is the LISP control-plane UDP port (RFC 9301).
const ControlPort = 4342

// counters is a fixed set of atomic counters with stable names.
type counters struct {
	names []string
	v     []atomic.Uint64
}

func newCounters(names []string) *counters {
	return &counters{names: names, v: make([]atomic.Uint64, len(names))}
}

func (c *counters) inc(i int)           { c.v[i].Add(1) }
func (c *counters) add(i int, n uint64) { c.v[i].Add(n) }
func (c *counters) get(i int) uint64    { return c.v[i].Load() }

// snapshot returns every counter in the order of names.
func (c *counters) snapshot() []dataplane.Counter {
	out := make([]dataplane.Counter, len(c.names))
	for i, n := range c.names {
		out[i] = dataplane.Counter{Name: n, Value: c.v[i].Load()}
	}
	return out
}

// withDefault returns v, or def when v is zero.
func withDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// clockOrNow returns c, or time.Now when c is nil.
func clockOrNow(c func() time.Time) func() time.Time {
	if c == nil {
		return time.Now
	}
	return c
}

// usableUnicast reports whether a can be sent to.
func usableUnicast(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast()
}

// unmapPort returns ap with an IPv4-mapped address unmapped.
func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
