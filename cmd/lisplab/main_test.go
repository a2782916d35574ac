package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.uber.org/goleak"

	"github.com/lispd/lispd/lab/benchcontrol"
)

// TestEveryCommandDocumented walks the command tree: every command has
// Short, Long and Example.
func TestEveryCommandDocumented(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "help" && c.Name() != "completion" && !c.Hidden {
			if c.Short == "" || c.Long == "" || c.Example == "" {
				t.Errorf("%q lacks Short, Long or Example", c.CommandPath())
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	walk(root)
	if c, _, err := root.Find([]string{"bench", "control"}); err != nil || c.Name() != "control" {
		t.Fatalf("bench control not found: %v", err)
	}
}

// TestBenchCmdIsShared checks that benchCmd returns one parent for every
// benchmark.
func TestBenchCmdIsShared(t *testing.T) {
	root := &cobra.Command{Use: "x"}
	a, b := benchCmd(root), benchCmd(root)
	if a != b || len(root.Commands()) != 1 {
		t.Fatal("benchCmd created two bench commands")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "control", "--rates", "fast"},
		{"bench", "control", "--rates", "10000,-5"},
		{"bench", "control", "--step", "0s"},
		{"bench", "control", "--prefixes", "2000000"},
		{"bench", "control", "--prefixes", "10", "--memory-prefixes", "5"},
		{"bench", "control", "--pubsub-subscribers", "-1"},
		{"bench", "control", "--pubsub-changes", "0"},
		{"bench", "control", "--pubsub-subscriptions", "2000000"},
		{"bench", "control", "--prefixes", "0", "--registers", "0", "--memory-prefixes", "0"},
		{"bench", "control", "--no-such-flag"},
		{"bench", "control", "extra"},
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

func TestParseRates(t *testing.T) {
	got, err := parseRates("10000, 25000,max")
	if err != nil || fmt.Sprint(got) != "[10000 25000 0]" {
		t.Fatalf("parseRates = %v, %v", got, err)
	}
}

// TestBenchControlJSON runs a tiny benchmark through the command line and
// decodes its JSON.
func TestBenchControlJSON(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the benchmark reads /proc")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build lispd")
	}
	bin := filepath.Join(t.TempDir(), "lispd")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/lispd/lispd/cmd/lispd").CombinedOutput(); err != nil {
		t.Fatalf("go build lispd: %v\n%s", err, b)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"bench", "control", "--json", "--lispd", bin, "--rates", "500",
		"--step", "200ms", "--prefixes", "64", "--registers", "500", "--memory-prefixes", "128",
		"--pubsub-subscribers", "10", "--pubsub-changes", "2", "--pubsub-subscriptions", "0"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res benchcontrol.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not the JSON result: %v\n%s", err, out.String())
	}
	if len(res.Steps) != 1 || res.Steps[0].Sent == 0 || len(res.Registers) != 2 || len(res.Memory) != 3 {
		t.Fatalf("result %+v", res)
	}
	if ps := res.PubSub; ps == nil || ps.Latency == nil || ps.Latency.Received != 20 || len(ps.Memory) != 0 || ps.StepsWithSubscriptions != nil {
		t.Fatalf("pub/sub result %+v", res.PubSub)
	}
	if !strings.Contains(errb.String(), "step 500") {
		t.Errorf("no progress on stderr: %q", errb.String())
	}
	// The table form of the same result.
	var table bytes.Buffer
	if err := writeControlTable(&table, &res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"replies/s", "p99", "hmac-sha-256", "VmRSS", "bytes of RSS per registered prefix",
		"10 subscribers of one prefix", "last subscriber", "20 of 20 publications received"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// TestControlTablePubSub prints the pub/sub part of a result.
func TestControlTablePubSub(t *testing.T) {
	steps := []benchcontrol.StepResult{{Rate: 50000, RepliesPerSecond: 49999, P99Micros: 900}, {Rate: 0, RepliesPerSecond: 200000, P99Micros: 250000}}
	with := []benchcontrol.StepResult{{Rate: 50000, RepliesPerSecond: 49998, P99Micros: 1100}, {Rate: 0, RepliesPerSecond: 190000, P99Micros: 260000}}
	res := &benchcontrol.Result{
		Steps:                steps,
		PeakRepliesPerSecond: 200000,
		PubSub: &benchcontrol.PubSubResult{
			Latency: &benchcontrol.PubSubLatency{Subscribers: 1000, Changes: 50, Received: 50000,
				FirstP50Micros: 300, LastP50Micros: 4000, LastP99Micros: 9000, LastMaxMicros: 12000},
			Memory: []benchcontrol.PubSubMemory{
				{XTRIDs: 1000, PrefixesPerXTR: 100, Subscriptions: 100000, RSSBefore: 100 << 20, RSSAfter: 110 << 20, BytesPerSubscription: 104.9},
				{XTRIDs: 100000, PrefixesPerXTR: 1, Subscriptions: 100000, RSSBefore: 110 << 20, RSSAfter: 130 << 20, BytesPerSubscription: 209.7},
			},
			SubscriptionsDuringSteps: 101000,
			StepsWithSubscriptions:   with,
			PeakWithSubscriptions:    190000,
			PeakRatio:                0.95,
			CompareRate:              50000,
			P99WithoutMicros:         900,
			P99WithMicros:            1100,
		},
	}
	var b bytes.Buffer
	if err := writeControlTable(&b, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1000 subscribers of one prefix", "12.0ms", "50000 of 50000 publications received",
		"RSS/subscription", "live heap/subscription", "105 B", "210 B", "without and with 101000 subscriptions", "(ratio 0.95)", "p99 at 50000/s: 900µs without, 1100µs with"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
