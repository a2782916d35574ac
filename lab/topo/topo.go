// Package topo describes the topology of the paper's experiment (section 4
// and Figure 2 of "Map-Cache Synchronization of LISP ITRs"): a LISP site
// with two hosts (USR1, USR2) on its LAN and two xTRs (ITR1, ITR2) that
// share gateway duty by VRRP and whose RLOCs take ingress traffic 50:50; a
// Map-Server/Map-Resolver; and remote xTRs owning 30 destination EIDs, each
// with a single RLOC. USR1 pings 20 destinations, USR2 the other 10.
//
// The description is data: names, addresses, EID prefixes, VRRP groups and
// flows. The embedded and the netns runners of lab/paper build the same
// topology from it, the first with in-process routers on loopback
// addresses, the second with namespaces, so the two differ only in the
// RLOC network they are given.
//
// Addresses come from ranges reserved for documentation and benchmarking
// (RFC 5737 192.0.2.0/24 for the site, RFC 2544 198.18.0.0/15 for the
// destinations), so nothing here can reach a real network.
package topo

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/lispd/lispd/lab/traffic"
)

// Test selects the paper's test: which gateway each host uses.
type Test int

// The paper's two tests.
const (
	// Test1: both hosts use ITR1 as their gateway (one VRRP group).
	Test1 Test = 1
	// Test2: ITR1 is USR1's gateway and ITR2 is USR2's (two VRRP groups).
	Test2 Test = 2
)

// String returns "Test 1" or "Test 2".
func (t Test) String() string { return fmt.Sprintf("Test %d", int(t)) }

// Names of the nodes.
const (
	USR1  = "USR1"
	USR2  = "USR2"
	ITR1  = "ITR1"
	ITR2  = "ITR2"
	MSMR  = "MSMR"
	SiteA = "site-a"
)

// Parameters of the paper's experiment.
const (
	// Destinations is the number of remote destination EIDs.
	Destinations = 30
	// USR1Destinations is how many of them USR1 pings; USR2 pings the
	// rest.
	USR1Destinations = 20
	// Remotes is the number of remote xTRs the destinations are spread
	// over (each owns every Remotes-th destination).
	Remotes = 3
	// MapTTL is the TTL of the remote mappings: 10 minutes, as in the
	// paper.
	MapTTL = 10 * time.Minute
	// MasterPriority and BackupPriority are the VRRP priorities of a
	// group's master and backup router.
	MasterPriority = 150
	BackupPriority = 100
)

// ErrInvalid is returned for an RLOC network that cannot hold the
// topology.
var ErrInvalid = errors.New("topo: invalid argument")

// Host is an end station on the site's LAN.
type Host struct {
	Name string
	// Addr is the host's address (an EID of the site).
	Addr netip.Addr
	// Gateway is the virtual address of the host's default gateway.
	Gateway netip.Addr
	// VRID is the VRRP group that owns Gateway.
	VRID uint8
}

// XTR is one of the site's two xTRs.
type XTR struct {
	Name string
	// RLOC is the xTR's locator (and control-plane address).
	RLOC netip.Addr
	// LANAddr is the xTR's own address on the site's LAN.
	LANAddr netip.Addr
	// Weight is the unicast weight of its RLOC in the site's mapping.
	Weight uint8
}

// Remote is a remote xTR and the destinations behind it.
type Remote struct {
	Name string
	// RLOC is the remote xTR's single locator.
	RLOC netip.Addr
	// Prefixes are the EID prefixes it registers, one per destination.
	Prefixes []netip.Prefix
	// Dests are the destination hosts, Dests[i] inside Prefixes[i].
	Dests []netip.Addr
}

// Group is one VRRP virtual router of the site's LAN.
type Group struct {
	VRID uint8
	// VIP is the virtual (gateway) address.
	VIP netip.Addr
	// Master is the xTR with the higher priority, Backup the other.
	Master, Backup string
}

// Topology is the whole experiment's network for one test.
type Topology struct {
	Test Test
	// SitePrefix is the site's EID prefix (the LAN).
	SitePrefix netip.Prefix
	Hosts      []Host
	// XTRs are ITR1 and ITR2, in that order.
	XTRs   []XTR
	Groups []Group
	// MSMR is the Map-Server/Map-Resolver's address.
	MSMR    netip.Addr
	Remotes []Remote
	// Flows are the ping flows: USR1's first, then USR2's.
	Flows []traffic.Flow
	// MapTTL is the TTL the remote ETRs register their mappings with.
	MapTTL time.Duration
	// RLOCNet is the network the RLOCs are numbered from.
	RLOCNet netip.Prefix
}

