//go:build linux

package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lispd/lispd/lab/labkit"
)

// killWait bounds how long a process may take to disappear after
// SIGKILL (it can only be slower in uninterruptible sleep).
const killWait = 10 * time.Second

// spawner forks every child of a lab from one OS thread that stays alive
// until the lab is closed. Children get a parent-death signal (SIGKILL),
// which Linux ties to the thread that forked them: forking from ordinary
// goroutines would kill a child whenever the runtime happened to retire
// the thread that forked it; forking from this thread kills the children
// when the lab ends, or when the whole process dies.
type spawner struct {
	reqs   chan spawnReq
	quit   chan struct{}
	exited chan struct{}
	once   sync.Once
}

type spawnReq struct {
	cmd *exec.Cmd
	res chan error
}

func newSpawner() *spawner {
	s := &spawner{
		reqs:   make(chan spawnReq),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go s.loop()
	return s
}

// loop is the spawner's goroutine. It never unlocks its thread, so the
// runtime ends the thread when loop returns.
func (s *spawner) loop() {
	runtime.LockOSThread()
	defer close(s.exited)
	for {
		select {
		case r := <-s.reqs:
			r.res <- r.cmd.Start()
		case <-s.quit:
			return
		}
	}
}

// start starts cmd on the spawner's thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	res := make(chan error, 1)
	select {
	case s.reqs <- spawnReq{cmd: cmd, res: res}:
		return <-res
	case <-s.exited:
		return ErrClosed
	}
}

// stop ends the spawner's goroutine and thread.
func (s *spawner) stop() {
	s.once.Do(func() { close(s.quit) })
	<-s.exited
}

// Command describes a process to start in a node with Node.Start.
type Command struct {
	// Name is the program: a path, or a name looked up in PATH.
	Name string
	// Args are its arguments (without the program name).
	Args []string
	// Env is added to the environment the lab's process runs with.
	Env []string
	// Dir is the working directory; empty means the lab's directory.
	Dir string
	// Label names the process in log file names and errors; empty means
	// the base name of Name.
	Label string
	// Stdout and Stderr, if set, receive a copy of the output; it always
	// goes to the process's log files too.
	Stdout, Stderr io.Writer
}

// A Process is a program running inside a node. Its output goes to two
// files in the lab's directory. It is stopped by Stop, by the context it
// was started with, or by Lab.Close.
type Process struct {
	node       *Node
	label      string
	argv       []string
	stdoutPath string
	stderrPath string
	grace      time.Duration

	pid         int
	done        chan struct{}
	err         error // cmd.Wait's result or the start error; set before done is closed
	startFailed bool

	stopRequested atomic.Bool
	stopOnce      sync.Once
}

// Start starts a program inside the node (with `ip netns exec`) in a
// process group of its own, with its stdout and stderr written to files
// in the lab's directory. When ctx is done the process is stopped as by
// Stop.
func (n *Node) Start(ctx context.Context, c Command) (*Process, error) {
	p := n.start(ctx, c)
	if p.startFailed {
		return nil, p.wrap(p.err)
	}
	return p, nil
}

// Run starts a program inside the node like Start. If it cannot be
// started, the returned Process has already exited and Wait returns why.
func (n *Node) Run(ctx context.Context, name string, args ...string) *Process {
	return n.start(ctx, Command{Name: name, Args: args})
}

func (n *Node) start(ctx context.Context, c Command) *Process {
	l := n.lab
	label := c.Label
	if label == "" {
		label = filepath.Base(c.Name)
	}
	p := &Process{
		node:  n,
		label: label,
		argv:  append([]string{c.Name}, c.Args...),
		grace: l.opts.StopGrace,
		done:  make(chan struct{}),
	}
	fail := func(err error) *Process {
		p.err = err
		p.startFailed = true
		close(p.done)
		return p
	}
	if c.Name == "" {
		return fail(invalidf("empty program name"))
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	prog := c.Name
	if !strings.Contains(prog, "/") {
		lp, err := lookTool(prog)
		if err != nil {
			return fail(err)
		}
		prog = lp
	}
	ip, err := lookTool("ip")
	if err != nil {
		return fail(err)
	}
	release, err := l.use()
	if err != nil {
		return fail(err)
	}
	defer release()

	base := l.nextLogBase(n.name, label)
	p.stdoutPath, p.stderrPath = base+".out", base+".err"
	// The log files stay open until the process has been reaped: output
	// copied through pipes (Command.Stdout, Stderr) is written after
	// Start returns.
	fout, err := os.OpenFile(p.stdoutPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fail(fmt.Errorf("netns: log file: %w", err))
	}
	ferr, err := os.OpenFile(p.stderrPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		fout.Close()
		return fail(fmt.Errorf("netns: log file: %w", err))
	}

	cmd := exec.Command(ip, append([]string{"netns", "exec", n.nsName, prog}, c.Args...)...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Dir = c.Dir
	if cmd.Dir == "" {
		cmd.Dir = l.dir
	}
	cmd.Stdout, cmd.Stderr = io.Writer(fout), io.Writer(ferr)
	if c.Stdout != nil {
		cmd.Stdout = io.MultiWriter(fout, c.Stdout)
	}
	if c.Stderr != nil {
		cmd.Stderr = io.MultiWriter(ferr, c.Stderr)
	}
	if c.Stdout != nil || c.Stderr != nil {
		// Output is copied through pipes: do not let a grandchild that
		// keeps them open block Wait after the process has exited.
		cmd.WaitDelay = time.Second
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := l.sp.start(cmd); err != nil {
		fout.Close()
		ferr.Close()
		return fail(err)
	}
	p.pid = cmd.Process.Pid
	l.mu.Lock()
	l.procs[p] = struct{}{}
	l.mu.Unlock()
	l.log.Debug("process started", "node", n.name, "proc", label, "pid", p.pid, "argv", p.argv)

	go p.reap(cmd, fout, ferr)
	p.waitEntered()
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				p.Stop()
			case <-p.done:
			}
		}()
	}
	return p
}

