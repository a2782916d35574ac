package mapserver

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/lispd/lispd/wire"
)

// Sender sends one UDP datagram from the control port (4342). The daemon
// implements it over its sockets; tests over in-memory or loopback ones.
// Send must not retain b after it returns, and may be called from several
// goroutines at once.
type Sender interface {
	// Send sends b as the payload of one UDP datagram to to.
	Send(b []byte, to netip.AddrPort) error
}

// ErrAlreadyRunning is returned by Run when another Run is in progress.
var ErrAlreadyRunning = errors.New("mapserver: Run already in progress")

// idleWait is how long Run sleeps when no timer is pending; anything that
// creates a timer wakes it earlier.
const idleWait = time.Minute

// Server is a Map-Server and/or Map-Resolver. It is safe for concurrent use:
// HandlePacket may be called from several goroutines at once, while Run
// drives the timers and SetSites, SetResolver, Stats and Registrations are
// called by the daemon's API.
//
// Lock order: regMu, then notify.mu. The request path takes neither: it
// reads the configuration and the published registrations through the
// atomic state pointer, and counts with atomics. Datagrams are never sent
// while a lock is held.
type Server struct {
	cfg   Config // immutable after New, except Sites and Resolver (guarded by regMu)
	out   Sender
	log   *slog.Logger
	clock Clock

	// state is the configuration and published registrations the request
	// path reads without locks. Written only with regMu held.
	state atomic.Pointer[state]

	ctr counters

	// regMu guards reg, replay, persist, cfg.Sites and cfg.Resolver, and
	// serializes writers of state.
	regMu sync.Mutex
	reg   *registry
	// replay is the memory of superseded Map-Registers (replay.go).
	replay replayMemory
	// persist schedules the writes of the state file (persist.go).
	persist persister

	notify notifier

	// subs is the pub/sub state (pubsub.go); its mutex comes after regMu.
	subs subscriptions
	// pubJobs collects the changes to publish while regMu is held.
	pubJobs []pubJob

	// wake is signalled (never blocking) when a timer is created that Run
	// may need to wait for.
	wake    chan struct{}
	running atomic.Bool

	// logLimit throttles warnings that remote peers can trigger at will.
	logLimit *rate.Limiter
}

// New returns a Server for cfg that sends through out. logger may be nil
// (nothing is logged). The Server handles packets at once; timers
// (registration expiry, Map-Notify retransmission) run only while Run does.
func New(cfg Config, out Sender, logger *slog.Logger) (*Server, error) {
	if out == nil {
		return nil, ErrNilSender
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := validateSites(cfg.Sites); err != nil {
		return nil, err
	}
	if err := validateResolver(cfg.Resolver); err != nil {
		return nil, err
	}
	cfg.Sites = cloneSites(cfg.Sites)
	cfg.Resolver = cloneResolver(cfg.Resolver)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		out:      out,
		log:      logger,
		clock:    cfg.Clock,
		reg:      newRegistry(),
		replay:   newReplayMemory(),
		persist:  persister{path: cfg.StateFile},
		notify:   newNotifier(),
		subs:     newSubscriptions(),
		wake:     make(chan struct{}, 1),
		logLimit: rate.NewLimiter(rate.Every(time.Second), 10),
	}
	s.state.Store(&state{
		sites: compileSites(cfg.Sites, cfg.Resolver, cfg.MapServer),
		regs:  map[uint32]*iidRegs{},
	})
	if cfg.StateFile != "" && cfg.MapServer {
		s.restoreState()
	}
	return s, nil
}

// HandlePacket processes one UDP datagram received on the control port:
// pkt is its payload, from its source and local the address it was received
// on (used to pick the reply's address family; may be the zero Addr). pkt
// is not retained. Every outcome is counted in Stats. What the datagram
// calls for is sent through the Server's Sender. A goroutine that handles
// many datagrams can use a Worker instead, which also lets it choose the
// Sender.
func (s *Server) HandlePacket(pkt []byte, from netip.AddrPort, local netip.Addr) {
	p := parserPool.Get().(*requestParser)
	s.handle(p, s.out, pkt, from, local)
	parserPool.Put(p)
}

