package cachesync

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// Transport of the naive and smart modes: one TCP connection per pair of
// members, TLS 1.3 with both sides presenting a self-signed certificate of
// their Ed25519 key, each side checking that the key is the one pinned for
// the other. After TLS each side sends HELLO; then each sends its DIGEST
// and, in smart mode, a usage report covering the whole refresh window, so
// that a member that (re)connects is brought up to date within one
// exchange.
//
// Who dials: the member with the smaller public key (the session it dials
// is the canonical one). The other dials too, as a fallback, when the peer
// has not connected for FallbackDialAfter, or at once when its own
// listener just refused a connection from the peer's address (see
// admission.go): a member whose listener is flooded still meets its
// peers. When sessions in both directions come up, both members keep the
// canonical one, whatever order they see them in: a new session replaces
// the current one unless the current one is canonical and the new one is
// not. The one dropped is closed with a BYE saying so (byeSuperseded), and
// a member whose session ends that way waits a handshake timeout for the
// canonical session before it declares the peer dead.

// byeSuperseded is the BYE reason of a session closed because the
// canonical session with the same peer is up.
const byeSuperseded = "superseded: the session dialed by the member with the smaller key is up"

// errSuperseded ends a session dropped for the canonical one.
var errSuperseded = errors.New("cachesync: " + byeSuperseded)

// minWriteTimeout is the least time a batch of frames may take to write.
const minWriteTimeout = 10 * time.Second

// keepReadBuf is the largest read buffer a session keeps between frames.
const keepReadBuf = 1 << 20

// countConn counts the bytes a connection carries into the member's wire
// counters.
type countConn struct {
	net.Conn
	c *counters
}

// Read implements net.Conn, counting.
func (c *countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.c.wireReceived.Add(uint64(n))
	return n, err
}

// Write implements net.Conn, counting.
func (c *countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.c.wireSent.Add(uint64(n))
	return n, err
}

func (m *Member) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.cert},
		NextProtos:   []string{alpnProtocol},
	}
}

// serverTLS accepts any configured peer's key.
func (m *Member) serverTLS() *tls.Config {
	c := m.tlsConfig()
	c.ClientAuth = tls.RequireAnyClientCert
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		k, err := leafKey(raw)
		if err != nil {
			return err
		}
		if m.byKey[string(k)] == nil {
			return fmt.Errorf("%w: %s", ErrUnknownPeer, FormatPublicKey(k))
		}
		return nil
	}
	return c
}

// clientTLS accepts only p's key. Certificates are not checked against a
// CA (InsecureSkipVerify): the pinned key is the whole of the trust, and
// TLS 1.3's CertificateVerify proves the peer holds its private half.
func (m *Member) clientTLS(p *peer) *tls.Config {
	c := m.tlsConfig()
	c.InsecureSkipVerify = true
	c.ServerName = "lispd-sync"
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		k, err := leafKey(raw)
		if err != nil {
			return err
		}
		if !k.Equal(p.key) {
			return fmt.Errorf("%w: %s presented %s, pinned %s", ErrUnknownPeer, p.name, FormatPublicKey(k), FormatPublicKey(p.key))
		}
		return nil
	}
	return c
}

// acceptLoop accepts incoming connections (RoutineAccept). Each holds an
// admission slot until its TLS handshake ends; one that gets none is
// closed at once, counted and (rate-limited) logged.
func (m *Member) acceptLoop(ctx context.Context, ln net.Listener, wg *sync.WaitGroup) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			m.log.Warn("sync: accept", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		src := remoteAddr(conn)
		if why := m.adm.admit(src); why != "" {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // a reset: no TIME_WAIT left by a flood
			}
			conn.Close()
			m.refused(why, src)
			continue
		}
		wg.Go(func() { m.serveConn(ctx, conn, src) })
	}
}

