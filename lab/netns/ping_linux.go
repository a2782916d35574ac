//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lispd/lispd/lab/labkit"
)

// pingArgs returns ping's arguments: numeric output, a timestamp on every
// line, a line for every probe that had no answer when the next one left.
func pingArgs(dst string, count int, interval time.Duration) ([]string, error) {
	if _, err := netip.ParseAddr(dst); err != nil {
		return nil, invalidf("ping destination %q: want an address", dst)
	}
	if interval == 0 {
		interval = time.Second
	}
	if interval < time.Millisecond {
		return nil, invalidf("ping interval %v: at least 1ms", interval)
	}
	args := []string{"-n", "-D", "-O", "-W", "1", "-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64)}
	if count > 0 {
		args = append(args, "-c", strconv.Itoa(count))
	}
	return append(args, dst), nil
}

// Ping sends count echo requests from the node to dst, one every interval
// (0 means 1 s), with iputils ping, and returns what ping reported. A run
// in which replies were lost is not an error: look at the result. Ping
// fails when ping could not run or printed no statistics (for example
// "Network is unreachable"), or when ctx ends first.
func Ping(ctx context.Context, from *Node, dst string, count int, interval time.Duration) (PingResult, error) {
	if from == nil {
		return PingResult{}, invalidf("ping from a nil node")
	}
	if count <= 0 {
		return PingResult{}, invalidf("ping count %d", count)
	}
	args, err := pingArgs(dst, count, interval)
	if err != nil {
		return PingResult{}, err
	}
	var buf labkit.LockedBuffer
	p := from.start(ctx, Command{Name: "ping", Args: args, Env: []string{"LC_ALL=C"}, Stdout: &buf, Stderr: &buf})
	if p.startFailed {
		return PingResult{}, p.wrap(p.err)
	}
	<-p.done
	out := buf.Bytes()
	res, perr := ParsePing(out)
	if err := ctx.Err(); err != nil && p.stopRequested.Load() {
		return res, &ProcessError{Node: from.name, Name: "ping", Pid: p.pid, Err: err, Tail: tailLines(out, 10)}
	}
	if perr != nil {
		return res, &ProcessError{Node: from.name, Name: "ping", Pid: p.pid, Err: errors.Join(p.err, perr), Tail: tailLines(out, 10)}
	}
	return res, nil
}

// A PingStream is a ping that runs until stopped, recording every reply
// with its sequence number and timestamp: per-flow loss around a failure.
type PingStream struct {
	proc *Process
	w    *streamWriter
}

// streamWriter feeds a pingParser under a lock.
type streamWriter struct {
	mu sync.Mutex
	p  pingParser
}

// Write feeds ping's output to the parser.
func (s *streamWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.Write(b)
}

// StartPing starts pinging dst from the node every interval until Stop (or
// ctx's end, or Lab.Close). It returns once ping has started.
func StartPing(ctx context.Context, from *Node, dst string, interval time.Duration) (*PingStream, error) {
	if from == nil {
		return nil, invalidf("ping from a nil node")
	}
	args, err := pingArgs(dst, 0, interval)
	if err != nil {
		return nil, err
	}
	w := &streamWriter{}
	p := from.start(ctx, Command{Name: "ping", Label: "ping-" + dst, Args: args, Env: []string{"LC_ALL=C"}, Stdout: w})
	if p.startFailed {
		return nil, p.wrap(p.err)
	}
	// ping prints its header before the first probe; an early error
	// (unreachable network, bad address) ends it at once.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.WaitOutput(wctx, "PING "); err != nil {
		p.Stop()
		return nil, err
	}
	return &PingStream{proc: p, w: w}, nil
}

// Process returns the ping process.
func (s *PingStream) Process() *Process { return s.proc }

// Snapshot returns what has been recorded so far. Before Stop, the
// statistics are not known: use Sent (the highest sequence number seen).
func (s *PingStream) Snapshot() PingResult {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return s.w.p.res.clone()
}

// Stop interrupts ping (SIGINT, so that it prints its statistics), waits
// for it and returns the complete result. It may be called more than
// once.
func (s *PingStream) Stop() (PingResult, error) {
	err := s.proc.stopWith(syscall.SIGINT, s.proc.grace)
	s.w.mu.Lock()
	s.w.p.flush()
	res := s.w.p.res.clone()
	s.w.mu.Unlock()
	if err != nil && s.proc.ExitCode() == 1 && res.Summary {
		// ping's status when nothing was received: the result says so.
		err = nil
	}
	if err == nil && !res.Summary {
		err = &ProcessError{Node: s.proc.node.name, Name: s.proc.label, Pid: s.proc.pid,
			Err: fmt.Errorf("%w: ping printed no statistics", ErrPingOutput), Tail: s.proc.Tail(10)}
	}
	return res, err
}
