package benchcontrol

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/lispd/lispd/wire"
)

// Publish/subscribe (RFC 9437). The bench plays the ITRs: each subscription
// is an Encapsulated Map-Request with the N bit on its record and the I bit
// with an xTR-ID of its own, sent to the Map-Resolver port; lispd confirms it
// with a Map-Notify signed with the pub/sub key, which the bench checks and
// acknowledges with a Map-Notify-Ack (the Map-Notify with type 5, signed
// again). Many subscriptions share one socket (the ITR-RLOC and the port of
// the Map-Notifies): they differ by xTR-ID, and the bench tells their
// Map-Notifies apart by nonce.

// The pub/sub key of the run and its Key ID.
const (
	pubsubKey   = "bench-pubsub-key"
	pubsubKeyID = 1
)

// pubsubPrefix is the prefix of the publication latency test, the one
// prefix of the site bench-pubsub.
var pubsubPrefix = netip.MustParsePrefix("192.168.0.0/24")

const (
	// subscribeWindow is how many subscribing Map-Requests may await their
	// confirmation at once.
	subscribeWindow = 2048
	// subscribeRetry is how long without a new confirmation before the
	// unconfirmed requests are sent again (lispd retransmits a lost
	// confirmation itself, after map-notify-retransmit, 1 s).
	subscribeRetry = 1500 * time.Millisecond
	subscribeTries = 5
	// publishTimeout is how long a change may take to reach every
	// subscriber: past lispd's first retransmission (1 s), so that a lost
	// publication still arrives.
	publishTimeout = 3 * time.Second
	// stampsSettle is how long the kernel is given to start timestamping
	// received datagrams.
	stampsSettle = 100 * time.Millisecond
	// memorySettle is how long lispd is left idle before its RSS is read.
	memorySettle = 2 * time.Second
	// nonceKShift places the subscription number in a nonce: subscription k
	// of a phase subscribes with nonce base + k<<nonceKShift, and lispd
	// publishes change j to it with that plus j (its nonces count up from
	// the request's).
	nonceKShift = 20
	// MaxPubSubChanges is the most changes the latency test can publish.
	MaxPubSubChanges = 1<<nonceKShift - 1
	// MaxPubSubSubscriptions bounds the subscribers of the latency test and
	// the subscriptions of each memory shape.
	MaxPubSubSubscriptions = 1_000_000
	// compareRate is the preferred rate of PubSubResult.CompareRate.
	compareRate = 50000
	// shapePrefixes is the number of prefixes of the first memory shape
	// (each xTR-ID subscribes to all of them).
	shapePrefixes = 100
)

// The xTR-ID spaces of the phases: xtrID(space, k) is subscriber k's.
const (
	xtrLatency = 1
	xtrShape1  = 2
	xtrShape2  = 3
)

// xtrID returns the xTR-ID of subscriber k of a phase.
func xtrID(space byte, k int) wire.XTRID {
	var x wire.XTRID
	copy(x[:], "lisplab")
	x[8] = space
	binary.BigEndian.PutUint32(x[12:], uint32(k))
	return x
}

