package netns

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lispd/lispd/deploy/keepalived"
)

// VRRPState is the state of a keepalived VRRP instance, as keepalived logs
// it.
type VRRPState string

// The states keepalived logs ("Entering MASTER STATE"). StateUnknown is
// returned before keepalived has entered any state.
const (
	StateUnknown VRRPState = ""
	StateBackup  VRRPState = "BACKUP"
	StateMaster  VRRPState = "MASTER"
	StateFault   VRRPState = "FAULT"
)

// KeepalivedTemplate is the documented keepalived config the lab renders
// its configs from (deploy/keepalived; xtr-a2.conf differs from it only
// in router_id and priority, which the lab substitutes anyway).
const KeepalivedTemplate = keepalived.ConfigA1

// KeepalivedConfig is one keepalived VRRP instance, as StartKeepalived
// runs it. The config keepalived gets is the documented one of
// deploy/keepalived (KeepalivedTemplate) with only names, interfaces,
// addresses, priorities and paths replaced by these fields: the timers
// (VRRP version, advert_int, the health check's) are the documented ones
// unless AdvertInt or Version say otherwise.
type KeepalivedConfig struct {
	// Instance names the vrrp_instance; empty means "VI_<VirtualRouterID>".
	Instance string
	// Interface is the node's interface VRRP runs on (required).
	Interface string
	// VirtualRouterID is the VRID, 1-255 (required).
	VirtualRouterID int
	// Priority is 1-255 (255: the address owner); 0 means 100.
	Priority int
	// AdvertInt overrides the documented advertisement interval; 0 means
	// the documented one (1 s with Version 2). VRRPv2 needs whole seconds
	// (1-255 s); VRRPv3 takes multiples of 10 ms up to 40.95 s.
	AdvertInt time.Duration
	// Version overrides the documented VRRP version (3), 2 or 3; 0 means
	// the documented one, and IPv6 virtual addresses need 3.
	Version int
	// VirtualIPs are the virtual addresses with prefix length
	// ("10.0.0.254/24"), all of one family (required).
	VirtualIPs []string
	// State is the initial state, StateMaster or StateBackup; empty means
	// StateBackup (the documented one).
	State VRRPState
	// NoPreempt keeps a lower-priority Master in place when a
	// higher-priority router comes back (requires State BACKUP).
	NoPreempt bool
	// PreemptDelay delays preemption after start-up (whole seconds, at
	// most 1000; requires State BACKUP).
	PreemptDelay time.Duration
	// UnicastPeers, if set, are the addresses of the other routers:
	// advertisements go to them instead of multicast.
	UnicastPeers []string
	// TrackInterface replaces the documented tracked RLOC interface
	// (eth0): the instance goes to FAULT when it is down. Empty leaves
	// interface tracking out (VRRP's own Interface is always tracked).
	TrackInterface string
	// Lispctl is the lispctl command line (words without quotes) that
	// replaces the documented /usr/local/bin/lispctl in the health check
	// (lispd_up: `lispctl --timeout 2s status`) and in the notify hook,
	// e.g. "/tmp/bin/lispctl --socket /tmp/lab/xtr1.sock". Empty leaves
	// the health check and the notify hook out: a lab node must never
	// reach the host's lispd through the default socket.
	Lispctl string
	// NotifyHook is the path of the notify hook (deploy/keepalived's
	// lispd-vrrp-notify) replacing the documented
	// /etc/keepalived/lispd-vrrp-notify. StartKeepalived installs the
	// documented script in the lab's directory when it is empty and
	// Lispctl is set. Render leaves the hook out when it or Lispctl is
	// empty.
	NotifyHook string
	// TrackFile is the drain track file replacing the documented
	// /run/lispd/vrrp-drain (give the lispd of the node the same path as
	// [failover] vrrp-track-file). StartKeepalived uses a file in the
	// lab's directory when it is empty, and writes 0 to it if it does not
	// exist. Render leaves the track file out when it is empty.
	TrackFile string
	// Notify, if set, replaces the notify hook (keepalived runs one
	// notify command per instance). Notify, NotifyMaster, NotifyBackup
	// and NotifyFault are command lines (no double quotes) that keepalived
	// runs on state changes; Notify gets "INSTANCE" NAME STATE PRIORITY.
	Notify, NotifyMaster, NotifyBackup, NotifyFault string
}

