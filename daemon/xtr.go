package daemon

// This file wires the xTR roles (itr, etr) into the daemon: it builds the
// ITR and ETR from the config, opens their data plane (a TUN device and UDP
// 4341 sockets, or the in-memory ones of Options), dispatches the control
// datagrams of the shared control sockets to the role each is for, and
// applies reloads.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/mapserver"
	"github.com/lispd/lispd/wire"
	"github.com/lispd/lispd/xtr"
)

// xtrRoles holds the ITR, the ETR and their data plane.
type xtrRoles struct {
	itr *xtr.ITR // nil without the itr role
	etr *xtr.ETR // nil without the etr role
	dp  atomic.Pointer[xtr.DataPlane]
	// noDispatch is ErrNoDispatch when the control plane cannot hand
	// datagrams to the roles; Run refuses to start then.
	noDispatch error
}

// newXTR builds the ITR and ETR the config asks for. It opens nothing.
// The ETR comes first: an ITR next to it subscribes with its xTR-ID.
func (d *Daemon) newXTR(cfg *config.Config) error {
	if cfg.HasRole(config.RoleETR) {
		ecfg, err := etrConfig(cfg)
		if err != nil {
			return err
		}
		ecfg.Logger = d.log.With("component", "etr")
		if d.x.etr, err = xtr.NewETR(ecfg, d.control); err != nil {
			return fmt.Errorf("daemon: etr: %w", err)
		}
	}
	if cfg.HasRole(config.RoleITR) {
		icfg, err := itrConfig(cfg, controlPort(cfg.Control.Listen), 0, false)
		if err != nil {
			return err
		}
		d.shareXTRID(&icfg)
		icfg.Logger = d.log.With("component", "itr")
		if d.x.itr, err = xtr.NewITR(icfg, d.control); err != nil {
			return fmt.Errorf("daemon: itr: %w", err)
		}
	}
	if d.x.itr != nil && d.x.etr != nil {
		// An SMR may name the receiver's own EID (OOR's convention):
		// the ITR must know which EIDs are this site's.
		d.x.itr.SetLocalEIDs(d.x.etr.HasEID)
	}
	d.x.noDispatch = d.wireDispatch()
	return nil
}

// controlPort is the port of the first control address: where Map-Replies
// to the ITR's Map-Requests come back (0 until bound when it is 0).
func controlPort(addrs []netip.AddrPort) uint16 {
	if len(addrs) == 0 {
		return 0
	}
	return addrs[0].Port()
}

// shareXTRID gives the ITR the ETR's xTR-ID when the daemon plays both
// roles: one xTR has one xTR-ID, the one it registers with (etr.xtr-id, or
// the ETR's random one), whether it registers or subscribes.
func (d *Daemon) shareXTRID(c *xtr.ITRConfig) {
	if d.x.etr != nil {
		c.XTRID, c.SiteID = d.x.etr.XTRID(), d.x.etr.SiteID()
	}
}

