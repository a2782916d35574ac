package mapserver

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/lispd/lispd/wire"
)

// maxUseTTL caps the registration lifetime a Map-Register with the T bit can
// ask for, so that a huge Record TTL cannot overflow time arithmetic.
const maxUseTTL = 7 * 24 * time.Hour

// authPool holds Authenticators; each use sets the key it needs.
var authPool = sync.Pool{New: func() any { return wire.NewAuthenticator(nil) }}

// verifyAuth checks the authentication data of a received message with key.
func verifyAuth(msg, key []byte) error {
	a := authPool.Get().(*wire.Authenticator)
	a.SetKey(key)
	err := a.Verify(msg)
	authPool.Put(a)
	return err
}

// signAuth fills the authentication data of an encoded message with key.
func signAuth(msg, key []byte) error {
	a := authPool.Get().(*wire.Authenticator)
	a.SetKey(key)
	err := a.Sign(msg)
	authPool.Put(a)
	return err
}

// regOutcome is the verdict on a Map-Register before it is applied.
type regOutcome int

const (
	regOK regOutcome = iota
	regUnknownSite
	regNotAllowed
	regAuthFailure
)

// checkRegister finds the one site that may register every record of m and
// verifies the authentication data of raw with that site's key. keys gets
// the EID-prefix of each record.
func checkRegister(tbl *siteTable, m *wire.MapRegister, raw []byte, keys []EIDPrefix) (*site, regOutcome, error) {
	var (
		s         *site
		unknown   int
		forbidden int
	)
	for i := range m.Records {
		iid, p, ok := m.Records[i].Prefix()
		if !ok || !validPrefix(p) {
			// Not an IP EID-prefix: no site holds it.
			unknown++
			continue
		}
		keys[i] = EIDPrefix{InstanceID: iid, Prefix: p}
		rs, found := tbl.siteFor(iid, p)
		switch {
		case !found:
			unknown++
		case rs == nil:
			forbidden++
		case s == nil:
			s = rs
		case s != rs:
			// Records of two different sites.
			forbidden++
		}
	}
	switch {
	case s == nil && forbidden == 0:
		return nil, regUnknownSite, nil
	case s == nil || unknown > 0 || forbidden > 0:
		return nil, regNotAllowed, nil
	}
	if m.KeyID != s.keyID || m.AlgorithmID != s.algorithm {
		return s, regAuthFailure, nil
	}
	if err := verifyAuth(raw, s.key); err != nil {
		return s, regAuthFailure, err
	}
	return s, regOK, nil
}

// handleRegister processes a Map-Register (RFC 9301 sections 5.6 and 8.2).
// raw is the message as received, over which the authentication data is
// checked; the Map-Notify that acknowledges it goes out through out.
func (s *Server) handleRegister(m *wire.MapRegister, raw []byte, from netip.AddrPort, out Sender) {
	if len(m.Records) == 0 {
		s.ctr.inc(cRegisterNoRecords)
		return
	}
	keys := make([]EIDPrefix, len(m.Records))
	for {
		st := s.state.Load()
		site, outcome, err := checkRegister(st.sites, m, raw, keys)
		switch outcome {
		case regUnknownSite:
			s.ctr.inc(cRegisterUnknownSite)
			s.warn("map-register for no configured site", "from", from)
			return
		case regNotAllowed:
			s.ctr.inc(cRegisterPrefixNotAllowed)
			s.warn("map-register with an EID-prefix its site may not register", "from", from)
			return
		case regAuthFailure:
			s.ctr.inc(cRegisterAuthFailure)
			reason := "key_id_or_algorithm_mismatch"
			if err != nil {
				reason = wire.ErrorReason(err)
			}
			s.warn("map-register failed authentication", "site", site.name, "from", from,
				"key_id", m.KeyID, "algorithm", m.AlgorithmID, "reason", reason)
			return
		}
		s.regMu.Lock()
		if s.state.Load().sites != st.sites {
			// SetSites ran meanwhile: check against the new sites.
			s.regMu.Unlock()
			continue
		}
		res := s.applyRegisterLocked(site, m, keys, from)
		notifies := s.prepareNotifiesLocked(res.jobs)
		pubs := s.preparePublicationsLocked(s.takePubJobsLocked())
		s.regMu.Unlock()
		s.sendPubSub(pubs)
		s.sendNotifies(notifies)
		switch {
		case res.replay:
			s.ctr.inc(cRegisterReplays)
			s.warn("map-register refused: a replay of a register already superseded", "site", site.name, "from", from,
				"nonce", m.Nonce)
			return
		case res.refused > 0:
			// What fit was applied; no Map-Notify says all of it was.
			s.warn("map-register refused in part: registration limit reached", "site", site.name, "from", from,
				"limit", res.reason.String(), "refused_records", res.refused, "records", len(m.Records))
			return
		}
		s.ctr.inc(cRegisterOK)
		if m.WantMapNotify {
			s.sendRegisterNotify(out, site, m, from)
		}
		return
	}
}

