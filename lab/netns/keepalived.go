package netns

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
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

// KeepalivedConfig is one keepalived VRRP instance (a vrrp_instance
// block), as StartKeepalived runs it.
type KeepalivedConfig struct {
	// Instance names the vrrp_instance; empty means "VI_<VirtualRouterID>".
	Instance string
	// Interface is the node's interface VRRP runs on (required).
	Interface string
	// VirtualRouterID is the VRID, 1-255 (required).
	VirtualRouterID int
	// Priority is 1-255 (255: the address owner); 0 means keepalived's
	// default, 100.
	Priority int
	// AdvertInt is the advertisement interval; 0 means 1 s. VRRPv2 needs
	// whole seconds (1-255 s); VRRPv3 takes multiples of 10 ms up to
	// 40.95 s.
	AdvertInt time.Duration
	// Version is the VRRP version, 2 or 3; 0 means 3 if AdvertInt is not a
	// whole number of seconds or a virtual address is IPv6, else 2.
	Version int
	// VirtualIPs are the virtual addresses with prefix length
	// ("10.0.0.254/24"), all of one family (required).
	VirtualIPs []string
	// State is the initial state, StateMaster or StateBackup; empty means
	// StateBackup.
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
	// Notify, NotifyMaster, NotifyBackup and NotifyFault are optional
	// scripts (a command line, no double quotes) that keepalived runs on
	// state changes; Notify gets "INSTANCE" NAME STATE PRIORITY.
	Notify, NotifyMaster, NotifyBackup, NotifyFault string
}

// normalize fills defaults and checks the configuration.
func (c KeepalivedConfig) normalize() (KeepalivedConfig, error) {
	if c.Interface == "" || len(c.Interface) > 15 || strings.ContainsAny(c.Interface, "/: \t\n\"{}") {
		return c, invalidf("keepalived: interface %q", c.Interface)
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
	if c.AdvertInt == 0 {
		c.AdvertInt = time.Second
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
	whole := c.AdvertInt%time.Second == 0
	if c.Version == 0 {
		c.Version = 2
		if !whole || v6 {
			c.Version = 3
		}
	}
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
	for _, s := range []string{c.Notify, c.NotifyMaster, c.NotifyBackup, c.NotifyFault} {
		if strings.ContainsAny(s, "\"\n\r\\") {
			return c, invalidf("keepalived: notify script %q: no quotes, backslashes or newlines", s)
		}
	}
	return c, nil
}

// Render returns the keepalived.conf text for the instance, with routerID
// in global_defs. It fails with ErrInvalid on a bad configuration.
func (c KeepalivedConfig) Render(routerID string) (string, error) {
	c, err := c.normalize()
	if err != nil {
		return "", err
	}
	if routerID == "" || strings.ContainsAny(routerID, " \t\n\"{}#!") {
		return "", invalidf("keepalived: router_id %q", routerID)
	}
	var b strings.Builder
	b.WriteString("# written by lispd lab/netns\n")
	b.WriteString("global_defs {\n")
	fmt.Fprintf(&b, "    router_id %s\n", routerID)
	if c.Notify != "" || c.NotifyMaster != "" || c.NotifyBackup != "" || c.NotifyFault != "" {
		b.WriteString("    script_user root\n")
	}
	b.WriteString("}\n\n")
	fmt.Fprintf(&b, "vrrp_instance %s {\n", c.Instance)
	fmt.Fprintf(&b, "    state %s\n", c.State)
	fmt.Fprintf(&b, "    interface %s\n", c.Interface)
	fmt.Fprintf(&b, "    virtual_router_id %d\n", c.VirtualRouterID)
	fmt.Fprintf(&b, "    priority %d\n", c.Priority)
	fmt.Fprintf(&b, "    version %d\n", c.Version)
	if c.Version == 2 {
		fmt.Fprintf(&b, "    advert_int %d\n", int(c.AdvertInt/time.Second))
	} else {
		fmt.Fprintf(&b, "    advert_int %s\n", strconv.FormatFloat(c.AdvertInt.Seconds(), 'f', -1, 64))
	}
	if c.NoPreempt {
		b.WriteString("    nopreempt\n")
	}
	if c.PreemptDelay > 0 {
		fmt.Fprintf(&b, "    preempt_delay %d\n", int(c.PreemptDelay/time.Second))
	}
	if len(c.UnicastPeers) > 0 {
		b.WriteString("    unicast_peer {\n")
		for _, p := range c.UnicastPeers {
			fmt.Fprintf(&b, "        %s\n", p)
		}
		b.WriteString("    }\n")
	}
	b.WriteString("    virtual_ipaddress {\n")
	for _, v := range c.VirtualIPs {
		fmt.Fprintf(&b, "        %s dev %s\n", v, c.Interface)
	}
	b.WriteString("    }\n")
	for _, s := range []struct{ key, cmd string }{
		{"notify", c.Notify}, {"notify_master", c.NotifyMaster},
		{"notify_backup", c.NotifyBackup}, {"notify_fault", c.NotifyFault},
	} {
		if s.cmd != "" {
			fmt.Fprintf(&b, "    %s \"%s\"\n", s.key, s.cmd)
		}
	}
	b.WriteString("}\n")
	return b.String(), nil
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
