// Package report shows the results of `lisplab paper`: the table printed on
// stdout beside the paper's Table 1, with the per-flow losses and what put
// each unexpected map-cache record there, and the timeline picture (SVG) of
// the packets of every flow around the failure.
//
// It only formats a paper.Result; every number comes from the run.
package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lispd/lispd/lab/paper"
	"github.com/lispd/lispd/lab/traffic"
)

// Table writes the human report of r to w: the table beside the paper's,
// the VRRP switchovers, the per-flow losses, the mechanisms behind records
// for flows an ITR never carried, what was scaled, and the checks.
func Table(w io.Writer, r *paper.Result) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "lisplab paper (%s mode): Table 1 of the paper beside ours\n", r.Mode)
	fmt.Fprintf(ew, "MC = map-cache records just before the failure, as total/USR1's/USR2's destinations.\n")
	fmt.Fprintf(ew, "Losses count echo requests sent after the failure, by where they were lost.\n\n")

	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\t\tours:\t\t\t\t|\tpaper:\t\t\t|\tlost:\t\t\t\t|\t")
	fmt.Fprintln(tw, "Test\tSync\tITR1 MC\tITR2 MC\tITR2 misses\tVRRP gap\t|\tITR1 MC\tITR2 MC\tmisses\t|\tgap\tcache-miss\treturn\tother\t|\tsync bytes (wire)")
	for _, run := range r.Runs {
		i1, i2 := run.ITR("ITR1"), run.ITR("ITR2")
		var c1, c2 string
		if i1 != nil {
			c1 = i1.BeforeFailure.String()
		}
		if i2 != nil {
			c2 = i2.BeforeFailure.String()
		}
		p1, p2, pm := "-", "-", "-"
		if pr, ok := paper.PaperRowFor(run.Test, run.Variant); ok {
			p1, p2, pm = pr.ITR1.String(), pr.ITR2.String(), fmt.Sprint(pr.ITR2Misses)
		}
		a := run.Traffic.After
		other := a[traffic.LostReturnOther] + a[traffic.LostUnseen]
		bytes := "-"
		if run.Sync != nil {
			bytes = fmt.Sprintf("%d (%d)", run.Sync.TotalBytes, run.Sync.TotalWireBytes)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t|\t%s\t%s\t%s\t|\t%d\t%d\t%d\t%d\t|\t%s\n",
			run.Test, run.Variant, c1, c2, run.ITR2Misses, gap(run), p1, p2, pm,
			a[traffic.LostSwitchover], a[traffic.LostAtITR], a[traffic.LostReturnFailed], other, bytes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(ew, "\nThe paper's \"with synchronization\" row is shown beside every sync mode; it")
	fmt.Fprintln(ew, "measured naive and smart mode (gossip is the paper's future work).")
	fmt.Fprintln(ew, "gap: lost in the VRRP switchover gap (sent to the failed router's dead link).")
	fmt.Fprintln(ew, "cache-miss: dropped by a live ITR (ITR2's own miss-drop counter is beside each run below).")
	fmt.Fprintln(ew, "return: reached the destination; the reply went to the failed router's RLOC.")

	flowTable(ew, r)
	mechanisms(ew, r)

	if len(r.Scaled) > 0 {
		fmt.Fprintln(ew, "\nWhat was scaled:")
		for _, s := range r.Scaled {
			fmt.Fprintf(ew, "  - %s\n", s)
		}
	}
	checks(ew, r)
	return ew.err
}

// gap formats the longest switchover of a run.
func gap(run paper.RunResult) string {
	if len(run.Switchovers) == 0 {
		return "-"
	}
	var d time.Duration
	for _, s := range run.Switchovers {
		d = max(d, s.After)
	}
	return d.Round(time.Millisecond).String()
}

// flowTable writes the per-flow losses after the failure, one row per flow
// and one column per run.
func flowTable(w io.Writer, r *paper.Result) {
	if len(r.Runs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nPackets lost per flow after the failure, as gap/cache-miss/return (sent):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"flow"}
	for _, run := range r.Runs {
		head = append(head, fmt.Sprintf("T%d %s", run.Test, run.Variant))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for i, fr := range r.Runs[0].Traffic.Flows {
		row := []string{fr.Flow.String()}
		for _, run := range r.Runs {
			if i >= len(run.Traffic.Flows) {
				row = append(row, "-")
				continue
			}
			a := run.Traffic.Flows[i].After
			row = append(row, fmt.Sprintf("%d/%d/%d (%d)", a[traffic.LostSwitchover], a[traffic.LostAtITR], a[traffic.LostReturnFailed], a.Sent()))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
}

// mechanisms writes, per run and ITR, what put records there for flows the
// ITR never carried before the failure, and ITR2's miss counters.
func mechanisms(w io.Writer, r *paper.Result) {
	fmt.Fprintln(w, "\nRecords an ITR held just before the failure for flows it never carried, and why:")
	for _, run := range r.Runs {
		var parts []string
		for _, itr := range run.ITRs {
			if len(itr.Uncarried) == 0 {
				parts = append(parts, itr.Name+": none")
				continue
			}
			count := map[string]int{}
			var order []string
			for _, rec := range itr.Uncarried {
				if count[rec.Mechanism] == 0 {
					order = append(order, rec.Mechanism)
				}
				count[rec.Mechanism]++
			}
			slices.Sort(order)
			var ms []string
			for _, m := range order {
				ms = append(ms, fmt.Sprintf("%d %s", count[m], m))
			}
			parts = append(parts, fmt.Sprintf("%s: %s", itr.Name, strings.Join(ms, "; ")))
		}
		fmt.Fprintf(w, "  Test %d %-6s  %s\n", run.Test, run.Variant, strings.Join(parts, "  |  "))
	}
	for _, run := range r.Runs {
		itr2 := run.ITR("ITR2")
		if run.Variant == paper.Off && run.Test == 1 && itr2 != nil && len(itr2.Uncarried) == 0 {
			fmt.Fprintln(w, "  Note: the paper's ITR2 held 15/10/5 records in Test 1 without sync although ITR1 was")
			fmt.Fprintln(w, "  everyone's gateway, probably resolved for the return traffic that the 50:50 ingress")
			fmt.Fprintln(w, "  brought to ITR2. lispd's ETR decapsulates that traffic without resolving mappings")
			fmt.Fprintln(w, "  for its sources, so here only LAN traffic or the sync fills ITR2's map-cache.")
			break
		}
	}
	fmt.Fprintln(w, "\nITR2 after the failure (its own counters): destinations resolved / packets dropped on misses:")
	for _, run := range r.Runs {
		fmt.Fprintf(w, "  Test %d %-6s  %d / %d   (flows whose destination it had no mapping for: %d)\n",
			run.Test, run.Variant, run.ITR2Misses, run.ITR2MissDrops, run.UnseenFlows)
	}
}

// checks writes the relations that must hold and whether they did.
func checks(w io.Writer, r *paper.Result) {
	total, failed := 0, 0
	for _, run := range r.Runs {
		for _, c := range run.Checks {
			total++
			if !c.OK {
				failed++
			}
		}
	}
	if failed == 0 {
		fmt.Fprintf(w, "\nChecks: all %d hold.\n", total)
		return
	}
	fmt.Fprintf(w, "\nChecks: %d of %d FAILED:\n", failed, total)
	for _, run := range r.Runs {
		for _, c := range run.Failed() {
			fmt.Fprintf(w, "  Test %d %s: %s: %s\n", run.Test, run.Variant, c.Name, c.Detail)
		}
	}
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

// Write implements io.Writer; after a failure it discards.
func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, nil
}
