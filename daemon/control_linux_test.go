//go:build linux

package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/mapserver"
	"github.com/lispd/lispd/wire"
)

// startTunedDaemon is startDaemon with the control plane's sizes changed
// by tune before it starts.
func startTunedDaemon(t *testing.T, cfgText string, tune func(*controlTuning)) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "lispd.toml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	td := &testDaemon{path: path, socket: filepath.Join(dir, "lispd.sock"), logs: &syncBuffer{}, done: make(chan error, 1)}
	td.d, err = New(cfg, Options{Stderr: td.logs, APISocket: td.socket})
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(&td.d.control.tuning)
	}
	ctx, cancel := context.WithCancel(context.Background())
	td.cancel = cancel
	go func() { td.done <- td.d.Run(ctx) }()
	waitFor(t, "control socket bound", func() bool { return len(td.d.ControlAddrs()) > 0 })
	td.addr = td.d.ControlAddrs()[0]
	waitFor(t, "api socket", func() bool { _, err := os.Stat(td.socket); return err == nil })
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-td.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("daemon did not stop within 5 s")
		}
		if t.Failed() {
			t.Logf("daemon logs:\n%s", td.logs.String())
		}
	})
	return td
}

// TestRegistersTakeThePrioritySocket checks the kernel steering on a live
// daemon: Map-Registers arrive on the priority socket, Map-Requests on the
// request socket, and both are answered.
func TestRegistersTakeThePrioritySocket(t *testing.T) {
	td := startDaemon(t, fmt.Sprintf(msConfig, "3m", ""))
	etr, itr := newPeer(t), newPeer(t)
	etr.send(register(t, wire.AlgHMACSHA196, "key-a", 1, 0, "10.1.0.0/16", "192.0.2.1"), td.addr)
	if etr.recv(3*time.Second) == nil {
		t.Fatal("no Map-Notify")
	}
	if got := td.counter("control_received_priority"); got != 1 {
		t.Fatalf("received_priority = %d after one Map-Register, want 1", got)
	}
	const n = 20
	for i := range n {
		itr.send(mapRequest(t, itr.addr(), 0, "10.1.2.3", uint64(100+i)), td.addr)
		itr.reply(uint64(100 + i))
	}
	// The counters move when sendmmsg returns, after the replies arrived.
	waitFor(t, "replies counted", func() bool { return td.counter("control_sent") >= n+1 })
	c := td.d.counters()
	if c["control_received_priority"] != 1 || c["control_received"] != n+1 {
		t.Fatalf("received %d, of which priority %d; want %d and 1", c["control_received"], c["control_received_priority"], n+1)
	}
	if c["control_sent"] != n+1 || c["control_send_errors"] != 0 {
		t.Fatalf("sent %d (errors %d), want %d", c["control_sent"], c["control_send_errors"], n+1)
	}
}

// TestReaderBatches queues datagrams on a request socket before its reader
// runs: one read takes them all, and their replies leave in one sendmmsg.
func TestReaderBatches(t *testing.T) {
	c := newControlPlane(slog.New(slog.DiscardHandler))
	c.tuning.workers = 1
	ms, err := mapserver.New(mapserver.Config{MapResolver: true}, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.setMapServer(ms)
	g, err := c.openGroup(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	c.groups[g.addr] = g
	c.publishLocked()
	defer c.close()
	if len(g.socks) != 2 {
		t.Fatalf("%d sockets, want 2 (steering refused?)", len(g.socks))
	}
	itr := newPeer(t)
	if err := itr.conn.SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := range n {
		itr.send(mapRequest(t, itr.addr(), 0, "10.9.0.1", uint64(i+1)), g.bound)
	}
	// The datagrams are queued by now (loopback delivers them before
	// sendto returns); should the kernel defer some, a few reads take
	// them.
	r := newReader(c, g.socks[1], requestBatch)
	deadline := time.Now().Add(5 * time.Second)
	for c.received.Load() < n && time.Now().Before(deadline) {
		if !r.once() {
			t.Fatal("socket closed")
		}
	}
	if got := c.received.Load(); got != n {
		t.Fatalf("received %d datagrams, want %d", got, n)
	}
	if b := c.recvBatches.Load(); b > 3 {
		t.Fatalf("%d queued datagrams took %d reads, want at most 3", n, b)
	}
	if got, b := c.sent.Load(), c.sendBatches.Load(); got != n || b > 3 {
		t.Fatalf("sent %d replies in %d batches, want %d in at most 3", got, b, n)
	}
	seen := map[uint64]bool{}
	for range n {
		b := itr.recv(3 * time.Second)
		if b == nil {
			t.Fatalf("only %d replies", len(seen))
		}
		m, err := wire.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		rep, ok := m.(*wire.MapReply)
		if !ok || len(rep.Records) != 1 || rep.Records[0].Action != wire.NativelyForward {
			t.Fatalf("got %#v, want a negative Map-Reply", m)
		}
		seen[rep.Nonce] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct nonces answered, want %d", len(seen), n)
	}
}

// TestControlAddressInUse checks that an address another socket holds is
// refused, though the control sockets use SO_REUSEPORT.
func TestControlAddressInUse(t *testing.T) {
	hold, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	c := newControlPlane(slog.New(slog.DiscardHandler))
	err = c.set([]netip.AddrPort{hold.LocalAddr().(*net.UDPAddr).AddrPort()})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("binding a held address: %v, want an address-in-use error", err)
	}
	// A second control plane on the first one's address is refused too.
	first := newControlPlane(slog.New(slog.DiscardHandler))
	if err := first.set([]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}); err != nil {
		t.Fatal(err)
	}
	defer first.close()
	err = c.set(first.addrs())
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("binding a running control plane's address: %v, want an address-in-use error", err)
	}
}

