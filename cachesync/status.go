package cachesync

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
	"unicode/utf8"
)

// This file is the failover side of the synchronization set: members tell
// each other whether they can serve the site's ingress (MemberStatus, in
// STATUS frames), the set notices a dead member within DeadAfter
// (heartbeats on the sessions in naive and smart mode, memberlist's tuned
// failure detector in gossip mode), and Config.OnPeer hands both to the
// daemon, which withdraws a dead or disabled member's RLOCs.
//
// STATUS body (all integers big-endian):
//
//	Flags(1: bit 0 = down, bit 1 = draining) Reason-len(1) Reason
//	N-RLOCs(1) N x (Len(1: 4 or 16) Address)
//	N-ITRs(2) N x (Instance-ID(4) Len(1: 4 or 16) RLOC
//	                Len(1: 0, 4 or 16) EID Age-ms(4))

// Defaults of the liveness settings.
const (
	// DefaultHeartbeatInterval is how often a session sends a PING when it
	// has nothing else to send (naive, smart), and memberlist's probe
	// interval (gossip).
	DefaultHeartbeatInterval = 200 * time.Millisecond
	// DefaultDeadAfter is how long a peer may stay silent before it is
	// declared dead (its session closed, Config.OnPeer told).
	DefaultDeadAfter = time.Second
	// MaxStatusITRs bounds the remote ITRs one STATUS frame carries.
	MaxStatusITRs = 1024
	// maxStatusRLOCs bounds the RLOCs of a status.
	maxStatusRLOCs = 32
	// maxStatusReason bounds the reason of a status.
	maxStatusReason = 255
)

const (
	statusFlagDown     = 0x01
	statusFlagDraining = 0x02
)

// RemoteITR is a remote ITR that has been encapsulating to a member: its
// RLOC, the instance-ID and one EID it sent from (the receiver's EID for an
// SMR; invalid when unknown), and how long ago it was last seen.
type RemoteITR struct {
	RLOC       netip.Addr
	InstanceID uint32
	EID        netip.Addr
	Age        time.Duration
}

// MemberStatus is what a member tells the set about itself: its RLOCs,
// whether it can serve them (Down: its EID-side interfaces are down or its
// data plane cannot deliver; Draining: an operator is moving the ingress
// away), and the remote ITRs that have been sending to it recently, so that
// a survivor knows whom to tell when it dies.
type MemberStatus struct {
	Down, Draining bool
	// Reason says why the member is down or draining (at most 255 bytes).
	Reason string
	// RLOCs are the member's own locators (at most 32).
	RLOCs []netip.Addr
	// ITRs are remote ITRs recently encapsulating to the member (at most
	// MaxStatusITRs are sent).
	ITRs []RemoteITR
}

// Serving reports whether the member serves its RLOCs.
func (s MemberStatus) Serving() bool { return !s.Down && !s.Draining }

// clone returns a deep copy of s.
func (s MemberStatus) clone() MemberStatus {
	s.RLOCs = slices.Clone(s.RLOCs)
	s.ITRs = slices.Clone(s.ITRs)
	return s
}

// PeerEvent tells the daemon what the set knows about a peer: Alive with
// the Status it last sent, or dead (Alive false) with the last Status it
// had sent before (Known false when it never sent one).
type PeerEvent struct {
	Peer   string
	Alive  bool
	Known  bool
	Status MemberStatus
	// Cause says why a peer is declared dead.
	Cause string
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, 0)
	}
	a = a.Unmap()
	s := a.AsSlice()
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// appendStatus appends a STATUS frame.
func appendStatus(b []byte, st MemberStatus) []byte {
	b, s := beginFrame(b, frameStatus)
	var flags byte
	if st.Down {
		flags |= statusFlagDown
	}
	if st.Draining {
		flags |= statusFlagDraining
	}
	reason := st.Reason
	if len(reason) > maxStatusReason {
		reason = reason[:maxStatusReason]
	}
	b = append(b, flags, byte(len(reason)))
	b = append(b, reason...)
	rlocs := st.RLOCs[:min(len(st.RLOCs), maxStatusRLOCs)]
	b = append(b, byte(len(rlocs)))
	for _, a := range rlocs {
		b = appendAddr(b, a)
	}
	itrs := st.ITRs[:min(len(st.ITRs), MaxStatusITRs)]
	b = binary.BigEndian.AppendUint16(b, uint16(len(itrs)))
	for _, r := range itrs {
		b = binary.BigEndian.AppendUint32(b, r.InstanceID&0xffffff)
		b = appendAddr(b, r.RLOC)
		b = appendAddr(b, r.EID)
		b = binary.BigEndian.AppendUint32(b, durMillis32(r.Age))
	}
	return finishFrame(b, s)
}

