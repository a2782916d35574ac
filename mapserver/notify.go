package mapserver

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/lispd/lispd/wire"
)

// Unsolicited Map-Notify (RFC 9301 section 5.7): when the registered
// RLOC-set of an EID-prefix changes, the other xTRs that registered it are
// told with a Map-Notify they must acknowledge with a Map-Notify-Ack
// carrying the same nonce. The Map-Server retransmits the Map-Notify every
// NotifyInterval until a valid (authenticated) Map-Notify-Ack arrives, and
// gives up after NotifyRetries retransmissions. The Map-Notify goes to the
// address and port each xTR sent its last Map-Register from: its control
// socket, the one place it is known to listen.
//
// An xTR that lets maxUnackedNotifies unsolicited Map-Notifies in a row go
// unacknowledged (each after all its retransmissions) is not sent any more
// (map_notify_suppressed) until it acknowledges one or registers again: a
// registration left behind by a renumbered or dead ETR costs a few
// datagrams, not four per change until it expires.

// maxUnackedNotifies is how many unsolicited Map-Notifies in a row an xTR
// may leave unacknowledged before it is sent no more.
const maxUnackedNotifies = 3

// pendKey identifies what an unsolicited Map-Notify is about: one prefix, one
// target xTR. A newer change for the same pair replaces the pending one.
type pendKey struct {
	prefix EIDPrefix
	xtr    xtrKey
}

// notifyJob is an unsolicited Map-Notify to send.
type notifyJob struct {
	site   *site
	key    pendKey
	target netip.AddrPort
	// record is the published merged record; shared read-only.
	record wire.EIDRecord
	siteID uint64
}

// pendingNotify is an unsolicited Map-Notify awaiting its Map-Notify-Ack.
type pendingNotify struct {
	nonce     uint64
	key       pendKey
	site      string
	keyID     uint8
	algorithm wire.AlgorithmID
	target    netip.AddrPort
	msg       []byte // signed; immutable once created
	sent      int    // retransmissions so far
	due       time.Time
}

// notifier holds the outstanding unsolicited Map-Notify messages.
type notifier struct {
	mu      sync.Mutex
	byNonce map[uint64]*pendingNotify
	byKey   map[pendKey]*pendingNotify
	// unacked counts, per xTR, the unsolicited Map-Notifies in a row it
	// left unacknowledged; an xTR is in it only while it has some.
	unacked map[xtrKey]uint8
}

func newNotifier() notifier {
	return notifier{
		byNonce: make(map[uint64]*pendingNotify),
		byKey:   make(map[pendKey]*pendingNotify),
		unacked: make(map[xtrKey]uint8),
	}
}

// resetUnacked forgets the unacknowledged Map-Notifies of x: it answered
// or registered again.
func (n *notifier) resetUnacked(x xtrKey) {
	n.mu.Lock()
	delete(n.unacked, x)
	n.mu.Unlock()
}

// cancel forgets the pending Map-Notify for k, if any.
func (n *notifier) cancel(k pendKey) {
	n.mu.Lock()
	if p := n.byKey[k]; p != nil {
		delete(n.byKey, k)
		delete(n.byNonce, p.nonce)
	}
	n.mu.Unlock()
}

// add stores p, replacing the pending Map-Notify with the same key, and
// draws a nonce no other pending Map-Notify uses.
func (n *notifier) add(p *pendingNotify) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if old := n.byKey[p.key]; old != nil {
		delete(n.byNonce, old.nonce)
	}
	n.byKey[p.key] = p
	n.byNonce[p.nonce] = p
}

// pending returns the number of outstanding Map-Notify messages.
func (n *notifier) pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.byNonce)
}

// prepareNotifiesLocked builds, signs and records unsolicited Map-Notify
// messages; the caller sends them with sendNotifies once it has released
// regMu. Recording them under regMu means a registration removed later
// cancels them reliably. regMu must be held.
func (s *Server) prepareNotifiesLocked(jobs []notifyJob) []*pendingNotify {
	if len(jobs) == 0 {
		return nil
	}
	now := s.clock.Now()
	// Only the last change of a prefix for a target counts.
	last := make(map[pendKey]int, len(jobs))
	for i := range jobs {
		last[jobs[i].key] = i
	}
	out := make([]*pendingNotify, 0, len(last))
	for i := range jobs {
		j := &jobs[i]
		if last[j.key] != i {
			continue
		}
		s.notify.mu.Lock()
		silent := s.notify.unacked[j.key.xtr] >= maxUnackedNotifies
		s.notify.mu.Unlock()
		if silent {
			s.ctr.inc(cNotifySuppressed)
			continue
		}
		nonce := s.freshNonce()
		n := wire.MapNotify{
			XTRIDPresent: j.key.xtr.hasID,
			Nonce:        nonce,
			KeyID:        j.site.keyID,
			AlgorithmID:  j.site.algorithm,
			AuthData:     zeroAuth[:j.site.algorithm.AuthLen(s.cfg.TruncatedAuth)],
			Records:      []wire.EIDRecord{j.record},
			XTRID:        j.key.xtr.id,
			SiteID:       j.siteID,
		}
		msg, err := n.AppendBinary(nil)
		if err == nil {
			err = signAuth(msg, j.site.key)
		}
		if err != nil {
			s.warn("cannot build unsolicited map-notify", "site", j.site.name, "eid", j.key.prefix.String(), "err", err)
			continue
		}
		p := &pendingNotify{
			nonce:     nonce,
			key:       j.key,
			site:      j.site.name,
			keyID:     j.site.keyID,
			algorithm: j.site.algorithm,
			target:    j.target,
			msg:       msg,
			due:       now.Add(s.cfg.NotifyInterval),
		}
		s.notify.add(p)
		out = append(out, p)
	}
	return out
}

