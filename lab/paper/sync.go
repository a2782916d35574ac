package paper

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/lispd/lispd/cachesync"
	"github.com/lispd/lispd/lab/topo"
)

// syncPort is the port of the synchronization set on each xTR's RLOC.
const syncPort = cachesync.DefaultPort

// syncKeySet holds the key material of one run's synchronization set: an
// Ed25519 key pair per site xTR (naive, smart), written to files, and the
// gossip secret.
type syncKeySet struct {
	keyFile map[string]string
	public  map[string]string
	gossip  string
}

// syncKeys makes fresh keys for the site's xTRs in dir.
func syncKeys(t *topo.Topology, dir string) (*syncKeySet, error) {
	ks := &syncKeySet{keyFile: map[string]string{}, public: map[string]string{}}
	for _, x := range t.XTRs {
		k, err := cachesync.GenerateKey()
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, strings.ToLower(x.Name)+"-sync.key")
		if err := cachesync.WritePrivateKey(path, k); err != nil {
			return nil, err
		}
		ks.keyFile[x.Name] = path
		ks.public[x.Name] = cachesync.FormatPublicKey(cachesync.PublicKeyOf(k))
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("paper: %w", err)
	}
	ks.gossip = base64.StdEncoding.EncodeToString(secret)
	return ks, nil
}

// syncPeer is another member of a naive or smart set.
type syncPeer struct {
	Name      string
	Addr      netip.AddrPort
	PublicKey string
}

// syncSpec is an xTR's [sync] section.
type syncSpec struct {
	Mode    Variant
	Name    string
	Listen  netip.AddrPort
	KeyFile string
	Peers   []syncPeer
	// Seeds (gossip) are members to join; SecretKey encrypts gossip.
	Seeds     []netip.AddrPort
	SecretKey string
}

// syncFor returns x's sync section for variant v: the other site xTR as
// its only peer, over its RLOC.
func syncFor(t *topo.Topology, x topo.XTR, v Variant, keys *syncKeySet) *syncSpec {
	if v == Off || keys == nil {
		return nil
	}
	s := &syncSpec{Mode: v, Name: x.Name, Listen: netip.AddrPortFrom(x.RLOC, syncPort), KeyFile: keys.keyFile[x.Name], SecretKey: keys.gossip}
	for _, o := range t.XTRs {
		if o.Name == x.Name {
			continue
		}
		addr := netip.AddrPortFrom(o.RLOC, syncPort)
		s.Peers = append(s.Peers, syncPeer{Name: o.Name, Addr: addr, PublicKey: keys.public[o.Name]})
		s.Seeds = append(s.Seeds, addr)
	}
	return s
}

// config is the [sync] section's TOML.
func (s *syncSpec) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n[sync]\nmode = %q\nname = %q\nlisten = %q\n", s.Mode, s.Name, s.Listen.String())
	switch s.Mode {
	case Gossip:
		var seeds []string
		for _, a := range s.Seeds {
			seeds = append(seeds, fmt.Sprintf("%q", a.String()))
		}
		fmt.Fprintf(&b, "gossip-key = %q\nseeds = [%s]\n", s.SecretKey, strings.Join(seeds, ", "))
	default:
		fmt.Fprintf(&b, "private-key = %q\n", s.KeyFile)
		for _, p := range s.Peers {
			fmt.Fprintf(&b, "\n[[sync.peer]]\nname = %q\naddress = %q\npublic-key = %q\n", p.Name, p.Addr.String(), p.PublicKey)
		}
	}
	return b.String()
}