// itrConfig maps the config file onto xtr.ITRConfig. keepRefresh keeps the
// refresh window in force (refresh), which the synchronization set may have
// changed at run time, instead of the file's. With the etr role the xTR-ID
// and site-ID are the ETR's (see shareXTRID); else itr.xtr-id (zero: the
// ITR's random one) and itr.site-id.
func itrConfig(cfg *config.Config, port uint16, refresh time.Duration, keepRefresh bool) (xtr.ITRConfig, error) {
	it, dp := cfg.ITR, cfg.Dataplane
	if it == nil || dp == nil {
		return xtr.ITRConfig{}, errors.New("daemon: the itr role needs the [itr] and [dataplane] sections")
	}
	c := xtr.ITRConfig{
		MapResolvers:            it.MapResolvers,
		RLOCs:                   dp.RLOCs,
		InstanceID:              dp.InstanceID,
		ControlPort:             port,
		QueuePerDestination:     it.QueuePerDestination,
		QueueTotal:              it.QueueTotal,
		MapRequestRate:          it.MapRequestRate,
		MapRequestRetries:       it.MapRequestRetries,
		MapRequestTimeout:       it.MapRequestTimeout,
		RLOCProbeInterval:       it.RLOCProbeInterval,
		RLOCProbeMisses:         it.RLOCProbeCount,
		IgnoreLocatorStatusBits: it.IgnoreLocatorStatusBits,
		RefreshIfUsedWithin:     it.RefreshIfUsedWithin,
		MapCacheSize:            it.MapCacheSize,
		EIDSpace:                eidSpace(it.EIDSpace),

		Subscribe:             it.Subscribe,
		SubscribeRefresh:      it.SubscribeRefresh,
		XTRID:                 wire.XTRID(it.XTRID),
		SiteID:                it.SiteID,
		PubSubKey:             []byte(it.PubSubKey),
		PubSubKeyID:           it.PubSubKeyID,
		PubSubAlgorithm:       wire.AlgorithmID(it.PubSubAlgorithm), // same numbering
		PubSubUnauthenticated: it.PubSubUnauthenticated,
	}
	if e := cfg.ETR; e != nil && cfg.HasRole(config.RoleETR) {
		c.XTRID, c.SiteID = wire.XTRID(e.XTRID), e.SiteID
	}
	if it.MapRequestRetries == 0 {
		c.MapRequestRetries = -1 // sent once
	}
	if it.MissPolicy == config.MissQueue {
		c.MissPolicy = xtr.MissQueue
	}
	if keepRefresh {
		c.RefreshIfUsedWithin = refresh
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("daemon: itr: %w", err)
	}
	return c, nil
}

// eidSpace converts itr.eid-space to the ITR's form.
func eidSpace(ps []config.EIDPrefix) []dataplane.EIDPrefix {
	var out []dataplane.EIDPrefix
	for _, p := range ps {
		out = append(out, dataplane.EIDPrefix{InstanceID: p.InstanceID, Prefix: p.Prefix})
	}
	return out
}

// etrConfig maps the config file onto xtr.ETRConfig.
func etrConfig(cfg *config.Config) (xtr.ETRConfig, error) {
	e, dp := cfg.ETR, cfg.Dataplane
	if e == nil || dp == nil {
		return xtr.ETRConfig{}, errors.New("daemon: the etr role needs the [etr] and [dataplane] sections")
	}
	c := xtr.ETRConfig{
		LocalRLOCs:       dp.RLOCs,
		RegisterInterval: e.RegisterInterval,
		RecordTTL:        e.RecordTTL,
		ProxyReply:       e.ProxyReply,
		FollowMapServer:  cfg.Failover.Enabled,
		XTRID:            wire.XTRID(e.XTRID),
		SiteID:           e.SiteID,
		DecapFilter:      e.DecapFilter == config.DecapFilterOn,
		DecapFilterAllow: e.DecapFilterAllow,
	}
	for _, ms := range e.MapServers {
		c.MapServers = append(c.MapServers, xtr.MapServer{
			Address:   ms.Address,
			Key:       []byte(ms.AuthenticationKey),
			KeyID:     ms.KeyID,
			Algorithm: wire.AlgorithmID(ms.Algorithm), // same numbering
		})
	}
	for _, eid := range e.EIDs {
		m := xtr.Mapping{InstanceID: eid.Prefix.InstanceID, Prefix: eid.Prefix.Prefix}
		for _, l := range eid.Locators(dp) {
			m.RLOCs = append(m.RLOCs, xtr.Locator{Addr: l.Address, Priority: l.Priority, Weight: l.Weight, MPriority: l.MPriority, MWeight: l.MWeight})
		}
		c.Database = append(c.Database, m)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("daemon: etr: %w", err)
	}
	return c, nil
}

