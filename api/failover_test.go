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

// failoverBackend records the failover calls of an apitest.Backend.
type failoverBackend struct {
	*apitest.Backend
	st       api.FailoverStatus
	override api.PeerOverride
	drainReq api.DrainRequest
	checked  bool
	undrain  bool
}

func (b *failoverBackend) Failover(context.Context) (api.FailoverStatus, error) { return b.st, nil }
func (b *failoverBackend) FailoverCheck(context.Context) (api.FailoverStatus, error) {
	b.checked = true
	return b.st, nil
}
func (b *failoverBackend) SetPeerDown(_ context.Context, o api.PeerOverride) (api.FailoverStatus, error) {
	b.override = o
	return b.st, nil
}
func (b *failoverBackend) Drain(_ context.Context, r api.DrainRequest) (api.DrainResult, error) {
	b.drainReq = r
	return api.DrainResult{Status: b.st, Quiet: true, Waited: 1500 * time.Millisecond, PacketsDuring: 7, TrackFile: "/run/lispd/vrrp-drain"}, nil
}
func (b *failoverBackend) Undrain(context.Context) (api.FailoverStatus, error) {
	b.undrain = true
	return b.st, nil
}

func TestFailoverEndpoints(t *testing.T) {
	st := api.FailoverStatus{
		Enabled: true, LocalRLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.11")}, Interfaces: []string{"eth1"}, LinkUp: true,
		Withdrawn: []api.WithdrawnRLOC{{Address: netip.MustParseAddr("192.0.2.12"), Reason: "sync member xtr-a2 is dead"}},
		Members:   []api.FailoverMember{{Name: "xtr-a2", Known: true, RLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.12")}, RemoteITRs: 3}},
		RemoteITRs: []api.RemoteITR{{RLOC: netip.MustParseAddr("198.51.100.7"), EID: netip.MustParseAddr("10.2.0.1"),
			LastSeen: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}},
		Withdrawals: 1, SMRTargets: 1,
	}
	b := &failoverBackend{Backend: &apitest.Backend{}, st: st}
	s := startServer(t, b)
	c := newClient(t, s.socket)
	ctx := context.Background()
	got, err := c.Failover(ctx)
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("round trip %v:\n got %+v\nwant %+v", err, got, st)
	}
	if _, err := c.FailoverCheck(ctx); err != nil || !b.checked {
		t.Errorf("check: %v %v", err, b.checked)
	}
	o := api.PeerOverride{RLOC: netip.MustParseAddr("192.0.2.12"), Down: true}
	if _, err := c.SetPeerDown(ctx, o); err != nil || b.override != o {
		t.Errorf("peer-down: %v %+v", err, b.override)
	}
	res, err := c.Drain(ctx, api.DrainRequest{Timeout: time.Minute})
	if err != nil || !res.Quiet || res.Waited != 1500*time.Millisecond || b.drainReq.Timeout != time.Minute {
		t.Errorf("drain: %v %+v %+v", err, res, b.drainReq)
	}
	if _, err := c.Undrain(ctx); err != nil || !b.undrain {
		t.Errorf("undrain: %v", err)
	}
	_, _, body := rawRequest(t, s.socket, http.MethodGet, "/v1/failover", "")
	for _, f := range []string{`"link_up":true`, `"reason":"sync member xtr-a2 is dead"`, `"remote_itrs":3`, `"eid":"10.2.0.1"`} {
		if !strings.Contains(body, f) {
			t.Errorf("%s lacks %s", body, f)
		}
	}
	// A drain with no body uses the daemon's timeout.
	if code, _, _ := rawRequest(t, s.socket, http.MethodPost, "/v1/drain", ""); code != http.StatusOK || b.drainReq.Timeout != 0 {
		t.Errorf("empty drain: %d %+v", code, b.drainReq)
	}
	// Bad input is refused before the backend sees it.
	if code, _, _ := rawRequest(t, s.socket, http.MethodPost, "/v1/failover/peer", `{"down":true}`); code != http.StatusBadRequest {
		t.Errorf("peer override without an RLOC: %d", code)
	}
	if code, _, _ := rawRequest(t, s.socket, http.MethodPost, "/v1/drain", `{"timeout_ns":-1}`); code != http.StatusBadRequest {
		t.Errorf("negative drain timeout: %d", code)
	}
	// A daemon without an xTR role answers 503.
	var se *api.StatusError
	s2 := startServer(t, &apitest.Backend{})
	if _, err := newClient(t, s2.socket).Failover(ctx); !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no xTR: %v", err)
	}
}
