package cachesync

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// PeerState is the state of the link to a peer.
type PeerState string

// Peer states.
const (
	// PeerIdle: not connected yet, nothing tried (or waiting for the peer
	// to dial, when it is the one that dials).
	PeerIdle PeerState = "idle"
	// PeerConnecting: dialing or handshaking.
	PeerConnecting PeerState = "connecting"
	// PeerConnected: a session is up (gossip: the member is alive).
	PeerConnected PeerState = "connected"
	// PeerBackoff: the last attempt failed or the session ended; waiting
	// before the next attempt.
	PeerBackoff PeerState = "backoff"
	// PeerDisconnected: the session ended and the peer dials us.
	PeerDisconnected PeerState = "disconnected"
	// PeerRefused: the peer failed authentication (another public key) or
	// the handshake (another mode) on the last attempt.
	PeerRefused PeerState = "refused"
	// PeerSuspect: gossip only, memberlist suspects the member has failed.
	PeerSuspect PeerState = "suspect"
	// PeerDead: gossip only, the member failed or left.
	PeerDead PeerState = "dead"
)

// PeerStatus is the view of one peer.
type PeerStatus struct {
	// Name is the configured name (gossip: the member's node name).
	Name string
	// Address is the peer's address.
	Address netip.AddrPort
	// PublicKey is the pinned public key (naive, smart), in config form.
	PublicKey string
	// Dials is true when this member dials the peer (its public key is
	// the smaller one); false when the peer dials.
	Dials bool
	// State is the state of the link.
	State PeerState
	// Since is when State was entered.
	Since time.Time
	// LastExchange is when the last frame was received from the peer.
	LastExchange time.Time
	// LastError says why the last session or attempt ended, if it did.
	LastError string
	// Connects counts the sessions established.
	Connects uint64
	// RecordsSent and RecordsReceived count mapping records.
	RecordsSent, RecordsReceived uint64
	// BytesSent and BytesReceived count frame bytes (gossip: direct
	// messages only; broadcasts go to memberlist-chosen members and are in
	// Stats).
	BytesSent, BytesReceived uint64
	// FramesSent and FramesReceived count frames.
	FramesSent, FramesReceived uint64
	// AuthFailures counts attempts where the peer presented another key.
	AuthFailures uint64
}

// Stats are a member's counters; each is read atomically, the set is not
// one snapshot.
type Stats struct {
	// Mode and Name are the member's.
	Mode Mode
	Name string
	// Origin is the member's origin ID (the low bits of its versions).
	Origin uint16
	// RefreshWindow and RoundInterval are the expiry policy's timings in
	// force.
	RefreshWindow, RoundInterval time.Duration
	// Peers is the number of peers (gossip: other members known), and
	// Connected how many are connected (gossip: alive).
	Peers, Connected int
	// RecordsSent and RecordsReceived count mapping records sent to and
	// received from peers (a naive whole-cache transfer counts every
	// record it holds).
	RecordsSent, RecordsReceived uint64
	// BytesSent and BytesReceived count frame bytes (payload, before TLS
	// or memberlist framing and encryption).
	BytesSent, BytesReceived uint64
	// WireBytesSent and WireBytesReceived count bytes on the sockets: TLS
	// records (naive, smart), or all memberlist traffic including
	// membership and failure detection (gossip).
	WireBytesSent, WireBytesReceived uint64
	// FramesSent and FramesReceived count frames.
	FramesSent, FramesReceived uint64
	// RecordsApplied counts received records inserted into the cache.
	RecordsApplied uint64
	// RecordsIgnored counts received records not newer than the cached
	// copy.
	RecordsIgnored uint64
	// RecordsExpired counts received records already expired on arrival
	// or refused by the cache (full of permanent entries).
	RecordsExpired uint64
	// Announced counts local changes (from Map-Replies) offered to peers.
	Announced uint64
	// DigestsReceived counts digest exchanges answered, and
	// BucketsDiffering the digest buckets found different in them.
	DigestsReceived, BucketsDiffering uint64
	// AuthFailures counts connections refused because the peer's key is
	// not pinned (or it presented none).
	AuthFailures uint64
	// HandshakeFailures counts connections that failed TLS or HELLO for
	// any reason (AuthFailures and HandshakeTimeouts included).
	HandshakeFailures uint64
	// HandshakeTimeouts counts incoming connections closed because their
	// TLS handshake did not end within HandshakeTimeout (idle or slow
	// clients).
	HandshakeTimeouts uint64
	// RefusedBusy counts incoming connections closed at once because
	// maxPendingHandshakes (64) connections were handshaking, and
	// RefusedSource because maxPendingPerSource (4) from the same source
	// (IPv4 address, IPv6 /64) were.
	RefusedBusy, RefusedSource uint64
	// FallbackDials counts attempts to dial a peer that should dial this
	// member (it had not connected, or its connection was refused).
	FallbackDials uint64
	// SessionsSuperseded counts sessions dropped because a session with
	// the same peer in the canonical direction (dialed by the member with
	// the smaller key) was up.
	SessionsSuperseded uint64
	// GossipKeyFailures counts gossip messages and streams that no key
	// in this member's keyring could decrypt: a member with another
	// gossip key (both that member and this one count them).
	GossipKeyFailures uint64
	// GossipMalformed counts gossip packets and streams memberlist
	// refused as not its protocol: not encrypted, too short, undecodable,
	// a bad checksum or label, an unknown type, a stream that sent
	// nothing valid in time.
	GossipMalformed uint64
	// MalformedFrames counts frames that closed their connection (or, in
	// gossip, were dropped) because they could not be decoded.
	MalformedFrames uint64
	// UnknownFrames counts frames of unknown types, skipped.
	UnknownFrames uint64
	// QueueOverflows counts peers whose send queue overflowed.
	QueueOverflows uint64
	// FeedResyncs counts map-cache change-feed overflows (each followed by
	// a digest exchange with every peer).
	FeedResyncs uint64
	// Refreshes counts refreshes this member asked the ITR for.
	Refreshes uint64
	// KeptForPeers counts expiry decisions that kept a record this member
	// did not use because a peer did (or will refresh it).
	KeptForPeers uint64
	// Probations counts expiry decisions that kept an unused record for
	// another round (at most two), in case a peer's usage report was on
	// its way.
	Probations uint64
	// ExpiredUnused counts expiry decisions that dropped an unused record
	// (locally; peers are not told).
	ExpiredUnused uint64
	// ExpiredStale counts records dropped because their refresh did not
	// arrive within a refresh window past their expiry.
	ExpiredStale uint64
	// InboxDrops counts gossip messages dropped because the member's inbox
	// was full (anti-entropy repairs what they carried).
	InboxDrops uint64
	// PeersDead counts peers declared dead: a session lost, silent for
	// DeadAfter or closed by CheckPeers (naive, smart), or memberlist's
	// verdict (gossip).
	PeersDead uint64
}

