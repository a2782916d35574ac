// Package daemon is lispd itself: it builds the roles a config file asks for
// (Map-Server, Map-Resolver, ITR, ETR), binds their control-plane UDP
// sockets and the xTR data plane, serves the local API and the Prometheus
// metrics, and applies a reloaded config by changing only what differs.
// cmd/lispd is a thin main around it; tests and the lab run it in-process
// from a config string.
//
// Lock order: Daemon.mu (config and reload) before controlPlane.mu. Nothing
// is sent on a socket while Daemon.mu is held.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapserver"
	"github.com/lispd/lispd/wire"
)

// Version is the lispd version reported by the API.
var Version = "0.1.0-dev"

// Options are the parts of a Daemon that do not come from the config file.
type Options struct {
	// Stderr receives the logs; nil means os.Stderr.
	Stderr io.Writer
	// APISocket overrides daemon.api-socket when not empty (tests use a
	// temporary directory).
	APISocket string
	// DataDevice, when set, is the EID-side device of the itr and etr roles
	// instead of the TUN device of [dataplane] (the embedded lab and tests
	// use dataplane.NewMemDevicePair, which needs no root). Run owns it and
	// closes it when it stops.
	DataDevice dataplane.Device
	// DataConn, when set, is the UDP 4341 endpoint of the itr and etr
	// roles instead of the sockets of dataplane.data-listen (e.g. a
	// dataplane.MemNetwork Conn). Run owns it and closes it when it stops.
	DataConn dataplane.Conn
	// EIDLinkUp, when set, replaces the netlink monitor of the EID-side
	// interfaces ([failover] watch-interfaces): true when the EID side is
	// up, false when it went down (the embedded lab sends what its LAN
	// model's link of this router does).
	EIDLinkUp <-chan bool
}

// Daemon is one running lispd.
type Daemon struct {
	opts    Options
	level   *slog.LevelVar
	log     *slog.Logger
	started time.Time
	reg     *prometheus.Registry

	ms      *mapserver.Server // nil unless the ms or mr role is on
	x       xtrRoles          // the itr and etr roles (xtr.go)
	sync    syncRole          // the synchronization set (sync.go)
	fo      failoverRole      // failover in both directions (failover.go)
	control *controlPlane

	mu        sync.Mutex // guards cfg and metricsStop
	cfg       *config.Config
	metrics   *restartable
	reloading chan struct{} // one reload at a time
}

// ErrRoleNotAvailable is returned by New for a role this build cannot play
// yet.
var ErrRoleNotAvailable = errors.New("daemon: role not available in this build")

// New builds a daemon for cfg. It validates what config.Parse cannot (that
// the roles are available) and opens nothing: Run binds the sockets.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	if cfg == nil {
		return nil, errors.New("daemon: nil config")
	}
	for _, r := range cfg.Daemon.Roles {
		if !slices.Contains(config.Roles(), r) {
			return nil, fmt.Errorf("%w: %q (this build plays %v)", ErrRoleNotAvailable, r, config.Roles())
		}
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	d := &Daemon{
		opts:      opts,
		level:     new(slog.LevelVar),
		started:   time.Now(),
		reg:       api.NewRegistry(),
		cfg:       cfg,
		reloading: make(chan struct{}, 1),
	}
	d.level.Set(cfg.Daemon.LogLevel)
	hopts := &slog.HandlerOptions{Level: d.level}
	if cfg.Daemon.LogFormat == config.LogFormatJSON {
		d.log = slog.New(slog.NewJSONHandler(opts.Stderr, hopts))
	} else {
		d.log = slog.New(slog.NewTextHandler(opts.Stderr, hopts))
	}
	d.control = newControlPlane(d.log)
	if cfg.HasRole(config.RoleMapServer) || cfg.HasRole(config.RoleMapResolver) {
		msCfg, err := mapServerConfig(cfg)
		if err != nil {
			return nil, err
		}
		ms, err := mapserver.New(msCfg, d.control, d.log.With("component", "mapserver"))
		if err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		d.ms = ms
		d.control.setMapServer(ms)
	}
	if err := d.newXTR(cfg); err != nil { // xtr.go
		return nil, err
	}
	d.newFailover(cfg)                     // failover.go
	if err := d.newSync(cfg); err != nil { // sync.go
		return nil, err
	}
	d.reg.MustRegister(&statsCollector{d: d})
	return d, nil
}

// Logger is the daemon's logger.
func (d *Daemon) Logger() *slog.Logger { return d.log }

// MapServer is the daemon's Map-Server/Map-Resolver, nil when neither role is
// on. Tests and the lab read its counters.
func (d *Daemon) MapServer() *mapserver.Server { return d.ms }

// ControlAddrs are the bound control-plane addresses (useful with port 0).
func (d *Daemon) ControlAddrs() []netip.AddrPort { return d.control.addrs() }