// normalize fills defaults and checks the configuration.
func (c KeepalivedConfig) normalize() (KeepalivedConfig, error) {
	tpl, err := keepalivedTemplate()
	if err != nil {
		return c, err
	}
	if c.Interface == "" || len(c.Interface) > 15 || strings.ContainsAny(c.Interface, "/: \t\n\"{}") {
		return c, invalidf("keepalived: interface %q", c.Interface)
	}
	if c.TrackInterface != "" && (len(c.TrackInterface) > 15 || strings.ContainsAny(c.TrackInterface, "/: \t\n\"{}")) {
		return c, invalidf("keepalived: track interface %q", c.TrackInterface)
	}
	if c.VirtualRouterID < 1 || c.VirtualRouterID > 255 {
		return c, invalidf("keepalived: virtual_router_id %d (want 1-255)", c.VirtualRouterID)
	}
	if c.Instance == "" {
		c.Instance = "VI_" + strconv.Itoa(c.VirtualRouterID)
	}
	for _, r := range c.Instance {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return c, invalidf("keepalived: instance name %q", c.Instance)
		}
	}
	if c.Priority == 0 {
		c.Priority = 100
	}
	if c.Priority < 1 || c.Priority > 255 {
		return c, invalidf("keepalived: priority %d (want 1-255)", c.Priority)
	}
	if len(c.VirtualIPs) == 0 {
		return c, invalidf("keepalived: no virtual addresses")
	}
	v6 := false
	for i, s := range c.VirtualIPs {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return c, invalidf("keepalived: virtual address %q: want address/length", s)
		}
		if i == 0 {
			v6 = p.Addr().Is6()
		} else if p.Addr().Is6() != v6 {
			return c, invalidf("keepalived: virtual addresses mix IPv4 and IPv6")
		}
	}
	if c.Version == 0 {
		c.Version = tpl.version
	}
	if c.AdvertInt == 0 {
		c.AdvertInt = tpl.advertInt
		if c.Version == 2 {
			c.AdvertInt = time.Second
		}
	}
	whole := c.AdvertInt%time.Second == 0
	switch c.Version {
	case 2:
		if v6 {
			return c, invalidf("keepalived: IPv6 virtual addresses need VRRP version 3")
		}
		if !whole || c.AdvertInt < time.Second || c.AdvertInt > 255*time.Second {
			return c, invalidf("keepalived: advert_int %v: VRRPv2 takes 1-255 whole seconds", c.AdvertInt)
		}
	case 3:
		if c.AdvertInt%(10*time.Millisecond) != 0 || c.AdvertInt < 10*time.Millisecond || c.AdvertInt > 4095*10*time.Millisecond {
			return c, invalidf("keepalived: advert_int %v: VRRPv3 takes multiples of 10ms up to 40.95s", c.AdvertInt)
		}
	default:
		return c, invalidf("keepalived: VRRP version %d", c.Version)
	}
	switch c.State {
	case "":
		c.State = StateBackup
	case StateBackup, StateMaster:
	default:
		return c, invalidf("keepalived: initial state %q (want MASTER or BACKUP)", c.State)
	}
	if (c.NoPreempt || c.PreemptDelay != 0) && c.State != StateBackup {
		return c, invalidf("keepalived: nopreempt and preempt_delay need initial state BACKUP")
	}
	if c.PreemptDelay < 0 || c.PreemptDelay > 1000*time.Second || c.PreemptDelay%time.Second != 0 {
		return c, invalidf("keepalived: preempt_delay %v (whole seconds, at most 1000)", c.PreemptDelay)
	}
	for _, s := range c.UnicastPeers {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" || a.Is6() != v6 {
			return c, invalidf("keepalived: unicast peer %q", s)
		}
	}
	for _, s := range []string{c.Notify, c.NotifyMaster, c.NotifyBackup, c.NotifyFault, c.Lispctl} {
		if strings.ContainsAny(s, "\"'\n\r\\{}#!") {
			return c, invalidf("keepalived: command %q: no quotes, braces, comments, backslashes or newlines", s)
		}
	}
	for _, p := range []string{c.NotifyHook, c.TrackFile} {
		if p != "" && (!strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\"'\n\r\\{}#!")) {
			return c, invalidf("keepalived: path %q: want an absolute path without blanks, quotes or braces", p)
		}
	}
	return c, nil
}