// counters are the atomic counters behind Stats.
type counters struct {
	recordsSent, recordsReceived    atomic.Uint64
	bytesSent, bytesReceived        atomic.Uint64
	wireSent, wireReceived          atomic.Uint64
	framesSent, framesReceived      atomic.Uint64
	applied, ignored, expired       atomic.Uint64
	announced                       atomic.Uint64
	digests, bucketsDiffering       atomic.Uint64
	authFailures, handshakeFailures atomic.Uint64
	malformed, unknownFrames        atomic.Uint64
	queueOverflows, feedResyncs     atomic.Uint64
	refreshes, keptForPeers         atomic.Uint64
	probations, expiredUnused       atomic.Uint64
	expiredStale, inboxDrops        atomic.Uint64
	peersDead                       atomic.Uint64
	handshakeTimeouts               atomic.Uint64
	refusedBusy, refusedSource      atomic.Uint64
	fallbackDials, superseded       atomic.Uint64
	gossipKeyFailures               atomic.Uint64
	gossipMalformed                 atomic.Uint64
}

// peerCounters are the counters of one peer.
type peerCounters struct {
	recordsSent, recordsReceived atomic.Uint64
	bytesSent, bytesReceived     atomic.Uint64
	framesSent, framesReceived   atomic.Uint64
	connects, authFailures       atomic.Uint64
	lastExchange                 atomic.Int64 // Unix ns
}

func (c *counters) fill(s *Stats) {
	s.RecordsSent = c.recordsSent.Load()
	s.RecordsReceived = c.recordsReceived.Load()
	s.BytesSent = c.bytesSent.Load()
	s.BytesReceived = c.bytesReceived.Load()
	s.WireBytesSent = c.wireSent.Load()
	s.WireBytesReceived = c.wireReceived.Load()
	s.FramesSent = c.framesSent.Load()
	s.FramesReceived = c.framesReceived.Load()
	s.RecordsApplied = c.applied.Load()
	s.RecordsIgnored = c.ignored.Load()
	s.RecordsExpired = c.expired.Load()
	s.Announced = c.announced.Load()
	s.DigestsReceived = c.digests.Load()
	s.BucketsDiffering = c.bucketsDiffering.Load()
	s.AuthFailures = c.authFailures.Load()
	s.HandshakeFailures = c.handshakeFailures.Load()
	s.MalformedFrames = c.malformed.Load()
	s.UnknownFrames = c.unknownFrames.Load()
	s.QueueOverflows = c.queueOverflows.Load()
	s.FeedResyncs = c.feedResyncs.Load()
	s.Refreshes = c.refreshes.Load()
	s.KeptForPeers = c.keptForPeers.Load()
	s.Probations = c.probations.Load()
	s.ExpiredUnused = c.expiredUnused.Load()
	s.ExpiredStale = c.expiredStale.Load()
	s.InboxDrops = c.inboxDrops.Load()
	s.PeersDead = c.peersDead.Load()
	s.HandshakeTimeouts = c.handshakeTimeouts.Load()
	s.RefusedBusy = c.refusedBusy.Load()
	s.RefusedSource = c.refusedSource.Load()
	s.FallbackDials = c.fallbackDials.Load()
	s.SessionsSuperseded = c.superseded.Load()
	s.GossipKeyFailures = c.gossipKeyFailures.Load()
	s.GossipMalformed = c.gossipMalformed.Load()
}

func (c *peerCounters) fill(s *PeerStatus) {
	s.RecordsSent = c.recordsSent.Load()
	s.RecordsReceived = c.recordsReceived.Load()
	s.BytesSent = c.bytesSent.Load()
	s.BytesReceived = c.bytesReceived.Load()
	s.FramesSent = c.framesSent.Load()
	s.FramesReceived = c.framesReceived.Load()
	s.Connects = c.connects.Load()
	s.AuthFailures = c.authFailures.Load()
	if t := c.lastExchange.Load(); t != 0 {
		s.LastExchange = time.Unix(0, t)
	}
}
