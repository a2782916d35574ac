package paper

import (
	"context"
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

	ctx    context.Context // the site's life
	wg     sync.WaitGroup  // the site's goroutines
	errc   chan error      // their failures
	stopP  context.CancelFunc
	pingWG sync.WaitGroup
}

func (r *embeddedRunner) run(ctx context.Context, test topo.Test, v Variant, i int, rng *rand.Rand) (RunResult, error) {
	rlocNet := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, r.octet, byte(i), 0}), 24)
	t, err := topo.Paper(test, rlocNet)
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
	s := &embeddedSite{o: r.o, t: t, ledger: ledger, ctx: siteCtx, itrs: map[string]*api.Client{}, errc: make(chan error, 64)}
	defer func() {
		cancel()
		s.wg.Wait()
		for _, c := range s.itrs {
			_ = c.Close()
		}
		if s.ms != nil {
			_ = s.ms.Close()
		}
	}()
	r.p.phase("starting the Map-Server/Map-Resolver, %d remote xTRs and ITR1/ITR2 on %v", len(t.Remotes), rlocNet)
	if err := s.build(dir, v, r.logs); err != nil {
		return RunResult{}, err
	}
	run, err := drive(siteCtx, r.o, r.p, t, v, s, ledger, rng)
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
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := fn(s.ctx); err != nil && s.ctx.Err() == nil {
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
	s.spawn(name, d.Run)
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
func (s *embeddedSite) build(dir string, v Variant, logs io.Writer) error {
	t := s.t
	var err error
	if s.ms, err = s.startDaemon(dir, "msmr", msmrConfig(t, filepath.Join(dir, "msmr.sock")), daemon.Options{Stderr: logs}); err != nil {
		return err
	}
	for _, rx := range t.Remotes {
		xtrEnd, lanEnd := dataplane.NewMemDevicePair(rx.Name, rx.Name+"-lan", dataplane.DefaultTUNMTU, 0)
		resp := lan.NewResponder(lanEnd, s.ledger, rx.Dests)
		s.spawn(rx.Name+" destinations", resp.Run)
		c, err := s.startXTR(dir, remoteSpec(t, rx), xtrEnd, logs)
		if err != nil {
			return err
		}
		_ = c.Close() // the remote xTRs are not measured
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
		c, err := s.startXTR(dir, siteSpec(t, x, v, keys), xtrEnd, logs)
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

	// VRRP: each group's master and backup, keepalived's timers scaled.
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
	return nil
}

func (s *embeddedSite) clients() map[string]*api.Client { return s.itrs }

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

func (s *embeddedSite) fail(context.Context) (time.Time, error) {
	now := time.Now()
	if err := s.lan.SetLinkUp(topo.ITR1, false); err != nil {
		return now, err
	}
	if err := s.seg.SetLinkUp(topo.ITR1, false, now); err != nil {
		return now, err
	}
	return now, nil
}

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
func (s *embeddedSite) startXTR(dir string, spec xtrSpec, dev dataplane.Device, logs io.Writer) (*api.Client, error) {
	return s.startDaemon(dir, strings.ToLower(spec.Name), xtrConfig(spec, filepath.Join(dir, strings.ToLower(spec.Name)+".sock")), daemon.Options{Stderr: logs, DataDevice: dev})
}

// syncReady reports whether the site xTRs' sync peers are connected.
func (s *embeddedSite) syncReady(ctx context.Context) (bool, error) {
	return syncConnected(ctx, s.itrs)
}
