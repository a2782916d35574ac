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
// The expiry policy is a hook the synchronization set configures
// (SetRefreshIfUsedWithin): the map-cache's OnExpire keeps an expiring
// entry that was used within the window (Extend) while a Map-Request
// refreshes it, and the Map-Reply replaces it; with a window of 0 entries
// just expire. Refresh and Resolve let the synchronization set and the API
// ask for a mapping.
//
// A Solicit-Map-Request for a cached mapping is answered with an
// SMR-invoked Map-Request through the Map-Resolvers. With an RLOC-probe
// interval set, the RLOCs of recently used entries are probed (Map-Request
// with the P bit, directly to the RLOC); an RLOC that misses
// RLOCProbeMisses probes in a row is marked unreachable in every entry
// (traffic moves to the next locator) and a probe reply marks it reachable
// again.
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
// Map-Replies, remembers which ITRs asked for which prefixes (bounded), and
// when SetConfig changes the mapping of a prefix it re-registers and sends
// those ITRs an SMR. Its Decapsulator delivers only packets for the
// database's prefixes; SetConfig swaps its EID set.
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
