package benchcontrol

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/wire"
)

// StepResult is what one rate step measured.
type StepResult struct {
	// Rate is the offered rate in requests per second; 0 means as fast as
	// the generator could send.
	Rate int `json:"rate"`
	// Seconds is the length of the step.
	Seconds float64 `json:"seconds"`
	// Sent is the number of Map-Requests sent.
	Sent uint64 `json:"sent"`
	// Replies is the number of Map-Replies received for them.
	Replies uint64 `json:"replies"`
	// Loss is the fraction of requests not answered (0 to 1).
	Loss float64 `json:"loss"`
	// SentPerSecond is Sent over Seconds.
	SentPerSecond float64 `json:"sent_per_second"`
	// RepliesPerSecond is Replies over Seconds.
	RepliesPerSecond float64 `json:"replies_per_second"`
	// P50Micros is the median reply latency in microseconds, from sending
	// the request to receiving its reply (both in the generator).
	P50Micros float64 `json:"p50_us"`
	// P99Micros is the 99th percentile of the reply latency.
	P99Micros float64 `json:"p99_us"`
	// LispdCPU is the CPU lispd used, in percent of one core (200 = two
	// cores).
	LispdCPU float64 `json:"lispd_cpu_percent"`
	// GeneratorCPU is the CPU the generator (this process) used.
	GeneratorCPU float64 `json:"generator_cpu_percent"`
	// LispdDrops counts the datagrams lispd reported dropping (socket
	// receive queue full, or shed by it) during the step.
	LispdDrops uint64 `json:"lispd_drops"`
	// GeneratorDrops counts replies the generator's own socket dropped;
	// they are counted as loss above although lispd sent them.
	GeneratorDrops uint64 `json:"generator_drops"`
}

// load generates Map-Requests against lispd and receives the replies.
type load struct {
	conn   *loadConn
	tmpls  []requestTemplate
	epoch  time.Time
	steps  []*stepCounters
	recvWG sync.WaitGroup
}

// stepCounters are updated by the receiver for replies tagged with the
// step's number.
type stepCounters struct {
	replies atomic.Uint64
	hist    histogram
}

// The nonce of a request: the step number in the top 8 bits, the time it
// was sent (nanoseconds since the epoch of the run) in the low 56.
const (
	nonceTagShift = 56
	nonceTimeMask = 1<<nonceTagShift - 1
	maxSteps      = 255
)

func newLoad(p *lispdProc, prefixes int, bufBytes int) (*load, error) {
	c, err := dialLoad(p.addr, bufBytes)
	if err != nil {
		return nil, err
	}
	tmpls, err := requestTemplates(c.LocalAddr(), prefixes)
	if err != nil {
		c.Close()
		return nil, err
	}
	l := &load{conn: c, tmpls: tmpls, epoch: time.Now(), steps: make([]*stepCounters, maxSteps+1)}
	for i := range l.steps {
		l.steps[i] = &stepCounters{}
	}
	l.recvWG.Add(1)
	go l.receive() // RoutineReplyReceiver
	return l, nil
}

// close stops the receiver.
func (l *load) close() {
	l.conn.Close()
	l.recvWG.Wait()
}

// receive counts the replies and their latency until the socket closes.
func (l *load) receive() {
	defer l.recvWG.Done()
	var now time.Duration
	fn := func(b []byte) {
		nonce, ok := replyNonce(b, wire.TypeMapReply)
		if !ok {
			return
		}
		st := l.steps[nonce>>nonceTagShift]
		st.replies.Add(1)
		st.hist.add(now - time.Duration(nonce&nonceTimeMask))
	}
	handle := func(b []byte) {
		if now == 0 {
			now = time.Since(l.epoch)
		}
		fn(b)
	}
	for {
		err := l.conn.RecvBatch(handle)
		now = 0
		if err != nil {
			return
		}
	}
}

// run offers rate requests per second (0: as fast as possible) for d, tagged
// with step number tag, and returns how many were sent.
func (l *load) run(ctx context.Context, tag int, rate int, d time.Duration) (uint64, error) {
	bufs := make([][]byte, maxLoadBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 0, 256)
	}
	pkts := make([][]byte, 0, maxLoadBatch)
	var sent uint64
	next := 0
	start := time.Now()
	for {
		el := time.Since(start)
		if el >= d || ctx.Err() != nil {
			return sent, ctx.Err()
		}
		n := maxLoadBatch
		if rate > 0 {
			due := uint64(el.Nanoseconds()) * uint64(rate) / uint64(time.Second)
			if due <= sent {
				// Sleep until the next request is due (the timer may
				// wake late; the deficit is then sent at once).
				wait := time.Duration((sent+1)*uint64(time.Second)/uint64(rate)) - el
				time.Sleep(max(wait, 20*time.Microsecond))
				continue
			}
			n = int(min(due-sent, maxLoadBatch))
		}
		ts := uint64(time.Since(l.epoch))
		pkts = pkts[:0]
		for i := range n {
			t := &l.tmpls[next]
			next = (next + 1) % len(l.tmpls)
			pkts = append(pkts, t.stamp(bufs[i][:cap(bufs[i])], uint64(tag)<<nonceTagShift|ts&nonceTimeMask))
		}
		k, err := l.conn.SendBatch(pkts)
		sent += uint64(k)
		if err != nil {
			return sent, fmt.Errorf("benchcontrol: send: %w", err)
		}
	}
}

// drain waits until the replies of step tag stop arriving (none for 100 ms)
// or a second has passed, and returns how many arrived.
func (l *load) drain(tag int) uint64 {
	st := l.steps[tag]
	last := st.replies.Load()
	quiet := time.Now()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		n := st.replies.Load()
		if n != last {
			last, quiet = n, time.Now()
			continue
		}
		if time.Since(quiet) >= 100*time.Millisecond {
			break
		}
	}
	return last
}

// sumDrops adds lispd's drop counters: those of the control plane whose
// name says drop.
func sumDrops(c map[string]uint64) uint64 {
	var n uint64
	for k, v := range c {
		if strings.HasPrefix(k, "control_") && strings.Contains(k, "drop") {
			n += v
		}
	}
	return n
}
