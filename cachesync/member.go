package cachesync

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// Member is one ITR's membership in a synchronization set: it shares the
// mappings its ITR learns with the other members and inserts theirs into
// its map-cache. Make it with New, run it with Run, and give its OnExpire
// to the map-cache (through the ITR) so that expiring records are kept and
// refreshed as the set's usage requires.
//
// Lock order: usageTable.mu, then peer.mu, then session.mu; Member.gmu
// before peer.mu. No lock is held while writing to a socket or calling the
// cache.
type Member struct {
	cfg   Config
	cache *mapcache.Cache
	log   *slog.Logger
	clock *VersionClock
	self  string // this member's rank: its public key bytes, or its gossip name
	c     counters
	usage usageTable

	running   atomic.Bool
	adm       admission  // incoming connections handshaking
	logs      logLimiter // log lines about what anyone can send
	ready     chan struct{}
	readyOnce sync.Once
	addrMu    sync.Mutex
	addr      netip.AddrPort

	// naive and smart
	cert  tls.Certificate
	pub   ed25519.PublicKey
	peers []*peer          // configured peers, fixed after New
	byKey map[string]*peer // by public key bytes

	// gossip
	gmu    sync.Mutex
	gpeers map[string]*peer // members seen, by node name
	g      atomic.Pointer[gossip]

	// failover (status.go)
	statusMu sync.Mutex
	status   MemberStatus
	statusOK bool // SetStatus was called
}

// peer is another member, configured (naive, smart) or discovered
// (gossip).
type peer struct {
	name  string
	addr  netip.AddrPort
	key   ed25519.PublicKey // nil in gossip mode
	rank  string            // orders members for the refresher choice
	dials bool              // this member dials the peer
	c     peerCounters

	mu      sync.Mutex
	state   PeerState
	since   time.Time
	lastErr string
	sess    *session // the live session (naive, smart)
	alive   bool     // gossip: memberlist reports the member alive
	// downSince is when the last session ended (or Run started): a peer
	// that dials this member is dialed FallbackDialAfter later.
	downSince time.Time
	// attached is closed, and replaced, when a session is attached.
	attached chan struct{}
	// st is the last STATUS the peer sent (stKnown), kept after it dies
	// so that the survivors know which RLOCs to withdraw.
	st      MemberStatus
	stKnown bool

	// kick wakes the peer's dial loop when its session ends or a
	// connection from it was refused (refusedHere).
	kick        chan struct{}
	refusedHere atomic.Bool
}

// signalKick wakes the peer's dial loop.
func (p *peer) signalKick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// wantFallback asks the dial loop of a peer that dials this member to dial
// it now, if no session is up: a connection from its address was refused.
func (p *peer) wantFallback() {
	if p.session() != nil {
		return
	}
	p.refusedHere.Store(true)
	p.signalKick()
}

// connected reports whether the peer is currently reachable: a session is
// up, or memberlist reports it alive.
func (p *peer) connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sess != nil || p.alive
}

func (p *peer) session() *session {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sess
}

func (p *peer) setState(st PeerState, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != st {
		p.state, p.since = st, time.Now()
	}
	if err != nil {
		p.lastErr = err.Error()
	}
}

