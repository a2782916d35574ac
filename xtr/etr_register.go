package xtr

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/wire"
)

// registerRetryMax caps the wait between Map-Registers while they go
// unacknowledged (the Map-Server is down or unreachable): retries after 1,
// 2, 4, then every 5 seconds, so that a Map-Server that comes back has the
// whole database within seconds. Acknowledged, the ETR registers every
// register interval.
const registerRetryMax = 5 * time.Second

// lastRegisterNonce is the last Map-Register nonce drawn (registerNonce).
var lastRegisterNonce atomic.Uint64

// registerNonce returns the nonce of a Map-Register: the wall-clock time in
// Unix nanoseconds, strictly increasing within the process. A Map-Server
// can then tell an old register replayed from a new one (RFC 9301 section
// 5.6 leaves the nonce free for "an anti-replay solution"; lispd's
// Map-Server reads such nonces, see mapserver/replay.go). The nonce matches
// the Map-Notify to the register and needs no secrecy: the Map-Notify is
// authenticated.
func registerNonce() uint64 {
	for {
		old := lastRegisterNonce.Load()
		n := max(uint64(time.Now().UnixNano()), old+1)
		if lastRegisterNonce.CompareAndSwap(old, n) {
			return n
		}
	}
}

// registrationDownMsg is logged when a registration with a Map-Server goes
// down (docs/deployment.md lists it).
const registrationDownMsg = "registration with Map-Server down: no Map-Notify acknowledged the Map-Registers for three register intervals; check the key, key-id and algorithm against the Map-Server's site, and UDP 4342 between the two"

// registerJob is the Map-Registers to send to one Map-Server.
type registerJob struct {
	to   netip.AddrPort
	msgs [][]byte
}

// registerDue sends the Map-Registers that are due (RFC 9301 sections 5.6
// and 8.2): every register interval, and sooner while the last one is
// unacknowledged (after 1 s, then doubling up to registerRetryMax, or the
// interval if shorter). Each
// carries the whole database (split over several messages when it does not
// fit one datagram), the want-map-notify (M) bit, the xTR-ID and site-ID
// (I bit), the proxy-reply (P) bit as configured, and is signed with the
// Map-Server's key.
func (e *ETR) registerDue(now time.Time) {
	st := e.settings.Load()
	db := e.db.Load()
	if len(db.regRecords) == 0 {
		return
	}
	var jobs []registerJob
	var down []netip.AddrPort // registrations that just went down, to log
	e.mu.Lock()
	for _, ms := range st.servers {
		s := e.servers[ms.Address]
		if s == nil {
			continue
		}
		if s.logged != StateDown && s.state(now, st.interval) == StateDown {
			s.logged = StateDown
			down = append(down, ms.Address)
		}
		if now.Before(s.nextAt) {
			continue
		}
		msgs, nonces, err := buildRegisters(st, db, ms)
		if err != nil {
			e.ctr.inc(eRegisterSendErrors)
			e.warn("cannot build Map-Register", "map_server", ms.Address, "err", err)
			s.nextAt = now.Add(st.interval)
			continue
		}
		// Forget nonces of registrations too old to be acknowledged.
		for n, t := range s.nonces {
			if now.Sub(t) > 2*st.interval {
				delete(s.nonces, n)
			}
		}
		for _, n := range nonces {
			s.nonces[n] = now
		}
		if s.awaiting {
			s.backoff = min(max(2*s.backoff, registerRetry), registerRetryMax, st.interval)
		} else {
			s.backoff = registerRetry
		}
		s.awaiting = true
		s.nextAt = now.Add(min(s.backoff, st.interval))
		if s.firstSent.IsZero() {
			s.firstSent = now
		}
		s.lastRegister = now
		s.sent += uint64(len(msgs))
		jobs = append(jobs, registerJob{to: ms.Address, msgs: msgs})
	}
	e.mu.Unlock()
	for _, a := range down {
		e.log.Warn(registrationDownMsg, "map_server", a)
	}
	for _, j := range jobs {
		for _, b := range j.msgs {
			if err := e.out.Send(b, j.to); err != nil {
				e.ctr.inc(eRegisterSendErrors)
				e.warn("cannot send Map-Register", "map_server", j.to, "err", err)
				continue
			}
			e.ctr.inc(eRegistersSent)
		}
	}
}

