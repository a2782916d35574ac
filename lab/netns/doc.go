// Package netns is the plumbing of lispd's network-namespace lab: named
// network namespaces ("nodes"), veth links and bridges between them,
// addresses and routes, real processes started inside the namespaces, ping
// with per-sequence results, packet captures and keepalived VRRP.
//
// Everything is owned by a [Lab]. A lab has a short random name prefix
// ("lt" and five random characters) and every namespace it creates is
// persisted like `ip netns add` does, as /run/netns/<prefix>-<node>, so
// `ip netns exec <prefix>-<node> ...` works for debugging while a lab runs.
// [Lab.Close] stops every process, deletes every link and namespace and
// removes the lab's temporary directory, also after a partial failure, and
// may be called more than once. [CleanupStale] removes what crashed runs
// left behind, and only what their owner records (/run/lispd-netns) prove
// they created: each namespace is recorded, by identity and not only by
// name, as soon as it exists, and a namespace merely named like a lab's is
// never touched, nor is anything killed by name.
//
// # What lives where
//
// Links, addresses and routes are configured over netlink
// (github.com/vishvananda/netlink), never by running `ip`. A veth pair is
// created with each end directly in its node's namespace, so nothing a lab
// creates ever appears in the host's namespace, and interface names (eth0,
// eth1, ... unless chosen) only need to be unique within a node. Bridges
// live inside a node too; [Lab.AddSwitch] makes a node whose only job is to
// hold one bridge, which is how a LAN segment (routers and hosts on one
// Ethernet) is modelled.
//
// Processes are started with `ip netns exec`, which enters the namespace
// and remounts /sys for it before exec'ing the program (setns on a Go
// thread before fork is not reliable). Each process gets its own process
// group, its output goes to files in the lab's directory, and it is killed
// if the process that owns the lab dies (the lab forks every child from one
// dedicated OS thread with a parent-death signal). [Node.Do] runs Go code
// inside a namespace on a locked OS thread, for creating TUN devices and
// sockets from Go.
//
// # Failure injection
//
// [Iface.SetDown] is `ip link set dev X down`: the peer of a veth loses
// carrier, keepalived enters its FAULT state, routes through the interface
// are withdrawn. [Iface.SetUp] brings the interface back and re-installs the
// routes the lab added through it (the kernel does not), and nodes keep
// their IPv6 addresses across down and up (keep_addr_on_down), so a link can
// be failed and restored repeatedly.
//
// # Safety
//
// Only net.* sysctls are accepted by [Node.SetSysctl], and they are written
// from a thread inside the node's namespace, so nothing on the host changes.
// Use documentation and private address ranges inside labs. All of this
// needs root; [Supported] says why it cannot run, and [Require] turns that
// into a skip (or, with CI=true, a failure) in tests.
//
// The package builds on Linux only, apart from [Supported], the ping output
// parser and the keepalived configuration writer.
package netns