// enterWait bounds how long start waits for `ip netns exec` to move the
// new process into the node's namespace.
const enterWait = 5 * time.Second

// waitEntered waits until the process is inside its node's namespace (or
// has exited), so that when Start returns the program is in the node
// (and found there by Close and CleanupStale).
func (p *Process) waitEntered() {
	path := fmt.Sprintf("/proc/%d/ns/net", p.pid)
	deadline := time.Now().Add(enterWait)
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 5*time.Millisecond) {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			return // gone (or a zombie)
		}
		if (nsID{dev: st.Dev, ino: st.Ino}) == p.node.id || p.Exited() {
			return
		}
		if time.Now().After(deadline) {
			p.node.lab.log.Warn("process not in its namespace yet", "node", p.node.name, "proc", p.label, "pid", p.pid)
			return
		}
		time.Sleep(delay)
	}
}

// reap waits for the process to exit and records the result.
func (p *Process) reap(cmd *exec.Cmd, logs ...*os.File) {
	err := cmd.Wait()
	for _, f := range logs {
		f.Close()
	}
	p.err = err
	close(p.done)
	l := p.node.lab
	l.mu.Lock()
	delete(l.procs, p)
	l.mu.Unlock()
	l.log.Debug("process exited", "node", p.node.name, "proc", p.label, "pid", p.pid, "err", err)
}

// Name returns the process's label.
func (p *Process) Name() string { return p.label }

// Node returns the node the process runs in.
func (p *Process) Node() *Node { return p.node }

// Pid returns the process ID (the process is the leader of its own
// process group), 0 if it never started.
func (p *Process) Pid() int { return p.pid }

// Args returns the program and its arguments as given.
func (p *Process) Args() []string { return append([]string(nil), p.argv...) }

// StdoutPath and StderrPath return the files the process's output goes
// to; empty if it never started.
func (p *Process) StdoutPath() string { return p.stdoutPath }

// StderrPath returns the file the process's stderr goes to.
func (p *Process) StderrPath() string { return p.stderrPath }

// Done is closed when the process has exited (or failed to start).
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitCode returns the exit status, or -1 while it runs, if it was killed
// by a signal or never started.
func (p *Process) ExitCode() int {
	if !p.Exited() || p.startFailed {
		return -1
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Wait waits for the process to exit. It returns nil if the process
// exited with status 0, or was stopped by Stop (or its context, or Close)
// and exited with status 0 or by the signal it was sent; otherwise a
// *ProcessError with the tail of its output.
func (p *Process) Wait() error {
	<-p.done
	return p.result()
}

// result is Wait's answer once done is closed.
func (p *Process) result() error {
	if p.err == nil {
		return nil
	}
	if !p.startFailed && p.stopRequested.Load() && stoppedBySignal(p.err) {
		return nil
	}
	return p.wrap(p.err)
}

// stoppedBySignal reports whether err is an exit caused by the signals
// Stop sends.
func stoppedBySignal(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return false
	}
	switch ws.Signal() {
	case syscall.SIGTERM, syscall.SIGKILL, syscall.SIGINT:
		return true
	}
	return false
}

// wrap makes a *ProcessError of err.
func (p *Process) wrap(err error) error {
	return &ProcessError{Node: p.node.name, Name: p.label, Pid: p.pid, Err: err, Tail: p.Tail(20)}
}

// Signal sends sig to the process's group.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.pid == 0 {
		return fmt.Errorf("%w: %s never started", ErrNotFound, p.label)
	}
	if p.Exited() {
		return fmt.Errorf("%w: %s (pid %d)", ErrExited, p.label, p.pid)
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("netns: signalling %s (pid %d): %w", p.label, p.pid, err)
	}
	return nil
}

// signalGroup sends sig to the process group, ignoring a group that is
// gone.
func (p *Process) signalGroup(sig syscall.Signal) {
	if p.pid > 0 {
		syscall.Kill(-p.pid, sig)
	}
}

