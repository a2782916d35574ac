// Package mapserver is lispd's Map-Server (MS) registration database and
// Map-Resolver (MR), the mapping-system side of the LISP control plane
// (RFC 9301 sections 5.6-5.8 and 8.2-8.4).
//
// The package is protocol logic only: the daemon owns the UDP sockets and
// hands each datagram received on port 4342 to Server.HandlePacket; every
// datagram the server emits goes out through the Sender it was given. Run
// drives the timers (registration expiry, Map-Notify retransmission).
//
// # Map-Server
//
// Sites (SetSites) list the EID-prefixes their ETRs may register, the key
// that authenticates them, and whether they accept more-specific prefixes
// and proxy replies. A Map-Register is accepted when every record lies in
// one site's prefixes (the most specific configured prefix that contains the
// record decides: it must equal the record, or accept more-specifics) and
// its authentication data, checked over the bytes as received, matches that
// site's key, Key ID and algorithm; full-length and truncated authentication
// data are both accepted (package wire). Registrations are kept per
// EID-prefix and registering xTR (its xTR-ID when the I bit is set, else its
// source address), expire when not refreshed within the registration
// timeout (or the Record TTL when the T bit asks for it), and are withdrawn
// by a Record TTL of 0. The site's RegistrationPolicy says whether a
// Map-Register replaces the other xTRs' registrations of its prefixes or is
// merged with them (policy.go; by default an xTR-ID-less register replaces
// the other xTR-ID-less ones, so a renumbered ETR does not stay registered
// at its old address). A Map-Register already superseded by a later one of
// the same xTR is refused as a replay (replay.go). New registrations beyond
// a site's MaxPrefixes or MaxRegistrations, or the server's
// MaxRegistrations, are refused. A Map-Register with the M bit is
// acknowledged with a Map-Notify when all of it was accepted. When the
// merged RLOC-set of a prefix changes, the other xTRs that registered it get
// an unsolicited Map-Notify, retransmitted until an authenticated
// Map-Notify-Ack with its nonce arrives; an xTR that leaves several in a row
// unacknowledged gets no more until it acknowledges or registers again.
// With Config.StateFile the registrations survive a restart (persist.go).
//
// Map-Requests for a registered EID are answered by proxy (a
// non-authoritative Map-Reply to the ITR-RLOC) when an ETR set the P bit and
// the site allows it, and otherwise forwarded in an ECM to a registered ETR.
// Requests for unregistered EIDs get a negative Map-Reply whose prefix is
// the largest that holds the EID and no known prefix (see negative.go); the
// action and TTL follow RFC 9301 section 8.3.
//
// # Publish/subscribe
//
// With Config.PubSub (RFC 9437), a Map-Request whose record has the N bit
// and that carries an xTR-ID (I bit) subscribes its xTR to the mapping: the
// Map-Server answers with a Map-Notify (nonce of the request, signed with
// the pre-shared pub/sub key) instead of the proxy Map-Reply, and publishes
// every later change of a registered prefix that covers or lies in the
// subscribed one with a Map-Notify (nonce plus one), retransmitted until
// acknowledged; see pubsub.go for the state, its bounds and the rules that
// keep a forged request from moving or removing a subscription.
//
// # Map-Resolver
//
// An Encapsulated Map-Request from an ITR is handed to the local Map-Server
// when it serves the EID, forwarded to a configured remote Map-Server
// otherwise, and answered with a negative Map-Reply when nobody serves it
// (RFC 9301 section 8.4).
//
// # Concurrency and performance
//
// HandlePacket is safe to call from several goroutines. The request path
// reads the configuration and the registrations through one atomic pointer
// to immutable data (bart tables replaced copy-on-write), counts with
// atomics and encodes into pooled buffers: it takes no lock and does not log.
// Map-Registers take Server.regMu; the unsolicited Map-Notify table and the
// subscriptions have their own mutexes, taken after regMu when both are
// needed. A subscribing Map-Request takes the subscriptions' mutex. Nothing is sent while a
// lock is held.
package mapserver
