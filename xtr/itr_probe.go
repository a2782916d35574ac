package xtr

import (
	"net/netip"
	"time"

	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

// RLOC reachability as probing knows it.
type probeState uint8

const (
	probeUnknown probeState = iota // never answered, never given up
	probeUp                        // answered the last probe
	probeDown                      // missed RLOCProbeMisses probes in a row
)

// rlocProbe is the probing state of one remote RLOC. Guarded by
// ITR.probeMu.
type rlocProbe struct {
	state  probeState
	nonce  uint64 // of the outstanding probe, 0 if none
	missed int
	seen   bool // in use in the current round
}

// probeTarget is an RLOC to probe and a mapping that uses it (the probe
// asks for that mapping's EID-prefix, RFC 9301 section 7.1).
type probeTarget struct {
	addr netip.Addr
	iid  uint32
	pfx  netip.Prefix
}

// probeRound runs one RLOC-probing round (RFC 9301 section 7.1 and RFC 9300
// section 10):
//
//  1. an RLOC whose probe of the previous round went unanswered misses one
//     more; RLOCProbeMisses misses in a row mark it unreachable;
//  2. every map-cache entry's live reachability is brought in line with
//     what probing knows (so traffic moves to the next locator, see
//     ChooseRLOC), and the RLOCs of entries used within two probe periods
//     are collected, with every RLOC marked unreachable that an entry
//     still holds, used or not;
//  3. each of those RLOCs is sent one Map-Request with the P bit, directly
//     (not through the mapping system) to its control port.
//
// A probe reply (handleProbeReply) marks the RLOC reachable again at once.
// So an unreachable RLOC is probed every round until it answers (and every
// entry holding it gets it back, idle or not) or no entry holds it any
// more; without that an idle entry would keep the RLOC down until traffic
// came back. Probing state of the other RLOCs no longer in use is
// forgotten. The round scans a snapshot of the whole map-cache, so its cost
// grows with the cache; probing is off by default.
func (i *ITR) probeRound(now time.Time, st *itrSettings) {
	var downs []netip.Addr
	known := map[netip.Addr]probeState{}
	anyDown := false
	i.probeMu.Lock()
	for addr, s := range i.probes {
		if s.nonce != 0 {
			delete(i.probeNonces, s.nonce)
			s.nonce = 0
			s.missed++
			if s.missed >= st.probeMisses && s.state != probeDown {
				s.state = probeDown
				downs = append(downs, addr)
			}
		}
		s.seen = false
		if s.state != probeUnknown {
			known[addr] = s.state
		}
		anyDown = anyDown || s.state == probeDown
	}
	i.probeMu.Unlock()
	for _, a := range downs {
		i.ctr.inc(iRLOCDown)
		i.warn("RLOC unreachable", "rloc", a, "missed_probes", st.probeMisses)
	}

	window := 2 * st.probeEvery
	targets := map[netip.Addr]probeTarget{}
	for e := range i.cache.All() {
		if e.Negative() {
			continue
		}
		syncReachability(e, known)
		lu := e.LastUsedNano()
		used := lu != 0 && now.UnixNano()-lu <= int64(window)
		if !used && !anyDown {
			continue
		}
		for _, r := range e.RLOCs {
			if r.Priority == unusablePriority || !st.fam.has(r.Addr) {
				continue
			}
			if !used && known[r.Addr] != probeDown {
				continue
			}
			if _, ok := targets[r.Addr]; !ok {
				targets[r.Addr] = probeTarget{addr: r.Addr, iid: e.InstanceID, pfx: e.Prefix}
			}
		}
	}

	type probe struct {
		t     probeTarget
		nonce uint64
	}
	var sends []probe
	i.probeMu.Lock()
	for addr, t := range targets {
		s := i.probes[addr]
		if s == nil {
			s = &rlocProbe{}
			i.probes[addr] = s
		}
		s.seen = true
		s.nonce = i.newProbeNonceLocked()
		i.probeNonces[s.nonce] = addr
		sends = append(sends, probe{t: t, nonce: s.nonce})
	}
	for addr, s := range i.probes {
		if !s.seen {
			delete(i.probes, addr)
		}
	}
	i.probeMu.Unlock()

	for _, pr := range sends {
		req := wire.MapRequest{
			Probe:    true,
			Nonce:    pr.nonce,
			ITRRLOCs: st.itrRLOCs,
			Records:  []wire.RequestRecord{wire.NewRequestRecord(pr.t.iid, pr.t.pfx)},
		}
		b, err := req.AppendBinary(make([]byte, 0, 128))
		if err != nil {
			i.warn("cannot encode RLOC-probe", "rloc", pr.t.addr, "err", err)
			continue
		}
		if err := i.out.Send(b, netip.AddrPortFrom(pr.t.addr, ControlPort)); err != nil {
			i.warn("cannot send RLOC-probe", "rloc", pr.t.addr, "err", err)
			continue
		}
		i.ctr.inc(iProbesSent)
	}
}

// newProbeNonceLocked returns a nonce no outstanding probe uses.
// ITR.probeMu is held.
func (i *ITR) newProbeNonceLocked() uint64 {
	for {
		n := randomNonce()
		if _, used := i.probeNonces[n]; !used {
			return n
		}
	}
}

// syncReachability sets the live reachability of e's RLOCs to what probing
// knows about them.
func syncReachability(e *mapcache.Entry, known map[netip.Addr]probeState) {
	if len(known) == 0 {
		return
	}
	for idx, r := range e.RLOCs {
		s, ok := known[r.Addr]
		if !ok {
			continue
		}
		if up := s == probeUp; e.Reachable(idx) != up {
			e.SetReachable(idx, up)
		}
	}
}

// withdrawnIn reports whether the records of a probe reply from addr say
// that addr itself is withdrawn: its own locator carries priority 255 or
// the R bit clear (an xTR that cannot serve its RLOC answers so, see
// ETR.SetLocatorUsable).
func withdrawnIn(m *wire.MapReply, addr netip.Addr) bool {
	for k := range m.Records {
		for _, l := range m.Records[k].Locators {
			if _, ip, ok := l.Address.InstanceIP(); ok && ip.Unmap() == addr {
				return l.Priority == unusablePriority || !l.Reachable
			}
		}
	}
	return false
}

// handleProbeReply handles a Map-Reply with the P bit: the answer to an
// RLOC-probe, matched by nonce. The RLOC is reachable; if it was marked
// unreachable, every entry using it gets it back at once. A reply in which
// the probed RLOC's own locator is withdrawn (priority 255 or R bit clear)
// counts as the RLOC being unreachable at once: the xTR is up but cannot
// serve it.
func (i *ITR) handleProbeReply(m *wire.MapReply, from netip.AddrPort) {
	i.probeMu.Lock()
	addr, ok := i.probeNonces[m.Nonce]
	if !ok {
		i.probeMu.Unlock()
		i.ctr.inc(iProbeRepliesUnsolicited)
		i.warn("RLOC-probe reply with an unknown nonce", "from", from)
		return
	}
	delete(i.probeNonces, m.Nonce)
	withdrawn := withdrawnIn(m, addr)
	now := probeUp
	if withdrawn {
		now = probeDown
	}
	was := probeUnknown
	if s := i.probes[addr]; s != nil {
		s.nonce = 0
		s.missed = 0
		was = s.state
		s.state = now
	}
	i.probeMu.Unlock()
	i.ctr.inc(iProbeReplies)
	switch {
	case withdrawn && was != probeDown:
		i.ctr.inc(iRLOCDown)
		i.warn("RLOC withdrawn by its own xTR (probe reply with priority 255 or R bit clear)", "rloc", addr)
	case !withdrawn && was == probeDown:
		i.ctr.inc(iRLOCUp)
		i.log.Info("RLOC reachable again", "rloc", addr)
	default:
		return
	}
	st := map[netip.Addr]probeState{addr: now}
	for e := range i.cache.All() {
		syncReachability(e, st)
	}
}

// probeKnownDown applies what probing knows to newly installed entries, so
// that a fresh Map-Reply does not send traffic back to an RLOC found
// unreachable.
func (i *ITR) probeKnownDown(es []*mapcache.Entry) {
	if len(es) == 0 {
		return
	}
	i.probeMu.Lock()
	var down map[netip.Addr]probeState
	for _, e := range es {
		for _, r := range e.RLOCs {
			if s := i.probes[r.Addr]; s != nil && s.state == probeDown {
				if down == nil {
					down = map[netip.Addr]probeState{}
				}
				down[r.Addr] = probeDown
			}
		}
	}
	i.probeMu.Unlock()
	for _, e := range es {
		syncReachability(e, down)
	}
}