// refused counts and logs an incoming connection refused for lack of an
// admission slot. If it came from the address of a peer that should dial
// this member, that peer is dialed instead (it is alive and cannot get
// in).
func (m *Member) refused(why string, src netip.Addr) {
	msg := "sync: refusing connections: too many handshakes pending from one source"
	if why == refusedBusy {
		m.c.refusedBusy.Add(1)
		msg = "sync: refusing connections: too many handshakes pending; peers that cannot get in are dialed instead"
	} else {
		m.c.refusedSource.Add(1)
	}
	if ok, n := m.logs.allow("refused-"+why, time.Now()); ok {
		m.log.Warn(msg, "remote", src, "pending_limit", maxPendingHandshakes,
			"per_source_limit", maxPendingPerSource, "suppressed", n)
	}
	for _, p := range m.peers {
		if !p.dials && p.addr.Addr().Unmap() == src {
			p.wantFallback()
		}
	}
}

// serveConn authenticates an incoming connection from src, gives back its
// admission slot, and runs its session.
func (m *Member) serveConn(ctx context.Context, raw net.Conn, src netip.Addr) {
	tc := tls.Server(&countConn{Conn: raw, c: &m.c}, m.serverTLS())
	hctx, cancel := context.WithTimeout(ctx, m.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(hctx)
	timedOut := err != nil && hctx.Err() != nil && ctx.Err() == nil
	cancel()
	m.adm.release(src)
	if err != nil {
		tc.Close()
		if ctx.Err() != nil {
			return
		}
		if timedOut {
			m.c.handshakeTimeouts.Add(1)
		}
		m.handshakeFailed(nil, raw.RemoteAddr(), err)
		return
	}
	p := m.peerOfConn(tc)
	if p == nil { // unreachable: VerifyPeerCertificate checked the key
		tc.Close()
		return
	}
	m.runSession(ctx, tc, p, false)
}

// peerOfConn returns the configured peer whose key tc's peer proved.
func (m *Member) peerOfConn(tc *tls.Conn) *peer {
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil
	}
	k, ok := certs[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil
	}
	return m.byKey[string(k)]
}

// dialLoop keeps a session with p up, reconnecting with exponential
// backoff and jitter (RoutineDial, one per peer). A peer with the larger
// key is dialed whenever there is no session; one with the smaller key
// (which dials this member) only as a fallback (awaitFallback).
func (m *Member) dialLoop(ctx context.Context, p *peer) {
	backoff := m.cfg.ReconnectMin
	told := false // the fallback of this outage was logged
	for ctx.Err() == nil {
		connects := p.c.connects.Load()
		if !p.dials {
			if !m.awaitFallback(ctx, p) {
				return
			}
			if p.c.connects.Load() != connects {
				backoff = m.cfg.ReconnectMin // the peer got in meanwhile
				told = false
			}
		}
		if p.session() == nil {
			if !p.dials {
				m.c.fallbackDials.Add(1)
				if !told {
					told = true
					m.log.Info("sync: dialing a peer that should dial this member: it has not connected, or its connection was refused",
						"peer", p.name, "addr", p.addr)
				}
			}
			p.setState(PeerConnecting, nil)
			tc, err := m.dial(ctx, p)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				m.handshakeFailed(p, nil, err)
			} else if established, _ := m.runSession(ctx, tc, p, true); established {
				backoff = m.cfg.ReconnectMin
			}
		}
		if ctx.Err() != nil {
			return
		}
		// Full jitter over the upper half: spreads reconnects of a set
		// whose member just came back.
		d := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, m.cfg.ReconnectMax)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// awaitFallback waits until this member should dial p, a peer that dials
// it: p has had no session for FallbackDialAfter, or a connection from
// p's address was refused while there was none. It returns false when ctx
// ends.
func (m *Member) awaitFallback(ctx context.Context, p *peer) bool {
	for {
		p.mu.Lock()
		up, due := p.sess != nil, p.downSince.Add(m.cfg.FallbackDialAfter)
		p.mu.Unlock()
		now := false
		if up {
			p.refusedHere.Store(false)
		} else {
			now = p.refusedHere.Swap(false) || !time.Now().Before(due)
		}
		if now {
			return true
		}
		var t *time.Timer
		var timeout <-chan time.Time
		if !up {
			t = time.NewTimer(time.Until(due))
			timeout = t.C
		}
		select {
		case <-ctx.Done():
		case <-p.kick:
		case <-timeout:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return false
		}
	}
}

