package dataplane

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// readOne reads packets from d until one arrives or the deadline passes.
func readOne(t *testing.T, d Device, timeout time.Duration) []byte {
	t.Helper()
	type res struct {
		p   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		bufs := [][]byte{make([]byte, 4096)}
		sizes := []int{0}
		n, err := d.Read(bufs, sizes, 0)
		if err != nil || n == 0 {
			ch <- res{nil, err}
			return
		}
		ch <- res{bufs[0][:sizes[0]], nil}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read: %v", r.err)
		}
		return r.p
	case <-time.After(timeout):
		_ = d.Close() // unblock the reader so it does not leak
		<-ch
		t.Fatalf("no packet on %s within %v", d.Name(), timeout)
		return nil
	}
}

type site struct {
	host *MemDevice // the hosts' end of the EID-side link
	enc  *Encapsulator
	dec  *Decapsulator
}

// twoSites wires two xTRs over an in-memory network: site A (EIDs
// 10.1/16, 2001:db8:1::/48, RLOC 192.0.2.1) and site B (10.2/16,
// 2001:db8:2::/48, RLOC 192.0.2.2).
func twoSites(t *testing.T) (a, b site) {
	t.Helper()
	mn := NewMemNetwork(0)
	mk := func(name string, rloc, peer string, local, remote []string) site {
		host, dev := NewMemDevicePair(name+"-host", name+"-xtr", 1500, 0)
		conn, err := mn.Listen(netip.AddrPortFrom(netip.MustParseAddr(rloc), LISPDataPort))
		if err != nil {
			t.Fatal(err)
		}
		var mine []EIDPrefix
		for _, p := range local {
			mine = append(mine, eid(0, p))
		}
		remoteSet := mustEIDs(t, func() (ps []EIDPrefix) {
			for _, p := range remote {
				ps = append(ps, eid(0, p))
			}
			return
		}()...)
		enc, err := NewEncapsulator(EncapConfig{PathMTU: 1500})
		if err != nil {
			t.Fatal(err)
		}
		dec := NewDecapsulator(mustEIDs(t, mine...))
		peerRLOC := netip.MustParseAddr(peer)
		lookup := func(inner []byte, _ uint32) (Tunnel, bool) {
			if !remoteSet.Contains(0, dstAddr(inner, inner[0]>>4)) {
				return Tunnel{}, false
			}
			return Tunnel{Dst: peerRLOC}, true
		}
		startXTR(t, dev, conn, enc, dec, lookup)
		t.Cleanup(func() { host.Close() })
		return site{host: host, enc: enc, dec: dec}
	}
	a = mk("a", "192.0.2.1", "192.0.2.2", []string{"10.1.0.0/16", "2001:db8:1::/48"}, []string{"10.2.0.0/16", "2001:db8:2::/48"})
	b = mk("b", "192.0.2.2", "192.0.2.1", []string{"10.2.0.0/16", "2001:db8:2::/48"}, []string{"10.1.0.0/16", "2001:db8:1::/48"})
	return a, b
}

func TestMemTwoXTRsExchange(t *testing.T) {
	a, b := twoSites(t)
	for i, tc := range []struct {
		from, to site
		pkt      []byte
	}{
		{a, b, udp4Packet("10.1.1.1", "10.2.2.2", 1000, 2000, 0x28, 60, true, []byte("hello b"))},
		{b, a, udp4Packet("10.2.2.2", "10.1.1.1", 2000, 1000, 0, 60, true, []byte("hello a"))},
		{a, b, udp6Packet("2001:db8:1::1", "2001:db8:2::2", 1000, 2000, 0, 60, []byte("hello b6"))},
		{b, a, udp6Packet("2001:db8:2::2", "2001:db8:1::1", 2000, 1000, 0, 60, []byte("hello a6"))},
	} {
		if _, err := tc.from.host.Write([][]byte{tc.pkt}, 0); err != nil {
			t.Fatal(err)
		}
		got := readOne(t, tc.to.host, 5*time.Second)
		if !bytes.Equal(got, tc.pkt) {
			t.Fatalf("case %d: got %x\nwant %x", i, got, tc.pkt)
		}
	}
	if s := a.enc.Stats(); s.Packets != 2 {
		t.Fatalf("site a encap stats %+v", s)
	}
	if s := b.dec.Stats(); s.Packets != 2 {
		t.Fatalf("site b decap stats %+v", s)
	}
}