// PubSubResult is what the publish/subscribe tests measured.
type PubSubResult struct {
	// Latency is the publication latency test; nil when skipped.
	Latency *PubSubLatency `json:"latency,omitempty"`
	// Memory are the memory shapes, in the order they were created (each
	// on top of the subscriptions before it).
	Memory []PubSubMemory `json:"memory,omitempty"`
	// SubscriptionsDuringSteps is the number of subscriptions lispd held
	// during StepsWithSubscriptions.
	SubscriptionsDuringSteps uint64 `json:"subscriptions_during_steps,omitempty"`
	// StepsWithSubscriptions are the request rate steps run again, with
	// the same rates and length, once the first memory shape's
	// subscriptions exist.
	StepsWithSubscriptions []StepResult `json:"steps_with_subscriptions,omitempty"`
	// PeakWithSubscriptions is the highest reply rate of those steps.
	PeakWithSubscriptions float64 `json:"peak_replies_per_second_with_subscriptions,omitempty"`
	// PeakRatio is PeakWithSubscriptions over the peak without.
	PeakRatio float64 `json:"peak_ratio,omitempty"`
	// CompareRate is the rate at which P99Without and P99With are compared:
	// 50,000/s when it is one of the rates (that of the p99 target of the
	// request path, below saturation, where p99 is not the length of a
	// queue), else the highest one (not "max") at which neither run lost
	// over 1% of the requests, else the first.
	CompareRate int `json:"compare_rate,omitempty"`
	// P99WithoutMicros and P99WithMicros are the p99 reply latencies at
	// CompareRate without and with the subscriptions.
	P99WithoutMicros float64 `json:"compare_p99_without_us,omitempty"`
	P99WithMicros    float64 `json:"compare_p99_with_us,omitempty"`
	// Publications, Retransmissions and GivenUp are lispd's counters at the
	// end of the run: publications sent (first transmissions), pub/sub
	// Map-Notifies sent again for want of an ack, and those given up.
	// Publications is Subscribers*Changes of the latency test unless
	// something else changed a subscribed mapping.
	Publications    uint64 `json:"publications"`
	Retransmissions uint64 `json:"retransmissions"`
	GivenUp         uint64 `json:"given_up"`
}

// PubSubLatency is the publication latency test: Subscribers xTRs subscribe
// to one registered, proxy-replied prefix, then its ETR changes the mapping
// Changes times, one at a time, each once every subscriber acknowledged the
// previous one.
type PubSubLatency struct {
	// Subscribers is the number of subscribed xTR-IDs.
	Subscribers int `json:"subscribers"`
	// Changes is the number of changes published.
	Changes int `json:"changes"`
	// SubscribeSeconds is how long subscribing them all took (requests,
	// confirmations and their acks).
	SubscribeSeconds float64 `json:"subscribe_seconds"`
	// Received is the number of publications received, one per subscriber
	// and change at most; Subscribers*Changes when none was lost.
	Received uint64 `json:"received"`
	// Missing is Subscribers*Changes-Received: publications that did not
	// arrive within 3 s of their change.
	Missing uint64 `json:"missing"`
	// Duplicates counts publications received again (lispd retransmitted
	// them: their ack was lost or late).
	Duplicates uint64 `json:"duplicates"`
	// BadAuth counts Map-Notifies whose authentication failed.
	BadAuth uint64 `json:"bad_auth"`
	// FirstP50Micros is the median, over the changes, of the time from
	// sending the Map-Register to receiving the first publication.
	FirstP50Micros float64 `json:"first_p50_us"`
	// LastP50Micros, LastP99Micros and LastMaxMicros are the median, 99th
	// percentile and maximum, over the changes, of the time from sending
	// the Map-Register to receiving the publication of the last
	// subscriber (a change with a missing publication counts as 3 s).
	LastP50Micros float64 `json:"last_p50_us"`
	LastP99Micros float64 `json:"last_p99_us"`
	LastMaxMicros float64 `json:"last_max_us"`
	// AllP50Micros and AllP99Micros are over every publication received.
	AllP50Micros float64 `json:"all_p50_us"`
	AllP99Micros float64 `json:"all_p99_us"`
	// LispdCPU is lispd's CPU use over the changes, in percent of one core.
	LispdCPU float64 `json:"lispd_cpu_percent"`
}

