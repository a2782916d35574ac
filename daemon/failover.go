package daemon

// This file is failover in both directions ([failover], docs/deployment.md
// "Failover"): the daemon decides which locators of its site's EID
// database it stops claiming, and tells the remote ITRs.
//
// Inputs: this xTR's own EID-side link state (netlink on Linux, or
// Options.EIDLinkUp), the drain state (lispctl drain/undrain), what the
// synchronization set says of its other members (their MemberStatus, and
// their death within failover.dead-after), and the operator's overrides
// (lispctl failover peer-down). Output: the ETR's withdrawn locators
// (registered with priority 255 and the R bit clear, answered so to
// RLOC-probes, and 0 in the Locator-Status-Bits of every encapsulated
// packet) and, on every change, SMRs to the remote ITRs that have been
// encapsulating to this xTR or to the other members (shared through the
// set). RoutineFailover applies every change; nothing here is on the
// packet path.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/cachesync"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/xtr"
)

const (
	// smrWindow is how recently a remote ITR must have encapsulated to
	// this xTR (or to a member of its set) to be sent SMRs when the
	// site's locators change.
	smrWindow = 10 * time.Minute
	// statusRefresh is how often the member re-sends its status when the
	// remote ITRs it serves changed.
	statusRefresh = 2 * time.Second
	// drainPoll is how often a drain looks at the decapsulation counter.
	drainPoll = 20 * time.Millisecond
)

// peerView is what the failover logic knows of another member of the set.
type peerView struct {
	alive, known bool
	status       cachesync.MemberStatus
	cause        string
	since        time.Time
}

// failoverRole is the daemon's failover state. Lock order: Daemon.mu,
// then failoverRole.drainMu, reconcileMu, mu; nothing is sent while mu is
// held.
type failoverRole struct {
	on     bool
	cfg    config.Failover
	own    []netip.Addr
	ifaces []string // watched EID-side interfaces (netlink), resolved at start
	kick   chan struct{}

	mu       sync.Mutex
	linkUp   bool
	linkWhy  string
	draining bool
	peers    map[string]*peerView
	manual   map[netip.Addr]bool
	applied  map[netip.Addr]string // locators this logic withdrew, with why
	lastSent string                // statusKey of the last status sent

	withdrawals, restorations, smrTargets atomic.Uint64
	drainMu                               sync.Mutex // one drain at a time
	reconcileMu                           sync.Mutex // one reconcile at a time (before mu)
}

// newFailover sets up the failover logic for cfg (the itr or etr roles).
func (d *Daemon) newFailover(cfg *config.Config) {
	f := &d.fo
	f.cfg = cfg.Failover
	f.on = cfg.Failover.Enabled && d.x.etr != nil
	f.kick = make(chan struct{}, 1)
	f.linkUp = true
	f.peers = map[string]*peerView{}
	f.manual = map[netip.Addr]bool{}
	f.applied = map[netip.Addr]string{}
	if cfg.Dataplane != nil {
		f.own = slices.Clone(cfg.Dataplane.RLOCs)
	}
}

// wake makes RoutineFailover reconcile now.
func (f *failoverRole) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// onPeer is the synchronization set's Config.OnPeer: it records what the
// set says of a peer and wakes RoutineFailover. It does not block.
func (d *Daemon) onPeer(ev cachesync.PeerEvent) {
	f := &d.fo
	f.mu.Lock()
	p := f.peers[ev.Peer]
	if p == nil {
		p = &peerView{}
		f.peers[ev.Peer] = p
	}
	if ev.Alive != p.alive || !p.known {
		p.since = time.Now()
	}
	p.alive = ev.Alive
	if ev.Known {
		p.known, p.status = true, ev.Status
	}
	p.cause = ev.Cause
	f.mu.Unlock()
	if ev.Alive && ev.Known {
		if e := d.x.etr; e != nil {
			now := time.Now()
			rs := make([]xtr.RemoteITR, 0, len(ev.Status.ITRs))
			for _, r := range ev.Status.ITRs {
				rs = append(rs, xtr.RemoteITR{RLOC: r.RLOC, InstanceID: r.InstanceID, EID: r.EID, LastSeen: now.Add(-r.Age)})
			}
			e.MergeRemoteITRs(rs)
		}
	}
	switch {
	case !ev.Alive && ev.Known:
		d.log.Warn("failover: sync member is dead; withdrawing its RLOCs", "member", ev.Peer,
			"rlocs", ev.Status.RLOCs, "cause", ev.Cause)
	case !ev.Alive:
		d.log.Warn("failover: sync member is dead before it said which RLOCs it has; nothing to withdraw",
			"member", ev.Peer, "cause", ev.Cause)
	}
	f.wake()
}

