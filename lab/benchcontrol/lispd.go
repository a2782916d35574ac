package benchcontrol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
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

// The bench's sites: each owns a /9 of 10.0.0.0/8 whose /28s its ETR
// registers, one per authentication algorithm.
const (
	siteSHA1Key   = "bench-sha1-key"
	siteSHA256Key = "bench-sha256-key"
	sitePubSubKey = "bench-pubsub-site-key"
)

// lispdConfig is the config of the lispd under test: MS+MR on loopback.
const lispdConfig = `# written by lisplab bench control
[daemon]
roles = ["ms", "mr"]
api-socket = %q
log-level = "warn"

[control]
listen = [%q]

[map-server]
registration-timeout = "1h"
max-registrations = 4194304

[[map-server.site]]
name = "bench-sha1"
authentication-key = %q
algorithm = "hmac-sha-1"
eid-prefixes = ["10.0.0.0/9"]
accept-more-specifics = true
proxy-reply = true
max-prefixes = 1048576
max-registrations = 1048576

[[map-server.site]]
name = "bench-sha256"
authentication-key = %q
algorithm = "hmac-sha-256"
eid-prefixes = ["10.128.0.0/9"]
accept-more-specifics = true
proxy-reply = true
max-prefixes = 1048576
max-registrations = 1048576

[[map-server.site]]
name = "bench-pubsub"
authentication-key = %q
algorithm = "hmac-sha-256"
eid-prefixes = [%q]
proxy-reply = true

[map-resolver]
map-servers = ["local"]
`

// lispdPubSubConfig turns on publish/subscribe (RFC 9437) on the Map-Server,
// with limits sized for the run (every subscriber of the bench is on
// 127.0.0.1, so max-per-itr is as large as max-subscriptions).
const lispdPubSubConfig = `
[map-server.pubsub]
enabled = true
authentication-key = %q
key-id = %d
algorithm = "hmac-sha-256"
max-subscriptions = %d
max-per-itr = %d
max-pending = %d
`

// lispdOptions are the parts of lispd's config that depend on the run.
type lispdOptions struct {
	// maxSubscriptions turns on pub/sub with room for that many
	// subscriptions when positive; 0 leaves pub/sub off (and out of the
	// config, which a lispd without pub/sub would refuse).
	maxSubscriptions int
}

// lispdProc is the lispd under test, a child process.
type lispdProc struct {
	cmd    *exec.Cmd
	dir    string
	socket string
	addr   netip.AddrPort
	api    *api.Client
	logs   *lockedBuffer
	exited chan struct{}
}

// lockedBuffer collects the daemon's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil // keep the first MiB
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freePort returns a UDP port that was free on 127.0.0.1 a moment ago.
func freePort() (uint16, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, fmt.Errorf("benchcontrol: %w", err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
}

// startLispd runs bin with the bench config in dir and waits until its API
// answers.
func startLispd(ctx context.Context, bin, dir string, opts lispdOptions) (*lispdProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &lispdProc{
		dir:    dir,
		socket: filepath.Join(dir, "lispd.sock"),
		addr:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port),
		logs:   &lockedBuffer{},
		exited: make(chan struct{}),
	}
	cfgPath := filepath.Join(dir, "lispd.toml")
	cfg := fmt.Sprintf(lispdConfig, p.socket, p.addr.String(), siteSHA1Key, siteSHA256Key, sitePubSubKey, pubsubPrefix.String())
	if n := opts.maxSubscriptions; n > 0 {
		cfg += fmt.Sprintf(lispdPubSubConfig, pubsubKey, pubsubKeyID, n, n, max(n, 200000))
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("benchcontrol: %w", err)
	}
	p.cmd = exec.Command(bin, "-c", cfgPath)
	p.cmd.Stderr = p.logs
	p.cmd.Stdout = p.logs
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("benchcontrol: start lispd: %w", err)
	}
	go func() { // RoutineWaitLispd
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	p.api = api.NewClient(p.socket, api.WithTimeout(5*time.Second))
	deadline := time.Now().Add(20 * time.Second)
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := p.api.Status(sctx)
		cancel()
		if err == nil {
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("benchcontrol: lispd exited at start: %s", strings.TrimSpace(p.logs.String()))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("benchcontrol: lispd API did not answer: %v; logs: %s", err, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop terminates lispd (SIGTERM, then SIGKILL after 5 s).
func (p *lispdProc) stop() {
	if p.api != nil {
		p.api.Close()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// alive reports whether lispd is still running.
func (p *lispdProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// counters returns lispd's counters (those of `lispctl status`).
func (p *lispdProc) counters(ctx context.Context) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := p.api.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("benchcontrol: lispd status: %w", err)
	}
	return st.Counters, nil
}

// clockTick is USER_HZ, the unit of the CPU times in /proc/PID/stat; 100
// on every Linux architecture Go supports.
const clockTick = 100

// cpuTime returns the user+system CPU time a process used so far, from
// /proc/PID/stat ("self" for this process).
func cpuTime(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, fmt.Errorf("benchcontrol: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("benchcontrol: malformed /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("benchcontrol: malformed /proc/PID/stat")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("benchcontrol: malformed /proc/PID/stat")
	}
	return time.Duration(u+s) * time.Second / clockTick, nil
}

// memory returns VmRSS and VmHWM (peak RSS) of a process in bytes, from
// /proc/PID/status.
func memory(pid string) (rss, hwm uint64, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("benchcontrol: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, perr := strconv.ParseUint(f[0], 10, 64)
		if perr != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = n * 1024
		case "VmHWM":
			hwm = n * 1024
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("benchcontrol: no VmRSS in /proc/PID/status")
	}
	return rss, hwm, nil
}

// pid is the process-id string of lispd for /proc.
func (p *lispdProc) pid() string { return strconv.Itoa(p.cmd.Process.Pid) }