// dial connects and authenticates to p.
func (m *Member) dial(ctx context.Context, p *peer) (*tls.Conn, error) {
	d := net.Dialer{Timeout: m.cfg.HandshakeTimeout, KeepAlive: 15 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", p.addr.String())
	if err != nil {
		return nil, err
	}
	tc := tls.Client(&countConn{Conn: raw, c: &m.c}, m.clientTLS(p))
	hctx, cancel := context.WithTimeout(ctx, m.cfg.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		tc.Close()
		return nil, err
	}
	return tc, nil
}

// authFailure reports whether err says a key was refused, by this side
// (ErrUnknownPeer) or by the peer (a TLS alert).
func authFailure(err error) bool {
	if errors.Is(err, ErrUnknownPeer) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "bad certificate") || strings.Contains(s, "certificate required")
}

// handshakeFailed counts and logs a failed handshake with p (nil for an
// incoming connection from an unknown or unidentified peer).
func (m *Member) handshakeFailed(p *peer, remote net.Addr, err error) {
	m.c.handshakeFailures.Add(1)
	auth := authFailure(err)
	if auth {
		m.c.authFailures.Add(1)
	}
	if p == nil {
		// Anyone can open connections: these are logged rate-limited.
		if auth {
			if ok, n := m.logs.allow("incoming-auth", time.Now()); ok {
				m.log.Warn("sync: refused a connection: its key is not pinned", "remote", remote, "err", err, "suppressed", n)
			}
		} else if ok, n := m.logs.allow("incoming-failed", time.Now()); ok {
			m.log.Info("sync: incoming handshake failed", "remote", remote, "err", err, "suppressed", n)
		}
		return
	}
	if auth {
		p.c.authFailures.Add(1)
		p.setState(PeerRefused, err)
		m.log.Warn("sync: peer refused: authentication failed", "peer", p.name, "addr", p.addr, "err", err)
		return
	}
	var ne net.Error
	refused := errors.Is(err, ErrHandshake)
	if refused {
		p.setState(PeerRefused, err)
	} else {
		p.setState(PeerBackoff, err)
	}
	if refused || !(errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded)) {
		m.log.Warn("sync: handshake with peer failed", "peer", p.name, "addr", p.addr, "err", err)
	} else {
		m.log.Debug("sync: cannot reach peer", "peer", p.name, "addr", p.addr, "err", err)
	}
}

