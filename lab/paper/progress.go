package paper

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress writes one line per phase of the experiment: which run, what
// phase, and how long is left, for the run and in all.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	total   int
	per     time.Duration
	index   int
	label   string
	started time.Time
}

func newProgress(w io.Writer, total int, per time.Duration) *progress {
	return &progress{w: w, total: total, per: per}
}

// run starts run i (from 1).
func (p *progress) run(i int, label string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.index, p.label, p.started = i, label, time.Now()
}

// phase reports the current phase; left is the phase's own remaining time
// (0 when unknown).
func (p *progress) phase(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	elapsed := time.Since(p.started)
	runLeft := max(p.per-elapsed, 0)
	all := runLeft + time.Duration(p.total-p.index)*p.per
	fmt.Fprintf(p.w, "lisplab paper: [%d/%d] %s: %s (about %s left)\n",
		p.index, p.total, p.label, fmt.Sprintf(format, args...), all.Round(time.Second))
}

// note writes a line outside any run.
func (p *progress) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "lisplab paper: %s\n", fmt.Sprintf(format, args...))
}
