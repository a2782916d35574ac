package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/api/apitest"
)

// failoverBackend is an apitest.Backend with a failover view.
type failoverBackend struct {
	apitest.Backend
	st       api.FailoverStatus
	override api.PeerOverride
	drained  bool
	quiet    bool
}

func (b *failoverBackend) Failover(context.Context) (api.FailoverStatus, error) { return b.st, nil }
func (b *failoverBackend) FailoverCheck(context.Context) (api.FailoverStatus, error) {
	return b.st, nil
}
func (b *failoverBackend) SetPeerDown(_ context.Context, o api.PeerOverride) (api.FailoverStatus, error) {
	b.override = o
	return b.st, nil
}
func (b *failoverBackend) Drain(context.Context, api.DrainRequest) (api.DrainResult, error) {
	b.drained = true
	return api.DrainResult{Status: b.st, Quiet: b.quiet, Waited: 1200 * time.Millisecond, PacketsDuring: 9, TrackFile: "/run/lispd/vrrp-drain"}, nil
}
func (b *failoverBackend) Undrain(context.Context) (api.FailoverStatus, error) {
	b.drained = false
	return b.st, nil
}

func TestFailoverCommands(t *testing.T) {
	st := api.FailoverStatus{
		Enabled: true, LocalRLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.11")}, Interfaces: []string{"eth1"}, LinkUp: true,
		Withdrawn: []api.WithdrawnRLOC{{Address: netip.MustParseAddr("192.0.2.12"), Reason: "sync member xtr-a2 is dead"}},
		Members:   []api.FailoverMember{{Name: "xtr-a2", Known: true, RLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.12")}, RemoteITRs: 1}},
		RemoteITRs: []api.RemoteITR{{RLOC: netip.MustParseAddr("198.51.100.7"), EID: netip.MustParseAddr("10.2.0.1"),
			LastSeen: time.Now().Add(-3 * time.Second)}},
		Withdrawals: 1, SMRTargets: 1,
	}
	b := &failoverBackend{st: st, quiet: true}
	socket := startETRDaemon(t, b)
	r := cli(t, socket, "failover", "show")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := `failover                  on
local rlocs               192.0.2.11
eid-side interfaces       eth1 (up)
drained                   no
withdrawals/restorations  1/0 (SMR targets 1)

WITHDRAWN RLOCS
RLOC        REASON
192.0.2.12  sync member xtr-a2 is dead

SYNC MEMBERS
NAME    ALIVE  SERVING  RLOCS       REMOTE-ITRS  REASON
xtr-a2  no     no       192.0.2.12  1

REMOTE ITRS
RLOC          IID  EID       LAST-SEEN
198.51.100.7  0    10.2.0.1  Ns ago
`
	if got := regexp.MustCompile(`\d+s ago`).ReplaceAllString(r.stdout, "Ns ago"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	r = cli(t, socket, "failover", "show", "--json")
	var got api.FailoverStatus
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.Withdrawn) != 1 {
		t.Errorf("--json: %v %+v", err, got)
	}
	if r := cli(t, socket, "failover", "peer-down", "192.0.2.12"); r.code != 0 || !b.override.Down || b.override.RLOC != netip.MustParseAddr("192.0.2.12") {
		t.Errorf("peer-down: exit %d %+v %s", r.code, b.override, r.stderr)
	}
	if r := cli(t, socket, "failover", "peer-up", "192.0.2.12"); r.code != 0 || b.override.Down {
		t.Errorf("peer-up: exit %d %+v", r.code, b.override)
	}
	if r := cli(t, socket, "failover", "peer-down", "not-an-ip"); r.code != 2 {
		t.Errorf("bad address: exit %d", r.code)
	}
	if r := cli(t, socket, "failover", "check"); r.code != 0 {
		t.Errorf("check: exit %d", r.code)
	}
	r = cli(t, socket, "drain")
	if r.code != 0 || !b.drained || !strings.Contains(r.stdout, "VRRP track file /run/lispd/vrrp-drain set") || !strings.Contains(r.stdout, "9 LISP packets") {
		t.Errorf("drain: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := cli(t, socket, "undrain"); r.code != 0 || b.drained {
		t.Errorf("undrain: exit %d", r.code)
	}
	// A drain that did not go quiet exits 1.
	b.quiet = false
	if r := cli(t, socket, "drain"); r.code != 1 || !strings.Contains(r.stderr, "still arriving") {
		t.Errorf("noisy drain: exit %d %q", r.code, r.stderr)
	}
	// A daemon without an xTR role.
	plain := startETRDaemon(t, &apitest.Backend{})
	if r := cli(t, plain, "failover", "show"); r.code != 1 {
		t.Errorf("no xTR: exit %d, stderr %q", r.code, r.stderr)
	}
}
