package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/api/apitest"
)

// pubsubBackend is an apitest.Backend with subscriptions.
type pubsubBackend struct {
	apitest.Backend
	subs api.Subscriptions
}

func (b *pubsubBackend) Subscriptions(context.Context) (api.Subscriptions, error) { return b.subs, nil }

func TestSubscriptionsShow(t *testing.T) {
	subs := api.Subscriptions{
		MapServer: []api.MapServerSubscription{{
			Prefix: netip.MustParsePrefix("10.2.0.0/24"), XTRID: api.XTRID{0xab, 1}, SiteID: 3,
			ITR: netip.MustParseAddrPort("192.0.2.11:4342"), Confirmed: true, Nonce: 0x1234,
			Expires: now.Add(23*time.Hour + 59*time.Minute), Pending: 1,
		}, {
			InstanceID: 7, Prefix: netip.MustParsePrefix("10.9.0.0/16"), XTRID: api.XTRID{0xcd},
			ITR: netip.MustParseAddrPort("192.0.2.12:4342"), Negative: true, Nonce: 0x77, Expires: now.Add(15 * time.Minute),
		}},
		ITR: []api.ITRSubscription{{
			Prefix: netip.MustParsePrefix("10.1.0.0/24"), MapServer: netip.MustParseAddr("192.0.2.100"),
			Nonce: 0x41, Subscribed: now.Add(-90 * time.Second), LastNotify: now.Add(-5 * time.Second), Notifies: 3,
		}, {
			Prefix: netip.MustParsePrefix("10.3.0.0/24"), Nonce: 0x42,
		}},
	}
	socket := startETRDaemon(t, &pubsubBackend{subs: subs})
	r := cli(t, socket, "subscriptions", "show")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := `MAP-SERVER SUBSCRIPTIONS
IID  PREFIX       XTR-ID                            SITE-ID  ITR              STATE      NEGATIVE  NONCE               EXPIRES  PENDING
0    10.2.0.0/24  ab010000000000000000000000000000  3        192.0.2.11:4342  confirmed  no        0x0000000000001234  23h59m   1
7    10.9.0.0/16  cd000000000000000000000000000000  0        192.0.2.12:4342  pending    yes       0x0000000000000077  15m      0

ITR SUBSCRIPTIONS
IID  PREFIX       MAP-SERVER   NONCE               SUBSCRIBED  LAST-NOTIFY  NOTIFIES
0    10.1.0.0/24  192.0.2.100  0x0000000000000041  1m30s ago   5s ago       3
0    10.3.0.0/24  -            0x0000000000000042  never       never        0
`
	if r.stdout != want {
		t.Errorf("got\n%s\nwant\n%s", r.stdout, want)
	}

	r = cli(t, socket, "subscriptions", "show", "--json")
	var got api.Subscriptions
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.MapServer) != 2 || len(got.ITR) != 2 ||
		got.MapServer[0].Nonce != 0x1234 || !strings.Contains(r.stdout, `"nonce": "0x0000000000001234"`) {
		t.Errorf("--json: %v %+v\n%s", err, got, r.stdout)
	}

	// An ITR-only daemon prints its table only; none at all is said on
	// stderr.
	itr := startETRDaemon(t, &pubsubBackend{subs: api.Subscriptions{ITR: []api.ITRSubscription{}}})
	r = cli(t, itr, "subscriptions", "show")
	if r.code != 0 || r.stdout != "ITR SUBSCRIPTIONS\nIID  PREFIX  MAP-SERVER  NONCE  SUBSCRIBED  LAST-NOTIFY  NOTIFIES\n" ||
		r.stderr != "no subscriptions\n" {
		t.Errorf("ITR only: %+v", r)
	}
	r = cli(t, itr, "subscriptions", "show", "--json")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "{\n  \"itr\": []\n}" || r.stderr != "" {
		t.Errorf("ITR only, --json: %+v", r)
	}

	// A daemon without pub/sub: exit status 1 with the daemon's reason.
	plain := startETRDaemon(t, &apitest.Backend{})
	if r := cli(t, plain, "subscriptions", "show"); r.code != 1 || !strings.Contains(r.stderr, "publish/subscribe") {
		t.Errorf("no pub/sub: %+v", r)
	}
	// Arguments are usage errors.
	if r := cli(t, socket, "subscriptions", "show", "10.1.0.0/24"); r.code != 2 {
		t.Errorf("argument: %+v", r)
	}
	// Completion knows the command.
	if r := runCLI(t, nil, "__complete", "sub"); r.code != 0 || !strings.Contains(r.stdout, "subscriptions") {
		t.Errorf("__complete sub: %+v", r)
	}
	if r := runCLI(t, nil, "__complete", "subscriptions", ""); r.code != 0 || !strings.Contains(r.stdout, "show") {
		t.Errorf("__complete subscriptions: %+v", r)
	}
}
