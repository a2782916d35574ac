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
	fmt.Fprintf(ew, "lisplab paper (%s mode): Table 1 of the paper beside ours, before and after healing\n", r.Mode)
	fmt.Fprintf(ew, "failure: lan = ITR1's LAN interface shut (the paper's), crash = lispd and VRRP on ITR1 killed, drain = lispctl drain on ITR1.\n")
	fmt.Fprintf(ew, "heal: lispd's [failover] enabled (off = lispd before the healing).\n")
	fmt.Fprintf(ew, "MC = map-cache records just before the failure, as total/USR1's/USR2's destinations.\n")
	fmt.Fprintf(ew, "Losses count echo requests sent after the failure, by where they were lost.\n\n")

	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\t\t\t\tours:\t\t\t\t|\tpaper:\t\t\t|\tlost:\t\t\t\t|\treturn path:\t\t|\t")
	fmt.Fprintln(tw, "Failure\tHeal\tTest\tSync\tITR1 MC\tITR2 MC\tITR2 misses\tVRRP gap\t|\tITR1 MC\tITR2 MC\tmisses\t|\tgap\tcache-miss\treturn\tother\t|\tlast loss\tmax/flow after sw.\t|\tsync bytes (wire)")
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
		l := run.Losses
		bytes := "-"
		if run.Sync != nil {
			bytes = fmt.Sprintf("%d (%d)", run.Sync.TotalBytes, run.Sync.TotalWireBytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t|\t%s\t%s\t%s\t|\t%d\t%d\t%d\t%d\t|\t%s\t%d\t|\t%s\n",
			run.Failure, onOff(run.Healing), run.Test, run.Variant, c1, c2, run.ITR2Misses, gap(run), p1, p2, pm,
			l.Gap, l.CacheMiss, l.Return, l.Other, lastReturn(run), run.MaxReturnAfterSwitch, bytes)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(ew, "\nThe paper's rows are shown beside every run of the same test: \"with synchronization\"")
	fmt.Fprintln(ew, "beside every sync mode (it measured naive and smart; gossip is its future work). The")
	fmt.Fprintln(ew, "paper failed ITR1 by its LAN interface and had no healing: compare with lan, heal off.")
	fmt.Fprintln(ew, "gap: lost in the VRRP switchover gap (sent to the failed router).")
	fmt.Fprintln(ew, "cache-miss: dropped by a live ITR (ITR2's own miss-drop counter is beside each run below).")
	fmt.Fprintln(ew, "return: reached the destination; the reply went to the failed router's RLOC.")
	fmt.Fprintln(ew, "other: the reply was lost elsewhere, or the request was seen nowhere.")
	fmt.Fprintln(ew, "last loss: from the failure to the sending of the last request whose reply went to the")
	fmt.Fprintln(ew, "failed RLOC; max/flow after sw.: the most such losses of one flow among the requests")
	fmt.Fprintln(ew, "sent after the last VRRP switchover (the healing's target: at most 1; a drain: none lost).")
	drains(ew, r)

	flowTable(ew, r)
	mechanisms(ew, r)

	if len(r.Scaled) > 0 {
		fmt.Fprintln(ew, "\nWhat was scaled or chosen:")
		for _, s := range r.Scaled {
			fmt.Fprintf(ew, "  - %s\n", s)
		}
	}
	checks(ew, r)
	return ew.err
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// runName names a run in one short line.
func runName(run paper.RunResult) string {
	return fmt.Sprintf("%s/heal %s T%d %s", run.Failure, onOff(run.Healing), run.Test, run.Variant)
}

// lastReturn formats the time from the failure to the last return-path
// loss.
func lastReturn(run paper.RunResult) string {
	if run.Losses.Return == 0 {
		return "-"
	}
	return run.LastReturnLoss.Round(time.Millisecond).String()
}

// drains writes what each drain said.
func drains(w io.Writer, r *paper.Result) {
	first := true
	for _, run := range r.Runs {
		if run.Drain == nil {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nDrains (ITR1's lispctl drain, through its API):")
			first = false
		}
		d := run.Drain
		quiet := "the ingress moved"
		if !d.Quiet {
			quiet = "the ingress did NOT move before the drain timeout; the gateway was handed over anyway"
		}
		fmt.Fprintf(w, "  %s: returned after %v (waited %v for the ingress, %d LISP packets meanwhile): %s\n",
			runName(run), d.Took.Round(time.Millisecond), d.Waited.Round(time.Millisecond), d.PacketsDuring, quiet)
	}
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
	fmt.Fprintln(w, "\nPackets lost per flow after the failure, as gap/cache-miss/return/other (sent):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"flow"}
	for _, run := range r.Runs {
		head = append(head, runName(run))
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
			row = append(row, fmt.Sprintf("%d/%d/%d/%d (%d)", a[traffic.LostSwitchover], a[traffic.LostAtITR], a[traffic.LostReturnFailed], a[traffic.LostReturnOther]+a[traffic.LostUnseen], a.Sent()))
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
		fmt.Fprintf(w, "  %-28s  %s\n", runName(run), strings.Join(parts, "  |  "))
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
		fmt.Fprintf(w, "  %-28s  %d / %d   (flows whose destination it had no mapping for: %d)\n",
			runName(run), run.ITR2Misses, run.ITR2MissDrops, run.UnseenFlows)
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
			fmt.Fprintf(w, "  %s: %s: %s\n", runName(run), c.Name, c.Detail)
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
