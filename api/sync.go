package api

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"
)

// SyncBackend is implemented by daemons with a synchronization set; the
// Server answers GET /v1/sync/status and GET /v1/sync/peers through it
// (ErrUnavailable for a Backend without it, or when the set is off). It is
// separate from Backend so that existing Backends keep compiling.
type SyncBackend interface {
	// SyncStatus reports the member's mode, counters and peers.
	SyncStatus(ctx context.Context) (SyncStatus, error)
}

// A Client is a SyncBackend too.
var _ SyncBackend = (*Client)(nil)

// The modes of SyncStatus.Mode.
const (
	SyncModeNaive  = "naive"
	SyncModeSmart  = "smart"
	SyncModeGossip = "gossip"
)

// The states of SyncPeer.State.
const (
	SyncPeerIdle         = "idle"         // not connected yet (or waiting for the peer to dial)
	SyncPeerConnecting   = "connecting"   // dialing or handshaking
	SyncPeerConnected    = "connected"    // a session is up (gossip: the member is alive)
	SyncPeerBackoff      = "backoff"      // the last attempt or session failed; retrying later
	SyncPeerDisconnected = "disconnected" // the session ended; the peer dials
	SyncPeerRefused      = "refused"      // the peer failed authentication or the handshake
	SyncPeerDead         = "dead"         // gossip: the member failed or left
)

// SyncStatus is this ITR's membership in its synchronization set.
type SyncStatus struct {
	// Mode is SyncModeNaive, SyncModeSmart or SyncModeGossip.
	Mode string `json:"mode"`
	// Name is this member's name.
	Name string `json:"name"`
	// Listen is the address the member listens on.
	Listen netip.AddrPort `json:"listen"`
	// PublicKey is the member's public key (naive, smart), in config form.
	PublicKey string `json:"public_key,omitempty"`
	// Origin is the member's origin ID (the low 12 bits of the versions
	// it stamps).
	Origin uint16 `json:"origin"`
	// PeersKnown is the number of peers (gossip: other members seen), and
	// PeersConnected how many are connected (gossip: alive).
	PeersKnown     int `json:"peers_known"`
	PeersConnected int `json:"peers_connected"`
	// RefreshWindowSeconds and RoundIntervalSeconds are the policy's
	// timings.
	RefreshWindowSeconds float64 `json:"refresh_window_seconds"`
	RoundIntervalSeconds float64 `json:"round_interval_seconds"`
	// Counters are the member's counters.
	Counters SyncCounters `json:"counters"`
	// Peers are the peers, sorted by name.
	Peers []SyncPeer `json:"peers"`
}

// SyncCounters are a member's counters (the same values the metrics
// endpoint exports as lispd_sync_*).
type SyncCounters struct {
	// RecordsSent and RecordsReceived count mapping records exchanged.
	RecordsSent     uint64 `json:"records_sent"`
	RecordsReceived uint64 `json:"records_received"`
	// BytesSent and BytesReceived count frame bytes (payload).
	BytesSent     uint64 `json:"bytes_sent"`
	BytesReceived uint64 `json:"bytes_received"`
	// WireBytesSent and WireBytesReceived count socket bytes (TLS records,
	// or all memberlist traffic).
	WireBytesSent     uint64 `json:"wire_bytes_sent"`
	WireBytesReceived uint64 `json:"wire_bytes_received"`
	// FramesSent and FramesReceived count frames.
	FramesSent     uint64 `json:"frames_sent"`
	FramesReceived uint64 `json:"frames_received"`
	// RecordsApplied counts received records inserted into the map-cache;
	// RecordsIgnored those not newer than the cached copy; RecordsExpired
	// those expired on arrival (or refused by a full cache).
	RecordsApplied uint64 `json:"records_applied"`
	RecordsIgnored uint64 `json:"records_ignored"`
	RecordsExpired uint64 `json:"records_expired"`
	// Announced counts local changes offered to the peers.
	Announced uint64 `json:"announced"`
	// DigestsReceived counts digest exchanges answered; BucketsDiffering
	// the digest buckets found different.
	DigestsReceived  uint64 `json:"digests_received"`
	BucketsDiffering uint64 `json:"buckets_differing"`
	// AuthFailures counts peers refused for their key; HandshakeFailures
	// all failed handshakes.
	AuthFailures      uint64 `json:"auth_failures"`
	HandshakeFailures uint64 `json:"handshake_failures"`
	// MalformedFrames counts frames that closed their connection;
	// UnknownFrames frames of unknown types, skipped.
	MalformedFrames uint64 `json:"malformed_frames"`
	UnknownFrames   uint64 `json:"unknown_frames"`
	// QueueOverflows counts peers whose send queue overflowed;
	// FeedResyncs map-cache change-feed overflows; InboxDrops gossip
	// messages dropped.
	QueueOverflows uint64 `json:"queue_overflows"`
	FeedResyncs    uint64 `json:"feed_resyncs"`
	InboxDrops     uint64 `json:"inbox_drops"`
	// Refreshes counts expiring mappings this member refreshed;
	// KeptForPeers those it kept because a peer used them; Probations
	// those kept one more round; ExpiredUnused those dropped unused;
	// ExpiredStale those dropped because no refresh arrived.
	Refreshes     uint64 `json:"refreshes"`
	KeptForPeers  uint64 `json:"kept_for_peers"`
	Probations    uint64 `json:"probations"`
	ExpiredUnused uint64 `json:"expired_unused"`
	ExpiredStale  uint64 `json:"expired_stale"`
}

