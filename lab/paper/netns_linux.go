package paper

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/lab/labkit"
	"github.com/lispd/lispd/lab/netns"
	"github.com/lispd/lispd/lab/topo"
	"github.com/lispd/lispd/lab/traffic"
)

// netnsRLOCNet is the RLOC network of the netns lab (RFC 2544 benchmarking
// space, inside the lab's namespaces only).
var netnsRLOCNet = netip.MustParsePrefix("198.19.0.0/24")

// tunName is the name of lispd's TUN device in every xTR namespace.
const tunName = "lisp0"

// netnsRunner runs each run as real lispd processes in a fresh lab of
// network namespaces.
type netnsRunner struct {
	o       Options
	p       *progress
	lispd   string
	lispctl string // what keepalived's health check and notify hook run
	tmp     string // holds the binaries built here
}

func newNetnsRunner(ctx context.Context, o Options, p *progress) (runner, error) {
	if err := netns.Supported(); err != nil {
		return nil, fmt.Errorf("%w: --netns: %v", ErrUnsupported, err)
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		return nil, fmt.Errorf("%w: --netns needs keepalived (Debian: apt-get install keepalived; .ci/run installs it)", ErrUnsupported)
	}
	// Labs of crashed runs (their owner is gone) are removed first.
	if err := netns.CleanupStale(netns.DefaultPrefix); err != nil {
		p.note("removing stale labs: %v", err)
	}
	r := &netnsRunner{o: o, p: p, lispd: o.Lispd}
	if r.lispd != "" {
		// A lispctl next to the given lispd, as `go build ./cmd/...` makes.
		if c := filepath.Join(filepath.Dir(r.lispd), "lispctl"); fileExists(c) {
			r.lispctl = c
		}
	}
	if r.lispd == "" || r.lispctl == "" {
		dir, err := os.MkdirTemp("", "lisplab-lispd-")
		if err != nil {
			return nil, fmt.Errorf("paper: %w", err)
		}
		// keepalived's enable_script_security wants the scripts' directory
		// not writable by others.
		if err := os.Chmod(dir, 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("paper: %w", err)
		}
		r.tmp = dir
		if r.lispd == "" {
			p.note("building lispd (go build %s)", labkit.LispdPackage)
			if r.lispd, err = labkit.BuildLispd(ctx, dir); err != nil {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("paper: %w", err)
			}
		}
		p.note("building lispctl (go build %s)", labkit.LispctlPackage)
		if r.lispctl, err = labkit.BuildLispctl(ctx, dir); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("paper: %w", err)
		}
	}
	return r, nil
}

// fileExists reports whether path is a regular file.
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

func (r *netnsRunner) close() {
	if r.tmp != "" {
		os.RemoveAll(r.tmp)
	}
}

// netnsSite is one run's topology in a lab of namespaces.
type netnsSite struct {
	o       Options
	lispctl string
	t       *topo.Topology
	lab     *netns.Lab
	ledger  *traffic.Ledger
	nodes   map[string]*netns.Node
	lispd   map[string]*netns.Process
	itrs    map[string]*api.Client
	rxs     map[string]*api.Client // the remote xTRs'
	ms      *api.Client
	keep    map[string]*netns.Keepalived // by "<router>/<vrid>"

	mu        sync.Mutex
	failedAt  time.Time // guarded: when ITR1's LAN went down
	crashedAt time.Time // guarded: when ITR1 crashed
	drainOut  *DrainOutcome

	sniffers []*sniffer
	senders  map[string]*rawSender
	stopP    context.CancelFunc
	pingWG   sync.WaitGroup
}

