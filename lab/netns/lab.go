//go:build linux

package netns

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	vnetns "github.com/vishvananda/netns"
)

// DefaultPrefix starts the name prefix of every lab made with an empty
// Options.Prefix: "lt" and five random characters. CleanupStale(DefaultPrefix)
// removes what crashed labs left behind.
const DefaultPrefix = "lt"

// NetnsDir is where named network namespaces are persisted, as by
// `ip netns add`.
const NetnsDir = "/run/netns"

// ownerDir holds one file per lab naming the process that owns it and the
// namespaces it created, so that CleanupStale leaves the labs of live
// processes alone and removes only what crashed labs provably created.
const ownerDir = "/run/lispd-netns"

// DefaultStopGrace is how long Process.Stop waits after SIGTERM before it
// sends SIGKILL, unless Options.StopGrace says otherwise.
const DefaultStopGrace = 3 * time.Second

// Options configure a Lab. The zero value is ready to use.
type Options struct {
	// Prefix is the lab's name prefix: 2 to 8 lower-case letters and
	// digits, unique among the labs on this machine. Empty means
	// DefaultPrefix followed by five random characters.
	Prefix string
	// Dir is the directory in which the lab makes its temporary directory
	// (process logs, captures, keepalived files). Empty means os.TempDir().
	Dir string
	// KeepDir keeps the lab's temporary directory on Close, for
	// debugging; everything else is still removed.
	KeepDir bool
	// StopGrace is how long a process has to exit after SIGTERM before it
	// is killed. Zero means DefaultStopGrace.
	StopGrace time.Duration
	// Logger receives debug and warning messages; nil discards them.
	Logger *slog.Logger
}

// A Lab owns a set of network namespaces (nodes) and everything in them:
// links, bridges, addresses, routes, processes, and a temporary directory.
// Close removes all of it. A Lab is safe for concurrent use.
type Lab struct {
	prefix string
	dir    string
	owner  string
	opts   Options
	log    *slog.Logger
	sp     *spawner

	closeOnce sync.Once
	closeErr  error

	// ownerMu serializes appends to the owner record.
	ownerMu sync.Mutex

	// Lock order: rw before mu. rw is held for reading by every operation
	// that uses a node's namespace or netlink handle (or starts a
	// process), and for writing by Close, so nothing touches a namespace
	// while it is torn down. closed is guarded by rw.
	rw     sync.RWMutex
	closed bool

	// mu guards the registries below; it is only held briefly and never
	// while calling out.
	mu     sync.Mutex
	nodes  map[string]*Node
	order  []*Node
	pairs  []*LinkPair
	procs  map[*Process]struct{}
	logSeq int
}

// New creates a lab: its name prefix, its temporary directory and its
// owner record under /run/lispd-netns. It needs root; see Supported.
func New(opts Options) (*Lab, error) {
	if opts.StopGrace <= 0 {
		opts.StopGrace = DefaultStopGrace
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(ownerDir, 0o755); err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	prefix, owner, err := claimPrefix(opts.Prefix)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(opts.Dir, "lispd-netns-"+prefix+"-")
	if err != nil {
		os.Remove(owner)
		return nil, fmt.Errorf("netns: lab directory: %w", err)
	}
	if err := writeOwner(owner, dir); err != nil {
		os.Remove(owner)
		os.RemoveAll(dir)
		return nil, err
	}
	l := &Lab{
		prefix: prefix,
		dir:    dir,
		owner:  owner,
		opts:   opts,
		log:    logger.With("lab", prefix),
		sp:     newSpawner(),
		nodes:  make(map[string]*Node),
		procs:  make(map[*Process]struct{}),
	}
	l.log.Debug("lab created", "dir", dir)
	return l, nil
}

// claimPrefix picks (or checks) the lab's prefix and creates its owner
// file exclusively, so that two labs never share a prefix.
func claimPrefix(want string) (prefix, owner string, err error) {
	if want != "" {
		if !validPrefix(want) || len(want) < 2 || len(want) > 8 {
			return "", "", invalidf("lab prefix %q: want 2-8 lower-case letters and digits", want)
		}
	}
	for try := 0; try < 20; try++ {
		prefix = want
		if prefix == "" {
			prefix = DefaultPrefix + randomSuffix(5)
		}
		owner = filepath.Join(ownerDir, prefix+".owner")
		f, err := os.OpenFile(owner, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			f.Close()
			if inUse, err := namespacesWithPrefix(prefix); err == nil && len(inUse) == 0 {
				return prefix, owner, nil
			}
			// Namespaces of this prefix exist (a crashed run whose owner
			// record is gone): do not adopt them.
			os.Remove(owner)
		}
		if want != "" {
			return "", "", fmt.Errorf("%w: lab prefix %q is in use", ErrExists, want)
		}
	}
	return "", "", fmt.Errorf("netns: no free lab prefix found")
}

// randomSuffix returns n random lower-case letters and digits.
func randomSuffix(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics on failure instead)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// validPrefix reports whether s is non-empty lower-case letters and digits.
func validPrefix(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// writeOwner records this process (pid and start time) and the lab's
// directory in the owner file.
func writeOwner(path, dir string) error {
	start, err := procStartTime(os.Getpid())
	if err != nil {
		return fmt.Errorf("netns: owner record: %w", err)
	}
	text := fmt.Sprintf("pid=%d\nstart=%d\ndir=%s\n", os.Getpid(), start, dir)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("netns: owner record: %w", err)
	}
	return nil
}

// recordNamespace appends a namespace the lab created to its owner
// record, the proof CleanupStale asks for before it touches a namespace
// of a crashed lab (see ownerRecord).
func (l *Lab) recordNamespace(ns recordedNS) error {
	l.ownerMu.Lock()
	defer l.ownerMu.Unlock()
	f, err := os.OpenFile(l.owner, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("netns: owner record: %w", err)
	}
	_, err = f.WriteString(formatNamespace(ns))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("netns: owner record: %w", err)
	}
	return nil
}

