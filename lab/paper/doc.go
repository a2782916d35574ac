// Package paper reproduces the experiment of section 4 and Table 1 of the
// paper "Map-Cache Synchronization of LISP ITRs" and shows lispd's failover
// healing in both directions, before and after: a site whose two xTRs,
// ITR1 and ITR2, share gateway duty by VRRP and take ingress traffic 50:50,
// ITR1 failing mid-run, and every lost ping counted by where it was lost,
// with the synchronization set off, naive, smart or gossip, and lispd's
// [failover] healing off or on. It is what `lisplab paper` runs.
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
// anything for two ping intervals, then fails ITR1, waits for VRRP to move
// the gateway address to ITR2, lets traffic go on for Options.AfterSwitch
// (10 s by default: long enough to see the healing, or its absence), and
// measures.
//
// # Failures and healing
//
// Options.Failures chooses how ITR1 fails:
//
//   - lan: ITR1's EID-side (LAN) interface goes down, the paper's failure.
//     lispd on ITR1 lives on and sees it (netns: netlink on
//     failover.watch-interfaces = lan0; embedded: daemon.Options.EIDLinkUp).
//   - crash: a whole-router crash. lispd on ITR1 is killed (embedded: its
//     daemon's context is cancelled, so its sockets close as on SIGKILL;
//     netns: SIGKILL) and so is its VRRP (embedded: the model's instances
//     fall silent; netns: keepalived is SIGKILLed too), since the lab's
//     keepalived does not track lispd. The LAN interface stays up; the
//     survivors learn of the crash only from the sync set and from VRRP's
//     Master_Down_Interval. Replies the remote ETRs still send to ITR1's
//     RLOC are counted where they arrive (embedded: a socket bound to
//     ITR1's LISP data port in lispd's place; netns: a sniffer on ITR1's
//     RLOC interface).
//   - drain: planned. The lab calls Drain on ITR1's API, as lispctl drain
//     does; lispd withdraws its RLOC, waits until the ingress has moved
//     away, and writes its VRRP track file (failover.vrrp-track-file), on
//     which keepalived's track_file (embedded: lab/vrrp's model polling the
//     same file) puts ITR1 in FAULT with a priority-0 advertisement: ITR2
//     takes over after its skew time. The failure time is when Drain was
//     called.
//
// Options.Healing writes lispd.toml's [failover] enabled = true (on) or
// false (off, lispd's behaviour before the healing) into every xTR's
// config, remote ones included; both runs each case twice, side by side.
// A drain is part of the healing: it runs with healing on only.
//
// With Options.Tests and Options.Variants empty, each failure kind runs
// its default plan (Options.Plan, PlanText): lan in Tests 1 and 2 with
// sync off and smart (Table 1's four rows), crash and drain in Test 1 with
// smart sync (a crash is healed only by the sync set); with healing both,
// 11 runs of about 14 s, under 3 minutes embedded.
//
// VRRP uses the timers of the documented keepalived configuration
// (deploy/keepalived: VRRPv3, advert_int 0.1, Options.VRRPAdvert) in both
// modes: a priority-100 backup takes over 361 ms after the master's last
// advertisement (the paper's keepalived defaults took 3.61 s).
//
// # Publish/subscribe
//
// Options.PubSub (lisplab paper --pubsub) shows that publish/subscribe
// (RFC 9437) carries the failover to the remote ITRs by itself. Every run
// then configures the Map-Server with [map-server.pubsub] and every xTR
// with [itr] subscribe = true and the same pubsub-key, so that each ITR
// subscribes to the mappings it asks for (the remote ITRs to the site's
// prefix, on their first return packet). The xTRs also ignore
// Locator-Status-Bits (itr.ignore-locator-status-bits) and their
// failover sends no SMRs (failover.solicit-map-requests = false): the two
// ways a remote ITR learns of a withdrawn RLOC without pub/sub; and the
// site's xTRs ask the Map-Server to answer for them (etr.proxy-reply),
// since an ETR that answered a remote ITR's Map-Request itself sends it an
// SMR on any change of its database (RFC 9301 section 6.1), the failover's
// withdrawal included. When ITR1
// fails and the survivor (or ITR1 itself, on a lan failure or a drain)
// re-registers the site's mapping with ITR1's RLOC at priority 255, the
// Map-Server's publication of it is all that can move the remote ITRs.
//
// The remote xTRs are measured as the site's are, through their API: their
// counters at the start of traffic, just before the failure and at the
// end (RunResult.Remotes), and, from just before the failure until each
// shows it, their map-caches every RemotePoll, for the time from the
// failure to ITR1's RLOC withdrawn there (the install time of the mapping
// that showed it, when installed since the previous reading). With the healing on, a pub/sub
// run also checks that every remote ITR installed a published mapping
// after the failure (itr_pubsub_notifies_installed) and ends with ITR1's
// RLOC withdrawn; in every pub/sub run, that no remote ITR received an
// SMR, sent an SMR-invoked Map-Request or marked a locator down from
// Locator-Status-Bits; with the healing off, that nothing withdrew ITR1's
// RLOC at the remote ITRs (the survivor never re-registers, so nothing is
// published, and the return path stays broken as before).
// RunResult.PubSubSummary and WritePubSub report it.
//
// # Two ways to run
//
// Embedded (the default): the routers are lispd daemons (package daemon)
// in this process, on 127.x.y.0/24 with real UDP and TCP sockets; their EID
// sides are in-memory devices attached to lab/lan's model of the LAN (and
// of the destinations, which answer pings); VRRP is lab/vrrp's model.
//
// Netns (Options.Netns, root): a namespace per router and host (package
// lab/netns), real lispd processes with TUN devices, keepalived, pings sent
// from the hosts' namespaces. The namespaces are removed at the end, on
// error and when the context is cancelled. A drain needs keepalived to
// follow lispd's track file, which lab/netns does not render yet: netns
// drain runs fail with ErrUnsupported until it does.
//
// # What is measured, and how
//
// Every echo request goes into a traffic.Ledger, which records what was
// observed of it: handed to a gateway (embedded: by the LAN model; netns:
// seen entering the xTR's TUN), dropped at a dead link or a crashed
// router, arrived at the destination (the one-way count), its reply leaving
// an ETR or arriving at a dead RLOC, its reply received. Each request sent
// after the failure and lost gets one category (RunResult.Losses): lost in
// the VRRP switchover gap, dropped by a live ITR (a cache miss, checked
// against ITR2's own miss-drop counter), answered with a reply that went to
// the failed router's RLOC (the return path), or other. Per run the result
// also has the time from the failure to the sending of the last request
// lost on the return path (RunResult.LastReturnLoss) and, per flow, the
// return-path losses among requests sent after the last VRRP switchover
// (RunResult.ReturnAfterSwitch, MaxReturnAfterSwitch). The map-caches and
// counters are read through each xTR's local API, as lispctl reads them:
// at the start of traffic, just before the failure, and at the end (a
// crashed ITR1 is not read at the end). Each record of a map-cache just
// before the failure is explained: its source (Map-Reply or sync) and, for
// Map-Reply records, whether the xTR had carried a packet of the record's
// flows from the LAN before learning it.
//
// Each run ends with checks of the relations that must hold (sync off:
// ITR2's misses equal the flows it had not seen; sync on: no cache-miss
// losses and identical mappings for the flows in use on both xTRs; healing
// on: at most 1 return-path loss per flow after the switchover after a lan
// failure or a crash, and no loss at all after a drain), all computed from
// measured values; Run returns ErrChecks when one fails.
package paper