// limitReason says which limit refused a new registration.
type limitReason uint8

const (
	limitNone limitReason = iota
	limitSitePrefixes
	limitSiteRegistrations
	limitGlobal
)

func (r limitReason) String() string {
	switch r {
	case limitSitePrefixes:
		return "site max-prefixes"
	case limitSiteRegistrations:
		return "site max-registrations"
	case limitGlobal:
		return "map-server max-registrations"
	}
	return "none"
}

// counter returns the counter of refusals for r.
func (r limitReason) counter() counter {
	switch r {
	case limitSitePrefixes:
		return cRefusedSitePrefixes
	case limitSiteRegistrations:
		return cRefusedSiteRegistrations
	}
	return cRefusedGlobal
}

// limitLocked returns the limit, if any, that refuses site a new
// registration: newPrefix when the site has not registered the prefix yet,
// replacing the number of other xTRs' registrations it replaces (then it
// adds none). regMu must be held.
func (s *Server) limitLocked(site *site, newPrefix bool, replacing int) limitReason {
	switch {
	case newPrefix && s.reg.perSitePrefixes[site.name] >= site.maxPrefixes:
		return limitSitePrefixes
	case replacing > 0:
		return limitNone
	case s.reg.perSite[site.name] >= site.maxRegs:
		return limitSiteRegistrations
	case s.reg.total >= s.cfg.MaxRegistrations:
		return limitGlobal
	}
	return limitNone
}

// regResult is what applying a Map-Register did.
type regResult struct {
	// jobs are the unsolicited Map-Notifies the changes call for.
	jobs []notifyJob
	// replay is set when the register was refused as a replay; nothing
	// was applied.
	replay bool
	// refused counts the records refused by a limit, reason the first
	// limit that refused one.
	refused int
	reason  limitReason
}

