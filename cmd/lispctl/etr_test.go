package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/api/apitest"
)

// etrBackend is an apitest.Backend with an ETR view.
type etrBackend struct {
	apitest.Backend
	st api.ETRStatus
}

func (b *etrBackend) ETR(context.Context) (api.ETRStatus, error) { return b.st, nil }

// startETRDaemon serves b on a socket until the test ends.
func startETRDaemon(t *testing.T, b api.Backend) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "lispd.sock")
	ln, err := api.ListenUnix(socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := api.NewServer(b, nil).ServeListener(ctx, ln); err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return socket
}

func TestETRShow(t *testing.T) {
	// The "ago" columns use the real clock; the check below masks them.
	now := time.Now()
	st := api.ETRStatus{
		XTRID: api.XTRID{0xab, 0xcd}, SiteID: 7, TTLSeconds: 86400,
		Database: []api.ETRMapping{
			{EIDPrefix: netip.MustParsePrefix("10.1.0.0/24"), RLOCs: []api.RLOC{
				{Address: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 60, Local: true, Reachable: true},
				{Address: netip.MustParseAddr("192.0.2.2"), Priority: 1, Weight: 40, Reachable: true}}},
			{InstanceID: 1000, EIDPrefix: netip.MustParsePrefix("10.1.0.0/24"), RLOCs: []api.RLOC{
				{Address: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 100, Local: true, Reachable: true}}},
		},
		MapServers: []api.ETRRegistration{
			{MapServer: netip.MustParseAddrPort("192.0.2.100:4342"), State: api.ETRStateUp, LastRegister: now.Add(-5 * time.Second),
				LastNotify: now.Add(-5 * time.Second), RegistersSent: 12, NotifiesReceived: 12, Algorithm: "hmac-sha-256"},
			{MapServer: netip.MustParseAddrPort("192.0.2.101:4342"), State: api.ETRStateDown, LastRegister: now.Add(-5 * time.Second),
				RegistersSent: 12, AuthFailures: 3, Algorithm: "hmac-sha-1"},
		},
	}
	socket := startETRDaemon(t, &etrBackend{st: st})
	r := cli(t, socket, "etr", "show")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := `xtr-id       abcd0000000000000000000000000000
site-id      7
record ttl   24h
proxy-reply  no

MAP-SERVER        STATE  LAST-REGISTER  LAST-NOTIFY  REGISTERS  NOTIFIES  AUTH-FAIL  KEY-ID  ALGORITHM
192.0.2.100:4342  up     Ns ago         Ns ago       12         12        0          0       hmac-sha-256
192.0.2.101:4342  down   Ns ago         never        12         0         3          0       hmac-sha-1

EID-PREFIX            RLOC       PRI/WGT  LOCAL
10.1.0.0/24           192.0.2.1  1/60     true
                      192.0.2.2  1/40     false
iid:1000/10.1.0.0/24  192.0.2.1  1/100    true
`
	if got := regexp.MustCompile(`\d+s ago`).ReplaceAllString(r.stdout, "Ns ago"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	r = cli(t, socket, "etr", "show", "--json")
	var got api.ETRStatus
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.SiteID != 7 || len(got.MapServers) != 2 {
		t.Errorf("--json: %v %+v", err, got)
	}
	// --check fails while a Map-Server is down.
	if r := cli(t, socket, "etr", "show", "--check"); r.code != 1 || !strings.Contains(r.stderr, "192.0.2.101:4342 (down)") {
		t.Errorf("--check: exit %d, stderr %q", r.code, r.stderr)
	}
	// A daemon without the etr role.
	plain := startETRDaemon(t, &apitest.Backend{})
	if r := cli(t, plain, "etr", "show"); r.code != 1 || !strings.Contains(r.stderr, "ETR") {
		t.Errorf("no ETR: exit %d, stderr %q", r.code, r.stderr)
	}
}
