package mapserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// connSender sends through a UDP socket, as the daemon does.
type connSender struct{ c *net.UDPConn }

func (c connSender) Send(b []byte, to netip.AddrPort) error {
	_, err := c.c.WriteToUDPAddrPort(b, to)
	return err
}

func listenUDP(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func localAddrPort(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// serveUDP runs a Server on a socket: a reader goroutine hands every
// datagram to HandlePacket, and Run drives the timers, until the test ends.
func serveUDP(t *testing.T, cfg Config, addr string) (*Server, netip.AddrPort) {
	t.Helper()
	c := listenUDP(t, addr)
	s, err := New(cfg, connSender{c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	local := localAddrPort(c).Addr()
	go func() {
		defer wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed
			}
			s.HandlePacket(buf[:n], from, local)
		}
	}()
	t.Cleanup(func() {
		cancel()
		c.Close()
		wg.Wait()
	})
	return s, localAddrPort(c)
}

// recvFrom waits for one datagram on c.
func recvFrom(t *testing.T, c *net.UDPConn) ([]byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 65535)
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("waiting for a datagram on %s: %v", c.LocalAddr(), err)
	}
	return buf[:n], from
}

func sendTo(t *testing.T, c *net.UDPConn, b []byte, to netip.AddrPort) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
}

// TestUDPEndToEnd drives a Map-Server/Map-Resolver over real loopback
// sockets: an ETR registers and gets authenticated Map-Notifies, an ITR's
// Map-Requests get a proxy reply at its port, are forwarded to the ETR's
// control port, or get negative replies, directly and through a second,
// resolver-only server.
func TestUDPEndToEnd(t *testing.T) {
	key := []byte("udp test key")
	sites := []Site{{
		Name: "lab", Key: key, Algorithm: wire.AlgHMACSHA256128, AllowProxyReply: true,
		Prefixes: []SitePrefix{{EIDPrefix: eid(0, "10.1.0.0/16"), AcceptMoreSpecifics: true}},
	}}
	_, msAddr := serveUDP(t, Config{MapServer: true, MapResolver: true, Sites: sites}, "127.77.0.1:0")

	// The ETR listens on the control port of its RLOC, where forwarded
	// requests arrive.
	etr := listenUDP(t, "127.77.0.2:4342")
	etrRLOC := wire.Locator{Priority: 1, Weight: 100, Reachable: true, Local: true,
		Address: wire.AddrFrom(netip.MustParseAddr("127.77.0.2"))}
	for i, r := range []struct {
		prefix string
		proxy  bool
	}{{"10.1.1.0/24", true}, {"10.1.2.0/24", false}} {
		nonce := uint64(0x5000 + i)
		sendTo(t, etr, buildRegister(t, regOpts{key: key, alg: wire.AlgHMACSHA256128, nonce: nonce,
			proxy: r.proxy, wantNotify: true, records: []wire.EIDRecord{rec(0, r.prefix, 1440, etrRLOC)}}), msAddr)
		b, from := recvFrom(t, etr)
		if from != msAddr {
			t.Fatalf("Map-Notify from %s", from)
		}
		n := parseAs[*wire.MapNotify](t, b)
		if n.Nonce != nonce {
			t.Fatalf("Map-Notify nonce %#x, want %#x", n.Nonce, nonce)
		}
		if err := wire.Verify(b, key); err != nil {
			t.Fatalf("Map-Notify: %v", err)
		}
	}

	itr := listenUDP(t, "127.77.0.3:0")
	itrAddr := localAddrPort(itr)
	ask := func(to netip.AddrPort, eid string, nonce uint64) {
		sendTo(t, itr, buildRequest(t, itrAddr, 0, eid, nonce, nil), to)
	}

	// Proxy reply, at the ITR's port.
	ask(msAddr, "10.1.1.9/32", 1)
	b, _ := recvFrom(t, itr)
	rep := parseAs[*wire.MapReply](t, b)
	if rep.Nonce != 1 || len(rep.Records) != 1 || len(rep.Records[0].Locators) != 1 ||
		rep.Records[0].Locators[0].Address.IP != netip.MustParseAddr("127.77.0.2") {
		t.Fatalf("proxy reply %+v", rep)
	}

	// No proxy: the ETR gets the request, encapsulated, on its control port.
	ask(msAddr, "10.1.2.9/32", 2)
	b, _ = recvFrom(t, etr)
	ecm := parseAs[*wire.ECM](t, b)
	if !ecm.ToETR || ecm.Source != itrAddr || ecm.Inner.(*wire.MapRequest).Nonce != 2 {
		t.Fatalf("forwarded request %+v", ecm)
	}

	// Negative replies: configured but not registered, and not configured.
	for _, c := range []struct {
		eid, prefix string
		ttl         uint32
	}{{"10.1.3.1/32", "10.1.3.0/24", 1}, {"10.9.0.1/32", "10.8.0.0/13", 15}} {
		ask(msAddr, c.eid, 3)
		b, _ = recvFrom(t, itr)
		r := parseAs[*wire.MapReply](t, b).Records[0]
		if _, p, _ := r.Prefix(); p != netip.MustParsePrefix(c.prefix) || r.RecordTTL != c.ttl || len(r.Locators) != 0 {
			t.Fatalf("negative reply for %s: %s ttl %d", c.eid, p, r.RecordTTL)
		}
	}

	// Through a resolver-only server that forwards to the first one.
	mr, mrAddr := serveUDP(t, Config{MapResolver: true,
		Resolver: ResolverConfig{MapServers: []RemoteMapServer{{Address: msAddr, Prefixes: []EIDPrefix{eid(0, "10.1.0.0/16")}}}}},
		"127.77.0.4:0")
	ask(mrAddr, "10.1.1.10/32", 4)
	b, _ = recvFrom(t, itr)
	if rep := parseAs[*wire.MapReply](t, b); rep.Nonce != 4 || len(rep.Records[0].Locators) != 1 {
		t.Fatalf("reply through the resolver %+v", rep)
	}
	ask(mrAddr, "192.168.7.7/32", 5)
	b, _ = recvFrom(t, itr)
	r := parseAs[*wire.MapReply](t, b).Records[0]
	if _, p, _ := r.Prefix(); p != netip.MustParsePrefix("128.0.0.0/1") || r.RecordTTL != 15 {
		t.Fatalf("resolver negative reply %s ttl %d", p, r.RecordTTL)
	}
	// The counters move after the datagram is sent: wait for them.
	eventually(t, "the resolver's counters", func() bool {
		st := mr.Stats()
		return st.MRForwardedRemote == 1 && st.MRNegative == 1
	})
}

// TestUDPSendError checks that a Sender error is counted, not fatal.
func TestUDPSendError(t *testing.T) {
	c := listenUDP(t, "127.77.0.5:0")
	s, err := New(Config{MapServer: true, Sites: testSites()}, connSender{c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	s.HandlePacket(buildRequest(t, itr, 0, "10.1.9.9/32", 1, nil), itr, netip.Addr{})
	if st := s.Stats(); st.SendErrors != 1 {
		t.Fatalf("stats %+v", st)
	}
	if !errors.Is(connSender{c}.Send([]byte{1}, itr), net.ErrClosed) {
		t.Fatal("closed socket sent")
	}
}
