package xtr

import (
	crand "crypto/rand"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/lispd/lispd/wire"
)

// reqKey identifies an outstanding Map-Request: the EID asked for (a
// destination host, or the address of a prefix being refreshed) in an
// instance.
type reqKey struct {
	iid uint32
	eid netip.Addr
}

// requestKind says why a Map-Request is sent.
type requestKind uint8

const (
	kindMiss    requestKind = iota // a packet missed the map-cache
	kindSMR                        // an SMR asked for it (s bit)
	kindRefresh                    // the expiry policy or Refresh
	kindResolve                    // Resolve (the API)
)

// pending is one destination with a Map-Request in progress. Its fields
// are guarded by ITR.mu.
type pending struct {
	key      reqKey
	maskLen  uint8
	srcEID   netip.Addr // source of the packet that missed, if any
	kind     requestKind
	created  time.Time
	nonce    uint64 // 0 until the first transmission
	attempts int    // transmissions so far
	nextAt   time.Time
	mr       int // index of the Map-Resolver of the last transmission
	// subscribe sets the N and I bits (ITRConfig.Subscribe when created);
	// cleared at the first transmission when the subscriptions are at
	// their bound and none covers key.
	subscribe bool
	// resolved is set when another Map-Reply installed a mapping that
	// covers key: no more retries; the entry waits only for its own reply
	// until nextAt.
	resolved bool
	held     [][]byte // packets held by MissQueue
	finished bool
	err      error
	done     chan struct{} // closed when finished; made by Resolve
}

// finishLocked marks p done with err (nil: answered) and wakes Resolve.
func (p *pending) finishLocked(err error) {
	if p.finished {
		return
	}
	p.finished = true
	p.err = err
	if p.done != nil {
		close(p.done)
	}
}

// sendJob is a Map-Request to send, copied out of a pending under the lock.
type sendJob struct {
	key       reqKey
	maskLen   uint8
	srcEID    netip.Addr
	smr       bool
	subscribe bool
	nonce     uint64
	mr        netip.AddrPort
}

// request makes (or joins) the outstanding Map-Request for key. A new one
// is sent by RoutineITRControl. It returns the pending request.
func (i *ITR) request(key reqKey, maskLen uint8, src netip.Addr, kind requestKind, now time.Time) (*pending, error) {
	st := i.settings.Load()
	i.mu.Lock()
	if i.stopped {
		i.mu.Unlock()
		return nil, ErrStopped
	}
	p := i.pending[key]
	if p == nil {
		if len(i.pending) >= st.maxPending {
			i.mu.Unlock()
			i.ctr.inc(iPendingOverflow)
			return nil, ErrBusy
		}
		p = i.newPendingLocked(st, key, maskLen, src, kind, now)
		i.mu.Unlock()
		if kind == kindSMR {
			i.ctr.inc(iSMRInvoked)
		}
		i.wake()
		return p, nil
	}
	if p.resolved && kind != kindMiss {
		// Answered through another request meanwhile: ask again for this
		// one, as the caller wants a fresh answer.
		p.resolved = false
	}
	i.mu.Unlock()
	return p, nil
}

// newPendingLocked adds a pending request to be sent. Every kind
// subscribes when st says so: SMR-invoked requests too, so that a mapping
// an ETR says changed is subscribed to again if the Map-Server lost it.
// ITR.mu is held.
func (i *ITR) newPendingLocked(st *itrSettings, key reqKey, maskLen uint8, src netip.Addr, kind requestKind, now time.Time) *pending {
	p := &pending{key: key, maskLen: maskLen, srcEID: src, kind: kind, subscribe: st.subscribe, created: now}
	i.pending[key] = p
	i.fresh = append(i.fresh, p)
	return p
}