// startFailover starts RoutineFailover (and the link monitor) when the
// healing is on; it writes the VRRP track file's 0 either way.
func (d *Daemon) startFailover(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) error {
	f := &d.fo
	if f.cfg.VRRPTrackFile != "" && d.x.etr != nil {
		if err := writeTrackFile(f.cfg.VRRPTrackFile, 0); err != nil {
			return err
		}
	}
	if !f.on {
		return nil
	}
	links, err := d.startLinkMonitor(ctx, wg)
	if err != nil {
		return err
	}
	wg.Go(func() { d.runFailover(ctx, links) }) // RoutineFailover
	return nil
}

// linkEvent is a change of the EID-side link state: up, or down and why.
type linkEvent struct {
	up  bool
	why string
}

// startLinkMonitor returns the EID-side link events: Options.EIDLinkUp's
// (embedded lab), or netlink's for failover.watch-interfaces (default: the
// interfaces the kernel routes the EID-prefixes through). Nil when nothing
// is watched.
func (d *Daemon) startLinkMonitor(ctx context.Context, wg *sync.WaitGroup) (<-chan linkEvent, error) {
	f := &d.fo
	out := make(chan linkEvent, 16)
	if ch := d.opts.EIDLinkUp; ch != nil {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case up, ok := <-ch:
					if !ok {
						return
					}
					ev := linkEvent{up: up}
					if !up {
						ev.why = "EID-side link down"
					}
					select {
					case out <- ev:
					case <-ctx.Done():
						return
					}
				}
			}
		})
		return out, nil
	}
	if d.opts.DataDevice != nil {
		// An in-memory data plane without a link signal: nothing to watch.
		return nil, nil
	}
	cfg := d.Config()
	names := slices.Clone(f.cfg.WatchInterfaces)
	tun := ""
	if cfg.Dataplane != nil {
		tun = cfg.Dataplane.TUNName
	}
	if len(names) == 0 {
		var prefixes []netip.Prefix
		for _, m := range d.x.etr.Database() {
			prefixes = append(prefixes, m.Prefix)
		}
		var err error
		if names, err = routedInterfaces(prefixes, tun); err != nil {
			d.log.Warn("failover: cannot find the EID-side interfaces; set failover.watch-interfaces", "err", err)
		}
		if len(names) == 0 {
			d.log.Warn("failover: no EID-side interface to watch (no route to the EID-prefixes outside the TUN); link failures will not withdraw this xTR's RLOCs: set failover.watch-interfaces")
			return nil, nil
		}
	}
	f.mu.Lock()
	f.ifaces = names
	f.mu.Unlock()
	d.log.Info("failover: watching the EID-side interfaces", "interfaces", names, "tun", tun)
	ready := make(chan error, 1)
	wg.Go(func() {
		watchLinks(ctx, names, tun, ready, func(up bool, why string) {
			select {
			case out <- linkEvent{up: up, why: why}:
			case <-ctx.Done():
			}
		})
	})
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("daemon: failover: watch interfaces %v: %w", names, err)
	}
	return out, nil
}

// runFailover is RoutineFailover: it applies link, drain and peer changes
// to the ETR, sends SMRs, and keeps the set informed of this member.
func (d *Daemon) runFailover(ctx context.Context, links <-chan linkEvent) {
	f := &d.fo
	t := time.NewTicker(statusRefresh)
	defer t.Stop()
	d.reconcile()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-links:
			if !ok {
				links = nil
				continue
			}
			f.mu.Lock()
			changed := f.linkUp != ev.up
			f.linkUp, f.linkWhy = ev.up, ev.why
			f.mu.Unlock()
			if changed {
				if ev.up {
					d.log.Info("failover: EID-side link up; restoring this xTR's RLOCs")
				} else {
					d.log.Warn("failover: EID-side link down; withdrawing this xTR's RLOCs", "why", ev.why)
				}
				d.reconcile()
			}
		case <-f.kick:
			d.reconcile()
		case <-t.C:
			d.reconcile()
		}
	}
}