// PubSubMemory is lispd's memory before and after one shape of confirmed
// subscriptions.
type PubSubMemory struct {
	// XTRIDs subscribe to PrefixesPerXTR registered prefixes each, Prefixes
	// distinct ones in all, making Subscriptions subscriptions.
	XTRIDs         int `json:"xtr_ids"`
	PrefixesPerXTR int `json:"prefixes_per_xtr"`
	Prefixes       int `json:"prefixes"`
	Subscriptions  int `json:"subscriptions"`
	// Seconds is how long creating and confirming them took.
	Seconds float64 `json:"seconds"`
	// PerSecond is Subscriptions over Seconds.
	PerSecond float64 `json:"per_second"`
	// Held is the number of subscriptions lispd held after the shape.
	Held uint64 `json:"held"`
	// RSSBefore and RSSAfter are lispd's VmRSS before subscribing (after
	// 1 s idle) and 2 s after the last subscription was confirmed.
	RSSBefore uint64 `json:"rss_before_bytes"`
	RSSAfter  uint64 `json:"rss_after_bytes"`
	// BytesPerSubscription is (RSSAfter-RSSBefore)/Subscriptions. RSS is
	// a coarse measure of a Go heap: lispd cannot be asked to collect its
	// garbage, freed memory is kept for reuse, and the heap grows to twice
	// what is live between collections; so the figure depends on what
	// earlier phases left (LiveBytesPerSubscription is the precise one).
	BytesPerSubscription float64 `json:"bytes_per_subscription"`
	// LiveBytesPerSubscription is the live heap a subscription of the
	// shape takes in the Map-Server code lispd runs (package mapserver of
	// this build), measured in this process: the same registrations and
	// subscriptions (each acknowledged), HeapAlloc after runtime.GC before
	// and after. A Go heap grows to about twice its live size between
	// collections (GOGC=100), so the resident cost is about twice this.
	LiveBytesPerSubscription float64 `json:"live_bytes_per_subscription"`
}

// subscriberSet is the ITR side of the n subscriptions of one phase, all on
// one socket. Subscription k subscribes with nonce base+k<<nonceKShift;
// change j of the latency test reaches it as base+k<<nonceKShift+j.
type subscriberSet struct {
	conn *loadConn
	base uint64
	n    int
	xtr  func(k int) wire.XTRID
	eid  func(k int) netip.Addr
	done chan struct{}
	// progress is signalled (without blocking) at every new confirmation
	// and when every subscriber received the current change.
	progress chan struct{}

	mu         sync.Mutex
	confirmed  []bool
	nconfirmed int
	replies    uint64 // Map-Replies: subscriptions answered as plain requests
	badAuth    uint64
	// The current change of the latency test.
	change   uint64
	sentAt   int64 // Unix nanoseconds
	got      []bool
	ngot     int
	first    time.Duration
	last     time.Duration
	received uint64
	dups     uint64
	hist     *histogram
}

// newSubscriberSet opens the socket of n subscriptions and starts its
// receiver; with stamps, the kernel timestamps the datagrams it receives.
func newSubscriberSet(p *lispdProc, n int, stamps bool, xtr func(k int) wire.XTRID, eid func(k int) netip.Addr) (*subscriberSet, error) {
	c, err := dialLoad(p.addr, socketBuffer)
	if err != nil {
		return nil, err
	}
	if stamps {
		if err := c.EnableStamps(); err != nil {
			c.Close()
			return nil, err
		}
		// Linux switches receive timestamps on in a work queue: until
		// then datagrams are stamped when read.
		time.Sleep(stampsSettle)
	}
	s := &subscriberSet{
		conn:      c,
		base:      1 + rand.Uint64N(1<<61),
		n:         n,
		xtr:       xtr,
		eid:       eid,
		done:      make(chan struct{}),
		progress:  make(chan struct{}, 1),
		confirmed: make([]bool, n),
	}
	go s.receive() // RoutineSubscriberReceiver
	return s, nil
}

// close stops the receiver.
func (s *subscriberSet) close() {
	s.conn.Close()
	<-s.done
}

// nonce is the request nonce of subscription k.
func (s *subscriberSet) nonce(k int) uint64 { return s.base + uint64(k)<<nonceKShift }