// miss handles a packet of the packet path whose destination dst (in the
// device's instance) has no map-cache entry: it counts the miss, starts a
// Map-Request unless one is outstanding for dst, and holds a copy of the
// packet or drops it, as the miss policy says. It is called from the
// packet goroutine and never blocks for long.
func (i *ITR) miss(st *itrSettings, dst, src netip.Addr, pkt []byte, now time.Time) {
	i.ctr.inc(iMisses)
	key := reqKey{iid: st.iid, eid: dst}
	i.mu.Lock()
	if i.stopped {
		i.mu.Unlock()
		i.ctr.inc(iMissDropped)
		return
	}
	p := i.pending[key]
	created := false
	if p == nil {
		if len(i.pending) >= st.maxPending {
			i.mu.Unlock()
			i.ctr.inc(iPendingOverflow)
			i.ctr.inc(iMissDropped)
			return
		}
		p = i.newPendingLocked(st, key, uint8(dst.BitLen()), src, kindMiss, now)
		created = true
	}
	queued := false
	if st.policy == MissQueue && len(p.held) < st.perDest && i.heldTotal < st.total {
		p.held = append(p.held, append(make([]byte, 0, len(pkt)), pkt...))
		i.heldTotal++
		queued = true
	}
	i.mu.Unlock()
	if queued {
		i.ctr.inc(iMissQueued)
	} else {
		i.ctr.inc(iMissDropped)
	}
	if created {
		i.wake()
	}
}

// removePendingLocked takes p out of the tables and returns the packets it
// held. ITR.mu is held.
func (i *ITR) removePendingLocked(p *pending) [][]byte {
	if i.pending[p.key] == p {
		delete(i.pending, p.key)
	}
	if p.nonce != 0 && i.byNonce[p.nonce] == p {
		delete(i.byNonce, p.nonce)
	}
	held := p.held
	p.held = nil
	i.heldTotal -= len(held)
	return held
}

// dropPendingLocked abandons p with err, dropping (and counting) the
// packets it held. ITR.mu is held.
func (i *ITR) dropPendingLocked(p *pending, err error) {
	held := i.removePendingLocked(p)
	i.ctr.add(iMissDropped, uint64(len(held)))
	p.finishLocked(err)
}

// newNonceLocked returns a random non-zero nonce that no outstanding
// request uses. ITR.mu is held.
func (i *ITR) newNonceLocked() uint64 {
	for {
		if n := randomNonce(); !i.nonceInUseLocked(n) {
			return n
		}
	}
}

// nonceInUseLocked reports whether n is the nonce of an outstanding
// request or of a subscribing request still awaiting its confirmation or
// its Map-Reply (pubsub.go). ITR.mu is held.
func (i *ITR) nonceInUseLocked(n uint64) bool {
	if _, used := i.byNonce[n]; used {
		return true
	}
	_, used := i.ps.answered[n]
	return used
}

// randomNonce returns an unpredictable non-zero 64-bit nonce (RFC 9301
// section 5.2: nonces guard against spoofed Map-Replies).
func randomNonce() uint64 {
	var b [8]byte
	for {
		_, _ = crand.Read(b[:]) // never fails on supported platforms
		if n := binary.BigEndian.Uint64(b[:]); n != 0 {
			return n
		}
	}
}

// jobLocked copies what sending p needs. ITR.mu is held.
func jobLocked(p *pending, st *itrSettings) sendJob {
	return sendJob{
		key:       p.key,
		maskLen:   p.maskLen,
		srcEID:    p.srcEID,
		smr:       p.kind == kindSMR,
		subscribe: p.subscribe,
		nonce:     p.nonce,
		mr:        st.mrs[p.mr%len(st.mrs)],
	}
}

// sendFresh sends the first Map-Request of every request created since the
// last call, within the global rate limit; a request the limit refuses is
// abandoned (its held packets dropped) and counted, so that the next packet
// for the destination tries again.
func (i *ITR) sendFresh() {
	now := i.now()
	st := i.settings.Load()
	var jobs []sendJob
	i.mu.Lock()
	fresh := i.fresh
	i.fresh = nil
	for _, p := range fresh {
		if i.pending[p.key] != p || p.nonce != 0 {
			continue // finished meanwhile
		}
		if !i.limiter.AllowN(now, 1) {
			i.ctr.inc(iRequestsRateLimited)
			i.dropPendingLocked(p, ErrRateLimited)
			continue
		}
		if p.subscribe {
			p.nonce = i.subscribeNonceLocked(p)
		} else {
			p.nonce = i.newNonceLocked()
		}
		i.byNonce[p.nonce] = p
		p.attempts = 1
		p.nextAt = now.Add(backoff(st.timeout, 0))
		jobs = append(jobs, jobLocked(p, st))
	}
	i.mu.Unlock()
	i.sendJobs(st, jobs)
}