// addr reads a length-prefixed address; optional allows length 0.
func (r *reader) addr(optional bool) netip.Addr {
	n := int(r.u8())
	if r.err != nil {
		return netip.Addr{}
	}
	switch {
	case n == 0 && optional:
		return netip.Addr{}
	case n != 4 && n != 16:
		r.err = fmt.Errorf("%w: %s address of %d bytes", ErrMalformed, r.what, n)
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(r.bytes(n))
	return a.Unmap()
}

// parseStatus decodes a STATUS body.
func parseStatus(r *reader) MemberStatus {
	var st MemberStatus
	flags := r.u8()
	st.Down, st.Draining = flags&statusFlagDown != 0, flags&statusFlagDraining != 0
	reason := r.bytes(int(r.u8()))
	if r.err == nil && !utf8.Valid(reason) {
		r.err = fmt.Errorf("%w: status reason is not UTF-8", ErrMalformed)
	}
	st.Reason = string(reason)
	n := int(r.u8())
	if r.err == nil && n > maxStatusRLOCs {
		r.err = fmt.Errorf("%w: status with %d RLOCs", ErrMalformed, n)
	}
	for range n {
		if r.err != nil {
			break
		}
		st.RLOCs = append(st.RLOCs, r.addr(false))
	}
	m := int(r.u16())
	if r.err == nil && m > MaxStatusITRs {
		r.err = fmt.Errorf("%w: status with %d ITRs", ErrMalformed, m)
	}
	if r.err == nil && m*10 > len(r.b) {
		r.err = fmt.Errorf("%w: status ITR count %d exceeds the %d bytes left", ErrMalformed, m, len(r.b))
	}
	for range m {
		if r.err != nil {
			break
		}
		var it RemoteITR
		it.InstanceID = r.u32()
		if r.err == nil && it.InstanceID > 0xffffff {
			r.err = fmt.Errorf("%w: status instance-ID %d exceeds 24 bits", ErrMalformed, it.InstanceID)
		}
		it.RLOC = r.addr(false)
		it.EID = r.addr(true)
		it.Age = time.Duration(r.u32()) * time.Millisecond
		st.ITRs = append(st.ITRs, it)
	}
	if r.err != nil {
		return MemberStatus{}
	}
	return st
}

// SetStatus sets what this member tells the set about itself and sends it
// at once to every connected peer (and to each peer that connects later).
func (m *Member) SetStatus(st MemberStatus) {
	st = st.clone()
	if len(st.ITRs) > MaxStatusITRs {
		st.ITRs = st.ITRs[:MaxStatusITRs]
	}
	m.statusMu.Lock()
	m.status, m.statusOK = st, true
	m.statusMu.Unlock()
	f := appendStatus(nil, st)
	if m.cfg.Mode == ModeGossip {
		if g := m.g.Load(); g != nil {
			for _, p := range m.connectedPeers() {
				g.send(p, f, 0)
			}
		}
		return
	}
	for _, p := range m.peers {
		if s := p.session(); s != nil {
			s.queueCtrl(f)
		}
	}
}

// Status returns what this member last told the set about itself.
func (m *Member) Status() MemberStatus {
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	return m.status.clone()
}

// statusFrame returns this member's STATUS frame, if SetStatus was called.
func (m *Member) statusFrame() ([]byte, bool) {
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	if !m.statusOK {
		return nil, false
	}
	return appendStatus(nil, m.status), true
}

// peerStatus records a STATUS received from p and tells OnPeer.
func (m *Member) peerStatus(p *peer, st MemberStatus) {
	p.mu.Lock()
	p.st, p.stKnown = st, true
	p.mu.Unlock()
	if m.cfg.OnPeer != nil {
		m.cfg.OnPeer(PeerEvent{Peer: p.name, Alive: true, Known: true, Status: st.clone()})
	}
}

// peerDead tells OnPeer that p was declared dead, with the status it last
// sent.
func (m *Member) peerDead(p *peer, cause error) {
	p.mu.Lock()
	st, known := p.st.clone(), p.stKnown
	p.mu.Unlock()
	m.c.peersDead.Add(1)
	if m.cfg.OnPeer != nil {
		ev := PeerEvent{Peer: p.name, Known: known, Status: st}
		if cause != nil {
			ev.Cause = cause.Error()
		}
		m.cfg.OnPeer(ev)
	}
}

// PeerStatus returns the status the peer named name last sent, and whether
// it sent one and is connected.
func (m *Member) PeerStatus(name string) (st MemberStatus, known, alive bool) {
	for _, p := range m.allPeers() {
		if p.name != name {
			continue
		}
		alive = p.connected()
		p.mu.Lock()
		st, known = p.st.clone(), p.stKnown
		p.mu.Unlock()
		return st, known, alive
	}
	return MemberStatus{}, false, false
}

// CheckPeers is the explicit trigger (keepalived's notify script calls it
// through lispctl failover check when this router becomes VRRP master):
// in naive and smart mode every connected peer from which nothing was
// received for longer than silence (at least one heartbeat interval; 0
// means two) is declared dead now instead of after DeadAfter. In gossip
// mode, whose failure detector takes several probe intervals, each live
// member's memberlist port is probed with a TCP connection at once: one
// refused or not answered within silence (a killed process, a dead host)
// is declared dead (and alive again if it is heard from later). It
// returns the names of the peers declared dead.
func (m *Member) CheckPeers(silence time.Duration) []string {
	if silence <= 0 {
		silence = 2 * m.cfg.HeartbeatInterval
	}
	silence = max(silence, m.cfg.HeartbeatInterval)
	if m.cfg.Mode == ModeGossip {
		return m.checkGossipPeers(silence)
	}
	now := time.Now().UnixNano()
	var dead []string
	for _, p := range m.peers {
		s := p.session()
		if s == nil {
			continue
		}
		if now-p.c.lastExchange.Load() > int64(silence) {
			s.close(fmt.Errorf("cachesync: declared dead by an explicit check: nothing received for %v", silence))
			dead = append(dead, p.name)
		}
	}
	return dead
}

// checkGossipPeers probes every live gossip member's memberlist port with
// a TCP connection, in parallel, and declares dead those that refuse it or
// do not answer within timeout.
func (m *Member) checkGossipPeers(timeout time.Duration) []string {
	type result struct {
		p   *peer
		err error
	}
	peers := m.connectedPeers()
	res := make(chan result, len(peers))
	for _, p := range peers {
		p.mu.Lock()
		addr := p.addr
		p.mu.Unlock()
		go func() {
			d := net.Dialer{Timeout: timeout}
			c, err := d.Dial("tcp", addr.String())
			if err == nil {
				c.Close()
			}
			res <- result{p, err}
		}()
	}
	var dead []string
	for range peers {
		r := <-res
		if r.err == nil {
			continue
		}
		r.p.mu.Lock()
		was := r.p.alive
		r.p.alive = false
		r.p.state, r.p.since, r.p.lastErr = PeerDead, time.Now(), r.err.Error()
		r.p.mu.Unlock()
		if was {
			dead = append(dead, r.p.name)
			m.peerDead(r.p, fmt.Errorf("cachesync: declared dead by an explicit check: %w", r.err))
		}
	}
	slices.Sort(dead)
	return dead
}

// heardFrom marks a gossip member alive again when a message arrives from
// it after CheckPeers declared it dead (memberlist never said it left),
// and tells OnPeer with the status it last sent.
func (m *Member) heardFrom(p *peer) {
	p.mu.Lock()
	suspect := !p.alive && p.state == PeerDead
	p.mu.Unlock()
	if !suspect {
		return
	}
	// memberlist's lock is taken outside p.mu: its callbacks (NotifyJoin)
	// take p.mu while holding it.
	g := m.g.Load()
	if g == nil || g.node(p.name) == nil {
		return
	}
	p.mu.Lock()
	revived := !p.alive && p.state == PeerDead
	if revived {
		p.alive = true
		p.state, p.since, p.lastErr = PeerConnected, time.Now(), ""
	}
	st, known := p.st.clone(), p.stKnown
	p.mu.Unlock()
	if revived && known && m.cfg.OnPeer != nil {
		m.log.Info("sync: member heard from again after an explicit check", "member", p.name)
		m.cfg.OnPeer(PeerEvent{Peer: p.name, Alive: true, Known: true, Status: st})
	}
}
