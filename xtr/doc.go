// Package xtr is the control logic of a LISP xTR: the Ingress Tunnel Router
// (ITR) and the Egress Tunnel Router (ETR) of RFC 9300 and RFC 9301, and the
// DataPlane that runs their packet path.
//
// The package does no socket I/O of its own. Control messages go out through
// a Sender (the shape of mapserver.Sender, so the daemon's UDP 4342 sockets
// serve every role) and come in through ITR.HandlePacket and
// ETR.HandlePacket; the packet path reads and writes a dataplane.Device (the
// EID side, a TUN) and dataplane.Conns (the RLOC side, UDP 4341), or their
// in-memory stand-ins.
//
// # ITR
//
// The ITR owns the map-cache (ITR.Cache, a *mapcache.Cache). For each packet
// read from the Device, the DataPlane's Encapsulator calls the ITR's
// decision (the dataplane.LookupFunc seam): a map-cache hit with a usable
// locator is encapsulated to the RLOC ChooseRLOC picks (lowest priority
// among the reachable, spread by weight with the flow hash, 255 never
// used); a negative entry's action is applied (natively forward through
// DataPlaneConfig.Native, or drop); a miss is counted and starts an
// Encapsulated Map-Request to the Map-Resolvers, unless one is outstanding
// for that destination. The miss policy drops the packet (MissDrop) or
// holds a few per destination, bounded in total, and sends them when the
// Map-Reply arrives (MissQueue).
//
// Map-Requests are rate-limited globally (golang.org/x/time/rate), one at a
// time per destination, retried with exponential backoff to the next
// Map-Resolver, and abandoned after the last retry (counted). Only a
// Map-Reply that carries the nonce of an outstanding request is accepted;
// others are counted as unsolicited (spoofing attempts). Its records that
// cover the EID asked for become entries with Source FromMapReply, Origin
// the replier's address and Expires now plus the Record TTL.
//
// What the ITR installs from the mapping system (Map-Replies and pub/sub
// Map-Notifies alike, itr_reply.go) is bounded, each refusal counted and
// logged: a locator that is unspecified, multicast, the limited broadcast,
// in 0.0.0.0/8, loopback or link-local (unless one of the ITR's own RLOCs
// is loopback or link-local too: a lab on one host) or one of the ITR's
// own RLOCs is skipped (locators_refused), and a record left with no
// locator is not installed (nor made negative); a record with locators
// must lie inside ITRConfig.EIDSpace, a negative one inside it or outside
// it entirely (records_refused_eid_space); with no EID space configured
// everything is admitted but a default route with locators
// (records_refused_default_route), which would capture every destination
// without a more specific entry.
//
// The expiry policy is a hook the synchronization set configures
// (SetRefreshIfUsedWithin): the map-cache's OnExpire keeps an expiring
// entry that was used within the window (Extend) while a Map-Request
// refreshes it, and the Map-Reply replaces it; with a window of 0 entries
// just expire. Refresh and Resolve let the synchronization set and the API
// ask for a mapping.
//
// A Solicit-Map-Request (S bit) is answered with an SMR-invoked
// Map-Request through the Map-Resolvers for each cached mapping it names.
// Deployed routers fill its fields differently (RFC 9301 section 6.1 says
// only that the EID-prefix is "copied from the SMR message"): lispd before
// 0.2 put the changed prefix in both the Source-EID and the EID-record,
// OOR puts its changed prefix in the Source-EID and the receiver's own EID
// in the EID-record (and drops SMRs whose EID-record is not one of its
// EIDs), lispers.net reads the EID-record. So the ITR looks at the
// Source-EID and every EID-record, skips those inside this xTR's own
// EID-prefixes (SetLocalEIDs), and refreshes the cached mappings covering
// the others; nonce 0 is accepted. See smr.go. With an RLOC-probe
// interval set, the RLOCs of recently used entries are probed (Map-Request
// with the P bit, directly to the RLOC); an RLOC that misses
// RLOCProbeMisses probes in a row is marked unreachable in every entry
// (traffic moves to the next locator) and a probe reply marks it reachable
// again. An unreachable RLOC is probed every round, used or not, until it
// answers or no entry holds it.
//
// Publish/subscribe (RFC 9437, see pubsub.go). With ITRConfig.Subscribe
// the ITR's Map-Requests (not its RLOC-probes) carry the N bit and its
// xTR-ID and site-ID (I bit). A Map-Server that takes the subscription
// confirms it with a Map-Notify carrying the request's nonce, which the ITR
// installs like a Map-Reply (Source FromPubSub) and remembers as a
// subscription to the record's prefix; later changes of overlapping
// mappings come as Map-Notifies (publications) that replace the entry or,
// with a Record TTL of 0, delete it, and a notice with no locators and
// action Drop/Auth-Failure says the Map-Server dropped the subscription.
// Map-Notifies must verify with the pub/sub key (PubSubUnauthenticated
// also takes lispers.net's unsigned ones) and carry a nonce newer than the
// subscription's (replays are dropped); each accepted one is acknowledged
// with a Map-Notify-Ack. A subscription whose entry was used is renewed
// every SubscribeRefresh, so that a restarted Map-Server learns it again,
// and one whose prefix left the map-cache is forgotten. ITR.Subscriptions
// lists them; ITR.OwnsNotify tells a daemon that receives the ITR's and the
// ETR's messages on one socket which Map-Notifies are the ITR's.
//
// # ETR
//
// The ETR holds the EID database (ETRConfig.Database), registers it with
// every Map-Server every RegisterInterval (60 s) with want-map-notify,
// retries sooner while unacknowledged, verifies each Map-Notify with the
// Map-Server's key, and answers an unsolicited one (not carrying the nonce
// of one of its Map-Registers) with a Map-Notify-Ack. The registration
// state with each Map-Server (ETR.Registrations) is what `lispctl etr show`
// displays. It answers Map-Requests for its EIDs (forwarded by a
// Map-Server in an ECM, or RLOC-probes sent directly) with authoritative
// Map-Replies, remembers which ITRs asked for which prefixes, and from which
// of their EIDs (bounded), and when SetConfig changes the mapping of a
// prefix it re-registers and sends those ITRs an SMR. The SMRs it sends
// carry the changed prefix as Source-EID and the receiver's EID (when
// known) as EID-record, the form every implementation above accepts, and
// go to the ITR's control port 4342 (not the ephemeral port its request
// came from, which may be closed). SolicitITRs queues SMRs to other ITRs
// (the failover code's remote ITRs).
//
// SetLocatorUsable withdraws a locator of the database (this xTR's own when
// its EID side is down or it is drained, a dead member's of the
// synchronization set): it stays in its place, registered and answered
// with priority 255 and the R bit clear, and its Locator-Status-Bit is 0.
// The locators of each mapping are ordered by address, as Map-Servers
// merge them, so that the bit ordinals agree everywhere. A probe reply in
// which the probed RLOC is itself withdrawn marks it unreachable at once. Its Decapsulator delivers only packets for the
// database's prefixes; SetConfig swaps its EID set.
//
// What it decapsulates (decapfilter.go). The Decapsulator drops, counted,
// packets whose inner source is inside the database's prefixes (a site's
// own EIDs never arrive from the RLOC network: such packets are spoofed)
// and LISP-crypto packets (RFC 8061, the K bits set: lispd has no keys).
// With ETRConfig.DecapFilter it decapsulates only from the RLOCs the ETR
// knows: its database's locators and its own, configured prefixes, the
// locators of the Map-Server's merged registrations (FollowMapServer),
// the ITRs whose Map-Requests and RLOC-probes it answered and those its
// synchronization set's peers saw (both bounded and aged out), and, in an
// xTR whose DataPlane also has the ITR, an RLOC of the map-cache entry for
// the inner source. All but the last are one immutable set that each
// change replaces copy-on-write, swapped atomically into the
// Decapsulator: one lock-free, allocation-free lookup per packet.
//
// # Packet path and performance
//
// DataPlane.Run starts RoutineEncap (Device to Conns through the ITR) and
// one RoutineDecap per Conn (Conn to Device through the ETR's
// Decapsulator). Both use dataplane.Batch, so the steady state — a
// map-cache hit on the ITR, a delivered packet on the ETR — allocates
// nothing per packet (TestAllocs checks it, BenchmarkITREncap and
// BenchmarkETRDecap measure it). Writes to each side take that side's
// mutex, because the held-packet release path writes too.
//
// Locator-Status-Bits (RFC 9300 section 10). When the DataPlane has both
// an ITR and an ETR, every packet it encapsulates carries the L bit and the
// status of its own site's locators: bit k (from the least significant)
// stands for the locator of ordinal k of the database mapping that holds
// the inner source EID, the order of the locators in the registered record
// (which is the order Map-Servers and Map-Replies list them in), and is 1
// when that locator is usable (reachable, priority not 255). A packet
// carries 32 bits, only 8 with an instance-ID; a source outside the
// database gets no L bit. The bits come precomputed with the database and
// the loop memoizes the last prefix, so this costs no allocation.
//
// Receiving, an xTR that is also an ITR reads the bits of each delivered
// packet with the L bit against its map-cache entry for the inner source:
// a bit at 0 for a locator it considers reachable marks it unreachable
// (its flows move to the next locator, counted as lsb_locators_down), a
// bit back at 1 marks it reachable again (lsb_locators_up) unless
// RLOC-probing found it down. The bits are believed only from one of the
// mapping's own RLOCs: the outer source address must be an RLOC of that
// entry, so that a host able to send to the ETR cannot switch another
// site's locators off (outer addresses can still be spoofed; the check
// bounds what a spoofer can do to the sites it can impersonate). A packet
// without the L bit changes nothing. The check is lock-free and
// allocation-free while the bits agree with the map-cache.
//
// The decapsulating loops also keep the ETR's table of remote ITRs
// (ETR.RemoteITRs): the outer source, instance-ID and an inner source EID
// of delivered packets, stamped once a second at most per remote ITR,
// bounded (DefaultMaxRemoteITRs, the one seen longest ago goes) and merged
// with what the synchronization set's peers saw (ETR.MergeRemoteITRs), so
// that failover knows whom to send SMRs to.
//
// # Time and goroutines
//
// Clocks are injectable (ITRConfig.Clock, ETRConfig.Clock). Timers run on a
// ticker of TickInterval that evaluates deadlines against the clock, so
// tests with a fake clock call the same code. The long-lived goroutines are
// named in comments where they start: RoutineITRControl and
// RoutineMapCacheSweeper (ITR.Run), RoutineETRControl (ETR.Run),
// RoutineEncap and RoutineDecap (DataPlane.Run). Each stops when its
// context is done, and Run returns only after they have.
package xtr
