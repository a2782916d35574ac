package config

import (
	"encoding/base64"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"
)

// This file holds the [sync] section: the synchronization set of ITRs
// (package cachesync).

// DefaultSyncPort is the TCP (and, in gossip mode, UDP) port of the
// synchronization set, used when an address has none.
const DefaultSyncPort = 4343

// The synchronization modes of sync.mode.
const (
	SyncOff    = "off"
	SyncNaive  = "naive"
	SyncSmart  = "smart"
	SyncGossip = "gossip"
)

// Bounds of the [sync] keys.
const (
	minSyncFrameSize = 64 << 10
	maxSyncFrameSize = 1 << 30
	maxSyncNameLen   = 255
)

// Sync is the [sync] section: the synchronization set, the redundant ITRs of
// a site whose map-caches are kept in step so that when one fails the
// others already hold every mapping it was using. All of its keys need a
// restart.
type Sync struct {
	Mode                string           `toml:"mode" default:"'off'" reload:"restart" doc:"How the map-caches of the set are kept in step: \"off\"; \"naive\" (each mapping learned from a Map-Reply sends the whole cache to every peer); \"smart\" (only the change is sent, and a mapping in use anywhere is refreshed by one member and kept by all when its TTL ends); \"gossip\" (the changes spread epidemically over hashicorp/memberlist, for many ITRs and large caches). Needs the itr role."`
	Name                string           `toml:"name" default:"''" reload:"restart" doc:"This member's name in logs, in its peers' views and, in gossip mode, its unique member name; empty means the host name."`
	Listen              netip.AddrPort   `toml:"listen" default:"'0.0.0.0:4343'" port:"4343" reload:"restart" doc:"Address (ip or ip:port, port 4343 when omitted) where this member listens for its peers: TCP in naive and smart modes, TCP and UDP in gossip mode."`
	PrivateKey          string           `toml:"private-key" default:"''" reload:"restart" doc:"Absolute path of this member's Ed25519 private key (PEM, readable by its owner only), made by \"lispctl sync keygen\", which prints the public key to put in the peers' [[sync.peer]] tables. Required in naive and smart modes."`
	Peers               []SyncPeer       `toml:"peer" reload:"restart" doc:"The other members of the set in naive and smart modes: one [[sync.peer]] table each. Every pair of members is connected (TLS 1.3, each side pinning the other's public key)."`
	Seeds               []netip.AddrPort `toml:"seeds" default:"[]" port:"4343" reload:"restart" doc:"Gossip mode: members to join at start (ip or ip:port, port 4343 when omitted); any live member will do. Empty for the first member."`
	GossipKey           Secret           `toml:"gossip-key" default:"''" reload:"restart" doc:"Gossip mode: the key that encrypts and authenticates all gossip (AES-GCM), the base64 of 16, 24 or 32 random bytes (e.g. \"openssl rand -base64 32\"), the same on every member. Required in gossip mode."`
	RefreshWindow       time.Duration    `toml:"refresh-window" default:"'1m'" reload:"restart" doc:"A mapping that some member used within this window when its TTL ends is refreshed with a Map-Request and kept (the paper's \"last minute\"); an unused one is dropped."`
	RoundInterval       time.Duration    `toml:"round-interval" default:"'5s'" reload:"restart" doc:"Period of the usage reports (smart, gossip) and keepalives (naive, smart); a connection silent for three rounds is closed. Shorter than refresh-window."`
	AntiEntropyInterval time.Duration    `toml:"anti-entropy-interval" default:"'30s'" reload:"restart" doc:"Period of the digest comparison that repairs anything a member missed (it also runs whenever a peer connects). At least round-interval."`
	MaxFrameSize        int              `toml:"max-frame-size" default:"16777216" reload:"restart" doc:"Largest frame, in bytes, a member sends or accepts (naive and smart modes): a larger one closes the connection. 65536..1073741824; the same on every member."`
}

// SyncPeer is one [[sync.peer]] table.
type SyncPeer struct {
	Name      string         `toml:"name" required:"true" doc:"The peer's name in logs, lispctl sync peers and the metrics; unique."`
	Address   netip.AddrPort `toml:"address" required:"true" port:"4343" doc:"The peer's sync listener (ip or ip:port, port 4343 when omitted)."`
	PublicKey string         `toml:"public-key" required:"true" doc:"The peer's Ed25519 public key, as \"lispctl sync keygen\" printed it on the peer (44 characters of base64). A peer that proves another key is refused."`
}

// SyncEnabled reports whether the config has a synchronization set.
func (c *Config) SyncEnabled() bool { return c.Sync != nil && c.Sync.Mode != SyncOff }

