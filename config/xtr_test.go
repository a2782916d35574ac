package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseXTRExample(t *testing.T) {
	c, err := Load("examples/xtr.toml")
	if err != nil {
		t.Fatal(err)
	}
	dp := c.Dataplane
	if dp == nil || !slices.Equal(dp.RLOCs, []netip.Addr{netip.MustParseAddr("192.0.2.1")}) ||
		!slices.Equal(dp.DataListen, []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:4341")}) ||
		dp.TUNName != "lisp0" || dp.TUNMTU != 1444 || dp.PathMTU != 1500 ||
		!slices.Equal(dp.TUNAddresses, []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}) ||
		!slices.Equal(dp.TUNRoutes, []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}) {
		t.Errorf("dataplane = %+v", dp)
	}
	it := c.ITR
	if it == nil || !slices.Equal(it.MapResolvers, []netip.AddrPort{netip.MustParseAddrPort("192.0.2.100:4342")}) ||
		it.MissPolicy != MissDrop || it.MapRequestTimeout != time.Second || it.RLOCProbeInterval != 30*time.Second ||
		it.MapCacheSize != 1000000 {
		t.Errorf("itr = %+v", it)
	}
	e := c.ETR
	if e == nil || e.RegisterInterval != time.Minute || e.RecordTTL != 24*time.Hour || e.SiteID != 1 || e.XTRID != (XTRID{}) {
		t.Fatalf("etr = %+v", e)
	}
	if len(e.MapServers) != 1 || e.MapServers[0].Address != netip.MustParseAddrPort("192.0.2.100:4342") ||
		e.MapServers[0].Algorithm != AlgHMACSHA256 || string(e.MapServers[0].AuthenticationKey) != "change-me-site-a" {
		t.Errorf("map-server = %+v", e.MapServers)
	}
	if len(e.EIDs) != 2 {
		t.Fatalf("eids = %+v", e.EIDs)
	}
	l := e.EIDs[0].Locators(dp)
	if len(l) != 2 || l[1].Address != netip.MustParseAddr("198.51.100.1") || l[1].Priority != 2 || l[0].MPriority != 255 {
		t.Errorf("locators = %+v", l)
	}
	// Without rlocs the prefix uses the dataplane's.
	l = e.EIDs[1].Locators(dp)
	if e.EIDs[1].Prefix.InstanceID != 1000 || len(l) != 1 || l[0].Address != netip.MustParseAddr("192.0.2.1") || l[0].Weight != 100 {
		t.Errorf("default locators = %+v", l)
	}
}

// xtrBase is a valid xTR config; tests change it.
const xtrBase = `[daemon]
roles = ["itr", "etr"]

[dataplane]
rlocs = ["192.0.2.1"]

[itr]
map-resolvers = ["192.0.2.100"]

[etr]
[[etr.map-server]]
address = "192.0.2.100"
authentication-key = "k"

[[etr.eid]]
prefix = "10.1.0.0/24"
rlocs = [{address = "192.0.2.1"}]
`

