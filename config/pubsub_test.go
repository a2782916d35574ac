package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The publish/subscribe keys: [map-server.pubsub] and the itr.subscribe
// family.

func TestPubSubMapServer(t *testing.T) {
	c := mustParse(t, base+`
[map-server.pubsub]
enabled = true
authentication-key = "ps-key"
key-id = 3
algorithm = "hmac-sha-1"
max-subscriptions = 500
max-per-itr = 50
negative-ttl = "5m"
max-pending = 1000
`)
	ps := c.MapServer.PubSub
	if !ps.Enabled || string(ps.AuthenticationKey) != "ps-key" || ps.KeyID != 3 || ps.Algorithm != AlgHMACSHA1 ||
		ps.Unauthenticated || ps.MaxSubscriptions != 500 || ps.MaxPerITR != 50 || ps.NegativeTTL != 5*time.Minute || ps.MaxPending != 1000 {
		t.Errorf("pubsub = %+v", ps)
	}
	// The key does not print.
	if s := ps.AuthenticationKey.String(); strings.Contains(s, "ps-key") {
		t.Errorf("key prints as %q", s)
	}
	// Unauthenticated needs no key.
	c = mustParse(t, base+"[map-server.pubsub]\nenabled = true\nunauthenticated = true\n")
	if ps := c.MapServer.PubSub; !ps.Enabled || !ps.Unauthenticated || ps.AuthenticationKey != "" {
		t.Errorf("unauthenticated pubsub = %+v", ps)
	}
	// Dotted keys in [map-server] work as well.
	c = mustParse(t, strings.Replace(base, "[map-server]\n", "[map-server]\npubsub.enabled = true\npubsub.authentication-key = \"k\"\n", 1))
	if !c.MapServer.PubSub.Enabled {
		t.Errorf("dotted pubsub = %+v", c.MapServer.PubSub)
	}
}

