package cachesync

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Mode is how a synchronization set shares its members' map-caches.
type Mode uint8

// The modes.
const (
	// ModeOff: no synchronization.
	ModeOff Mode = iota
	// ModeNaive: every change learned from a Map-Reply sends the whole
	// cache to every peer (the paper's naive mode).
	ModeNaive
	// ModeSmart: only the change is sent; usage is shared so that expiring
	// records still in use anywhere are refreshed once and kept everywhere
	// (the paper's smart mode).
	ModeSmart
	// ModeGossip: changes spread epidemically over hashicorp/memberlist,
	// which also provides membership, failure detection, push/pull
	// anti-entropy and encryption (the paper's future work).
	ModeGossip
)

var modeNames = [...]string{ModeOff: "off", ModeNaive: "naive", ModeSmart: "smart", ModeGossip: "gossip"}

// String returns the mode's config name.
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode-%d", uint8(m))
}

// valid reports whether m is a mode a HELLO may carry.
func (m Mode) valid() bool { return m >= ModeNaive && m <= ModeGossip }

// ParseMode parses a mode's config name: "off", "naive", "smart" or
// "gossip".
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if strings.EqualFold(s, n) {
			return Mode(i), nil
		}
	}
	return ModeOff, fmt.Errorf("%w: mode %q: want off, naive, smart or gossip", ErrInvalidConfig, s)
}

// MarshalText implements encoding.TextMarshaler.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseMode.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Refresher is what the ITR offers the synchronization set: Refresh sends a
// Map-Request for the prefix, whose Map-Reply the ITR inserts into the
// map-cache as usual (and the set then shares). It must not block: it is
// called from the map-cache's expiry hook.
type Refresher interface {
	Refresh(iid uint32, prefix netip.Prefix)
}

// RefresherFunc adapts a function to Refresher.
type RefresherFunc func(iid uint32, prefix netip.Prefix)

// Refresh implements Refresher.
func (f RefresherFunc) Refresh(iid uint32, prefix netip.Prefix) { f(iid, prefix) }

// Peer is a configured peer of a naive or smart set.
type Peer struct {
	// Name is how this member's logs, API and metrics call the peer.
	Name string
	// Address is the peer's sync listener (TCP).
	Address netip.AddrPort
	// PublicKey is the peer's pinned Ed25519 public key: a connection
	// from or to the peer that proves another key is refused.
	PublicKey ed25519.PublicKey
}

// GossipConfig tunes gossip mode. Zero durations take memberlist's LAN
// defaults (DefaultLANConfig), except PushPullInterval, which defaults to
// Config.AntiEntropyInterval.
type GossipConfig struct {
	// Seeds are members to join at start (any live member will do); none
	// for the first member of a set.
	Seeds []netip.AddrPort
	// SecretKey encrypts and authenticates all gossip (AES-GCM, 16, 24 or
	// 32 bytes for AES-128, -192 or -256). Required: members without it
	// cannot read or inject anything.
	SecretKey []byte
	// ProbeInterval and ProbeTimeout drive failure detection.
	ProbeInterval, ProbeTimeout time.Duration
	// GossipInterval is how often broadcasts are sent to GossipNodes random
	// members.
	GossipInterval time.Duration
	// GossipNodes is how many members each gossip round reaches (0: 3).
	GossipNodes int
	// PushPullInterval is the period of memberlist's full state exchange
	// with a random member, which carries the digest (anti-entropy).
	PushPullInterval time.Duration
	// SuspicionMult scales how long a member is suspected before it is
	// declared dead (0: memberlist's default).
	SuspicionMult int
	// RetransmitMult scales how many times a broadcast is retransmitted
	// (0: memberlist's default).
	RetransmitMult int
}

