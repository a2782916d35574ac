// Package cachesync is lispd's synchronization set: the redundant ITRs of a
// site (sharing load behind VRRP) keep their map-caches in step, so that
// when one fails the others already hold every mapping it was using and no
// flow sees a cache miss. It implements the paper's naive and smart modes
// over mutually authenticated TLS, and its "future work", a gossip mode on
// hashicorp/memberlist.
//
// A Member (one per ITR) watches its map-cache's change feed, sends what the
// ITR learns from Map-Replies to its peers, inserts what the peers send
// (Source FromSync), and decides, as the cache's expiry hook (OnExpire),
// what happens to records whose TTL ends.
//
// # Modes
//
// Naive (the paper's): any change to the local cache from a Map-Reply sends
// the whole cache to every peer (coalesced: one transfer at a time per
// peer, repeated if more changes came meanwhile). Receivers install every
// record, equal versions included, with the sender's remaining TTL: that is
// what "TTLs are reset" means here. Because every member's remaining TTL was
// itself taken from the origin's, all members keep converging on the
// origin's expiry (within the transfer delay), so a reset never lengthens a
// record's life. Expiry is local: a record used here within the refresh
// window is refreshed, others are dropped.
//
// Smart (the paper's): only the change is sent. When a record's TTL ends, a
// member that used it within the refresh window refreshes it with a
// Map-Request and the result goes to the peers; a member that did not use it
// drops it locally without telling the others. See "The expiry race".
//
// Gossip: membership and failure detection are memberlist's (SWIM); each
// change is a memberlist broadcast (one record per message); a member that
// applies a broadcast record newer than its copy broadcasts it in turn
// (epidemic spread); memberlist's push/pull exchange carries the digest
// (anti-entropy); memberlist's keyring encrypts and authenticates
// everything. Usage reports go directly to every live member. The expiry
// policy is smart's.
//
// # Invariants, and how they hold
//
// No loops: only changes with Source FromMapReply or FromPubSub (the ITR's
// own Map-Replies and refreshes, and the mappings a Map-Server published to
// it) are announced; records from peers are inserted with Source
// FromSync and never announced again. In gossip, a relayed record is passed
// on only by members for which it was news.
//
// Newer wins: every record carries a version (mapcache.Entry.Version) from a
// hybrid logical clock (VersionClock): max(local time in µs, highest version
// seen + 1) in the top 52 bits, the origin member's ID in the low 12. The
// map-cache refuses an older version (ErrStale), so every member ends with
// the newest version whatever order updates arrive in. The ITR must stamp
// its Map-Replies with the same clock (Member.Versions).
//
// Expiry agreement: a record travels with the time remaining before its
// expiry, measured when it is encoded; the receiver sets Expires = its own
// now + remaining. Clock offsets between hosts do not matter; the transit
// delay (milliseconds on a LAN) is the disagreement, well within the one
// second the set promises. A gossip broadcast waiting in memberlist's queue
// has its remaining time refreshed each time it is sent.
//
// Catch-up: on every (re)connection, and every anti-entropy interval, each
// side sends a DIGEST: its shareable records hashed by key into 2^k buckets
// (about 8 records per bucket), each bucket the XOR of hash(key, version).
// The receiver answers the differing buckets with KEYS (key hash, version);
// the digest's sender then sends only the records the other lacks or holds
// at an older version. A member that missed one change receives that record,
// a digest and one bucket's keys, not the cache (TestRestartCatchUp: about
// 750 bytes instead of 13 KB for a 300-record cache). A feed overflow
// (mapcache Resync) triggers the same exchange with every peer.
//
// # The expiry race
//
// The paper's promise is that no flow loses a packet on failover, so a
// member must not lose a record that a peer is still using — including when
// its own copy expires while the peer's refresh is on its way. Members
// therefore share usage: each round (RoundInterval, 5 s by default) a member
// sends its peers the hashes of the keys it used since the last round, with
// how long ago (12 bytes a key); a connecting peer gets the whole window's.
// The expiry hook (OnExpire) then decides with the whole set's usage:
//
//   - Used by any member within the window (reports of members that have
//     since failed count too): the record is kept on every member
//     (Extend(RefreshGrace)) and refreshed by exactly one, chosen without
//     messages: the lowest-ranked (public key, or gossip name) connected
//     member that used it, or, if only failed members did, the
//     lowest-ranked connected member. The refreshed record replaces the
//     others' copies as an ordinary change. A member still holding the
//     expired record one grace later refreshes it itself, so a refresher
//     that died or got no answer costs a grace period, not the record.
//   - Not known to be used, while peers are connected and the record
//     expired less than two rounds ago: kept a round at a time (probation),
//     since a usage report covering the last moments may be in flight or one
//     round late (a busy host). All
//     members make the same decision, so they still agree on expiry.
//   - Otherwise dropped, locally only.
//
// A record whose refresh has not arrived a whole window past its expiry is
// dropped. TestSmartRefreshRace checks that a member that never used a
// record never misses it while its peer, which does, refreshes it once;
// TestSmartFailover that the survivor of a failed member refreshes what
// the failed member was using; TestSmartRefresherFails the fallback.
//
// # Transport (naive, smart)
//
// One TCP connection per pair of members, TLS 1.3 only, both sides
// presenting a self-signed certificate of their Ed25519 key and checking the
// other's key against the pinned one (VerifyPeerCertificate; CAs play no
// part). A wrong or missing key is refused, logged and counted
// (Stats.AuthFailures, per peer too). The member with the smaller public key
// dials; reconnection uses exponential backoff with jitter. After TLS, both
// send HELLO (mode, origin, timings, name): a peer in another mode is told
// why (BYE) and refused. Each round carries at least a keepalive; a
// connection silent for three rounds is closed.
//
// The listener is open to anyone, so connections that have not
// authenticated are bounded: 64 handshaking in all, 4 per source (IPv4
// address, IPv6 /64), each for at most HandshakeTimeout; the others are
// closed at once. Every refusal is counted by reason (Stats.RefusedBusy,
// RefusedSource, HandshakeTimeouts, AuthFailures) and logged at most once
// per 10 s. One source cannot keep the peers out; many sources can fill
// the listener, so a member also dials a peer that should dial it (the
// fallback): when the peer has not connected for FallbackDialAfter, and at
// once when a connection from the peer's address was refused.
// When sessions in both directions come up, both members keep the one the
// smaller key dialed, whatever order they see them in; the other is
// closed with a BYE saying so (Stats.SessionsSuperseded), and is not a
// failure (TestBothDial). TestSyncListenerFlood holds 500 idle connections
// against the member that does not dial, from one and from many sources,
// while its peer restarts.
//
// Frames are length-prefixed and versioned (see frame.go for the layout and
// record.go for the record encoding). A frame is decoded and validated
// entirely — every record checked as the map-cache would check it — before
// anything of it is applied, and a frame's records are inserted in one
// InsertBatch, which readers see at once: never half an update. A frame
// that is malformed, of another version or larger than MaxFrameSize closes
// the connection with a logged reason and is counted. Frames of unknown
// types are skipped, so that later versions can add types. FuzzFrame fuzzes
// the reader and decoder.
//
// Each peer has a send queue: control frames in order, records coalesced by
// key (latest version), a flag for a naive whole-cache transfer. A peer that
// falls too far behind has its record queue replaced by a digest exchange
// (QueueLimit), or is disconnected if control frames pile up.
//
// # Concurrency
//
// Member.Run starts RoutineFeed (the change feed; in Run's goroutine),
// RoutineRounds (usage reports, keepalives, periodic digests), and in naive
// and smart modes RoutineAccept and one RoutineDial per peer (a fallback
// for the peers that dial this member), and per session
// RoutineSessionRead and RoutineSessionWrite; in
// gossip mode RoutineGossipWorker (memberlist's callbacks only queue work
// for it) and bounded direct sends. All stop when Run's context ends; Run
// returns after they have. Lock order: usageTable.mu, then peer.mu, then
// session.mu; Member.gmu before peer.mu. No lock is held while writing to a
// socket or calling the map-cache.
//
// # Operations
//
// Stats and Peers are the operator's view (lispctl sync status, lispctl sync
// peers, and the lispd_sync_* metrics): per peer the state, last exchange,
// records and bytes sent and received; per member the records applied or
// ignored, digests, refused peers, malformed frames and the expiry
// decisions. Bytes are counted as frame payload and as wire bytes (TLS
// records; for gossip, all of memberlist's traffic, membership included),
// so that the modes can be compared (lisplab bench sync).
//
// Whatever anyone can send is counted, and logged at most once per 10 s
// per kind (with the number of lines held back): refused connections, and
// in gossip mode the traffic memberlist refuses. memberlist reports that
// only as a log line per packet, so its log lines are classified
// (classifyMemberlistLine): a message no key of the keyring decrypts
// (Stats.GossipKeyFailures: a member with another gossip key; the joining
// member counts it too, and says why it cannot join) or one that is not
// memberlist's protocol at all (Stats.GossipMalformed).
package cachesync
