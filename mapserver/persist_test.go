package mapserver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// syncBuffer is a log destination tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newStateServer is newTestServer with a state file and a log.
func newStateServer(t *testing.T, path string, clk *fakeClock) (*Server, *capSender, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	out := &capSender{}
	s, err := New(Config{MapServer: true, MapResolver: true, Sites: testSites(), Clock: clk, StateFile: path},
		out, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s, out, logs
}

// TestStateSurvivesRestart: registrations written by one Map-Server are
// answered by the next one started from the file at once, with their
// remaining lifetime; expired ones are left out; superseded registers are
// still refused.
func TestStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registrations.db")
	clk := newFakeClock()
	s1, out1, _ := newStateServer(t, path, clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s1.Run(ctx) }()

	old := oorRegister(t, 0x1001, "192.0.2.1", nil)
	s1.HandlePacket(old, ap("10.99.0.12:4342"), netip.Addr{})
	s1.HandlePacket(oorRegister(t, 0x1002, "192.0.2.2", nil), ap("10.99.0.12:4342"), netip.Addr{})
	// Site b registers for one minute only (T bit, Record TTL 1).
	s1.HandlePacket(buildRegister(t, regOpts{key: keyB, keyID: 3, alg: wire.AlgHMACSHA256128, nonce: 5, useTTL: true, proxy: true,
		records: []wire.EIDRecord{rec(0, "10.2.0.0/16", 1, loc("198.51.100.1"))}}), ap("198.51.100.1:4342"), netip.Addr{})
	eventually(t, "the state file written", func() bool { return s1.Stats().StateWrites > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A refresh 90 s later, written when the Map-Server stops.
	clk.Advance(90 * time.Second)
	s1.HandlePacket(oorRegister(t, 0x1003, "192.0.2.2", nil), ap("10.99.0.12:4342"), netip.Addr{})
	writes := s1.Stats().StateWrites
	s1.flushState()
	if st := s1.Stats(); st.StateWrites != writes+1 {
		t.Fatalf("the refresh was not written")
	}
	if got := answerRLOCs(t, s1, out1, "10.1.1.1"); !slices.Equal(got, []string{"192.0.2.2"}) {
		t.Fatalf("before the restart: %v", got)
	}
	if m, err := filepath.Glob(path + ".tmp*"); err != nil || len(m) != 0 {
		t.Fatalf("temporary files left: %v %v", m, err)
	}

	// The next Map-Server, 30 s later: site a's registration has 2.5
	// minutes left (refreshed at 90 s), site b's ran out.
	clk.Advance(30 * time.Second)
	s2, out2, logs := newStateServer(t, path, clk)
	if got := answerRLOCs(t, s2, out2, "10.1.1.1"); !slices.Equal(got, []string{"192.0.2.2"}) {
		t.Fatalf("after the restart: %v", got)
	}
	regs := s2.Registrations()
	if len(regs) != 1 || !regs[0].Expires.Equal(clk.Now().Add(150*time.Second)) || regs[0].RegisteredBy != ap("10.99.0.12:4342") {
		t.Fatalf("restored %+v", regs)
	}
	if st := s2.Stats(); st.StateRestored != 1 {
		t.Fatalf("restored %d", st.StateRestored)
	}
	if !strings.Contains(logs.String(), "restored=1 expired=1") {
		t.Errorf("log: %s", logs)
	}
	s2.HandlePacket(old, ap("10.99.0.12:4342"), netip.Addr{})
	if st := s2.Stats(); st.RegisterReplays != 1 {
		t.Fatalf("a superseded register after the restart: replays %d", st.RegisterReplays)
	}
	// It expires when the rest of its lifetime is up.
	clk.Advance(150 * time.Second)
	s2.runTimers(clk.Now())
	if n := len(s2.Registrations()); n != 0 {
		t.Fatalf("%d registrations after their lifetime", n)
	}
}

// TestStateBadFile: a missing, corrupt or truncated state file is logged
// and the Map-Server starts empty.
func TestStateBadFile(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	// A good file to spoil.
	good := filepath.Join(dir, "good.db")
	s, _, _ := newStateServer(t, good, clk)
	registerFixture(t, s, &capSender{})
	s.flushState()
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(b)
	flipped[len(flipped)/2] ^= 1
	for name, tc := range map[string]struct {
		data []byte
		log  string
	}{
		"missing":   {nil, "no registration state file yet"},
		"empty":     {[]byte{}, "corrupt or truncated"},
		"truncated": {b[:len(b)-9], "corrupt or truncated"},
		"flipped":   {flipped, "checksum mismatch"},
		"other":     {[]byte("[map-server]\nsite = 1\n"), "corrupt or truncated"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".db")
			if tc.data != nil {
				if err := os.WriteFile(path, tc.data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, _, logs := newStateServer(t, path, clk)
			if n := len(s.Registrations()); n != 0 {
				t.Fatalf("%d registrations", n)
			}
			if !strings.Contains(logs.String(), tc.log) {
				t.Fatalf("log %q, want %q", logs, tc.log)
			}
		})
	}
	s2, _, _ := newStateServer(t, good, clk)
	if n := len(s2.Registrations()); n != 2 {
		t.Fatalf("the good file restored %d registrations", n)
	}
}

// TestStateWriteFailure: a state file that cannot be written is counted and
// logged once, and written again when it can be.
func TestStateWriteFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	clk := newFakeClock()
	s, out, logs := newStateServer(t, filepath.Join(dir, "r.db"), clk)
	registerFixture(t, s, out)
	if next := s.persistDue(clk.Now()); next.IsZero() {
		t.Fatal("no retry after a failed write")
	}
	clk.Advance(stateRefreshInterval)
	s.persistDue(clk.Now())
	if st := s.Stats(); st.StateWriteErrors != 2 || st.StateWrites != 0 {
		t.Fatalf("writes %d, errors %d", st.StateWrites, st.StateWriteErrors)
	}
	if n := strings.Count(logs.String(), "cannot write the registration state file"); n != 1 {
		t.Fatalf("%d error lines", n)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	clk.Advance(stateRefreshInterval)
	s.persistDue(clk.Now())
	if st := s.Stats(); st.StateWrites != 1 || !strings.Contains(logs.String(), "written again") {
		t.Fatalf("writes %d; log %s", st.StateWrites, logs)
	}
}

// TestStateWritePace: after a change the file is written at most every
// stateMinInterval; mere refreshes wait stateRefreshInterval.
func TestStateWritePace(t *testing.T) {
	clk := newFakeClock()
	s, out, _ := newStateServer(t, filepath.Join(t.TempDir(), "r.db"), clk)
	registerFixture(t, s, out)
	s.persistDue(clk.Now())
	s.HandlePacket(siteARegister(t, 2, true, false, loc("192.0.2.9")), ap("192.0.2.1:4342"), netip.Addr{})
	if next := s.persistDue(clk.Now()); !next.Equal(clk.Now().Add(stateMinInterval)) {
		t.Fatalf("after a change the next write is at %v", next.Sub(clk.Now()))
	}
	clk.Advance(stateMinInterval)
	s.persistDue(clk.Now())
	s.HandlePacket(siteARegister(t, 3, true, false, loc("192.0.2.9")), ap("192.0.2.1:4342"), netip.Addr{})
	if next := s.persistDue(clk.Now()); !next.Equal(clk.Now().Add(stateRefreshInterval)) {
		t.Fatalf("after a refresh the next write is at %v", next.Sub(clk.Now()))
	}
	if st := s.Stats(); st.StateWrites != 2 {
		t.Fatalf("writes %d", st.StateWrites)
	}
}

// FuzzDecodeState: no state file makes the loader panic, and whatever it
// accepts can be installed and written again.
func FuzzDecodeState(f *testing.F) {
	clk := newFakeClock()
	s, err := New(Config{MapServer: true, Sites: testSites(), Clock: clk}, &capSender{}, nil)
	if err != nil {
		f.Fatal(err)
	}
	registerFixture(f, s, &capSender{})
	s.HandlePacket(buildRegister(f, regOpts{key: keyB, keyID: 3, alg: wire.AlgHMACSHA256128, nonce: uint64(clk.Now().UnixNano()),
		xtrID: &wire.XTRID{9}, records: []wire.EIDRecord{rec(7, "2001:db8:2:1::/64", 60, loc("2001:db8::1"))}}),
		ap("[2001:db8::1]:4342"), netip.Addr{})
	s.HandlePacket(siteARegister(f, 7, true, false, loc("192.0.2.7")), ap("192.0.2.1:4342"), netip.Addr{})
	s.regMu.Lock()
	good := s.encodeStateLocked(clk.Now())
	s.regMu.Unlock()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(stateMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		snap, err := decodeState(b)
		if err != nil {
			if !errors.Is(err, errState) {
				t.Fatalf("error %v does not match errState", err)
			}
			return
		}
		s, err := New(Config{MapServer: true, Sites: testSites(), Clock: clk}, &capSender{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.regMu.Lock()
		s.installLocked(snap, clk.Now())
		again := s.encodeStateLocked(clk.Now())
		s.regMu.Unlock()
		if _, err := decodeState(again); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
	})
}