func TestXTRDefaults(t *testing.T) {
	c, err := Parse([]byte(xtrBase), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	dp, it, e := c.Dataplane, c.ITR, c.ETR
	if dp.TUNName != "lisp0" || dp.TUNMTU != 1444 || dp.PathMTU != 1500 || dp.InstanceID != 0 ||
		!slices.Equal(dp.DataListen, []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:4341")}) ||
		dp.NativeForward || dp.RouteTable != 4341 || dp.FwMark != 0x4341 {
		t.Errorf("dataplane defaults %+v", dp)
	}
	if it.MissPolicy != MissDrop || it.QueuePerDestination != 4 || it.QueueTotal != 1024 || it.MapRequestRate != 1000 ||
		it.MapRequestRetries != 3 || it.MapRequestTimeout != time.Second || it.RLOCProbeInterval != 0 || it.RLOCProbeCount != 3 ||
		it.RefreshIfUsedWithin != 0 || it.MapCacheSize != 1000000 {
		t.Errorf("itr defaults %+v", it)
	}
	if e.RegisterInterval != time.Minute || e.RecordTTL != 24*time.Hour || e.ProxyReply || e.SiteID != 0 {
		t.Errorf("etr defaults %+v", e)
	}
	l := e.EIDs[0].RLOCs[0]
	if l.Priority != 1 || l.Weight != 100 || l.MPriority != 255 || l.MWeight != 0 || e.MapServers[0].Algorithm != AlgHMACSHA256 {
		t.Errorf("locator defaults %+v", l)
	}
}

func TestXTRNativeForward(t *testing.T) {
	src := strings.Replace(xtrBase, "[dataplane]\n", "[dataplane]\nnative-forward = true\nroute-table = 100\nfwmark = 0xca6c\ntun-routes = [\"10.2.0.0/16\"]\n", 1)
	c, err := Parse([]byte(src), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	if dp := c.Dataplane; !dp.NativeForward || dp.RouteTable != 100 || dp.FwMark != 0xca6c {
		t.Errorf("dataplane %+v", dp)
	}
	// The keys need a restart, like the rest of [dataplane].
	src2 := strings.Replace(src, "fwmark = 0xca6c", "fwmark = 0xca6d", 1)
	c2, err := Parse([]byte(src2), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	d := Diff(c, c2)
	if !slices.Contains(d.RestartRequired, "dataplane.fwmark") {
		t.Errorf("diff %+v: want dataplane.fwmark to need a restart", d)
	}
}

func TestXTRErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"itr without section", strings.Replace(xtrBase, "[itr]\nmap-resolvers = [\"192.0.2.100\"]\n", "", 1),
			[]string{`x.toml:2: itr: section is required because daemon.roles has "itr"`}},
		{"section without role", strings.Replace(xtrBase, `roles = ["itr", "etr"]`, `roles = ["etr"]`, 1),
			[]string{`x.toml:7: itr: section is set but daemon.roles has no "itr"`}},
		{"dataplane missing", strings.Replace(xtrBase, "[dataplane]\nrlocs = [\"192.0.2.1\"]\n", "", 1),
			[]string{`x.toml:2: dataplane: section is required because daemon.roles has "itr" or "etr"`}},
		{"no rlocs", strings.Replace(xtrBase, `rlocs = ["192.0.2.1"]`, `rlocs = []`, 1),
			[]string{`x.toml:5: dataplane.rlocs: []: must list at least one address`}},
		{"bad rloc", strings.Replace(xtrBase, `rlocs = ["192.0.2.1"]`, "rlocs = [\"192.0.2.1\",\n  \"0.0.0.0\"]", 1),
			[]string{`x.toml:6: dataplane.rlocs: "0.0.0.0": must be a unicast address`}},
		{"rloc garbage", strings.Replace(xtrBase, `rlocs = ["192.0.2.1"]`, `rlocs = ["192.0.2.x"]`, 1),
			[]string{`x.toml:5: dataplane.rlocs: "192.0.2.x"`}},
		{"two v4 listeners", strings.Replace(xtrBase, "[dataplane]\n", "[dataplane]\ndata-listen = [\"0.0.0.0\", \"192.0.2.1:4341\"]\n", 1),
			[]string{`x.toml:5: dataplane.data-listen: "192.0.2.1:4341": a second address of the same family`}},
		{"tun name", strings.Replace(xtrBase, "[dataplane]\n", "[dataplane]\ntun-name = \"a-very-long-interface\"\n", 1),
			[]string{`x.toml:5: dataplane.tun-name: "a-very-long-interface": is 21 bytes long`}},
		{"mtu", strings.Replace(xtrBase, "[dataplane]\n", "[dataplane]\ntun-mtu = 100\n", 1),
			[]string{`x.toml:5: dataplane.tun-mtu: 100: out of range 576..9000`}},
		{"iid", strings.Replace(xtrBase, "[dataplane]\n", "[dataplane]\ninstance-id = 16777216\n", 1),
			[]string{`x.toml:5: dataplane.instance-id: 16777216: out of range 0..16777215`}},
		{"route host bits", strings.Replace(xtrBase, "[dataplane]\n", "[dataplane]\ntun-routes = [\"10.2.3.0/16\"]\n", 1),
			[]string{`x.toml:5: dataplane.tun-routes: "10.2.3.0/16": host bits are set (did you mean 10.2.0.0/16?)`}},
		{"route table reserved", strings.Replace(xtrBase, "[dataplane]\n", "[dataplane]\nnative-forward = true\nroute-table = 254\n", 1),
			[]string{`x.toml:6: dataplane.route-table: 254: is a reserved table (253 default, 254 main, 255 local)`}},
		{"route table zero", strings.Replace(xtrBase, "[dataplane]\n", "[dataplane]\nroute-table = 0\n", 1),
			[]string{`x.toml:5: dataplane.route-table: 0: out of range 1..2147483647`}},
		{"fwmark zero", strings.Replace(xtrBase, "[dataplane]\n", "[dataplane]\nnative-forward = true\nfwmark = 0\n", 1),
			[]string{`x.toml:6: dataplane.fwmark: 0: must not be 0 when dataplane.native-forward is on`}},
		{"fwmark range", strings.Replace(xtrBase, "[dataplane]\n", "[dataplane]\nfwmark = 0x1_0000_0000\n", 1),
			[]string{`x.toml:5: dataplane.fwmark`}},
		{"native-forward type", strings.Replace(xtrBase, "[dataplane]\n", "[dataplane]\nnative-forward = \"yes\"\n", 1),
			[]string{`x.toml:5: dataplane.native-forward`}},
		{"policy", strings.Replace(xtrBase, "[itr]\n", "[itr]\nmiss-policy = \"hold\"\n", 1),
			[]string{`x.toml:8: itr.miss-policy: "hold": unknown miss policy: want drop or queue`}},
		{"dup MR", strings.Replace(xtrBase, `map-resolvers = ["192.0.2.100"]`, `map-resolvers = ["192.0.2.100", "192.0.2.100:4342"]`, 1),
			[]string{`x.toml:8: itr.map-resolvers: "192.0.2.100:4342": duplicate Map-Resolver`}},
		{"retries", strings.Replace(xtrBase, "[itr]\n", "[itr]\nmap-request-retries = 11\n", 1),
			[]string{`x.toml:8: itr.map-request-retries: 11: out of range 0..10`}},
		{"probe interval", strings.Replace(xtrBase, "[itr]\n", "[itr]\nrloc-probe-interval = \"10ms\"\n", 1),
			[]string{`x.toml:8: itr.rloc-probe-interval: "10ms": must be "0s" (off) or at least 1s`}},
		{"queue total", strings.Replace(xtrBase, "[itr]\n", "[itr]\nqueue-per-destination = 8\nqueue-total = 4\n", 1),
			[]string{`x.toml:9: itr.queue-total: 4: is smaller than itr.queue-per-destination (8)`}},
		{"record ttl", strings.Replace(xtrBase, "[etr]\n", "[etr]\nrecord-ttl = \"90s\"\n", 1),
			[]string{`x.toml:11: etr.record-ttl: "1m30s": must be a whole number of minutes`}},
		{"xtr-id", strings.Replace(xtrBase, "[etr]\n", "[etr]\nxtr-id = \"abc\"\n", 1),
			[]string{`x.toml:11: etr.xtr-id: "abc": want 32 hexadecimal digits`}},
		{"no map-server", strings.Replace(xtrBase, "[[etr.map-server]]\naddress = \"192.0.2.100\"\nauthentication-key = \"k\"\n", "", 1),
			[]string{`x.toml:10: etr.map-server: must have at least one [[etr.map-server]] table`}},
		{"empty key", strings.Replace(xtrBase, `authentication-key = "k"`, `authentication-key = ""`, 1),
			[]string{`x.toml:13: etr.map-server[0].authentication-key: "": must not be empty`}},
		{"dup eid", xtrBase + "[[etr.eid]]\nprefix = \"10.1.0.0/24\"\n",
			[]string{`x.toml:19: etr.eid[1].prefix: "10.1.0.0/24": duplicate EID prefix`}},
		{"dup locator", strings.Replace(xtrBase, `rlocs = [{address = "192.0.2.1"}]`, "rlocs = [{address = \"192.0.2.1\"},\n  {address = \"192.0.2.1\", weight = 5}]", 1),
			[]string{`x.toml:18: etr.eid[0].rlocs[1].address: "192.0.2.1": duplicate locator`}},
		{"unusable", strings.Replace(xtrBase, `rlocs = [{address = "192.0.2.1"}]`, `rlocs = [{address = "192.0.2.1", priority = 255}]`, 1),
			[]string{`x.toml:17: etr.eid[0].rlocs: every locator has priority 255`}},
		{"locator unknown key", strings.Replace(xtrBase, `rlocs = [{address = "192.0.2.1"}]`, `rlocs = [{address = "192.0.2.1", wieght = 5}]`, 1),
			[]string{`x.toml:17: etr.eid[0].rlocs[0].wieght: unknown key (did you mean "weight"?)`}},
		{"dataplane without role", strings.Replace(strings.Replace(strings.Replace(xtrBase, `roles = ["itr", "etr"]`, `roles = ["mr"]`, 1),
			"[itr]\nmap-resolvers = [\"192.0.2.100\"]\n", "[map-resolver]\nmap-servers = [\"192.0.2.100\"]\n", 1),
			"[etr]\n[[etr.map-server]]\naddress = \"192.0.2.100\"\nauthentication-key = \"k\"\n\n[[etr.eid]]\nprefix = \"10.1.0.0/24\"\nrlocs = [{address = \"192.0.2.1\"}]\n", "", 1),
			[]string{`x.toml:4: dataplane: section is set but daemon.roles has neither "itr" nor "etr"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "x.toml")
			errs := Errors(err)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i].Error(), w)
				}
			}
		})
	}
}

func TestXTRDiff(t *testing.T) {
	a := mustParse(t, xtrBase)
	b := mustParse(t, strings.Replace(strings.Replace(xtrBase, `rlocs = [{address = "192.0.2.1"}]`, `rlocs = [{address = "192.0.2.1", weight = 5}]`, 1),
		"[itr]\n", "[itr]\nmiss-policy = \"queue\"\nmap-cache-size = 10\n", 1))
	ch := Diff(a, b)
	if !slices.Equal(ch.Changed, []string{"itr.miss-policy", "etr.eid"}) || !slices.Equal(ch.RestartRequired, []string{"itr.map-cache-size"}) {
		t.Errorf("changed %v, restart %v", ch.Changed, ch.RestartRequired)
	}
	c := mustParse(t, strings.Replace(xtrBase, `rlocs = ["192.0.2.1"]`, `rlocs = ["192.0.2.7"]`, 1))
	if ch := Diff(a, c); !slices.Equal(ch.RestartRequired, []string{"dataplane.rlocs"}) {
		t.Errorf("dataplane change: %v", ch)
	}
}

func TestXTRIDText(t *testing.T) {
	var x XTRID
	if err := x.UnmarshalText([]byte("000102030405060708090a0b0c0d0e0f")); err != nil || x[15] != 15 {
		t.Fatal(x, err)
	}
	if b, _ := x.MarshalText(); string(b) != "000102030405060708090a0b0c0d0e0f" {
		t.Errorf("MarshalText = %s", b)
	}
	for _, bad := range []string{"00", "zz0102030405060708090a0b0c0d0e0f", "00000000000000000000000000000000"} {
		if err := x.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := x.UnmarshalText(nil); err != nil || x != (XTRID{}) || x.String() != "" {
		t.Error("empty xTR-ID")
	}
}

// TestFailoverValidation: bad [failover] values are refused with the key
// named.
func TestFailoverValidation(t *testing.T) {
	base := "[daemon]\nroles = [\"ms\"]\n[map-server]\n[failover]\n"
	for _, tc := range []struct{ body, key string }{
		{"heartbeat-interval = \"1ms\"\n", "failover.heartbeat-interval"},
		{"heartbeat-interval = \"600ms\"\n", "failover.dead-after"},
		{"drain-quiet = \"40s\"\n", "failover.drain-timeout"},
		{"vrrp-track-file = \"run/x\"\n", "failover.vrrp-track-file"},
		{"watch-interfaces = [\"eth0\", \"eth0\"]\n", "failover.watch-interfaces[1]"},
		{"watch-interfaces = [\"an-interface-name-too-long\"]\n", "failover.watch-interfaces[0]"},
	} {
		_, err := Parse([]byte(base+tc.body), "x.toml")
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: err %v, want one naming %s", tc.body, err, tc.key)
		}
	}
	c, err := Parse([]byte(base+"enabled = false\nvrrp-track-file = \"/run/lispd/vrrp-drain\"\n"), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Failover.Enabled || c.Failover.VRRPTrackFile != "/run/lispd/vrrp-drain" {
		t.Errorf("got %+v", c.Failover)
	}
}