// Defaults for zero Config fields.
const (
	// DefaultRefreshWindow: a record used within this window when its TTL
	// ends is refreshed (the paper's "last minute").
	DefaultRefreshWindow = time.Minute
	// DefaultRoundInterval is the period of usage reports and keepalives.
	DefaultRoundInterval = 5 * time.Second
	// DefaultAntiEntropyInterval is the period of the digest exchange.
	DefaultAntiEntropyInterval = 30 * time.Second
	// DefaultRefreshGrace is how long an expired record is kept while its
	// refresh is on its way, before the hook is consulted again.
	DefaultRefreshGrace = 3 * time.Second
	// DefaultReconnectMin and DefaultReconnectMax bound the reconnection
	// backoff.
	DefaultReconnectMin = 100 * time.Millisecond
	DefaultReconnectMax = 10 * time.Second
	// DefaultHandshakeTimeout bounds a TLS handshake and the HELLO exchange.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultQueueLimit bounds the records queued for one peer; beyond it
	// the queue is dropped and the peer is brought up to date by a digest
	// exchange instead.
	DefaultQueueLimit = 1 << 20
	// DefaultPort is the sync port used when an address has none.
	DefaultPort = 4343
)

// Config configures a Member.
type Config struct {
	// Mode is naive, smart or gossip (ModeOff is refused by New).
	Mode Mode
	// Name names this member in logs and to its peers (gossip: its unique
	// memberlist node name). Required.
	Name string
	// Listen is the address the member listens on: TCP for naive and
	// smart; TCP and UDP (memberlist) for gossip. Port 0 picks a free port
	// (see Member.Addr).
	Listen netip.AddrPort
	// Listener, if set, is used instead of listening on Listen (naive and
	// smart): tests open it first to learn the port. Run closes it.
	Listener net.Listener
	// PrivateKey is this member's Ed25519 key (naive and smart).
	PrivateKey ed25519.PrivateKey
	// Peers are the other members (naive and smart): every pair of members
	// is connected, the member with the smaller public key dialing.
	Peers []Peer
	// Gossip tunes gossip mode.
	Gossip GossipConfig
	// RefreshWindow: a record used (by any member, in smart and gossip
	// mode) within this window when its TTL ends is refreshed and kept.
	RefreshWindow time.Duration
	// RoundInterval is the period of usage reports (smart, gossip) and
	// keepalives (naive, smart); a connection silent for three rounds is
	// closed.
	RoundInterval time.Duration
	// AntiEntropyInterval is the period of the digest exchange.
	AntiEntropyInterval time.Duration
	// HeartbeatInterval is how often a session with nothing else to send
	// sends a PING (naive, smart) and memberlist's probe interval
	// (gossip); 0 means DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// DeadAfter is how long a peer may stay silent before it is declared
	// dead: its session is closed and OnPeer told (naive, smart); gossip
	// tunes memberlist's failure detector to about the same; 0 means
	// DefaultDeadAfter. At least twice HeartbeatInterval.
	DeadAfter time.Duration
	// OnPeer, if set, is told when a peer sends its MemberStatus (Alive)
	// and when a peer is declared dead. It is called from the member's
	// goroutines, one call at a time per peer, and must not block.
	OnPeer func(PeerEvent)
	// RefreshGrace is how long an expired record in use is kept while its
	// refresh is on its way; a member that keeps a record for a peer's
	// refresh refreshes it itself when no newer version arrived within
	// this grace.
	RefreshGrace time.Duration
	// MaxFrameSize bounds a frame, in bytes (0: DefaultMaxFrameSize;
	// at least MinMaxFrameSize). A larger frame closes the connection.
	MaxFrameSize int
	// ReconnectMin and ReconnectMax bound the exponential reconnection
	// backoff (with jitter).
	ReconnectMin, ReconnectMax time.Duration
	// HandshakeTimeout bounds a TLS handshake and the HELLO exchange.
	HandshakeTimeout time.Duration
	// FallbackDialAfter: a peer with the smaller public key dials this
	// member; if it has not connected for this long (after Run starts or
	// a session ends), this member dials it instead, and at once when its
	// listener refused a connection from the peer's address (too many
	// handshakes pending). 0 means twice ReconnectMax.
	FallbackDialAfter time.Duration
	// QueueLimit bounds the records queued for one peer.
	QueueLimit int
	// Refresher refreshes expiring records (the ITR). Optional: without it
	// the member keeps records in use for a peer's refresh but never
	// refreshes one itself.
	Refresher Refresher
	// Versions stamps the versions of local changes; the ITR must use the
	// same clock for the versions of the Map-Replies it inserts. Nil: New
	// makes one with OriginID(Name) and the cache clock.
	Versions *VersionClock
	// Logger receives the member's logs (nil: discarded).
	Logger *slog.Logger
}

