package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/api/apitest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type server struct {
	socket string
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returned
	err    error         // what it returned
}

// stop shuts the server down and returns Serve's result.
func (s *server) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
		return s.err
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop")
		return nil
	}
}

// startServer serves b on a socket in a new temp dir; the server stops at
// the end of the test.
func startServer(t *testing.T, b api.Backend) *server {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "run", "lispd.sock")
	ln, err := api.ListenUnix(socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{socket: socket, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = api.NewServer(b, nil).ServeListener(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

func newClient(t *testing.T, socket string, opts ...api.ClientOption) *api.Client {
	t.Helper()
	c := api.NewClient(socket, opts...)
	t.Cleanup(func() { c.Close() })
	return c
}

var (
	t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	sampleStatus = api.Status{
		Version:       "0.1.0",
		Roles:         []string{"ms", "mr"},
		PID:           4242,
		ConfigPath:    "/etc/lispd/lispd.toml",
		StartedAt:     t0,
		UptimeSeconds: 3723,
		LogLevel:      "info",
		Listeners:     []api.Listener{{Name: "control", Network: "udp", Address: "0.0.0.0:4342"}},
		Counters:      map[string]uint64{"map_register_received": 10, "map_request_received": 3},
	}
	sampleRegs = []api.Registration{{
		Site:       "site-a",
		InstanceID: 1000,
		EIDPrefix:  netip.MustParsePrefix("10.1.0.0/16"),
		XTRID:      api.XTRID{0xab, 0xcd, 15: 1},
		SiteID:     7,
		RLOCs: []api.RLOC{{
			Address: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 100, MPriority: 255, MWeight: 0,
			Local: true, Reachable: true,
		}},
		RegisteredBy:    netip.MustParseAddrPort("192.0.2.1:4342"),
		FirstRegistered: t0,
		LastRegistered:  t0.Add(time.Minute),
		Expires:         t0.Add(4 * time.Minute),
		ProxyReply:      true,
		WantMapNotify:   true,
		TTLSeconds:      86400,
		KeyID:           0,
		Algorithm:       "hmac-sha-256",
	}}
	sampleCache = []api.MapCacheEntry{
		{
			InstanceID: 0, Prefix: netip.MustParsePrefix("10.2.0.0/16"),
			RLOCs:  []api.RLOC{{Address: netip.MustParseAddr("2001:db8::1"), Priority: 1, Weight: 50, Reachable: true}},
			Action: api.ActionNoAction, TTLSeconds: 86400, Expires: t0.Add(24 * time.Hour),
			Source: api.SourceMapReply, MapVersion: 3, LastUsed: t0,
		},
		{
			InstanceID: 0, Prefix: netip.MustParsePrefix("10.9.0.0/16"), Action: api.ActionNativelyForward,
			TTLSeconds: 900, Source: api.SourceMapReply,
		},
	}
)

func sampleBackend() *apitest.Backend {
	b := &apitest.Backend{}
	b.Set(apitest.Data{Status: sampleStatus, Registrations: sampleRegs, MapCache: sampleCache})
	return b
}

func TestEndpointsRoundTrip(t *testing.T) {
	b := sampleBackend()
	s := startServer(t, b)
	c := newClient(t, s.socket)
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil || !reflect.DeepEqual(st, sampleStatus) {
		t.Errorf("Status = %+v, %v\nwant %+v", st, err, sampleStatus)
	}
	regs, err := c.Registrations(ctx)
	if err != nil || !reflect.DeepEqual(regs, sampleRegs) {
		t.Errorf("Registrations = %+v, %v", regs, err)
	}
	mc, err := c.MapCache(ctx)
	want := append([]api.MapCacheEntry(nil), sampleCache...)
	want[1].RLOCs = []api.RLOC{} // the server sends [] rather than null
	if err != nil || !reflect.DeepEqual(mc, want) {
		t.Errorf("MapCache = %+v, %v\nwant %+v", mc, err, want)
	}
	if err := c.Reload(ctx); err != nil || b.Reloads() != 1 {
		t.Errorf("Reload: %v, reloads %d", err, b.Reloads())
	}
	if err := c.SetLogLevel(ctx, "WARNING"); err != nil {
		t.Fatal(err)
	}
	if got := b.LogLevels(); !reflect.DeepEqual(got, []string{"warn"}) {
		t.Errorf("backend got levels %v, want the canonical [warn]", got)
	}
	if st, _ := c.Status(ctx); st.LogLevel != "warn" {
		t.Errorf("status log level = %q", st.LogLevel)
	}
}

// rawRequest sends one HTTP request over the socket and returns the status,
// headers and body.
func rawRequest(t *testing.T, socket, method, path, body string) (int, http.Header, string) {
	t.Helper()
	conn, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: lispd\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", method, path, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestJSONFieldNames(t *testing.T) {
	s := startServer(t, sampleBackend())
	keys := func(path string) []string {
		code, h, body := rawRequest(t, s.socket, "GET", path, "")
		if code != 200 || h.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s %s", path, code, h.Get("Content-Type"), body)
		}
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		if list, ok := v.([]any); ok {
			v = list[0]
		}
		var out []string
		for k := range v.(map[string]any) {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	want := map[string][]string{
		"/v1/status": {"config_path", "counters", "listeners", "log_level", "pid", "roles", "started_at", "uptime_seconds", "version"},
		"/v1/registrations": {"algorithm", "eid_prefix", "expires", "first_registered", "iid", "key_id", "last_registered",
			"proxy_reply", "registered_by", "rlocs", "site", "site_id", "ttl_seconds", "want_map_notify", "xtr_id"},
		"/v1/map-cache": {"action", "expires", "iid", "last_used", "prefix", "rlocs", "source", "ttl_seconds", "version"},
	}
	for path, w := range want {
		if got := keys(path); !reflect.DeepEqual(got, w) {
			t.Errorf("%s keys = %v\nwant %v", path, got, w)
		}
	}
	_, _, body := rawRequest(t, s.socket, "GET", "/v1/registrations", "")
	for _, frag := range []string{`"xtr_id":"abcd0000000000000000000000000001"`, `"eid_prefix":"10.1.0.0/16"`,
		`"registered_by":"192.0.2.1:4342"`, `"m_priority":255`} {
		if !strings.Contains(body, frag) {
			t.Errorf("registrations JSON lacks %s: %s", frag, body)
		}
	}
	// Entries that never expire or were never used leave the fields out.
	_, _, body = rawRequest(t, s.socket, "GET", "/v1/map-cache", "")
	var entries []map[string]any
	if err := json.Unmarshal([]byte(body), &entries); err != nil {
		t.Fatal(err)
	}
	if _, ok := entries[1]["expires"]; ok {
		t.Errorf("zero expires is sent: %v", entries[1])
	}
}

func TestEmptyAnswersAreArrays(t *testing.T) {
	s := startServer(t, &apitest.Backend{})
	for path, want := range map[string]string{"/v1/registrations": "[]\n", "/v1/map-cache": "[]\n"} {
		if _, _, body := rawRequest(t, s.socket, "GET", path, ""); body != want {
			t.Errorf("%s = %q, want %q", path, body, want)
		}
	}
	_, _, body := rawRequest(t, s.socket, "GET", "/v1/status", "")
	for _, frag := range []string{`"roles":[]`, `"listeners":[]`, `"counters":{}`} {
		if !strings.Contains(body, frag) {
			t.Errorf("status lacks %s: %s", frag, body)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	b := sampleBackend()
	s := startServer(t, b)
	c := newClient(t, s.socket)
	ctx := context.Background()
	tests := []struct {
		method string
		err    error
		kind   error
		code   int
	}{
		{"Registrations", api.WithKind(api.ErrUnavailable, errors.New("this daemon has no ms role")), api.ErrUnavailable, 503},
		{"MapCache", api.WithKind(api.ErrNotFound, errors.New("no such instance")), api.ErrNotFound, 404},
		{"Reload", api.WithKind(api.ErrFailedPrecondition, errors.New("lispd.toml:3: daemon.roles: bad")), api.ErrFailedPrecondition, 409},
		{"Status", fmt.Errorf("wrapped: %w", api.ErrInvalidArgument), api.ErrInvalidArgument, 400},
		{"SetLogLevel", errors.New("disk on fire"), nil, 500},
	}
	for _, tt := range tests {
		b.FailWith(tt.method, tt.err)
		var err error
		switch tt.method {
		case "Registrations":
			_, err = c.Registrations(ctx)
		case "MapCache":
			_, err = c.MapCache(ctx)
		case "Reload":
			err = c.Reload(ctx)
		case "Status":
			_, err = c.Status(ctx)
		case "SetLogLevel":
			err = c.SetLogLevel(ctx, "debug")
		}
		b.FailWith(tt.method, nil)
		var se *api.StatusError
		if !errors.As(err, &se) || se.StatusCode != tt.code || se.Message != tt.err.Error() {
			t.Errorf("%s: err = %#v, want HTTP %d with message %q", tt.method, err, tt.code, tt.err.Error())
			continue
		}
		if tt.kind != nil && !errors.Is(err, tt.kind) {
			t.Errorf("%s: errors.Is(%v, %v) is false", tt.method, err, tt.kind)
		}
		if api.IsUnreachable(err) {
			t.Errorf("%s: a daemon error counts as unreachable", tt.method)
		}
	}
	if b.Reloads() != 0 {
		t.Error("failed reload counted")
	}
}

func TestBadRequests(t *testing.T) {
	b := sampleBackend()
	s := startServer(t, b)
	tests := []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"GET", "/v1/nope", "", 404, "no endpoint /v1/nope"},
		{"GET", "/", "", 404, "no endpoint /"},
		{"DELETE", "/v1/status", "", 405, "/v1/status does not allow DELETE (use GET)"},
		{"GET", "/v1/reload", "", 405, "use POST"},
		{"PUT", "/v1/log-level", `{"level":"loud"}`, 400, `unknown log level "loud": want one of debug, info, warn, error`},
		{"PUT", "/v1/log-level", `{"level":"debug","x":1}`, 400, "invalid JSON body"},
		{"PUT", "/v1/log-level", `{"level":`, 400, "invalid JSON body"},
		{"PUT", "/v1/log-level", `{"level":"debug"}{}`, 400, "more than one value"},
		{"PUT", "/v1/log-level", ``, 400, "invalid JSON body"},
	}
	for _, tt := range tests {
		code, h, body := rawRequest(t, s.socket, tt.method, tt.path, tt.body)
		var eb api.ErrorBody
		if err := json.Unmarshal([]byte(body), &eb); err != nil {
			t.Errorf("%s %s: body %q is not an error object", tt.method, tt.path, body)
		}
		if code != tt.code || !strings.Contains(eb.Error, tt.msg) || h.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s %s: %d %q, want %d %q", tt.method, tt.path, tt.body, code, eb.Error, tt.code, tt.msg)
		}
		if code == 405 && h.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tt.method, tt.path)
		}
	}
	if len(b.LogLevels()) != 0 {
		t.Errorf("bad requests reached the backend: %v", b.LogLevels())
	}
}

type panicBackend struct{ apitest.Backend }

func (*panicBackend) Status(context.Context) (api.Status, error) { panic("boom") }

func TestPanicIsA500(t *testing.T) {
	s := startServer(t, &panicBackend{})
	code, _, body := rawRequest(t, s.socket, "GET", "/v1/status", "")
	if code != 500 || !strings.Contains(body, "internal error") {
		t.Errorf("%d %s", code, body)
	}
	// The server is still up.
	if code, _, _ := rawRequest(t, s.socket, "GET", "/v1/map-cache", ""); code != 200 {
		t.Errorf("after a panic: %d", code)
	}
}

func TestNilBackend(t *testing.T) {
	s := startServer(t, nil)
	if code, _, body := rawRequest(t, s.socket, "GET", "/v1/status", ""); code != 503 {
		t.Errorf("%d %s", code, body)
	}
}

func TestSocketLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	socket := filepath.Join(dir, "lispd.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.NewServer(&apitest.Backend{}, nil).Serve(ctx, socket) }()
	c := newClient(t, socket)
	waitFor(t, "the server", func() bool { _, err := c.Status(context.Background()); return err == nil })

	fi, err := os.Stat(socket)
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != api.SocketMode {
		t.Errorf("socket mode = %v, %v", fi.Mode(), err)
	}
	di, err := os.Stat(dir)
	if err != nil || di.Mode().Perm() != api.SocketDirMode&^umask() {
		t.Errorf("dir mode = %v, %v", di.Mode(), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if _, err := os.Lstat(socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

// umask returns the process umask without changing it for long.
func umask() fs.FileMode {
	dir, err := os.MkdirTemp("", "umask")
	if err != nil {
		return 0
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "d")
	if os.Mkdir(p, 0o777) != nil {
		return 0
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return 0o777 &^ fi.Mode().Perm()
}

func TestStaleSocketIsReplaced(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "lispd.sock")
	// A daemon that died left its socket file behind.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := os.Lstat(socket); err != nil {
		t.Fatal("no stale socket to test with")
	}
	c := newClient(t, socket)
	_, err = c.Status(context.Background())
	var ue *api.UnreachableError
	if !errors.As(err, &ue) || ue.Reason != api.ReasonStale ||
		!strings.Contains(err.Error(), "lispd is not running (nothing listens on "+socket) {
		t.Errorf("client on a stale socket: %v", err)
	}

	ln, err := api.ListenUnix(socket)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln.Close()
}

func TestSocketInUse(t *testing.T) {
	s := startServer(t, sampleBackend())
	_, err := api.ListenUnix(s.socket)
	if !errors.Is(err, api.ErrSocketInUse) {
		t.Fatalf("second listener: %v", err)
	}
	err = api.NewServer(&apitest.Backend{}, nil).Serve(context.Background(), s.socket)
	if !errors.Is(err, api.ErrSocketInUse) {
		t.Fatalf("second Serve: %v", err)
	}
	// The first daemon is untouched.
	if _, err := newClient(t, s.socket).Status(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNotASocketIsLeftAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lispd.sock")
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := api.ListenUnix(path)
	if err == nil || !strings.Contains(err.Error(), "exists and is not a socket") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "data" {
		t.Error("file was touched")
	}
	if _, err := api.ListenUnix(""); err == nil {
		t.Error("empty path accepted")
	}
}

func TestClientNotRunning(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "missing.sock")
	_, err := newClient(t, socket).Status(context.Background())
	var ue *api.UnreachableError
	if !errors.As(err, &ue) || ue.Reason != api.ReasonNotRunning || ue.Socket != socket {
		t.Fatalf("err = %#v", err)
	}
	want := "lispd is not running (no socket at " + socket + "); start it or pass --socket"
	if ue.Message() != want || err.Error() != "api: "+want {
		t.Errorf("message = %q", err)
	}
	if !api.IsUnreachable(fmt.Errorf("wrapped: %w", err)) {
		t.Error("IsUnreachable misses a wrapped error")
	}
}

func TestClientTimeout(t *testing.T) {
	b := sampleBackend()
	s := startServer(t, b)
	b.Block()
	defer b.Unblock()
	c := newClient(t, s.socket, api.WithTimeout(100*time.Millisecond))
	start := time.Now()
	_, err := c.Status(context.Background())
	var ue *api.UnreachableError
	if !errors.As(err, &ue) || ue.Reason != api.ReasonTimeout || !strings.Contains(err.Error(), "did not answer on "+s.socket+" within 100ms") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("timeout not honoured")
	}
	// A canceled context is not a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Status(ctx)
	if err == nil || api.IsUnreachable(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func TestGracefulShutdownFinishesRequests(t *testing.T) {
	b := sampleBackend()
	s := startServer(t, b)
	b.Block()
	c := newClient(t, s.socket)
	res := make(chan error, 1)
	go func() { _, err := c.Status(context.Background()); res <- err }()
	waitFor(t, "the request to reach the backend", func() bool { return b.Waiting() == 1 })
	s.cancel()
	// The socket goes at once: new clients are told lispd is not running.
	waitFor(t, "the socket to go", func() bool { _, err := os.Lstat(s.socket); return err != nil })
	_, err := newClient(t, s.socket).Status(context.Background())
	var ue *api.UnreachableError
	if !errors.As(err, &ue) || ue.Reason != api.ReasonNotRunning {
		t.Errorf("new client during shutdown: %v", err)
	}
	b.Unblock()
	if err := <-res; err != nil {
		t.Errorf("request in flight: %v", err)
	}
	if err := s.stop(t); err != nil {
		t.Errorf("Serve = %v", err)
	}
}

func TestMetrics(t *testing.T) {
	reg := api.NewRegistry()
	ctr := prometheus.NewCounter(prometheus.CounterOpts{Name: "lispd_test_total", Help: "test counter"})
	reg.MustRegister(ctr)
	ctr.Add(3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.ServeMetricsListener(ctx, ln, reg) }()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"lispd_test_total 3", "go_goroutines", "promhttp_metric_handler_errors_total"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	resp, err = hc.Get("http://" + ln.Addr().String() + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/nope = %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeMetricsListener = %v", err)
	}
	if err := api.ServeMetrics(context.Background(), "256.0.0.1:0", reg); err == nil {
		t.Error("bad address accepted")
	}
}

func TestMetricsHandlerNilRegistry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.NewMetricsHandler(nil)}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	defer func() { srv.Close(); <-done }()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestXTRID(t *testing.T) {
	x := api.XTRID{0: 0x01, 15: 0xff}
	b, err := json.Marshal(x)
	if err != nil || string(b) != `"010000000000000000000000000000ff"` {
		t.Fatalf("%s %v", b, err)
	}
	var y api.XTRID
	if err := json.Unmarshal(b, &y); err != nil || y != x {
		t.Errorf("%v %v", y, err)
	}
	for _, bad := range []string{`"01"`, `"zz0000000000000000000000000000ff"`, `"010000000000000000000000000000ff00"`} {
		if err := json.Unmarshal([]byte(bad), &y); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestWithKind(t *testing.T) {
	if api.WithKind(api.ErrNotFound, nil) != nil {
		t.Error("WithKind(nil) != nil")
	}
	base := errors.New("base")
	err := api.WithKind(api.ErrNotFound, base)
	if !errors.Is(err, api.ErrNotFound) || !errors.Is(err, base) || err.Error() != "base" {
		t.Errorf("%v", err)
	}
	if s := (api.Status{UptimeSeconds: 90}).Uptime(); s != 90*time.Second {
		t.Error(s)
	}
}

func TestShutdownGivesUpOnStuckRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 5 s shutdown grace period")
	}
	b := sampleBackend()
	s := startServer(t, b)
	b.Block()
	defer b.Unblock()
	c := newClient(t, s.socket, api.WithTimeout(time.Minute))
	res := make(chan error, 1)
	go func() { _, err := c.Status(context.Background()); res <- err }()
	waitFor(t, "the request to reach the backend", func() bool { return b.Waiting() == 1 })
	start := time.Now()
	if err := s.stop(t); err != nil {
		t.Errorf("Serve = %v", err)
	}
	if d := time.Since(start); d < 4*time.Second || d > 15*time.Second {
		t.Errorf("shutdown took %v, want about the 5 s grace", d)
	}
	// The stuck request saw its context canceled and the connection close.
	if err := <-res; err == nil {
		t.Error("stuck request succeeded")
	}
	if b.Waiting() != 0 {
		t.Error("backend call still waiting")
	}
}
