package cachesync

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Admission of incoming connections (naive, smart). A connection holds a
// slot from its accept until its TLS handshake ends (at most
// HandshakeTimeout): until then nobody knows whether it is a peer. The
// slots are bounded in all (maxPendingHandshakes) and per source
// (maxPendingPerSource: an IPv4 address, or an IPv6 /64), so that one
// source holding idle connections open cannot keep the peers out. A set
// whose listener is full anyway (an attack from many sources) still
// meets: the member refusing a peer's connection dials that peer itself
// (see fallback dialing in transport.go).

// maxPendingHandshakes bounds the incoming connections that have not yet
// authenticated.
const maxPendingHandshakes = 64

// maxPendingPerSource bounds the incoming connections from one source
// (IPv4 address, IPv6 /64) that have not yet authenticated. A peer has
// at most one connection handshaking at a time.
const maxPendingPerSource = 4

// logEvery is the least time between two log lines about the same kind of
// refused connection or message; the counters count every one.
const logEvery = 10 * time.Second

// Why an incoming connection was refused before it could authenticate.
const (
	refusedBusy   = "busy"   // maxPendingHandshakes are handshaking
	refusedSource = "source" // maxPendingPerSource from its source are
)

// sourceKey is what per-source limits count by: the IPv4 address, or the
// IPv6 /64 (one host may hold a whole /64).
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// admission counts the incoming connections handshaking, in all and by
// source. It is used by the accept loop and the handshaking goroutines.
type admission struct {
	mu       sync.Mutex
	total    int
	bySource map[netip.Addr]int
}

// admit takes a slot for a connection from src, or says why it cannot
// ("" when admitted). An admitted connection must be released.
func (a *admission) admit(src netip.Addr) string {
	k := sourceKey(src)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.bySource[k] >= maxPendingPerSource:
		return refusedSource
	case a.total >= maxPendingHandshakes:
		return refusedBusy
	}
	if a.bySource == nil {
		a.bySource = map[netip.Addr]int{}
	}
	a.total++
	a.bySource[k]++
	return ""
}

// release gives back the slot of a connection from src.
func (a *admission) release(src netip.Addr) {
	k := sourceKey(src)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if a.bySource[k]--; a.bySource[k] <= 0 {
		delete(a.bySource, k)
	}
}

// remoteAddr returns the address of a connection's other end.
func remoteAddr(c net.Conn) netip.Addr {
	return addrOf(c.RemoteAddr()).Addr().Unmap()
}

// logLimiter lets one log line of each kind through per logEvery, and
// counts the ones it held back, so that a flood of refused connections or
// bad packets cannot flood the log.
type logLimiter struct {
	mu    sync.Mutex
	kinds map[string]*logKind
}

type logKind struct {
	last       time.Time
	suppressed int
}

// allow reports whether a line of kind may be logged at now, and how many
// were held back since the last one that was.
func (l *logLimiter) allow(kind string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kinds == nil {
		l.kinds = map[string]*logKind{}
	}
	k := l.kinds[kind]
	if k == nil {
		k = &logKind{}
		l.kinds[kind] = k
	}
	if !k.last.IsZero() && now.Sub(k.last) < logEvery {
		k.suppressed++
		return false, 0
	}
	n := k.suppressed
	k.last, k.suppressed = now, 0
	return true, n
}