// sendJobs sends the Map-Requests of jobs and counts them.
func (i *ITR) sendJobs(st *itrSettings, jobs []sendJob) {
	for _, j := range jobs {
		if i.sendRequest(st, j) {
			i.ctr.inc(iRequestsSent)
			if j.subscribe {
				i.ctr.inc(iSubscribeRequestsSent)
			}
		}
	}
}

// onTick retries Map-Requests whose answer is overdue, with exponential
// backoff and to the next Map-Resolver, abandons those out of retries,
// renews the subscriptions that are due, and runs an RLOC-probing round
// when one is due.
func (i *ITR) onTick(now time.Time) {
	st := i.settings.Load()
	var jobs []sendJob
	i.mu.Lock()
	for _, p := range i.pending {
		if p.nonce == 0 || now.Before(p.nextAt) {
			continue
		}
		if p.resolved {
			// Answered through another request; its own reply did not
			// come in time.
			i.removePendingLocked(p)
			p.finishLocked(nil)
			continue
		}
		if p.attempts > st.retries {
			i.ctr.inc(iRequestTimeouts)
			i.dropPendingLocked(p, ErrNoAnswer)
			continue
		}
		if !i.limiter.AllowN(now, 1) {
			// Try again at the next tick; the limit protects the
			// mapping system from a retry storm.
			continue
		}
		p.nextAt = now.Add(backoff(st.timeout, p.attempts))
		p.attempts++
		p.mr++
		i.ctr.inc(iRequestRetries)
		jobs = append(jobs, jobLocked(p, st))
	}
	i.expireAnswersLocked(now)
	i.mu.Unlock()
	i.sendJobs(st, jobs)
	i.refreshSubscriptions(now, st)
	if st.probeEvery > 0 {
		i.probeMu.Lock()
		due := !now.Before(i.nextProbe)
		if due {
			i.nextProbe = now.Add(st.probeEvery)
		}
		i.probeMu.Unlock()
		if due {
			i.probeRound(now, st)
		}
	}
}

// sendRequest sends one Encapsulated Map-Request to a Map-Resolver (RFC
// 9301 sections 5.2, 5.3 and 5.8): the inner IP header goes from the ITR's
// RLOC of the EID's family (the unspecified address when it has none) and
// its control port to the EID on port 4342; the Map-Request carries the
// ITR's RLOCs, the source EID of the packet that missed, and one record.
// A subscribing one (RFC 9437 section 4) also has the record's N bit and
// the I bit with the xTR-ID and site-ID. It reports whether the datagram
// was handed to the Sender.
func (i *ITR) sendRequest(st *itrSettings, j sendJob) bool {
	req := wire.MapRequest{
		SMRInvoked: j.smr,
		Nonce:      j.nonce,
		ITRRLOCs:   st.itrRLOCs,
		Records:    []wire.RequestRecord{wire.NewRequestRecord(j.key.iid, netip.PrefixFrom(j.key.eid, int(j.maskLen)))},
	}
	if j.srcEID.IsValid() && j.srcEID.Is4() == j.key.eid.Is4() {
		req.SourceEID = eidAddress(j.key.iid, j.srcEID)
	}
	if j.subscribe {
		req.Records[0].NotifyRequested = true
		req.XTRIDPresent = true
		req.XTRID = st.xtrID
		req.SiteID = st.siteID
	}
	src := st.srcFor(j.key.eid)
	if !src.IsValid() {
		if j.key.eid.Is4() {
			src = netip.IPv4Unspecified()
		} else {
			src = netip.IPv6Unspecified()
		}
	}
	ecm := wire.NewECM(netip.AddrPortFrom(src, st.port), netip.AddrPortFrom(j.key.eid, ControlPort), &req)
	b, err := ecm.AppendBinary(make([]byte, 0, 256))
	if err != nil {
		i.ctr.inc(iRequestSendErrors)
		i.warn("cannot encode Map-Request", "eid", j.key.eid, "err", err)
		return false
	}
	if err := i.out.Send(b, j.mr); err != nil {
		i.ctr.inc(iRequestSendErrors)
		i.warn("cannot send Map-Request", "map_resolver", j.mr, "err", err)
		return false
	}
	return true
}

// eidAddress returns the wire address of an EID in instance iid.
func eidAddress(iid uint32, a netip.Addr) wire.Address {
	if iid == 0 {
		return wire.AddrFrom(a)
	}
	return wire.IIDAddr(iid, a)
}
