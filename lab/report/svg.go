package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"

	"github.com/lispd/lispd/lab/paper"
	"github.com/lispd/lispd/lab/traffic"
)

// style is how one fate is drawn: a colour of the Okabe-Ito palette (told
// apart by readers with any common colour-vision deficiency) and a marker
// shape of its own, so that the categories differ in shape as well as in
// colour (and in greyscale print).
type style struct {
	colour string
	// marker is the id of the marker's symbol in the SVG's defs; "" for
	// delivered requests, which are thin grey ticks.
	marker string
	label  string
}

var fateStyle = map[traffic.Fate]style{
	traffic.Delivered:        {"#999999", "", "delivered (reply received)"},
	traffic.LostSwitchover:   {"#E69F00", "m-gap", "lost in the VRRP switchover gap"},
	traffic.LostAtITR:        {"#D55E00", "m-miss", "lost to a cache miss at the ITR"},
	traffic.LostReturnFailed: {"#0072B2", "m-return", "reply sent to the failed RLOC (return path)"},
	traffic.LostReturnOther:  {"#CC79A7", "m-other", "reply lost elsewhere"},
	traffic.LostUnseen:       {"#000000", "m-unseen", "lost, seen nowhere"},
}

// Colours of the landmarks.
const (
	failColour   = "#000000"
	switchColour = "#009E73"
)

// markerDefs are the marker symbols, centred on (0,0), about 8 px wide.
const markerDefs = `<defs>
<g id="m-gap"><path d="M0,-4 L4,3.5 L-4,3.5 Z" fill="#E69F00" stroke="#000" stroke-width="0.4"/></g>
<g id="m-miss"><rect x="-3.5" y="-3.5" width="7" height="7" fill="#D55E00" stroke="#000" stroke-width="0.4"/></g>
<g id="m-return"><path d="M0,-4 L4,0 L0,4 L-4,0 Z" fill="#0072B2" stroke="#000" stroke-width="0.4"/></g>
<g id="m-other"><path d="M-3.5,-3.5 L3.5,3.5 M-3.5,3.5 L3.5,-3.5" stroke="#CC79A7" stroke-width="2"/></g>
<g id="m-unseen"><circle r="3.3" fill="none" stroke="#000000" stroke-width="1.3"/></g>
</defs>
`

// Panel geometry.
const (
	panelW   = 600 // plot width
	rowH     = 11  // one flow
	padLeft  = 150 // flow labels and the y axis title
	padRight = 24
	padTop   = 40 // panel title
	padBot   = 46 // tick labels and the x axis title
	// preFailure is how much of the time before the failure is shown.
	preFailure = 2 * time.Second
)