// openDataPlane opens the data plane of the xTR roles: the injected
// in-memory device and conn of Options, or a TUN device and UDP 4341
// sockets as [dataplane] says. On error everything opened is closed.
func (d *Daemon) openDataPlane(cfg *config.Config) (*xtr.DataPlane, error) {
	if d.x.itr == nil && d.x.etr == nil {
		return nil, nil
	}
	dpc := cfg.Dataplane
	var opened []io.Closer
	fail := func(err error) (*xtr.DataPlane, error) {
		for _, c := range opened {
			c.Close()
		}
		return nil, err
	}
	dev := d.opts.DataDevice
	if dev == nil {
		tc := dataplane.TUNConfig{Name: dpc.TUNName, MTU: dpc.TUNMTU, Addrs: dpc.TUNAddresses, Routes: dpc.TUNRoutes}
		if dpc.NativeForward {
			tc.RouteTable, tc.FwMark = dpc.RouteTable, dpc.FwMark
		}
		tun, err := dataplane.CreateTUN(tc)
		if err != nil {
			return fail(fmt.Errorf("daemon: dataplane.tun-name %q: %w (creating a TUN device needs CAP_NET_ADMIN)", dpc.TUNName, err))
		}
		opened = append(opened, tun)
		dev = tun
	}
	// The native path of Natively-Forward packets: raw sockets whose mark
	// skips the TUN's routing table. Only with a real TUN, whose routes
	// CreateTUN put in that table.
	var native dataplane.Device
	if dpc.NativeForward && d.opts.DataDevice == nil && d.x.itr != nil {
		nc, err := dataplane.OpenNative(dataplane.NativeConfig{FwMark: dpc.FwMark})
		if err != nil {
			return fail(fmt.Errorf("daemon: dataplane.native-forward: %w (raw sockets need CAP_NET_RAW)", err))
		}
		opened = append(opened, nc)
		native = nc
	}
	var conns []dataplane.Conn
	if d.opts.DataConn != nil {
		conns = []dataplane.Conn{d.opts.DataConn}
	} else {
		for _, a := range dpc.DataListen {
			c, err := dataplane.ListenUDP(dataplane.UDPConfig{Addr: a})
			if err != nil {
				return fail(fmt.Errorf("daemon: dataplane.data-listen %s: %w", a, err))
			}
			opened = append(opened, c)
			conns = append(conns, c)
		}
	}
	p, err := xtr.NewDataPlane(xtr.DataPlaneConfig{
		Device: dev,
		Native: native,
		Conns:  conns,
		ITR:    d.x.itr,
		ETR:    d.x.etr,
		Encap:  dataplane.EncapConfig{PathMTU: dpc.PathMTU},
		Logger: d.log.With("component", "dataplane"),
	})
	if err != nil {
		return fail(fmt.Errorf("daemon: dataplane: %w", err))
	}
	return p, nil
}

// startXTR binds what the xTR roles need once the control sockets are up
// and starts their goroutines: RoutineITR, RoutineETR and RoutineDataPlane.
func (d *Daemon) startXTR(ctx context.Context, cfg *config.Config, wg *sync.WaitGroup, errc chan<- error) error {
	if d.x.noDispatch != nil {
		return d.x.noDispatch
	}
	if d.x.itr != nil && controlPort(cfg.Control.Listen) == 0 {
		// Port 0 was bound: ask for Map-Replies on the port the kernel chose.
		if addrs := d.control.addrs(); len(addrs) > 0 {
			d.x.itr.SetControlPort(addrs[0].Port())
		}
	}
	p, err := d.openDataPlane(cfg)
	if err != nil {
		return err
	}
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				select {
				case errc <- fmt.Errorf("daemon: %s: %w", name, err):
				default:
				}
			}
		}()
	}
	if d.x.itr != nil {
		run("itr", d.x.itr.Run) // RoutineITR
	}
	if d.x.etr != nil {
		run("etr", d.x.etr.Run) // RoutineETR
	}
	if p != nil {
		d.x.dp.Store(p)
		run("dataplane", p.Run) // RoutineDataPlane
	}
	return nil
}

