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
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// Transport of the naive and smart modes: one TCP connection per pair of
// members, TLS 1.3 with both sides presenting a self-signed certificate of
// their Ed25519 key, each side checking that the key is the one pinned for
// the other. The member with the smaller public key dials; the other
// accepts (it would also accept the reverse direction, the newest session
// replacing an older one). After TLS each side sends HELLO; then each sends
// its DIGEST and, in smart mode, a usage report covering the whole refresh
// window, so that a member that (re)connects is brought up to date within
// one exchange.

// maxPendingHandshakes bounds the incoming connections that have not yet
// authenticated.
const maxPendingHandshakes = 64

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

// acceptLoop accepts incoming connections (RoutineAccept).
func (m *Member) acceptLoop(ctx context.Context, ln net.Listener, wg *sync.WaitGroup) {
	sem := make(chan struct{}, maxPendingHandshakes)
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
		select {
		case sem <- struct{}{}:
		default:
			m.log.Warn("sync: too many connections handshaking; refusing one", "remote", conn.RemoteAddr())
			conn.Close()
			continue
		}
		wg.Go(func() { m.serveConn(ctx, conn, sem) })
	}
}

// serveConn authenticates an incoming connection and runs its session.
func (m *Member) serveConn(ctx context.Context, raw net.Conn, sem chan struct{}) {
	tc := tls.Server(&countConn{Conn: raw, c: &m.c}, m.serverTLS())
	hctx, cancel := context.WithTimeout(ctx, m.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	<-sem
	if err != nil {
		tc.Close()
		m.handshakeFailed(nil, raw.RemoteAddr(), err)
		return
	}
	p := m.peerOfConn(tc)
	if p == nil { // unreachable: VerifyPeerCertificate checked the key
		tc.Close()
		return
	}
	m.runSession(ctx, tc, p)
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
// backoff and jitter (RoutineDial, one per peer this member dials).
func (m *Member) dialLoop(ctx context.Context, p *peer, wg *sync.WaitGroup) {
	backoff := m.cfg.ReconnectMin
	for ctx.Err() == nil {
		if p.session() == nil {
			p.setState(PeerConnecting, nil)
			tc, err := m.dial(ctx, p)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				m.handshakeFailed(p, nil, err)
			} else if established, _ := m.runSession(ctx, tc, p); established {
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
		if auth {
			m.log.Warn("sync: refused a connection: its key is not pinned", "remote", remote, "err", err)
		} else {
			m.log.Info("sync: incoming handshake failed", "remote", remote, "err", err)
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

// runSession exchanges HELLOs on an authenticated connection to p, then
// runs the session until it ends. It reports whether the session was
// established, and why it ended.
func (m *Member) runSession(ctx context.Context, tc *tls.Conn, p *peer) (bool, error) {
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

	s := newSession(ctx, m, p, tc)
	p.attach(s)
	m.log.Info("sync: peer connected", "peer", p.name, "addr", tc.RemoteAddr(), "peer_name", h.name)
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
		m.log.Info("sync: peer disconnected", "peer", p.name, "reason", err)
		m.peerDead(p, err)
	}
	return true, err
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

// attach makes s p's session, closing the one it replaces.
func (p *peer) attach(s *session) {
	p.mu.Lock()
	old := p.sess
	p.sess = s
	p.state, p.since, p.lastErr = PeerConnected, time.Now(), ""
	p.mu.Unlock()
	p.c.connects.Add(1)
	if old != nil {
		old.close(errors.New("replaced by a newer session"))
	}
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
	if err != nil {
		p.lastErr = err.Error()
	}
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

	mu        sync.Mutex
	ctrl      [][]byte
	ctrlBytes int
	recs      map[mapcache.Key]*mapcache.Entry
	order     []mapcache.Key
	full      bool
}

func newSession(ctx context.Context, m *Member, p *peer, tc *tls.Conn) *session {
	s := &session{m: m, p: p, conn: tc, wake: make(chan struct{}, 1), recs: map[mapcache.Key]*mapcache.Entry{}}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	return s
}

func (s *session) close(cause error) { s.cancel(cause) }

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

// take empties the queue.
func (s *session) take() (ctrl [][]byte, recs []*mapcache.Entry, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctrl, full = s.ctrl, s.full
	s.ctrl, s.ctrlBytes, s.full = nil, 0, false
	if len(s.order) > 0 {
		recs = make([]*mapcache.Entry, 0, len(s.order))
		for _, k := range s.order {
			recs = append(recs, s.recs[k])
		}
		clear(s.recs)
		s.order = s.order[:0]
	}
	return ctrl, recs, full
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
			ctrl, recs, full := s.take()
			if len(ctrl) == 0 && len(recs) == 0 && !full {
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
		return fmt.Errorf("cachesync: the peer closed the session: %s", f.reason)
	default:
		m.c.unknownFrames.Add(1)
	}
	return nil
}