// desired computes the locators to withdraw, with why.
func (f *failoverRole) desiredLocked(locators []netip.Addr) map[netip.Addr]string {
	want := map[netip.Addr]string{}
	if !f.linkUp || f.draining {
		why := "drained (lispctl drain)"
		if !f.linkUp {
			why = "this xTR's " + f.linkWhy
		}
		for _, a := range f.own {
			want[a] = why
		}
	}
	for name, p := range f.peers {
		if !p.known {
			continue
		}
		var why string
		switch {
		case !p.alive:
			why = "sync member " + name + " is dead"
			if p.cause != "" {
				why += " (" + p.cause + ")"
			}
		case p.status.Draining:
			why = "sync member " + name + " is drained"
		case p.status.Down:
			why = "sync member " + name + ": " + p.status.Reason
		default:
			continue
		}
		for _, a := range p.status.RLOCs {
			if !slices.Contains(f.own, a) {
				want[a] = why
			}
		}
	}
	for a, down := range f.manual {
		if down {
			want[a] = "withdrawn by hand (lispctl failover peer-down)"
		}
	}
	for a := range want {
		if !slices.Contains(locators, a) {
			delete(want, a)
		}
	}
	return want
}

// reconcile brings the ETR's withdrawn locators in line with what is
// desired, sends SMRs when they changed, and sends this member's status to
// the set when it changed.
func (d *Daemon) reconcile() {
	f := &d.fo
	e := d.x.etr
	if e == nil {
		return
	}
	// RoutineFailover and the API's handlers reconcile; one at a time, so
	// that the ETR's locators follow f.applied in order.
	f.reconcileMu.Lock()
	defer f.reconcileMu.Unlock()
	f.mu.Lock()
	want := f.desiredLocked(e.DatabaseLocators())
	type change struct {
		addr   netip.Addr
		usable bool
		why    string
	}
	var changes []change
	for a, why := range want {
		if old, ok := f.applied[a]; !ok || old != why {
			changes = append(changes, change{a, false, why})
		}
	}
	for a := range f.applied {
		if _, ok := want[a]; !ok {
			changes = append(changes, change{a, true, ""})
		}
	}
	f.applied = want
	st := cachesync.MemberStatus{Down: !f.linkUp, Draining: f.draining, RLOCs: slices.Clone(f.own)}
	if !f.linkUp {
		st.Reason = f.linkWhy
	} else if f.draining {
		st.Reason = "drained"
	}
	f.mu.Unlock()

	changed := false
	for _, c := range changes {
		ok, err := e.SetLocatorUsable(c.addr, c.usable, c.why)
		if err != nil {
			d.log.Error("failover: cannot change a locator", "rloc", c.addr, "usable", c.usable, "err", err)
			continue
		}
		if ok {
			changed = true
			if c.usable {
				f.restorations.Add(1)
				d.log.Info("failover: locator restored", "rloc", c.addr)
			} else {
				f.withdrawals.Add(1)
				d.log.Warn("failover: locator withdrawn", "rloc", c.addr, "why", c.why)
			}
		}
	}
	remote := e.RemoteITRs(smrWindow)
	if changed && !f.cfg.SolicitMapRequests {
		d.log.Info("failover: the site's locators changed; no SMRs (failover.solicit-map-requests is off)", "withdrawn", len(want))
	}
	if changed && f.cfg.SolicitMapRequests {
		targets := make([]xtr.SMRTarget, 0, len(remote))
		for _, r := range remote {
			targets = append(targets, xtr.SMRTarget{RLOC: r.RLOC, InstanceID: r.InstanceID, EID: r.EID})
		}
		n := e.SolicitITRs(targets, nil)
		f.smrTargets.Add(uint64(len(targets)))
		d.log.Info("failover: the site's locators changed; SMRs queued to the remote ITRs", "itrs", len(targets), "smrs", n,
			"withdrawn", len(want))
	}
	m := d.sync.m
	if m == nil {
		return
	}
	now := time.Now()
	for _, r := range remote {
		st.ITRs = append(st.ITRs, cachesync.RemoteITR{RLOC: r.RLOC, InstanceID: r.InstanceID, EID: r.EID, Age: max(now.Sub(r.LastSeen), 0)})
	}
	// Send only what changed (the member sends the last status to a peer
	// that connects): a peer's status wakes this routine, and answering
	// every status with one would make the two members ping-pong.
	key := statusKey(st)
	f.mu.Lock()
	send := key != f.lastSent
	if send {
		f.lastSent = key
	}
	f.mu.Unlock()
	if send {
		m.SetStatus(st)
	}
}

// statusKey summarizes a status to tell whether it changed: its state,
// RLOCs and the set of remote ITRs (instance and RLOC; not their ages, nor
// which EID each was last seen from, which change with every packet and
// with every merge of a peer's view).
func statusKey(st cachesync.MemberStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %v %q %v ", st.Down, st.Draining, st.Reason, st.RLOCs)
	itrs := make([]string, 0, len(st.ITRs))
	for _, r := range st.ITRs {
		itrs = append(itrs, fmt.Sprintf("%d/%s", r.InstanceID, r.RLOC))
	}
	slices.Sort(itrs)
	b.WriteString(strings.Join(slices.Compact(itrs), ","))
	return b.String()
}

