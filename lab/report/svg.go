package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"time"

	"github.com/lispd/lispd/lab/paper"
	"github.com/lispd/lispd/lab/traffic"
)

// Colours of the fates on the timeline.
var fateColour = map[traffic.Fate]string{
	traffic.Delivered:        "#2b9348",
	traffic.LostSwitchover:   "#f4a261",
	traffic.LostAtITR:        "#d62828",
	traffic.LostReturnFailed: "#7b2cbf",
	traffic.LostReturnOther:  "#6c757d",
	traffic.LostUnseen:       "#000000",
}

var fateLabel = map[traffic.Fate]string{
	traffic.Delivered:        "delivered (reply received)",
	traffic.LostSwitchover:   "lost in the VRRP switchover gap",
	traffic.LostAtITR:        "lost to a cache miss at the ITR",
	traffic.LostReturnFailed: "reply sent to the failed RLOC",
	traffic.LostReturnOther:  "reply lost elsewhere",
	traffic.LostUnseen:       "lost, seen nowhere",
}

// Panel geometry.
const (
	panelW   = 520
	rowH     = 7
	padLeft  = 120
	padRight = 16
	padTop   = 34
	padBot   = 30
)

// SVG writes the timeline of every run as an SVG picture: one panel per
// run (columns are tests, rows are sync variants), x is time from the start
// of traffic, y is the flow, and each echo request is a mark coloured by
// its fate. A red line marks the failure and a blue line each VRRP
// switchover.
func SVG(w io.Writer, r *paper.Result) error {
	tests, variants := axes(r)
	if len(tests) == 0 {
		return fmt.Errorf("report: no runs to plot")
	}
	flows := 0
	var span time.Duration
	for _, run := range r.Runs {
		flows = max(flows, len(run.Traffic.Flows))
		span = max(span, run.Duration)
	}
	if span <= 0 {
		span = time.Second
	}
	panelH := padTop + flows*rowH + padBot
	width := len(tests) * (padLeft + panelW + padRight)
	legendH := 38 + 14*legend(io.Discard, width) + 8
	height := legendH + len(variants)*panelH
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(ew, `<title>lisplab paper (%s): packets of every flow around the failure of ITR1</title>`+"\n", html.EscapeString(r.Mode))
	fmt.Fprintf(ew, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(ew, `<text x="8" y="18" font-size="14" font-weight="bold">lisplab paper (%s): echo requests per flow around the failure of ITR1</text>`+"\n", html.EscapeString(r.Mode))
	legend(ew, width)
	for _, run := range r.Runs {
		col := indexOf(tests, run.Test)
		row := indexOfV(variants, run.Variant)
		x0 := col*(padLeft+panelW+padRight) + padLeft
		y0 := legendH + row*panelH
		panel(ew, run, x0, y0, flows, span)
	}
	fmt.Fprintln(ew, "</svg>")
	return ew.err
}

// legend writes the key of the colours and lines, wrapping at width, and
// returns how many rows it took.
func legend(w io.Writer, width int) int {
	x, y, rows := 8, 38, 1
	place := func(label string) (int, int) {
		need := 20 + 6*len(label) + 14
		if x+need > width && x > 8 {
			x, y, rows = 8, y+14, rows+1
		}
		at := x
		x += need
		return at, y
	}
	for _, f := range traffic.Fates() {
		lx, ly := place(fateLabel[f])
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="8" height="8" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, ly, fateColour[f], lx+12, ly+8, html.EscapeString(fateLabel[f]))
	}
	lx, ly := place("failure of ITR1")
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#c1121f" stroke-width="2"/><text x="%d" y="%d">failure of ITR1</text>`+"\n", lx, ly+4, lx+16, ly+4, lx+20, ly+8)
	lx, ly = place("VRRP switchover")
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#1d4ed8" stroke-width="2" stroke-dasharray="4 2"/><text x="%d" y="%d">VRRP switchover</text>`+"\n", lx, ly+4, lx+16, ly+4, lx+20, ly+8)
	return rows
}

func panel(w io.Writer, run paper.RunResult, x0, y0, flows int, span time.Duration) {
	plotTop := y0 + padTop
	plotH := flows * rowH
	xOf := func(d time.Duration) float64 {
		return float64(x0) + float64(panelW)*float64(d)/float64(span)
	}
	fmt.Fprintf(w, `<g><text x="%d" y="%d" font-size="12" font-weight="bold">Test %d, sync %s</text>`+"\n", x0, y0+padTop-8, run.Test, html.EscapeString(string(run.Variant)))
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", x0, plotTop, panelW, plotH)
	for i, fr := range run.Traffic.Flows {
		if i%5 == 0 || i == len(run.Traffic.Flows)-1 {
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end" font-size="8">%s</text>`+"\n", x0-4, plotTop+i*rowH+rowH-1, html.EscapeString(fr.Flow.String()))
		}
	}
	for _, m := range run.Traffic.Timeline {
		fmt.Fprintf(w, `<rect x="%.1f" y="%d" width="2" height="%d" fill="%s"/>`+"\n", xOf(m.At), plotTop+m.Flow*rowH+1, rowH-2, fateColour[m.Fate])
	}
	fx := xOf(run.FailAt)
	fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c1121f" stroke-width="2"/>`+"\n", fx, plotTop-4, fx, plotTop+plotH+4)
	for _, s := range run.Switchovers {
		sx := xOf(run.FailAt + s.After)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#1d4ed8" stroke-width="2" stroke-dasharray="4 2"><title>VRID %d to %s after %v</title></line>`+"\n",
			sx, plotTop-4, sx, plotTop+plotH+4, s.VRID, html.EscapeString(s.To), s.After.Round(time.Millisecond))
	}
	// Time axis: a tick per second (or per 10 s on long runs).
	step := time.Second
	if span > 20*time.Second {
		step = 10 * time.Second
	}
	for t := time.Duration(0); t <= span; t += step {
		x := xOf(t)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/><text x="%.1f" y="%d" text-anchor="middle" font-size="9">%gs</text>`+"\n",
			x, plotTop+plotH, x, plotTop+plotH+4, x, plotTop+plotH+14, math.Round(t.Seconds()*10)/10)
	}
	fmt.Fprintln(w, "</g>")
}

// axes returns the tests and variants present in r, in order.
func axes(r *paper.Result) ([]int, []paper.Variant) {
	var tests []int
	var variants []paper.Variant
	for _, run := range r.Runs {
		if indexOf(tests, run.Test) < 0 {
			tests = append(tests, run.Test)
		}
		if indexOfV(variants, run.Variant) < 0 {
			variants = append(variants, run.Variant)
		}
	}
	return tests, variants
}

func indexOf(xs []int, x int) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func indexOfV(xs []paper.Variant, x paper.Variant) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}