// ErrNoDispatch is returned by Run for the itr and etr roles when the
// control plane cannot hand datagrams to them (it has no setHandler hook, see
// handlerSetter).
var ErrNoDispatch = errors.New("daemon: the control plane cannot dispatch to the itr and etr roles")

// handlerSetter is the hook of the control plane that lets the daemon give
// each socket reader its handler: controlHandler, which dispatches every
// datagram to the Map-Server, the ITR or the ETR. The control plane
// (control.go) implements it as
//
//	func (c *controlPlane) setHandler(f func(out mapserver.Sender) func(pkt []byte, from netip.AddrPort, local netip.Addr))
//
// storing f, which its handler(out) then calls instead of making a
// Map-Server worker.
type handlerSetter interface {
	setHandler(f func(out mapserver.Sender) func(pkt []byte, from netip.AddrPort, local netip.Addr))
}

// wireDispatch gives the control plane the dispatching handler when the
// daemon plays an xTR role. An ms/mr-only daemon keeps the control plane's
// own Map-Server handling.
func (d *Daemon) wireDispatch() error {
	if d.x.itr == nil && d.x.etr == nil {
		return nil
	}
	hs, ok := any(d.control).(handlerSetter)
	if !ok {
		return ErrNoDispatch
	}
	hs.setHandler(d.controlHandler)
	return nil
}

// controlHandler returns the handler of one control-socket reader: a
// dispatcher that hands each datagram to the role it is for (see dispatch),
// with its own Map-Server worker sending through out.
func (d *Daemon) controlHandler(out mapserver.Sender) func(pkt []byte, from netip.AddrPort, local netip.Addr) {
	var ms func(pkt []byte, from netip.AddrPort, local netip.Addr)
	if d.ms != nil {
		ms = d.ms.NewWorker(out).HandlePacket
	}
	return func(pkt []byte, from netip.AddrPort, local netip.Addr) { d.dispatch(pkt, from, local, ms) }
}

// dispatch hands a control datagram to the role it is for, peeking at the
// type and flags in its first byte (each role parses the message itself):
//
//	Map-Reply                       ITR (answers and RLOC-probe replies)
//	Map-Notify the ITR owns         ITR (pub/sub: see xtr.ITR.TakeNotify)
//	other Map-Notify                ETR, else ITR
//	Map-Request with S (SMR)        ITR
//	Map-Request with P (probe)      ETR
//	other Map-Request               Map-Server, else ETR
//	ECM with E (to ETR)             ETR
//	other ECM                       Map-Server/Map-Resolver, else ETR
//	Map-Register, Map-Notify-Ack... Map-Server
//
// ms handles what goes to the Map-Server (nil without the ms and mr roles).
// A datagram for a role the daemon does not play goes to one that counts it
// as unsupported.
func (d *Daemon) dispatch(pkt []byte, from netip.AddrPort, local netip.Addr, ms func(pkt []byte, from netip.AddrPort, local netip.Addr)) {
	itr, etr := d.x.itr, d.x.etr
	var b0 byte
	if len(pkt) > 0 {
		b0 = pkt[0]
	}
	switch wire.MessageType(b0 >> 4) {
	case wire.TypeMapReply:
		if itr != nil {
			itr.HandlePacket(pkt, from, local)
			return
		}
	case wire.TypeMapNotify:
		// A Map-Notify is the ETR's (acknowledging its Map-Registers)
		// unless the ITR says it is a pub/sub one of its subscriptions.
		switch {
		case itr != nil && itr.TakeNotify(pkt, from):
			return
		case etr != nil:
			etr.HandlePacket(pkt, from, local)
			return
		case itr != nil:
			itr.HandlePacket(pkt, from, local)
			return
		}
	case wire.TypeMapRequest:
		switch {
		case b0&0x01 != 0 && itr != nil: // S: Solicit-Map-Request
			itr.HandlePacket(pkt, from, local)
			return
		case b0&0x02 != 0 && etr != nil: // P: RLOC-probe
			etr.HandlePacket(pkt, from, local)
			return
		case ms == nil && etr != nil:
			etr.HandlePacket(pkt, from, local)
			return
		}
	case wire.TypeECM:
		if etr != nil && (b0&0x02 != 0 || ms == nil) { // E: to the ETR
			etr.HandlePacket(pkt, from, local)
			return
		}
	}
	switch {
	case ms != nil:
		ms(pkt, from, local)
	case etr != nil:
		etr.HandlePacket(pkt, from, local)
	case itr != nil:
		itr.HandlePacket(pkt, from, local)
	}
}