// applyRegisterLocked stores the records of an authenticated Map-Register,
// unless it is a replay (replay.go), replacing the registrations of other
// xTRs that the site's policy says it replaces (policy.go) and refusing
// the new registrations beyond the limits. regMu must be held.
func (s *Server) applyRegisterLocked(site *site, m *wire.MapRegister, keys []EIDPrefix, from netip.AddrPort) regResult {
	now := s.clock.Now()
	x := xtrKey{addr: from.Addr()}
	if m.XTRIDPresent {
		x = xtrKey{id: m.XTRID, hasID: true}
	}
	d := registerDigest(m)
	verdict := s.replayLocked(m, keys, x, d, now)
	switch verdict {
	case isReplay:
		return regResult{replay: true}
	case nonceReset:
		s.ctr.inc(cRegisterNonceResets)
		s.log.Warn("map-register accepted although its nonce is older than the xTR's last: its clock went back, or it was refused for a minute",
			"site", site.name, "xtr", x.String(), "from", from)
	}
	// It registers again: unsolicited Map-Notifies go to it again.
	s.notify.resetUnacked(x)
	var res regResult
	withdrew, content := false, false
	for i := range m.Records {
		rec := &m.Records[i]
		key := keys[i]
		if rec.RecordTTL == 0 {
			// A Record TTL of 0 withdraws this xTR's registration.
			withdrew = true
			e := s.reg.entries[key]
			if e == nil {
				continue
			}
			_, old := e.find(x)
			if old == nil {
				continue
			}
			s.replay.remember(old.digest, replayChange)
			s.reg.remove(e, x)
			content = true
			s.ctr.inc(cDeregistered)
			s.notify.cancel(pendKey{prefix: key, xtr: x})
			// One line per registration event (not per refresh): the
			// operator's record of what registered and when.
			s.log.Info("registration withdrawn by the ETR", "site", site.name, "eid", key.Prefix.String(), "iid", key.InstanceID, "xtr", x.String())
			res.jobs = s.republishLocked(e, res.jobs, &x)
			continue
		}
		e := s.reg.entries[key]
		var (
			old     *registration
			victims []*registration
		)
		if e != nil {
			_, old = e.find(x)
			if site.policy == PolicyAuto && e.noteReturn(x) {
				s.log.Warn("EID-prefix registered by several ETRs without xTR-IDs: merging their registrations from now on (set the site's registration-policy to merge to say so)",
					"site", site.name, "eid", key.Prefix.String(), "iid", key.InstanceID, "xtr", x.String())
			}
			for _, r := range e.regs {
				if site.policy.replaces(x, m.MergeRequest, rec, e, r.xtr) {
					victims = append(victims, r)
				}
			}
		}
		var oldDigest uint64
		if old != nil {
			oldDigest = old.digest
		} else if why := s.limitLocked(site, e == nil, len(victims)); why != limitNone {
			res.refused++
			if res.reason == limitNone {
				res.reason = why
			}
			s.ctr.inc(why.counter())
			continue
		}
		timeout := s.cfg.RegistrationTimeout
		if m.UseTTL {
			timeout = min(time.Duration(rec.RecordTTL)*time.Minute, maxUseTTL)
		}
		reg := &registration{
			prefix:     key,
			site:       site.name,
			xtr:        x,
			siteID:     m.SiteID,
			record:     cloneRecord(*rec),
			proxy:      m.ProxyReply,
			wantNotify: m.WantMapNotify,
			merge:      m.MergeRequest,
			keyID:      m.KeyID,
			algorithm:  m.AlgorithmID,
			source:     from,
			first:      now,
			last:       now,
			expires:    now.Add(timeout),
			digest:     d,
			nonce:      m.Nonce,
		}
		e, created, changed := s.reg.upsert(reg)
		if oldDigest != d {
			kind := replayRefresh
			if changed {
				kind = replayChange
			}
			s.replay.remember(oldDigest, kind)
		}
		if created {
			s.log.Info("registered", "site", site.name, "eid", key.Prefix.String(), "iid", key.InstanceID, "xtr", x.String(), "from", from)
			s.poke()
		}
		for _, v := range victims {
			e.noteReplaced(v.xtr)
			s.replay.remember(v.digest, replayChange)
			s.reg.remove(e, v.xtr)
			s.notify.cancel(pendKey{prefix: key, xtr: v.xtr})
			s.notify.resetUnacked(v.xtr)
			s.ctr.inc(cReplaced)
			s.log.Info("registration replaced by another xTR's", "site", site.name, "eid", key.Prefix.String(), "iid", key.InstanceID,
				"policy", site.policy.String(), "old_xtr", v.xtr.String(), "xtr", x.String(), "from", from)
			changed = true
		}
		content = content || changed
		if changed {
			// A plain refresh leaves the published view as it is.
			res.jobs = s.republishLocked(e, res.jobs, &x)
		}
	}
	if withdrew && m.Nonce != 0 {
		// A copy of the withdrawal must not withdraw a later registration.
		s.replay.remember(d, replayChange)
	}
	if x.hasID && timeNonce(m.Nonce, now) {
		s.replay.noteNonce(x.id, m.Nonce, now, verdict == nonceReset)
	}
	s.markDirtyLocked(content)
	return res
}

// republishLocked recomputes the published view of e after a change and
// installs it in the request path's table (or removes it when e has no
// registration left). When the merged RLOC-set changed, it appends an
// unsolicited Map-Notify for every other registered xTR of the prefix
// (changedBy, when not nil, is the xTR whose register caused the change and
// that learns the result from its own Map-Notify). regMu must be held.
func (s *Server) republishLocked(e *prefixEntry, jobs []notifyJob, changedBy *xtrKey) []notifyJob {
	st := s.state.Load()
	if len(e.regs) == 0 {
		if r := st.regs[e.prefix.InstanceID]; r != nil {
			r.t.Store(r.t.Load().DeletePersist(e.prefix.Prefix))
		}
		if e.pub != nil {
			s.pubJobs = append(s.pubJobs, pubJob{prefix: e.prefix})
		}
		e.pub = nil
		return jobs
	}
	pub, lk := e.merge(st.sites)
	changed := e.pub != nil && lk != e.locKey
	if e.pub == nil || !sameRecord(&e.pub.record, &pub.record) {
		s.pubJobs = append(s.pubJobs, pubJob{prefix: e.prefix, rec: &pub.record})
	}
	if e.pub == nil || !samePublished(e.pub, pub) {
		r := st.regs[e.prefix.InstanceID]
		if r == nil {
			r = new(iidRegs)
			r.t.Store(new(bartTable))
			regs := maps.Clone(st.regs)
			regs[e.prefix.InstanceID] = r
			s.state.Store(&state{sites: st.sites, regs: regs})
		}
		r.t.Store(r.t.Load().InsertPersist(e.prefix.Prefix, pub))
		e.pub = pub
	}
	e.locKey = lk
	if !changed {
		return jobs
	}
	site := st.sites.byName[e.site]
	if site == nil {
		return jobs
	}
	for _, reg := range e.sortedRegs() {
		if changedBy != nil && reg.xtr == *changedBy {
			continue
		}
		jobs = append(jobs, notifyJob{
			site:   site,
			key:    pendKey{prefix: e.prefix, xtr: reg.xtr},
			target: reg.source,
			record: e.pub.record,
			siteID: reg.siteID,
		})
	}
	return jobs
}