// Render returns the keepalived.conf text for the instance, with routerID
// in global_defs: the documented KeepalivedTemplate with the fields of c
// substituted (comments are left out). It fails with ErrInvalid on a bad
// configuration.
func (c KeepalivedConfig) Render(routerID string) (string, error) {
	c, err := c.normalize()
	if err != nil {
		return "", err
	}
	if routerID == "" || strings.ContainsAny(routerID, " \t\n\"{}#!") {
		return "", invalidf("keepalived: router_id %q", routerID)
	}
	tpl, err := keepalivedTemplate()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# rendered by lispd lab/netns from deploy/keepalived/%s\n", KeepalivedTemplate)
	r := kaRenderer{c: c, routerID: routerID, tplVersion: tpl.version}
	for _, s := range tpl.stmts {
		if err := r.top(&b, s); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// kaStmt is a statement of a keepalived config: a line, and the block it
// opens, if any.
type kaStmt struct {
	words []string // the line split at blanks; a block's "{" removed
	block []*kaStmt
	isBlk bool
}

func (s *kaStmt) key() string  { return s.words[0] }
func (s *kaStmt) line() string { return strings.Join(s.words, " ") }

// parseKeepalived parses a keepalived config into statements, dropping
// comments and blank lines. It handles what the documented files use: one
// statement per line, a block opened by a trailing "{" and closed by a "}"
// line.
func parseKeepalived(text string) ([]*kaStmt, error) {
	root := &kaStmt{isBlk: true}
	stack := []*kaStmt{root}
	for i, l := range strings.Split(text, "\n") {
		if k := strings.IndexAny(l, "#!"); k >= 0 && !strings.Contains(l[:k], `"`) {
			l = l[:k]
		}
		l = strings.TrimSpace(l)
		switch {
		case l == "":
			continue
		case l == "}":
			if len(stack) == 1 {
				return nil, fmt.Errorf("line %d: unbalanced }", i+1)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		s := &kaStmt{words: strings.Fields(l)}
		top := stack[len(stack)-1]
		top.block = append(top.block, s)
		if s.words[len(s.words)-1] == "{" {
			s.words = s.words[:len(s.words)-1]
			s.isBlk = true
			if len(s.words) == 0 {
				return nil, fmt.Errorf("line %d: block without a name", i+1)
			}
			stack = append(stack, s)
		}
	}
	if len(stack) != 1 {
		return nil, fmt.Errorf("unclosed block %q", stack[len(stack)-1].line())
	}
	return root.block, nil
}

// kaTemplate is the parsed documented config.
type kaTemplate struct {
	stmts     []*kaStmt
	version   int
	advertInt time.Duration
}

// keepalivedTemplate parses KeepalivedTemplate once, and checks that it
// has everything Render substitutes.
var keepalivedTemplate = sync.OnceValues(func() (*kaTemplate, error) {
	fail := func(format string, a ...any) (*kaTemplate, error) {
		return nil, fmt.Errorf("netns: deploy/keepalived/%s: %s", KeepalivedTemplate, fmt.Sprintf(format, a...))
	}
	text, err := keepalived.File(KeepalivedTemplate)
	if err != nil {
		return fail("%v", err)
	}
	stmts, err := parseKeepalived(string(text))
	if err != nil {
		return fail("%v", err)
	}
	t := &kaTemplate{stmts: stmts, version: 2}
	want := map[string]int{}
	for _, s := range stmts {
		switch {
		case s.key() == "global_defs":
			for _, g := range s.block {
				want["global "+g.key()]++
				if g.key() == "vrrp_version" && len(g.words) == 2 {
					if t.version, err = strconv.Atoi(g.words[1]); err != nil {
						return fail("vrrp_version %q", g.words[1])
					}
				}
			}
		case s.key() == "vrrp_script" || s.key() == "track_file":
			want[s.key()]++
		case s.key() == "vrrp_instance":
			want["vrrp_instance"]++
			for _, g := range s.block {
				want["instance "+g.key()]++
				if g.key() == "advert_int" && len(g.words) == 2 {
					f, err := strconv.ParseFloat(g.words[1], 64)
					if err != nil {
						return fail("advert_int %q", g.words[1])
					}
					t.advertInt = time.Duration(f*100+0.5) * 10 * time.Millisecond
				}
			}
		default:
			return fail("unexpected top-level %q: teach lab/netns/keepalived.go about it", s.key())
		}
	}
	for _, k := range []string{"global router_id", "vrrp_instance", "instance state", "instance interface",
		"instance virtual_router_id", "instance priority", "instance advert_int", "instance virtual_ipaddress"} {
		if want[k] != 1 {
			return fail("%d %q, want 1", want[k], k)
		}
	}
	if t.advertInt == 0 {
		return fail("no usable advert_int")
	}
	return t, nil
})

// kaRenderer writes the template with a config's values.
type kaRenderer struct {
	c          KeepalivedConfig
	routerID   string
	tplVersion int
}

// lispctl reports whether the health check and the notify hook are in.
func (r *kaRenderer) lispctl() bool { return r.c.Lispctl != "" }

// paths replaces the documented paths in a line.
func (r *kaRenderer) paths(l string) string {
	if r.c.Lispctl != "" {
		l = strings.ReplaceAll(l, keepalived.Lispctl, r.c.Lispctl)
	}
	if r.c.NotifyHook != "" {
		l = strings.ReplaceAll(l, keepalived.NotifyPath, r.c.NotifyHook)
	}
	if r.c.TrackFile != "" {
		l = strings.ReplaceAll(l, keepalived.TrackFile, r.c.TrackFile)
	}
	return l
}

func (r *kaRenderer) top(b *strings.Builder, s *kaStmt) error {
	switch s.key() {
	case "global_defs":
		b.WriteString("global_defs {\n")
		for _, g := range s.block {
			if g.key() == "router_id" {
				fmt.Fprintf(b, "    router_id %s\n", r.routerID)
				continue
			}
			writeStmt(b, g, 1, r.paths)
		}
		b.WriteString("}\n")
	case "vrrp_script":
		if !r.lispctl() {
			return nil
		}
		b.WriteString("\n")
		writeStmt(b, s, 0, r.paths)
	case "track_file":
		if r.c.TrackFile == "" {
			return nil
		}
		b.WriteString("\n")
		writeStmt(b, s, 0, r.paths)
	case "vrrp_instance":
		b.WriteString("\n")
		return r.instance(b, s)
	}
	return nil
}

func (r *kaRenderer) instance(b *strings.Builder, s *kaStmt) error {
	c := r.c
	fmt.Fprintf(b, "vrrp_instance %s {\n", c.Instance)
	notified := false
	for _, g := range s.block {
		switch g.key() {
		case "state":
			fmt.Fprintf(b, "    state %s\n", c.State)
		case "interface":
			fmt.Fprintf(b, "    interface %s\n", c.Interface)
		case "virtual_router_id":
			fmt.Fprintf(b, "    virtual_router_id %d\n", c.VirtualRouterID)
		case "priority":
			fmt.Fprintf(b, "    priority %d\n", c.Priority)
		case "advert_int":
			if c.Version != r.tplVersion {
				fmt.Fprintf(b, "    version %d\n", c.Version)
			}
			if c.Version == 2 {
				fmt.Fprintf(b, "    advert_int %d\n", int(c.AdvertInt/time.Second))
			} else {
				fmt.Fprintf(b, "    advert_int %s\n", strconv.FormatFloat(c.AdvertInt.Seconds(), 'f', -1, 64))
			}
			if c.NoPreempt {
				b.WriteString("    nopreempt\n")
			}
			if c.PreemptDelay > 0 {
				fmt.Fprintf(b, "    preempt_delay %d\n", int(c.PreemptDelay/time.Second))
			}
			if len(c.UnicastPeers) > 0 {
				b.WriteString("    unicast_peer {\n")
				for _, p := range c.UnicastPeers {
					fmt.Fprintf(b, "        %s\n", p)
				}
				b.WriteString("    }\n")
			}
		case "track_interface":
			if c.TrackInterface == "" {
				continue
			}
			if len(g.block) != 1 || g.block[0].line() != keepalived.RLOCInterface {
				return fmt.Errorf("netns: deploy/keepalived/%s: track_interface is not just %s", KeepalivedTemplate, keepalived.RLOCInterface)
			}
			fmt.Fprintf(b, "    track_interface {\n        %s\n    }\n", c.TrackInterface)
		case "track_script":
			if r.lispctl() {
				writeStmt(b, g, 1, r.paths)
			}
		case "track_file":
			if c.TrackFile != "" {
				writeStmt(b, g, 1, r.paths)
			}
		case "notify":
			switch {
			case c.Notify != "":
				fmt.Fprintf(b, "    notify \"%s\"\n", c.Notify)
			case r.lispctl() && c.NotifyHook != "":
				writeStmt(b, g, 1, r.paths)
			}
			r.notifyStates(b)
			notified = true
		case "virtual_ipaddress":
			b.WriteString("    virtual_ipaddress {\n")
			for _, v := range c.VirtualIPs {
				fmt.Fprintf(b, "        %s dev %s\n", v, c.Interface)
			}
			b.WriteString("    }\n")
		default:
			writeStmt(b, g, 1, r.paths)
		}
	}
	if !notified {
		if c.Notify != "" {
			fmt.Fprintf(b, "    notify \"%s\"\n", c.Notify)
		}
		r.notifyStates(b)
	}
	b.WriteString("}\n")
	return nil
}

// notifyStates writes the notify_<state> lines.
func (r *kaRenderer) notifyStates(b *strings.Builder) {
	for _, s := range []struct{ key, cmd string }{
		{"notify_master", r.c.NotifyMaster}, {"notify_backup", r.c.NotifyBackup}, {"notify_fault", r.c.NotifyFault},
	} {
		if s.cmd != "" {
			fmt.Fprintf(b, "    %s \"%s\"\n", s.key, s.cmd)
		}
	}
}

// writeStmt writes a statement (and its block) at an indentation depth,
// passing each line through sub.
func writeStmt(b *strings.Builder, s *kaStmt, depth int, sub func(string) string) {
	ind := strings.Repeat("    ", depth)
	if !s.isBlk {
		fmt.Fprintf(b, "%s%s\n", ind, sub(s.line()))
		return
	}
	fmt.Fprintf(b, "%s%s {\n", ind, sub(s.line()))
	for _, g := range s.block {
		writeStmt(b, g, depth+1, sub)
	}
	fmt.Fprintf(b, "%s}\n", ind)
}

// lastKeepalivedState returns the state of the last "(INSTANCE) Entering
// X STATE" line of a keepalived log.
func lastKeepalivedState(log []byte, instance string) VRRPState {
	s := string(log)
	marker := "(" + instance + ") Entering "
	k := strings.LastIndex(s, marker)
	if k < 0 {
		return StateUnknown
	}
	rest := s[k+len(marker):]
	state, _, ok := strings.Cut(rest, " STATE")
	if !ok || strings.ContainsAny(state, " \n") {
		return StateUnknown
	}
	return VRRPState(state)
}
