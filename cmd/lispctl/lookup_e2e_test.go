package main

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/mapserver"
	"github.com/lispd/lispd/wire"
)

// e2eSender sends the Map-Server's datagrams through its UDP socket, as the
// daemon does.
type e2eSender struct{ c *net.UDPConn }

func (s e2eSender) Send(b []byte, to netip.AddrPort) error {
	_, err := s.c.WriteToUDPAddrPort(b, to)
	return err
}

// listenE2E opens a UDP socket on addr, skipping the test when the host
// does not allow it.
func listenE2E(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	return c
}

// serveMapServer runs a mapserver.Server (Map-Server and Map-Resolver) on a
// UDP socket at 127.0.0.1:0 until the test ends and returns its address.
func serveMapServer(t *testing.T, cfg mapserver.Config) netip.AddrPort {
	t.Helper()
	c := listenE2E(t, "127.0.0.1:0")
	s, err := mapserver.New(cfg, e2eSender{c}, nil)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := s.Run(ctx); err != nil {
			t.Errorf("mapserver Run: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed
			}
			s.HandlePacket(buf[:n], from, local.Addr())
		}
	}()
	t.Cleanup(func() {
		cancel()
		c.Close()
		wg.Wait()
	})
	return local
}

// registerETR sends a signed Map-Register for prefix with the ETR's RLOC
// from the ETR's socket and waits for the Map-Notify that acknowledges it.
func registerETR(t *testing.T, etr *net.UDPConn, ms netip.AddrPort, key []byte, prefix string, proxy bool, nonce uint64) {
	t.Helper()
	rloc := etr.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
	reg := &wire.MapRegister{
		ProxyReply: proxy, WantMapNotify: true, Nonce: nonce,
		KeyID: 0, AlgorithmID: wire.AlgHMACSHA256128,
		Records: []wire.EIDRecord{mapping(0, prefix, 1440,
			wire.Locator{Priority: 1, Weight: 100, MPriority: 255, Local: true, Reachable: true, Address: wire.AddrFrom(rloc)})},
	}
	b, err := reg.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Sign(b, key); err != nil {
		t.Fatal(err)
	}
	if _, err := etr.WriteToUDPAddrPort(b, ms); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	if err := etr.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for {
		n, _, err := etr.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no Map-Notify for the registration of %s: %v", prefix, err)
		}
		if m, err := wire.Parse(buf[:n]); err == nil && m.Type() == wire.TypeMapNotify && m.(*wire.MapNotify).Nonce == nonce {
			if err := wire.Verify(buf[:n], key); err != nil {
				t.Fatalf("Map-Notify: %v", err)
			}
			return
		}
	}
}