func TestMemXTRTooBigAndMiss(t *testing.T) {
	a, _ := twoSites(t)
	big := udp4Packet("10.1.1.1", "10.2.2.2", 1, 2, 0, 64, true, payloadOf(1480))
	if _, err := a.host.Write([][]byte{big}, 0); err != nil {
		t.Fatal(err)
	}
	reply := readOne(t, a.host, 5*time.Second)
	if len(reply) < 28 || reply[9] != 1 || reply[20] != 3 || reply[21] != 4 {
		t.Fatalf("want ICMP fragmentation needed, got %x", reply[:min(len(reply), 28)])
	}
	if mtu := int(reply[26])<<8 | int(reply[27]); mtu != 1500-36 {
		t.Fatalf("ICMP next-hop MTU %d", mtu)
	}
	// A packet nobody maps is dropped and counted as no_route.
	if _, err := a.host.Write([][]byte{udp4Packet("10.1.1.1", "10.9.9.9", 1, 2, 0, 64, true, nil)}, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.enc.Stats().Drops[DropNoRoute] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no_route not counted: %+v", a.enc.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMemDeviceQueueFull(t *testing.T) {
	a, b := NewMemDevicePair("a", "b", 1500, 2)
	defer a.Close()
	defer b.Close()
	pkts := [][]byte{{1}, {2}, {3}, {4}, {5}}
	n, err := a.Write(pkts, 0)
	if err != nil || n != 2 {
		t.Fatalf("wrote %d, %v; want 2 (queue of 2)", n, err)
	}
	if sa, sb := a.Stats(), b.Stats(); sa.TxDropped != 3 || sb.RxDropped != 3 || sa.TxPackets != 2 {
		t.Fatalf("stats a %+v b %+v", sa, sb)
	}
	bufs := [][]byte{make([]byte, 8), make([]byte, 8), make([]byte, 8)}
	sizes := make([]int, 3)
	n, err = b.Read(bufs, sizes, 4)
	if err != nil || n != 2 || bufs[0][4] != 1 || bufs[1][4] != 2 || sizes[0] != 1 {
		t.Fatalf("read %d %v %v", n, err, sizes)
	}
	// A packet larger than the buffer is dropped and counted.
	a.Write([][]byte{make([]byte, 100), {9}}, 0)
	n, err = b.Read(bufs, sizes, 4)
	if err != nil || n != 1 || bufs[0][4] != 9 || b.Stats().RxDropped != 4 {
		t.Fatalf("read %d %v, stats %+v", n, err, b.Stats())
	}
	if mtu, _ := a.MTU(); mtu != 1500 || a.Name() != "a" || a.BatchSize() < 1 {
		t.Fatal("accessors")
	}
}

func TestMemCloseUnblocks(t *testing.T) {
	a, b := NewMemDevicePair("a", "b", 1500, 0)
	mn := NewMemNetwork(0)
	c, err := mn.Listen(netip.MustParseAddrPort("192.0.2.1:4341"))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() {
		_, err := a.Read([][]byte{make([]byte, 64)}, []int{0}, 0)
		errs <- err
	}()
	go func() {
		_, err := c.Read([][]byte{make([]byte, 64)}, []int{0}, []Meta{{}}, 0)
		errs <- err
	}()
	a.Close()
	c.Close()
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("blocked read ended with %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock Read")
		}
	}
	if _, err := a.Write([][]byte{{1}}, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("write on closed device: %v", err)
	}
	if _, err := c.Write([][]byte{{1}}, []Meta{{Addr: netip.MustParseAddrPort("192.0.2.2:4341")}}, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("write on closed conn: %v", err)
	}
	b.Close()
}

