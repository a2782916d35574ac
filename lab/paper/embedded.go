package paper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/daemon"
	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/lab/labkit"
	"github.com/lispd/lispd/lab/lan"
	"github.com/lispd/lispd/lab/topo"
	"github.com/lispd/lispd/lab/traffic"
	"github.com/lispd/lispd/lab/vrrp"
)

// embeddedRunner runs every router in this process: lispd daemons on
// 127.0.x.y with real UDP and TCP sockets, their EID sides on in-memory
// devices attached to the modelled LAN and destinations.
type embeddedRunner struct {
	o    Options
	p    *progress
	logs io.Writer
	// octet is the second octet of this runner's loopback networks
	// (127.<octet>.<run>.0/24); lock holds 127.<octet>.0.1 so that no
	// other lisplab process uses the same networks meanwhile.
	octet byte
	lock  net.Listener
}

func newEmbeddedRunner(o Options, p *progress) (*embeddedRunner, error) {
	r := &embeddedRunner{o: o, p: p, logs: labkit.NewLockedWriter(o.Logs)}
	first := 32 + os.Getpid()%192
	for i := range 192 {
		octet := byte(32 + (first-32+i)%192)
		ln, err := net.Listen("tcp", netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, octet, 0, 1}), lockPort).String())
		if err == nil {
			r.octet, r.lock = octet, ln
			return r, nil
		}
	}
	return nil, fmt.Errorf("paper: no free loopback network 127.x.0.0/16 (each running lisplab holds one)")
}

// lockPort is the TCP port of the runner's lock socket.
const lockPort = 4340

func (r *embeddedRunner) close() { _ = r.lock.Close() }

// embeddedSite is one run's topology built in this process.
type embeddedSite struct {
	o      Options
	t      *topo.Topology
	ledger *traffic.Ledger
	lan    *lan.LAN
	seg    *vrrp.Segment
	ms     *api.Client
	itrs   map[string]*api.Client
	// rxs are the remote xTRs' API clients.
	rxs map[string]*api.Client
	// daemons are the site xTRs' daemons, to crash one; links their
	// EID-side link monitors; tracks their VRRP track files.
	daemons map[string]*daemonHandle
	links   map[string]chan bool
	tracks  map[string]string
	// sink counts, after a crash, what arrives at the dead RLOC.
	sink *rlocSink
	// drainOut is what ITR1's Drain said.
	drainOut *DrainOutcome

	ctx    context.Context // the site's life
	wg     sync.WaitGroup  // the site's goroutines
	errc   chan error      // their failures
	stopP  context.CancelFunc
	pingWG sync.WaitGroup
}

// daemonHandle is one in-process lispd: cancel stops it as SIGKILL would
// (its sockets close), done is closed when its Run returned.
type daemonHandle struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *embeddedRunner) run(ctx context.Context, spec Spec, i int, rng *rand.Rand) (RunResult, error) {
	rlocNet := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, r.octet, byte(i), 0}), 24)
	t, err := topo.Paper(topo.Test(spec.Test), rlocNet)
	if err != nil {
		return RunResult{}, err
	}
	dir, err := os.MkdirTemp("", "lisplab-paper-")
	if err != nil {
		return RunResult{}, fmt.Errorf("paper: %w", err)
	}
	defer os.RemoveAll(dir)
	ledger, err := traffic.NewLedger(t.Flows)
	if err != nil {
		return RunResult{}, err
	}
	siteCtx, cancel := context.WithCancel(ctx)
	s := &embeddedSite{o: r.o, t: t, ledger: ledger, ctx: siteCtx, itrs: map[string]*api.Client{}, rxs: map[string]*api.Client{}, errc: make(chan error, 64),
		daemons: map[string]*daemonHandle{}, links: map[string]chan bool{}, tracks: map[string]string{}}
	defer func() {
		cancel()
		s.wg.Wait()
		if s.sink != nil {
			s.sink.close()
		}
		for _, c := range s.itrs {
			_ = c.Close()
		}
		for _, c := range s.rxs {
			_ = c.Close()
		}
		if s.ms != nil {
			_ = s.ms.Close()
		}
	}()
	r.p.phase("starting the Map-Server/Map-Resolver, %d remote xTRs and ITR1/ITR2 on %v", len(t.Remotes), rlocNet)
	if err := s.build(dir, spec, r.logs); err != nil {
		return RunResult{}, err
	}
	run, err := drive(siteCtx, r.o, r.p, t, spec, s, ledger, rng)
	if err != nil {
		// A router that stopped explains a failure better than the
		// symptom.
		select {
		case rerr := <-s.errc:
			return RunResult{}, fmt.Errorf("%w (router failed: %v)", err, rerr)
		default:
		}
		return RunResult{}, err
	}
	return run, nil
}