// runSession exchanges HELLOs on an authenticated connection to p, which
// this member dialed (outbound) or accepted, then runs the session until
// it ends. It reports whether the session was established, and why it
// ended.
func (m *Member) runSession(ctx context.Context, tc *tls.Conn, p *peer, outbound bool) (bool, error) {
	defer tc.Close()
	stop := context.AfterFunc(ctx, func() { tc.Close() })
	defer stop()
	tc.SetDeadline(time.Now().Add(m.cfg.HandshakeTimeout))
	hb := appendHello(nil, hello{
		mode: m.cfg.Mode, origin: m.clock.Origin(), round: m.cfg.RoundInterval,
		window: m.cfg.RefreshWindow, name: m.cfg.Name,
	})
	dr := &deadlineReader{c: tc, after: m.cfg.DeadAfter}
	br := bufio.NewReaderSize(dr, 64<<10)
	f, flen, err := func() (frame, int, error) {
		if _, err := tc.Write(hb); err != nil {
			return frame{}, 0, err
		}
		b, err := readFrame(br, m.cfg.MaxFrameSize, nil)
		if err != nil {
			return frame{}, 0, err
		}
		f, err := parseFrame(b)
		if err != nil {
			m.c.malformed.Add(1)
			return frame{}, 0, err
		}
		if f.typ == frameBye {
			return frame{}, 0, fmt.Errorf("%w: the peer said: %s", ErrHandshake, f.reason)
		}
		if f.typ != frameHello {
			m.c.malformed.Add(1)
			return frame{}, 0, fmt.Errorf("%w: %s frame before HELLO", ErrMalformed, f.typ)
		}
		return f, len(b), nil
	}()
	if err == nil && f.hello.mode != m.cfg.Mode {
		err = fmt.Errorf("%w: this member runs %v, the peer %v", ErrHandshake, m.cfg.Mode, f.hello.mode)
		tc.Write(appendBye(nil, err.Error()))
	}
	if err != nil {
		if ctx.Err() == nil {
			m.handshakeFailed(p, tc.RemoteAddr(), err)
		}
		return false, err
	}
	h := f.hello
	m.countSent(p, len(hb), 0)
	m.countReceived(p, flen, 0)
	if h.origin == m.clock.Origin() {
		m.log.Warn("sync: peer has the same origin ID as this member; rename one of them so that their versions differ",
			"peer", p.name, "peer_name", h.name, "origin", h.origin)
	}
	if h.round != m.cfg.RoundInterval || h.window != m.cfg.RefreshWindow {
		m.log.Warn("sync: peer uses another round interval or refresh window; members should agree",
			"peer", p.name, "peer_round", h.round, "peer_window", h.window)
	}
	tc.SetDeadline(time.Time{})
	dr.on = true

	s := newSession(ctx, m, p, tc, outbound == p.dials)
	if !p.attach(s) {
		// The canonical session is up: the peer drops this one too.
		m.c.superseded.Add(1)
		m.log.Debug("sync: dropping a second session with peer", "peer", p.name, "addr", tc.RemoteAddr())
		tc.SetWriteDeadline(time.Now().Add(m.cfg.HandshakeTimeout))
		if _, err := tc.Write(appendBye(nil, byeSuperseded)); err == nil {
			// Closing with unread data would reset the connection, and
			// the peer might see the reset before the BYE: say that
			// nothing follows (close_notify) and read until it closes.
			tc.CloseWrite()
			tc.SetReadDeadline(time.Now().Add(m.cfg.HandshakeTimeout))
			io.Copy(io.Discard, tc)
		}
		return false, errSuperseded
	}
	m.log.Info("sync: peer connected", "peer", p.name, "addr", tc.RemoteAddr(), "peer_name", h.name, "outbound", outbound)
	if f, ok := m.statusFrame(); ok {
		s.queueCtrl(f)
	}
	ss := collectShareable(m.cache, m.cache.Now())
	s.queueCtrl(appendDigest(nil, ss.digest(bucketsFor(len(ss.entries)))))
	if m.cfg.Mode == ModeSmart {
		now := m.cache.Now()
		for _, uf := range usageFrames(m.collectUsage(now.Add(-m.cfg.RefreshWindow).UnixNano(), now), m.cfg.MaxFrameSize) {
			s.queueCtrl(uf)
		}
	}
	err = s.run(br)
	if p.detach(s, err) && ctx.Err() == nil {
		if errors.Is(err, errSuperseded) {
			m.c.superseded.Add(1)
			m.awaitCanonical(ctx, p, err)
		} else {
			m.log.Info("sync: peer disconnected", "peer", p.name, "reason", err)
			m.peerDead(p, err)
		}
	}
	return true, err
}

// awaitCanonical is called when the peer dropped this member's only
// session with it for the canonical one, which the peer holds and which
// is still on its way here: the peer is declared dead only if no session
// comes up within a handshake timeout.
func (m *Member) awaitCanonical(ctx context.Context, p *peer, cause error) {
	t := time.NewTimer(m.cfg.HandshakeTimeout)
	defer t.Stop()
	for {
		p.mu.Lock()
		up, attached := p.sess != nil, p.attached
		p.mu.Unlock()
		if up {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-attached:
		case <-t.C:
			m.log.Info("sync: peer disconnected", "peer", p.name, "reason", cause)
			m.peerDead(p, cause)
			return
		}
	}
}

