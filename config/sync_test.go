package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// syncBase is a valid ITR config; tests append a [sync] section.
const syncBase = `[daemon]
roles = ["itr"]

[dataplane]
rlocs = ["192.0.2.1"]

[itr]
map-resolvers = ["192.0.2.100"]
`

const (
	pubB = "Ua1+5XlAu6Z2vT5tkR2jsR1tTGlsf0WdM8jS7mZD1ZY="
	pubC = "Kh3qL8m0V1tYw3xzY9QpUo2ZrS5nB4cD7eF6gH8iJ0k="
)

func TestSyncSmart(t *testing.T) {
	c, err := Parse([]byte(syncBase+`
[sync]
mode = "smart"
name = "itr-1"
private-key = "/etc/lispd/sync.key"
refresh-window = "2m"

[[sync.peer]]
name = "itr-2"
address = "192.0.2.2"
public-key = "`+pubB+`"

[[sync.peer]]
name = "itr-3"
address = "192.0.2.3:5000"
public-key = "`+pubC+`"
`), "lispd.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sync
	if !c.SyncEnabled() || s.Mode != SyncSmart || s.Name != "itr-1" || s.RefreshWindow != 2*time.Minute ||
		s.RoundInterval != 5*time.Second || s.AntiEntropyInterval != 30*time.Second || s.MaxFrameSize != 16<<20 ||
		s.Listen != netip.MustParseAddrPort("0.0.0.0:4343") {
		t.Fatalf("sync = %+v", s)
	}
	if len(s.Peers) != 2 || s.Peers[0].Address != netip.MustParseAddrPort("192.0.2.2:4343") || s.Peers[1].Address.Port() != 5000 {
		t.Fatalf("peers = %+v", s.Peers)
	}
	// Without a [sync] section, or with mode off, there is no set.
	c, err = Parse([]byte(syncBase), "lispd.toml")
	if err != nil || c.SyncEnabled() {
		t.Fatalf("no section: %v %v", err, c.SyncEnabled())
	}
}

func TestSyncGossip(t *testing.T) {
	c, err := Parse([]byte(syncBase+`
[sync]
mode = "gossip"
listen = "192.0.2.1"
seeds = ["192.0.2.2", "192.0.2.3:7946"]
gossip-key = "MDEyMzQ1Njc4OWFiY2RlZg=="
`), "lispd.toml")
	if err != nil {
		t.Fatal(err)
	}
	k, err := SyncGossipKey(c.Sync.GossipKey)
	if err != nil || string(k) != "0123456789abcdef" {
		t.Fatalf("key %q %v", k, err)
	}
	if len(c.Sync.Seeds) != 2 || c.Sync.Seeds[0].Port() != 4343 {
		t.Fatalf("seeds %v", c.Sync.Seeds)
	}
	if !strings.Contains(c.Sync.GossipKey.String(), "redacted") {
		t.Fatal("the gossip key prints")
	}
}

func TestSyncErrors(t *testing.T) {
	peer := func(name, addr, key string) string {
		return "\n[[sync.peer]]\nname = \"" + name + "\"\naddress = \"" + addr + "\"\npublic-key = \"" + key + "\"\n"
	}
	smart := "[sync]\nmode = \"smart\"\nprivate-key = \"/k\"\n"
	for _, tc := range []struct {
		name, src, want string
	}{
		{"unknown mode", "[sync]\nmode = \"eager\"\n", `sync.mode: "eager": unknown mode`},
		{"no private key", "[sync]\nmode = \"naive\"\n" + peer("b", "192.0.2.2", pubB), "sync.private-key: required in naive mode"},
		{"relative key", "[sync]\nmode = \"smart\"\nprivate-key = \"sync.key\"\n" + peer("b", "192.0.2.2", pubB), "must be an absolute path"},
		{"no peers", smart, "needs at least one [[sync.peer]]"},
		{"bad key", smart + peer("b", "192.0.2.2", "abc"), "sync.peer[0].public-key"},
		{"duplicate name", smart + peer("b", "192.0.2.2", pubB) + peer("b", "192.0.2.3", pubC), "duplicate peer name"},
		{"duplicate address", smart + peer("b", "192.0.2.2", pubB) + peer("c", "192.0.2.2", pubC), "duplicate peer address"},
		{"duplicate key", smart + peer("b", "192.0.2.2", pubB) + peer("c", "192.0.2.3", pubB), "same key as sync.peer[0]"},
		{"unspecified peer", smart + peer("b", "0.0.0.0", pubB), "must be a unicast address"},
		{"seeds in smart", smart + "seeds = [\"192.0.2.9\"]\n" + peer("b", "192.0.2.2", pubB), "sync.seeds: is for gossip mode"},
		{"round too long", smart + "round-interval = \"2m\"\n" + peer("b", "192.0.2.2", pubB), "must be shorter than sync.refresh-window"},
		{"anti-entropy too short", smart + "anti-entropy-interval = \"1s\"\n" + peer("b", "192.0.2.2", pubB), "must be at least sync.round-interval"},
		{"frame size", smart + "max-frame-size = 1000\n" + peer("b", "192.0.2.2", pubB), "out of range 65536"},
		{"gossip no key", "[sync]\nmode = \"gossip\"\n", "sync.gossip-key: required in gossip mode"},
		{"gossip short key", "[sync]\nmode = \"gossip\"\ngossip-key = \"YWJj\"\n", "16, 24 or 32 bytes"},
		{"gossip with peers", "[sync]\nmode = \"gossip\"\ngossip-key = \"MDEyMzQ1Njc4OWFiY2RlZg==\"\n" + peer("b", "192.0.2.2", pubB), "gossip finds its members"},
		{"listen port 0", smart + "listen = \"0.0.0.0:0\"\n" + peer("b", "192.0.2.2", pubB), "needs a port other than 0"},
	} {
		_, err := Parse([]byte(syncBase+tc.src), "lispd.toml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	// The set needs the itr role.
	_, err := Parse([]byte("[daemon]\nroles = [\"ms\"]\n[map-server]\n[sync]\nmode = \"gossip\"\ngossip-key = \"MDEyMzQ1Njc4OWFiY2RlZg==\"\n"), "lispd.toml")
	if err == nil || !strings.Contains(err.Error(), `add "itr" to daemon.roles`) {
		t.Errorf("no itr role: %v", err)
	}
	// Errors carry the line.
	_, err = Parse([]byte(syncBase+"[sync]\nmode = \"eager\"\n"), "lispd.toml")
	if err == nil || !strings.HasPrefix(err.Error(), "lispd.toml:10: sync.mode") {
		t.Errorf("line: %v", err)
	}
}

func TestSyncDiffNeedsRestart(t *testing.T) {
	a := mustParse(t, syncBase+"[sync]\nmode = \"gossip\"\ngossip-key = \"MDEyMzQ1Njc4OWFiY2RlZg==\"\n")
	b := mustParse(t, syncBase+"[sync]\nmode = \"gossip\"\ngossip-key = \"MDEyMzQ1Njc4OWFiY2RlZg==\"\nseeds = [\"192.0.2.7\"]\n")
	ch := Diff(a, b)
	if len(ch.RestartRequired) != 1 || ch.RestartRequired[0] != "sync.seeds" || len(ch.Changed) != 0 {
		t.Fatalf("diff %+v", ch)
	}
}