func (r *netnsRunner) run(ctx context.Context, spec Spec, i int, rng *rand.Rand) (RunResult, error) {
	t, err := topo.Paper(topo.Test(spec.Test), netnsRLOCNet)
	if err != nil {
		return RunResult{}, err
	}
	ledger, err := traffic.NewLedger(t.Flows)
	if err != nil {
		return RunResult{}, err
	}
	lab, err := netns.New(netns.Options{})
	if err != nil {
		return RunResult{}, fmt.Errorf("paper: %w", err)
	}
	s := &netnsSite{o: r.o, t: t, lab: lab, ledger: ledger, lispctl: r.lispctl, nodes: map[string]*netns.Node{}, lispd: map[string]*netns.Process{},
		itrs: map[string]*api.Client{}, rxs: map[string]*api.Client{}, keep: map[string]*netns.Keepalived{}, senders: map[string]*rawSender{}}
	defer s.close()
	r.p.phase("building namespaces %s-* (LAN, RLOC network, %d routers, hosts)", lab.Prefix(), 3+len(t.Remotes))
	if err := s.build(ctx, r.lispd, spec); err != nil {
		return RunResult{}, err
	}
	run, err := drive(ctx, r.o, r.p, t, spec, s, ledger, rng)
	if err != nil {
		return RunResult{}, fmt.Errorf("%w%s", err, s.processTails())
	}
	return run, nil
}

// processTails returns the end of the output of lispd processes that
// exited, to explain a failure.
func (s *netnsSite) processTails() string {
	var out string
	for name, p := range s.lispd {
		if p.Exited() {
			out += fmt.Sprintf("\nlispd on %s exited:\n%s", name, p.Tail(20))
		}
	}
	return out
}

