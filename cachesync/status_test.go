package cachesync

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func sampleStatus() MemberStatus {
	return MemberStatus{
		Down: true, Reason: "EID-side interface eth1 is down",
		RLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")},
		ITRs: []RemoteITR{
			{RLOC: netip.MustParseAddr("198.51.100.7"), InstanceID: 42, EID: netip.MustParseAddr("10.2.2.1"), Age: 1500 * time.Millisecond},
			{RLOC: netip.MustParseAddr("2001:db8::7"), Age: 3 * time.Second},
		},
	}
}

// TestStatusFrameRoundTrip: a STATUS frame decodes to what was encoded,
// and every truncation of it is refused with ErrMalformed, never a panic
// or half a status.
func TestStatusFrameRoundTrip(t *testing.T) {
	st := sampleStatus()
	b := appendStatus(nil, st)
	f, err := parseFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.typ != frameStatus || !reflect.DeepEqual(f.status, st) {
		t.Fatalf("got %v %+v, want %+v", f.typ, f.status, st)
	}
	for n := frameHeaderLen; n < len(b); n++ {
		c := bytes.Clone(b[:n])
		finishFrame(c, 0)
		if _, err := parseFrame(c); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d bytes: err %v", n, err)
		}
	}
	// A bad address length is refused.
	bad := bytes.Clone(b)
	bad[frameHeaderLen+2+len(st.Reason)+1] = 5
	if _, err := parseFrame(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad address length: %v", err)
	}
}

// waitEvent waits for an event of nd about peer matching cond.
func waitEvent(t *testing.T, nd *node, timeout time.Duration, what string, cond func(PeerEvent) bool) PeerEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-nd.events:
			if cond(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("%s: no such event within %v", what, timeout)
		}
	}
}

// TestPeerStatusAndDeath: a member's status reaches its peers at once, and
// when it dies they are told within DeadAfter, with the status it last
// sent (its RLOCs, the remote ITRs it served), in every mode.
func TestPeerStatusAndDeath(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			s := newSet(t, mode, 2, defaultOpts())
			a, b := s.nodes[0], s.nodes[1]
			st := sampleStatus()
			st.Down = false
			a.mem.Load().SetStatus(st)
			ev := waitEvent(t, b, 5*time.Second, "status", func(ev PeerEvent) bool { return ev.Peer == a.name && ev.Alive })
			if !reflect.DeepEqual(ev.Status, st) || !ev.Known {
				t.Fatalf("event %+v", ev)
			}
			got, known, alive := b.mem.Load().PeerStatus(a.name)
			if !known || !alive || !reflect.DeepEqual(got, st) {
				t.Fatalf("PeerStatus: %+v %v %v", got, known, alive)
			}
			start := time.Now()
			a.stop()
			ev = waitEvent(t, b, 5*time.Second, "death", func(ev PeerEvent) bool { return ev.Peer == a.name && !ev.Alive })
			took := time.Since(start)
			if !ev.Known || !reflect.DeepEqual(ev.Status.RLOCs, st.RLOCs) {
				t.Fatalf("death event %+v", ev)
			}
			// A stopped member closes its sockets: naive and smart see
			// it at once; gossip's detector takes a few probe intervals.
			limit := 1500 * time.Millisecond
			if took > limit {
				t.Errorf("death noticed after %v, want under %v", took, limit)
			}
			t.Logf("%v: death noticed after %v", mode, took)
			if n := b.stats().PeersDead; n == 0 {
				t.Errorf("PeersDead = 0")
			}
		})
	}
}

// blackhole is a TCP proxy that forwards until cut, then swallows
// everything while keeping the connections open: a peer that went silent
// (a hung process, a dead link) rather than one that closed its socket.
type blackhole struct {
	ln    net.Listener
	to    string
	cut   atomic.Bool
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newBlackhole(t *testing.T, to netip.AddrPort) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &blackhole{ln: ln, to: to.String()}
	h.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", h.to)
			if err != nil {
				c.Close()
				continue
			}
			h.mu.Lock()
			h.conns = append(h.conns, c, d)
			h.mu.Unlock()
			h.wg.Go(func() { h.pipe(d, c) })
			h.wg.Go(func() { h.pipe(c, d) })
		}
	})
	t.Cleanup(h.close)
	return h
}

func (h *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !h.cut.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}

func (h *blackhole) addr() netip.AddrPort { return h.ln.Addr().(*net.TCPAddr).AddrPort() }