// TestIPv6Control checks an IPv6 group next to an IPv4 one: steering,
// batched replies from the IPv6 request sockets.
func TestIPv6Control(t *testing.T) {
	probe, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
	cfg := strings.Replace(fmt.Sprintf(msConfig, "3m", ""), `listen = ["127.0.0.1:0"]`, `listen = ["127.0.0.1:0", "[::1]:0"]`, 1)
	td := startDaemon(t, cfg)
	var addr6 netip.AddrPort
	waitFor(t, "two control addresses", func() bool { return len(td.d.ControlAddrs()) == 2 })
	for _, a := range td.d.ControlAddrs() {
		if a.Addr().Is6() {
			addr6 = a
		}
	}
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	peer := &udpPeer{t: t, conn: c}
	t.Cleanup(func() { c.Close() })
	peer.send(register(t, wire.AlgHMACSHA256128, "key-b", 1, 0, "10.2.1.0/24", "2001:db8::1"), addr6)
	if peer.recv(3*time.Second) == nil {
		t.Fatal("no Map-Notify over IPv6")
	}
	for i := range 10 {
		// An IPv4 EID asked over IPv6: the inner header is IPv6.
		req := &wire.MapRequest{Nonce: uint64(50 + i), ITRRLOCs: []wire.Address{wire.AddrFrom(peer.addr().Addr())},
			Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix("10.2.1.7/32"))}}
		pkt, err := wire.NewECM(peer.addr(), addr6, req).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		peer.send(pkt, addr6)
		r := peer.reply(uint64(50 + i))
		if len(r.Records) != 1 || len(r.Records[0].Locators) != 1 {
			t.Fatalf("reply %+v", r)
		}
	}
	if got := td.counter("control_received_priority"); got != 1 {
		t.Errorf("received_priority = %d, want 1", got)
	}
}

// TestSendBatch: the control plane sends a batch (a publication to many
// subscribers) with sendmmsg, 64 datagrams per system call.
func TestSendBatch(t *testing.T) {
	c := newControlPlane(slog.New(slog.DiscardHandler))
	g, err := c.openGroup(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	c.groups[g.addr] = g
	c.publishLocked()
	defer c.close()
	peer := newPeer(t)
	if err := peer.conn.SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	const n = 150
	msgs := make([][]byte, n)
	to := make([]netip.AddrPort, n)
	for i := range n {
		msgs[i] = []byte{byte(i), byte(i >> 8)}
		to[i] = peer.addr()
	}
	if failed := c.SendBatch(msgs, to); failed != 0 {
		t.Fatalf("%d failed", failed)
	}
	if got, b := c.sent.Load(), c.sendBatches.Load(); got != n || b != 3 {
		t.Fatalf("sent %d in %d batches, want %d in 3", got, b, n)
	}
	for i := range n {
		b := peer.recv(3 * time.Second)
		if len(b) != 2 || int(b[0])|int(b[1])<<8 != i {
			t.Fatalf("datagram %d: %x", i, b)
		}
	}
	// A destination of a family with no socket fails, counted.
	if failed := c.SendBatch([][]byte{{1}}, []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::1]:4342")}); failed != 1 {
		t.Fatalf("IPv6 destination without an IPv6 socket: %d failed, want 1", failed)
	}
}
