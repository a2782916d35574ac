package cachesync

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// TestGossipWrongKey: a member with another gossip key can neither join
// nor read or inject mappings.
func TestGossipWrongKey(t *testing.T) {
	s := newSet(t, ModeGossip, 2, defaultOpts())
	a := s.nodes[0]
	ic := mapcache.New(mapcache.Config{})
	intr, err := New(Config{
		Mode: ModeGossip, Name: "intruder", Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Gossip: GossipConfig{
			Seeds: []netip.AddrPort{a.addr}, SecretKey: []byte("another key 16 b"),
			ProbeInterval: 100 * time.Millisecond, GossipInterval: 20 * time.Millisecond,
		},
		RoundInterval: s.o.round,
	}, ic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		intr.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	<-intr.Ready()
	ea := a.learn("10.1.0.0/16", time.Minute)
	if _, err := ic.Insert(testEntry(0, "10.66.0.0/16", time.Minute, intr.NextVersion(), "192.0.2.66")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b has a's mapping", func() bool { return s.nodes[1].has("10.1.0.0/16", ea.Version) })
	time.Sleep(10 * s.o.round)
	if st := intr.Stats(); st.Connected != 0 || ic.Len() != 1 {
		t.Errorf("intruder: %d members, %d mappings", st.Connected, ic.Len())
	}
	for _, nd := range s.nodes {
		if _, ok := nd.cache.Get(mapcache.Key{Prefix: netip.MustParsePrefix("10.66.0.0/16")}); ok {
			t.Errorf("%s took the intruder's mapping", nd.name)
		}
		for _, p := range nd.mem.Load().Peers() {
			if p.Name == "intruder" {
				t.Errorf("%s lists the intruder as a member", nd.name)
			}
		}
	}
}

// TestGossipOversizedRecord: a record too large for a UDP gossip message
// is sent directly to every member.
func TestGossipOversizedRecord(t *testing.T) {
	s := newSet(t, ModeGossip, 3, defaultOpts())
	a := s.nodes[0]
	e := &mapcache.Entry{Prefix: netip.MustParsePrefix("10.1.0.0/16"), TTL: time.Minute, Source: mapcache.FromMapReply,
		Version: a.mem.Load().NextVersion()}
	for i := range 100 { // 100 IPv6 locators: about 2.2 KB
		var b [16]byte
		b[0], b[1], b[15] = 0x20, 0x01, byte(i+1)
		e.RLOCs = append(e.RLOCs, mapcache.RLOC{Addr: netip.AddrFrom16(b), Priority: 1, Weight: 1})
	}
	if _, err := a.cache.Insert(e); err != nil {
		t.Fatal(err)
	}
	for _, nd := range s.nodes[1:] {
		waitFor(t, 5*time.Second, nd.name+" has the big record", func() bool { return nd.has("10.1.0.0/16", e.Version) })
	}
}

// logRecorder keeps the records of a logger.
type logRecorder struct {
	mu  sync.Mutex
	all []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, rec.Clone())
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// count returns how many records at level or above have a message
// containing every one of parts.
func (r *logRecorder) count(level slog.Level, parts ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
next:
	for _, rec := range r.all {
		if rec.Level < level {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(rec.Message, p) {
				continue next
			}
		}
		n++
	}
	return n
}

// TestGossipWrongKeyExplained: a member with another gossip key is told
// why it cannot join, the members it tries say why they refuse it, both
// count it, and the logs say it once, not once per attempt.
func TestGossipWrongKeyExplained(t *testing.T) {
	var logs logRecorder
	o := defaultOpts()
	o.tweak = func(c *Config) { c.Logger = slog.New(&logs) }
	s := newSet(t, ModeGossip, 1, o)
	a := s.nodes[0]
	var ilogs logRecorder
	intr, err := New(Config{
		Mode: ModeGossip, Name: "intruder", Listen: netip.MustParseAddrPort("127.0.0.1:0"),
		Gossip: GossipConfig{
			Seeds: []netip.AddrPort{a.addr}, SecretKey: []byte("another key 16 b"),
			ProbeInterval: 100 * time.Millisecond, GossipInterval: 20 * time.Millisecond,
		},
		RoundInterval: s.o.round,
		Logger:        slog.New(&ilogs),
	}, mapcache.New(mapcache.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	defer runMember(t, intr)()
	// The intruder retries its seeds every second.
	waitFor(t, 10*time.Second, "three refused attempts", func() bool {
		return a.stats().GossipKeyFailures >= 3 && intr.Stats().GossipKeyFailures >= 3
	})
	if n := logs.count(slog.LevelWarn, "another gossip key"); n != 1 {
		t.Errorf("the seed warned %d times about the other key, want once", n)
	}
	if n := ilogs.count(slog.LevelWarn, "cannot join the seeds", "another gossip key"); n != 1 {
		t.Errorf("the intruder warned %d times that its key is not the seeds', want once", n)
	}
	if n := logs.count(slog.LevelError) + ilogs.count(slog.LevelError); n != 0 {
		t.Errorf("%d error lines for refused gossip", n)
	}
	if st := intr.Stats(); st.Connected != 0 {
		t.Errorf("the intruder has %d members", st.Connected)
	}
}

// TestGossipGarbage: garbage sent to a gossip member's port (UDP packets,
// TCP streams) is counted and logged once, and the member still works.
func TestGossipGarbage(t *testing.T) {
	var logs logRecorder
	o := defaultOpts()
	o.tweak = func(c *Config) { c.Logger = slog.New(&logs) }
	s := newSet(t, ModeGossip, 2, o)
	a := s.nodes[0]
	uc, err := net.Dial("udp", a.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	const packets = 100
	for i := range packets {
		msg := []byte(fmt.Sprintf("garbage %d garbage garbage garbage", i))
		if i%2 == 1 {
			msg = []byte{0xfe, byte(i)} // short, unknown version
		}
		if _, err := uc.Write(msg); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			time.Sleep(time.Millisecond) // stay within the socket buffer
		}
	}
	const streams = 3
	for range streams {
		c, err := net.Dial("tcp", a.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c) // until memberlist closes it
		c.Close()
	}
	waitFor(t, 5*time.Second, "the garbage counted", func() bool {
		return a.stats().GossipMalformed >= packets+streams
	})
	if st := a.stats(); st.GossipKeyFailures != 0 {
		t.Errorf("garbage counted as %d key failures", st.GossipKeyFailures)
	}
	if n := logs.count(slog.LevelWarn, "malformed packet or stream"); n != 1 {
		t.Errorf("%d warnings for the garbage, want one", n)
	}
	if n := logs.count(slog.LevelError); n != 0 {
		t.Errorf("%d error lines for garbage", n)
	}
	e := a.learn("10.1.0.0/16", time.Minute)
	waitFor(t, 5*time.Second, "the set still works", func() bool { return s.nodes[1].has("10.1.0.0/16", e.Version) })
}

func TestClassifyMemberlistLine(t *testing.T) {
	for line, want := range map[string]string{
		"memberlist: failed to receive: no installed keys could decrypt the message from=127.0.0.1:39274":            gossipRefusedKey,
		"memberlist: failed to join 127.0.0.1:42697: no installed keys could decrypt the message":                    gossipRefusedKey,
		"memberlist: Decrypt packet failed: unsupported encryption version 103 from=127.0.0.1:53143":                 gossipRefusedMalformed,
		"memberlist: failed to receive: encryption is configured but remote state is not encrypted from=127.0.0.1:1": gossipRefusedMalformed,
		"memberlist: UDP packet too short (0 bytes) from=127.0.0.1:1":                                                gossipRefusedMalformed,
		"memberlist: Stream connection from=127.0.0.1:39274":                                                         "",
		"memberlist: Suspect itr-1 has failed, no acks received":                                                     "",
	} {
		if got := classifyMemberlistLine(line); got != want {
			t.Errorf("%q: %q, want %q", line, got, want)
		}
	}
	if got := lineFrom("memberlist: x from=127.0.0.1:5 y"); got != "127.0.0.1:5" {
		t.Errorf("lineFrom: %q", got)
	}
}
