// Package hostile is lispd's black-box hostile-input suite: it runs the
// real lispd binary as separate processes on loopback, plays the attacker
// from its own UDP and TCP sockets, and checks that each hostile input is
// refused, counted (through the API's counters, as `lispctl status` shows
// them), and logged where lispd promises to log, while lispd keeps
// serving legitimate traffic. It runs in CI with `go test ./...`; the
// cases are those of issue 13.
//
//	test                              attack                                            what must hold
//	TestMalformed                     ~800 truncated, bit-flipped and random control     no crash; mapserver_malformed_*, itr_/etr_malformed
//	                                  datagrams at a Map-Server, ~650 at an xTR, and     and dataplane_decap_drop_* move; nothing registered
//	                                  ~250 at the xTR's data port                        or installed; warnings rate-limited; a legitimate
//	                                                                                     Map-Request is answered afterwards
//	TestFloodOfRegistrations          one site registers 50,000 /32s                     refused beyond max-prefixes
//	                                                                                     (mapserver_register_refused_limit_site_prefixes),
//	                                                                                     logged; RSS growth bounded; the site refreshes and
//	                                                                                     another site registers and is served
//	TestReplayAndRenumbering          byte-identical copy of a superseded Map-Register   refused (mapserver_register_replays), no Map-Notify,
//	                                  (with and without xTR-ID, from the attacker's      current mapping stays; a retransmission of the
//	                                  address and the ETR's own); an ETR without xTR-ID  latest is accepted; the renumbered ETR replaces
//	                                  registering from a new address                     the old one at once (mapserver_registrations_replaced)
//	TestRestartKeepsRegistrations     SIGTERM and SIGKILL of a Map-Server with           the first Map-Request after the restart is answered,
//	                                  map-server.state-file; corrupt and crafted state   lifetimes kept; a bad file is logged and the
//	                                  files (checksum recomputed)                        Map-Server starts empty and serves
//	TestITRTrust                      a fake Map-Resolver answers the ITR's own          refused and counted (itr_records_refused_*,
//	                                  Map-Requests: 0.0.0.0/0, locators 127.0.0.1, its   itr_locators_refused, itr_map_reply_records_ignored,
//	                                  own RLOC, link-local, broadcast, 0/8, multicast;   itr_map_replies_unsolicited), never in the
//	                                  outside itr.eid-space; another EID; a wrong nonce  map-cache; good locators and replies installed
//	TestDecapFilter                   LISP data from an unknown RLOC, with an inner      dropped and counted (dataplane_decap_drop_*), none
//	                                  source in the site's EIDs, with K bits; then with  delivered to the site's socket on the TUN; known
//	                                  etr.decap-filter turned off by a reload            and gleaned RLOCs delivered
//	TestSyncListenerSlowClients       500 idle TCP connections (one source, then 125)    the restarted peer is back within 10 s;
//	                                  held on a smart-mode member's sync listener while  sync_refused_source, sync_refused_busy,
//	                                  its peer restarts                                  sync_fallback_dials, sync_handshake_timeouts; logged
//	TestGossipGarbageAndWrongKey      a member with another gossip-key; garbage UDP      the member stays out; sync_gossip_key_failures on
//	                                  datagrams and TCP streams at the gossip port       both ends, sync_gossip_malformed; logged
//	                                                                                     (rate-limited); the set still spreads mappings
//
// # What it needs
//
// Linux. The Map-Server cases run as any user. The itr and etr roles of
// the lispd binary create a TUN device, which needs root (CAP_NET_ADMIN)
// and /dev/net/tun: without them the xTR cases skip and say so. CI runs as
// root.
//
// The binary is built once per run from this source tree into a
// temporary directory (labkit.BuildLispd), unless $HOSTILE_LISPD names
// one to attack instead:
//
//	go test ./lab/hostile                          # build and attack this tree's lispd
//	HOSTILE_LISPD=/usr/sbin/lispd go test -v ./lab/hostile
//
// With -v each case logs what it measured (datagrams sent and counters
// moved, memory, reconnection times).
//
// # Where it sends
//
// Only to loopback addresses it uses itself. Case n lives in 127.66.n.0/24
// (Linux routes all of 127/8 to lo): lispd processes at .1 to .3, a fake
// Map-Resolver or a silent Map-Server at .9, legitimate ITRs and ETRs from
// .20, attackers from .66, slow clients from .99. The synchronization
// set's second member listens on 127.0.0.1 (a port found free), the
// source its own connections get on lo. The EIDs come from 198.18.0.0/15
// (RFC 2544) and live on the TUN devices (hst*) of the xTRs: packets that
// must enter a TUN are sent through a socket bound to that device
// (DeviceSender, SO_BINDTODEVICE), and each ETR's EID prefix is on its TUN
// so that whatever it decapsulates stays on this host. Mutated messages
// that would make lispd answer outside the case's subnet (a flipped
// ITR-RLOC) are left out (Contained). Locators in TEST-NET ranges
// (192.0.2.0/24, 198.51.100.0/24) appear in mappings that are installed but
// never used: no packet follows them (miss-policy drop, no RLOC-probing).
//
// # Cleanup
//
// Every lispd is a child (Lispd) that its test stops when it ends
// (SIGTERM, SIGKILL after 5 s, and a wait for the exit), and that the
// kernel kills if the test binary dies first (Pdeathsig). The TUN devices
// and their routes go with the process. Configs, keys, API sockets and
// state files are in the tests' temporary directories, sockets are closed
// by the tests, and TestMain removes the built binary.
//
// # Readiness
//
// lispd's API answers before its data plane and synchronization set are
// up (either may still fail and end the process), so a Lispd is up when
// the API answers and lispd logged its "lispd started" line: the configs
// log at info level.
package hostile
