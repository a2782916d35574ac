package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/api/apitest"
)

// pubsubBackend adds the subscriptions to an apitest.Backend.
type pubsubBackend struct {
	*apitest.Backend
	subs api.Subscriptions
}

func (b *pubsubBackend) Subscriptions(context.Context) (api.Subscriptions, error) { return b.subs, nil }

func TestSubscriptionsEndpoint(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	subs := api.Subscriptions{
		MapServer: []api.MapServerSubscription{{
			InstanceID: 7, Prefix: netip.MustParsePrefix("10.2.0.0/24"), XTRID: api.XTRID{0xab, 1}, SiteID: 3,
			ITR: netip.MustParseAddrPort("192.0.2.11:4342"), Confirmed: true, Nonce: 0xfedcba9876543210,
			Expires: at, Pending: 1,
		}, {
			Prefix: netip.MustParsePrefix("10.9.0.0/16"), ITR: netip.MustParseAddrPort("[2001:db8::1]:4342"),
			Negative: true, Nonce: 5, Expires: at,
		}},
		ITR: []api.ITRSubscription{{
			InstanceID: 7, Prefix: netip.MustParsePrefix("10.2.0.0/24"), MapServer: netip.MustParseAddr("192.0.2.100"),
			Nonce: 0xfedcba9876543211, Subscribed: at, LastNotify: at.Add(time.Minute), Notifies: 2,
		}},
	}
	s := startServer(t, &pubsubBackend{Backend: &apitest.Backend{}, subs: subs})
	c := newClient(t, s.socket)
	got, err := c.Subscriptions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, subs) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, subs)
	}
	code, _, body := rawRequest(t, s.socket, http.MethodGet, "/v1/subscriptions", "")
	for _, field := range []string{`"map_server":[{"iid":7,"prefix":"10.2.0.0/24","xtr_id":"ab010000000000000000000000000000","site_id":3,` +
		`"itr":"192.0.2.11:4342","confirmed":true,"negative":false,"nonce":"0xfedcba9876543210","expires":"2026-03-01T12:00:00Z","pending":1}`,
		`"itr":[{"iid":7,"prefix":"10.2.0.0/24","map_server":"192.0.2.100","nonce":"0xfedcba9876543211",` +
			`"subscribed":"2026-03-01T12:00:00Z","last_notify":"2026-03-01T12:01:00Z","notifies":2}]`,
		`"itr":"[2001:db8::1]:4342"`, `"nonce":"0x0000000000000005"`} {
		if code != http.StatusOK || !strings.Contains(body, field) {
			t.Errorf("%d %s lacks %s", code, body, field)
		}
	}

	// A role that is off is absent; a role with no subscriptions is [].
	s2 := startServer(t, &pubsubBackend{Backend: &apitest.Backend{}, subs: api.Subscriptions{ITR: []api.ITRSubscription{}}})
	_, _, body = rawRequest(t, s2.socket, http.MethodGet, "/v1/subscriptions", "")
	if strings.TrimSpace(body) != `{"itr":[]}` {
		t.Errorf("ITR only, none: %s", body)
	}
	// An ITR subscription that was never confirmed has no times.
	s3 := startServer(t, &pubsubBackend{Backend: &apitest.Backend{}, subs: api.Subscriptions{
		ITR: []api.ITRSubscription{{Prefix: netip.MustParsePrefix("10.2.0.0/24"), Nonce: 1}}}})
	_, _, body = rawRequest(t, s3.socket, http.MethodGet, "/v1/subscriptions", "")
	if strings.Contains(body, "subscribed") || strings.Contains(body, "last_notify") || strings.Contains(body, "map_server") {
		t.Errorf("zero times and address are not omitted: %s", body)
	}

	// A Backend without pub/sub answers 503.
	s4 := startServer(t, &apitest.Backend{})
	_, err = newClient(t, s4.socket).Subscriptions(context.Background())
	var se *api.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no pub/sub: %v", err)
	}
}

func TestNonceText(t *testing.T) {
	for _, tc := range []struct {
		n    api.Nonce
		text string
	}{{0, `"0x0000000000000000"`}, {1, `"0x0000000000000001"`}, {1<<64 - 1, `"0xffffffffffffffff"`}} {
		b, err := json.Marshal(tc.n)
		if err != nil || string(b) != tc.text {
			t.Errorf("Marshal(%d) = %s %v, want %s", uint64(tc.n), b, err, tc.text)
		}
		var n api.Nonce
		if err := json.Unmarshal(b, &n); err != nil || n != tc.n {
			t.Errorf("Unmarshal(%s) = %v %v", b, n, err)
		}
	}
	var n api.Nonce
	if err := json.Unmarshal([]byte(`"0x1f"`), &n); err != nil || n != 0x1f {
		t.Errorf("short nonce: %v %v", n, err)
	}
	for _, bad := range []string{`"1f"`, `"0x"`, `"0xg"`, `"0x10000000000000000"`, `17`} {
		if err := json.Unmarshal([]byte(bad), &n); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