// writeTrackFile writes v to keepalived's track file atomically (a
// temporary file renamed over it), creating its directory.
func writeTrackFile(path string, v int) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("daemon: failover.vrrp-track-file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".vrrp-track-*")
	if err != nil {
		return fmt.Errorf("daemon: failover.vrrp-track-file: %w", err)
	}
	_, werr := fmt.Fprintf(tmp, "%d\n", v)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("daemon: failover.vrrp-track-file: %w", werr)
	}
	return nil
}

// The Daemon answers the failover endpoints.
var _ api.FailoverBackend = (*Daemon)(nil)

// errNoETR is returned by the failover endpoints of a daemon without the
// etr role.
var errNoETR = api.WithKind(api.ErrUnavailable, errors.New("this daemon does not play the etr role: it claims no RLOC"))

// Failover implements api.FailoverBackend.
func (d *Daemon) Failover(context.Context) (api.FailoverStatus, error) {
	e := d.x.etr
	if e == nil {
		return api.FailoverStatus{}, errNoETR
	}
	f := &d.fo
	f.mu.Lock()
	st := api.FailoverStatus{
		Enabled: f.on, LocalRLOCs: slices.Clone(f.own), Interfaces: slices.Clone(f.ifaces),
		LinkUp: f.linkUp, Draining: f.draining,
		Withdrawn: []api.WithdrawnRLOC{}, Members: []api.FailoverMember{}, RemoteITRs: []api.RemoteITR{},
	}
	names := make([]string, 0, len(f.peers))
	for n := range f.peers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := f.peers[n]
		st.Members = append(st.Members, api.FailoverMember{
			Name: n, Alive: p.alive, Known: p.known, Serving: p.alive && p.known && p.status.Serving(),
			Reason: p.status.Reason, RLOCs: slices.Clone(p.status.RLOCs), RemoteITRs: len(p.status.ITRs),
		})
	}
	f.mu.Unlock()
	if st.Interfaces == nil {
		st.Interfaces = []string{}
	}
	if st.LocalRLOCs == nil {
		st.LocalRLOCs = []netip.Addr{}
	}
	for _, w := range e.Withdrawn() {
		st.Withdrawn = append(st.Withdrawn, api.WithdrawnRLOC{Address: w.Addr, Reason: w.Reason})
	}
	for _, r := range e.RemoteITRs(smrWindow) {
		st.RemoteITRs = append(st.RemoteITRs, api.RemoteITR{RLOC: r.RLOC, InstanceID: r.InstanceID, EID: r.EID, LastSeen: r.LastSeen})
	}
	st.Withdrawals, st.Restorations, st.SMRTargets = f.withdrawals.Load(), f.restorations.Load(), f.smrTargets.Load()
	return st, nil
}

// requireFailover refuses a failover action when the healing is off.
func (d *Daemon) requireFailover() error {
	if d.x.etr == nil {
		return errNoETR
	}
	if !d.fo.on {
		return api.WithKind(api.ErrFailedPrecondition, errors.New("failover is off (failover.enabled = false)"))
	}
	return nil
}

// FailoverCheck implements api.FailoverBackend: silent sync peers are
// declared dead now, and the answer reflects their withdrawal.
func (d *Daemon) FailoverCheck(ctx context.Context) (api.FailoverStatus, error) {
	if err := d.requireFailover(); err != nil {
		return api.FailoverStatus{}, err
	}
	m := d.sync.m
	if m == nil {
		return d.Failover(ctx)
	}
	dead := m.CheckPeers(0)
	if len(dead) > 0 {
		d.log.Warn("failover: explicit check declared sync members dead", "members", dead)
		// Their sessions end asynchronously; wait (briefly) until the
		// withdrawal is applied.
		deadline := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if d.peersDead(dead) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		d.reconcile()
	}
	return d.Failover(ctx)
}

// peersDead reports whether the failover logic sees every named peer dead.
func (d *Daemon) peersDead(names []string) bool {
	f := &d.fo
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range names {
		if p := f.peers[n]; p != nil && p.alive {
			return false
		}
	}
	return true
}