// deadlineReader moves the connection's read deadline DeadAfter ahead
// before every read once the session is established (on), so that a
// session is closed after DeadAfter of silence, however long a frame
// takes to arrive. Only the session's reading goroutine uses it.
type deadlineReader struct {
	c     net.Conn
	after time.Duration
	on    bool
}

func (r *deadlineReader) Read(b []byte) (int, error) {
	if r.on {
		r.c.SetReadDeadline(time.Now().Add(r.after))
	}
	return r.c.Read(b)
}

func (m *Member) countReceived(p *peer, bytes, records int) {
	m.c.framesReceived.Add(1)
	m.c.bytesReceived.Add(uint64(bytes))
	m.c.recordsReceived.Add(uint64(records))
	p.c.framesReceived.Add(1)
	p.c.bytesReceived.Add(uint64(bytes))
	p.c.recordsReceived.Add(uint64(records))
	p.c.lastExchange.Store(time.Now().UnixNano())
}

func (m *Member) countSent(p *peer, bytes, records int) {
	m.c.framesSent.Add(1)
	m.c.bytesSent.Add(uint64(bytes))
	m.c.recordsSent.Add(uint64(records))
	p.c.framesSent.Add(1)
	p.c.bytesSent.Add(uint64(bytes))
	p.c.recordsSent.Add(uint64(records))
}

// attach makes s p's session, closing the one it replaces, unless p's
// session is canonical and s is not. It reports whether s was attached.
// Both members decide alike, so they keep the same session.
func (p *peer) attach(s *session) bool {
	p.mu.Lock()
	old := p.sess
	if old != nil && old.canonical && !s.canonical {
		p.mu.Unlock()
		return false
	}
	p.sess = s
	p.state, p.since, p.lastErr = PeerConnected, time.Now(), ""
	close(p.attached)
	p.attached = make(chan struct{})
	p.mu.Unlock()
	p.c.connects.Add(1)
	switch {
	case old == nil:
	case old.canonical == s.canonical:
		old.close(errors.New("replaced by a newer session"))
	default:
		// The peer may hold old as its session: tell it why it ends.
		s.m.c.superseded.Add(1)
		old.closeBye(byeSuperseded, errSuperseded)
	}
	return true
}

// detach removes s from p if it is still p's session, and reports
// whether it was.
func (p *peer) detach(s *session, err error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess != s {
		return false
	}
	p.sess = nil
	st := PeerDisconnected
	if p.dials {
		st = PeerBackoff
	}
	p.state, p.since = st, time.Now()
	p.downSince = p.since
	if err != nil {
		p.lastErr = err.Error()
	}
	p.signalKick()
	return true
}

// session is an established connection with a peer. The reader applies
// what arrives; the writer drains the send queue, in which control frames
// are kept in order and records are coalesced by key (the latest version
// of each is sent).
type session struct {
	m      *Member
	p      *peer
	conn   *tls.Conn
	ctx    context.Context
	cancel context.CancelCauseFunc
	wake   chan struct{}
	// canonical: dialed by the member with the smaller key.
	canonical bool

	mu        sync.Mutex
	ctrl      [][]byte
	ctrlBytes int
	recs      map[mapcache.Key]*mapcache.Entry
	order     []mapcache.Key
	full      bool
	// closeAfter, once set, ends the session when the queued control
	// frames (the last a BYE) are written.
	closeAfter error
}

func newSession(ctx context.Context, m *Member, p *peer, tc *tls.Conn, canonical bool) *session {
	s := &session{m: m, p: p, conn: tc, canonical: canonical, wake: make(chan struct{}, 1), recs: map[mapcache.Key]*mapcache.Entry{}}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	return s
}

func (s *session) close(cause error) { s.cancel(cause) }

// closeBye sends a BYE with reason after the control frames queued, then
// closes the session with cause (records still queued are not sent). A
// writer that cannot write ends within its write timeout anyway.
func (s *session) closeBye(reason string, cause error) {
	s.mu.Lock()
	s.ctrl = append(s.ctrl, appendBye(nil, reason))
	s.closeAfter = cause
	s.mu.Unlock()
	s.signal()
}

