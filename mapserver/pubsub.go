package mapserver

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/gaissmai/bart"

	"github.com/lispd/lispd/wire"
)

// Publish/subscribe (RFC 9437). An ITR subscribes to the mapping of an EID
// by setting the N bit on the record of its Map-Request, with the I bit and
// its xTR-ID. The Map-Server keeps a subscription per (xTR-ID, instance-ID,
// EID-prefix): the prefix is that of the answer (the registered prefix
// holding the EID, or the negative prefix when none does), so that requests
// for many hosts of one prefix make one subscription. The subscription is
// confirmed with a Map-Notify carrying the request's nonce and the mapping,
// sent where a Map-Reply would go (it replaces the proxy Map-Reply; a
// request for a site that does not proxy-reply is forwarded to an ETR as
// well). Every later change of a registered mapping (new, changed, withdrawn
// with TTL 0, expired) is published with a Map-Notify to each subscription
// whose prefix covers it or lies inside it, with the subscription's nonce
// plus one. Every such Map-Notify is retransmitted until a Map-Notify-Ack
// with its nonce arrives, authenticated with the pub/sub key; a subscription
// whose Map-Notify is never acknowledged is removed and told so once (RFC
// 9437 section 5: no locators, action Drop/Auth-Failure).
//
// Authentication (RFC 9437 section 7.1): Map-Requests carry none, so a
// request never changes a confirmed subscription by itself. A new target
// (ITR-RLOC and port) or a newer request nonce takes effect only when the
// confirmation sent to that target is acknowledged with the pre-shared
// pub/sub key; a request whose nonce is not greater than the last
// acknowledged one is a replay and is dropped (the same nonce from the same
// target is a retransmission and gets the confirmation again). A
// subscription never acknowledged goes away after the retransmissions.
// With PubSubConfig.Unauthenticated the Map-Server signs nothing and takes
// unsigned acks, as lispers.net does.
//
// Lock order: regMu, then subs.mu. Publications are prepared with both held
// (so that they leave in the order of the changes), and sent after.

// Pub/sub defaults.
const (
	// DefaultMaxSubscriptions bounds the subscriptions of one Map-Server.
	DefaultMaxSubscriptions = 1_000_000
	// DefaultMaxSubscriptionsPerITR bounds the subscriptions whose
	// Map-Notifies go to one ITR address (a flood from one source).
	DefaultMaxSubscriptionsPerITR = 10_000
	// DefaultNegativeSubscriptionTTL is the lifetime of a subscription to an
	// EID that no registered prefix holds (RFC 9437 section 5 recommends 15
	// minutes).
	DefaultNegativeSubscriptionTTL = 15 * time.Minute
	// DefaultMaxPendingPublications bounds the Map-Notifies awaiting their
	// ack; beyond it a Map-Notify is sent once, not retransmitted.
	DefaultMaxPendingPublications = 200_000
	// maxSubscriptionTTL caps the lifetime of a positive subscription.
	maxSubscriptionTTL = 24 * time.Hour
	// minSubscriptionTTL is the shortest lifetime of any subscription.
	minSubscriptionTTL = time.Minute
	// subSweepInterval is how often expired subscriptions are looked for.
	subSweepInterval = 10 * time.Second
)

// PubSubConfig configures publish/subscribe on the Map-Server.
type PubSubConfig struct {
	// Enabled accepts subscriptions; when false the N bit is ignored and
	// subscribing Map-Requests are answered like any other.
	Enabled bool
	// Key is the pre-shared pub/sub key (RFC 9437 section 7.1) that signs
	// the Map-Notifies sent to subscribers and checks their acks. Required
	// unless Unauthenticated.
	Key []byte
	// KeyID is the Key ID of those Map-Notifies.
	KeyID uint8
	// Algorithm is their authentication algorithm; 0 means
	// wire.AlgHMACSHA256128.
	Algorithm wire.AlgorithmID
	// Unauthenticated sends the Map-Notifies unsigned (Algorithm ID 0) and
	// accepts unsigned acks, as lispers.net does. Anyone who can send a
	// Map-Request can then subscribe any address.
	Unauthenticated bool
	// MaxSubscriptions bounds the subscriptions; 0 means
	// DefaultMaxSubscriptions.
	MaxSubscriptions int
	// MaxPerITR bounds the subscriptions per ITR address; 0 means
	// DefaultMaxSubscriptionsPerITR.
	MaxPerITR int
	// NegativeTTL is the lifetime of a subscription to an unregistered
	// EID; 0 means DefaultNegativeSubscriptionTTL.
	NegativeTTL time.Duration
	// MaxPending bounds the Map-Notifies awaiting an ack; 0 means
	// DefaultMaxPendingPublications.
	MaxPending int
}

