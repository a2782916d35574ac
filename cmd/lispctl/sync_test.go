package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/api/apitest"
	"github.com/lispd/lispd/cachesync"
)

// syncFake is a backend with a synchronization set.
type syncFake struct {
	*apitest.Backend
	st api.SyncStatus
}

func (b *syncFake) SyncStatus(context.Context) (api.SyncStatus, error) { return b.st, nil }

// serveBackend serves b on a socket in a temp dir until the test ends.
func serveBackend(t *testing.T, b api.Backend) string {
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
	t.Cleanup(func() { cancel(); <-done })
	return socket
}

var syncStatus = api.SyncStatus{
	Mode: api.SyncModeSmart, Name: "itr-1", Listen: netip.MustParseAddrPort("192.0.2.1:4343"),
	PublicKey: "Ua1+5XlAu6Z2vT5tkR2jsR1tTGlsf0WdM8jS7mZD1ZY=", Origin: 42, PeersKnown: 2, PeersConnected: 1,
	RefreshWindowSeconds: 60, RoundIntervalSeconds: 5,
	Counters: api.SyncCounters{RecordsSent: 120, RecordsReceived: 37, RecordsApplied: 30, RecordsIgnored: 7,
		BytesSent: 5400, BytesReceived: 1665, AuthFailures: 2, Refreshes: 4, KeptForPeers: 3},
	Peers: []api.SyncPeer{
		{Name: "itr-2", Address: netip.MustParseAddrPort("192.0.2.2:4343"), Dials: true, State: api.SyncPeerConnected,
			Since: time.Now().Add(-time.Hour), LastExchange: time.Now().Add(-2 * time.Minute), Connects: 1,
			RecordsSent: 120, RecordsReceived: 37, BytesSent: 5400, BytesReceived: 1665},
		{Name: "itr-3", Address: netip.MustParseAddrPort("192.0.2.3:4343"), State: api.SyncPeerRefused,
			LastError: "cachesync: peer public key not pinned", AuthFailures: 2},
	},
}

func TestSyncStatusCommand(t *testing.T) {
	socket := serveBackend(t, &syncFake{Backend: &apitest.Backend{}, st: syncStatus})
	r := cli(t, socket, "sync", "status")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"mode            smart", "itr-1 (origin 42)", "1 connected of 2", "120 sent, 37 received (30 applied, 7 not newer",
		"2 authentication failures", "4 refreshed, 3 kept for peers",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, want := range []string{
		`(?m)^PEER +STATE +LAST-EXCHANGE +RECORDS-SENT +RECORDS-RCVD +BYTES-SENT +BYTES-RCVD$`,
		`(?m)^itr-2 +connected +2m\S* ago +120 +37 +5400 +1665$`,
		`(?m)^itr-3 +refused +never +0 +0 +0 +0$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("output does not match %q:\n%s", want, r.stdout)
		}
	}
	r = cli(t, socket, "sync", "status", "--json")
	var got api.SyncStatus
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Counters != syncStatus.Counters || len(got.Peers) != 2 {
		t.Fatalf("json: %v %+v", err, got)
	}
}

func TestSyncPeersCommand(t *testing.T) {
	socket := serveBackend(t, &syncFake{Backend: &apitest.Backend{}, st: syncStatus})
	r := cli(t, socket, "sync", "peers")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// The times depend on when the test runs: matched loosely.
	for _, want := range []string{
		`(?m)^PEER +ADDRESS +STATE +SINCE +LAST-EXCHANGE +DIALS +CONNECTS +AUTH-FAIL$`,
		`(?m)^itr-2 +192\.0\.2\.2:4343 +connected +1h\S* ago +2m\S* ago +us +1 +0$`,
		`(?m)^itr-3 +192\.0\.2\.3:4343 +refused +never +never +peer +0 +2$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("output does not match %q:\n%s", want, r.stdout)
		}
	}
	r = cli(t, socket, "sync", "peers", "--json")
	var got []api.SyncPeer
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 2 || got[1].LastError != syncStatus.Peers[1].LastError {
		t.Fatalf("json: %v %+v", err, got)
	}
	// A daemon without a synchronization set: exit 1 with the reason.
	plain, _ := startDaemon(t, apitest.Data{})
	r = cli(t, plain, "sync", "peers")
	if r.code != 1 || !strings.Contains(r.stderr, "no synchronization set") {
		t.Fatalf("no set: exit %d, %q", r.code, r.stderr)
	}
}

func TestSyncKeygen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sync.key")
	r := runCLI(t, nil, "sync", "keygen", path)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	pub := strings.TrimSpace(r.stdout)
	k, err := cachesync.LoadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cachesync.FormatPublicKey(cachesync.PublicKeyOf(k)); got != pub {
		t.Fatalf("printed %q, the key's public half is %q", pub, got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	// Never overwrites.
	if r := runCLI(t, nil, "sync", "keygen", path); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("overwrite: exit %d %q", r.code, r.stderr)
	}
	// pubkey prints the same key; --json gives both.
	if r := runCLI(t, nil, "sync", "pubkey", path); strings.TrimSpace(r.stdout) != pub {
		t.Fatalf("pubkey %q", r.stdout)
	}
	r = runCLI(t, nil, "sync", "keygen", filepath.Join(dir, "b.key"), "--json")
	var res keyResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res.PublicKey) != 44 || !filepath.IsAbs(res.PrivateKeyFile) {
		t.Fatalf("json %q: %v", r.stdout, err)
	}
	if r := runCLI(t, nil, "sync", "keygen"); r.code != 2 {
		t.Fatalf("no argument: exit %d", r.code)
	}
}
