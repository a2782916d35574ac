//go:build linux

package benchdata

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/lab/netns"
)

// TestRunTiny runs the whole benchmark at a tiny duration with the real
// lispd and lisplab (for `lisplab relay`). It checks that both routers
// carried traffic and the result is complete, not how fast they were.
func TestRunTiny(t *testing.T) {
	netns.Require(t)
	dir := t.TempDir()
	for _, name := range []string{"lispd", "lisplab"} {
		b, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), "github.com/lispd/lispd/cmd/"+name).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := Run(ctx, Config{
		Lispd:    filepath.Join(dir, "lispd"),
		Relay:    []string{filepath.Join(dir, "lisplab"), "relay"},
		Duration: 300 * time.Millisecond,
		Warmup:   100 * time.Millisecond,
		Rounds:   1,
		Sizes:    []int{64, 1400},
		Progress: &progress,
	})
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	if len(res.Sizes) != 2 || res.Sizes[0].Size != 64 || res.Sizes[1].Size != 1400 || res.Rounds != 1 || res.Rate != "adaptive" {
		t.Fatalf("result %+v", res)
	}
	for _, s := range res.Sizes {
		if len(s.Rounds) != 1 {
			t.Errorf("%d B: %d rounds", s.Size, len(s.Rounds))
		}
		for _, m := range []Measurement{s.Lispd, s.Relay} {
			if m.Delivered == 0 || m.Sent == 0 || m.PacketsPerSecond <= 0 || m.Seconds < 0.3 ||
				m.BitsPerSecond != m.PacketsPerSecond*float64(s.Size)*8 || m.ITRCPU <= 0 || m.ETRCPU <= 0 {
				t.Errorf("%d B %s: %+v", s.Size, m.Router, m)
			}
		}
		if s.Lispd.Router != RouterLispd || s.Relay.Router != RouterRelay || s.Ratio <= 0 {
			t.Errorf("%d B: %+v", s.Size, s)
		}
	}
	if res.Machine.CPUs < 1 || res.Date.IsZero() {
		t.Errorf("machine %+v date %v", res.Machine, res.Date)
	}
	for _, want := range []string{"[1/4] 64 B through lispd", "[4/4] 1400 B through relay", "1400 B: lispd/relay"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
}

func TestRunRefusesBadRelay(t *testing.T) {
	_, err := Run(context.Background(), Config{Lispd: "/bin/true", Relay: []string{"/no/such/program"}})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("missing relay program: %v", err)
	}
	_, err = Run(context.Background(), Config{Lispd: "/bin/true", Relay: []string{"/bin/true"}, Sizes: []int{10}})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("bad size: %v", err)
	}
}
