package xtr

import (
	"cmp"
	"container/heap"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/gaissmai/bart"

	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

// Publish/subscribe (RFC 9437), the ITR's side.
//
// With ITRConfig.Subscribe, the ITR's Map-Requests (misses, refreshes, SMR-
// invoked ones and Resolve; not RLOC-probes) set the N bit on their record
// and the I bit with the xTR-ID and site-ID. A Map-Server that accepts the
// subscription answers with a Map-Notify carrying the request's nonce and
// the subscribed mapping (the confirmation); the ITR installs it like a
// Map-Reply (Source mapcache.FromPubSub) and records a subscription whose
// prefix is the record's (the registered prefix holding the EID asked for,
// or the negative prefix), not the EID asked for. Later changes of mappings
// that overlap the subscription come as Map-Notifies too (publications):
// a record is installed, or deleted when its Record TTL is 0. A Map-Notify
// with no locators and action Drop/Auth-Failure is the Map-Server's notice
// that it dropped the subscription (its Map-Notifies went unacknowledged):
// the subscription is forgotten and the cached mapping kept. Every accepted
// Map-Notify is acknowledged with a Map-Notify-Ack of the same content to
// its source, signed with the pub/sub key.
//
// A Map-Server that does not take the subscription answers as without the N
// bit; so does an ETR the request is forwarded to (a site that does not
// proxy-reply). The ITR accepts that Map-Reply and the confirmation in
// either order: the first installs; a Map-Reply after the confirmation is
// not installed (pubsub_late_replies) and neither is counted unsolicited; a
// confirmation after the Map-Reply still installs, so that the map-cache
// holds what later publications update. A subscribing request answered by
// a Map-Reply and no confirmation within the request window counts as
// refused; the ITR asks again at its next refresh.
//
// Authentication (RFC 9437 section 7.1): Map-Notifies must carry the
// configured Key ID and algorithm and verify with PubSubKey; with
// PubSubUnauthenticated an unsigned one (Algorithm ID 0, as lispers.net's
// Map-Server sends) is accepted too, and acknowledged unsigned.
//
// Nonces (RFC 9437 sections 5 and 6). Each subscription remembers the nonce
// of the last subscribing request sent for it and of the last Map-Notify
// accepted for it. A subscribing request for an EID a subscription covers
// uses the larger plus one; without one, the ITR's first uses a random
// value in [1, 2^62), the next ones a value above every nonce the ITR used
// before (so that a Map-Server still holding a subscription this ITR forgot
// does not drop the request as a replay). A publication is accepted when
// its nonce is greater than the last accepted one of a subscription it
// overlaps (or equal, with PubSubUnauthenticated: lispers.net repeats it);
// the one with exactly the last accepted nonce is a retransmission whose
// ack was lost, acknowledged again and not installed; an older one is a
// replay, dropped.
//
// Lifetime. Every SubscribeRefresh (spread out by a little jitter and by a
// per-tick budget of half the Map-Request rate) a subscription whose
// map-cache entry (of exactly its prefix) was used within the interval is
// renewed with a subscribing Map-Request through the usual rate-limited
// path: this is how a Map-Server that lost its subscriptions (a restart)
// gets them back. A subscription whose prefix has had no map-cache entry for
// an interval is forgotten. There are at most as many subscriptions as the
// map-cache holds entries; beyond, a confirmation is installed and
// acknowledged but not recorded (subscriptions_overflow), and requests stop
// subscribing for EIDs no subscription covers.
//
// The state is guarded by ITR.mu; MACs are computed and datagrams sent
// without it.

// maxNonceGap bounds how far a publication's nonce may be from a
// subscription's for a Map-Notify to be taken as the ITR's (OwnsNotify): a
// Map-Server adds one per publication, while the nonce of another
// Map-Notify (one acknowledging the ETR's Map-Register, say) is random.
const maxNonceGap = 1 << 32

// Subscription is one of the ITR's pub/sub subscriptions, as
// ITR.Subscriptions shows it.
type Subscription struct {
	// InstanceID and Prefix are the subscribed EID-prefix: the prefix of
	// the Map-Server's confirmation record.
	InstanceID uint32
	Prefix     netip.Prefix
	// MapServer is the source of the last accepted Map-Notify.
	MapServer netip.Addr
	// Nonce is the larger of the nonce of the last subscribing request
	// sent for it and that of the last Map-Notify accepted for it; the
	// next subscribing request uses Nonce+1.
	Nonce uint64
	// Subscribed is when the Map-Server last confirmed it.
	Subscribed time.Time
	// LastNotify is when a Map-Notify for it was last accepted.
	LastNotify time.Time
	// Notifies counts the Map-Notifies accepted for it (the confirmations
	// included).
	Notifies uint64
}

// subscription is the state of one subscription, guarded by ITR.mu.
type subscription struct {
	key          mapcache.Key
	ms           netip.Addr
	sent         uint64 // nonce of the last subscribing request sent for it
	accepted     uint64 // nonce of the last Map-Notify accepted for it
	subscribed   time.Time
	lastNotify   time.Time
	notifies     uint64
	missingSince time.Time // first refresh that found no map-cache entry
	nextRefresh  time.Time
	idx          int // in pubsubState.due
}

// subAnswer is a subscribing request answered by its Map-Reply or its
// confirmation, remembered for a request window so that the other answer
// is recognized (and a missing confirmation counted as a refusal).
type subAnswer struct {
	key       reqKey
	until     time.Time
	replied   bool // its Map-Reply came
	confirmed bool // its confirmation came
}

// pubsubState is the ITR's pub/sub state, guarded by ITR.mu.
type pubsubState struct {
	byIID     map[uint32]*bart.Table[*subscription]
	count     int
	max       int
	due       subHeap // every subscription, by nextRefresh
	answered  map[uint64]*subAnswer
	answeredQ []uint64 // answered's nonces in the order they were added
	floor     uint64   // the largest nonce sent or accepted for a subscription
}

func (ps *pubsubState) init(maxSubs int) {
	ps.byIID = map[uint32]*bart.Table[*subscription]{}
	ps.answered = map[uint64]*subAnswer{}
	ps.max = maxSubs
}

// get returns the subscription of exactly k, or nil.
func (ps *pubsubState) get(k mapcache.Key) *subscription {
	tbl := ps.byIID[k.InstanceID]
	if tbl == nil {
		return nil
	}
	s, _ := tbl.Get(k.Prefix)
	return s
}

// cover returns the most specific subscription covering pfx in iid, or nil.
func (ps *pubsubState) cover(iid uint32, pfx netip.Prefix) *subscription {
	tbl := ps.byIID[iid]
	if tbl == nil {
		return nil
	}
	for _, s := range tbl.Supernets(pfx) {
		return s
	}
	return nil
}

// eachOverlapping calls f for every subscription whose prefix covers pfx or
// lies in it, until f returns false.
func (ps *pubsubState) eachOverlapping(iid uint32, pfx netip.Prefix, f func(*subscription) bool) {
	tbl := ps.byIID[iid]
	if tbl == nil {
		return
	}
	for _, s := range tbl.Subnets(pfx) {
		if !f(s) {
			return
		}
	}
	for p, s := range tbl.Supernets(pfx) {
		if p != pfx && !f(s) {
			return
		}
	}
}

// overlaps reports whether a subscription overlaps pfx in iid.
func (ps *pubsubState) overlaps(iid uint32, pfx netip.Prefix) bool {
	tbl := ps.byIID[iid]
	return tbl != nil && tbl.OverlapsPrefix(pfx)
}

// add records s, due for a refresh at s.nextRefresh.
func (ps *pubsubState) add(s *subscription) {
	tbl := ps.byIID[s.key.InstanceID]
	if tbl == nil {
		tbl = new(bart.Table[*subscription])
		ps.byIID[s.key.InstanceID] = tbl
	}
	tbl.Insert(s.key.Prefix, s)
	ps.count++
	heap.Push(&ps.due, s)
}

// remove forgets s.
func (ps *pubsubState) remove(s *subscription) {
	if ps.get(s.key) != s {
		return
	}
	tbl := ps.byIID[s.key.InstanceID]
	tbl.Delete(s.key.Prefix)
	if tbl.Size() == 0 {
		delete(ps.byIID, s.key.InstanceID)
	}
	ps.count--
	if s.idx >= 0 && s.idx < len(ps.due) && ps.due[s.idx] == s {
		heap.Remove(&ps.due, s.idx)
	}
}

// schedule sets when s is next refreshed: an interval from now, less up to
// a tenth of it so that subscriptions made together spread out.
func (ps *pubsubState) schedule(s *subscription, now time.Time, every time.Duration) {
	jitter := time.Duration(0)
	if every >= 10 {
		jitter = rand.N(every / 10)
	}
	s.nextRefresh = now.Add(every - jitter)
	if s.idx >= 0 && s.idx < len(ps.due) && ps.due[s.idx] == s {
		heap.Fix(&ps.due, s.idx)
	}
}

// subHeap orders subscriptions by nextRefresh (container/heap).
type subHeap []*subscription

func (h subHeap) Len() int           { return len(h) }
func (h subHeap) Less(a, b int) bool { return h[a].nextRefresh.Before(h[b].nextRefresh) }
func (h subHeap) Swap(a, b int) {
	h[a], h[b] = h[b], h[a]
	h[a].idx, h[b].idx = a, b
}
func (h *subHeap) Push(x any) {
	s := x.(*subscription)
	s.idx = len(*h)
	*h = append(*h, s)
}
func (h *subHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.idx = -1
	return s
}

// absDiff returns |a-b|.
func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// nonceNear reports whether n may be a Map-Notify nonce for s.
func nonceNear(n uint64, s *subscription) bool {
	return absDiff(n, s.accepted) <= maxNonceGap || absDiff(n, s.sent) <= maxNonceGap
}

// subscribeNonceLocked returns the nonce of the first transmission of the
// subscribing request p (see the top of this file), unique among the
// outstanding requests. When the subscriptions are at their bound and none
// covers p's EID, p stops subscribing and gets a plain random nonce.
// ITR.mu is held.
func (i *ITR) subscribeNonceLocked(p *pending) uint64 {
	ps := &i.ps
	pfx, err := p.key.eid.Prefix(int(p.maskLen))
	var s *subscription
	if err == nil {
		s = ps.cover(p.key.iid, pfx)
	}
	var n uint64
	switch {
	case s != nil:
		n = max(s.sent, s.accepted) + 1
	case ps.count >= ps.max:
		p.subscribe = false
		return i.newNonceLocked()
	case ps.floor == 0:
		n = randomNonce() >> 2 // [0, 2^62); 0 is skipped below
	default:
		n = ps.floor + 1 + randomNonce()>>48
	}
	for n == 0 || i.nonceInUseLocked(n) {
		n++
	}
	if s != nil {
		s.sent = n
	}
	ps.floor = max(ps.floor, n)
	return n
}

// noteAnswerLocked remembers that the subscribing request p was answered,
// by its Map-Reply (replied) or its confirmation, for a request window.
// ITR.mu is held.
func (i *ITR) noteAnswerLocked(p *pending, now time.Time, replied bool) {
	ps := &i.ps
	if p.nonce == 0 {
		return
	}
	if a := ps.answered[p.nonce]; a != nil {
		a.replied = a.replied || replied
		a.confirmed = a.confirmed || !replied
		return
	}
	st := i.settings.Load()
	if len(ps.answered) >= max(st.maxPending, 1) {
		return
	}
	ps.answered[p.nonce] = &subAnswer{key: p.key, until: now.Add(st.requestWindow()), replied: replied, confirmed: !replied}
	ps.answeredQ = append(ps.answeredQ, p.nonce)
}

// lateReplyLocked reports whether nonce is that of a subscribing request
// already confirmed and not yet answered by a Map-Reply, and marks it
// answered. ITR.mu is held.
func (i *ITR) lateReplyLocked(nonce uint64) bool {
	a := i.ps.answered[nonce]
	if a == nil || !a.confirmed || a.replied {
		return false
	}
	a.replied = true
	return true
}

// expireAnswersLocked forgets the answered subscribing requests whose
// window passed, counting those answered by a Map-Reply and never
// confirmed as refused. ITR.mu is held.
func (i *ITR) expireAnswersLocked(now time.Time) {
	ps := &i.ps
	q := ps.answeredQ
	k := 0
	for ; k < len(q); k++ {
		a := ps.answered[q[k]]
		if a == nil {
			continue
		}
		if now.Before(a.until) {
			break
		}
		if a.replied && !a.confirmed {
			i.ctr.inc(iSubsRefused)
		}
		delete(ps.answered, q[k])
	}
	if k > 0 {
		ps.answeredQ = q[:copy(q, q[k:])]
	}
}

// isRemovalNotice reports whether rec is the Map-Server's notice that it
// removed a subscription (RFC 9437 section 5): no locators, action
// Drop/Auth-Failure.
func isRemovalNotice(rec *wire.EIDRecord) bool {
	return len(rec.Locators) == 0 && rec.Action == wire.DropAuthFailure
}

// nonceOwnedLocked reports whether nonce is that of a subscribing request
// outstanding or answered within its window. ITR.mu is held.
func (i *ITR) nonceOwnedLocked(nonce uint64) bool {
	if p := i.byNonce[nonce]; p != nil && p.subscribe {
		return true
	}
	_, ok := i.ps.answered[nonce]
	return ok
}

// ownsLocked reports whether a Map-Notify with nonce and recs is the ITR's
// (authentication aside): a confirmation (nonceOwnedLocked), or a first
// record overlapping a subscription whose nonce is near. ITR.mu is held.
func (i *ITR) ownsLocked(nonce uint64, recs []wire.EIDRecord) bool {
	if i.nonceOwnedLocked(nonce) {
		return true
	}
	if i.ps.count == 0 || len(recs) == 0 {
		return false
	}
	iid, pfx, ok := recs[0].Prefix()
	if !ok {
		return false
	}
	near := false
	i.ps.eachOverlapping(iid, pfx, func(s *subscription) bool {
		near = nonceNear(nonce, s)
		return !near
	})
	return near
}

// OwnsNotify reports whether the Map-Notify pkt is the ITR's, for a daemon
// that receives the ITR's and the ETR's control messages on one socket: it
// is when its nonce is that of a subscribing Map-Request of the ITR
// (outstanding, or answered within the request window: a confirmation), or
// when the ITR has subscriptions, its first record overlaps one of them,
// its nonce is within 2^32 of that subscription's (a Map-Server adds one
// per publication; the nonce of a Map-Notify acknowledging a Map-Register
// is random) and it authenticates with the pub/sub key (so that a
// Map-Notify signed with the ETR's Map-Server key goes to the ETR). It
// does not change any state, never panics, and for a Map-Notify that is not
// the ITR's costs a header parse (plus a full parse when the ITR has
// subscriptions).
func (i *ITR) OwnsNotify(pkt []byte) bool {
	_, owned, _ := i.claimNotify(pkt)
	return owned
}

// TakeNotify handles pkt, a Map-Notify received from from, when it is the
// ITR's (see OwnsNotify) and reports whether it was: the daemon's
// dispatcher gives the ETR those it is not. It parses and authenticates a
// publication once for both decisions.
func (i *ITR) TakeNotify(pkt []byte, from netip.AddrPort) bool {
	m, owned, verified := i.claimNotify(pkt)
	if !owned {
		return false
	}
	from = unmapPort(from)
	if m == nil {
		// Ours by its nonce, but it does not parse.
		i.ctr.inc(iMalformed)
		if _, err := wire.Parse(pkt); err != nil {
			i.warn("malformed control message", "from", from, "reason", wire.ErrorReason(err))
		}
		return true
	}
	i.handleNotifyVerified(m, pkt, from, verified)
	return true
}

// claimNotify is OwnsNotify's decision, with the parsed Map-Notify (nil
// when it was claimed by its nonce alone and does not parse) and whether
// its authentication was already checked (and held).
func (i *ITR) claimNotify(pkt []byte) (m *wire.MapNotify, owned, verified bool) {
	h, err := wire.ParseAuthHeader(pkt)
	if err != nil || h.Type != wire.TypeMapNotify {
		return nil, false, false
	}
	i.mu.Lock()
	mine := i.nonceOwnedLocked(h.Nonce)
	subs := i.ps.count > 0
	i.mu.Unlock()
	if !mine && !subs {
		return nil, false, false
	}
	msg, err := wire.Parse(pkt)
	if err != nil {
		return nil, mine, false
	}
	m, ok := msg.(*wire.MapNotify)
	if !ok {
		return nil, mine, false
	}
	if mine {
		return m, true, false
	}
	i.mu.Lock()
	mine = i.ownsLocked(m.Nonce, m.Records)
	i.mu.Unlock()
	if !mine || notifyAuthFailure(i.settings.Load(), m, pkt) != "" {
		return nil, false, false
	}
	return m, true, true
}

// notifyAuthFailure checks a pub/sub Map-Notify's authentication and
// returns "" or why it fails.
func notifyAuthFailure(st *itrSettings, m *wire.MapNotify, raw []byte) string {
	if m.AlgorithmID == wire.AlgNone {
		if st.psUnauth && len(m.AuthData) == 0 {
			return ""
		}
		return "unauthenticated"
	}
	if len(st.psKey) == 0 {
		return "no_pubsub_key"
	}
	if m.KeyID != st.psKeyID || m.AlgorithmID != st.psAlg {
		return "key_id_or_algorithm_mismatch"
	}
	if err := wire.Verify(raw, st.psKey); err != nil {
		return wire.ErrorReason(err)
	}
	return ""
}

// notifyVerdict is what handleNotify makes of a Map-Notify.
type notifyVerdict uint8

const (
	verdictAccepted  notifyVerdict = iota // acknowledged, records applied
	verdictDuplicate                      // the last accepted one again: acknowledged only
	verdictReplay                         // an older nonce: dropped
	verdictUnmatched                      // no subscription for it: dropped
)

// notifyDecision is what handleNotify does with a Map-Notify, decided
// under ITR.mu.
type notifyDecision struct {
	verdict   notifyVerdict
	confirmed bool
	apply     []int // indexes of the records to install (or delete)
	ignored   int
	removed   int
	overflow  int
	refused   []refusedRecord // by the EID space (recordRefusal)
	p         *pending        // the confirmed request, to finish
	held      [][]byte        // its held packets
}

// handleNotify processes a Map-Notify sent to the ITR (RFC 9437 sections 5
// and 6): a subscription's confirmation, a publication or a removal notice;
// see the top of this file.
func (i *ITR) handleNotify(m *wire.MapNotify, raw []byte, from netip.AddrPort) {
	i.handleNotifyVerified(m, raw, from, false)
}

// handleNotifyVerified is handleNotify; verified says claimNotify already
// found raw's authentication good.
func (i *ITR) handleNotifyVerified(m *wire.MapNotify, raw []byte, from netip.AddrPort, verified bool) {
	i.ctr.inc(iPSNotifies)
	st := i.settings.Load()
	i.mu.Lock()
	owned := i.ownsLocked(m.Nonce, m.Records)
	i.mu.Unlock()
	if !owned {
		i.ctr.inc(iPSUnmatched)
		i.warn("Map-Notify for no subscription", "from", from, "nonce", m.Nonce)
		return
	}
	if !verified {
		if reason := notifyAuthFailure(st, m, raw); reason != "" {
			i.ctr.inc(iPSAuthFailures)
			i.warn("pub/sub Map-Notify failed authentication", "from", from, "reason", reason)
			return
		}
	}
	now := i.now()
	i.mu.Lock()
	var d notifyDecision
	p := i.byNonce[m.Nonce]
	if p != nil && !p.subscribe {
		p = nil
	}
	if a := i.ps.answered[m.Nonce]; p != nil || (a != nil && !a.confirmed) {
		d = i.confirmLocked(st, m, from.Addr(), now, p, a)
	} else {
		// A publication, a removal notice, or a confirmation again (a
		// retransmission, whose nonce is the subscription's last).
		d = i.publishLocked(st, m, from.Addr(), now)
	}
	i.mu.Unlock()

	i.ctr.add(iPSRecordsIgnored, uint64(d.ignored))
	i.ctr.add(iSubsRemovedByMS, uint64(d.removed))
	i.ctr.add(iSubsOverflow, uint64(d.overflow))
	for _, r := range d.refused {
		i.reportRefusal(r, from.Addr())
	}
	switch d.verdict {
	case verdictUnmatched:
		i.ctr.inc(iPSUnmatched)
		i.warn("Map-Notify for no subscription", "from", from, "nonce", m.Nonce)
		return
	case verdictReplay:
		i.ctr.inc(iPSReplays)
		i.warn("pub/sub Map-Notify with an old nonce dropped (a replay?)", "from", from, "nonce", m.Nonce)
		return
	case verdictDuplicate:
		i.ctr.inc(iPSDuplicates)
		i.sendNotifyAck(m, from)
		return
	}
	if d.confirmed {
		i.ctr.inc(iSubsConfirmed)
	}
	installed := i.applyNotify(st, m, d.apply, from.Addr(), now)
	if d.p != nil || len(installed) > 0 {
		i.resolveCovered(installed, d.p, d.held)
	}
	i.sendNotifyAck(m, from)
}

// confirmLocked decides on the confirmation of the subscribing request p
// (outstanding) or a (answered by its Map-Reply): its records that cover
// the EID asked for become subscriptions and are installed, unless the EID
// space refuses them (recordRefusal: then neither, and the request is
// answered all the same); a removal notice forgets the subscription it
// names. ITR.mu is held.
func (i *ITR) confirmLocked(st *itrSettings, m *wire.MapNotify, from netip.Addr, now time.Time, p *pending, a *subAnswer) notifyDecision {
	d := notifyDecision{verdict: verdictUnmatched}
	var key reqKey
	if p != nil {
		key = p.key
	} else {
		key = a.key
	}
	for k := range m.Records {
		rec := &m.Records[k]
		iid, pfx, ok := rec.Prefix()
		if !ok || iid != key.iid || !pfx.Contains(key.eid) {
			d.ignored++
			continue
		}
		d.verdict = verdictAccepted
		if isRemovalNotice(rec) {
			if s := i.ps.get(mapcache.Key{InstanceID: iid, Prefix: pfx}); s != nil {
				i.ps.remove(s)
				d.removed++
			}
			continue
		}
		if refusedByEIDSpace(st, rec, iid, pfx, &d) {
			continue
		}
		i.subscribedLocked(st, mapcache.Key{InstanceID: iid, Prefix: pfx}, from, m.Nonce, now, &d)
		d.apply = append(d.apply, k)
	}
	d.confirmed = len(d.apply) > 0
	if d.confirmed || len(d.refused) > 0 {
		if p != nil {
			d.held = i.removePendingLocked(p)
			d.p = p
			i.noteAnswerLocked(p, now, false)
		} else {
			a.confirmed = true
		}
	}
	return d
}

// subscribedLocked records (or renews) the subscription to k that a
// confirmation with nonce from the Map-Server ms made. ITR.mu is held.
func (i *ITR) subscribedLocked(st *itrSettings, k mapcache.Key, ms netip.Addr, nonce uint64, now time.Time, d *notifyDecision) {
	ps := &i.ps
	s := ps.get(k)
	if s == nil {
		if ps.count >= ps.max {
			d.overflow++
			return
		}
		s = &subscription{key: k, idx: -1}
		ps.schedule(s, now, st.subRefresh)
		ps.add(s)
	} else {
		ps.schedule(s, now, st.subRefresh)
	}
	s.ms = ms
	s.sent = max(s.sent, nonce)
	s.accepted = max(s.accepted, nonce)
	s.subscribed = now
	s.lastNotify = now
	s.notifies++
	s.missingSince = time.Time{}
	ps.floor = max(ps.floor, nonce)
}

// publishLocked decides on a publication or removal notice: see the top of
// this file for the nonce rule. ITR.mu is held.
func (i *ITR) publishLocked(st *itrSettings, m *wire.MapNotify, from netip.Addr, now time.Time) notifyDecision {
	ps := &i.ps
	d := notifyDecision{verdict: verdictUnmatched}
	if len(m.Records) == 1 && isRemovalNotice(&m.Records[0]) {
		// Sent once, with the nonce of the Map-Notify that went
		// unacknowledged: maybe one we accepted and whose ack was lost.
		iid, pfx, ok := m.Records[0].Prefix()
		if !ok {
			return d
		}
		s := ps.get(mapcache.Key{InstanceID: iid, Prefix: pfx})
		switch {
		case s == nil:
			return d
		case m.Nonce < s.accepted:
			d.verdict = verdictReplay
			return d
		}
		ps.remove(s)
		d.removed = 1
		d.verdict = verdictAccepted
		return d
	}
	var best *subscription
	seen, dup := false, false
	for k := range m.Records {
		iid, pfx, ok := m.Records[k].Prefix()
		if !ok {
			continue
		}
		ps.eachOverlapping(iid, pfx, func(s *subscription) bool {
			seen = true
			switch {
			case m.Nonce > s.accepted || (st.psUnauth && m.Nonce == s.accepted):
				if best == nil || s.accepted > best.accepted {
					best = s
				}
			case m.Nonce == s.accepted:
				dup = true
			}
			return true
		})
	}
	switch {
	case !seen:
		return d
	case best == nil && dup:
		d.verdict = verdictDuplicate
		return d
	case best == nil:
		d.verdict = verdictReplay
		return d
	}
	best.accepted = m.Nonce
	best.ms = from
	best.lastNotify = now
	best.notifies++
	ps.floor = max(ps.floor, m.Nonce)
	d.verdict = verdictAccepted
	for k := range m.Records {
		rec := &m.Records[k]
		iid, pfx, ok := rec.Prefix()
		if !ok || !ps.overlaps(iid, pfx) {
			d.ignored++
			continue
		}
		if isRemovalNotice(rec) {
			if s := ps.get(mapcache.Key{InstanceID: iid, Prefix: pfx}); s != nil {
				ps.remove(s)
				d.removed++
			}
			continue
		}
		if refusedByEIDSpace(st, rec, iid, pfx, &d) {
			continue
		}
		d.apply = append(d.apply, k)
	}
	return d
}

// refusedByEIDSpace reports whether the EID space of st refuses the
// mapping record rec for pfx in iid (recordRefusal; a withdrawal, Record
// TTL 0, is never refused), noting the refusal in d.
func refusedByEIDSpace(st *itrSettings, rec *wire.EIDRecord, iid uint32, pfx netip.Prefix, d *notifyDecision) bool {
	if rec.RecordTTL == 0 {
		return false
	}
	negative := len(rec.Locators) == 0
	r := st.recordRefusal(iid, pfx, negative)
	if r == admitted {
		return false
	}
	d.refused = append(d.refused, refusedRecord{why: r, iid: iid, pfx: pfx, negative: negative})
	return true
}

// applyNotify installs (or, for a Record TTL of 0, deletes) the records
// apply of an accepted Map-Notify from the Map-Server ms, with the locators
// st allows (rlocRefusal), and returns the entries installed.
func (i *ITR) applyNotify(st *itrSettings, m *wire.MapNotify, apply []int, ms netip.Addr, now time.Time) []*mapcache.Entry {
	origin := ms.String()
	var installed []*mapcache.Entry
	for _, k := range apply {
		rec := &m.Records[k]
		iid, pfx, _ := rec.Prefix()
		if rec.RecordTTL == 0 {
			// A withdrawn or expired registration.
			i.cache.Delete(mapcache.Key{InstanceID: iid, Prefix: pfx})
			i.ctr.inc(iPSWithdrawals)
			continue
		}
		e, refused, ok := entryFromRecord(st, rec, iid, pfx, now, origin)
		i.reportRefusedRLOCs(refused, iid, pfx, ms)
		if !ok {
			i.ctr.inc(iPSRecordsIgnored)
			continue
		}
		e.Source = mapcache.FromPubSub
		if v := i.versions.Load(); v != nil {
			e.Version = (*v)()
		}
		if _, err := i.cache.Insert(e); err != nil {
			if !errors.Is(err, mapcache.ErrStale) {
				i.ctr.inc(iInsertErrors)
				i.warn("cannot install mapping", "eid", pfx, "iid", iid, "err", err)
			}
			continue
		}
		if e.Negative() {
			i.ctr.inc(iNegativeEntries)
		}
		i.ctr.inc(iPSInstalled)
		installed = append(installed, e)
	}
	i.probeKnownDown(installed)
	return installed
}

// sendNotifyAck acknowledges the Map-Notify m with a Map-Notify-Ack of the
// same content (nonce, Key ID, algorithm, records), signed with the pub/sub
// key (unsigned when m was), to its source.
func (i *ITR) sendNotifyAck(m *wire.MapNotify, to netip.AddrPort) {
	st := i.settings.Load()
	ack := wire.MapNotifyAck(*m)
	ack.AuthData = make([]byte, len(m.AuthData))
	ack.Trailing = 0
	b, err := ack.AppendBinary(make([]byte, 0, 128))
	if err == nil {
		err = wire.Sign(b, st.psKey)
	}
	if err != nil {
		i.ctr.inc(iPSAckErrors)
		i.warn("cannot build Map-Notify-Ack", "to", to, "err", err)
		return
	}
	if err := i.out.Send(b, to); err != nil {
		i.ctr.inc(iPSAckErrors)
		i.warn("cannot send Map-Notify-Ack", "to", to, "err", err)
		return
	}
	i.ctr.inc(iPSAcksSent)
}

// refreshSubscriptions runs the subscriptions whose refresh is due (at most
// half the Map-Request rate's worth per tick; the others wait for the next
// tick): one whose map-cache entry was used within the interval is renewed
// with a subscribing Map-Request, one whose prefix has had no entry for an
// interval is forgotten. Called by RoutineITRControl.
func (i *ITR) refreshSubscriptions(now time.Time, st *itrSettings) {
	budget := max(1, int(float64(st.rate)*i.tick.Seconds()/2))
	var due []mapcache.Key
	i.mu.Lock()
	for len(due) < budget && len(i.ps.due) > 0 {
		s := i.ps.due[0]
		if now.Before(s.nextRefresh) {
			break
		}
		s.nextRefresh = now.Add(st.subRefresh)
		heap.Fix(&i.ps.due, 0)
		due = append(due, s.key)
	}
	i.mu.Unlock()
	for _, k := range due {
		e, cached := i.cache.Get(k)
		i.mu.Lock()
		s := i.ps.get(k)
		if s != nil && !cached {
			if s.missingSince.IsZero() {
				s.missingSince = now
			} else if now.Sub(s.missingSince) >= st.subRefresh {
				i.ps.remove(s)
				i.ctr.inc(iSubsForgotten)
			}
		} else if s != nil {
			s.missingSince = time.Time{}
		}
		i.mu.Unlock()
		if s == nil || !cached || !st.subscribe {
			continue
		}
		lu := e.LastUsed()
		if lu.IsZero() || now.Sub(lu) > st.subRefresh {
			continue
		}
		if _, err := i.request(reqKey{iid: k.InstanceID, eid: k.Prefix.Addr()}, uint8(k.Prefix.Bits()), netip.Addr{}, kindRefresh, now); err == nil {
			i.ctr.inc(iSubscribeRefreshes)
		}
	}
}

// Subscriptions returns the ITR's pub/sub subscriptions, ordered by
// instance-ID and prefix.
func (i *ITR) Subscriptions() []Subscription {
	i.mu.Lock()
	out := make([]Subscription, 0, i.ps.count)
	for _, tbl := range i.ps.byIID {
		for _, s := range tbl.All() {
			out = append(out, Subscription{
				InstanceID: s.key.InstanceID,
				Prefix:     s.key.Prefix,
				MapServer:  s.ms,
				Nonce:      max(s.sent, s.accepted),
				Subscribed: s.subscribed,
				LastNotify: s.lastNotify,
				Notifies:   s.notifies,
			})
		}
	}
	i.mu.Unlock()
	slices.SortFunc(out, func(a, b Subscription) int {
		return cmp.Or(cmp.Compare(a.InstanceID, b.InstanceID),
			a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	return out
}