// sendNotifies sends the first transmission of prepared Map-Notify
// messages and wakes Run for their retransmission. It must be called
// without regMu held.
func (s *Server) sendNotifies(ps []*pendingNotify) {
	if len(ps) == 0 {
		return
	}
	for _, p := range ps {
		s.ctr.inc(cNotifySent)
		s.send(p.msg, p.target)
	}
	s.poke()
}

// freshNonce returns a random nonce not used by a pending Map-Notify.
func (s *Server) freshNonce() uint64 {
	s.notify.mu.Lock()
	defer s.notify.mu.Unlock()
	for {
		n := rand.Uint64()
		if _, used := s.notify.byNonce[n]; !used && n != 0 {
			return n
		}
	}
}

// retransmit resends the unacknowledged Map-Notify messages due at now,
// gives up on those that used all their retransmissions, and returns when
// the next one is due (zero if none).
func (s *Server) retransmit(now time.Time) time.Time {
	var (
		resend []*pendingNotify
		next   time.Time
	)
	s.notify.mu.Lock()
	for nonce, p := range s.notify.byNonce {
		if p.due.After(now) {
			if next.IsZero() || p.due.Before(next) {
				next = p.due
			}
			continue
		}
		if p.sent >= s.cfg.NotifyRetries {
			delete(s.notify.byNonce, nonce)
			delete(s.notify.byKey, p.key)
			if n := s.notify.unacked[p.key.xtr]; n < maxUnackedNotifies {
				s.notify.unacked[p.key.xtr] = n + 1
			}
			s.ctr.inc(cNotifyGivenUp)
			if s.debugging() {
				s.log.Debug("map-notify not acknowledged, giving up", "site", p.site, "eid", p.key.prefix.String(), "to", p.target)
			}
			continue
		}
		p.sent++
		p.due = now.Add(s.cfg.NotifyInterval)
		if next.IsZero() || p.due.Before(next) {
			next = p.due
		}
		resend = append(resend, p)
	}
	s.notify.mu.Unlock()
	for _, p := range resend {
		s.ctr.inc(cNotifyRetransmitted)
		s.send(p.msg, p.target)
	}
	return next
}

// handleNotifyAck processes a Map-Notify-Ack: when its nonce is that of an
// outstanding unsolicited Map-Notify and it authenticates with the site's
// key, the Map-Notify is acknowledged and no longer retransmitted.
func (s *Server) handleNotifyAck(m *wire.MapNotifyAck, raw []byte, from netip.AddrPort) {
	if s.handlePubSubAck(m.Nonce, m.KeyID, m.AlgorithmID, raw, from) {
		return
	}
	s.notify.mu.Lock()
	p := s.notify.byNonce[m.Nonce]
	s.notify.mu.Unlock()
	if p == nil {
		s.ctr.inc(cNotifyAckUnknown)
		return
	}
	site := s.state.Load().sites.byName[p.site]
	if site == nil {
		// The site was removed; SetSites cancelled or will cancel it.
		s.ctr.inc(cNotifyAckUnknown)
		return
	}
	// The ack copies the Key ID and algorithm of the Map-Notify; it is
	// checked with the site's current key.
	if m.KeyID != p.keyID || m.AlgorithmID != p.algorithm {
		s.ctr.inc(cNotifyAckAuthFailure)
		return
	}
	if err := verifyAuth(raw, site.key); err != nil {
		s.ctr.inc(cNotifyAckAuthFailure)
		s.warn("map-notify-ack failed authentication", "site", site.name, "reason", wire.ErrorReason(err))
		return
	}
	s.notify.mu.Lock()
	acked := s.notify.byNonce[m.Nonce] == p
	if acked {
		delete(s.notify.byNonce, p.nonce)
		delete(s.notify.byKey, p.key)
		delete(s.notify.unacked, p.key.xtr)
	}
	s.notify.mu.Unlock()
	if acked {
		s.ctr.inc(cNotifyAcked)
	} else {
		s.ctr.inc(cNotifyAckUnknown)
	}
}
