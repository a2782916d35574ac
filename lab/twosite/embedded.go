package twosite

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
	"syscall"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/daemon"
	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/lab/labkit"
)

// EmbeddedOptions configure StartEmbedded. The zero value is ready to use.
type EmbeddedOptions struct {
	// RLOCNet is the loopback /24 the daemons' sockets bind in (127.x.y.0/24).
	// The zero value picks a free 127.0.n.0/24, and picks another if a
	// parallel run takes it first.
	RLOCNet netip.Prefix
	// MissPolicy is the ITRs' miss policy, "drop" (the default) or "queue".
	MissPolicy string
	// LogLevel is the daemons' log level; "" means "info".
	LogLevel string
	// Logs receives the three daemons' logs, line by line; nil discards
	// them.
	Logs io.Writer
	// StartTimeout bounds the start: daemons up and both sites registered.
	// Zero means 15 s.
	StartTimeout time.Duration
}

// Embedded is the two-site topology running in this process: three
// in-process lispd daemons with real UDP sockets on loopback and two hosts
// on in-memory links. Close stops everything.
type Embedded struct {
	plan   Plan
	dir    string
	ms     *Router
	xtr    [2]*Router
	host   [2]*Host
	closed sync.Once
	err    error
}

// Router is a lispd daemon of the embedded topology.
type Router struct {
	name    string
	cfgPath string
	d       *daemon.Daemon
	api     *api.Client
	cancel  context.CancelFunc
	done    chan struct{}
	runErr  error // Run's result, set before done is closed
	dataDev *dataplane.MemDevice
}

// maxPickTries is how many loopback networks StartEmbedded tries.
const maxPickTries = 8