func (s *session) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// queueCtrl queues a control frame. A peer that lets control frames pile
// up beyond four maximum-size frames is disconnected.
func (s *session) queueCtrl(f []byte) {
	s.mu.Lock()
	s.ctrl = append(s.ctrl, f)
	s.ctrlBytes += len(f)
	over := s.ctrlBytes > 4*s.m.cfg.MaxFrameSize
	s.mu.Unlock()
	if over {
		s.m.c.queueOverflows.Add(1)
		s.close(ErrSlowPeer)
		return
	}
	s.signal()
}

// queueRecords queues records. Beyond QueueLimit the queue is dropped and
// replaced by a digest, from which the peer pulls what it lacks.
func (s *session) queueRecords(es []*mapcache.Entry) {
	s.mu.Lock()
	for _, e := range es {
		k := e.Key()
		cur, ok := s.recs[k]
		if !ok {
			s.order = append(s.order, k)
		}
		if !ok || cur.Version <= e.Version {
			s.recs[k] = e
		}
	}
	over := len(s.recs) > s.m.cfg.QueueLimit
	if over {
		clear(s.recs)
		s.order = nil
	}
	s.mu.Unlock()
	if over {
		s.m.c.queueOverflows.Add(1)
		ss := collectShareable(s.m.cache, s.m.cache.Now())
		s.queueCtrl(appendDigest(nil, ss.digest(bucketsFor(len(ss.entries)))))
		return
	}
	s.signal()
}

// queueFull asks for the whole cache to be sent (naive mode).
func (s *session) queueFull() {
	s.mu.Lock()
	s.full = true
	s.mu.Unlock()
	s.signal()
}

// take empties the queue; closeAfter, if set, says to write only ctrl and
// then end the session.
func (s *session) take() (ctrl [][]byte, recs []*mapcache.Entry, full bool, closeAfter error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctrl, full, closeAfter = s.ctrl, s.full, s.closeAfter
	s.ctrl, s.ctrlBytes, s.full = nil, 0, false
	if closeAfter != nil {
		return ctrl, nil, false, closeAfter
	}
	if len(s.order) > 0 {
		recs = make([]*mapcache.Entry, 0, len(s.order))
		for _, k := range s.order {
			recs = append(recs, s.recs[k])
		}
		clear(s.recs)
		s.order = s.order[:0]
	}
	return ctrl, recs, full, nil
}

// run runs the writer and the reader until either fails or the session is
// closed, and returns the first reason.
func (s *session) run(br *bufio.Reader) error {
	stop := context.AfterFunc(s.ctx, func() { s.conn.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { s.cancel(s.writeLoop()) })
	s.cancel(s.readLoop(br))
	wg.Wait()
	return context.Cause(s.ctx)
}

// writeTimeout bounds one batch of writes.
func (s *session) writeTimeout() time.Duration {
	return max(minWriteTimeout, 3*s.m.cfg.RoundInterval)
}

// readTimeout closes a session that received nothing for DeadAfter: the
// peer sends a PING every HeartbeatInterval when it has nothing else to
// send, and the deadline moves on with every byte received (deadlineConn),
// so a long transfer is not mistaken for silence.
func (s *session) readTimeout() time.Duration { return s.m.cfg.DeadAfter }

// writeLoop sends what is queued (RoutineSessionWrite).
func (s *session) writeLoop() error {
	m := s.m
	bw := bufio.NewWriterSize(s.conn, 64<<10)
	write := func(f []byte, records int) error {
		if _, err := bw.Write(f); err != nil {
			return err
		}
		m.countSent(s.p, len(f), records)
		return nil
	}
	hb := time.NewTicker(m.cfg.HeartbeatInterval)
	defer hb.Stop()
	ping := appendPing(nil)
	for {
		select {
		case <-s.ctx.Done():
			return context.Cause(s.ctx)
		case <-hb.C:
			// A heartbeat: the peer declares this member dead after
			// DeadAfter of silence.
			s.conn.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
			if err := write(ping, 0); err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return err
			}
			continue
		case <-s.wake:
		}
		for {
			ctrl, recs, full, closeAfter := s.take()
			if len(ctrl) == 0 && len(recs) == 0 && !full && closeAfter == nil {
				break
			}
			s.conn.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
			for _, f := range ctrl {
				if err := write(f, 0); err != nil {
					return err
				}
			}
			if len(recs) > 0 {
				frames, counts := recordsFrames(recs, m.cache.Now(), false, m.cfg.MaxFrameSize)
				for i, f := range frames {
					if err := write(f, counts[i]); err != nil {
						return err
					}
				}
			}
			if full {
				now := m.cache.Now()
				ss := collectShareable(m.cache, now)
				frames, counts := recordsFrames(ss.entries, now, true, m.cfg.MaxFrameSize)
				for i, f := range frames {
					if err := write(f, counts[i]); err != nil {
						return err
					}
				}
			}
			if err := bw.Flush(); err != nil {
				return err
			}
			if closeAfter != nil {
				// As in runSession: nothing follows the BYE, and the
				// reader reads until the peer closes, so that it sees
				// the BYE and not a reset.
				s.conn.CloseWrite()
				select {
				case <-s.ctx.Done():
				case <-time.After(s.m.cfg.HandshakeTimeout):
				}
				return closeAfter
			}
		}
	}
}