// samePublished reports whether two views answer requests identically.
func samePublished(a, b *published) bool {
	return a.proxy == b.proxy && a.site == b.site && slices.Equal(a.etrs, b.etrs) &&
		sameRecord(&a.record, &b.record)
}

// sendRegisterNotify acknowledges a Map-Register that asked for it (M bit)
// with a Map-Notify carrying the same nonce, Key ID, algorithm, xTR-ID,
// site-ID and records, authenticated with the site key and the same
// authentication data length as the register, sent to the register's
// source address and port (RFC 9301 section 5.7).
func (s *Server) sendRegisterNotify(out Sender, site *site, m *wire.MapRegister, to netip.AddrPort) {
	n := wire.MapNotify{
		XTRIDPresent: m.XTRIDPresent,
		Nonce:        m.Nonce,
		KeyID:        m.KeyID,
		AlgorithmID:  m.AlgorithmID,
		AuthData:     zeroAuth[:len(m.AuthData)],
		Records:      m.Records,
		XTRID:        m.XTRID,
		SiteID:       m.SiteID,
	}
	bp := getBuf()
	b, err := n.AppendBinary(*bp)
	if err == nil {
		err = signAuth(b, site.key)
	}
	if s.sendEncoded(out, bp, b, err, to) {
		s.ctr.inc(cNotifySent)
	}
}

// zeroAuth supplies zeroed authentication data fields; never written.
var zeroAuth [64]byte

// expire removes the registrations whose time is up at now and returns the
// next expiry check time (zero if none).
func (s *Server) expire(now time.Time) time.Time {
	s.regMu.Lock()
	var jobs []notifyJob
	for {
		reg, ok := s.reg.popDue(now)
		if !ok {
			break
		}
		e := s.reg.entries[reg.prefix]
		if e == nil || !s.reg.remove(e, reg.xtr) {
			continue
		}
		s.ctr.inc(cExpired)
		s.replay.remember(reg.digest, replayChange)
		s.notify.cancel(pendKey{prefix: reg.prefix, xtr: reg.xtr})
		s.notify.resetUnacked(reg.xtr)
		s.markDirtyLocked(true)
		s.log.Warn("registration expired: the ETR stopped refreshing it", "site", reg.site, "eid", reg.prefix.Prefix.String(), "iid", reg.prefix.InstanceID, "xtr", reg.xtr.String())
		jobs = s.republishLocked(e, jobs, nil)
	}
	s.replay.sweep(now)
	next, _ := s.reg.nextExpiry()
	notifies := s.prepareNotifiesLocked(jobs)
	pubs := s.preparePublicationsLocked(s.takePubJobsLocked())
	s.regMu.Unlock()
	s.sendPubSub(pubs)
	s.sendNotifies(notifies)
	return next
}

// String formats the xTR key: the xTR-ID in hex, or the source address.
func (x xtrKey) String() string {
	if x.hasID {
		return x.id.String()
	}
	return x.addr.String()
}

// debugging reports whether debug messages are logged, so that their
// arguments are only built when they are.
func (s *Server) debugging() bool {
	return s.log.Enabled(context.Background(), slog.LevelDebug)
}

// warn logs a warning that remote peers can trigger, rate-limited.
func (s *Server) warn(msg string, args ...any) {
	if s.logLimit.Allow() {
		s.log.Warn(msg, args...)
	}
}

// takePubJobsLocked returns the changes collected for publication and
// clears the list. regMu must be held.
func (s *Server) takePubJobsLocked() []pubJob {
	j := s.pubJobs
	s.pubJobs = nil
	return j
}