// buildRegisters encodes and signs the Map-Registers carrying db for ms and
// returns them with their nonces.
func buildRegisters(st *etrSettings, db *database, ms MapServer) ([][]byte, []uint64, error) {
	var msgs [][]byte
	var nonces []uint64
	scratch := make([]byte, 0, 512)
	start, size := 0, 0
	flush := func(end int) error {
		m := wire.MapRegister{
			ProxyReply:    st.proxy,
			XTRIDPresent:  true,
			WantMapNotify: true,
			Nonce:         registerNonce(),
			KeyID:         ms.KeyID,
			AlgorithmID:   ms.Algorithm,
			Records:       db.regRecords[start:end],
			XTRID:         st.xtrID,
			SiteID:        st.siteID,
		}
		b, err := m.AppendBinary(nil)
		if err != nil {
			return err
		}
		if err := wire.Sign(b, ms.Key); err != nil {
			return err
		}
		msgs = append(msgs, b)
		nonces = append(nonces, m.Nonce)
		start, size = end, 0
		return nil
	}
	const header = 16 + 32 + 24 // fixed fields, longest MAC, xTR-ID and site-ID
	for k := range db.regRecords {
		rb, err := db.regRecords[k].AppendBinary(scratch[:0])
		if err != nil {
			return nil, nil, err
		}
		if k > start && (header+size+len(rb) > maxRegisterSize || k-start == 255) {
			if err := flush(k); err != nil {
				return nil, nil, err
			}
		}
		size += len(rb)
	}
	if err := flush(len(db.regRecords)); err != nil {
		return nil, nil, err
	}
	return msgs, nonces, nil
}

// handleNotify processes a Map-Notify (RFC 9301 section 5.7). It must come
// from a configured Map-Server and be authenticated with that Map-Server's
// key, Key ID and algorithm. One that carries the nonce of a Map-Register of
// ours acknowledges it (the registration is up); any other is an
// unsolicited Map-Notify (the Map-Server tells of a change in the merged
// registration) and is acknowledged with a Map-Notify-Ack of the same
// content, signed with the same key, sent back to its source.
func (e *ETR) handleNotify(m *wire.MapNotify, raw []byte, from netip.AddrPort) {
	st := e.settings.Load()
	var ms *MapServer
	for k := range st.servers {
		if st.servers[k].Address.Addr() == from.Addr() {
			ms = &st.servers[k]
			break
		}
	}
	if ms == nil {
		e.ctr.inc(eNotifyUnknownSource)
		e.warn("Map-Notify from an unknown Map-Server", "from", from)
		return
	}
	if m.KeyID != ms.KeyID || m.AlgorithmID != ms.Algorithm {
		e.notifyAuthFailed(ms.Address, from, "key_id_or_algorithm_mismatch")
		return
	}
	if err := wire.Verify(raw, ms.Key); err != nil {
		e.notifyAuthFailed(ms.Address, from, wire.ErrorReason(err))
		return
	}
	now := e.now()
	e.mu.Lock()
	solicited, up, again := false, false, false
	if s := e.servers[ms.Address]; s != nil {
		sentAt, ok := s.nonces[m.Nonce]
		if ok {
			solicited = true
			if s.logged != StateUp {
				s.logged = StateUp
				up = true
			}
			delete(s.nonces, m.Nonce)
			s.lastNotify = now
			s.notifies++
		}
		switch {
		case !s.awaiting:
		case ok && !sentAt.Before(s.lastRegister):
			// Every register of the round is acknowledged by its own
			// notify; one suffices to know the Map-Server has it.
			s.awaiting = false
			s.backoff = 0
			s.nextAt = s.lastRegister.Add(st.interval)
		default:
			// The Map-Server answers (an earlier round, or an
			// unsolicited Map-Notify) but not the last round, which may
			// have gone while it was down or carry a newer database:
			// register everything again as soon as that round had a
			// second to be answered.
			s.backoff = 0
			if at := s.lastRegister.Add(registerRetry); at.Before(s.nextAt) {
				s.nextAt = at
				again = true
			}
		}
	}
	e.mu.Unlock()
	if up {
		e.log.Info("registered with Map-Server", "map_server", ms.Address)
	}
	if again {
		e.wake()
	}
	if solicited {
		e.ctr.inc(eNotifiesReceived)
		return
	}
	e.ctr.inc(eNotifiesUnsolicited)
	if st.follow {
		e.followMerged(m.Records)
	}
	ack := wire.MapNotifyAck(*m)
	ack.AuthData = make([]byte, len(m.AuthData))
	ack.Trailing = 0
	b, err := ack.AppendBinary(nil)
	if err == nil {
		err = wire.Sign(b, ms.Key)
	}
	if err != nil {
		e.ctr.inc(eSendErrors)
		e.warn("cannot build Map-Notify-Ack", "map_server", ms.Address, "err", err)
		return
	}
	if err := e.out.Send(b, from); err != nil {
		e.ctr.inc(eSendErrors)
		e.warn("cannot send Map-Notify-Ack", "to", from, "err", err)
		return
	}
	e.ctr.inc(eNotifyAcksSent)
}

// notifyAuthFailed counts and logs a Map-Notify that failed authentication.
func (e *ETR) notifyAuthFailed(ms, from netip.AddrPort, reason string) {
	e.ctr.inc(eNotifyAuthFailures)
	e.mu.Lock()
	if s := e.servers[ms]; s != nil {
		s.authFailures++
	}
	e.mu.Unlock()
	e.warn("Map-Notify failed authentication", "from", from, "reason", reason)
}