// spawn runs fn as one of the site's goroutines; an error it returns
// while the site is alive is reported on errc.
func (s *embeddedSite) spawn(name string, fn func(ctx context.Context) error) {
	s.spawnCtx(s.ctx, name, fn)
}

// spawnCtx is spawn with a context of the goroutine's own (within the
// site's); errors after it ended are not reported.
func (s *embeddedSite) spawnCtx(ctx context.Context, name string, fn func(ctx context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			select {
			case s.errc <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
	}()
}

// startDaemon starts an in-process lispd from config text and returns the
// client of its API socket once the socket is up.
func (s *embeddedSite) startDaemon(dir, name, text string, opts daemon.Options) (*api.Client, error) {
	path := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("paper: %w", err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("paper: %s config: %w", name, err)
	}
	opts.APISocket = filepath.Join(dir, name+".sock")
	d, err := daemon.New(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("paper: %s: %w", name, err)
	}
	dctx, cancel := context.WithCancel(s.ctx)
	h := &daemonHandle{cancel: cancel, done: make(chan struct{})}
	s.spawnCtx(dctx, name, func(ctx context.Context) error {
		defer close(h.done)
		return d.Run(ctx)
	})
	s.daemons[name] = h
	c := api.NewClient(opts.APISocket, api.WithTimeout(5*time.Second))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Status(s.ctx); err == nil {
			return c, nil
		}
		select {
		case err := <-s.errc:
			return nil, fmt.Errorf("paper: %w", err)
		default:
		}
		if time.Now().After(deadline) || s.ctx.Err() != nil {
			return nil, fmt.Errorf("paper: %s did not start within 10 s", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// build starts the routers, the LAN, the destinations and VRRP.
func (s *embeddedSite) build(dir string, spec Spec, logs io.Writer) error {
	t := s.t
	var err error
	if s.ms, err = s.startDaemon(dir, "msmr", msmrConfig(t, filepath.Join(dir, "msmr.sock"), spec.PubSub), daemon.Options{Stderr: logs}); err != nil {
		return err
	}
	for _, rx := range t.Remotes {
		xtrEnd, lanEnd := dataplane.NewMemDevicePair(rx.Name, rx.Name+"-lan", dataplane.DefaultTUNMTU, 0)
		resp := lan.NewResponder(lanEnd, s.ledger, rx.Dests)
		s.spawn(rx.Name+" destinations", resp.Run)
		rs := remoteSpec(t, rx)
		rs.Healing = spec.Healing
		rs.PubSub = spec.PubSub
		c, err := s.startXTR(dir, rs, xtrEnd, nil, logs)
		if err != nil {
			return err
		}
		s.rxs[rx.Name] = c
	}
	s.lan = lan.New(s.ledger, nil)
	keys, err := syncKeys(t, dir)
	if err != nil {
		return err
	}
	for _, x := range t.XTRs {
		xtrEnd, lanEnd := dataplane.NewMemDevicePair(x.Name, x.Name+"-lan", dataplane.DefaultTUNMTU, 0)
		if err := s.lan.AddRouter(x.Name, lanEnd); err != nil {
			return err
		}
		xs := siteSpec(t, x, spec.Variant, keys)
		xs.Healing = spec.Healing
		xs.PubSub = spec.PubSub
		xs.ProxyReply = siteProxyReply(spec.PubSub)
		xs.TrackFile = filepath.Join(dir, strings.ToLower(x.Name)+".track")
		s.tracks[x.Name] = xs.TrackFile
		s.links[x.Name] = make(chan bool, 4)
		c, err := s.startXTR(dir, xs, xtrEnd, s.links[x.Name], logs)
		if err != nil {
			return err
		}
		s.itrs[x.Name] = c
	}
	for _, h := range t.Hosts {
		if err := s.lan.AddHost(h.Name, h.Addr, h.Gateway); err != nil {
			return err
		}
	}
	s.spawn("LAN", s.lan.Run)

	// VRRP: each group's master and backup, with the documented
	// keepalived timers (VRRPv3).
	var inst []vrrp.InstanceConfig
	for _, g := range t.Groups {
		for _, x := range t.XTRs {
			inst = append(inst, vrrp.InstanceConfig{
				Router: x.Name, VRID: g.VRID, Priority: g.Priority(x.Name),
				AdvertInt: s.o.advertInt(), StartMaster: x.Name == g.Master,
			})
		}
	}
	s.seg, err = vrrp.NewSegment(inst, func(e vrrp.Event) {
		if e.To != vrrp.Master {
			return
		}
		if g, ok := t.Group(e.VRID); ok {
			_ = s.lan.GARP(g.VIP, e.Router) // the new master's gratuitous ARP
		}
	})
	if err != nil {
		return err
	}
	s.spawn("VRRP", s.seg.Run)
	// keepalived's track_file, as deploy/keepalived configures it: the
	// file lispd writes after a drain puts the router's instances in
	// FAULT.
	for _, x := range t.XTRs {
		s.spawn("VRRP track file of "+x.Name, func(ctx context.Context) error {
			return s.seg.TrackFile(ctx, x.Name, s.tracks[x.Name], vrrp.DefaultTrackPoll)
		})
	}
	return nil
}

func (s *embeddedSite) clients() map[string]*api.Client { return s.itrs }

func (s *embeddedSite) remotes() map[string]*api.Client { return s.rxs }

func (s *embeddedSite) mapServer() *api.Client { return s.ms }

func (s *embeddedSite) ready(ctx context.Context) error {
	want := 1
	for _, rx := range s.t.Remotes {
		want += len(rx.Prefixes)
	}
	for {
		regs, err := s.ms.Registrations(ctx)
		ok := err == nil && len(regs) >= want
		for _, g := range s.t.Groups {
			ok = ok && s.lan.Resolve(g.VIP) == g.Master
		}
		if ok {
			ok, err = s.syncReady(ctx)
		}
		if ok {
			return nil
		}
		select {
		case rerr := <-s.errc:
			return fmt.Errorf("paper: %w", rerr)
		case <-ctx.Done():
			return fmt.Errorf("paper: site not ready (registrations %d of %d, last error %v)", len(regs), want, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *embeddedSite) startTraffic(context.Context) (time.Time, error) {
	pctx, cancel := context.WithCancel(s.ctx)
	s.stopP = cancel
	start := time.Now()
	for _, h := range s.t.Hosts {
		p := &traffic.Pinger{Ledger: s.ledger, Hosts: []string{h.Name}, Interval: s.o.PingInterval, Send: func(f traffic.Flow, pkt []byte) error {
			return s.lan.Send(f.Host, pkt)
		}}
		s.pingWG.Add(1)
		go func() { // RoutinePinger, one per host
			defer s.pingWG.Done()
			_ = p.Run(pctx)
		}()
	}
	return start, nil
}

func (s *embeddedSite) stopTraffic() {
	if s.stopP != nil {
		s.stopP()
		s.pingWG.Wait()
	}
}

func (s *embeddedSite) fail(ctx context.Context, kind Failure) (time.Time, error) {
	now := time.Now()
	switch kind {
	case FailLAN:
		if err := s.lan.SetLinkUp(topo.ITR1, false); err != nil {
			return now, err
		}
		if err := s.seg.SetLinkUp(topo.ITR1, false, now); err != nil {
			return now, err
		}
		// lispd on ITR1 sees its EID-side link go down, as its netlink
		// monitor would report it.
		select {
		case s.links[topo.ITR1] <- false:
		default:
		}
		return now, nil
	case FailCrash:
		// A whole-router crash: lispd's context is cancelled (its
		// sockets close, as on SIGKILL), its VRRP instances fall silent
		// and nothing on the router takes frames from the LAN any more
		// (the LAN model drops them as at a dead port; the link itself
		// never went down, lispd's link monitor is not told anything).
		h := s.daemons[strings.ToLower(topo.ITR1)]
		if h == nil {
			return now, errors.New("paper: no ITR1 daemon")
		}
		h.cancel()
		if err := s.seg.SetLinkUp(topo.ITR1, false, now); err != nil {
			return now, err
		}
		if err := s.lan.SetLinkUp(topo.ITR1, false); err != nil {
			return now, err
		}
		select {
		case <-h.done:
		case <-ctx.Done():
			return now, ctx.Err()
		}
		// Replies still sent to ITR1's RLOC arrive at a dead port: a
		// socket bound in lispd's place counts them.
		x, _ := s.t.XTR(topo.ITR1)
		sink, err := newRLOCSink(x.RLOC, topo.ITR1, s.ledger)
		if err != nil {
			return now, err
		}
		s.sink = sink
		return now, nil
	case FailDrain:
		dctx, cancel := context.WithTimeout(ctx, DrainTimeout)
		defer cancel()
		out, err := drain(dctx, s.itrs[topo.ITR1])
		if err != nil {
			return now, fmt.Errorf("paper: draining ITR1: %w", err)
		}
		s.drainOut = &out
		return now, nil
	}
	return now, fmt.Errorf("%w: failure %q", ErrInvalid, kind)
}

func (s *embeddedSite) drained() *DrainOutcome { return s.drainOut }

func (s *embeddedSite) switchovers(ctx context.Context, failAt time.Time) []Switchover {
	var pending []topo.Group
	for _, g := range s.t.Groups {
		if g.Master == topo.ITR1 {
			pending = append(pending, g)
		}
	}
	var out []Switchover
	for {
		moves := s.lan.ARPMoves()
		for i := 0; i < len(pending); i++ {
			g := pending[i]
			for _, m := range moves {
				if m.VIP == g.VIP && m.Router == topo.ITR2 && !m.At.Before(failAt) {
					out = append(out, Switchover{VRID: g.VRID, To: m.Router, After: m.At.Sub(failAt)})
					pending = append(pending[:i], pending[i+1:]...)
					i--
					break
				}
			}
		}
		if len(pending) == 0 {
			return out
		}
		select {
		case <-ctx.Done():
			return out
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (s *embeddedSite) handed(flow uint16, router string) (time.Time, bool) {
	return s.ledger.FirstHanded(flow, router)
}

// startXTR starts an in-process xTR from spec with dev as its EID side.
// link, when not nil, reports the EID-side link's state to the daemon
// (true: up), as lispd's netlink monitor does for a TUN-based xTR.
func (s *embeddedSite) startXTR(dir string, spec xtrSpec, dev dataplane.Device, link <-chan bool, logs io.Writer) (*api.Client, error) {
	opts := daemon.Options{Stderr: logs, DataDevice: dev, EIDLinkUp: link}
	return s.startDaemon(dir, strings.ToLower(spec.Name), xtrConfig(spec, filepath.Join(dir, strings.ToLower(spec.Name)+".sock")), opts)
}

// syncReady reports whether the site xTRs' sync peers are connected.
func (s *embeddedSite) syncReady(ctx context.Context) (bool, error) {
	return syncConnected(ctx, s.itrs)
}