// handle is HandlePacket with the parser state p and the Sender out. A nil
// p skips the fast path (tests and benchmarks compare the two).
func (s *Server) handle(p *requestParser, out Sender, pkt []byte, from netip.AddrPort, local netip.Addr) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	local = local.Unmap()
	if p == nil {
		// No fast path.
	} else if req, ecm, ok := p.parse(pkt); ok {
		// The fast path: a Map-Request, plain or encapsulated, parsed
		// without allocating.
		if ecm != nil {
			s.dispatchRequest(&request{req: req, ecm: ecm, from: from, local: local, replyPort: ecm.Source.Port(), out: out}, ecm.ToMS)
		} else {
			s.dispatchRequest(&request{req: req, from: from, local: local, replyPort: from.Port(), out: out}, false)
		}
		return
	}
	msg, err := wire.Parse(pkt)
	if err != nil {
		if s.pubsubAckFallback(pkt, from) {
			return
		}
		if errors.Is(err, wire.ErrUnknownType) {
			s.ctr.inc(cUnsupportedType)
			return
		}
		s.ctr.incMalformed(wire.ErrorReason(err))
		return
	}
	switch m := msg.(type) {
	case *wire.MapRegister:
		if !s.cfg.MapServer {
			s.ctr.inc(cWrongRole)
			return
		}
		s.handleRegister(m, pkt, from, out)
	case *wire.MapNotifyAck:
		if !s.cfg.MapServer {
			s.ctr.inc(cWrongRole)
			return
		}
		s.handleNotifyAck(m, pkt, from)
	case *wire.ECM:
		s.handleECM(m, pkt, from, local, out)
	case *wire.MapRequest:
		s.dispatchRequest(&request{req: m, from: from, local: local, replyPort: from.Port(), out: out}, false)
	default:
		// Map-Reply and Map-Notify are for xTRs. RFC 9301 section 8.3: a
		// Map-Server that receives a Map-Reply discards it.
		s.ctr.inc(cUnsupportedType)
	}
}

// handleECM processes an Encapsulated Control Message.
func (s *Server) handleECM(m *wire.ECM, pkt []byte, from netip.AddrPort, local netip.Addr, out Sender) {
	switch in := m.Inner.(type) {
	case *wire.MapRequest:
		r := &request{req: in, ecm: m, from: from, local: local, replyPort: m.Source.Port(), out: out}
		s.dispatchRequest(r, m.ToMS)
	case *wire.MapRegister:
		// An encapsulated Map-Register (as NAT traversal sends them) is
		// authenticated over the inner message as received.
		if !s.cfg.MapServer {
			s.ctr.inc(cWrongRole)
			return
		}
		payload, err := wire.ECMPayload(pkt)
		if err != nil {
			s.ctr.incMalformed(wire.ErrorReason(err))
			return
		}
		s.handleRegister(in, payload, from, out)
	default:
		s.ctr.inc(cUnsupportedType)
	}
}

// dispatchRequest sends a Map-Request to the role that handles it: the
// Map-Resolver when this server is one (it hands the request to the local
// Map-Server when that serves the EID), else the Map-Server. A request
// marked for a Map-Server (ECM M bit) goes straight to the local Map-Server,
// so that requests forwarded between resolvers cannot loop.
func (s *Server) dispatchRequest(r *request, toMS bool) {
	switch {
	case toMS && s.cfg.MapServer:
		s.serveRequest(r)
	case toMS:
		s.ctr.inc(cWrongRole)
	case s.cfg.MapResolver:
		s.resolve(r)
	case s.cfg.MapServer:
		s.serveRequest(r)
	default:
		s.ctr.inc(cWrongRole)
	}
}

// Run drives the timers: registration expiry, Map-Notify retransmission and
// the writes of the state file (Config.StateFile), which it writes once more
// when ctx is done, before it returns nil. It returns ErrAlreadyRunning if
// called while another Run is in progress. It starts no other goroutine.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer s.running.Store(false)
	t := s.clock.NewTimer(idleWait)
	defer t.Stop()
	for {
		now := s.clock.Now()
		next := s.runTimers(now)
		d := idleWait
		if !next.IsZero() {
			d = max(next.Sub(now), 0)
		}
		t.Stop()
		t.Reset(d)
		select {
		case <-ctx.Done():
			s.flushState()
			return nil
		case <-t.C():
		case <-s.wake:
		}
	}
}