// StartEmbedded starts the Map-Server/Map-Resolver and the two xTRs in this
// process, attaches the hosts, and waits until both sites are registered.
// It needs no privileges (on Linux every 127/8 address is local).
func StartEmbedded(ctx context.Context, o EmbeddedOptions) (*Embedded, error) {
	if o.StartTimeout == 0 {
		o.StartTimeout = 15 * time.Second
	}
	if o.StartTimeout < 0 {
		return nil, fmt.Errorf("%w: start timeout %v", ErrInvalid, o.StartTimeout)
	}
	switch o.MissPolicy {
	case "", "drop", "queue":
	default:
		return nil, fmt.Errorf("%w: miss policy %q (want drop or queue)", ErrInvalid, o.MissPolicy)
	}
	if o.RLOCNet.IsValid() && (!o.RLOCNet.Addr().Is4() || !o.RLOCNet.Addr().IsLoopback()) {
		return nil, fmt.Errorf("%w: embedded RLOC network %v is not in 127.0.0.0/8", ErrInvalid, o.RLOCNet)
	}
	if o.Logs == nil {
		o.Logs = io.Discard
	} else {
		o.Logs = labkit.NewLockedWriter(o.Logs)
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	var lastErr error
	for try := 0; try < maxPickTries; try++ {
		rnet := o.RLOCNet
		if !rnet.IsValid() {
			var err error
			if rnet, err = pickLoopbackNet(); err != nil {
				return nil, err
			}
		}
		e, err := startEmbedded(ctx, o, rnet)
		if err == nil {
			return e, nil
		}
		lastErr = err
		if o.RLOCNet.IsValid() || !addrInUse(err) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// startEmbedded is one attempt of StartEmbedded on rnet.
func startEmbedded(ctx context.Context, o EmbeddedOptions, rnet netip.Prefix) (*Embedded, error) {
	plan, err := NewPlan(rnet)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "twosite-")
	if err != nil {
		return nil, fmt.Errorf("twosite: %w", err)
	}
	e := &Embedded{plan: plan, dir: dir}
	fail := func(err error) (*Embedded, error) {
		_ = e.Close()
		return nil, err
	}
	if e.ms, err = startRouter(ctx, dir, NodeMS, plan.MSMRConfig(filepath.Join(dir, NodeMS+".sock"), o.LogLevel), o.Logs, nil); err != nil {
		return fail(err)
	}
	for _, s := range []Site{SiteA, SiteB} {
		name := XTRNode(s)
		text, err := plan.XTRConfig(s, XTROptions{APISocket: filepath.Join(dir, name+".sock"), LogLevel: o.LogLevel, MissPolicy: o.MissPolicy})
		if err != nil {
			return fail(err)
		}
		xdev, hdev := dataplane.NewMemDevicePair(TUNName, HostNode(s)+"-eth0", dataplane.DefaultTUNMTU, 0)
		r, err := startRouter(ctx, dir, name, text, o.Logs, xdev)
		if err != nil {
			_ = xdev.Close()
			_ = hdev.Close()
			return fail(err)
		}
		e.xtr[s] = r
		e.host[s] = newHost(HostNode(s), plan.Host[s], hdev, uint16(0x4c00+int(s)))
	}
	if err := e.waitRegistered(ctx); err != nil {
		return fail(err)
	}
	return e, nil
}

// startRouter writes the config, starts a daemon with it and waits until
// its API answers. dev, if not nil, is its EID-side device.
func startRouter(ctx context.Context, dir, name, text string, logs io.Writer, dev *dataplane.MemDevice) (*Router, error) {
	path := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("twosite: %w", err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("twosite: %s: %w", name, err)
	}
	opts := daemon.Options{Stderr: &prefixWriter{prefix: name + ": ", w: logs}}
	if dev != nil {
		opts.DataDevice = dev
	}
	d, err := daemon.New(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("twosite: %s: %w", name, err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &Router{name: name, cfgPath: path, d: d, cancel: cancel, done: make(chan struct{}), dataDev: dev}
	go func() { // RoutineRouter
		defer close(r.done)
		r.runErr = d.Run(rctx)
	}()
	r.api = api.NewClient(cfg.Daemon.APISocket, api.WithTimeout(5*time.Second))
	for {
		if _, err := r.api.Status(ctx); err == nil {
			return r, nil
		}
		select {
		case <-r.done:
			err := r.stop()
			if err == nil {
				err = errors.New("stopped at start")
			}
			return nil, fmt.Errorf("twosite: %s: %w", name, err)
		case <-ctx.Done():
			_ = r.stop()
			return nil, fmt.Errorf("%w: %s's API did not answer: %v", ErrNotReady, name, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Name returns the router's name: "ms", "xtrA" or "xtrB".
func (r *Router) Name() string { return r.name }

// Daemon returns the running daemon (its ITRRole, ETRRole and MapServer
// give direct access to the roles).
func (r *Router) Daemon() *daemon.Daemon { return r.d }

// API returns a client of the daemon's local API.
func (r *Router) API() *api.Client { return r.api }

// ConfigPath returns the daemon's config file.
func (r *Router) ConfigPath() string { return r.cfgPath }

// Counters returns the daemon's counters, as `lispctl status` shows them.
func (r *Router) Counters(ctx context.Context) (map[string]uint64, error) {
	st, err := r.api.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("twosite: %s: %w", r.name, err)
	}
	return st.Counters, nil
}

// stop stops the daemon, waits for it and returns Run's error.
func (r *Router) stop() error {
	r.cancel()
	<-r.done
	_ = r.api.Close()
	if r.dataDev != nil {
		_ = r.dataDev.Close() // Run owns it, but may fail before taking it
	}
	return r.runErr
}

// waitRegistered waits until the Map-Server holds both sites'
// registrations.
func (e *Embedded) waitRegistered(ctx context.Context) error {
	for {
		regs, err := e.ms.api.Registrations(ctx)
		if err == nil && registered(regs, e.plan) {
			return nil
		}
		for _, r := range []*Router{e.ms, e.xtr[SiteA], e.xtr[SiteB]} {
			select {
			case <-r.done:
				return fmt.Errorf("twosite: %s stopped: %v", r.name, r.runErr)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: the sites did not register: %v (last answer %d registrations, %v)", ErrNotReady, ctx.Err(), len(regs), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// registered reports whether regs hold both sites' prefixes.
func registered(regs []api.Registration, p Plan) bool {
	var got [2]bool
	for _, r := range regs {
		for s := range got {
			if r.EIDPrefix == p.SitePrefix[s] && len(r.RLOCs) > 0 {
				got[s] = true
			}
		}
	}
	return got[0] && got[1]
}

// Plan returns the topology's addressing.
func (e *Embedded) Plan() Plan { return e.plan }

// MS returns the Map-Server/Map-Resolver.
func (e *Embedded) MS() *Router { return e.ms }

// XTR returns a site's xTR.
func (e *Embedded) XTR(s Site) *Router {
	if !s.valid() {
		return nil
	}
	return e.xtr[s]
}

// Host returns a site's host.
func (e *Embedded) Host(s Site) *Host {
	if !s.valid() {
		return nil
	}
	return e.host[s]
}

// Err returns the error of a daemon that stopped on its own (nil while
// all run): a failed socket, say.
func (e *Embedded) Err() error {
	for _, r := range []*Router{e.ms, e.xtr[SiteA], e.xtr[SiteB]} {
		if r == nil {
			continue
		}
		select {
		case <-r.done:
			if r.runErr != nil {
				return fmt.Errorf("twosite: %s: %w", r.name, r.runErr)
			}
			return fmt.Errorf("twosite: %s stopped", r.name)
		default:
		}
	}
	return nil
}

// Close stops the hosts and the daemons and removes the configs and API
// sockets. It returns the first error a daemon's Run returned, and the
// same result when called again.
func (e *Embedded) Close() error {
	e.closed.Do(func() {
		var errs []error
		for _, h := range e.host {
			if h != nil {
				_ = h.Close()
			}
		}
		for _, r := range []*Router{e.xtr[SiteA], e.xtr[SiteB], e.ms} {
			if r != nil {
				if err := r.stop(); err != nil {
					errs = append(errs, fmt.Errorf("twosite: %s: %w", r.name, err))
				}
			}
		}
		if err := os.RemoveAll(e.dir); err != nil {
			errs = append(errs, fmt.Errorf("twosite: %w", err))
		}
		e.err = errors.Join(errs...)
	})
	return e.err
}

// pickLoopbackNet returns a 127.0.n.0/24 whose topology addresses are free
// for UDP on the control and data ports right now.
func pickLoopbackNet() (netip.Prefix, error) {
	start := rand.IntN(250)
	var lastErr error
	for i := 0; i < 250; i++ {
		n := byte(2 + (start+i)%250)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 0, n, 0}), 24)
		plan, _ := NewPlan(p)
		if lastErr = checkFree(plan); lastErr == nil {
			return p, nil
		}
		if !addrInUse(lastErr) {
			break // not a clash: 127.0.n.x is not local here
		}
	}
	return netip.Prefix{}, fmt.Errorf("twosite: no free loopback network for the embedded topology: %w", lastErr)
}

// checkFree binds and releases every UDP socket the topology will bind.
func checkFree(p Plan) error {
	addrs := []netip.AddrPort{netip.AddrPortFrom(p.MSMR, ControlPort)}
	for _, a := range p.RLOC {
		addrs = append(addrs, netip.AddrPortFrom(a, ControlPort), netip.AddrPortFrom(a, DataPort))
	}
	var held []net.PacketConn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	for _, a := range addrs {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(a))
		if err != nil {
			return err
		}
		held = append(held, c)
	}
	return nil
}

// addrInUse reports whether err says an address was taken.
func addrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(fmt.Sprint(err), "address already in use")
}

// prefixWriter prefixes each write (a log line) with the daemon's name.
type prefixWriter struct {
	prefix string
	w      io.Writer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if p.w == io.Discard {
		return len(b), nil
	}
	line := make([]byte, 0, len(p.prefix)+len(b))
	line = append(append(line, p.prefix...), b...)
	if _, err := p.w.Write(line); err != nil {
		return 0, err
	}
	return len(b), nil
}