func (c PubSubConfig) withDefaults() PubSubConfig {
	if c.Algorithm == 0 && !c.Unauthenticated {
		c.Algorithm = wire.AlgHMACSHA256128
	}
	if c.Unauthenticated {
		c.Algorithm, c.KeyID = wire.AlgNone, 0
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if c.MaxPerITR == 0 {
		c.MaxPerITR = DefaultMaxSubscriptionsPerITR
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = DefaultNegativeSubscriptionTTL
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPendingPublications
	}
	return c
}

func (c *PubSubConfig) validate() error {
	if !c.Enabled {
		return nil
	}
	switch {
	case !c.Unauthenticated && len(c.Key) == 0:
		return &ConfigError{Where: "pub/sub", Field: "key", Reason: "empty: subscribers' Map-Notifies must be signed (or allow unauthenticated pub/sub)"}
	case !c.Unauthenticated && !supportedAlgorithm(c.Algorithm):
		return &ConfigError{Where: "pub/sub", Field: "algorithm", Reason: "unsupported authentication algorithm " + c.Algorithm.String()}
	case c.MaxSubscriptions < 0 || c.MaxPerITR < 0 || c.MaxPending < 0:
		return &ConfigError{Where: "pub/sub", Field: "limits", Reason: "negative"}
	case c.NegativeTTL < 0:
		return &ConfigError{Where: "pub/sub", Field: "negative TTL", Reason: "negative"}
	}
	return nil
}

// subscription is one xTR's subscription to one EID-prefix. It is kept small
// (72 bytes): a Map-Server may hold a million.
type subscription struct {
	xtr      wire.XTRID
	addr     [16]byte // where Map-Notifies go (IPv4 as IPv4-mapped)
	siteID   uint64
	reqNonce uint64 // last acknowledged request nonce; 0: none yet
	pubNonce uint64 // nonce of the last Map-Notify sent to it
	expires  int64  // Unix nanoseconds
	port     uint16
	flags    uint8
}

const (
	subIs4       = 1 << iota // addr is IPv4
	subConfirmed             // a confirmation was acknowledged
	subNegative              // subscribed to an unregistered EID
)

func (s *subscription) target() netip.AddrPort {
	a := netip.AddrFrom16(s.addr)
	if s.flags&subIs4 != 0 {
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, s.port)
}

func (s *subscription) setTarget(t netip.AddrPort) {
	s.addr = t.Addr().As16()
	s.port = t.Port()
	s.flags &^= subIs4
	if t.Addr().Is4() {
		s.flags |= subIs4
	}
}

// nextNonce returns the nonce of the next Map-Notify published to s.
func (s *subscription) nextNonce() uint64 {
	s.pubNonce = max(s.pubNonce, s.reqNonce) + 1
	return s.pubNonce
}

// subGroup holds the subscriptions of one EID-prefix, stored by value in
// the prefix table (no allocation of its own: a million subscriptions to as
// many prefixes cost a slice of one each). Elements are updated in place
// through the slice; a change of length is stored back.
type subGroup []subscription

func (g subGroup) find(x wire.XTRID) int {
	for i := range g {
		if g[i].xtr == x {
			return i
		}
	}
	return -1
}

// subID identifies a subscription.
type subID struct {
	prefix EIDPrefix
	xtr    wire.XTRID
}

// pubKind is what a pub/sub Map-Notify is for.
type pubKind uint8

const (
	pubConfirm     pubKind = iota // confirms a (re)subscription
	pubPublish                    // publishes a change
	pubUnsubscribe                // confirms an unsubscription
)

// pubPending is a pub/sub Map-Notify awaiting its Map-Notify-Ack.
type pubPending struct {
	kind  pubKind
	sub   subID
	topic EIDPrefix // the published prefix (publications)
	nonce uint64
	// reqNonce is the request nonce a confirmation acknowledges.
	reqNonce uint64
	target   netip.AddrPort
	msg      []byte // signed; immutable once created
	sent     int
	due      time.Time
}

// topicKey identifies the pending publication of one prefix to one
// subscription: a newer change replaces it.
type topicKey struct {
	sub   subID
	topic EIDPrefix
}

// subscriptions is the Map-Server's pub/sub state, guarded by mu.
type subscriptions struct {
	mu       sync.Mutex
	byIID    map[uint32]*bart.Table[subGroup]
	count    int
	perITR   map[netip.Addr]int32
	pending  map[uint64][]*pubPending // by nonce
	npending int
	byTopic  map[topicKey]*pubPending
	// confirming holds the pending confirmation of each subscription.
	confirming map[subID]*pubPending
	nextSweep  time.Time
	// nextDue is no later than the earliest due time of a pending
	// Map-Notify (zero: none pending), so that a wake-up with nothing
	// due does not walk them all.
	nextDue time.Time
	// pendingHigh is the most Map-Notifies pending at once since the
	// pending tables were last made: Go maps do not shrink, so once a
	// burst (a mass subscription) is acknowledged they are made anew.
	pendingHigh int
}

func newSubscriptions() subscriptions {
	return subscriptions{
		byIID:      make(map[uint32]*bart.Table[subGroup]),
		perITR:     make(map[netip.Addr]int32),
		pending:    make(map[uint64][]*pubPending),
		byTopic:    make(map[topicKey]*pubPending),
		confirming: make(map[subID]*pubPending),
	}
}

// get returns the subscription id, or nil. mu is held.
func (t *subscriptions) get(id subID) (subGroup, int) {
	tbl := t.byIID[id.prefix.InstanceID]
	if tbl == nil {
		return nil, -1
	}
	g, ok := tbl.Get(id.prefix.Prefix)
	if !ok {
		return nil, -1
	}
	return g, g.find(id.xtr)
}

// remove deletes subscription i of group g (prefix p). mu is held.
func (t *subscriptions) remove(p EIDPrefix, g subGroup, i int) {
	a := g[i].target().Addr()
	if n := t.perITR[a] - 1; n > 0 {
		t.perITR[a] = n
	} else {
		delete(t.perITR, a)
	}
	last := len(g) - 1
	g[i] = g[last]
	g[last] = subscription{}
	g = g[:last]
	t.count--
	tbl := t.byIID[p.InstanceID]
	if len(g) > 0 {
		tbl.Insert(p.Prefix, g)
		return
	}
	tbl.Delete(p.Prefix)
	if tbl.Size() == 0 {
		delete(t.byIID, p.InstanceID)
	}
}

// addPending records p. mu is held.
func (t *subscriptions) addPending(p *pubPending) {
	t.pending[p.nonce] = append(t.pending[p.nonce], p)
	t.npending++
	t.pendingHigh = max(t.pendingHigh, t.npending)
	if t.nextDue.IsZero() || p.due.Before(t.nextDue) {
		t.nextDue = p.due
	}
	switch p.kind {
	case pubPublish:
		k := topicKey{sub: p.sub, topic: p.topic}
		if old := t.byTopic[k]; old != nil {
			t.dropPending(old)
		}
		t.byTopic[k] = p
	case pubConfirm, pubUnsubscribe:
		if old := t.confirming[p.sub]; old != nil {
			t.dropPending(old)
		}
		t.confirming[p.sub] = p
	}
}

// dropPending forgets p. mu is held.
func (t *subscriptions) dropPending(p *pubPending) {
	l := t.pending[p.nonce]
	for i, q := range l {
		if q == p {
			l = slices.Delete(l, i, i+1)
			t.npending--
			break
		}
	}
	if len(l) == 0 {
		delete(t.pending, p.nonce)
	} else {
		t.pending[p.nonce] = l
	}
	switch p.kind {
	case pubPublish:
		k := topicKey{sub: p.sub, topic: p.topic}
		if t.byTopic[k] == p {
			delete(t.byTopic, k)
		}
	default:
		if t.confirming[p.sub] == p {
			delete(t.confirming, p.sub)
		}
	}
	if t.npending == 0 && t.pendingHigh > shrinkPendingAbove {
		t.pending = make(map[uint64][]*pubPending)
		t.byTopic = make(map[topicKey]*pubPending)
		t.confirming = make(map[subID]*pubPending)
		t.pendingHigh = 0
	}
}

// shrinkPendingAbove is the burst of pending Map-Notifies after which the
// emptied tables are made anew.
const shrinkPendingAbove = 4096

// subscribing reports whether r asks for a subscription this server takes.
func (s *Server) subscribing(r *request) bool {
	return r.req.XTRIDPresent && len(r.req.Records) > 0 && r.req.Records[0].NotifyRequested &&
		!r.req.Probe && !r.req.SMR
}

// unsubscribing reports whether r is an unsubscription: one ITR-RLOC, of
// AFI 0 (RFC 9437 section 5).
func unsubscribing(r *request) bool {
	return len(r.req.ITRRLOCs) == 1 && r.req.ITRRLOCs[0].AFI == wire.AFINone
}

// pubsubMessage encodes and signs a pub/sub Map-Notify.
func (s *Server) pubsubMessage(nonce uint64, recs []wire.EIDRecord) ([]byte, error) {
	b, err := s.encodePubSub(nonce, recs)
	if err != nil {
		return nil, err
	}
	return b, s.signPubSub(b)
}

// encodePubSub encodes a pub/sub Map-Notify with zeroed authentication
// data, to be signed by signPubSub.
func (s *Server) encodePubSub(nonce uint64, recs []wire.EIDRecord) ([]byte, error) {
	ps := &s.cfg.PubSub
	n := wire.MapNotify{
		Nonce:       nonce,
		KeyID:       ps.KeyID,
		AlgorithmID: ps.Algorithm,
		AuthData:    zeroAuth[:ps.Algorithm.AuthLen(s.cfg.TruncatedAuth)],
		Records:     recs,
	}
	return n.AppendBinary(make([]byte, 0, 128))
}

// signPubSub fills the authentication data of an encoded pub/sub
// Map-Notify (nothing in the unauthenticated mode).
func (s *Server) signPubSub(b []byte) error {
	if s.cfg.PubSub.Algorithm == wire.AlgNone {
		return nil
	}
	return signAuth(b, s.cfg.PubSub.Key)
}

// renonce copies an unsigned encoded pub/sub Map-Notify (encodePubSub),
// sets its nonce and signs it: one encoding serves every subscriber of a
// change.
func (s *Server) renonce(tmpl []byte, nonce uint64) ([]byte, error) {
	b := slices.Clone(tmpl)
	binary.BigEndian.PutUint64(b[4:12], nonce)
	return b, s.signPubSub(b)
}

// subscribe handles a subscribing Map-Request on the Map-Server once its
// answer is known: prefix (in iid) is the registered prefix holding the EID,
// or, when negative, the negative prefix with ttl its lifetime. It reports
// whether the request was taken as a subscription (a confirmation or
// unsubscription was sent, or the request was dropped as a replay); false
// means it is answered as if it had no N bit.
func (s *Server) subscribe(r *request, iid uint32, prefix netip.Prefix, negative bool, negTTL time.Duration) bool {
	ps := &s.cfg.PubSub
	if !ps.Enabled {
		s.ctr.inc(cSubIgnored)
		return false
	}
	now := s.clock.Now()
	id := subID{prefix: EIDPrefix{InstanceID: iid, Prefix: prefix}, xtr: r.req.XTRID}
	if unsubscribing(r) {
		return s.unsubscribe(r, id, now)
	}
	to, ok := r.replyTo()
	if !ok {
		return false
	}
	nonce := r.req.Nonce
	t := &s.subs
	t.mu.Lock()
	// The mapping is read with mu held: a change published before this
	// point is in it; one published after finds the subscription.
	var rec wire.EIDRecord
	var inner wire.Address
	if !negative {
		st := s.state.Load()
		tbl := st.regTable(iid)
		var pub *published
		if tbl != nil {
			pub, _ = tbl.Get(prefix)
		}
		if pub == nil {
			// Withdrawn meanwhile: answer as without the N bit.
			t.mu.Unlock()
			return false
		}
		rec = pub.record
	} else {
		rec = eidRecord(iid, prefix, &inner)
		rec.RecordTTL = uint32((negTTL + time.Minute - 1) / time.Minute)
		rec.Action = NegativeAction
	}
	g, i := t.get(id)
	if i >= 0 {
		sub := &g[i]
		if nonce == sub.reqNonce && sub.flags&subConfirmed != 0 && sub.target() == to {
			// A retransmitted request: confirm again, changing nothing.
			t.mu.Unlock()
			msg, err := s.pubsubMessage(nonce, []wire.EIDRecord{rec})
			if err == nil {
				s.ctr.inc(cPubSubNotifySent)
				s.send(msg, to)
			}
			return true
		}
		if nonce <= sub.reqNonce && sub.flags&subConfirmed != 0 {
			// Not newer than the last acknowledged request: a replay, or
			// the xTR restarted and lost its nonces (RFC 9437 wants them
			// kept; routers do restart). Nothing changes unless the
			// confirmation is acknowledged with the key, which a replayer
			// cannot do; the xTR that asked can, and so resets the
			// subscription's nonces. Either way it gets its mapping.
			s.ctr.inc(cSubReplays)
		}
	} else {
		switch {
		case t.count >= ps.MaxSubscriptions:
			t.mu.Unlock()
			s.ctr.inc(cSubRefusedLimit)
			s.warn("subscription refused: the Map-Server holds its maximum", "max", ps.MaxSubscriptions, "xtr_id", id.xtr.String(), "itr", to)
			return false
		case int(t.perITR[to.Addr()]) >= ps.MaxPerITR:
			t.mu.Unlock()
			s.ctr.inc(cSubRefusedLimit)
			s.warn("subscription refused: too many subscriptions for this ITR address", "max", ps.MaxPerITR, "itr", to.Addr())
			return false
		}
		tbl := t.byIID[iid]
		if tbl == nil {
			tbl = new(bart.Table[subGroup])
			t.byIID[iid] = tbl
		}
		g, _ = tbl.Get(prefix)
		sub := subscription{xtr: id.xtr, siteID: r.req.SiteID}
		sub.setTarget(to)
		ttl := negTTLOr(ps.NegativeTTL, negative, rec.RecordTTL)
		sub.expires = now.Add(ttl).UnixNano()
		if negative {
			sub.flags |= subNegative
		}
		tbl.Insert(prefix, append(g, sub))
		t.count++
		t.perITR[to.Addr()]++
		s.ctr.inc(cSubCreated)
		s.poke()
	}
	msg, err := s.pubsubMessage(nonce, []wire.EIDRecord{rec})
	if err != nil {
		t.mu.Unlock()
		s.warn("cannot build subscription map-notify", "eid", prefix.String(), "err", err)
		return true
	}
	p := &pubPending{kind: pubConfirm, sub: id, nonce: nonce, reqNonce: nonce, target: to, msg: msg,
		due: now.Add(s.cfg.NotifyInterval)}
	if t.npending < ps.MaxPending {
		t.addPending(p)
	} else {
		s.ctr.inc(cPubSubPendingOverflow)
	}
	t.mu.Unlock()
	s.ctr.inc(cPubSubNotifySent)
	s.send(msg, to)
	s.poke()
	return true
}

// negTTLOr returns the lifetime of a subscription: the negative TTL, or the
// record's TTL (minutes) within bounds.
func negTTLOr(neg time.Duration, negative bool, recordTTL uint32) time.Duration {
	d := neg
	if !negative {
		d = min(time.Duration(recordTTL)*time.Minute, maxSubscriptionTTL)
	}
	return max(d, minSubscriptionTTL)
}

// unsubscribe handles an unsubscription: the subscriptions of the xTR-ID
// that hold the requested EID or lie in the requested prefix are removed
// once the Map-Notify that confirms it is acknowledged (so a forged request
// cannot remove them). The Map-Notify goes to the request's source.
func (s *Server) unsubscribe(r *request, id subID, now time.Time) bool {
	to, ok := r.replyTo()
	if !ok {
		return true
	}
	_, asked, ok := r.req.Records[0].Prefix()
	if !ok {
		return true
	}
	t := &s.subs
	t.mu.Lock()
	found := false
	if tbl := t.byIID[id.prefix.InstanceID]; tbl != nil {
		for p, g := range tbl.Supernets(asked) {
			if g.find(id.xtr) >= 0 {
				found, id.prefix.Prefix = true, p
				break
			}
		}
		if !found {
			for p, g := range tbl.Subnets(asked) {
				if g.find(id.xtr) >= 0 {
					found, id.prefix.Prefix = true, p
					break
				}
			}
		}
	}
	if !found {
		t.mu.Unlock()
		s.ctr.inc(cSubUnknownUnsubscribe)
		return true
	}
	g, i := t.get(id)
	if r.req.Nonce <= g[i].reqNonce {
		t.mu.Unlock()
		s.ctr.inc(cSubReplays)
		return true
	}
	msg, err := s.pubsubMessage(r.req.Nonce, nil)
	if err != nil {
		t.mu.Unlock()
		return true
	}
	t.addPending(&pubPending{kind: pubUnsubscribe, sub: id, nonce: r.req.Nonce, reqNonce: r.req.Nonce,
		target: to, msg: msg, due: now.Add(s.cfg.NotifyInterval)})
	t.mu.Unlock()
	s.ctr.inc(cPubSubNotifySent)
	s.send(msg, to)
	s.poke()
	return true
}

// pubJob is a change of a registered mapping to publish: rec is the new
// merged record, or nil when the prefix is no longer registered.
type pubJob struct {
	prefix EIDPrefix
	rec    *wire.EIDRecord
}

// preparePublicationsLocked builds the Map-Notifies that publish jobs to
// the subscriptions that cover or lie in each changed prefix, and records
// them for retransmission. regMu must be held; the caller sends the result
// with sendPubSub once it has released regMu.
func (s *Server) preparePublicationsLocked(jobs []pubJob) []*pubPending {
	if len(jobs) == 0 || !s.cfg.PubSub.Enabled {
		return nil
	}
	t := &s.subs
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.count == 0 {
		return nil
	}
	now := s.clock.Now()
	var out []*pubPending
	for _, j := range jobs {
		tbl := t.byIID[j.prefix.InstanceID]
		if tbl == nil {
			continue
		}
		var (
			rec   wire.EIDRecord
			inner wire.Address
		)
		if j.rec != nil {
			rec = *j.rec
		} else {
			// Withdrawn or expired: TTL 0 tells the subscribers to
			// remove the mapping (RFC 9437 section 5).
			rec = eidRecord(j.prefix.InstanceID, j.prefix.Prefix, &inner)
		}
		var tmpl []byte
		visit := func(p netip.Prefix, g subGroup) {
			for k := range g {
				sub := &g[k]
				if sub.expires < now.UnixNano() {
					continue
				}
				if tmpl == nil {
					var err error
					if tmpl, err = s.encodePubSub(0, []wire.EIDRecord{rec}); err != nil {
						s.warn("cannot build publication", "eid", j.prefix.Prefix.String(), "err", err)
						return
					}
				}
				nonce := sub.nextNonce()
				msg, err := s.renonce(tmpl, nonce)
				if err != nil {
					continue
				}
				p := &pubPending{kind: pubPublish, sub: subID{prefix: EIDPrefix{InstanceID: j.prefix.InstanceID, Prefix: p}, xtr: sub.xtr},
					topic: j.prefix, nonce: nonce, target: sub.target(), msg: msg, due: now.Add(s.cfg.NotifyInterval)}
				if t.npending < s.cfg.PubSub.MaxPending {
					t.addPending(p)
				} else {
					s.ctr.inc(cPubSubPendingOverflow)
				}
				out = append(out, p)
			}
		}
		for p, g := range tbl.Supernets(j.prefix.Prefix) {
			visit(p, g)
		}
		for p, g := range tbl.Subnets(j.prefix.Prefix) {
			if p != j.prefix.Prefix {
				visit(p, g)
			}
		}
	}
	s.ctr.add(cPublications, uint64(len(out)))
	return out
}

// BatchSender is a Sender that can also send many datagrams at once (the
// daemon's control plane, with sendmmsg): a change published to many
// subscribers goes out through it when the Server's Sender is one.
type BatchSender interface {
	Sender
	// SendBatch sends msgs[i] to to[i] for every i and returns how many
	// could not be sent.
	SendBatch(msgs [][]byte, to []netip.AddrPort) int
}

// sendPubSub sends the first transmission of prepared pub/sub Map-Notifies.
// It must be called without regMu or subs.mu held.
func (s *Server) sendPubSub(ps []*pubPending) {
	if len(ps) == 0 {
		return
	}
	s.ctr.add(cPubSubNotifySent, uint64(len(ps)))
	if bs, ok := s.out.(BatchSender); ok && len(ps) > 1 {
		msgs := make([][]byte, len(ps))
		to := make([]netip.AddrPort, len(ps))
		for i, p := range ps {
			msgs[i], to[i] = p.msg, p.target
		}
		if failed := bs.SendBatch(msgs, to); failed > 0 {
			s.ctr.add(cSendErrors, uint64(failed))
			s.warn("publications not sent", "failed", failed, "of", len(ps))
		}
	} else {
		for _, p := range ps {
			s.send(p.msg, p.target)
		}
	}
	s.poke()
}

// handlePubSubAck processes a Map-Notify-Ack whose nonce is that of a
// pub/sub Map-Notify. It reports whether the nonce was one; raw is the ack
// as received (nil when only its header could be read: lispers.net acks
// with a record count and no records, and unsigned).
func (s *Server) handlePubSubAck(nonce uint64, keyID uint8, alg wire.AlgorithmID, raw []byte, from netip.AddrPort) bool {
	t := &s.subs
	t.mu.Lock()
	l := t.pending[nonce]
	if len(l) == 0 {
		t.mu.Unlock()
		return false
	}
	var p *pubPending
	for _, q := range l {
		if q.target.Addr() == from.Addr() {
			p = q
			break
		}
	}
	if p == nil && len(l) == 1 {
		p = l[0]
	}
	t.mu.Unlock()
	if p == nil {
		s.ctr.inc(cNotifyAckUnknown)
		return true
	}
	ps := &s.cfg.PubSub
	switch {
	case ps.Unauthenticated && alg == wire.AlgNone:
	case raw == nil || keyID != ps.KeyID || alg != ps.Algorithm:
		s.ctr.inc(cPubSubAckAuthFailure)
		s.warn("pub/sub map-notify-ack with the wrong key ID or algorithm", "from", from, "key_id", keyID, "algorithm", alg)
		return true
	default:
		if err := verifyAuth(raw, ps.Key); err != nil {
			s.ctr.inc(cPubSubAckAuthFailure)
			s.warn("pub/sub map-notify-ack failed authentication", "from", from, "reason", wire.ErrorReason(err))
			return true
		}
	}
	now := s.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !slices.Contains(t.pending[nonce], p) {
		s.ctr.inc(cNotifyAckUnknown)
		return true
	}
	t.dropPending(p)
	s.ctr.inc(cPubSubAcked)
	g, i := t.get(p.sub)
	if i < 0 {
		return true
	}
	sub := &g[i]
	switch p.kind {
	case pubConfirm:
		if p.reqNonce < sub.reqNonce {
			// An acknowledged request older than the last: the xTR
			// restarted with new nonces. Start its sequence again and
			// drop what was pending for the old one.
			sub.pubNonce = p.reqNonce
			var stale []*pubPending
			for _, l := range t.pending {
				for _, q := range l {
					if q.sub == p.sub {
						stale = append(stale, q)
					}
				}
			}
			for _, q := range stale {
				t.dropPending(q)
			}
			s.ctr.inc(cSubNonceResets)
		}
		if old := sub.target(); old != p.target {
			a := old.Addr()
			if n := t.perITR[a] - 1; n > 0 {
				t.perITR[a] = n
			} else {
				delete(t.perITR, a)
			}
			t.perITR[p.target.Addr()]++
			sub.setTarget(p.target)
		}
		if sub.flags&subConfirmed == 0 {
			s.ctr.inc(cSubConfirmed)
		} else {
			s.ctr.inc(cSubRefreshed)
		}
		sub.flags |= subConfirmed
		sub.reqNonce = p.reqNonce
		ttl := time.Duration(0)
		if sub.flags&subNegative != 0 {
			ttl = ps.NegativeTTL
		} else if pub, ok := s.state.Load().lookup(p.sub.prefix.InstanceID, p.sub.prefix.Prefix); ok {
			ttl = negTTLOr(0, false, pub.record.RecordTTL)
		}
		sub.expires = now.Add(max(ttl, minSubscriptionTTL)).UnixNano()
	case pubUnsubscribe:
		t.remove(p.sub.prefix, g, i)
		s.ctr.inc(cSubUnsubscribed)
	}
	return true
}

// retransmitPubSub resends the pub/sub Map-Notifies due at now, removes the
// subscriptions whose Map-Notify went unacknowledged (telling them once),
// expires subscriptions, and returns when something is next due.
func (s *Server) retransmitPubSub(now time.Time) time.Time {
	if !s.cfg.PubSub.Enabled {
		return time.Time{}
	}
	type out struct {
		msg []byte
		to  netip.AddrPort
	}
	var (
		resend []out
		notice []out
		next   time.Time
	)
	soonest := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	t := &s.subs
	t.mu.Lock()
	if now.Before(t.nextSweep) && (t.nextDue.IsZero() || now.Before(t.nextDue)) {
		// Nothing due: do not walk the pending Map-Notifies.
		if !t.nextDue.IsZero() {
			soonest(t.nextDue)
		}
		if t.count > 0 {
			soonest(t.nextSweep)
		}
		t.mu.Unlock()
		return next
	}
	var given []*pubPending
	t.nextDue = time.Time{}
	for _, l := range t.pending {
		for _, p := range l {
			if p.due.After(now) {
				soonest(p.due)
				if t.nextDue.IsZero() || p.due.Before(t.nextDue) {
					t.nextDue = p.due
				}
				continue
			}
			if p.sent >= s.cfg.NotifyRetries {
				given = append(given, p)
				continue
			}
			p.sent++
			p.due = now.Add(s.cfg.NotifyInterval)
			if t.nextDue.IsZero() || p.due.Before(t.nextDue) {
				t.nextDue = p.due
			}
			soonest(p.due)
			resend = append(resend, out{p.msg, p.target})
		}
	}
	for _, p := range given {
		t.dropPending(p)
		s.ctr.inc(cPubSubGivenUp)
		if p.kind == pubUnsubscribe {
			continue
		}
		g, i := t.get(p.sub)
		if i < 0 {
			continue
		}
		sub := &g[i]
		if p.kind == pubConfirm && sub.flags&subConfirmed != 0 {
			// An unconfirmed change (a new target, a refresh) of a
			// confirmed subscription: the subscription stays as it was.
			continue
		}
		// RFC 9437 section 5: a subscription whose Map-Notifies are not
		// acknowledged may be removed; tell the subscriber once. One that
		// never acknowledged anything is removed silently: nothing says
		// the address it named subscribed at all (and an implementation
		// that does not check the key, as lispers.net's, would install the
		// notice's empty locator-set).
		if sub.flags&subConfirmed != 0 {
			var inner wire.Address
			rec := eidRecord(p.sub.prefix.InstanceID, p.sub.prefix.Prefix, &inner)
			rec.Action = wire.DropAuthFailure
			if msg, err := s.pubsubMessage(p.nonce, []wire.EIDRecord{rec}); err == nil {
				notice = append(notice, out{msg, sub.target()})
			}
		}
		t.remove(p.sub.prefix, g, i)
		s.ctr.inc(cSubRemovedUnacked)
		if s.debugging() {
			s.log.Debug("subscription removed: its map-notify was not acknowledged", "eid", p.sub.prefix.Prefix.String(),
				"iid", p.sub.prefix.InstanceID, "xtr_id", p.sub.xtr.String(), "itr", p.target)
		}
	}
	if !now.Before(t.nextSweep) {
		t.nextSweep = now.Add(subSweepInterval)
		s.sweepSubscriptionsLocked(now)
	}
	if t.count > 0 {
		soonest(t.nextSweep)
	}
	t.mu.Unlock()
	for _, o := range resend {
		s.ctr.inc(cPubSubNotifyRetransmitted)
		s.send(o.msg, o.to)
	}
	for _, o := range notice {
		s.ctr.inc(cPubSubNotifySent)
		s.send(o.msg, o.to)
	}
	return next
}

// sweepSubscriptionsLocked removes the subscriptions that expired at now.
// subs.mu is held.
func (s *Server) sweepSubscriptionsLocked(now time.Time) {
	t := &s.subs
	n := now.UnixNano()
	type victim struct {
		p   EIDPrefix
		xtr wire.XTRID
	}
	var dead []victim
	for iid, tbl := range t.byIID {
		for p, g := range tbl.All() {
			for k := range g {
				if g[k].expires < n {
					dead = append(dead, victim{EIDPrefix{InstanceID: iid, Prefix: p}, g[k].xtr})
				}
			}
		}
	}
	for _, v := range dead {
		id := subID{prefix: v.p, xtr: v.xtr}
		if g, i := t.get(id); i >= 0 {
			t.remove(v.p, g, i)
			if c := t.confirming[id]; c != nil {
				t.dropPending(c)
			}
			s.ctr.inc(cSubExpired)
		}
	}
}

// SubscriptionView is one subscription, as the API shows it.
type SubscriptionView struct {
	// InstanceID and Prefix are the subscribed EID-prefix: the registered
	// prefix that held the EID asked for, or the negative prefix.
	InstanceID uint32
	Prefix     netip.Prefix
	// XTRID and SiteID identify the subscriber.
	XTRID  wire.XTRID
	SiteID uint64
	// ITR is where its Map-Notifies go.
	ITR netip.AddrPort
	// Confirmed is set once the subscriber acknowledged a confirmation.
	Confirmed bool
	// Negative is set for a subscription to an unregistered EID.
	Negative bool
	// Nonce is the nonce of the last Map-Notify sent to it (or the last
	// acknowledged request's, if larger).
	Nonce uint64
	// Expires is when it goes away unless the subscriber refreshes it.
	Expires time.Time
	// Pending counts its Map-Notifies awaiting an ack.
	Pending int
}

// Subscriptions returns every subscription, ordered by instance-ID, prefix
// and xTR-ID.
func (s *Server) Subscriptions() []SubscriptionView {
	t := &s.subs
	t.mu.Lock()
	out := make([]SubscriptionView, 0, t.count)
	pend := make(map[subID]int)
	for _, l := range t.pending {
		for _, p := range l {
			pend[p.sub]++
		}
	}
	for iid, tbl := range t.byIID {
		for p, g := range tbl.All() {
			for k := range g {
				sub := &g[k]
				out = append(out, SubscriptionView{
					InstanceID: iid, Prefix: p, XTRID: sub.xtr, SiteID: sub.siteID, ITR: sub.target(),
					Confirmed: sub.flags&subConfirmed != 0, Negative: sub.flags&subNegative != 0,
					Nonce: max(sub.pubNonce, sub.reqNonce), Expires: time.Unix(0, sub.expires),
					Pending: pend[subID{prefix: EIDPrefix{InstanceID: iid, Prefix: p}, xtr: sub.xtr}],
				})
			}
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b SubscriptionView) int {
		return cmp.Or(cmp.Compare(a.InstanceID, b.InstanceID), comparePrefix(a.Prefix, b.Prefix),
			cmp.Compare(a.XTRID.String(), b.XTRID.String()))
	})
	return out
}

// subscriptionCounts returns the number of subscriptions and of pub/sub
// Map-Notifies awaiting an ack.
func (s *Server) subscriptionCounts() (subs, pending int) {
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	return s.subs.count, s.subs.npending
}

// pubsubAckFallback takes a Map-Notify-Ack that wire could not parse when
// its header names a pending pub/sub Map-Notify: lispers.net's ITRs ack
// with a record count but no records, unsigned. It reports whether the
// datagram was taken.
func (s *Server) pubsubAckFallback(pkt []byte, from netip.AddrPort) bool {
	if !s.cfg.PubSub.Enabled || !s.cfg.PubSub.Unauthenticated || len(pkt) < 16 ||
		wire.MessageType(pkt[0]>>4) != wire.TypeMapNotifyAck {
		return false
	}
	nonce := binary.BigEndian.Uint64(pkt[4:12])
	keyID, alg := pkt[12], wire.AlgorithmID(pkt[13])
	if alg != wire.AlgNone {
		return false
	}
	return s.handlePubSubAck(nonce, keyID, alg, nil, from)
}
