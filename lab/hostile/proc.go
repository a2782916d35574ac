//go:build linux

package hostile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lispd/lispd/api"
)

// Lispd is one lispd process under attack: a child of the test process,
// started from a config file in its own directory, observed through its
// local API.
type Lispd struct {
	// Name names the process in errors and in its log dump.
	Name string
	// Dir holds its config file, API socket and state files.
	Dir string
	// Socket is the path of its API socket: the config must set
	// daemon.api-socket to it.
	Socket string

	bin  string
	logs *logBuffer

	mu     sync.Mutex // guards cmd, exited and api
	cmd    *exec.Cmd
	exited chan struct{}
	api    *api.Client
}

// NewLispd prepares (and does not start) a lispd named name that runs bin
// from dir.
func NewLispd(bin, dir, name string) *Lispd {
	return &Lispd{Name: name, Dir: dir, Socket: filepath.Join(dir, "lispd.sock"), bin: bin, logs: &logBuffer{}}
}

// ConfigPath is where Start writes the config file.
func (l *Lispd) ConfigPath() string { return filepath.Join(l.Dir, "lispd.toml") }

// startTimeout bounds the wait for a starting lispd.
const startTimeout = 20 * time.Second

// startedLine is what lispd logs (at info level) once every role is up.
// Its API answers earlier, before the data plane and the synchronization
// set are up (either may still fail and end the process), so readiness is
// the API answering and this line.
const startedLine = `msg="lispd started"`

// Start writes config to ConfigPath and starts lispd with it, returning
// once it is up. The config must log at info level (the start line tells
// that lispd is up). A lispd that exits meanwhile is an error that quotes
// its log.
func (l *Lispd) Start(ctx context.Context, config string) error {
	if err := os.WriteFile(l.ConfigPath(), []byte(config), 0o600); err != nil {
		return fmt.Errorf("hostile: %s: %w", l.Name, err)
	}
	return l.Restart(ctx)
}

// Restart starts lispd again from the config file Start wrote (it must
// not be running) and returns once it is up.
func (l *Lispd) Restart(ctx context.Context) error {
	l.mu.Lock()
	if l.cmd != nil && !l.exitedLocked() {
		l.mu.Unlock()
		return fmt.Errorf("hostile: %s is already running", l.Name)
	}
	fmt.Fprintf(l.logs, "--- %s: start ---\n", l.Name)
	mark := l.logs.len()
	cmd := exec.Command(l.bin, "-c", l.ConfigPath())
	cmd.Stdout, cmd.Stderr = l.logs, l.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Should the test process die without its cleanups (a timeout
		// panic, a SIGKILL), the kernel kills lispd too.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		l.mu.Unlock()
		return fmt.Errorf("hostile: start %s: %w", l.Name, err)
	}
	exited := make(chan struct{})
	go func() { // RoutineWaitLispd
		_ = cmd.Wait()
		close(exited)
	}()
	client := api.NewClient(l.Socket, api.WithTimeout(5*time.Second))
	l.cmd, l.exited, l.api = cmd, exited, client
	l.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("hostile: %s exited at start: %s", l.Name, l.logs.tail(4096))
		default:
		}
		var err error
		if l.logs.containsSince(mark, startedLine) {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = client.Status(sctx)
			cancel()
			if err == nil {
				return nil
			}
		} else {
			err = fmt.Errorf("no %s line in its log yet (it must log at info level)", startedLine)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			l.Stop()
			return fmt.Errorf("hostile: %s not up within %v: %v; log: %s", l.Name, startTimeout, err, l.logs.tail(4096))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exitedLocked reports whether the current process has exited. l.mu must
// be held.
func (l *Lispd) exitedLocked() bool {
	select {
	case <-l.exited:
		return true
	default:
		return false
	}
}

// Alive reports whether lispd is running.
func (l *Lispd) Alive() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cmd != nil && !l.exitedLocked()
}

// PID is the process ID of the running lispd (0 if never started).
func (l *Lispd) PID() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cmd == nil {
		return 0
	}
	return l.cmd.Process.Pid
}

// API returns the client of the running lispd's API.
func (l *Lispd) API() *api.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.api
}

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Stop ends lispd, if it runs, with SIGTERM (a clean shutdown), then
// SIGKILL after stopGrace, and waits for it. It may be called any number
// of times, and is what every test registers as a cleanup.
func (l *Lispd) Stop() { l.end(syscall.SIGTERM) }

// Kill ends lispd, if it runs, with SIGKILL (a crash: nothing written at
// shutdown) and waits for it.
func (l *Lispd) Kill() { l.end(syscall.SIGKILL) }

func (l *Lispd) end(sig syscall.Signal) {
	l.mu.Lock()
	cmd, exited, client := l.cmd, l.exited, l.api
	l.mu.Unlock()
	if cmd == nil {
		return
	}
	if client != nil {
		client.Close()
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(stopGrace):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Counters returns lispd's counters, as `lispctl status` lists them.
func (l *Lispd) Counters(ctx context.Context) (map[string]uint64, error) {
	client := l.API()
	if client == nil {
		return nil, fmt.Errorf("hostile: %s was never started", l.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := client.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("hostile: %s status: %w", l.Name, err)
	}
	return st.Counters, nil
}

// RSS returns the resident set size of the running lispd in bytes, from
// /proc/PID/status (VmRSS).
func (l *Lispd) RSS() (uint64, error) {
	pid := l.PID()
	if pid == 0 {
		return 0, errors.New("hostile: lispd not started")
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("hostile: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			break
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("hostile: no VmRSS in /proc/%d/status", pid)
}

// Logs returns what lispd wrote to stderr and stdout, over all its runs
// (at most the first logLimit bytes).
func (l *Lispd) Logs() string { return l.logs.String() }

// LogTail returns the last n bytes of the logs.
func (l *Lispd) LogTail(n int) string { return l.logs.tail(n) }

// logLimit bounds the logs kept of one lispd.
const logLimit = 8 << 20

// logBuffer keeps the logs of one lispd, up to logLimit bytes.
type logBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := logLimit - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

func (l *logBuffer) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.b)
}

// containsSince reports whether s was written after the first off bytes
// (or the buffer is full, when it cannot tell).
func (l *logBuffer) containsSince(off int, s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.b) >= logLimit || strings.Contains(string(l.b[off:]), s)
}

func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b[max(0, len(l.b)-n):])
}