// TestLookupThroughMapServer runs "lispctl lookup" against lispd's own
// Map-Server/Map-Resolver: a proxy reply from the Map-Server, a request the
// Map-Server forwards to an ETR which answers lispctl directly, and the
// negative replies for an EID registered by nobody and one outside every
// site.
func TestLookupThroughMapServer(t *testing.T) {
	key := []byte("e2e site key")
	ms := serveMapServer(t, mapserver.Config{
		MapServer: true, MapResolver: true,
		Sites: []mapserver.Site{{
			Name: "lab", Key: key, Algorithm: wire.AlgHMACSHA256128, AllowProxyReply: true,
			Prefixes: []mapserver.SitePrefix{{
				EIDPrefix:           mapserver.EIDPrefix{Prefix: netip.MustParsePrefix("10.1.0.0/16")},
				AcceptMoreSpecifics: true,
			}},
		}},
	})

	// ETR 1 asks for proxy replies; ETR 2 does not, so the Map-Server
	// forwards requests to its RLOC on port 4342, where it answers them.
	etr1 := listenE2E(t, "127.88.0.2:4342")
	defer etr1.Close()
	etr2 := listenE2E(t, "127.88.0.3:4342")
	defer etr2.Close()
	registerETR(t, etr1, ms, key, "10.1.1.0/24", true, 0xe2e1)
	registerETR(t, etr2, ms, key, "10.1.2.0/24", false, 0xe2e2)

	var wg sync.WaitGroup
	wg.Add(1)
	forwarded := make(chan wire.ECM, 1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65535)
		for {
			n, _, err := etr2.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed
			}
			m, err := wire.Parse(buf[:n])
			if err != nil {
				continue
			}
			ecm, ok := m.(*wire.ECM)
			if !ok {
				continue
			}
			req, ok := ecm.Inner.(*wire.MapRequest)
			if !ok || len(req.ITRRLOCs) == 0 {
				continue
			}
			select {
			case forwarded <- *ecm:
			default:
			}
			// Answer the ITR directly, at its ITR-RLOC and the inner
			// UDP source port (RFC 9301 section 5.4).
			rep := &wire.MapReply{Nonce: req.Nonce, Records: []wire.EIDRecord{mapping(0, "10.1.2.0/24", 1440,
				wire.Locator{Priority: 1, Weight: 100, MPriority: 255, Reachable: true, Address: ipAddr("127.88.0.3")})}}
			b, err := rep.AppendBinary(nil)
			if err != nil {
				continue
			}
			etr2.WriteToUDPAddrPort(b, netip.AddrPortFrom(req.ITRRLOCs[0].IP, ecm.Source.Port()))
		}
	}()
	defer func() {
		etr2.Close()
		wg.Wait()
	}()

	lookup := func(eid string) map[string]any {
		t.Helper()
		out, errOut, code := execLispctl(t, nil, "lookup", eid, "--mr", ms.String(), "--source", "127.0.0.1", "--json")
		if code != exitOK {
			t.Fatalf("lookup %s: exit %d: %s", eid, code, errOut)
		}
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(out))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("lookup %s: %v\n%s", eid, err, out)
		}
		return m
	}
	onlyRecord := func(m map[string]any) map[string]any {
		t.Helper()
		recs := asList(m["records"])
		if len(recs) != 1 {
			t.Fatalf("records %v", m["records"])
		}
		return recs[0].(map[string]any)
	}
	locIPs := func(rec map[string]any) []string {
		var ips []string
		for _, l := range asList(rec["locators"]) {
			ips = append(ips, l.(map[string]any)["address"].(map[string]any)["ip"].(string))
		}
		return ips
	}

	// Proxy reply: from the Map-Server, with ETR 1's registered RLOC.
	m := lookup("10.1.1.9")
	rec := onlyRecord(m)
	expectJSON(t, m, "replier", ms.String())
	expectJSON(t, rec, "eid_prefix", "10.1.1.0/24")
	if ips := locIPs(rec); len(ips) != 1 || ips[0] != "127.88.0.2" {
		t.Errorf("proxy reply locators %v, want [127.88.0.2]", ips)
	}

	// Forwarded to ETR 2, which answers lispctl directly.
	m = lookup("10.1.2.9")
	rec = onlyRecord(m)
	expectJSON(t, m, "replier", "127.88.0.3:4342")
	if ips := locIPs(rec); len(ips) != 1 || ips[0] != "127.88.0.3" {
		t.Errorf("ETR reply locators %v", ips)
	}
	select {
	case ecm := <-forwarded:
		if !ecm.ToETR || ecm.Source.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("forwarded ECM %+v", ecm)
		}
	default:
		t.Error("ETR 2 saw no forwarded Map-Request")
	}

	// Negative replies (RFC 9301 section 8.3): inside the site but not
	// registered (1 minute), and outside every site (15 minutes).
	for _, c := range []struct {
		eid, prefix string
		ttl         int64
	}{{"10.1.3.1", "10.1.3.0/24", 1}, {"192.168.7.7", "128.0.0.0/1", 15}} {
		rec := onlyRecord(lookup(c.eid))
		expectJSON(t, rec, "eid_prefix", c.prefix)
		expectJSON(t, rec, "action", "Natively-Forward")
		if mustInt(t, rec["record_ttl"]) != c.ttl || len(asList(rec["locators"])) != 0 {
			t.Errorf("negative reply for %s: %v", c.eid, rec)
		}
	}

	// The text form of the proxy reply.
	out, errOut, code := execLispctl(t, nil, "lookup", "10.1.1.9", "--mr", ms.String())
	if code != exitOK || !strings.Contains(out, "Map-Reply from "+ms.String()+" for 10.1.1.9/32 in ") ||
		!strings.Contains(out, "  127.88.0.2  1         100     255         0         yes        no     no") {
		t.Errorf("text lookup: exit %d\n%s\n%s", code, out, errOut)
	}
}
