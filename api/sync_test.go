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

// syncBackend adds the synchronization set's view to an apitest.Backend.
type syncBackend struct {
	*apitest.Backend
	st  api.SyncStatus
	err error
}

func (b *syncBackend) SyncStatus(context.Context) (api.SyncStatus, error) { return b.st, b.err }

func TestSyncEndpoints(t *testing.T) {
	st := api.SyncStatus{
		Mode: api.SyncModeSmart, Name: "itr-1", Listen: netip.MustParseAddrPort("192.0.2.1:4343"),
		PublicKey: "Ua1+5XlAu6Z2vT5tkR2jsR1tTGlsf0WdM8jS7mZD1ZY=", Origin: 42, PeersKnown: 1, PeersConnected: 1,
		RefreshWindowSeconds: 60, RoundIntervalSeconds: 5,
		Counters: api.SyncCounters{RecordsSent: 10, RecordsReceived: 3, BytesSent: 450, AuthFailures: 1},
		Peers: []api.SyncPeer{{
			Name: "itr-2", Address: netip.MustParseAddrPort("192.0.2.2:4343"), Dials: true, State: api.SyncPeerConnected,
			Since: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), RecordsSent: 10, BytesSent: 450, Connects: 1,
		}},
	}
	s := startServer(t, &syncBackend{Backend: &apitest.Backend{}, st: st})
	c := newClient(t, s.socket)
	got, err := c.SyncStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, st)
	}
	peers, err := c.SyncPeers(context.Background())
	if err != nil || !reflect.DeepEqual(peers, st.Peers) {
		t.Errorf("peers %+v %v", peers, err)
	}
	_, _, body := rawRequest(t, s.socket, http.MethodGet, "/v1/sync/status", "")
	for _, field := range []string{`"mode":"smart"`, `"records_sent":10`, `"auth_failures":1`, `"state":"connected"`, `"listen":"192.0.2.1:4343"`} {
		if !strings.Contains(body, field) {
			t.Errorf("%s lacks %s", body, field)
		}
	}
	if strings.Contains(body, "last_exchange") {
		t.Errorf("a zero last_exchange is not omitted: %s", body)
	}
	// No peers is an empty array.
	s2 := startServer(t, &syncBackend{Backend: &apitest.Backend{}, st: api.SyncStatus{Mode: api.SyncModeGossip}})
	if _, _, body := rawRequest(t, s2.socket, http.MethodGet, "/v1/sync/peers", ""); strings.TrimSpace(body) != "[]" {
		t.Errorf("no peers: %s", body)
	}
	// A Backend without a set, or with the set off, answers 503.
	var se *api.StatusError
	s3 := startServer(t, &apitest.Backend{})
	if _, err := newClient(t, s3.socket).SyncPeers(context.Background()); !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no set: %v", err)
	}
	s4 := startServer(t, &syncBackend{Backend: &apitest.Backend{}, err: api.WithKind(api.ErrUnavailable, errors.New("sync is off"))})
	if _, err := newClient(t, s4.socket).SyncStatus(context.Background()); !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable || se.Message != "sync is off" {
		t.Errorf("set off: %v", err)
	}
}
