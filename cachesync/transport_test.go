package cachesync

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// keyBelow returns a key whose public half sorts before (below) or after
// other, so that a test can choose who dials.
func keyOrdered(t *testing.T, other ed25519.PublicKey, below bool) ed25519.PrivateKey {
	for {
		k := mustKey(t)
		if (bytes.Compare(PublicKeyOf(k), other) < 0) == below {
			return k
		}
	}
}

// TestWrongKeyRefused: a peer that proves another key than the one pinned
// is refused and counted, in both directions, and exchanges nothing.
func TestWrongKeyRefused(t *testing.T) {
	for _, mode := range tlsModes {
		t.Run(mode.String(), func(t *testing.T) {
			o := defaultOpts()
			// The set: a and b. a also pins a key for "ghost" at the
			// intruder's address; the intruder runs with another key.
			// The ghost key sorts last, so a dials the ghost address.
			ghostPub := ed25519.PublicKey(bytes.Repeat([]byte{0xff}, 32))
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			intruderAddr := ln.Addr().(*net.TCPAddr).AddrPort()
			ts := newSetExtra(t, mode, 2, o, []Peer{{Name: "ghost", Address: intruderAddr, PublicKey: ghostPub}})
			a, b := ts.nodes[0], ts.nodes[1]

			// The intruder pins a's real key and its key sorts before
			// a's, so it dials a too: both directions are tried.
			ik := keyOrdered(t, PublicKeyOf(a.key), true)
			ic := mapcache.New(mapcache.Config{})
			intr, err := New(Config{
				Mode: mode, Name: "intruder", Listener: ln, PrivateKey: ik,
				Peers:        []Peer{{Name: "a", Address: a.addr, PublicKey: PublicKeyOf(a.key)}},
				ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond,
				RoundInterval: o.round,
			}, ic)
			if err != nil {
				t.Fatal(err)
			}
			stop := runMember(t, intr)
			defer stop()

			waitFor(t, 5*time.Second, "refusals in both directions", func() bool {
				var ghost PeerStatus
				for _, p := range a.mem.Load().Peers() {
					if p.Name == "ghost" {
						ghost = p
					}
				}
				ip := intr.Peers()[0]
				return a.stats().AuthFailures >= 2 && ghost.State == PeerRefused && ghost.AuthFailures > 0 &&
					ip.State == PeerRefused && intr.Stats().AuthFailures > 0
			})
			ea := a.learn("10.1.0.0/16", time.Minute)
			if _, err := ic.Insert(testEntry(0, "10.66.0.0/16", time.Minute, intr.NextVersion(), "192.0.2.66")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "b has a's mapping", func() bool { return b.has("10.1.0.0/16", ea.Version) })
			time.Sleep(5 * o.round)
			if ic.Len() != 1 {
				t.Errorf("the intruder received %d mappings", ic.Len()-1)
			}
			if _, ok := a.cache.Get(mapcache.Key{Prefix: netip.MustParsePrefix("10.66.0.0/16")}); ok {
				t.Error("a took the intruder's mapping")
			}
			if n := a.stats().RecordsReceived; n != 0 {
				t.Errorf("a received %d records", n)
			}
		})
	}
}

// runMember runs m until the returned stop is called.
func runMember(t *testing.T, m *Member) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	return func() { cancel(); <-done }
}

// fakePeer is a test client that authenticates as a configured peer and
// then speaks raw frames.
type fakePeer struct {
	conn *tls.Conn
	br   *bufio.Reader
}

func dialFake(t *testing.T, addr netip.AddrPort, k ed25519.PrivateKey, mode Mode) *fakePeer {
	t.Helper()
	cert, err := selfSignedCert(k, "fake")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", addr.String(), &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		InsecureSkipVerify: true, NextProtos: []string{alpnProtocol},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePeer{conn: conn, br: bufio.NewReader(conn)}
	f.send(t, appendHello(nil, hello{mode: mode, origin: 4000, round: defaultOpts().round, window: defaultOpts().window, name: "fake"}))
	for {
		fr := f.read(t)
		if fr.typ == frameHello {
			return f
		}
	}
}

func (f *fakePeer) send(t *testing.T, b []byte) {
	t.Helper()
	if _, err := f.conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

func (f *fakePeer) read(t *testing.T) frame {
	t.Helper()
	f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := readFrame(f.br, DefaultMaxFrameSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := parseFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	return fr
}

// closed waits until the member closes the connection.
func (f *fakePeer) closed(t *testing.T) {
	t.Helper()
	f.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := readFrame(f.br, DefaultMaxFrameSize, nil); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the member kept the connection open")
			}
			f.conn.Close()
			return
		}
	}
}

