package docgen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/cachesync"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/daemon"
	"github.com/lispd/lispd/dataplane"
)

var update = flag.Bool("update", false, "rewrite the generated documents in docs/")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// repoRoot is the repository's root, relative to this package.
const repoRoot = "../.."

// doc returns the path of a file in docs/.
func doc(name string) string { return filepath.Join(repoRoot, "docs", name) }

func TestConfigReference(t *testing.T) {
	if err := CheckGenerated(doc("config.md"), ConfigReference(config.Keys()), *update); err != nil {
		t.Fatal(err)
	}
}

// TestConfigKeysDocumented fails when a key of the config file has no
// description: the reference would list it with nothing to say.
func TestConfigKeysDocumented(t *testing.T) {
	keys := config.Keys()
	if len(keys) < 20 {
		t.Fatalf("config.Keys lists only %d keys", len(keys))
	}
	for _, k := range keys {
		d := strings.TrimSpace(k.Doc)
		if d == "" {
			t.Errorf("%s has no doc tag: add one to its struct field in config/", k.Path)
			continue
		}
		if !strings.HasSuffix(d, ".") && !strings.HasSuffix(d, ".)") {
			t.Errorf("%s: its doc is not a sentence (no final period): %q", k.Path, d)
		}
	}
	md, err := os.ReadFile(doc("config.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := Anchors(md)
	for _, k := range keys {
		want := Slug("`" + k.Path + "`")
		if k.IsTable() {
			want = Slug("`" + tableHeader(k) + "`")
		}
		if !slices.Contains(anchors, want) {
			t.Errorf("docs/config.md has no section for %s (#%s); run %s", k.Path, want, UpdateCommand)
		}
	}
}

func TestConfigValueTypesExplained(t *testing.T) {
	if u := UnexplainedTypes(config.Keys()); len(u) > 0 {
		t.Errorf("value types with no explanation: %q; add them to valueTypes in internal/docgen/configref.go", u)
	}
	if u := UnexplainedTypes([]config.Key{{Type: "array of frobs"}, {Type: "array of roles"}}); !slices.Equal(u, []string{"array of frobs"}) {
		t.Errorf("UnexplainedTypes = %q", u)
	}
}

// metricsConfig is a daemon that plays every role, so that it exports
// every counter there is. Its sections must cover every top-level table of
// the config (TestMetricsReference checks), so that a new section's
// counters show up here as soon as the section exists.
const metricsConfig = `
[daemon]
roles = ["itr", "etr", "ms", "mr"]
api-socket = %q
metrics-listen = %q
log-level = "error"

[control]
listen = ["127.0.0.1:0"]

[map-server]
[[map-server.site]]
name = "site-a"
authentication-key = "k"
eid-prefixes = ["10.1.0.0/24"]

[map-resolver]
map-servers = ["local"]

[dataplane]
rlocs = ["192.0.2.1"]

[itr]
map-resolvers = ["127.0.0.1:9"]
rloc-probe-interval = "1m"

[etr]
[[etr.map-server]]
address = "127.0.0.1:9"
authentication-key = "k"
[[etr.eid]]
prefix = "10.1.0.0/24"

[sync]
mode = "smart"
name = "itr-1"
listen = %q
private-key = %q
[[sync.peer]]
name = "itr-2"
address = "127.0.0.1:9"
public-key = %q

[failover]
enabled = true
`

// TestMetricsReference runs a daemon with every role and checks that each
// metric it serves on /metrics is described in docs/metrics.md, and that
// each metric docs/metrics.md describes is one it serves.
func TestMetricsReference(t *testing.T) {
	names := scrapeMetricNames(t)
	md, err := os.ReadFile(doc("metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := ParseMetrics(md)
	if err != nil {
		t.Fatal(err)
	}
	var lispd []string
	for _, n := range names {
		if strings.HasPrefix(n, "lispd_") {
			lispd = append(lispd, n)
		}
	}
	if len(lispd) < 50 {
		t.Fatalf("the daemon serves only %d lispd_ metrics: %q", len(lispd), lispd)
	}
	for _, n := range Undocumented(docs, lispd) {
		t.Errorf("%s is not described in docs/metrics.md: add a row | `%s` | what it counts |", n, n)
	}
	for _, d := range Unused(docs, names) {
		if strings.HasPrefix(d.Name, "lispd_") {
			t.Errorf("docs/metrics.md:%d: %s is not served by lispd (renamed or removed?)", d.Line, d.Name)
		}
	}
}

// scrapeMetricNames starts an all-roles daemon on an in-memory data plane,
// makes it count one malformed control message (so that the
// malformed_<reason> family appears), and returns the names of the
// metrics its /metrics endpoint serves.
func scrapeMetricNames(t *testing.T) []string {
	t.Helper()
	for _, k := range config.Keys() {
		if k.Table == "" && !strings.Contains(metricsConfig, "["+k.Path+"]") {
			t.Fatalf("metricsConfig has no [%s] section: add one, so that its counters are checked", k.Path)
		}
	}
	dir := t.TempDir()
	metricsAddr, syncAddr := freeTCPAddr(t), freeTCPAddr(t)
	socket := filepath.Join(dir, "lispd.sock")
	keyFile := filepath.Join(dir, "sync.key")
	k, err := cachesync.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := cachesync.WritePrivateKey(keyFile, k); err != nil {
		t.Fatal(err)
	}
	peerKey, err := cachesync.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Appendf(nil, metricsConfig, socket, metricsAddr, syncAddr, keyFile,
		cachesync.FormatPublicKey(cachesync.PublicKeyOf(peerKey)))
	cfg, err := config.Parse(text, "metrics.toml")
	if err != nil {
		t.Fatal(err)
	}
	host, dev := dataplane.NewMemDevicePair("host", "lisp0", 1500, 64)
	defer host.Close()
	mem := dataplane.NewMemNetwork(64)
	conn, err := mem.Listen(netip.MustParseAddrPort("192.0.2.1:4341"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, daemon.Options{Stderr: io.Discard, APISocket: socket, DataDevice: dev, DataConn: conn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()

	deadline := time.Now().Add(10 * time.Second)
	for len(d.ControlAddrs()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not bind its control socket")
		}
		select {
		case err := <-done:
			done <- nil
			if errors.Is(err, daemon.ErrNoDispatch) {
				t.Skipf("the xTR roles cannot run in this build yet: %v", err)
			}
			t.Fatalf("daemon stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	// A truncated Map-Register: counted as malformed.
	uc, err := net.Dial("udp", d.ControlAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	for {
		if _, err := uc.Write([]byte{0x30, 0, 0}); err != nil {
			t.Fatal(err)
		}
		names, err := metricNames("http://" + metricsAddr + "/metrics")
		if err == nil && slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "lispd_mapserver_malformed_") }) {
			return names
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lispd_mapserver_malformed_ metric within 10s (last error: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeTCPAddr returns a loopback address whose port was free a moment ago.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// metricNames fetches a Prometheus text exposition and returns the metric
// names in it.
func metricNames(url string) ([]string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}