// xtrCounters adds the xTR counters: itr_<name>, etr_<name> and
// dataplane_<name>.
func (d *Daemon) xtrCounters(out map[string]uint64) {
	if d.x.itr != nil {
		for _, c := range d.x.itr.Counters() {
			out["itr_"+c.Name] = c.Value
		}
	}
	if d.x.etr != nil {
		for _, c := range d.x.etr.Counters() {
			out["etr_"+c.Name] = c.Value
		}
	}
	if p := d.x.dp.Load(); p != nil {
		for _, c := range p.Counters() {
			out["dataplane_"+c.Name] = c.Value
		}
	}
}

// xtrConfigs are the configurations a reload gives the ITR and ETR,
// validated before anything is applied.
type xtrConfigs struct {
	itr *xtr.ITRConfig
	etr *xtr.ETRConfig
}

// prepareXTR validates what a reload to next would give the xTR roles. Keys
// that need a restart keep their running values in next, so that the next
// diff reports them again.
func (d *Daemon) prepareXTR(old, next *config.Config) (xtrConfigs, error) {
	var x xtrConfigs
	if d.x.itr == nil && d.x.etr == nil {
		return x, nil
	}
	// [dataplane] is all restart-only; roles changes need a restart too,
	// so a section the running roles need stays as it is.
	next.Dataplane = old.Dataplane
	if d.x.itr != nil {
		if next.ITR == nil {
			next.ITR = old.ITR
		} else if next.ITR.MapCacheSize != old.ITR.MapCacheSize {
			it := *next.ITR
			it.MapCacheSize = old.ITR.MapCacheSize
			next.ITR = &it
		}
		keep := old.ITR.RefreshIfUsedWithin == next.ITR.RefreshIfUsedWithin
		c, err := itrConfig(next, d.runningControlPort(next), d.x.itr.RefreshIfUsedWithin(), keep)
		if err != nil {
			return x, err
		}
		x.itr = &c
	}
	if d.x.etr != nil {
		if next.ETR == nil {
			next.ETR = old.ETR
		}
		c, err := etrConfig(next)
		if err != nil {
			return x, err
		}
		x.etr = &c
	}
	return x, nil
}

// runningControlPort is the port Map-Replies come back to after a reload to
// next: its first control address's, or the bound one for port 0.
func (d *Daemon) runningControlPort(next *config.Config) uint16 {
	if p := controlPort(next.Control.Listen); p != 0 {
		return p
	}
	if addrs := d.control.addrs(); len(addrs) > 0 {
		return addrs[0].Port()
	}
	return 0
}

// applyXTR applies configurations prepareXTR validated. The ETR publishes
// its new database, re-registers, and sends SMRs for changed prefixes; the
// ITR then takes its xTR-ID (see shareXTRID).
func (d *Daemon) applyXTR(x xtrConfigs) error {
	if x.etr != nil {
		if err := d.x.etr.SetConfig(*x.etr); err != nil {
			return fmt.Errorf("daemon: etr: %w", err)
		}
	}
	if x.itr != nil {
		d.shareXTRID(x.itr)
		if err := d.x.itr.SetConfig(*x.itr); err != nil {
			return fmt.Errorf("daemon: itr: %w", err)
		}
	}
	return nil
}