// Stop sends SIGTERM to the process's group, waits for the process to exit
// for the lab's grace period, then sends SIGKILL; members of the group left
// behind are killed too. It returns what Wait returns. Stop may be called
// more than once and concurrently.
func (p *Process) Stop() error {
	return p.stopWith(syscall.SIGTERM, p.grace)
}

// terminate is Stop for Close: it reports only a process that would not
// die.
func (p *Process) terminate(grace time.Duration) error {
	p.stopWith(syscall.SIGTERM, grace)
	if !p.Exited() {
		return fmt.Errorf("netns: node %s: %s (pid %d) did not exit after SIGKILL", p.node.name, p.label, p.pid)
	}
	return nil
}

// stopWith signals the group with sig, then SIGKILL after grace.
func (p *Process) stopWith(sig syscall.Signal, grace time.Duration) error {
	p.stopOnce.Do(func() {
		if p.Exited() {
			return
		}
		p.stopRequested.Store(true)
		p.signalGroup(sig)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			p.node.lab.log.Warn("process ignored signal, killing", "node", p.node.name, "proc", p.label, "pid", p.pid, "signal", sig)
			p.signalGroup(syscall.SIGKILL)
			k := time.NewTimer(killWait)
			defer k.Stop()
			select {
			case <-p.done:
			case <-k.C:
				return
			}
		}
		// Group members the leader left behind: the group ID cannot have
		// been reused while any of them lives.
		p.signalGroup(syscall.SIGKILL)
	})
	select {
	case <-p.done:
		return p.result()
	default:
		return fmt.Errorf("netns: node %s: %s (pid %d) did not exit after SIGKILL", p.node.name, p.label, p.pid)
	}
}

// Output returns what the process has written to stdout and stderr so
// far.
func (p *Process) Output() (stdout, stderr []byte, err error) {
	if p.stdoutPath == "" {
		return nil, nil, nil
	}
	stdout, err1 := os.ReadFile(p.stdoutPath)
	stderr, err2 := os.ReadFile(p.stderrPath)
	if err := errors.Join(err1, err2); err != nil {
		return stdout, stderr, fmt.Errorf("netns: %w", err)
	}
	return stdout, stderr, nil
}

// tailBytes bounds how much of a log file Tail reads.
const tailBytes = 64 << 10

// Tail returns the last n lines of the process's stdout and of its
// stderr, each under a heading; empty if there is no output.
func (p *Process) Tail(n int) string {
	var b strings.Builder
	for _, f := range []struct{ name, path string }{{"stdout", p.stdoutPath}, {"stderr", p.stderrPath}} {
		if f.path == "" {
			continue
		}
		t := tailFile(f.path, n)
		if t == "" {
			continue
		}
		fmt.Fprintf(&b, "[%s]\n%s\n", f.name, t)
	}
	return strings.TrimRight(b.String(), "\n")
}

// tailFile returns the last n lines of the end of a file.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - tailBytes
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	k, _ := f.ReadAt(buf, off)
	return tailLines(buf[:k], n)
}

// tailLines returns the last n lines of b.
func tailLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pollEvery is the interval of the lab's wait helpers.
const pollEvery = 20 * time.Millisecond

// WaitOutput waits until the process's stdout or stderr contains s. It
// fails if the process exits first, or when ctx is done.
func (p *Process) WaitOutput(ctx context.Context, s string) error {
	has := func() bool {
		out, errOut, _ := p.Output()
		return bytes.Contains(out, []byte(s)) || bytes.Contains(errOut, []byte(s))
	}
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		if has() {
			return nil
		}
		select {
		case <-p.done:
			if has() {
				return nil
			}
			err := p.result()
			if err == nil {
				err = p.wrap(fmt.Errorf("%w before printing %q", ErrExited, s))
			}
			return err
		case <-ctx.Done():
			return p.wrap(fmt.Errorf("%w waiting for %q: %v", ErrTimeout, s, ctx.Err()))
		case <-t.C:
		}
	}
}

// Exec runs a short command inside the node and returns its combined
// stdout and stderr. It fails with a *ProcessError if the command exits
// with a non-zero status, and is stopped (and fails) when ctx is done.
func (n *Node) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	var buf labkit.LockedBuffer
	p := n.start(ctx, Command{Name: name, Args: args, Stdout: &buf, Stderr: &buf})
	if p.startFailed {
		return nil, p.wrap(p.err)
	}
	<-p.done
	out := buf.Bytes()
	if cerr := ctx.Err(); cerr != nil && p.stopRequested.Load() {
		return out, &ProcessError{Node: n.name, Name: p.label, Pid: p.pid, Err: cerr, Tail: tailLines(out, 20)}
	}
	if p.err != nil {
		return out, &ProcessError{Node: n.name, Name: p.label, Pid: p.pid, Err: p.err, Tail: tailLines(out, 20)}
	}
	return out, nil
}