// Config is the config in force.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// socketPath is the API socket in use.
func (d *Daemon) socketPath() string {
	if d.opts.APISocket != "" {
		return d.opts.APISocket
	}
	return d.cfg.Daemon.APISocket
}

// Run binds the control-plane sockets, the API socket and the metrics
// listener and serves until ctx ends. It returns an error if anything fails
// to bind; after ctx ends it closes everything and returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := d.Config()
	if err := d.control.set(cfg.Control.Listen); err != nil {
		return err
	}
	defer d.control.close()

	ln, err := api.ListenUnix(d.socketPath())
	if err != nil {
		return fmt.Errorf("daemon: api socket: %w", err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Add(1)
	go func() { // RoutineAPI
		defer wg.Done()
		if err := api.NewServer(d, d.log.With("component", "api")).ServeListener(ctx, ln); err != nil {
			errc <- fmt.Errorf("daemon: api: %w", err)
		}
	}()
	if d.ms != nil {
		wg.Add(1)
		go func() { // RoutineMapServerTimers
			defer wg.Done()
			if err := d.ms.Run(ctx); err != nil {
				errc <- fmt.Errorf("daemon: mapserver: %w", err)
			}
		}()
	}
	if err := d.startXTR(ctx, cfg, &wg, errc); err != nil { // xtr.go
		cancel()
		wg.Wait()
		return err
	}
	if err := d.startSync(ctx, &wg, errc); err != nil { // sync.go
		cancel()
		wg.Wait()
		return err
	}
	if err := d.startFailover(ctx, &wg, errc); err != nil { // failover.go
		cancel()
		wg.Wait()
		return err
	}
	d.mu.Lock()
	d.metrics = newRestartable(ctx, &wg, errc)
	d.mu.Unlock()
	if err := d.startMetrics(cfg.Daemon.MetricsListen); err != nil {
		cancel()
		wg.Wait()
		return err
	}

	d.log.Info("lispd started", "version", Version, "roles", cfg.Daemon.Roles,
		"control", d.control.addrs(), "api", d.socketPath(), "pid", os.Getpid())
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		d.log.Error("stopping", "err", runErr)
	}
	cancel()
	d.control.close()
	wg.Wait()
	d.log.Info("lispd stopped")
	return runErr
}

// startMetrics (re)starts the metrics listener on addr; an invalid addr
// stops it.
func (d *Daemon) startMetrics(addr netip.AddrPort) error {
	d.mu.Lock()
	m := d.metrics
	d.mu.Unlock()
	if m == nil {
		return nil
	}
	if !addr.IsValid() {
		m.stop()
		return nil
	}
	ln, err := listenTCP(addr)
	if err != nil {
		return fmt.Errorf("daemon: metrics-listen %s: %w", addr, err)
	}
	m.start(func(ctx context.Context) error { return api.ServeMetricsListener(ctx, ln, d.reg) })
	return nil
}

// Reload reads the config file again and applies what changed: sites,
// resolver settings, control listeners, metrics listener and log level. A
// config that does not load, or that the roles cannot take, is refused and
// the running one stays. Keys that need a restart are logged and ignored.
func (d *Daemon) Reload(ctx context.Context) error {
	select {
	case d.reloading <- struct{}{}:
		defer func() { <-d.reloading }()
	case <-ctx.Done():
		return ctx.Err()
	}
	old := d.Config()
	if old.Path == "" {
		return errors.New("daemon: reload: the config was not read from a file")
	}
	next, err := config.Load(old.Path)
	if err != nil {
		d.log.Error("reload refused: the new config is invalid; the running config stays", "err", err)
		return fmt.Errorf("reload refused, the running config stays: %w", err)
	}
	return d.apply(old, next)
}

// apply moves the daemon from old to next.
func (d *Daemon) apply(old, next *config.Config) error {
	ch := config.Diff(old, next)
	if ch.Empty() {
		d.log.Info("reload: nothing changed")
		return nil
	}
	if len(ch.RestartRequired) > 0 {
		d.log.Warn("reload: these keys changed but need a restart; they keep their old values",
			"keys", ch.RestartRequired)
		// Keep the restart-only values of the running config so that the
		// next diff reports them again.
		next.Daemon.Roles = old.Daemon.Roles
		next.Daemon.APISocket = old.Daemon.APISocket
		next.Daemon.LogFormat = old.Daemon.LogFormat
		// The Map-Server's pub/sub settings, its registration bound and
		// its state file are fixed at start.
		if o, n := old.MapServer, next.MapServer; o != nil && n != nil &&
			(n.PubSub != o.PubSub || n.MaxRegistrations != o.MaxRegistrations || n.StateFile != o.StateFile) {
			ms := *n
			ms.PubSub, ms.MaxRegistrations, ms.StateFile = o.PubSub, o.MaxRegistrations, o.StateFile
			next.MapServer = &ms
		}
	}
	xc, err := d.prepareXTR(old, next) // xtr.go
	if err != nil {
		return fmt.Errorf("reload refused, the running config stays: %w", err)
	}
	if d.ms != nil {
		msCfg, err := mapServerConfig(next)
		if err != nil {
			return fmt.Errorf("reload refused, the running config stays: %w", err)
		}
		if err := d.ms.SetSites(msCfg.Sites); err != nil {
			return fmt.Errorf("reload refused, the running config stays: %w", err)
		}
		if err := d.ms.SetResolver(msCfg.Resolver); err != nil {
			return fmt.Errorf("reload: resolver: %w", err)
		}
	}
	if err := d.applyXTR(xc); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if ch.ListenersChanged {
		if err := d.control.set(next.Control.Listen); err != nil {
			d.log.Error("reload: control listeners", "err", err)
			return fmt.Errorf("reload: %w", err)
		}
	}
	if ch.MetricsListenChanged {
		if err := d.startMetrics(next.Daemon.MetricsListen); err != nil {
			d.log.Error("reload: metrics listener", "err", err)
		}
	}
	if ch.LogLevelChanged {
		d.level.Set(next.Daemon.LogLevel)
	}
	d.mu.Lock()
	d.cfg = next
	d.mu.Unlock()
	site := ch.Sites
	d.log.Info("config reloaded", "sites_added", site.Added, "sites_removed", site.Removed,
		"sites_changed", site.Changed, "changed", ch.Changed)
	return nil
}