// validateSync checks the [sync] section.
func validateSync(c *Config, d *decoder) {
	s := c.Sync
	if s == nil {
		return
	}
	switch s.Mode {
	case SyncOff:
		return
	case SyncNaive, SyncSmart, SyncGossip:
	default:
		d.errorf("sync.mode", "sync.mode", strconv.Quote(s.Mode), "unknown mode: want off, naive, smart or gossip")
		return
	}
	if len(c.Daemon.Roles) > 0 && !c.HasRole(RoleITR) {
		d.errorf("sync.mode", "sync.mode", strconv.Quote(s.Mode),
			"a synchronization set is made of ITRs: add \"itr\" to daemon.roles or set mode = \"off\"")
	}
	if len(s.Name) > maxSyncNameLen {
		d.errorf("sync.name", "sync.name", strconv.Quote(s.Name), "longer than %d bytes", maxSyncNameLen)
	}
	if s.Listen.Port() == 0 {
		d.errorf("sync.listen", "sync.listen", strconv.Quote(s.Listen.String()), "needs a port other than 0")
	}
	positive(d, "sync.refresh-window", s.RefreshWindow)
	positive(d, "sync.round-interval", s.RoundInterval)
	if s.RoundInterval > 0 && s.RefreshWindow > 0 && s.RoundInterval >= s.RefreshWindow {
		d.errorf("sync.round-interval", "sync.round-interval", strconv.Quote(s.RoundInterval.String()),
			"must be shorter than sync.refresh-window (%v): usage reports must arrive within the window", s.RefreshWindow)
	}
	if s.AntiEntropyInterval < s.RoundInterval {
		d.errorf("sync.anti-entropy-interval", "sync.anti-entropy-interval", strconv.Quote(s.AntiEntropyInterval.String()),
			"must be at least sync.round-interval (%v)", s.RoundInterval)
	}
	if n := s.MaxFrameSize; n < minSyncFrameSize || n > maxSyncFrameSize {
		d.errorf("sync.max-frame-size", "sync.max-frame-size", strconv.Itoa(n), "out of range %d..%d", minSyncFrameSize, maxSyncFrameSize)
	}
	if s.Mode == SyncGossip {
		validateSyncGossip(s, d)
		return
	}
	if s.PrivateKey == "" {
		d.errorf("sync.private-key", "sync", "", "required in %s mode: make a key with \"lispctl sync keygen\"", s.Mode)
	} else if !filepath.IsAbs(s.PrivateKey) {
		d.errorf("sync.private-key", "sync.private-key", strconv.Quote(s.PrivateKey), "must be an absolute path")
	}
	if len(s.Seeds) > 0 {
		d.errorf("sync.seeds", "sync.seeds", "", "is for gossip mode; list the peers as [[sync.peer]] tables")
	}
	if s.GossipKey != "" {
		d.errorf("sync.gossip-key", "sync.gossip-key", "", "is for gossip mode; naive and smart authenticate with key pairs")
	}
	if len(s.Peers) == 0 {
		d.errorf("sync.peer", "sync", "", "%s mode needs at least one [[sync.peer]]", s.Mode)
	}
	names := map[string]int{}
	addrs := map[netip.AddrPort]int{}
	keys := map[string]int{}
	for i, p := range s.Peers {
		path := indexPath("sync.peer", i)
		if p.Name == "" || len(p.Name) > maxSyncNameLen {
			d.errorf(path+".name", path+".name", strconv.Quote(p.Name), "must be 1..%d bytes", maxSyncNameLen)
		} else if j, dup := names[p.Name]; dup {
			d.errorf(path+".name", path+".name", strconv.Quote(p.Name), "duplicate peer name (first used by sync.peer[%d]%s)", j, onLine(d, indexPath("sync.peer", j)+".name"))
		} else {
			names[p.Name] = i
		}
		if a := p.Address; a.Addr().IsUnspecified() || a.Port() == 0 || a.Addr().IsMulticast() {
			d.errorf(path+".address", path+".address", strconv.Quote(a.String()), "must be a unicast address with a port other than 0")
		} else if j, dup := addrs[a]; dup {
			d.errorf(path+".address", path+".address", strconv.Quote(a.String()), "duplicate peer address (first used by sync.peer[%d])", j)
		} else {
			addrs[a] = i
		}
		b, err := base64.StdEncoding.DecodeString(p.PublicKey)
		switch {
		case err != nil || len(b) != 32:
			d.errorf(path+".public-key", path+".public-key", strconv.Quote(p.PublicKey),
				"must be an Ed25519 public key: 44 characters of base64, as \"lispctl sync keygen\" prints it")
		default:
			if j, dup := keys[string(b)]; dup {
				d.errorf(path+".public-key", path+".public-key", strconv.Quote(p.PublicKey), "same key as sync.peer[%d]: each member has its own key pair", j)
			}
			keys[string(b)] = i
		}
	}
}

func validateSyncGossip(s *Sync, d *decoder) {
	if len(s.Peers) > 0 {
		d.errorf("sync.peer", indexPath("sync.peer", 0), "", "is for naive and smart modes; gossip finds its members through sync.seeds")
	}
	if s.PrivateKey != "" {
		d.errorf("sync.private-key", "sync.private-key", "", "is for naive and smart modes; gossip authenticates with sync.gossip-key")
	}
	if s.GossipKey == "" {
		d.errorf("sync.gossip-key", "sync", "", "required in gossip mode: the base64 of 16, 24 or 32 random bytes, e.g. from \"openssl rand -base64 32\"")
	} else if _, err := SyncGossipKey(s.GossipKey); err != nil {
		d.errorf("sync.gossip-key", "sync.gossip-key", "", "must be the base64 of 16, 24 or 32 bytes")
	}
	for i, a := range s.Seeds {
		if a.Addr().IsUnspecified() || a.Port() == 0 {
			d.errorf("sync.seeds", indexPath("sync.seeds", i), strconv.Quote(a.String()), "must be an address with a port other than 0")
		}
	}
}

// SyncGossipKey decodes sync.gossip-key: the base64 of 16, 24 or 32 bytes.
func SyncGossipKey(s Secret) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(string(s))
	if err != nil {
		return nil, &ValueError{What: "gossip key", Value: "<redacted>", Msg: "not base64"}
	}
	switch len(b) {
	case 16, 24, 32:
		return b, nil
	}
	return nil, &ValueError{What: "gossip key", Value: "<redacted>", Msg: "want 16, 24 or 32 bytes"}
}