// SetPeerDown implements api.FailoverBackend.
func (d *Daemon) SetPeerDown(ctx context.Context, o api.PeerOverride) (api.FailoverStatus, error) {
	if err := d.requireFailover(); err != nil {
		return api.FailoverStatus{}, err
	}
	a := o.RLOC.Unmap()
	f := &d.fo
	if slices.Contains(f.own, a) {
		return api.FailoverStatus{}, api.WithKind(api.ErrInvalidArgument,
			fmt.Errorf("%s is this xTR's own RLOC: use lispctl drain", a))
	}
	if !slices.Contains(d.x.etr.DatabaseLocators(), a) {
		return api.FailoverStatus{}, api.WithKind(api.ErrInvalidArgument,
			fmt.Errorf("%s is not a locator of this xTR's EID database (etr.eid rlocs)", a))
	}
	f.mu.Lock()
	if o.Down {
		f.manual[a] = true
	} else {
		delete(f.manual, a)
	}
	f.mu.Unlock()
	d.log.Info("failover: operator override", "rloc", a, "down", o.Down)
	d.reconcile()
	return d.Failover(ctx)
}

// decapPackets counts the LISP packets the data plane delivered.
func (d *Daemon) decapPackets() uint64 {
	if d.x.etr == nil {
		return 0
	}
	return d.x.etr.Decapsulator().Stats().Packets
}

// Drain implements api.FailoverBackend: withdraw this xTR's RLOCs, tell the
// remote ITRs (SMRs, Locator-Status-Bits) and the set, wait until no LISP
// packet arrived for failover.drain-quiet (or the timeout), then write 1 to
// the VRRP track file so that keepalived hands the gateway over. This xTR
// keeps forwarding in both directions meanwhile, so nothing is lost.
func (d *Daemon) Drain(ctx context.Context, r api.DrainRequest) (api.DrainResult, error) {
	if err := d.requireFailover(); err != nil {
		return api.DrainResult{}, err
	}
	f := &d.fo
	f.drainMu.Lock()
	defer f.drainMu.Unlock()
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = f.cfg.DrainTimeout
	}
	f.mu.Lock()
	f.draining = true
	f.mu.Unlock()
	d.log.Info("failover: draining: withdrawing this xTR's RLOCs", "rlocs", f.own, "quiet", f.cfg.DrainQuiet, "timeout", timeout)
	d.reconcile()

	start := time.Now()
	first := d.decapPackets()
	last, lastChange := first, start
	res := api.DrainResult{}
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		now := time.Now()
		if p := d.decapPackets(); p != last {
			last, lastChange = p, now
		}
		if now.Sub(lastChange) >= f.cfg.DrainQuiet {
			res.Quiet = true
			break
		}
		if now.Sub(start) >= timeout {
			break
		}
		select {
		case <-ctx.Done():
			return api.DrainResult{}, fmt.Errorf("daemon: drain interrupted after %v (still drained; lispctl undrain restores): %w",
				time.Since(start).Round(time.Millisecond), ctx.Err())
		case <-t.C:
		}
	}
	res.Waited = time.Since(start)
	res.PacketsDuring = last - first
	if !res.Quiet {
		d.log.Warn("failover: drain timeout: LISP packets still arrive; handing the gateway over anyway",
			"waited", res.Waited, "packets", res.PacketsDuring)
	}
	if p := f.cfg.VRRPTrackFile; p != "" {
		if err := writeTrackFile(p, 1); err != nil {
			return api.DrainResult{}, api.WithKind(api.ErrFailedPrecondition, err)
		}
		res.TrackFile = p
	}
	d.log.Info("failover: drained", "waited", res.Waited.Round(time.Millisecond), "quiet", res.Quiet,
		"packets_during", res.PacketsDuring, "track_file", res.TrackFile)
	st, err := d.Failover(ctx)
	res.Status = st
	return res, err
}

// Undrain implements api.FailoverBackend: the track file goes back to 0
// and this xTR's RLOCs are restored (unless its link is down).
func (d *Daemon) Undrain(ctx context.Context) (api.FailoverStatus, error) {
	if err := d.requireFailover(); err != nil {
		return api.FailoverStatus{}, err
	}
	f := &d.fo
	if p := f.cfg.VRRPTrackFile; p != "" {
		if err := writeTrackFile(p, 0); err != nil {
			return api.FailoverStatus{}, api.WithKind(api.ErrFailedPrecondition, err)
		}
	}
	f.mu.Lock()
	was := f.draining
	f.draining = false
	f.mu.Unlock()
	if was {
		d.log.Info("failover: undrained: restoring this xTR's RLOCs")
	}
	d.reconcile()
	return d.Failover(ctx)
}

// failoverCounters adds the failover counters to out.
func (d *Daemon) failoverCounters(out map[string]uint64) {
	if d.x.etr == nil {
		return
	}
	f := &d.fo
	out["failover_withdrawals"] = f.withdrawals.Load()
	out["failover_restorations"] = f.restorations.Load()
	out["failover_smr_targets"] = f.smrTargets.Load()
}
