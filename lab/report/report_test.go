package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/lab/paper"
	"github.com/lispd/lispd/lab/traffic"
)

// result builds a two-run result with made-up but consistent numbers.
func result() *paper.Result {
	flows := []traffic.Flow{
		{ID: 1, Host: "USR1", Src: netip.MustParseAddr("192.0.2.11"), Dst: netip.MustParseAddr("198.18.1.1")},
		{ID: 2, Host: "USR2", Src: netip.MustParseAddr("192.0.2.12"), Dst: netip.MustParseAddr("198.18.2.1")},
	}
	mk := func(v paper.Variant, miss int) paper.RunResult {
		var s traffic.Summary
		for i, f := range flows {
			fr := traffic.FlowResult{Flow: f}
			fr.Before[traffic.Delivered] = 10
			fr.After[traffic.Delivered] = 8
			fr.After[traffic.LostSwitchover] = 3
			fr.After[traffic.LostAtITR] = miss
			s.Flows = append(s.Flows, fr)
			for k := range 21 {
				fate := traffic.Delivered
				if k == 12 {
					fate = traffic.LostSwitchover
				}
				s.Timeline = append(s.Timeline, traffic.Mark{Flow: i, At: time.Duration(k) * 200 * time.Millisecond, Fate: fate})
			}
			for k := range s.After {
				s.After[k] += fr.After[k]
			}
		}
		run := paper.RunResult{
			Test: 1, Variant: v, Duration: 4 * time.Second, FailAt: 2 * time.Second,
			Switchovers: []paper.Switchover{{VRID: 1, To: "ITR2", After: 900 * time.Millisecond}},
			ITRs: []paper.ITRResult{
				{Name: "ITR1", BeforeFailure: paper.CacheCount{Total: 2, USR1: 1, USR2: 1}},
				{Name: "ITR2", BeforeFailure: paper.CacheCount{Total: 2 - 2*miss, USR1: 1 - miss, USR2: 1 - miss}},
			},
			ITR2Misses: 2 * miss, ITR2MissDrops: 2 * miss, UnseenFlows: 2 * miss,
			Traffic: s,
			Checks:  []paper.Check{{Name: "misses = unseen flows", OK: true}},
		}
		if v != paper.Off {
			run.Sync = &paper.SyncResult{TotalBytes: 1234}
			run.ITRs[1].Uncarried = []paper.Record{{Mechanism: "sync"}, {Mechanism: "sync"}}
		}
		return run
	}
	return &paper.Result{
		Mode:   "embedded",
		Runs:   []paper.RunResult{mk(paper.Off, 1), mk(paper.Smart, 0)},
		Scaled: []string{"VRRP timers x0.25"},
		Paper:  paper.PaperTable1(),
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, result()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"30/20/10", "15/10/5", // the paper's Test 1 row
		"2/1/1", "0/0/0", // ours
		"1234",                       // sync bytes
		"900ms",                      // the switchover gap
		"USR1->198.18.1.1",           // per-flow rows
		"3/1/0 (12)",                 // gap/miss/return (sent) of flow 1, off
		"ITR2: 2 sync",               // mechanism
		"VRRP timers x0.25",          // scaling
		"Checks: all 2 hold.",        // checks
		"2 / 2   (flows whose desti", // ITR2 counters line
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	r := result()
	r.Runs[0].Checks[0].OK = false
	r.Runs[0].Checks[0].Detail = "misses 1, unseen 2"
	b.Reset()
	if err := Table(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Checks: 1 of 2 FAILED") || !strings.Contains(b.String(), "misses 1, unseen 2") {
		t.Errorf("failed check not reported:\n%s", b.String())
	}
	if err := Table(failWriter{}, result()); err == nil {
		t.Error("write error not returned")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSVG(t *testing.T) {
	var b bytes.Buffer
	if err := SVG(&b, result()); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML with one mark per request, a failure line and a
	// switchover line per panel.
	dec := xml.NewDecoder(&b)
	rects, lines, panels := 0, 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "rect":
				rects++
			case "line":
				lines++
			case "g":
				panels++
			}
		}
	}
	if panels != 2 {
		t.Errorf("%d panels, want 2", panels)
	}
	// 2 runs x 2 flows x 21 requests, plus background, legend (6) and
	// frame (2).
	if want := 2*2*21 + 1 + 6 + 2; rects != want {
		t.Errorf("%d rects, want %d", rects, want)
	}
	if lines < 2*2 {
		t.Errorf("%d lines, want the failure and the switchover in each panel", lines)
	}
	if err := SVG(&b, &paper.Result{}); err == nil {
		t.Error("empty result plotted")
	}
}