// withDefaults returns c with zero fields defaulted, or an error wrapping
// ErrInvalidConfig.
func (c Config) withDefaults() (Config, error) {
	bad := func(format string, args ...any) (Config, error) {
		return c, fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if !c.Mode.valid() {
		return bad("mode %v: want naive, smart or gossip", c.Mode)
	}
	if c.Name == "" || len(c.Name) > maxNameLen {
		return bad("name must be 1..%d bytes", maxNameLen)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.RefreshWindow, DefaultRefreshWindow)
	def(&c.RoundInterval, DefaultRoundInterval)
	def(&c.AntiEntropyInterval, DefaultAntiEntropyInterval)
	def(&c.RefreshGrace, DefaultRefreshGrace)
	def(&c.ReconnectMin, DefaultReconnectMin)
	def(&c.ReconnectMax, DefaultReconnectMax)
	def(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	def(&c.DeadAfter, DefaultDeadAfter)
	if c.DeadAfter < 2*c.HeartbeatInterval {
		return bad("dead-after %v is shorter than two heartbeat intervals (%v)", c.DeadAfter, c.HeartbeatInterval)
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	def(&c.FallbackDialAfter, 2*c.ReconnectMax)
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.MaxFrameSize < MinMaxFrameSize || c.MaxFrameSize > 1<<30 {
		return bad("max frame size %d: want %d..%d", c.MaxFrameSize, MinMaxFrameSize, 1<<30)
	}
	if c.QueueLimit <= 0 {
		c.QueueLimit = DefaultQueueLimit
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Listener == nil && !c.Listen.IsValid() {
		return bad("no listen address")
	}
	switch c.Mode {
	case ModeNaive, ModeSmart:
		if len(c.PrivateKey) != ed25519.PrivateKeySize {
			return bad("mode %v needs an Ed25519 private key", c.Mode)
		}
		if len(c.Peers) == 0 {
			return bad("mode %v needs at least one peer", c.Mode)
		}
		pub := PublicKeyOf(c.PrivateKey)
		names := map[string]bool{}
		keys := map[string]bool{string(pub): true}
		for i, p := range c.Peers {
			switch {
			case p.Name == "" || len(p.Name) > maxNameLen:
				return bad("peer %d: name must be 1..%d bytes", i, maxNameLen)
			case names[p.Name]:
				return bad("peer %q listed twice", p.Name)
			case !p.Address.IsValid() || p.Address.Port() == 0:
				return bad("peer %q: address %v needs an IP and a port", p.Name, p.Address)
			case len(p.PublicKey) != ed25519.PublicKeySize:
				return bad("peer %q: no valid public key", p.Name)
			case keys[string(p.PublicKey)]:
				return bad("peer %q: public key is this member's or another peer's", p.Name)
			}
			names[p.Name] = true
			keys[string(p.PublicKey)] = true
		}
	case ModeGossip:
		switch len(c.Gossip.SecretKey) {
		case 16, 24, 32:
		default:
			return bad("gossip needs a secret key of 16, 24 or 32 bytes, got %d", len(c.Gossip.SecretKey))
		}
		if c.Listener != nil {
			return bad("gossip mode listens itself; Listener is for naive and smart")
		}
	}
	return c, nil
}
