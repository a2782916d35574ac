package dataplane

import "net/netip"

// DefaultSocketBuffer is the default SO_RCVBUF/SO_SNDBUF of a UDPConn (the
// value wireguard-go uses). As root (CAP_NET_ADMIN) it is forced beyond
// net.core.rmem_max/wmem_max.
const DefaultSocketBuffer = 7 << 20

// UDPConfig configures ListenUDP.
type UDPConfig struct {
	// Addr is the local address: an IPv4 or IPv6 address (unspecified for
	// all addresses of the family) and port (0 for an ephemeral one). An
	// IPv6 socket is IPv6-only.
	Addr netip.AddrPort
	// SocketBuffer is the SO_RCVBUF/SO_SNDBUF size; 0 means
	// DefaultSocketBuffer.
	SocketBuffer int
	// BatchSize is the most datagrams per system call; 0 means
	// DefaultBatchSize.
	BatchSize int
	// DisableGSO turns UDP generic segmentation offload off even where the
	// kernel has it.
	DisableGSO bool
	// AllowFragmentation lets the kernel fragment outer packets larger than
	// the path MTU (and clears DF on IPv4). By default DF is set and such
	// sends fail with EMSGSIZE, as RFC 9300 section 7.1 recommends (the
	// Encapsulator enforces the configured path MTU before that).
	AllowFragmentation bool
}

// DefaultTUNMTU is the default MTU of a TUN device: a 1500-byte RLOC path
// minus the IPv6 encapsulation overhead, so that hosts learn the effective
// MTU from the kernel before packets reach the Encapsulator.
const DefaultTUNMTU = DefaultPathMTU - overhead6

// TUNConfig configures CreateTUN.
type TUNConfig struct {
	// Name is the interface name; it may hold a %d that the kernel fills
	// in. "" means "lisp%d".
	Name string
	// MTU is the interface MTU; 0 means DefaultTUNMTU.
	MTU int
	// Addrs are assigned to the interface (IPv6 ones without duplicate
	// address detection, so they are usable at once).
	Addrs []netip.Prefix
	// Routes are added through the interface (link scope).
	Routes []netip.Prefix
	// RouteTable, when not 0, is the routing table Routes go into instead
	// of the main one, with a policy rule "not fwmark FwMark lookup
	// RouteTable" (priority RulePriority, one per address family of
	// Routes): packets marked with FwMark (those of a NativeConn) skip the
	// TUN routes and follow the main table. Close removes the rules and
	// routes.
	RouteTable int
	// FwMark is the firewall mark that exempts packets from RouteTable;
	// it must not be 0 when RouteTable is set.
	FwMark uint32
}

// RulePriority is the priority of the policy rules CreateTUN installs for
// TUNConfig.RouteTable: before the main table's rule (32766).
const RulePriority = 32000

// NativeConfig configures OpenNative.
type NativeConfig struct {
	// FwMark is the SO_MARK of the packets sent (TUNConfig.FwMark), so the
	// kernel routes them by the main table, past the TUN routes. 0 means
	// unmarked.
	FwMark uint32
}
