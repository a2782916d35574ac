//go:build linux

package dataplane

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestNetnsNativeFwMark checks the fwmark design of the native path: a TUN
// whose routes live in their own table behind "not fwmark M lookup T", and
// a NativeConn marked M. The TUN namespace has a TUN route for 10.9.0.0/16
// and 2001:db8:9::/48 (table T) and a main-table route for the same
// prefixes through a veth to a peer namespace that owns 10.9.1.1 and
// 2001:db8:9::1. A packet written to the NativeConn reaches the peer, not
// the TUN; an unmarked one sent by a socket goes into the TUN.
func TestNetnsNativeFwMark(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates TUN devices, raw sockets and network namespaces")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no /dev/net/tun: %v", err)
	}
	const table, mark = 4341, 0x4341
	nsA, hA := newNetns(t)
	nsB, hB := newNetns(t)
	if err := hA.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "natA", MTU: 1500}, PeerName: "natB", PeerNamespace: netlink.NsFd(int(nsB))}); err != nil {
		t.Fatalf("veth: %v", err)
	}
	la, err := hA.LinkByName("natA")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := hB.LinkByName("natB")
	if err != nil {
		t.Fatal(err)
	}
	mustAddr(t, hA, la, "192.0.2.1/24")
	mustAddr(t, hA, la, "2001:db8:ff::1/64")
	mustAddr(t, hB, lb, "192.0.2.2/24")
	mustAddr(t, hB, lb, "2001:db8:ff::2/64")
	mustAddr(t, hB, lb, "10.9.1.1/16")
	mustAddr(t, hB, lb, "2001:db8:9::1/48")
	if err := errors.Join(hA.LinkSetUp(la), hB.LinkSetUp(lb)); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ dst, gw string }{{"10.9.0.0/16", "192.0.2.2"}, {"2001:db8:9::/48", "2001:db8:ff::2"}} {
		rt := &netlink.Route{LinkIndex: la.Attrs().Index, Dst: prefixNet(netip.MustParsePrefix(r.dst)), Gw: net.IP(netip.MustParseAddr(r.gw).AsSlice())}
		if err := hA.RouteAdd(rt); err != nil {
			t.Fatalf("main route %s: %v", r.dst, err)
		}
	}

	var tun *TUN
	var nat *NativeConn
	if err := inNetns(nsA, func() (err error) {
		tun, err = CreateTUN(TUNConfig{
			Name: "eidN", MTU: 1500,
			Addrs:      []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")},
			Routes:     []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("2001:db8:9::/48")},
			RouteTable: table, FwMark: mark,
		})
		if err != nil {
			return err
		}
		nat, err = OpenNative(NativeConfig{FwMark: mark})
		return err
	}); err != nil {
		if tun != nil {
			tun.Close()
		}
		t.Fatal(err)
	}
	defer nat.Close()

	// One inverted-mark rule per family, pointing at the table.
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := hA.RuleListFiltered(fam, &netlink.Rule{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) != 1 || !rules[0].Invert || rules[0].Mark != mark || rules[0].Priority != RulePriority {
			t.Fatalf("family %d rules %+v", fam, rules)
		}
	}

	// Packets the TUN receives.
	got := make(chan []byte, 64)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		bufs := [][]byte{make([]byte, DefaultBufferSize)}
		sizes := make([]int, 1)
		for {
			n, err := tun.Read(bufs, sizes, Headroom)
			if err != nil {
				return
			}
			for i := range n {
				got <- bytes.Clone(bufs[i][Headroom : Headroom+sizes[i]])
			}
		}
	}()
	tunClosed := false
	closeTUN := func() {
		if !tunClosed {
			tunClosed = true
			if err := tun.Close(); err != nil {
				t.Errorf("TUN close: %v", err)
			}
			<-readDone
		}
	}
	defer closeTUN()
	// waitTUN waits for a TUN packet to dst carrying payload.
	waitTUN := func(dst netip.Addr, payload []byte, within time.Duration) bool {
		deadline := time.After(within)
		for {
			select {
			case p := <-got:
				if len(p) > 0 && dstAddr(p, p[0]>>4) == dst && bytes.HasSuffix(p, payload) {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}

	for _, tc := range []struct {
		name   string
		listen string
		pkt    func(payload []byte) []byte
	}{
		{"IPv4", "10.9.1.1:7000", func(pl []byte) []byte { return udp4Packet("192.0.2.1", "10.9.1.1", 5000, 7000, 0, 64, false, pl) }},
		{"IPv6", "[2001:db8:9::1]:7000", func(pl []byte) []byte {
			return udp6Packet("2001:db8:ff::1", "2001:db8:9::1", 5000, 7000, 0, 64, pl)
		}},
	} {
		dst := netip.MustParseAddrPort(tc.listen)
		var srv *net.UDPConn
		if err := inNetns(nsB, func() (err error) {
			srv, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(dst))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer srv.Close()

		// Marked: through the NativeConn, to the peer by the main table.
		payload := []byte("natively forwarded " + tc.name)
		pkt := tc.pkt(payload)
		buf := make([]byte, OutOffset+len(pkt))
		copy(buf[OutOffset:], pkt)
		// The neighbour may need resolving first: resend until it arrives.
		rbuf := make([]byte, 2048)
		arrived := false
		for try := 0; try < 20 && !arrived; try++ {
			if n, err := nat.Write([][]byte{buf}, OutOffset); n != 1 || err != nil {
				t.Fatalf("%s: native write = %d, %v", tc.name, n, err)
			}
			srv.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
			n, _, err := srv.ReadFromUDPAddrPort(rbuf)
			if err == nil {
				if !bytes.Equal(rbuf[:n], payload) {
					t.Fatalf("%s: peer got %q", tc.name, rbuf[:n])
				}
				arrived = true
			}
		}
		if !arrived {
			t.Fatalf("%s: the natively forwarded packet never reached the peer", tc.name)
		}
		if !raceEnabled {
			bufs := [][]byte{buf}
			if a := testing.AllocsPerRun(20, func() { nat.Write(bufs, OutOffset) }); a != 0 {
				t.Errorf("%s: %v allocations per native write", tc.name, a)
			}
		}
		if waitTUN(dst.Addr(), payload, 200*time.Millisecond) {
			t.Fatalf("%s: the marked packet went into the TUN", tc.name)
		}

		// Unmarked: an ordinary socket's packet follows the TUN route.
		var cli *net.UDPConn
		if err := inNetns(nsA, func() (err error) {
			cli, err = net.ListenUDP("udp", nil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		payload = []byte("into the TUN " + tc.name)
		if _, err := cli.WriteToUDPAddrPort(payload, dst); err != nil {
			t.Fatalf("%s: unmarked send: %v", tc.name, err)
		}
		if !waitTUN(dst.Addr(), payload, 5*time.Second) {
			t.Fatalf("%s: the unmarked packet did not go into the TUN", tc.name)
		}
		// Late copies of the resent marked packet may still come in.
		srv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		for {
			n, _, err := srv.ReadFromUDPAddrPort(rbuf)
			if err != nil {
				break
			}
			if bytes.Equal(rbuf[:n], payload) {
				t.Fatalf("%s: the unmarked packet reached the peer", tc.name)
			}
		}
	}

	// Stats, malformed input, Close: rules and table routes are gone.
	if s := nat.Stats(); s.TxPackets < 2 {
		t.Errorf("native stats %+v", s)
	}
	if n, err := nat.Write([][]byte{make([]byte, OutOffset+3)}, OutOffset); n != 0 || err == nil {
		t.Errorf("malformed write = %d, %v", n, err)
	}
	closeTUN()
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := hA.RuleListFiltered(fam, &netlink.Rule{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil || len(rules) != 0 {
			t.Errorf("family %d rules after close: %+v %v", fam, rules, err)
		}
		routes, err := hA.RouteListFiltered(fam, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil || len(routes) != 0 {
			t.Errorf("family %d table routes after close: %+v %v", fam, routes, err)
		}
	}
	if err := nat.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := nat.Write([][]byte{buf4(t)}, OutOffset); n != 0 || !errors.Is(err, ErrClosed) {
		t.Errorf("write after close = %d, %v", n, err)
	}
	readErr := make(chan error, 1)
	go func() { _, err := nat.Read(nil, nil, 0); readErr <- err }()
	if err := <-readErr; !errors.Is(err, ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
}

// buf4 is a small IPv4 packet at OutOffset.
func buf4(t *testing.T) []byte {
	t.Helper()
	p := udp4Packet("192.0.2.1", "10.9.1.1", 1, 2, 0, 64, false, nil)
	return append(make([]byte, OutOffset), p...)
}

// TestCreateTUNRouteTableConfig checks the route-table arguments are
// validated before anything is created.
func TestCreateTUNRouteTableConfig(t *testing.T) {
	for _, cfg := range []TUNConfig{
		{RouteTable: -1, FwMark: 1},
		{RouteTable: unix.RT_TABLE_MAIN, FwMark: 1},
		{RouteTable: unix.RT_TABLE_LOCAL, FwMark: 1},
		{RouteTable: 4341},
	} {
		if _, err := CreateTUN(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}
