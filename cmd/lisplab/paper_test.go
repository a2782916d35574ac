package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// paperFastArgs keep one run of `lisplab paper` to a few seconds.
var paperFastArgs = []string{"--ping-interval", "100ms", "--warm-up", "1s", "--after", "1s"}

// TestPaperCommand runs Test 1 with sync off and smart through the command
// line: the table (with the paper's figures beside), the SVG plot, and the
// progress on stderr.
func TestPaperCommand(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "paper.svg")
	args := append([]string{"paper", "--failure", "lan", "--healing", "off", "--tests", "1", "--variants", "off,smart", "--plot", plot}, paperFastArgs...)
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if code := run(ctx, args, &out, &errb); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"Table 1 of the paper beside ours", "30/20/10", "15/10/5", "What was scaled", "Checks: all"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errb.String(), "[2/2] lan failure, healing off, Test 1, sync smart") || !strings.Contains(errb.String(), "left)") {
		t.Errorf("stderr lacks the progress:\n%s", errb.String())
	}
	b, err := os.ReadFile(plot)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, new(struct{ XMLName xml.Name })); err != nil || !bytes.Contains(b, []byte("Test 1, sync smart")) {
		t.Errorf("plot is not an SVG with the runs' panels: %v", err)
	}
}

func TestPaperJSON(t *testing.T) {
	args := append([]string{"paper", "--failure", "lan", "--healing", "on", "--tests", "2", "--variants", "naive", "--json"}, paperFastArgs...)
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if code := run(ctx, args, &out, &errb); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, errb.String())
	}
	var res struct {
		Mode string `json:"mode"`
		Runs []struct {
			Failure    string `json:"failure"`
			Healing    bool   `json:"healing"`
			Test       int    `json:"test"`
			Variant    string `json:"variant"`
			ITR2Misses int    `json:"itr2_misses"`
			ITRs       []struct {
				Name          string                          `json:"name"`
				BeforeFailure struct{ Total, USR1, USR2 int } `json:"before_failure"`
			} `json:"itrs"`
			Checks []struct {
				OK bool `json:"ok"`
			} `json:"checks"`
		} `json:"runs"`
		Paper []json.RawMessage `json:"paper"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	if res.Mode != "embedded" || len(res.Runs) != 1 || res.Runs[0].Test != 2 || res.Runs[0].Variant != "naive" || res.Runs[0].Failure != "lan" || !res.Runs[0].Healing || len(res.Paper) != 4 {
		t.Fatalf("JSON: %+v", res)
	}
	if r := res.Runs[0]; r.ITR2Misses != 0 || len(r.ITRs) != 2 || r.ITRs[1].BeforeFailure.Total != 30 {
		t.Errorf("run: %+v", r)
	}
}

func TestPaperUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"paper", "--tests", "3"},
		{"paper", "--variants", "eager"},
		{"paper", "--ping-interval", "1ms"},
		{"paper", "--vrrp-advert", "5ms"},
		{"paper", "--failure", "fire"},
		{"paper", "--healing", "maybe"},
		{"paper", "--failure", "drain", "--healing", "off"},
		{"paper", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}

// TestPaperPubSub runs a drain with pub/sub through the command line: the
// pub/sub table follows the checks, with the remote ITRs (named), what the
// Map-Server published and when they saw ITR1's RLOC withdrawn.
func TestPaperPubSub(t *testing.T) {
	args := append([]string{"paper", "--failure", "drain", "--healing", "on", "--tests", "1", "--variants", "smart", "--pubsub"}, paperFastArgs...)
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if code := run(ctx, args, &out, &errb); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"Checks: all", "Pub/sub (RFC 9437)", "RX1, RX2, RX3", "drain    on    1     smart", "3/3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errb.String(), "sync smart, pub/sub") {
		t.Errorf("stderr lacks the pub/sub run:\n%s", errb.String())
	}
}