// Paper returns the topology of test for RLOCs numbered in rlocNet, an
// IPv4 network of at least /27: the Map-Server/Map-Resolver takes host 1,
// ITR1 and ITR2 hosts 11 and 12, the remote xTRs hosts 21, 22, 23.
func Paper(test Test, rlocNet netip.Prefix) (*Topology, error) {
	if test != Test1 && test != Test2 {
		return nil, fmt.Errorf("%w: test %d (the paper has tests 1 and 2)", ErrInvalid, int(test))
	}
	if !rlocNet.IsValid() || !rlocNet.Addr().Is4() || rlocNet.Bits() > 27 {
		return nil, fmt.Errorf("%w: RLOC network %v must be IPv4 and at least a /27", ErrInvalid, rlocNet)
	}
	rlocNet = rlocNet.Masked()
	host := func(n byte) netip.Addr {
		a := rlocNet.Addr().As4()
		a[3] += n
		return netip.AddrFrom4(a)
	}
	site := netip.MustParsePrefix("192.0.2.0/24")
	vip1 := netip.MustParseAddr("192.0.2.1")
	vip2 := netip.MustParseAddr("192.0.2.2")
	t := &Topology{
		Test:       test,
		SitePrefix: site,
		XTRs: []XTR{
			{Name: ITR1, RLOC: host(11), LANAddr: netip.MustParseAddr("192.0.2.3"), Weight: 50},
			{Name: ITR2, RLOC: host(12), LANAddr: netip.MustParseAddr("192.0.2.4"), Weight: 50},
		},
		MSMR:    host(1),
		MapTTL:  MapTTL,
		RLOCNet: rlocNet,
	}
	switch test {
	case Test1:
		t.Groups = []Group{{VRID: 1, VIP: vip1, Master: ITR1, Backup: ITR2}}
		t.Hosts = []Host{
			{Name: USR1, Addr: netip.MustParseAddr("192.0.2.11"), Gateway: vip1, VRID: 1},
			{Name: USR2, Addr: netip.MustParseAddr("192.0.2.12"), Gateway: vip1, VRID: 1},
		}
	case Test2:
		t.Groups = []Group{
			{VRID: 1, VIP: vip1, Master: ITR1, Backup: ITR2},
			{VRID: 2, VIP: vip2, Master: ITR2, Backup: ITR1},
		}
		t.Hosts = []Host{
			{Name: USR1, Addr: netip.MustParseAddr("192.0.2.11"), Gateway: vip1, VRID: 1},
			{Name: USR2, Addr: netip.MustParseAddr("192.0.2.12"), Gateway: vip2, VRID: 2},
		}
	}
	for r := range Remotes {
		t.Remotes = append(t.Remotes, Remote{Name: fmt.Sprintf("RX%d", r+1), RLOC: host(byte(21 + r))})
	}
	for n := 1; n <= Destinations; n++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(n), 0}), 24)
		d := netip.AddrFrom4([4]byte{198, 18, byte(n), 1})
		r := &t.Remotes[(n-1)%Remotes]
		r.Prefixes = append(r.Prefixes, p)
		r.Dests = append(r.Dests, d)
		h := t.Hosts[0]
		if n > USR1Destinations {
			h = t.Hosts[1]
		}
		t.Flows = append(t.Flows, traffic.Flow{ID: uint16(n), Host: h.Name, Src: h.Addr, Dst: d})
	}
	return t, nil
}

// Host returns the host with the given name.
func (t *Topology) Host(name string) (Host, bool) {
	for _, h := range t.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// XTR returns the site xTR with the given name.
func (t *Topology) XTR(name string) (XTR, bool) {
	for _, x := range t.XTRs {
		if x.Name == name {
			return x, true
		}
	}
	return XTR{}, false
}

// Group returns the VRRP group with the given VRID.
func (t *Topology) Group(vrid uint8) (Group, bool) {
	for _, g := range t.Groups {
		if g.VRID == vrid {
			return g, true
		}
	}
	return Group{}, false
}

// GatewayOf returns the xTR that is the host's gateway while every router
// is up (the master of its group).
func (t *Topology) GatewayOf(host string) string {
	h, ok := t.Host(host)
	if !ok {
		return ""
	}
	g, ok := t.Group(h.VRID)
	if !ok {
		return ""
	}
	return g.Master
}

// DestPrefix returns the EID prefix of destination d and the remote xTR
// that owns it.
func (t *Topology) DestPrefix(d netip.Addr) (netip.Prefix, string, bool) {
	for _, r := range t.Remotes {
		for i, p := range r.Prefixes {
			if p.Contains(d) {
				return p, r.Name, i < len(r.Dests)
			}
		}
	}
	return netip.Prefix{}, "", false
}

// FlowsTo returns the flows whose destination is inside p.
func (t *Topology) FlowsTo(p netip.Prefix) []traffic.Flow {
	var out []traffic.Flow
	for _, f := range t.Flows {
		if p.Contains(f.Dst) {
			out = append(out, f)
		}
	}
	return out
}

// Priority returns the VRRP priority of router in group g.
func (g Group) Priority(router string) uint8 {
	if router == g.Master {
		return MasterPriority
	}
	return BackupPriority
}