// SVG writes the timeline of every run as an SVG picture: one panel per
// run (columns: healing off and on; rows: failure kind, test and sync
// variant), x is the time since the failure of ITR1, y the flow, every
// flow labelled; each echo request is a mark at its sending time: a grey
// tick if it was answered, a coloured marker of its loss category's shape
// if not. A black line marks the failure, a dashed green line each VRRP
// switchover.
func SVG(w io.Writer, r *paper.Result) error {
	if len(r.Runs) == 0 {
		return fmt.Errorf("report: no runs to plot")
	}
	// Columns by healing, rows by everything else.
	type rowKey struct {
		f paper.Failure
		t int
		v paper.Variant
	}
	var rows []rowKey
	var cols []bool
	for _, run := range r.Runs {
		k := rowKey{run.Failure, run.Test, run.Variant}
		if !containsRow(rows, k, func(a, b rowKey) bool { return a == b }) {
			rows = append(rows, k)
		}
		if !containsRow(cols, run.Healing, func(a, b bool) bool { return a == b }) {
			cols = append(cols, run.Healing)
		}
	}
	if len(cols) == 2 && cols[0] {
		cols[0], cols[1] = false, true
	}
	flows := 0
	pre, post := preFailure, time.Duration(0)
	for _, run := range r.Runs {
		flows = max(flows, len(run.Traffic.Flows))
		pre = min(pre, run.FailAt)
		post = max(post, run.Duration-run.FailAt)
	}
	if post <= 0 {
		post = time.Second
	}
	x := axis{pre: pre, span: pre + post}
	panelH := padTop + flows*rowH + padBot
	colW := padLeft + panelW + padRight
	width := len(cols) * colW
	legendRows := legend(io.Discard, width)
	legendH := 40 + 16*legendRows + 10
	height := legendH + len(rows)*panelH
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(ew, `<title>lisplab paper (%s): echo requests of every flow around the failure of ITR1, before and after healing</title>`+"\n", html.EscapeString(r.Mode))
	fmt.Fprint(ew, markerDefs)
	fmt.Fprintf(ew, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(ew, `<text x="8" y="20" font-size="15" font-weight="bold">lisplab paper (%s): echo requests per flow around the failure of ITR1, before and after healing</text>`+"\n", html.EscapeString(r.Mode))
	legend(ew, width)
	for _, run := range r.Runs {
		col := 0
		for i, h := range cols {
			if h == run.Healing {
				col = i
			}
		}
		row := 0
		for i, k := range rows {
			if k == (rowKey{run.Failure, run.Test, run.Variant}) {
				row = i
			}
		}
		panel(ew, run, col*colW+padLeft, legendH+row*panelH, flows, x)
	}
	// Cells with no run (a drain with healing off) say why.
	for ri, k := range rows {
		for ci, h := range cols {
			found := false
			for _, run := range r.Runs {
				if run.Healing == h && k == (rowKey{run.Failure, run.Test, run.Variant}) {
					found = true
				}
			}
			if !found {
				why := "not run"
				if k.f == paper.FailDrain && !h {
					why = "no drain without the healing (lispctl drain is part of it)"
				}
				fmt.Fprintf(ew, `<text x="%d" y="%d" fill="#555">%s failure, healing %s, Test %d, sync %s: %s</text>`+"\n",
					ci*colW+padLeft, legendH+ri*panelH+padTop+flows*rowH/2, k.f, onOff(h), k.t, html.EscapeString(string(k.v)), html.EscapeString(why))
			}
		}
	}
	fmt.Fprintln(ew, "</svg>")
	return ew.err
}

func containsRow[T any](xs []T, x T, eq func(a, b T) bool) bool {
	for _, v := range xs {
		if eq(v, x) {
			return true
		}
	}
	return false
}

// axis maps the time since the failure to the panel's x.
type axis struct{ pre, span time.Duration }

// x returns the x offset (from the plot's left edge) of d since the
// failure.
func (a axis) x(d time.Duration) float64 {
	return float64(panelW) * float64(d+a.pre) / float64(a.span)
}

// legend writes the key of the markers and lines, wrapping at width, and
// returns how many rows it took.
func legend(w io.Writer, width int) int {
	x, y, rows := 8, 42, 1
	place := func(label string) (int, int) {
		need := 22 + 6*len(label) + 16
		if x+need > width && x > 8 {
			x, y, rows = 8, y+16, rows+1
		}
		at := x
		x += need
		return at, y
	}
	for _, f := range traffic.Fates() {
		st := fateStyle[f]
		lx, ly := place(st.label)
		if st.marker == "" {
			fmt.Fprintf(w, `<path d="M%d,%dv9" stroke="%s" stroke-width="1.5"/>`, lx+5, ly-1, st.colour)
		} else {
			fmt.Fprintf(w, `<use xlink:href="#%s" x="%d" y="%d"/>`, st.marker, lx+5, ly+3)
		}
		fmt.Fprintf(w, `<text x="%d" y="%d">%s</text>`+"\n", lx+16, ly+8, html.EscapeString(st.label))
	}
	lx, ly := place("failure of ITR1 (time 0)")
	fmt.Fprintf(w, `<path d="M%d,%dh16" stroke="%s" stroke-width="2"/><text x="%d" y="%d">failure of ITR1 (time 0)</text>`+"\n", lx, ly+4, failColour, lx+20, ly+8)
	lx, ly = place("VRRP switchover")
	fmt.Fprintf(w, `<path d="M%d,%dh16" stroke="%s" stroke-width="2" stroke-dasharray="4 2"/><text x="%d" y="%d">VRRP switchover</text>`+"\n", lx, ly+4, switchColour, lx+20, ly+8)
	return rows
}

// panel draws one run with its plot's left edge at x0 and its top at y0.
func panel(w io.Writer, run paper.RunResult, x0, y0, flows int, ax axis) {
	plotTop := y0 + padTop
	plotH := flows * rowH
	xOf := func(d time.Duration) float64 { return float64(x0) + ax.x(d) }
	fmt.Fprintf(w, `<g><text x="%d" y="%d" font-size="12" font-weight="bold">%s failure, healing %s, Test %d, sync %s</text>`+"\n",
		x0-padLeft+8, y0+padTop-22, run.Failure, onOff(run.Healing), run.Test, html.EscapeString(string(run.Variant)))
	l := run.Losses
	last := "no return-path loss"
	if l.Return > 0 {
		last = "last return-path loss " + lastReturn(run) + " after the failure"
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="10" fill="#333">lost after the failure: gap %d, cache miss %d, return path %d, other %d; %s</text>`+"\n",
		x0-padLeft+8, y0+padTop-8, l.Gap, l.CacheMiss, l.Return, l.Other, last)
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", x0, plotTop, panelW, plotH)
	// Time grid and ticks, one per second (per 5 s on long runs).
	step := time.Second
	if ax.span > 30*time.Second {
		step = 5 * time.Second
	}
	for t := -ax.pre.Truncate(step); t <= ax.span-ax.pre; t += step {
		x := xOf(t)
		fmt.Fprintf(w, `<path d="M%.1f,%dv%d" stroke="#eee"/><path d="M%.1f,%dv4" stroke="#666"/><text x="%.1f" y="%d" text-anchor="middle" font-size="9">%g</text>`+"\n",
			x, plotTop, plotH, x, plotTop+plotH, x, plotTop+plotH+14, math.Round(t.Seconds()*10)/10)
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle" font-size="10">time since the failure of ITR1 (s)</text>`+"\n", x0+panelW/2, plotTop+plotH+32)
	fmt.Fprintf(w, `<text transform="translate(%d,%d) rotate(-90)" text-anchor="middle" font-size="10">flow (host-&gt;destination)</text>`+"\n", x0-padLeft+12, plotTop+plotH/2)
	for i, fr := range run.Traffic.Flows {
		cy := plotTop + i*rowH + rowH/2
		if i%2 == 1 {
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="#f6f6f6"/>`+"\n", x0, plotTop+i*rowH, panelW, rowH)
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end" font-size="9">%s</text>`+"\n", x0-4, cy+3, html.EscapeString(fr.Flow.String()))
	}
	// Delivered requests: one grey path of ticks per flow; lost ones: a
	// marker each, drawn over them.
	ticks := make([]strings.Builder, flows)
	var marks strings.Builder
	for _, m := range run.Traffic.Timeline {
		d := m.At - run.FailAt
		if d < -ax.pre || m.Flow >= flows {
			continue
		}
		x := xOf(d)
		cy := plotTop + m.Flow*rowH + rowH/2
		st := fateStyle[m.Fate]
		if st.marker == "" {
			fmt.Fprintf(&ticks[m.Flow], "M%.1f,%dv%d", x, cy-3, 6)
			continue
		}
		fmt.Fprintf(&marks, `<use xlink:href="#%s" x="%.1f" y="%d"><title>%s</title></use>`+"\n", st.marker, x, cy, html.EscapeString(st.label))
	}
	for i := range ticks {
		if ticks[i].Len() > 0 {
			fmt.Fprintf(w, `<path d="%s" stroke="%s" stroke-width="1.5"/>`+"\n", ticks[i].String(), fateStyle[traffic.Delivered].colour)
		}
	}
	fmt.Fprint(w, marks.String())
	fx := xOf(0)
	fmt.Fprintf(w, `<path d="M%.1f,%dv%d" stroke="%s" stroke-width="2"><title>failure of ITR1</title></path>`+"\n", fx, plotTop-4, plotH+8, failColour)
	for _, s := range run.Switchovers {
		sx := xOf(s.After)
		fmt.Fprintf(w, `<path d="M%.1f,%dv%d" stroke="%s" stroke-width="2" stroke-dasharray="4 2"><title>VRID %d to %s after %v</title></path>`+"\n",
			sx, plotTop-4, plotH+8, switchColour, s.VRID, html.EscapeString(s.To), s.After.Round(time.Millisecond))
	}
	fmt.Fprintln(w, "</g>")
}
