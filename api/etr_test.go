package api_test

import (
	"context"
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

// etrBackend adds the ETR view to an apitest.Backend.
type etrBackend struct {
	*apitest.Backend
	st api.ETRStatus
}

func (b *etrBackend) ETR(context.Context) (api.ETRStatus, error) { return b.st, nil }

func TestETREndpoint(t *testing.T) {
	st := api.ETRStatus{
		XTRID:      api.XTRID{1, 2, 3},
		SiteID:     7,
		TTLSeconds: 86400,
		Database: []api.ETRMapping{{InstanceID: 0, EIDPrefix: netip.MustParsePrefix("10.1.0.0/24"),
			RLOCs: []api.RLOC{{Address: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 100, Local: true, Reachable: true}}}},
		MapServers: []api.ETRRegistration{{MapServer: netip.MustParseAddrPort("192.0.2.100:4342"), State: api.ETRStateUp,
			LastRegister: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), RegistersSent: 3, NotifiesReceived: 3, Algorithm: "hmac-sha-256"}},
	}
	s := startServer(t, &etrBackend{Backend: &apitest.Backend{}, st: st})
	c := newClient(t, s.socket)
	got, err := c.ETR(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, st)
	}
	code, _, body := rawRequest(t, s.socket, http.MethodGet, "/v1/etr", "")
	for _, field := range []string{`"xtr_id":"01020300000000000000000000000000"`, `"map_servers":[`, `"state":"up"`, `"last_register":`, `"eid_prefix":"10.1.0.0/24"`} {
		if !strings.Contains(body, field) {
			t.Errorf("%d %s lacks %s", code, body, field)
		}
	}
	if strings.Contains(body, "last_notify") {
		t.Errorf("a zero last_notify is not omitted: %s", body)
	}

	// Empty lists are arrays, not null.
	s2 := startServer(t, &etrBackend{Backend: &apitest.Backend{}})
	_, _, body = rawRequest(t, s2.socket, http.MethodGet, "/v1/etr", "")
	if !strings.Contains(body, `"database":[]`) || !strings.Contains(body, `"map_servers":[]`) {
		t.Errorf("empty answer %s", body)
	}

	// A Backend without an ETR answers 503.
	s3 := startServer(t, &apitest.Backend{})
	_, err = newClient(t, s3.socket).ETR(context.Background())
	var se *api.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no ETR: %v", err)
	}
}
