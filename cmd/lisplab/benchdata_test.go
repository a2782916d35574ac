package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/lab/benchdata"
)

func TestBenchDataplaneUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "dataplane", "--sizes", "64,big"},
		{"bench", "dataplane", "--sizes", "20"},
		{"bench", "dataplane", "--sizes", "1500"},
		{"bench", "dataplane", "--duration", "0s"},
		{"bench", "dataplane", "--warmup", "-1s"},
		{"bench", "dataplane", "--rounds", "0"},
		{"bench", "dataplane", "--rate", "fast"},
		{"bench", "dataplane", "--rate", "-5"},
		{"bench", "dataplane", "extra"},
		{"relay"},
		{"relay", "--listen", "198.19.0.1:4341"},
		{"relay", "--listen", "198.19.0.1", "--peer", "198.19.0.2:4341"},
		{"relay", "--listen", "198.19.0.1:4341", "--peer", "198.19.0.2:4341", "--route", "10.2.0.0"},
		// Refused by RunRelay's checks, before any device is made.
		{"relay", "--tun", "", "--listen", "198.19.0.1:4341", "--peer", "198.19.0.2:4341"},
		{"relay", "--mtu", "10", "--listen", "198.19.0.1:4341", "--peer", "198.19.0.2:4341"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("%v: wrote %q on stdout", args, out.String())
		}
	}
}

func TestParseSizesAndRate(t *testing.T) {
	if got, err := parseSizes(" 64, 1400,512"); err != nil || len(got) != 3 || got[0] != 64 || got[1] != 1400 || got[2] != 512 {
		t.Errorf("parseSizes = %v, %v", got, err)
	}
	for s, want := range map[string]int{"adaptive": benchdata.RateAdaptive, "max": benchdata.RateMax, "250000": 250000} {
		if got, err := parseRate(s); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v", s, got, err)
		}
	}
}

func TestDataplaneCommandsRegistered(t *testing.T) {
	root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	if c, _, err := root.Find([]string{"bench", "dataplane"}); err != nil || c.Name() != "dataplane" {
		t.Fatalf("bench dataplane not found: %v", err)
	}
	c, _, err := root.Find([]string{"relay"})
	if err != nil || c.Name() != "relay" || !c.Hidden || c.Long == "" || c.Example == "" {
		t.Fatalf("relay: %v %+v", err, c)
	}
}

func TestWriteDataplaneTable(t *testing.T) {
	m := func(r benchdata.Router, pps float64) benchdata.Measurement {
		return benchdata.Measurement{Router: r, PacketsPerSecond: pps, SentPerSecond: pps * 1.25, BitsPerSecond: pps * 64 * 8, Loss: 0.2, ITRCPU: 55, ETRCPU: 40}
	}
	res := &benchdata.Result{
		Date: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Machine: benchdata.Machine{CPUs: 2, Model: "Xeon", Kernel: "6.18", LoadAverage: "1 2 3"},
		DurationSeconds: 5, Rounds: 3, Rate: "adaptive",
		Sizes: []benchdata.SizeResult{
			{Size: 64, Lispd: m(benchdata.RouterLispd, 150000), Relay: m(benchdata.RouterRelay, 160000), Ratio: 0.9375,
				Rounds: []benchdata.Round{{Ratio: 0.93}, {Ratio: 0.94}, {Ratio: 0.95}}},
			{Size: 1400, Lispd: m(benchdata.RouterLispd, 70000), Relay: m(benchdata.RouterRelay, 100000), Ratio: 0.7,
				Rounds: []benchdata.Round{{Ratio: 0.7}}},
		},
	}
	var b bytes.Buffer
	if err := writeDataplaneTable(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"rate adaptive", "3 rounds", "2 CPUs (Xeon)", "delivered/s", "150000", "76.8 Mbit/s", "20.0%",
		"94%  93% 94% 95%", ">= 80%: met", ">= 80%: NOT met"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for in, want := range map[float64]string{2.5e9: "2.50 Gbit/s", 7.68e7: "76.8 Mbit/s", 1500: "1.5 kbit/s", 12: "12 bit/s"} {
		if got := bitRate(in); got != want {
			t.Errorf("bitRate(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestBenchDataplaneCommand runs the built lisplab at a tiny duration
// (root only: network namespaces). It checks the command's JSON and
// progress, not timing.
func TestBenchDataplaneCommand(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the data-plane benchmark needs Linux network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("the data-plane benchmark needs root (network namespaces, TUN devices); CI runs as root")
	}
	dir := t.TempDir()
	for _, name := range []string{"lispd", "lisplab"} {
		if b, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), "github.com/lispd/lispd/cmd/"+name).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "lisplab"), "bench", "dataplane", "--json", "--lispd", filepath.Join(dir, "lispd"),
		"--duration", "300ms", "--warmup", "100ms", "--rounds", "1", "--sizes", "64", "--rate", "max", "--sender-gso")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("lisplab bench dataplane: %v\nstderr:\n%s", err, errb.String())
	}
	var res benchdata.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not the JSON result: %v\n%s", err, out.String())
	}
	if len(res.Sizes) != 1 || res.Rate != "max" || !res.SenderGSO || res.Sizes[0].Lispd.Delivered == 0 || res.Sizes[0].Relay.Delivered == 0 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(errb.String(), "[2/2] 64 B through relay") {
		t.Errorf("no progress on stderr:\n%s", errb.String())
	}
}