// mapCacheView returns the ITR's map-cache as the API shows it.
func (d *Daemon) mapCacheView() []api.MapCacheEntry {
	if d.x.itr == nil {
		return []api.MapCacheEntry{}
	}
	snap := d.x.itr.Cache().Snapshot()
	out := make([]api.MapCacheEntry, 0, len(snap))
	for _, e := range snap {
		v := api.MapCacheEntry{
			InstanceID: e.InstanceID,
			Prefix:     e.Prefix,
			Source:     e.Source.String(),
			MapVersion: e.MapVersion,
			LastUsed:   e.LastUsed(),
			Expires:    e.Deadline(),
		}
		if e.TTL != mapcache.Permanent {
			v.TTLSeconds = uint32(min(e.TTL/time.Second, 1<<32-1))
		}
		if e.Negative() {
			v.Action = api.Action(e.Action.String())
		}
		for k, r := range e.RLOCs {
			v.RLOCs = append(v.RLOCs, api.RLOC{
				Address: r.Addr, Priority: r.Priority, Weight: r.Weight,
				MPriority: r.MPriority, MWeight: r.MWeight,
				Local: r.Local, Reachable: e.Reachable(k),
			})
		}
		out = append(out, v)
	}
	return out
}

// The Daemon answers GET /v1/etr.
var _ api.ETRBackend = (*Daemon)(nil)

// ETR implements api.ETRBackend: the ETR's database and its registration
// state with each Map-Server (ErrUnavailable without the etr role).
func (d *Daemon) ETR(ctx context.Context) (api.ETRStatus, error) {
	e := d.x.etr
	if e == nil {
		return api.ETRStatus{}, api.WithKind(api.ErrUnavailable, errors.New("this daemon does not play the etr role"))
	}
	cfg := d.Config()
	st := api.ETRStatus{
		XTRID:      api.XTRID(e.XTRID()),
		SiteID:     e.SiteID(),
		TTLSeconds: uint32(e.RecordTTL() / time.Second),
		ProxyReply: cfg.ETR != nil && cfg.ETR.ProxyReply,
		Database:   []api.ETRMapping{},
		MapServers: []api.ETRRegistration{},
	}
	local := map[netip.Addr]bool{}
	if cfg.Dataplane != nil {
		for _, a := range cfg.Dataplane.RLOCs {
			local[a] = true
		}
	}
	withdrawn := map[netip.Addr]bool{}
	for _, w := range e.Withdrawn() {
		withdrawn[w.Addr] = true
	}
	for _, m := range e.Database() {
		v := api.ETRMapping{InstanceID: m.InstanceID, EIDPrefix: m.Prefix, RLOCs: []api.RLOC{}}
		for _, l := range m.RLOCs {
			// A withdrawn locator is registered with priority 255 and
			// the R bit clear (failover.go).
			r := api.RLOC{Address: l.Addr, Priority: l.Priority, Weight: l.Weight,
				MPriority: l.MPriority, MWeight: l.MWeight, Local: local[l.Addr], Reachable: !withdrawn[l.Addr]}
			if withdrawn[l.Addr] {
				r.Priority, r.MPriority = 255, 255
			}
			v.RLOCs = append(v.RLOCs, r)
		}
		st.Database = append(st.Database, v)
	}
	for _, r := range e.Registrations() {
		st.MapServers = append(st.MapServers, api.ETRRegistration{
			MapServer:        r.MapServer,
			State:            r.State,
			LastRegister:     r.LastRegister,
			LastNotify:       r.LastNotify,
			RegistersSent:    r.RegistersSent,
			NotifiesReceived: r.NotifiesReceived,
			AuthFailures:     r.AuthFailures,
			KeyID:            r.KeyID,
			Algorithm:        config.Algorithm(r.Algorithm).String(),
		})
	}
	return st, nil
}

// ITRRole returns the daemon's ITR, nil without the itr role. The
// synchronization set and the lab use its map-cache and counters.
func (d *Daemon) ITRRole() *xtr.ITR { return d.x.itr }

// ETRRole returns the daemon's ETR, nil without the etr role.
func (d *Daemon) ETRRole() *xtr.ETR { return d.x.etr }
