package mapserver

import (
	"encoding/binary"
	"hash/fnv"
	"time"

	"github.com/lispd/lispd/wire"
)

// Replayed Map-Registers. RFC 9301 Map-Registers carry no timestamp, and
// their nonce is random: a byte-identical copy of an old, authenticated
// Map-Register would put back what it registered (an old RLOC). The
// Map-Server refuses a Map-Register that was already superseded, and only
// that: an identical retransmission of the latest register of a
// registration is accepted (an ETR that did not get its Map-Notify may
// send the same bytes again), and so is a register with nonce 0 (sent by
// ETRs that want no Map-Notify, whose periodic registers can be
// byte-identical).
//
// A register is identified by a digest: the first 64 bits of its
// authentication data, an HMAC over the whole message under the site's
// key, which no one without the key can make collide. Each registration
// remembers the digest and nonce of the last register that refreshed it.
// When a later register of the same xTR supersedes it (a refresh with a new
// nonce, a change, a withdrawal), or the registration goes (withdrawn,
// expired, replaced), the old digest enters a bounded memory of superseded
// digests, in one of two FIFO queues: registers whose content was then
// changed or removed (kept long: replayChangeMemory of them, pushed only by
// changes), and mere refreshes of what is still registered
// (replayRefreshMemory, pushed every register interval by every xTR). A
// register whose digest is in that memory is a replay unless it is the
// latest of every registration it refreshes and withdraws only what is
// gone; a register that is a copy of another xTR's latest (a replay from
// another address, for xTRs known by their address) is one too. The
// memory is bounded, so a copy of a register superseded long ago (after
// more than replayRefreshMemory later registers in the whole Map-Server)
// can get through; with a few thousand registrations that is weeks.
//
// lispd's ETRs leave no such window: their nonces count nanoseconds of
// wall-clock time, so they increase (RFC 9301 section 5.6 leaves the nonce
// of a Map-Register free, "may be [used] in the future as part of an
// anti-replay solution"). A nonce that reads as a time within
// nonceClockWindow of the Map-Server's clock is taken as such, and a
// register whose nonce is older than the last one accepted for the same
// registration, or more than nonceReorder older than the newest of its
// xTR-ID, is a replay. A random nonce reads as such a time with a
// probability of about 3e-4; the rule only refuses when both nonces
// compared do, and a refused ETR retries with a fresh nonce. An ETR whose
// clock went back (a restart after a clock step, a virtual machine resumed
// from a snapshot) would be refused until its clock caught up; so when an
// xTR-ID has had only such refusals for nonceHealAfter, its nonces are
// taken to have gone back: the register is accepted and the order starts
// again from it (register_nonce_resets). A replayer gains nothing from that
// while the xTR registers: any register accepted meanwhile starts the wait
// again.

// Replay memory bounds.
const (
	replayChangeMemory  = 1 << 16
	replayRefreshMemory = 1 << 18
	// nonceClockWindow is how far from the Map-Server's clock a nonce
	// may be and still be taken for a time.
	nonceClockWindow = 30 * 24 * time.Hour
	// nonceReorder is how much older than the newest register of its
	// xTR-ID a register may be (the registers of one round, reordered on
	// the way).
	nonceReorder = 30 * time.Second
	// xtrHighTTL is how long the newest nonce of an xTR-ID is kept after
	// its last register.
	xtrHighTTL = 24 * time.Hour
	// xtrHighSweep is how often those are looked through.
	xtrHighSweep = time.Hour
	// nonceHealAfter is how long an xTR-ID's registers may be refused for
	// their nonces alone, with none accepted, before its nonces are taken
	// to have gone back in time.
	nonceHealAfter = time.Minute
)

// replayKind is one of the superseded-digest queues.
type replayKind uint8

const (
	replayRefresh replayKind = iota // superseded by a refresh of the same content
	replayChange                    // its content was changed or removed since
)

// digestQueue is a bounded FIFO of digests.
type digestQueue struct {
	buf  []uint64
	head int // oldest element once full
}

// push appends d and returns the element it evicts, if any.
func (q *digestQueue) push(d uint64, capacity int) (uint64, bool) {
	if len(q.buf) < capacity {
		q.buf = append(q.buf, d)
		return 0, false
	}
	old := q.buf[q.head]
	q.buf[q.head] = d
	q.head = (q.head + 1) % len(q.buf)
	return old, true
}

// each calls fn with the digests, oldest first.
func (q *digestQueue) each(fn func(uint64)) {
	for _, d := range q.buf[q.head:] {
		fn(d)
	}
	for _, d := range q.buf[:q.head] {
		fn(d)
	}
}

// nonceMark is the newest time-like nonce accepted from an xTR-ID.
type nonceMark struct {
	nonce uint64
	seen  int64 // Unix nanoseconds of its register
	// refused is when its registers began to be refused for their nonces
	// alone (Unix nanoseconds; 0: they are not).
	refused int64
}