// readLoop reads and handles frames (RoutineSessionRead). A frame that
// cannot be decoded closes the session before anything of it is applied.
func (s *session) readLoop(br *bufio.Reader) error {
	m := s.m
	var buf []byte
	for {
		b, err := readFrame(br, m.cfg.MaxFrameSize, buf)
		if err != nil {
			if errors.Is(err, ErrMalformed) || errors.Is(err, ErrFrameTooLarge) {
				m.c.malformed.Add(1)
				m.log.Warn("sync: closing the connection: bad frame", "peer", s.p.name, "err", err)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				err = fmt.Errorf("cachesync: nothing received for %v: %w", s.readTimeout(), err)
			}
			return err
		}
		if cap(b) <= keepReadBuf {
			buf = b[:0]
		} else {
			buf = nil
		}
		f, err := parseFrame(b)
		if err != nil {
			m.c.malformed.Add(1)
			m.log.Warn("sync: closing the connection: bad frame", "peer", s.p.name, "err", err)
			return err
		}
		m.countReceived(s.p, len(b), len(f.records))
		if err := s.handle(&f); err != nil {
			return err
		}
	}
}

// handle acts on one frame.
func (s *session) handle(f *frame) error {
	m := s.m
	switch f.typ {
	case frameHello:
		m.c.malformed.Add(1)
		return fmt.Errorf("%w: HELLO in an established session", ErrMalformed)
	case frameRecords:
		m.apply(f.records, s.p, m.cfg.Mode == ModeNaive && f.full)
	case frameDigest:
		m.c.digests.Add(1)
		ss := collectShareable(m.cache, m.cache.Now())
		diff := ss.diffBuckets(f.digest)
		m.c.bucketsDiffering.Add(uint64(len(diff)))
		if len(diff) > 0 {
			for _, kf := range keysFrames(ss.keys(len(f.digest.buckets), diff), m.cfg.MaxFrameSize) {
				s.queueCtrl(kf)
			}
		}
	case frameKeys:
		ss := collectShareable(m.cache, m.cache.Now())
		if miss := ss.missing(f.keys); len(miss) > 0 {
			s.queueRecords(miss)
		}
	case frameUsage:
		if m.sharesUsage() {
			m.usage.record(s.p, f.usage, m.cache.Now().UnixNano())
		}
	case framePing:
	case frameStatus:
		m.peerStatus(s.p, f.status)
	case frameBye:
		if f.reason == byeSuperseded {
			return errSuperseded
		}
		return fmt.Errorf("cachesync: the peer closed the session: %s", f.reason)
	default:
		m.c.unknownFrames.Add(1)
	}
	return nil
}