// Prefix returns the lab's name prefix.
func (l *Lab) Prefix() string { return l.prefix }

// Dir returns the lab's temporary directory, where process logs,
// captures with relative paths and keepalived files go.
func (l *Lab) Dir() string { return l.dir }

// Node returns the node with the given short name, or nil.
func (l *Lab) Node(name string) *Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nodes[name]
}

// Nodes returns the lab's nodes in the order they were added.
func (l *Lab) Nodes() []*Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Node(nil), l.order...)
}

// Processes returns the lab's processes that have not exited yet.
func (l *Lab) Processes() []*Process {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Process, 0, len(l.procs))
	for p := range l.procs {
		out = append(out, p)
	}
	return out
}

// use takes the lab's read lock for an operation on its namespaces; the
// caller must call the returned function when done. It fails once the lab
// is closed.
func (l *Lab) use() (func(), error) {
	l.rw.RLock()
	if l.closed {
		l.rw.RUnlock()
		return nil, ErrClosed
	}
	return l.rw.RUnlock, nil
}

// Close stops every process of the lab (SIGTERM, then SIGKILL after the
// grace period), kills anything else still running in its namespaces,
// deletes its links and namespaces and removes its temporary directory
// (unless Options.KeepDir). It removes whatever exists after a partial
// failure, and returns the same result if called again.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.teardown() })
	return l.closeErr
}

func (l *Lab) teardown() error {
	l.rw.Lock()
	defer l.rw.Unlock()
	l.closed = true

	l.mu.Lock()
	procs := make([]*Process, 0, len(l.procs))
	for p := range l.procs {
		procs = append(procs, p)
	}
	nodes := append([]*Node(nil), l.order...)
	pairs := append([]*LinkPair(nil), l.pairs...)
	l.mu.Unlock()

	var errs []error
	// 1. Our processes, all at once so that the grace periods overlap.
	var (
		wg  sync.WaitGroup
		emu sync.Mutex
	)
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.terminate(l.opts.StopGrace); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	wg.Wait()

	// 2. Anything else inside our namespaces (daemons that left their
	// process group, programs started by hand with `ip netns exec`).
	ids := make([]nsID, 0, len(nodes))
	for _, n := range nodes {
		ids = append(ids, n.id)
	}
	if err := killInNamespaces(ids); err != nil {
		errs = append(errs, err)
	}

	// 3. Links, so that nothing depends on the asynchronous teardown of
	// a namespace; then handles, file descriptors and the namespaces.
	for _, p := range pairs {
		if err := p.A.node.deleteLink(p.A.name); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		if err := nodes[i].destroy(); err != nil {
			errs = append(errs, err)
		}
	}

	// 4. The spawner thread: its exit sends the parent-death signal to
	// any child that survived the above.
	l.sp.stop()

	if !l.opts.KeepDir {
		if err := os.RemoveAll(l.dir); err != nil {
			errs = append(errs, fmt.Errorf("netns: removing %s: %w", l.dir, err))
		}
	}
	if err := os.Remove(l.owner); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("netns: %w", err))
	}
	err := errors.Join(errs...)
	if err != nil {
		l.log.Warn("lab teardown incomplete", "err", err)
	} else {
		l.log.Debug("lab closed")
	}
	return err
}

// nextLogBase returns a unique base path for a process's log files.
func (l *Lab) nextLogBase(node, label string) string {
	l.mu.Lock()
	l.logSeq++
	seq := l.logSeq
	l.mu.Unlock()
	return filepath.Join(l.dir, fmt.Sprintf("%s-%s-%d", node, safeFileName(label), seq))
}

// safeFileName replaces characters that do not belong in a file name.
func safeFileName(s string) string {
	if s == "" {
		return "proc"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// inThread runs fn on a locked OS thread of its own and returns its error.
// fn may change the thread's network namespace: afterwards the thread is
// moved back to the namespace it started in, and if that fails the thread
// is discarded (its goroutine exits while locked), so no goroutine ever
// runs in a namespace it did not ask for. A panic in fn is re-raised in the
// caller.
func inThread(fn func() error) error {
	type result struct {
		err      error
		panicked bool
		pv       any
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("netns: current namespace: %w", err)}
			return
		}
		defer orig.Close()
		var res result
		func() {
			defer func() {
				if pv := recover(); pv != nil {
					res = result{panicked: true, pv: pv}
				}
			}()
			res.err = fn()
		}()
		if err := vnetns.Set(orig); err != nil {
			// Leave the thread locked: the runtime ends it with this
			// goroutine.
			ch <- res
			return
		}
		runtime.UnlockOSThread()
		ch <- res
	}()
	res := <-ch
	if res.panicked {
		panic(res.pv)
	}
	return res.err
}