// replayMemory is what the Map-Server remembers of superseded registers.
// Guarded by Server.regMu.
type replayMemory struct {
	// seen maps a superseded digest to the queues holding it (bit
	// 1<<kind).
	seen     map[uint64]uint8
	q        [2]digestQueue
	capacity [2]int
	// high is the newest time-like nonce per xTR-ID.
	high      map[wire.XTRID]nonceMark
	nextSweep time.Time
}

func newReplayMemory() replayMemory {
	return replayMemory{
		seen:     make(map[uint64]uint8),
		capacity: [2]int{replayRefresh: replayRefreshMemory, replayChange: replayChangeMemory},
		high:     make(map[wire.XTRID]nonceMark),
	}
}

// remember records d as superseded.
func (r *replayMemory) remember(d uint64, k replayKind) {
	if d == 0 {
		return
	}
	bit := uint8(1) << k
	m := r.seen[d]
	if m&bit != 0 {
		return
	}
	r.seen[d] = m | bit
	old, evicted := r.q[k].push(d, r.capacity[k])
	if !evicted {
		return
	}
	if mm := r.seen[old] &^ bit; mm != 0 {
		r.seen[old] = mm
	} else {
		delete(r.seen, old)
	}
}

// superseded reports whether d was superseded.
func (r *replayMemory) superseded(d uint64) bool {
	_, ok := r.seen[d]
	return ok
}

// noteNonce records the nonce of an accepted register of xTR-ID id; reset
// starts the order again from it.
func (r *replayMemory) noteNonce(id wire.XTRID, nonce uint64, now time.Time, reset bool) {
	h := r.high[id]
	if reset {
		h.nonce = 0
	}
	r.high[id] = nonceMark{nonce: max(h.nonce, nonce), seen: now.UnixNano()}
}

// nonceRefusal records that a register of xTR-ID id would be refused for
// its nonce alone, and reports whether the xTR's nonces are to be taken as
// gone back instead (see the top of this file).
func (r *replayMemory) nonceRefusal(id wire.XTRID, now time.Time) (heal bool) {
	h, ok := r.high[id]
	if !ok {
		return false
	}
	if h.refused == 0 {
		h.refused = now.UnixNano()
		r.high[id] = h
		return false
	}
	return now.Sub(time.Unix(0, h.refused)) >= nonceHealAfter
}

// sweep forgets the newest nonces of xTR-IDs silent for xtrHighTTL.
func (r *replayMemory) sweep(now time.Time) {
	if now.Before(r.nextSweep) {
		return
	}
	r.nextSweep = now.Add(xtrHighSweep)
	cutoff := now.Add(-xtrHighTTL).UnixNano()
	for id, h := range r.high {
		if h.seen < cutoff {
			delete(r.high, id)
		}
	}
}

// registerDigest returns the digest of an authenticated Map-Register: the
// first 64 bits of its authentication data.
func registerDigest(m *wire.MapRegister) uint64 {
	if len(m.AuthData) >= 8 {
		return binary.BigEndian.Uint64(m.AuthData)
	}
	h := fnv.New64a()
	h.Write(m.AuthData)
	return h.Sum64()
}

// timeNonce reports whether nonce reads as a wall-clock time in Unix
// nanoseconds near now (an increasing nonce, as lispd's ETRs send).
func timeNonce(nonce uint64, now time.Time) bool {
	if nonce == 0 || nonce >= 1<<63 {
		return false
	}
	d := time.Duration(int64(nonce) - now.UnixNano())
	return d > -nonceClockWindow && d < nonceClockWindow
}

// replayVerdict is what replayLocked found.
type replayVerdict uint8

const (
	notReplay replayVerdict = iota
	isReplay
	// nonceReset: refused for its nonce alone long enough that the
	// xTR's nonces are taken to have gone back; accept it.
	nonceReset
)

// replayLocked tells whether the Map-Register m (digest d) from xTR x,
// whose records have the EID-prefixes keys, is a replay: see the comment
// at the top of this file. regMu must be held.
func (s *Server) replayLocked(m *wire.MapRegister, keys []EIDPrefix, x xtrKey, d uint64, now time.Time) replayVerdict {
	if m.Nonce == 0 {
		return notReplay
	}
	timed := x.hasID && timeNonce(m.Nonce, now)
	older := false
	if timed {
		if h, ok := s.replay.high[x.id]; ok && m.Nonce+uint64(nonceReorder) < h.nonce {
			older = true
		}
	}
	superseded := s.replay.superseded(d)
	for i := range m.Records {
		withdraw := m.Records[i].RecordTTL == 0
		e := s.reg.entries[keys[i]]
		var reg *registration
		if e != nil {
			_, reg = e.find(x)
		}
		switch {
		case superseded && withdraw && reg != nil:
			return isReplay
		case superseded && !withdraw && (reg == nil || reg.digest != d):
			return isReplay
		case reg != nil && timed && timeNonce(reg.nonce, now) && m.Nonce < reg.nonce:
			older = true
		}
		if e != nil && !withdraw {
			for _, r := range e.regs {
				if r.xtr != x && r.digest == d {
					return isReplay
				}
			}
		}
	}
	switch {
	case !older:
		return notReplay
	case s.replay.nonceRefusal(x.id, now):
		return nonceReset
	}
	return isReplay
}
