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
		notifies := s.prepareNotifiesLocked(s.applyRegisterLocked(site, m, keys, from))
		pubs := s.preparePublicationsLocked(s.takePubJobsLocked())
		s.regMu.Unlock()
		s.ctr.inc(cRegisterOK)
		s.sendPubSub(pubs)
		s.sendNotifies(notifies)
		if m.WantMapNotify {
			s.sendRegisterNotify(out, site, m, from)
		}
		return
	}
}

// applyRegisterLocked stores the records of an authenticated Map-Register
// and returns the unsolicited Map-Notify messages the changes call for.
// regMu must be held.
func (s *Server) applyRegisterLocked(site *site, m *wire.MapRegister, keys []EIDPrefix, from netip.AddrPort) []notifyJob {
	now := s.clock.Now()
	x := xtrKey{addr: from.Addr()}
	if m.XTRIDPresent {
		x = xtrKey{id: m.XTRID, hasID: true}
	}
	var jobs []notifyJob
	for i := range m.Records {
		rec := &m.Records[i]
		key := keys[i]
		if rec.RecordTTL == 0 {
			// A Record TTL of 0 withdraws this xTR's registration.
			e := s.reg.entries[key]
			if e == nil || !s.reg.remove(e, x) {
				continue
			}
			s.ctr.inc(cDeregistered)
			s.notify.cancel(pendKey{prefix: key, xtr: x})
			// One line per registration event (not per refresh): the
			// operator's record of what registered and when.
			s.log.Info("registration withdrawn by the ETR", "site", site.name, "eid", key.Prefix.String(), "iid", key.InstanceID, "xtr", x.String())
			jobs = s.republishLocked(e, jobs, &x)
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
		}
		e, created, changed := s.reg.upsert(reg)
		if created {
			s.log.Info("registered", "site", site.name, "eid", key.Prefix.String(), "iid", key.InstanceID, "xtr", x.String(), "from", from)
			s.poke()
		}
		if changed {
			// A plain refresh leaves the published view as it is.
			jobs = s.republishLocked(e, jobs, &x)
		}
	}
	return jobs
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
		s.notify.cancel(pendKey{prefix: reg.prefix, xtr: reg.xtr})
		s.log.Warn("registration expired: the ETR stopped refreshing it", "site", reg.site, "eid", reg.prefix.Prefix.String(), "iid", reg.prefix.InstanceID, "xtr", reg.xtr.String())
		jobs = s.republishLocked(e, jobs, nil)
	}
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