// runTimers expires registrations and retransmits Map-Notify messages due
// at now, and returns the next time something is due (zero if nothing is).
func (s *Server) runTimers(now time.Time) time.Time {
	next := s.expire(now)
	for _, n := range [...]time.Time{s.retransmit(now), s.retransmitPubSub(now), s.persistDue(now)} {
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next
}

// poke wakes Run so it recomputes its deadline.
func (s *Server) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// SetSites replaces the site configuration at run time. Registrations of
// sites that remain, for prefixes they still allow, are kept (a changed key
// applies to the next Map-Register); registrations of removed sites, or for
// prefixes no longer allowed, are dropped. Nothing changes on error.
func (s *Server) SetSites(sites []Site) error {
	if err := validateSites(sites); err != nil {
		return err
	}
	sites = cloneSites(sites)
	s.regMu.Lock()
	tbl := compileSites(sites, s.cfg.Resolver, s.cfg.MapServer)
	dropped := s.rebuildLocked(tbl)
	if dropped > 0 {
		s.markDirtyLocked(true)
	}
	s.cfg.Sites = sites
	pubs := s.preparePublicationsLocked(s.takePubJobsLocked())
	s.regMu.Unlock()
	s.sendPubSub(pubs)
	s.log.Info("map-server sites replaced", "sites", len(sites), "dropped_registrations", dropped)
	return nil
}

// SetResolver replaces the Map-Resolver's list of remote Map-Servers.
// Nothing changes on error.
func (s *Server) SetResolver(r ResolverConfig) error {
	if err := validateResolver(r); err != nil {
		return err
	}
	r = cloneResolver(r)
	s.regMu.Lock()
	defer s.regMu.Unlock()
	tbl := compileSites(s.cfg.Sites, r, s.cfg.MapServer)
	s.rebuildLocked(tbl)
	s.cfg.Resolver = r
	s.log.Info("map-resolver map-servers replaced", "map_servers", len(r.MapServers))
	return nil
}

// rebuildLocked installs a new site table: registrations whose prefix is no
// longer allowed to their site are dropped, the others republished against
// the new table. It returns the number dropped. regMu must be held.
func (s *Server) rebuildLocked(tbl *siteTable) int {
	dropped := 0
	for key, e := range s.reg.entries {
		st, _ := tbl.siteFor(key.InstanceID, key.Prefix)
		if st != nil && st.name == e.site {
			continue
		}
		for _, reg := range e.sortedRegs() {
			s.reg.remove(e, reg.xtr)
			s.notify.cancel(pendKey{prefix: key, xtr: reg.xtr})
			s.notify.resetUnacked(reg.xtr)
			dropped++
			s.ctr.inc(cDroppedByConfig)
		}
		if e.pub != nil {
			s.pubJobs = append(s.pubJobs, pubJob{prefix: key})
		}
	}
	for name := range s.reg.perSite {
		if tbl.byName[name] == nil {
			delete(s.reg.perSite, name)
			delete(s.reg.perSitePrefixes, name)
		}
	}
	regs := make(map[uint32]*iidRegs)
	tables := make(map[uint32]*bartTable)
	for _, e := range s.reg.entries {
		pub, lk := e.merge(tbl)
		e.pub, e.locKey = pub, lk
		t := tables[e.prefix.InstanceID]
		if t == nil {
			t = new(bartTable)
			tables[e.prefix.InstanceID] = t
		}
		t.Insert(e.prefix.Prefix, pub)
	}
	for iid, t := range tables {
		r := new(iidRegs)
		r.t.Store(t)
		regs[iid] = r
	}
	s.state.Store(&state{sites: tbl, regs: regs})
	return dropped
}

// Stats returns a snapshot of the counters and per-site registration counts.
func (s *Server) Stats() Stats {
	st := s.ctr.snapshot()
	sites := s.state.Load().sites
	s.regMu.Lock()
	st.SiteRegistrations = make(map[string]int, len(sites.byName))
	for name := range sites.byName {
		st.SiteRegistrations[name] = s.reg.perSite[name]
	}
	s.regMu.Unlock()
	st.Subscriptions, st.PubSubPending = s.subscriptionCounts()
	return st
}

// cloneSites deep-copies a site list.
func cloneSites(sites []Site) []Site {
	out := make([]Site, len(sites))
	for i := range sites {
		out[i] = cloneSite(sites[i])
	}
	return out
}

// cloneResolver deep-copies a resolver configuration.
func cloneResolver(r ResolverConfig) ResolverConfig {
	out := ResolverConfig{MapServers: slices.Clone(r.MapServers)}
	for i := range out.MapServers {
		out.MapServers[i].Prefixes = slices.Clone(out.MapServers[i].Prefixes)
	}
	return out
}