// New returns a member for cfg that synchronizes cache. It checks cfg
// (errors wrap ErrInvalidConfig) and opens nothing: Run listens and
// connects.
func New(cfg Config, cache *mapcache.Cache) (*Member, error) {
	if cache == nil {
		return nil, fmt.Errorf("%w: nil cache", ErrInvalidConfig)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Member{
		cfg:    cfg,
		cache:  cache,
		log:    cfg.Logger.With("component", "sync", "mode", cfg.Mode.String()),
		clock:  cfg.Versions,
		ready:  make(chan struct{}),
		byKey:  map[string]*peer{},
		gpeers: map[string]*peer{},
	}
	m.usage.m = map[*peer]map[uint64]int64{}
	if m.clock == nil {
		m.clock = NewVersionClock(OriginID(cfg.Name), cache.Now)
	}
	switch cfg.Mode {
	case ModeNaive, ModeSmart:
		m.pub = PublicKeyOf(cfg.PrivateKey)
		m.self = string(m.pub)
		if m.cert, err = selfSignedCert(cfg.PrivateKey, cfg.Name); err != nil {
			return nil, err
		}
		for _, pc := range cfg.Peers {
			p := &peer{
				name:  pc.Name,
				addr:  pc.Address,
				key:   slices.Clone(pc.PublicKey),
				rank:  string(pc.PublicKey),
				dials: bytes.Compare(m.pub, pc.PublicKey) < 0,
				state: PeerIdle,
				since: time.Now(),
				kick:  make(chan struct{}, 1),

				attached: make(chan struct{}),
			}
			m.peers = append(m.peers, p)
			m.byKey[string(pc.PublicKey)] = p
		}
	case ModeGossip:
		m.self = cfg.Name
	}
	return m, nil
}

// Mode returns the member's mode.
func (m *Member) Mode() Mode { return m.cfg.Mode }

// Name returns the member's name.
func (m *Member) Name() string { return m.cfg.Name }

// PublicKey returns the member's public key (nil in gossip mode).
func (m *Member) PublicKey() ed25519.PublicKey { return m.pub }

// Versions returns the clock that stamps versions: the ITR must stamp the
// Map-Replies it inserts with Versions().Next().
func (m *Member) Versions() *VersionClock { return m.clock }

// NextVersion is Versions().Next().
func (m *Member) NextVersion() uint64 { return m.clock.Next() }

// Ready is closed once Run is listening (Addr is then set).
func (m *Member) Ready() <-chan struct{} { return m.ready }

// Addr returns the address the member listens on, once Ready.
func (m *Member) Addr() netip.AddrPort {
	m.addrMu.Lock()
	defer m.addrMu.Unlock()
	return m.addr
}

func (m *Member) setReady(a netip.AddrPort) {
	m.addrMu.Lock()
	m.addr = a
	m.addrMu.Unlock()
	m.readyOnce.Do(func() { close(m.ready) })
}

// Run listens, connects to the peers (or joins the gossip set) and
// synchronizes until ctx ends; then it closes every connection (gossip: it
// leaves the set) and returns nil, leaving no goroutine behind. It returns
// an error if it cannot listen. Only one Run may be active (ErrRunning).
func (m *Member) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer m.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe before listening: every change from now on is either in
	// the digest a new peer receives or announced to it.
	sub := m.cache.Subscribe(0)
	defer sub.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	switch m.cfg.Mode {
	case ModeGossip:
		g, err := m.startGossip(ctx, &wg)
		if err != nil {
			return err
		}
		m.g.Store(g)
		defer func() {
			cancel()
			g.stop()
			m.g.Store(nil)
		}()
	default:
		ln := m.cfg.Listener
		if ln == nil {
			var lc net.ListenConfig
			l, err := lc.Listen(ctx, "tcp", m.cfg.Listen.String())
			if err != nil {
				return fmt.Errorf("cachesync: listen: %w", err)
			}
			ln = l
		}
		m.cfg.Listener = nil // a listener serves one Run
		m.setReady(addrOf(ln.Addr()))
		context.AfterFunc(ctx, func() { ln.Close() })
		wg.Go(func() { m.acceptLoop(ctx, ln, &wg) })
		for _, p := range m.peers {
			p.mu.Lock()
			p.downSince = time.Now()
			p.mu.Unlock()
			if !p.dials {
				p.setState(PeerIdle, nil)
			}
			wg.Go(func() { m.dialLoop(ctx, p) })
		}
	}
	m.log.Info("synchronization set member started", "name", m.cfg.Name, "listen", m.Addr(),
		"origin", m.clock.Origin(), "peers", len(m.peers))
	wg.Go(func() { m.roundLoop(ctx) })
	m.feedLoop(ctx, sub)
	m.log.Info("synchronization set member stopped", "name", m.cfg.Name)
	return nil
}

func addrOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// feedLoop reads the map-cache change feed and announces the local changes
// learned from Map-Replies (RoutineFeed).
func (m *Member) feedLoop(ctx context.Context, sub *mapcache.Subscription) {
	for {
		select {
		case <-ctx.Done():
			return
		case ch, ok := <-sub.C():
			if !ok {
				return
			}
			m.onChange(ch)
		}
	}
}

func (m *Member) onChange(ch mapcache.Change) {
	switch ch.Kind {
	case mapcache.Resync:
		// Changes were lost: compare digests with everyone instead.
		m.c.feedResyncs.Add(1)
		m.antiEntropyAll()
	case mapcache.Added, mapcache.Replaced:
		e := ch.Entry
		// Only what this member learned from the mapping system (a
		// Map-Reply, or a published Map-Notify) is announced: records
		// from peers (FromSync) never go back out, which is what keeps
		// updates from looping.
		if !learned(e) || !shareable(e, m.cache.Now()) {
			return
		}
		m.clock.Observe(e.Version)
		m.c.announced.Add(1)
		m.announce(e)
	}
	// Removals are not announced: each member drops unused records itself.
}

// announce offers a local change to the peers.
func (m *Member) announce(e *mapcache.Entry) {
	if m.cfg.Mode == ModeGossip {
		if g := m.g.Load(); g != nil {
			g.broadcast(e)
		}
		return
	}
	for _, p := range m.peers {
		s := p.session()
		if s == nil {
			continue // brought up to date by the digest exchange when it connects
		}
		if m.cfg.Mode == ModeNaive {
			s.queueFull()
		} else {
			s.queueRecords([]*mapcache.Entry{e})
		}
	}
}

// antiEntropyAll sends this member's digest to every connected peer.
func (m *Member) antiEntropyAll() {
	if m.cfg.Mode == ModeGossip {
		if g := m.g.Load(); g != nil {
			g.sendDigestAll()
		}
		return
	}
	var f []byte
	for _, p := range m.peers {
		if s := p.session(); s != nil {
			if f == nil {
				ss := collectShareable(m.cache, m.cache.Now())
				f = appendDigest(nil, ss.digest(bucketsFor(len(ss.entries))))
			}
			s.queueCtrl(f)
		}
	}
}

// roundLoop sends usage reports or keepalives every round and digests
// every anti-entropy interval (RoutineRounds).
func (m *Member) roundLoop(ctx context.Context) {
	rt := time.NewTicker(m.cfg.RoundInterval)
	defer rt.Stop()
	at := time.NewTicker(m.cfg.AntiEntropyInterval)
	defer at.Stop()
	last := m.cache.Now().UnixNano()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rt.C:
			now := m.cache.Now()
			var items []usageItem
			if m.sharesUsage() {
				items = m.collectUsage(last, now)
			}
			last = now.UnixNano()
			m.sendRound(items)
			m.usage.prune(now.Add(-m.cfg.RefreshWindow - m.cfg.RoundInterval).UnixNano())
		case <-at.C:
			m.antiEntropyAll()
		}
	}
}

// sharesUsage reports whether the mode shares usage (smart, gossip).
func (m *Member) sharesUsage() bool { return m.cfg.Mode != ModeNaive }

// collectUsage returns the records used after since (Unix ns of the cache
// clock), with their age at now.
func (m *Member) collectUsage(since int64, now time.Time) []usageItem {
	n := now.UnixNano()
	var items []usageItem
	for e := range m.cache.All() {
		if e.TTL == mapcache.Permanent {
			continue
		}
		if lu := e.LastUsedNano(); lu > since {
			items = append(items, usageItem{hash: keyHash(e.Key()), age: time.Duration(max(n-lu, 0))})
		}
	}
	return items
}