func (h *blackhole) close() {
	h.ln.Close()
	h.mu.Lock()
	for _, c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// TestSilentPeerDeclaredDead: a peer that goes silent without closing its
// connection is declared dead after DeadAfter (1 s by default) thanks to
// the heartbeats, and CheckPeers declares it dead sooner.
func TestSilentPeerDeclaredDead(t *testing.T) {
	for _, explicit := range []bool{false, true} {
		name := "heartbeat"
		if explicit {
			name = "check"
		}
		t.Run(name, func(t *testing.T) {
			s := &set{t: t, mode: ModeSmart, o: defaultOpts(), gkey: []byte("0123456789abcdef")}
			var nodes []*node
			for i := range 2 {
				nd := &node{s: s, i: i, name: []string{"itr-a", "itr-b"}[i], events: make(chan PeerEvent, 256)}
				k, err := GenerateKey()
				if err != nil {
					t.Fatal(err)
				}
				nd.key = k
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				nd.listener, nd.addr = ln, ln.Addr().(*net.TCPAddr).AddrPort()
				nd.newCache()
				nodes = append(nodes, nd)
			}
			s.nodes = nodes
			t.Cleanup(s.close)
			// Whoever dials goes through the proxy.
			a, b := nodes[0], nodes[1]
			ha, hb := newBlackhole(t, a.addr), newBlackhole(t, b.addr)
			a.peerAddr = map[string]netip.AddrPort{b.name: hb.addr()}
			b.peerAddr = map[string]netip.AddrPort{a.name: ha.addr()}
			a.start()
			b.start()
			s.waitConnected()
			a.mem.Load().SetStatus(MemberStatus{RLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}})
			waitEvent(t, b, 5*time.Second, "status", func(ev PeerEvent) bool { return ev.Alive })
			time.Sleep(300 * time.Millisecond)
			start := time.Now()
			ha.cut.Store(true)
			hb.cut.Store(true)
			if explicit {
				time.Sleep(2 * DefaultHeartbeatInterval)
				if dead := b.mem.Load().CheckPeers(0); len(dead) != 1 || dead[0] != a.name {
					t.Fatalf("CheckPeers = %v", dead)
				}
			}
			ev := waitEvent(t, b, 3*time.Second, "death", func(ev PeerEvent) bool { return !ev.Alive })
			took := time.Since(start)
			if !ev.Known || ev.Status.RLOCs[0] != netip.MustParseAddr("192.0.2.1") {
				t.Fatalf("death event %+v", ev)
			}
			limit := DefaultDeadAfter + 300*time.Millisecond
			if explicit {
				limit = 2*DefaultHeartbeatInterval + 200*time.Millisecond
			}
			if took > limit {
				t.Errorf("silent peer declared dead after %v, want under %v", took, limit)
			}
			t.Logf("silent peer declared dead after %v", took)
		})
	}
}

// TestGossipCheckPeers: in gossip mode the explicit check probes each live
// member's port: a member whose process is gone (the port refuses) is
// declared dead at once, a live one is not; a message from a member
// declared dead brings it back.
func TestGossipCheckPeers(t *testing.T) {
	s := newSet(t, ModeGossip, 2, defaultOpts())
	a, b := s.nodes[0], s.nodes[1]
	m := a.mem.Load()
	// A member whose process died without leaving: its port refuses.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	ghost := &peer{name: "ghost", rank: "ghost", addr: dead, alive: true, state: PeerConnected, since: time.Now(),
		st: MemberStatus{RLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.9")}}, stKnown: true}
	m.gmu.Lock()
	m.gpeers["ghost"] = ghost
	m.gmu.Unlock()
	start := time.Now()
	got := m.CheckPeers(0)
	if len(got) != 1 || got[0] != "ghost" {
		t.Fatalf("CheckPeers = %v, want [ghost] (and not %s, which is alive)", got, b.name)
	}
	ev := waitEvent(t, a, time.Second, "ghost's death", func(ev PeerEvent) bool { return ev.Peer == "ghost" && !ev.Alive })
	if !ev.Known || ev.Status.RLOCs[0] != netip.MustParseAddr("192.0.2.9") {
		t.Errorf("event %+v", ev)
	}
	t.Logf("declared dead after %v", time.Since(start))
	if again := m.CheckPeers(0); len(again) != 0 {
		t.Errorf("second check declared %v dead again", again)
	}
	// b, declared dead by mistake, is heard from again.
	pb := m.g.Load().peer(b.name)
	pb.mu.Lock()
	pb.alive, pb.state, pb.st, pb.stKnown = false, PeerDead, MemberStatus{RLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}}, true
	pb.mu.Unlock()
	b.mem.Load().SetStatus(MemberStatus{RLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}})
	waitEvent(t, a, 5*time.Second, "b alive again", func(ev PeerEvent) bool { return ev.Peer == b.name && ev.Alive })
	if !pb.connected() {
		t.Error("b not connected again")
	}
}