func TestMemNetwork(t *testing.T) {
	mn := NewMemNetwork(4)
	rx, err := mn.Listen(netip.MustParseAddrPort("0.0.0.0:4341"))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := mn.Listen(netip.MustParseAddrPort("192.0.2.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if tx.LocalAddr().Port() == 0 {
		t.Fatal("no ephemeral port assigned")
	}
	if _, err := mn.Listen(rx.LocalAddr()); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("double bind: %v", err)
	}
	dst := netip.MustParseAddrPort("192.0.2.9:4341") // caught by the wildcard
	bufs := make([][]byte, 10)
	meta := make([]Meta, 10)
	for i := range bufs {
		bufs[i] = []byte{0, 0, byte(i)}
		meta[i] = Meta{Addr: dst, TOS: 0x2e, TTL: byte(i)}
	}
	n, err := tx.Write(bufs, meta, 2)
	if err != nil || n != 10 {
		t.Fatalf("write %d %v", n, err)
	}
	if s := rx.Stats(); s.RxDropped != 6 {
		t.Fatalf("queue of 4 after 10 datagrams: stats %+v", s)
	}
	rb := [][]byte{make([]byte, 16), make([]byte, 16), make([]byte, 16), make([]byte, 16), make([]byte, 16)}
	sizes, rm := make([]int, 5), make([]Meta, 5)
	n, err = rx.Read(rb, sizes, rm, 1)
	if err != nil || n != 4 {
		t.Fatalf("read %d %v", n, err)
	}
	if rm[1].Addr != tx.LocalAddr() || rm[1].TOS != 0x2e || rm[1].TTL != 1 || rm[0].TTL != 64 || sizes[1] != 1 || rb[1][1] != 1 {
		t.Fatalf("meta %+v sizes %v", rm[:2], sizes)
	}
	// Wrong family and nobody listening: counted, not fatal.
	n, err = tx.Write([][]byte{{1}, {2}}, []Meta{{Addr: netip.MustParseAddrPort("[2001:db8::1]:4341")}, {Addr: netip.MustParseAddrPort("192.0.2.1:9")}}, 0)
	if n != 0 || !errors.Is(err, ErrAddressFamily) || tx.Stats().TxDropped != 2 {
		t.Fatalf("write %d %v, stats %+v", n, err, tx.Stats())
	}
	// After Close the address is free again.
	tx.Close()
	again, err := mn.Listen(tx.LocalAddr())
	if err != nil {
		t.Fatalf("rebind after close: %v", err)
	}
	again.Close()
}

func TestRelayMem(t *testing.T) {
	mn := NewMemNetwork(0)
	hostA, devA := NewMemDevicePair("ha", "da", 1500, 0)
	hostB, devB := NewMemDevicePair("hb", "db", 1500, 0)
	defer hostA.Close()
	defer hostB.Close()
	ca, _ := mn.Listen(netip.MustParseAddrPort("192.0.2.1:4341"))
	cb, _ := mn.Listen(netip.MustParseAddrPort("192.0.2.2:4341"))
	ra, err := NewRelay(devA, ca, cb.LocalAddr(), 0)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := NewRelay(devB, cb, ca.LocalAddr(), 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- ra.Run(ctx) }()
	go func() { done <- rb.Run(ctx) }()
	for i := range 20 {
		p := []byte{byte(i), 1, 2, 3}
		hostA.Write([][]byte{p}, 0)
		if got := readOne(t, hostB, 5*time.Second); !bytes.Equal(got, p) {
			t.Fatalf("relayed %x, want %x", got, p)
		}
	}
	hostB.Write([][]byte{{9, 9}}, 0)
	if got := readOne(t, hostA, 5*time.Second); !bytes.Equal(got, []byte{9, 9}) {
		t.Fatalf("reverse: %x", got)
	}
	cancel()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not stop")
		}
	}
	if s := ra.Stats(); s.DeviceToConn != 20 || s.ConnToDevice != 1 {
		t.Fatalf("relay a stats %+v", s)
	}
	if _, err := NewRelay(nil, ca, cb.LocalAddr(), 0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatal("nil device accepted")
	}
}