// sendRound sends this round's usage report (smart, gossip) or keepalive
// (naive).
func (m *Member) sendRound(items []usageItem) {
	if m.cfg.Mode == ModeGossip {
		if g := m.g.Load(); g != nil && len(items) > 0 {
			g.sendUsage(items)
		}
		return
	}
	var frames [][]byte
	if m.cfg.Mode == ModeSmart {
		frames = usageFrames(items, m.cfg.MaxFrameSize)
	} else {
		frames = [][]byte{appendPing(nil)}
	}
	for _, p := range m.peers {
		if s := p.session(); s != nil {
			for _, f := range frames {
				s.queueCtrl(f)
			}
		}
	}
}

// usageFrames encodes items as USAGE frames of at most limit bytes (one
// empty frame when there are none: it is the smart mode's keepalive).
func usageFrames(items []usageItem, limit int) [][]byte {
	per := (limit - frameHeaderLen - 4) / 12
	var out [][]byte
	for {
		n := min(len(items), per)
		out = append(out, appendUsage(nil, items[:n]))
		items = items[n:]
		if len(items) == 0 {
			return out
		}
	}
}

// apply inserts records received from p. resetEqual re-installs records
// whose version equals the cached one (the naive mode's "TTLs are reset");
// otherwise only newer records are taken. It returns the entries
// inserted.
func (m *Member) apply(recs []record, p *peer, resetEqual bool) []*mapcache.Entry {
	if len(recs) == 0 {
		return nil
	}
	now := m.cache.Now()
	es := make([]*mapcache.Entry, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		m.clock.Observe(r.version)
		if cur, ok := m.cache.Get(r.key); ok {
			if cur.Version > r.version || (cur.Version == r.version && !resetEqual) {
				m.c.ignored.Add(1)
				continue
			}
		}
		es = append(es, r.entry(now, p.name))
	}
	errs := m.cache.InsertBatch(es)
	if errs == nil {
		m.c.applied.Add(uint64(len(es)))
		return es
	}
	done := es[:0:0]
	for i, err := range errs {
		switch {
		case err == nil:
			m.c.applied.Add(1)
			done = append(done, es[i])
		case errors.Is(err, mapcache.ErrStale):
			m.c.ignored.Add(1)
		default:
			// Expired in transit, or a cache full of permanent
			// entries: the record is simply not taken.
			m.c.expired.Add(1)
			m.log.Debug("record from peer not inserted", "peer", p.name, "err", err)
		}
	}
	return done
}

// connectedPeers returns the connected peers.
func (m *Member) connectedPeers() []*peer {
	var out []*peer
	for _, p := range m.allPeers() {
		if p.connected() {
			out = append(out, p)
		}
	}
	return out
}

// allPeers returns the configured peers, or the gossip members seen.
func (m *Member) allPeers() []*peer {
	if m.cfg.Mode != ModeGossip {
		return m.peers
	}
	m.gmu.Lock()
	defer m.gmu.Unlock()
	out := make([]*peer, 0, len(m.gpeers))
	for _, p := range m.gpeers {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *peer) int { return cmp.Compare(a.name, b.name) })
	return out
}

// Stats returns the member's counters.
func (m *Member) Stats() Stats {
	s := Stats{Mode: m.cfg.Mode, Name: m.cfg.Name, Origin: m.clock.Origin(),
		RefreshWindow: m.cfg.RefreshWindow, RoundInterval: m.cfg.RoundInterval}
	m.c.fill(&s)
	for _, p := range m.allPeers() {
		s.Peers++
		if p.connected() {
			s.Connected++
		}
	}
	return s
}

// Peers returns the view of every peer, sorted by name.
func (m *Member) Peers() []PeerStatus {
	ps := m.allPeers()
	out := make([]PeerStatus, 0, len(ps))
	for _, p := range ps {
		v := PeerStatus{Name: p.name, Address: p.addr, Dials: p.dials}
		if p.key != nil {
			v.PublicKey = FormatPublicKey(p.key)
		}
		p.mu.Lock()
		v.State, v.Since, v.LastError = p.state, p.since, p.lastErr
		p.mu.Unlock()
		p.c.fill(&v)
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