func TestPubSubMapServerErrors(t *testing.T) {
	for _, tc := range []struct {
		name, table string
		want        []string
	}{
		{"no key", "enabled = true\n",
			[]string{`lispd.toml:16: map-server.pubsub.authentication-key: must be set when map-server.pubsub.enabled is true`}},
		{"no key, off", "enabled = false\n", nil},
		{"limits", "max-subscriptions = 0\nmax-per-itr = -1\nmax-pending = 0\n", []string{
			`lispd.toml:16: map-server.pubsub.max-subscriptions: 0: out of range 1..2147483647`,
			`lispd.toml:17: map-server.pubsub.max-per-itr: -1: out of range 1..2147483647`,
			`lispd.toml:18: map-server.pubsub.max-pending: 0: out of range 1..2147483647`,
		}},
		{"negative ttl", "negative-ttl = \"90s\"\n",
			[]string{`lispd.toml:16: map-server.pubsub.negative-ttl: "1m30s": must be a whole number of minutes`}},
		{"algorithm", "algorithm = \"md5\"\n",
			[]string{`lispd.toml:16: map-server.pubsub.algorithm: "md5": unknown algorithm`}},
		{"unknown key", "enable = true\n",
			[]string{`lispd.toml:16: map-server.pubsub.enable: unknown key (did you mean "enabled"?)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base+"\n[map-server.pubsub]\n"+tc.table), "lispd.toml")
			errs := Errors(err)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q\nwant it to contain %q", i, errs[i], w)
				}
			}
		})
	}
}

// The Map-Server's pub/sub keys need a restart.
func TestPubSubMapServerDiff(t *testing.T) {
	a := mustParse(t, base)
	b := mustParse(t, base+"[map-server.pubsub]\nenabled = true\nauthentication-key = \"k\"\n")
	ch := Diff(a, b)
	if len(ch.Changed) != 0 || !slices.Equal(ch.RestartRequired, []string{"map-server.pubsub.enabled", "map-server.pubsub.authentication-key"}) {
		t.Errorf("changed %v, restart %v", ch.Changed, ch.RestartRequired)
	}
}

func TestPubSubITR(t *testing.T) {
	// Defaults.
	c := mustParse(t, xtrBase)
	it := c.ITR
	if it.Subscribe || it.SubscribeRefresh != time.Minute || it.PubSubKey != "" || it.PubSubKeyID != 0 ||
		it.PubSubAlgorithm != AlgHMACSHA256 || it.PubSubUnauthenticated || it.XTRID != (XTRID{}) || it.SiteID != 0 {
		t.Errorf("itr pubsub defaults %+v", it)
	}
	c = mustParse(t, strings.Replace(xtrBase, "[itr]\n", `[itr]
subscribe = true
subscribe-refresh = "30s"
pubsub-key = "ps-key"
pubsub-key-id = 2
pubsub-algorithm = "hmac-sha-256-hkdf"
`, 1))
	it = c.ITR
	if !it.Subscribe || it.SubscribeRefresh != 30*time.Second || string(it.PubSubKey) != "ps-key" || it.PubSubKeyID != 2 ||
		it.PubSubAlgorithm != AlgHMACSHA256HKDF {
		t.Errorf("itr pubsub %+v", it)
	}
	// An ITR without the etr role has its own xTR-ID and site-ID.
	itrOnly := `[daemon]
roles = ["itr"]
[dataplane]
rlocs = ["192.0.2.1"]
[itr]
map-resolvers = ["192.0.2.100"]
subscribe = true
pubsub-unauthenticated = true
xtr-id = "000102030405060708090a0b0c0d0e0f"
site-id = 9
`
	c = mustParse(t, itrOnly)
	if it := c.ITR; it.XTRID[15] != 15 || it.SiteID != 9 || !it.PubSubUnauthenticated {
		t.Errorf("itr-only pubsub %+v", it)
	}
	// With the etr role, the same values as the ETR's are accepted.
	same := strings.Replace(strings.Replace(xtrBase, "[itr]\n", "[itr]\nxtr-id = \"000102030405060708090a0b0c0d0e0f\"\nsite-id = 4\n", 1),
		"[etr]\n", "[etr]\nxtr-id = \"000102030405060708090a0b0c0d0e0f\"\nsite-id = 4\n", 1)
	mustParse(t, same)
	// The ITR's pub/sub keys apply at a reload.
	a, b := mustParse(t, xtrBase), mustParse(t, strings.Replace(xtrBase, "[itr]\n", "[itr]\nsubscribe = true\npubsub-key = \"k\"\n", 1))
	if ch := Diff(a, b); !slices.Equal(ch.Changed, []string{"itr.subscribe", "itr.pubsub-key"}) || len(ch.RestartRequired) != 0 {
		t.Errorf("changed %v, restart %v", ch.Changed, ch.RestartRequired)
	}
}

func TestPubSubITRErrors(t *testing.T) {
	for _, tc := range []struct {
		name, itr, etr string
		want           []string
	}{
		{"no key", "subscribe = true\n", "",
			[]string{`x.toml:8: itr.pubsub-key: must be set when itr.subscribe is true`}},
		{"key but not subscribing", "pubsub-key = \"k\"\n", "", nil},
		{"refresh", "subscribe-refresh = \"100ms\"\n", "",
			[]string{`x.toml:8: itr.subscribe-refresh: "100ms": must be at least 1s`}},
		{"xtr-id differs", "xtr-id = \"000102030405060708090a0b0c0d0e0f\"\n", "",
			[]string{`x.toml:8: itr.xtr-id: "000102030405060708090a0b0c0d0e0f": differs from etr.xtr-id (empty: a random one): with the etr role`}},
		{"xtr-id differs from the ETR's", "xtr-id = \"000102030405060708090a0b0c0d0e0f\"\n", "xtr-id = \"0f0102030405060708090a0b0c0d0e0f\"\n",
			[]string{`x.toml:8: itr.xtr-id: "000102030405060708090a0b0c0d0e0f": differs from etr.xtr-id ("0f0102030405060708090a0b0c0d0e0f")`}},
		{"site-id differs", "site-id = 5\n", "site-id = 4\n",
			[]string{`x.toml:8: itr.site-id: 5: differs from etr.site-id (4): with the etr role the ITR sends the ETR's site-ID`}},
		{"bad algorithm", "pubsub-algorithm = \"none\"\n", "",
			[]string{`x.toml:8: itr.pubsub-algorithm: "none": unknown algorithm`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(strings.Replace(xtrBase, "[itr]\n", "[itr]\n"+tc.itr, 1), "[etr]\n", "[etr]\n"+tc.etr, 1)
			_, err := Parse([]byte(src), "x.toml")
			errs := Errors(err)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q\nwant it to contain %q", i, errs[i], w)
				}
			}
		})
	}
}
