// Package paper reproduces the experiment of section 4 and Table 1 of the
// paper "Map-Cache Synchronization of LISP ITRs": a site whose two xTRs,
// ITR1 and ITR2, share gateway duty by VRRP and take ingress traffic 50:50,
// ITR1 failing mid-run, and ITR2's map-cache misses counted with the
// synchronization set off, naive, smart and gossip. It is what
// `lisplab paper` runs.
//
// # The experiment
//
// The topology is lab/topo's: hosts USR1 and USR2 on the site's LAN, a
// Map-Server/Map-Resolver, three remote xTRs owning 30 destination EIDs
// (one /24 each, one RLOC each, registered with the paper's 10-minute TTL).
// USR1 pings 20 destinations and USR2 the other 10, each flow every
// Options.PingInterval. Test 1 has one VRRP group (ITR1 master, both hosts
// behind it); Test 2 two (ITR1 is USR1's gateway, ITR2 USR2's). Each run
// warms up until every flow has had a reply and no xTR has learned
// anything for two ping intervals, then shuts ITR1's LAN interface down
// (the paper's failure), waits for VRRP to move the gateway address to
// ITR2, lets traffic go on for Options.AfterSwitch, and measures.
//
// # Two ways to run
//
// Embedded (the default): the routers are lispd daemons (package daemon)
// in this process, on 127.x.y.0/24 with real UDP and TCP sockets; their EID
// sides are in-memory devices attached to lab/lan's model of the LAN (and
// of the destinations, which answer pings); VRRP is lab/vrrp's model with
// keepalived's timers, scaled by Options.VRRPScale.
//
// Netns (Options.Netns, root): a namespace per router and host (package
// lab/netns), real lispd processes with TUN devices, keepalived with its
// default timers, pings sent from the hosts' namespaces, and the failure
// by setting ITR1's LAN interface down. The namespaces are removed at the
// end, on error and when the context is cancelled.
//
// # What is measured, and how
//
// Every echo request goes into a traffic.Ledger, which records what was
// observed of it: handed to a gateway (embedded: by the LAN model; netns:
// seen entering the xTR's TUN), dropped at a dead link, arrived at the
// destination (the one-way count), its reply leaving an ETR, its reply
// received. Each lost request gets one category from that: lost in the
// VRRP switchover gap, dropped by a live ITR (a cache miss, checked against
// ITR2's own miss-drop counter), or answered with a reply that went to the
// failed router's RLOC. The map-caches and counters are read through each
// xTR's local API, as lispctl reads them: at the start of traffic, just
// before the failure, and at the end. Each record of a map-cache just
// before the failure is explained: its source (Map-Reply or sync) and,
// for Map-Reply records, whether the xTR had carried a packet of the
// record's flows from the LAN before learning it.
//
// Each run ends with checks of the relations that must hold (sync off:
// ITR2's misses equal the flows it had not seen; sync on: no cache-miss
// losses and identical mappings for the flows in use on both xTRs), all
// computed from measured values; Run returns ErrChecks when one fails.
package paper