// mapServerConfig maps the config file onto mapserver.Config.
func mapServerConfig(cfg *config.Config) (mapserver.Config, error) {
	var c mapserver.Config
	c.MapServer = cfg.HasRole(config.RoleMapServer)
	c.MapResolver = cfg.HasRole(config.RoleMapResolver)
	if ms := cfg.MapServer; ms != nil && c.MapServer {
		c.RegistrationTimeout = ms.RegistrationTimeout
		c.NotifyInterval = ms.MapNotifyRetransmit
		c.NotifyRetries = ms.MapNotifyRetries
		if ms.MapNotifyRetries == 0 {
			c.NotifyRetries = -1 // sent once, no retransmission
		}
		c.MaxRegistrations = ms.MaxRegistrations
		c.StateFile = ms.StateFile
		for _, s := range ms.Sites {
			policy, err := mapserver.ParseRegistrationPolicy(s.RegistrationPolicy)
			if err != nil {
				return c, fmt.Errorf("daemon: site %q: %w", s.Name, err)
			}
			site := mapserver.Site{
				Name:             s.Name,
				Key:              []byte(s.AuthenticationKey),
				KeyID:            s.KeyID,
				Algorithm:        wire.AlgorithmID(s.Algorithm), // same numbering
				AllowProxyReply:  s.ProxyReply,
				Policy:           policy,
				MaxPrefixes:      s.MaxPrefixes,
				MaxRegistrations: s.MaxRegistrations,
			}
			for _, p := range s.EIDPrefixes {
				site.Prefixes = append(site.Prefixes, mapserver.SitePrefix{
					EIDPrefix:           mapserver.EIDPrefix{InstanceID: p.InstanceID, Prefix: p.Prefix},
					AcceptMoreSpecifics: s.AcceptMoreSpecifics,
				})
			}
			c.Sites = append(c.Sites, site)
		}
		ps := ms.PubSub
		c.PubSub = mapserver.PubSubConfig{
			Enabled:          ps.Enabled,
			Key:              []byte(ps.AuthenticationKey),
			KeyID:            ps.KeyID,
			Algorithm:        wire.AlgorithmID(ps.Algorithm), // same numbering
			Unauthenticated:  ps.Unauthenticated,
			MaxSubscriptions: ps.MaxSubscriptions,
			MaxPerITR:        ps.MaxPerITR,
			NegativeTTL:      ps.NegativeTTL,
			MaxPending:       ps.MaxPending,
		}
	}
	if mr := cfg.MapResolver; mr != nil && c.MapResolver {
		c.NotConfiguredTTL = mr.NegativeTTL
		c.NotRegisteredTTL = mr.UnregisteredTTL
		for _, ref := range mr.MapServers {
			if ref.Local {
				if !c.MapServer {
					return c, errors.New(`daemon: map-resolver.map-servers has "local" but the ms role is off`)
				}
				continue
			}
			c.Resolver.MapServers = append(c.Resolver.MapServers, mapserver.RemoteMapServer{Address: ref.Addr})
		}
	}
	return c, nil
}

// sortedCounters returns the map-server counters by name.
func (d *Daemon) counters() map[string]uint64 {
	out := map[string]uint64{}
	if d.ms != nil {
		st := d.ms.Stats()
		st.Each(func(name string, v uint64) { out["mapserver_"+name] = v })
	}
	for name, v := range d.control.stats() {
		out["control_"+name] = v
	}
	d.xtrCounters(out)
	d.syncCounters(out)     // sync.go
	d.failoverCounters(out) // failover.go
	return out
}

// keys returns m's keys sorted.
func keys(m map[string]uint64) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}