// SyncPeer is one peer of the synchronization set.
type SyncPeer struct {
	// Name is the peer's configured name (gossip: its member name).
	Name string `json:"name"`
	// Address is the peer's address.
	Address netip.AddrPort `json:"address"`
	// PublicKey is the pinned public key (naive, smart).
	PublicKey string `json:"public_key,omitempty"`
	// Dials is true when this member dials the peer.
	Dials bool `json:"dials"`
	// State is one of the SyncPeer* states.
	State string `json:"state"`
	// Since is when the peer entered State.
	Since time.Time `json:"since,omitzero"`
	// LastExchange is when a frame was last received from the peer;
	// absent if never.
	LastExchange time.Time `json:"last_exchange,omitzero"`
	// LastError says why the last session or attempt ended.
	LastError string `json:"last_error,omitempty"`
	// Connects counts the sessions established.
	Connects uint64 `json:"connects"`
	// RecordsSent, RecordsReceived, BytesSent, BytesReceived,
	// FramesSent and FramesReceived count the exchanges with the peer
	// (gossip: direct messages only).
	RecordsSent     uint64 `json:"records_sent"`
	RecordsReceived uint64 `json:"records_received"`
	BytesSent       uint64 `json:"bytes_sent"`
	BytesReceived   uint64 `json:"bytes_received"`
	FramesSent      uint64 `json:"frames_sent"`
	FramesReceived  uint64 `json:"frames_received"`
	// AuthFailures counts attempts where the peer proved another key.
	AuthFailures uint64 `json:"auth_failures"`
}

// SyncStatus returns the synchronization set's status.
func (c *Client) SyncStatus(ctx context.Context) (SyncStatus, error) {
	var st SyncStatus
	err := c.do(ctx, http.MethodGet, "/v1/sync/status", nil, &st)
	return st, err
}

// SyncPeers returns the synchronization set's peers.
func (c *Client) SyncPeers(ctx context.Context) ([]SyncPeer, error) {
	var ps []SyncPeer
	err := c.do(ctx, http.MethodGet, "/v1/sync/peers", nil, &ps)
	return ps, err
}

func (s *Server) syncBackendStatus(r *http.Request) (SyncStatus, error) {
	b, ok := s.backend.(SyncBackend)
	if !ok {
		return SyncStatus{}, WithKind(ErrUnavailable, errors.New("this daemon has no synchronization set"))
	}
	st, err := b.SyncStatus(r.Context())
	if err != nil {
		return SyncStatus{}, err
	}
	if st.Peers == nil {
		st.Peers = []SyncPeer{}
	}
	return st, nil
}

func (s *Server) syncStatus(r *http.Request) (any, error) {
	return s.syncBackendStatus(r)
}

func (s *Server) syncPeers(r *http.Request) (any, error) {
	st, err := s.syncBackendStatus(r)
	if err != nil {
		return nil, err
	}
	return st.Peers, nil
}
