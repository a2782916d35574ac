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
			Failure: paper.FailLAN, Healing: v != paper.Off,
			Test: 1, Variant: v, Duration: 4 * time.Second, FailAt: 2 * time.Second,
			Losses: paper.Losses{Gap: 6, CacheMiss: 2 * miss, Return: 3 * miss}, LastReturnLoss: 1500 * time.Millisecond,
			MaxReturnAfterSwitch: 2 * miss,
			Switchovers:          []paper.Switchover{{VRID: 1, To: "ITR2", After: 900 * time.Millisecond}},
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
		"3/1/0/0 (12)",               // gap/miss/return/other (sent) of flow 1, off
		"lan/heal off T1 off",        // run names
		"1.5s",                       // last return-path loss
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
	r := result()
	// Flow 2 of the smart run lost a reply on the return path.
	r.Runs[1].Traffic.Timeline[21+15].Fate = traffic.LostReturnFailed
	if err := SVG(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// Well-formed XML: one panel per run, a marker per lost request (of
	// its category's shape) and one per legend entry, a grey path of
	// ticks per flow for the delivered ones, every flow labelled, axis
	// titles, time relative to the failure.
	dec := xml.NewDecoder(strings.NewReader(out))
	uses, panels := 0, 0
	markers := map[string]int{}
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
			case "use":
				uses++
				for _, a := range se.Attr {
					if a.Name.Local == "href" {
						markers[a.Value]++
					}
				}
			case "g":
				for _, a := range se.Attr {
					if a.Name.Local == "id" {
						panels-- // a marker symbol, not a panel
					}
				}
				panels++
			}
		}
	}
	if panels != 2 {
		t.Errorf("%d panels, want 2", panels)
	}
	// Lost: 2 runs x 2 flows x 1 gap, 1 return; legend: 5 markers.
	if markers["#m-gap"] != 4+1 || markers["#m-return"] != 1+1 || uses != 5+5 {
		t.Errorf("markers %v (%d uses)", markers, uses)
	}
	for _, want := range []string{
		"time since the failure of ITR1 (s)", "flow (host-&gt;destination)",
		"USR1-&gt;198.18.1.1", "USR2-&gt;198.18.2.1",
		"lan failure, healing off, Test 1, sync off", "lan failure, healing on, Test 1, sync smart",
		"#0072B2", "#E69F00", // Okabe-Ito blue and orange
		">-2<", ">0<", ">2<", // ticks relative to the failure
	} {
		if !strings.Contains(out, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if err := SVG(&b, &paper.Result{}); err == nil {
		t.Error("empty result plotted")
	}
}