// TestMalformedFrames: a malformed or oversized frame from an
// authenticated peer closes that connection, applies nothing, and is
// counted; the peer may then connect again and be heard.
func TestMalformedFrames(t *testing.T) {
	c := mapcache.New(mapcache.Config{})
	mk := mustKey(t)
	fk := keyOrdered(t, PublicKeyOf(mk), true) // the fake dials
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	m, err := New(Config{
		Mode: ModeSmart, Name: "m", Listener: ln, PrivateKey: mk,
		Peers:         []Peer{{Name: "fake", Address: netip.MustParseAddrPort("127.0.0.1:9"), PublicKey: PublicKeyOf(fk)}},
		RoundInterval: defaultOpts().round, MaxFrameSize: MinMaxFrameSize,
	}, c)
	if err != nil {
		t.Fatal(err)
	}
	defer runMember(t, m)()

	now := time.Now()
	e1 := testEntry(0, "10.1.0.0/16", time.Minute, 1, "192.0.2.1")
	e2 := testEntry(0, "10.2.0.0/16", time.Minute, 2, "192.0.2.1")
	src := mapcache.New(mapcache.Config{Clock: func() time.Time { return now }})
	src.InsertBatch([]*mapcache.Entry{e1, e2})
	frames, _ := recordsFrames([]*mapcache.Entry{e1, e2}, now, false, MinMaxFrameSize)
	good := frames[0]
	bad := bytes.Clone(good)
	bad[len(bad)-41+6] = 99 // second record: action 99

	huge := make([]byte, 6)
	binary.BigEndian.PutUint32(huge, MinMaxFrameSize) // one byte over the limit
	huge[4], huge[5] = frameVersion, byte(framePing)

	for i, b := range [][]byte{
		bad,
		huge,
		fixLen([]byte{0, 0, 0, 0, 1, byte(frameRecords), 0, 0, 0, 0, 9}),             // count larger than the body
		fixLen([]byte{0, 0, 0, 0, 7, byte(framePing)}),                               // unknown version
		appendHello(nil, hello{mode: ModeSmart, origin: 1, name: "again", round: 1}), // second HELLO
	} {
		f := dialFake(t, addr, fk, ModeSmart)
		f.send(t, b)
		f.closed(t)
		if got := m.Stats().MalformedFrames; got != uint64(i+1) {
			t.Fatalf("case %d: %d malformed frames counted", i, got)
		}
		if c.Len() != 0 {
			t.Fatalf("case %d: %d records applied from a malformed frame", i, c.Len())
		}
	}
	// The peer is still welcome with good frames.
	f := dialFake(t, addr, fk, ModeSmart)
	f.send(t, good)
	waitFor(t, 5*time.Second, "good records applied", func() bool { return c.Len() == 2 })
	f.conn.Close()
}

// TestModeMismatch: a peer running another mode is refused with a reason.
func TestModeMismatch(t *testing.T) {
	c := mapcache.New(mapcache.Config{})
	mk := mustKey(t)
	fk := keyOrdered(t, PublicKeyOf(mk), true)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	m, err := New(Config{Mode: ModeSmart, Name: "m", Listener: ln, PrivateKey: mk,
		Peers: []Peer{{Name: "fake", Address: netip.MustParseAddrPort("127.0.0.1:9"), PublicKey: PublicKeyOf(fk)}}}, c)
	if err != nil {
		t.Fatal(err)
	}
	defer runMember(t, m)()
	cert, _ := selfSignedCert(fk, "fake")
	conn, err := tls.Dial("tcp", addr.String(), &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write(appendHello(nil, hello{mode: ModeNaive, origin: 9, name: "fake"}))
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var reason string
	for reason == "" {
		b, err := readFrame(br, DefaultMaxFrameSize, nil)
		if err != nil {
			t.Fatalf("no BYE: %v", err)
		}
		if f, _ := parseFrame(b); f.typ == frameBye {
			reason = f.reason
		}
	}
	if !bytes.Contains([]byte(reason), []byte("naive")) {
		t.Fatalf("reason %q", reason)
	}
	waitFor(t, 5*time.Second, "peer refused", func() bool { return m.Peers()[0].State == PeerRefused })
}
