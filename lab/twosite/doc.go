// Package twosite is the lab's first topology: the smallest complete LISP
// deployment. A Map-Server/Map-Resolver ("ms") and two LISP sites, each an
// xTR (ITR and ETR) with one host behind it:
//
//	hostA ── xtrA ─┐                ┌─ xtrB ── hostB
//	 10.1.0.10     │   RLOC network │      10.2.0.10
//	               └────── ms ──────┘
//
// Site A owns the EID-prefix 10.1.0.0/24 and site B 10.2.0.0/24 (Plan holds
// every address). Each xTR registers its site's prefix with the Map-Server
// (HMAC-SHA-256 for site A, HMAC-SHA-1 for site B, so both algorithms are
// exercised); a packet from one host to the other misses the ITR's
// map-cache once, is dropped (or held, with the queue miss policy) while
// the Map-Request goes through the Map-Resolver to the remote ETR, and
// later packets are encapsulated in UDP 4341 to the remote RLOC.
//
// # Two ways to run it
//
// StartEmbedded runs the three daemons in this process with no root: their
// control and data sockets are real UDP sockets on 127.0.n.1 (xtrA),
// 127.0.n.2 (xtrB) and 127.0.n.100 (ms), with n chosen free per run so that
// parallel tests do not collide (all of 127/8 is local on Linux); each
// host is the other end of an in-memory device pair (dataplane.MemDevicePair)
// whose first end is the xTR's EID-side device, with a small host stack
// (Host) that answers pings and sends and receives ICMP echoes and UDP. Real
// UDP sockets for the RLOC side, rather than an in-memory network, put the
// daemon's production socket path (recvmmsg/sendmmsg, GSO, the outer
// TOS/TTL control messages) under the embedded tests too, at no cost in
// privileges.
//
// NewNetns builds the same topology in network namespaces (lab/netns): one
// namespace per router and host, veth links, a "core" switch (a bridge)
// for the RLOC network 198.19.0.0/24, and real lispd processes with TUN
// devices; the hosts route the remote site through their xTR and run the
// system's ping. It needs root. Everything it creates is removed by Close.
//
// The netns topology is also the stage of `lisplab bench dataplane`
// (lab/benchdata), which swaps the xTRs' lispd for a plain relay to
// measure the machine's limit.
package twosite