// receive checks and acknowledges the Map-Notifies until the socket closes.
func (s *subscriberSet) receive() {
	defer close(s.done)
	auth := wire.NewAuthenticator([]byte(pubsubKey))
	bufs := make([][]byte, maxLoadBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 0, 512)
	}
	acks := make([][]byte, 0, maxLoadBatch)
	handle := func(b []byte, at int64) {
		if len(b) >= 12 && wire.MessageType(b[0]>>4) == wire.TypeMapReply {
			s.mu.Lock()
			s.replies++
			s.mu.Unlock()
			return
		}
		if len(b) < 16 || wire.MessageType(b[0]>>4) != wire.TypeMapNotify {
			return
		}
		if b[12] != pubsubKeyID || auth.Verify(b) != nil {
			s.mu.Lock()
			s.badAuth++
			s.mu.Unlock()
			return
		}
		// The Map-Notify-Ack: the Map-Notify with type 5, signed again.
		a := append(bufs[len(acks)][:0], b...)
		if ackNotify(auth, a) == nil {
			acks = append(acks, a)
		}
		s.notified(binary.BigEndian.Uint64(b[4:12]), at)
	}
	for {
		acks = acks[:0]
		if err := s.conn.RecvBatchStamped(handle); err != nil {
			return
		}
		if len(acks) > 0 {
			if _, err := s.conn.SendBatch(acks); err != nil && isClosed(err) {
				return
			}
		}
	}
}

// notified records a Map-Notify with nonce that arrived at at (Unix
// nanoseconds).
func (s *subscriberSet) notified(nonce uint64, at int64) {
	d := nonce - s.base
	k, j := d>>nonceKShift, d&(1<<nonceKShift-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case nonce < s.base || k >= uint64(s.n):
		return // not for this set
	case j == 0: // a confirmation
		if !s.confirmed[k] {
			s.confirmed[k] = true
			s.nconfirmed++
			s.signal()
		}
		return
	case j != s.change || s.got == nil || s.got[k]:
		s.dups++
		return
	}
	s.got[k] = true
	s.ngot++
	s.received++
	// The kernel's arrival times: the receiver's own delays do not count.
	lat := time.Duration(at - s.sentAt)
	if s.ngot == 1 || lat < s.first {
		s.first = lat
	}
	s.last = max(s.last, lat)
	s.hist.add(lat)
	if s.ngot == s.n {
		s.signal()
	}
}

// signal wakes the waiting phase; mu is held.
func (s *subscriberSet) signal() {
	select {
	case s.progress <- struct{}{}:
	default:
	}
}

// subscribeRequest encodes the subscribing Encapsulated Map-Request of
// subscription k: the ITR-RLOC and the inner source are the set's socket,
// where lispd sends the Map-Notifies.
func (s *subscriberSet) subscribeRequest(k int) ([]byte, error) {
	return subscribeRequest(s.conn.LocalAddr(), s.eid(k), s.xtr(k), s.nonce(k))
}

// subscribeRequest encodes the Encapsulated Map-Request with which the
// xTR xtr at itr (ITR-RLOC, and the port of the Map-Notifies) subscribes to
// the mapping of eid.
func subscribeRequest(itr netip.AddrPort, eid netip.Addr, xtr wire.XTRID, nonce uint64) ([]byte, error) {
	rec := wire.NewRequestRecord(0, netip.PrefixFrom(eid, eid.BitLen()))
	rec.NotifyRequested = true
	req := &wire.MapRequest{
		Nonce:        nonce,
		XTRIDPresent: true,
		XTRID:        xtr,
		SiteID:       1,
		ITRRLOCs:     []wire.Address{wire.AddrFrom(itr.Addr())},
		Records:      []wire.RequestRecord{rec},
	}
	b, err := wire.NewECM(itr, netip.AddrPortFrom(eid, 4342), req).AppendBinary(nil)
	if err != nil {
		return nil, fmt.Errorf("benchcontrol: encode subscribing Map-Request: %w", err)
	}
	return b, nil
}

// ackNotify turns a received pub/sub Map-Notify into its Map-Notify-Ack in
// place: type 5, signed again with the pub/sub key.
func ackNotify(auth *wire.Authenticator, b []byte) error {
	b[0] = byte(wire.TypeMapNotifyAck)<<4 | b[0]&0x0f
	return auth.Sign(b)
}

// state returns the confirmation count and the counts of unexpected
// answers.
func (s *subscriberSet) state() (confirmed int, replies, badAuth uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nconfirmed, s.replies, s.badAuth
}

