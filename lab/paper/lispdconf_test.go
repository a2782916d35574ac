package paper

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/lab/topo"
)

// TestConfigsParse checks that every lispd.toml the lab writes is one
// lispd accepts, with the roles, database and sync set intended.
func TestConfigsParse(t *testing.T) {
	dir := t.TempDir()
	tp, err := topo.Paper(topo.Test2, netip.MustParsePrefix("127.0.77.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := syncKeys(tp, dir)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(name, text string) *config.Config {
		t.Helper()
		c, err := config.Parse([]byte(text), name)
		if err != nil {
			t.Fatalf("%s does not parse: %v\n%s", name, err, text)
		}
		return c
	}
	ms := parse("msmr.toml", msmrConfig(tp, dir+"/msmr.sock", false))
	if !ms.HasRole(config.RoleMapServer) || len(ms.MapServer.Sites) != 1+len(tp.Remotes) {
		t.Errorf("MS/MR config: roles %v, %d sites", ms.Daemon.Roles, len(ms.MapServer.Sites))
	}
	for _, rx := range tp.Remotes {
		spec := remoteSpec(tp, rx)
		spec.TUN = tunName
		c := parse(rx.Name+".toml", xtrConfig(spec, dir+"/rx.sock"))
		if len(c.ETR.EIDs) != len(rx.Prefixes) || c.ETR.RecordTTL != tp.MapTTL || c.Dataplane.TUNName != tunName {
			t.Errorf("%s: %d EIDs, TTL %v, TUN %q", rx.Name, len(c.ETR.EIDs), c.ETR.RecordTTL, c.Dataplane.TUNName)
		}
	}
	for _, v := range Variants() {
		for _, x := range tp.XTRs {
			text := xtrConfig(siteSpec(tp, x, v, keys), dir+"/x.sock")
			c := parse(x.Name+"-"+string(v)+".toml", text)
			if v == Off {
				if c.SyncEnabled() {
					t.Errorf("%s off: sync enabled", x.Name)
				}
				continue
			}
			if !c.SyncEnabled() || c.Sync.Mode != string(v) || c.Sync.Name != x.Name {
				t.Errorf("%s %s: sync %+v", x.Name, v, c.Sync)
			}
			locs := c.ETR.EIDs[0].RLOCs
			if len(locs) != 2 || locs[0].Weight != 50 || locs[1].Weight != 50 || locs[0].Priority != locs[1].Priority {
				t.Errorf("%s: site locators %+v, want two at 50:50", x.Name, locs)
			}
			if v == Gossip && (c.Sync.GossipKey == "" || len(c.Sync.Seeds) != 1) {
				t.Errorf("%s gossip: %+v", x.Name, c.Sync)
			}
			if (v == Naive || v == Smart) && (len(c.Sync.Peers) != 1 || !strings.HasSuffix(c.Sync.PrivateKey, ".key")) {
				t.Errorf("%s %s: %+v", x.Name, v, c.Sync)
			}
		}
	}
}