// close stops the traffic and removes everything the lab created.
func (s *netnsSite) close() {
	s.stopTraffic()
	for _, sn := range s.sniffers {
		sn.close()
	}
	for _, rs := range s.senders {
		rs.close()
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
	_ = s.lab.Close()
}

func (s *netnsSite) node(name string) (*netns.Node, error) {
	n, err := s.lab.AddNode(name)
	if err != nil {
		return nil, fmt.Errorf("paper: %w", err)
	}
	s.nodes[name] = n
	return n, nil
}

// build creates the namespaces, links, routes, keepalived and lispd.
func (s *netnsSite) build(ctx context.Context, lispd string, spec Spec) error {
	t := s.t
	lanSw, err := s.lab.AddSwitch("lan")
	if err != nil {
		return fmt.Errorf("paper: %w", err)
	}
	core, err := s.lab.AddSwitch("core")
	if err != nil {
		return fmt.Errorf("paper: %w", err)
	}
	bits := t.SitePrefix.Bits()
	rbits := t.RLOCNet.Bits()

	// The Map-Server/Map-Resolver on the RLOC network.
	msNode, err := s.node(topo.MSMR)
	if err != nil {
		return err
	}
	if _, err := core.AttachWith(msNode, netns.LinkConfig{NameA: "rloc0", AddrsA: []string{netip.PrefixFrom(t.MSMR, rbits).String()}}); err != nil {
		return fmt.Errorf("paper: %w", err)
	}

	// The site's xTRs: LAN and RLOC interfaces, forwarding (lispd routes
	// the remote EIDs into its TUN, dataplane.tun-routes).
	for _, x := range t.XTRs {
		n, err := s.node(x.Name)
		if err != nil {
			return err
		}
		if _, err := lanSw.AttachWith(n, netns.LinkConfig{NameA: "lan0", AddrsA: []string{netip.PrefixFrom(x.LANAddr, bits).String()}}); err != nil {
			return fmt.Errorf("paper: %w", err)
		}
		if _, err := core.AttachWith(n, netns.LinkConfig{NameA: "rloc0", AddrsA: []string{netip.PrefixFrom(x.RLOC, rbits).String()}}); err != nil {
			return fmt.Errorf("paper: %w", err)
		}
		if err := routerSysctls(n); err != nil {
			return err
		}
	}
	// The hosts, with their gateway's virtual address as default route.
	for _, h := range t.Hosts {
		n, err := s.node(h.Name)
		if err != nil {
			return err
		}
		if _, err := lanSw.AttachWith(n, netns.LinkConfig{NameA: "eth0", AddrsA: []string{netip.PrefixFrom(h.Addr, bits).String()}}); err != nil {
			return fmt.Errorf("paper: %w", err)
		}
		if err := n.AddDefaultRoute(h.Gateway.String()); err != nil {
			return fmt.Errorf("paper: %w", err)
		}
	}
	// The remote xTRs, each with a host holding its destinations.
	for _, rx := range t.Remotes {
		n, err := s.node(rx.Name)
		if err != nil {
			return err
		}
		if _, err := core.AttachWith(n, netns.LinkConfig{NameA: "rloc0", AddrsA: []string{netip.PrefixFrom(rx.RLOC, rbits).String()}}); err != nil {
			return fmt.Errorf("paper: %w", err)
		}
		if err := routerSysctls(n); err != nil {
			return err
		}
		hn, err := s.node(destHost(rx.Name))
		if err != nil {
			return err
		}
		var gw, dst []string
		for i, p := range rx.Prefixes {
			gw = append(gw, netip.PrefixFrom(lastHost(p), p.Bits()).String())
			dst = append(dst, netip.PrefixFrom(rx.Dests[i], p.Bits()).String())
		}
		if _, err := s.lab.LinkWith(n, hn, netns.LinkConfig{NameA: "eid0", NameB: "eth0", AddrsA: gw, AddrsB: dst}); err != nil {
			return fmt.Errorf("paper: %w", err)
		}
		if err := hn.AddDefaultRoute(lastHost(rx.Prefixes[0]).String()); err != nil {
			return fmt.Errorf("paper: %w", err)
		}
	}

	// lispd everywhere.
	dir := s.lab.Dir()
	if s.ms, err = s.startLispd(ctx, lispd, dir, msNode, msmrConfig(t, filepath.Join(dir, msNode.Name()+".sock"), spec.PubSub)); err != nil {
		return err
	}
	keys, err := syncKeys(t, dir)
	if err != nil {
		return err
	}
	for _, rx := range t.Remotes {
		rs := remoteSpec(t, rx)
		rs.TUN = tunName
		rs.Healing = spec.Healing
		rs.PubSub = spec.PubSub
		c, err := s.startLispd(ctx, lispd, dir, s.nodes[rx.Name], xtrConfig(rs, filepath.Join(dir, rx.Name+".sock")))
		if err != nil {
			return err
		}
		s.rxs[rx.Name] = c
	}
	for _, x := range t.XTRs {
		xs := siteSpec(t, x, spec.Variant, keys)
		xs.TUN = tunName
		xs.Healing = spec.Healing
		xs.PubSub = spec.PubSub
		xs.ProxyReply = siteProxyReply(spec.PubSub)
		xs.TrackFile = trackFile(dir, x.Name)
		xs.Watch = []string{"lan0"}
		c, err := s.startLispd(ctx, lispd, dir, s.nodes[x.Name], xtrConfig(xs, filepath.Join(dir, x.Name+".sock")))
		if err != nil {
			return err
		}
		s.itrs[x.Name] = c
	}

	// keepalived: every group on both xTRs, the master by state and
	// priority, from the documented file (deploy/keepalived: VRRPv3,
	// advert_int 0.1, the lispd health check, the track file lispd writes
	// on a drain, the notify hook that runs lispctl failover check).
	for _, g := range t.Groups {
		for _, x := range t.XTRs {
			state := netns.StateBackup
			if x.Name == g.Master {
				state = netns.StateMaster
			}
			k, err := s.nodes[x.Name].StartKeepalived(netns.KeepalivedConfig{
				TrackInterface:  "rloc0",
				Lispctl:         s.lispctl + " --socket " + filepath.Join(dir, x.Name+".sock"),
				TrackFile:       trackFile(dir, x.Name),
				Instance:        fmt.Sprintf("VI_%d", g.VRID),
				Interface:       "lan0",
				VirtualRouterID: int(g.VRID),
				Priority:        int(g.Priority(x.Name)),
				AdvertInt:       s.o.VRRPAdvert,
				Version:         3,
				VirtualIPs:      []string{netip.PrefixFrom(g.VIP, bits).String()},
				State:           state,
			})
			if err != nil {
				return fmt.Errorf("paper: keepalived on %s: %w", x.Name, err)
			}
			s.keep[fmt.Sprintf("%s/%d", x.Name, g.VRID)] = k
		}
	}
	return s.startObservers()
}

// trackFile is the VRRP track file of a site xTR in the lab directory.
func trackFile(dir, router string) string { return filepath.Join(dir, router+".track") }

// destHost names the namespace holding a remote xTR's destinations.
func destHost(remote string) string { return remote + "-hosts" }

// lastHost returns the last host address of an IPv4 prefix (the remote
// xTR's address in each destination network).
func lastHost(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= (1<<(32-p.Bits()) - 1) &^ 1
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// routerSysctls turns a namespace into an IPv4 router, like the paper's:
// forwarding on, reverse path filtering off (traffic leaves by the TUN and
// returns by another interface), and IPv6 off, so that the kernel's own
// IPv6 traffic on a new TUN (router solicitations) does not reach the ITR.
func routerSysctls(n *netns.Node) error {
	if err := n.EnableForwarding(true, false); err != nil {
		return fmt.Errorf("paper: %w", err)
	}
	for k, v := range map[string]string{
		"net.ipv4.conf.all.rp_filter":        "0",
		"net.ipv4.conf.default.rp_filter":    "0",
		"net.ipv6.conf.all.disable_ipv6":     "1",
		"net.ipv6.conf.default.disable_ipv6": "1",
	} {
		if err := n.SetSysctl(k, v); err != nil {
			return fmt.Errorf("paper: %w", err)
		}
	}
	return nil
}

// startLispd writes a config, starts lispd in node and waits for its API.
func (s *netnsSite) startLispd(ctx context.Context, lispd, dir string, node *netns.Node, conf string) (*api.Client, error) {
	name := node.Name()
	path := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("paper: %w", err)
	}
	proc, err := node.Start(ctx, netns.Command{Name: lispd, Args: []string{"-c", path}, Label: "lispd-" + name})
	if err != nil {
		return nil, fmt.Errorf("paper: lispd on %s: %w", name, err)
	}
	s.lispd[name] = proc
	sock := filepath.Join(dir, name+".sock")
	c := api.NewClient(sock, api.WithTimeout(5*time.Second))
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := c.Status(ctx); err == nil {
			return c, nil
		}
		if proc.Exited() {
			return nil, fmt.Errorf("paper: lispd on %s exited:\n%s", name, proc.Tail(20))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("paper: lispd on %s: API not up within 15 s:\n%s", name, proc.Tail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startObservers starts the sniffers that feed the ledger: requests
// entering each xTR's TUN (handed to the ITR) and replies leaving it
// (decapsulated by the ETR), requests arriving at the destinations, and
// replies arriving at the hosts.
func (s *netnsSite) startObservers() error {
	t := s.t
	for _, x := range t.XTRs {
		name := x.Name
		sn, err := startSniffer(s.nodes[name], tunName, func(pkt []byte, outgoing bool, at time.Time) {
			e, err := traffic.ParseEcho(pkt)
			if err != nil {
				return
			}
			switch {
			case outgoing && e.Type == traffic.EchoRequest:
				_ = s.ledger.Handed(pkt, name, at)
			case !outgoing && e.Type == traffic.EchoReply:
				_ = s.ledger.ReplyOut(pkt, name, s.lanDown(name, at), at)
			}
		})
		if err != nil {
			return err
		}
		s.sniffers = append(s.sniffers, sn)
	}
	// After a crash, what remote ITRs still encapsulate to ITR1's RLOC
	// arrives at a dead port: the replies among it are lost on the return
	// path.
	rloc1, _ := t.XTR(topo.ITR1)
	sn, err := startSniffer(s.nodes[topo.ITR1], "rloc0", func(pkt []byte, outgoing bool, at time.Time) {
		if outgoing || !s.crashed(at) {
			return
		}
		if payload, ok := udpPayloadTo(pkt, rloc1.RLOC, 4341); ok {
			recordEncapsulated(payload, topo.ITR1, s.ledger, at)
		}
	})
	if err != nil {
		return err
	}
	s.sniffers = append(s.sniffers, sn)
	for _, rx := range t.Remotes {
		sn, err := startSniffer(s.nodes[destHost(rx.Name)], "eth0", func(pkt []byte, outgoing bool, at time.Time) {
			if e, err := traffic.ParseEcho(pkt); err == nil && !outgoing && e.Type == traffic.EchoRequest {
				_ = s.ledger.Arrived(pkt, at)
			}
		})
		if err != nil {
			return err
		}
		s.sniffers = append(s.sniffers, sn)
	}
	for _, h := range t.Hosts {
		sn, err := startSniffer(s.nodes[h.Name], "eth0", func(pkt []byte, outgoing bool, at time.Time) {
			if e, err := traffic.ParseEcho(pkt); err == nil && !outgoing && e.Type == traffic.EchoReply {
				_ = s.ledger.Received(pkt, at)
			}
		})
		if err != nil {
			return err
		}
		s.sniffers = append(s.sniffers, sn)
		rs, err := newRawSender(s.nodes[h.Name])
		if err != nil {
			return err
		}
		s.senders[h.Name] = rs
	}
	return nil
}

// crashed reports whether ITR1 had crashed at at.
func (s *netnsSite) crashed(at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.crashedAt.IsZero() && !at.Before(s.crashedAt)
}

// udpPayloadTo returns the UDP payload of the IPv4 packet pkt if it is
// addressed to dst:port.
func udpPayloadTo(pkt []byte, dst netip.Addr, port uint16) ([]byte, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != 17 {
		return nil, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || len(pkt) < ihl+8 || netip.AddrFrom4([4]byte(pkt[16:20])) != dst {
		return nil, false
	}
	if uint16(pkt[ihl+2])<<8|uint16(pkt[ihl+3]) != port {
		return nil, false
	}
	return pkt[ihl+8:], true
}

// lanDown reports whether router's LAN interface was down at at.
func (s *netnsSite) lanDown(router string, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return router == topo.ITR1 && !s.failedAt.IsZero() && !at.Before(s.failedAt)
}

func (s *netnsSite) clients() map[string]*api.Client { return s.itrs }

func (s *netnsSite) remotes() map[string]*api.Client { return s.rxs }

func (s *netnsSite) mapServer() *api.Client { return s.ms }

func (s *netnsSite) ready(ctx context.Context) error {
	want := 1
	for _, rx := range s.t.Remotes {
		want += len(rx.Prefixes)
	}
	var last error
	for {
		regs, err := s.ms.Registrations(ctx)
		ok := err == nil && len(regs) >= want
		if err != nil {
			last = err
		}
		for _, g := range s.t.Groups {
			owner, err := netns.VIPOwner(g.VIP.String(), s.nodes[topo.ITR1], s.nodes[topo.ITR2])
			ok = ok && err == nil && owner == s.nodes[g.Master]
		}
		if ok {
			ok, err = s.syncReady(ctx)
			if err != nil {
				last = err
			}
		}
		if ok {
			return nil
		}
		for name, p := range s.lispd {
			if p.Exited() {
				return fmt.Errorf("paper: lispd on %s exited:\n%s", name, p.Tail(20))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("paper: site not ready (registrations %d of %d, last error %v)", len(regs), want, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *netnsSite) startTraffic(context.Context) (time.Time, error) {
	pctx, cancel := context.WithCancel(context.Background())
	s.stopP = cancel
	start := time.Now()
	for _, h := range s.t.Hosts {
		rs := s.senders[h.Name]
		if rs == nil {
			cancel()
			return start, errors.New("paper: no sender for " + h.Name)
		}
		// One pinger per host: a host whose stack holds its packets
		// does not delay the other's.
		p := &traffic.Pinger{Ledger: s.ledger, Hosts: []string{h.Name}, Interval: s.o.PingInterval, Send: func(f traffic.Flow, pkt []byte) error {
			return rs.send(pkt, f.Dst)
		}}
		s.pingWG.Add(1)
		go func() { // RoutinePinger
			defer s.pingWG.Done()
			_ = p.Run(pctx)
		}()
	}
	return start, nil
}

func (s *netnsSite) stopTraffic() {
	if s.stopP != nil {
		s.stopP()
		s.pingWG.Wait()
	}
}

func (s *netnsSite) fail(ctx context.Context, kind Failure) (time.Time, error) {
	now := time.Now()
	switch kind {
	case FailLAN:
		ifc := s.nodes[topo.ITR1].Iface("lan0")
		if ifc == nil {
			return time.Time{}, errors.New("paper: ITR1 has no lan0")
		}
		s.mu.Lock()
		s.failedAt = now
		s.mu.Unlock()
		if err := ifc.SetDown(); err != nil {
			return now, fmt.Errorf("paper: shutting ITR1's LAN interface: %w", err)
		}
		return now, nil
	case FailCrash:
		// A whole-router crash: lispd and keepalived on ITR1 are
		// SIGKILLed (no priority-0 advertisement, no goodbye on the sync
		// connections; the kernel closes lispd's sockets and removes its
		// TUN). The LAN interface stays up.
		s.mu.Lock()
		s.crashedAt = now
		s.mu.Unlock()
		procs := []*netns.Process{s.lispd[topo.ITR1]}
		for key, k := range s.keep {
			if strings.HasPrefix(key, topo.ITR1+"/") {
				procs = append(procs, k.Process())
			}
		}
		for _, p := range procs {
			if err := p.Signal(syscall.SIGKILL); err != nil {
				return now, fmt.Errorf("paper: killing %s on ITR1: %w", p.Name(), err)
			}
		}
		for _, p := range procs {
			select {
			case <-p.Done():
			case <-ctx.Done():
				return now, ctx.Err()
			}
		}
		return now, nil
	case FailDrain:
		dctx, cancel := context.WithTimeout(ctx, DrainTimeout+5*time.Second)
		defer cancel()
		out, err := drain(dctx, s.itrs[topo.ITR1])
		if err != nil {
			return now, fmt.Errorf("paper: draining ITR1: %w", err)
		}
		s.mu.Lock()
		s.drainOut = &out
		s.mu.Unlock()
		return now, nil
	}
	return now, fmt.Errorf("%w: failure %q", ErrInvalid, kind)
}

func (s *netnsSite) drained() *DrainOutcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drainOut
}

func (s *netnsSite) switchovers(ctx context.Context, failAt time.Time) []Switchover {
	var pending []topo.Group
	for _, g := range s.t.Groups {
		if g.Master == topo.ITR1 {
			pending = append(pending, g)
		}
	}
	var out []Switchover
	for {
		now := time.Now()
		for i := 0; i < len(pending); i++ {
			g := pending[i]
			if ok, err := s.nodes[topo.ITR2].HasAddr(g.VIP.String()); err == nil && ok {
				out = append(out, Switchover{VRID: g.VRID, To: topo.ITR2, After: now.Sub(failAt)})
				pending = append(pending[:i], pending[i+1:]...)
				i--
			}
		}
		if len(pending) == 0 {
			return out
		}
		select {
		case <-ctx.Done():
			return out
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *netnsSite) handed(flow uint16, router string) (time.Time, bool) {
	return s.ledger.FirstHanded(flow, router)
}

func (s *netnsSite) syncReady(ctx context.Context) (bool, error) {
	return syncConnected(ctx, s.itrs)
}