// subscribe sends the set's subscribing Map-Requests from tx, at most
// subscribeWindow awaiting their confirmation, and returns once every
// confirmation was received and acknowledged and lispd counts them all
// confirmed.
func (s *subscriberSet) subscribe(ctx context.Context, p *lispdProc, tx *loadConn) error {
	c0, err := p.counters(ctx)
	if err != nil {
		return err
	}
	batch := make([][]byte, 0, maxLoadBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := tx.SendBatch(batch)
		batch = batch[:0]
		if err != nil {
			return fmt.Errorf("benchcontrol: send subscribing Map-Request: %w", err)
		}
		return nil
	}
	send := func(k int) error {
		b, err := s.subscribeRequest(k)
		if err != nil {
			return err
		}
		if batch = append(batch, b); len(batch) == maxLoadBatch {
			return flush()
		}
		return nil
	}
	next, tries := 0, 0
	lastCount, lastProgress := -1, time.Now()
	for {
		count, replies, badAuth := s.state()
		switch {
		case replies > 0:
			return fmt.Errorf("benchcontrol: lispd answered %d subscribing Map-Requests with Map-Replies (is pub/sub on, and within its limits?)", replies)
		case badAuth > 0:
			return fmt.Errorf("benchcontrol: %d pub/sub Map-Notifies failed authentication", badAuth)
		case count == s.n:
			return s.waitConfirmed(ctx, p, c0["mapserver_subscriptions_confirmed"])
		}
		now := time.Now()
		if count != lastCount {
			lastCount, lastProgress = count, now
		}
		for next < s.n && next-count < subscribeWindow {
			if err := send(next); err != nil {
				return err
			}
			next++
		}
		if now.Sub(lastProgress) > subscribeRetry {
			if tries++; tries >= subscribeTries {
				return fmt.Errorf("benchcontrol: %d of %d subscriptions confirmed; the rest not after %d tries", count, s.n, tries)
			}
			s.mu.Lock()
			var again []int
			for k := range next {
				if !s.confirmed[k] {
					again = append(again, k)
				}
			}
			s.mu.Unlock()
			for _, k := range again {
				if err := send(k); err != nil {
					return err
				}
			}
			lastProgress = now
		}
		if err := flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.progress:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitConfirmed waits until lispd's subscriptions_confirmed counter is the
// set's size past before: every ack verified, no confirmation pending.
func (s *subscriberSet) waitConfirmed(ctx context.Context, p *lispdProc, before uint64) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		cs, err := p.counters(ctx)
		if err != nil {
			return err
		}
		got := cs["mapserver_subscriptions_confirmed"] - before
		if got >= uint64(s.n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("benchcontrol: lispd confirmed %d of %d subscriptions (acks refused: %d)", got, s.n, cs["mapserver_pubsub_ack_auth_failure"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startChange prepares the set for the publications of change j, whose
// Map-Register is sent now.
func (s *subscriberSet) startChange(j uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got = make([]bool, s.n)
		s.hist = &histogram{}
	}
	clear(s.got)
	s.change, s.ngot, s.first, s.last = j, 0, 0, 0
	s.sentAt = time.Now().UnixNano()
}

// changeState returns how many subscribers received the current change and
// the latency of the first and of the last of them.
func (s *subscriberSet) changeState() (n int, first, last time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ngot, s.first, s.last
}

// pubsubRecord is the mapping of pubsubPrefix at change j: its locator
// moves to 127.2.0.0+j.
func pubsubRecord(j int) wire.EIDRecord {
	r := wire.NewEIDRecord(0, pubsubPrefix)
	r.RecordTTL = 1440
	r.Authoritative = true
	r.Locators = []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Local: true,
		Address: wire.AddrFrom(addrPlus(netip.MustParseAddr("127.2.0.0"), uint32(j)))}}
	return r
}

// pubsubLatency runs the publication latency test: n subscribers of
// pubsubPrefix, then as many changes of its mapping as asked, one at a
// time.
func pubsubLatency(ctx context.Context, p *lispdProc, n, changes int) (*PubSubLatency, error) {
	res := &PubSubLatency{Subscribers: n, Changes: changes}
	reg, err := newRegistrar(p)
	if err != nil {
		return nil, err
	}
	defer reg.close()
	if err := reg.registerRecords(ctx, sitePubSub, []wire.EIDRecord{pubsubRecord(0)}); err != nil {
		return nil, err
	}
	set, err := newSubscriberSet(p, n, true,
		func(k int) wire.XTRID { return xtrID(xtrLatency, k) },
		func(int) netip.Addr { return addrPlus(pubsubPrefix.Addr(), 1) })
	if err != nil {
		return nil, err
	}
	defer set.close()
	tx, err := dialLoad(p.addr, 4<<20)
	if err != nil {
		return nil, err
	}
	defer tx.Close()
	start := time.Now()
	if err := set.subscribe(ctx, p, tx); err != nil {
		return nil, err
	}
	res.SubscribeSeconds = time.Since(start).Seconds()

	c0, err := p.counters(ctx)
	if err != nil {
		return nil, err
	}
	acked0 := c0["mapserver_pubsub_map_notify_acked"]
	cpu0, err := cpuTime(p.pid())
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	var firsts, lasts []time.Duration
	for j := 1; j <= changes; j++ {
		reg.nonce++
		msg, err := buildRegisterRecords(sitePubSub, []wire.EIDRecord{pubsubRecord(j)}, reg.nonce, false)
		if err != nil {
			return nil, err
		}
		set.startChange(uint64(j))
		if _, err := reg.conn.SendBatch([][]byte{msg}); err != nil {
			return nil, fmt.Errorf("benchcontrol: send Map-Register: %w", err)
		}
		deadline := time.Now().Add(publishTimeout)
		for {
			got, first, last := set.changeState()
			if got == n || time.Now().After(deadline) {
				if got < n {
					last = publishTimeout
				}
				firsts = append(firsts, first)
				lasts = append(lasts, last)
				break
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-set.progress:
			case <-time.After(10 * time.Millisecond):
			}
		}
		// The next change once lispd took every ack of this one (what is
		// still pending would be retransmitted after 1 s).
		if err := waitCounter(ctx, p, "mapserver_pubsub_map_notify_acked", acked0+uint64(j*n), time.Second); err != nil {
			return nil, err
		}
	}
	elapsed := time.Since(t0)
	cpu1, err := cpuTime(p.pid())
	if err != nil {
		return nil, err
	}
	res.LispdCPU = 100 * (cpu1 - cpu0).Seconds() / elapsed.Seconds()
	set.mu.Lock()
	res.Received, res.Duplicates, res.BadAuth = set.received, set.dups, set.badAuth
	res.AllP50Micros = micros(set.hist.quantile(0.50))
	res.AllP99Micros = micros(set.hist.quantile(0.99))
	set.mu.Unlock()
	res.Missing = uint64(n*changes) - res.Received
	res.FirstP50Micros = micros(nearestRank(firsts, 0.50))
	res.LastP50Micros = micros(nearestRank(lasts, 0.50))
	res.LastP99Micros = micros(nearestRank(lasts, 0.99))
	res.LastMaxMicros = micros(nearestRank(lasts, 1))
	return res, nil
}

// waitCounter waits until lispd's counter name reaches want, at most d; it
// is not an error when it does not (the caller's figures show it).
func waitCounter(ctx context.Context, p *lispdProc, name string, want uint64, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		cs, err := p.counters(ctx)
		if err != nil {
			return err
		}
		if cs[name] >= want || time.Now().After(deadline) {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// nearestRank returns quantile q (0 to 1) of ds by the nearest-rank method,
// or 0 for none.
func nearestRank(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// micros converts a duration to microseconds.
func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// memoryShape is a shape of subscriptions: xTR-ID k's j-th subscription
// (j < perXTR) is to registered prefix prefix(k, j).
type memoryShape struct {
	space    byte
	xtrs     int
	perXTR   int
	prefixes int
	n        int
	prefix   func(k, j int) int
}

// memoryShapes returns the two shapes of n subscriptions over the first
// registered prefixes (at least one): xTR-IDs subscribing to 100 prefixes
// each (1,000 x 100 for 100,000), and xTR-IDs subscribing to one prefix
// each, a different one while there are enough (100,000 x 1).
func memoryShapes(n, registered int) [2]memoryShape {
	p1 := min(shapePrefixes, registered)
	return [2]memoryShape{
		{space: xtrShape1, xtrs: (n + p1 - 1) / p1, perXTR: p1, prefixes: min(p1, n), n: n,
			prefix: func(_, j int) int { return j }},
		{space: xtrShape2, xtrs: n, perXTR: 1, prefixes: min(n, registered), n: n,
			prefix: func(k, _ int) int { return k % registered }},
	}
}

// subscribeShape creates and confirms the subscriptions of shape in lispd,
// and reads lispd's RSS before (after settle/2 idle) and after (settle after
// the last confirmation).
func subscribeShape(ctx context.Context, p *lispdProc, sh memoryShape, settle time.Duration) (PubSubMemory, error) {
	res := PubSubMemory{XTRIDs: sh.xtrs, PrefixesPerXTR: sh.perXTR, Prefixes: sh.prefixes, Subscriptions: sh.n}
	// Subscription i is xTR-ID i/perXTR's (i%perXTR)-th: consecutive
	// requests are for different prefixes.
	set, err := newSubscriberSet(p, sh.n, false,
		func(i int) wire.XTRID { return xtrID(sh.space, i/sh.perXTR) },
		func(i int) netip.Addr {
			k, j := i/sh.perXTR, i%sh.perXTR
			return addrPlus(prefixOf(sh.prefix(k, j)).Addr(), uint32(1+k%14))
		})
	if err != nil {
		return res, err
	}
	defer set.close()
	tx, err := dialLoad(p.addr, 4<<20)
	if err != nil {
		return res, err
	}
	defer tx.Close()
	time.Sleep(settle / 2)
	if res.RSSBefore, _, err = memory(p.pid()); err != nil {
		return res, err
	}
	start := time.Now()
	if err := set.subscribe(ctx, p, tx); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	res.PerSecond = float64(sh.n) / res.Seconds
	time.Sleep(settle)
	if res.RSSAfter, _, err = memory(p.pid()); err != nil {
		return res, err
	}
	res.BytesPerSubscription = (float64(res.RSSAfter) - float64(res.RSSBefore)) / float64(sh.n)
	cs, err := p.counters(ctx)
	if err != nil {
		return res, err
	}
	res.Held = heldSubscriptions(cs)
	return res, nil
}

// heldSubscriptions is the number of subscriptions lispd holds, from its
// counters.
func heldSubscriptions(cs map[string]uint64) uint64 {
	gone := cs["mapserver_subscriptions_unsubscribed"] + cs["mapserver_subscriptions_expired"] +
		cs["mapserver_subscriptions_removed_unacked"]
	return cs["mapserver_subscriptions_created"] - min(gone, cs["mapserver_subscriptions_created"])
}

// compareSteps fills the comparison of the request steps without and with
// subscriptions.
func (r *PubSubResult) compareSteps(without []StepResult, peakWithout float64) {
	if len(r.StepsWithSubscriptions) == 0 || len(without) != len(r.StepsWithSubscriptions) {
		return
	}
	for _, s := range r.StepsWithSubscriptions {
		r.PeakWithSubscriptions = max(r.PeakWithSubscriptions, s.RepliesPerSecond)
	}
	if peakWithout > 0 {
		r.PeakRatio = r.PeakWithSubscriptions / peakWithout
	}
	at := slices.IndexFunc(without, func(s StepResult) bool { return s.Rate == compareRate })
	if at < 0 {
		at = 0
		for i, s := range without {
			w := r.StepsWithSubscriptions[i]
			if s.Rate > 0 && s.Loss <= 0.01 && w.Loss <= 0.01 && s.Rate >= without[at].Rate {
				at = i
			}
		}
	}
	r.CompareRate = without[at].Rate
	r.P99WithoutMicros = without[at].P99Micros
	r.P99WithMicros = r.StepsWithSubscriptions[at].P99Micros
}
