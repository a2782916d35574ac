package xtr

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

// link is a running DataPlane with its test-side ends.
type link struct {
	host    *dataplane.MemDevice // the hosts' side of the EID device
	net     *dataplane.MemNetwork
	remote  *dataplane.MemConn // a remote xTR's UDP 4341
	native  *dataplane.MemDevice
	dp      *DataPlane
	stopped chan error
}

// startLink runs a DataPlane for itr and/or etr with the xTR's conn on
// 192.0.2.1:4341 and a remote conn on 192.0.2.2:4341.
func startLink(t *testing.T, itr *ITR, etr *ETR, withNative bool) *link {
	t.Helper()
	host, xdev := dataplane.NewMemDevicePair("host", "lisp0", 1500, 64)
	l := &link{host: host, net: dataplane.NewMemNetwork(64), stopped: make(chan error, 1)}
	c, err := l.net.Listen(netip.MustParseAddrPort("192.0.2.1:4341"))
	if err != nil {
		t.Fatal(err)
	}
	l.remote, err = l.net.Listen(netip.MustParseAddrPort("192.0.2.2:4341"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DataPlaneConfig{Device: xdev, Conns: []dataplane.Conn{c}, ITR: itr, ETR: etr}
	if withNative {
		var nat *dataplane.MemDevice
		l.native, nat = dataplane.NewMemDevicePair("native-peer", "native", 1500, 64)
		cfg.Native = nat
	}
	l.dp, err = NewDataPlane(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { l.stopped <- l.dp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-l.stopped; err != nil {
			t.Errorf("DataPlane.Run: %v", err)
		}
		l.host.Close()
		l.remote.Close()
		if l.native != nil {
			l.native.Close()
		}
	})
	return l
}

// runITR runs i until the test ends.
func runITR(t *testing.T, i *ITR) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- i.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ITR.Run: %v", err)
		}
	})
}

func (l *link) send(t *testing.T, pkt []byte) {
	t.Helper()
	buf := make([]byte, dataplane.OutOffset+len(pkt))
	copy(buf[dataplane.OutOffset:], pkt)
	if n, err := l.host.Write([][]byte{buf}, dataplane.OutOffset); n != 1 || err != nil {
		t.Fatalf("host write: %d %v", n, err)
	}
}

// readRemote waits for one datagram at the remote conn.
func (l *link) readRemote(t *testing.T) ([]byte, dataplane.Meta) {
	t.Helper()
	type r struct {
		b []byte
		m dataplane.Meta
	}
	ch := make(chan r, 1)
	go func() {
		bufs := [][]byte{make([]byte, 2048)}
		sizes, meta := []int{0}, []dataplane.Meta{{}}
		n, err := l.remote.Read(bufs, sizes, meta, 0)
		if err != nil || n != 1 {
			ch <- r{}
			return
		}
		ch <- r{bufs[0][:sizes[0]], meta[0]}
	}()
	select {
	case x := <-ch:
		if x.b == nil {
			t.Fatal("remote read failed")
		}
		return x.b, x.m
	case <-time.After(5 * time.Second):
		l.remote.Close() // unblocks the reader
		t.Fatal("no datagram at the remote RLOC")
	}
	return nil, dataplane.Meta{}
}

// readDevice waits for one packet from the given device.
func readDevice(t *testing.T, d *dataplane.MemDevice) []byte {
	t.Helper()
	ch := make(chan []byte, 1)
	go func() {
		bufs := [][]byte{make([]byte, 2048)}
		sizes := []int{0}
		n, err := d.Read(bufs, sizes, 0)
		if err != nil || n != 1 {
			ch <- nil
			return
		}
		ch <- bufs[0][:sizes[0]]
	}()
	select {
	case b := <-ch:
		if b == nil {
			t.Fatal("device read failed")
		}
		return b
	case <-time.After(5 * time.Second):
		d.Close()
		t.Fatal("no packet on the device")
	}
	return nil
}

func TestDataPlaneDropPolicy(t *testing.T) {
	i, out, _ := newTestITR(t, func(c *ITRConfig) { c.TickInterval = time.Millisecond })
	runITR(t, i)
	l := startLink(t, i, nil, false)
	pkt := ipv4Packet("10.1.0.5", "10.2.3.4", 1000, 2000, 100)
	l.send(t, pkt)
	msgs := out.waitSent(t, 1)
	_, req := innerRequest(t, msgs[0])
	waitFor(t, "the miss counted", func() bool { return counter(i.Counters(), "miss_packets_dropped") == 1 })
	i.HandlePacket(mapReply(t, req.Nonce, 0, "10.2.0.0/16", 10, "192.0.2.2"), mr1, netip.Addr{})
	l.send(t, pkt)
	b, meta := l.readRemote(t)
	if meta.Addr != netip.MustParseAddrPort("192.0.2.1:4341") {
		t.Errorf("datagram from %s", meta.Addr)
	}
	h, err := wire.ParseDataHeader(b)
	if err != nil || !h.N || h.I {
		t.Errorf("LISP header %+v %v", h, err)
	}
	if !bytes.Equal(b[8:], pkt) {
		t.Error("inner packet changed")
	}
	cs := i.Counters()
	if counter(cs, "misses") != 1 || counter(cs, "miss_packets_dropped") != 1 || counter(cs, "miss_packets_queued") != 0 {
		t.Errorf("misses %d dropped %d", counter(cs, "misses"), counter(cs, "miss_packets_dropped"))
	}
	waitFor(t, "encap counted", func() bool { return counter(l.dp.Counters(), "encap_packets") == 1 })
	if counter(l.dp.Counters(), "conn4_tx_packets") != 1 {
		t.Errorf("link counters: %v", l.dp.Counters())
	}
	if e, _ := i.Cache().Lookup(0, netip.MustParseAddr("10.2.3.4")); e.LastUsed().IsZero() {
		t.Error("the entry was not touched")
	}
}

func TestDataPlaneQueuePolicy(t *testing.T) {
	i, out, _ := newTestITR(t, func(c *ITRConfig) {
		c.TickInterval = time.Millisecond
		c.MissPolicy = MissQueue
		c.QueuePerDestination = 2
		c.InstanceID = 9
	})
	runITR(t, i)
	l := startLink(t, i, nil, false)
	var pkts [][]byte
	for k := range 3 {
		p := ipv4Packet("10.1.0.5", "10.2.3.4", 1000, 2000, 10+k)
		pkts = append(pkts, p)
		l.send(t, p)
	}
	// Another destination in the same prefix, waiting too.
	other := ipv4Packet("10.1.0.5", "10.2.9.9", 1000, 2000, 50)
	l.send(t, other)
	waitFor(t, "misses", func() bool { return counter(i.Counters(), "misses") == 4 })
	msgs := out.waitSent(t, 2)
	var req *wire.MapRequest
	for _, m := range msgs {
		if _, r := innerRequest(t, m); r.Records[0].EID.Inner.IP == netip.MustParseAddr("10.2.3.4") {
			req = r
		}
	}
	if req == nil {
		t.Fatal("no request for 10.2.3.4")
	}
	cs := i.Counters()
	if counter(cs, "miss_packets_queued") != 3 || counter(cs, "miss_packets_dropped") != 1 {
		t.Fatalf("queued %d dropped %d", counter(cs, "miss_packets_queued"), counter(cs, "miss_packets_dropped"))
	}
	i.HandlePacket(mapReply(t, req.Nonce, 9, "10.2.0.0/16", 10, "192.0.2.2"), mr1, netip.Addr{})
	got := map[int]bool{}
	for range 3 {
		b, _ := l.readRemote(t)
		h, err := wire.ParseDataHeader(b)
		if err != nil || !h.I || h.InstanceID != 9 {
			t.Errorf("header %+v", h)
		}
		got[len(b)-8] = true
	}
	if !got[len(pkts[0])] || !got[len(pkts[1])] || !got[len(other)] {
		t.Errorf("released %v", got)
	}
	if n := counter(i.Counters(), "miss_packets_released"); n != 3 {
		t.Errorf("released %d", n)
	}
	if i.Outstanding() != 1 {
		t.Errorf("%d outstanding: the covered request waits for its own reply", i.Outstanding())
	}
}

func TestDataPlaneNegativeActions(t *testing.T) {
	i, _, _ := newTestITR(t, nil)
	c := i.Cache()
	insert(t, c, &mapcache.Entry{Prefix: netip.MustParsePrefix("10.3.0.0/16"), Action: mapcache.NativelyForward})
	insert(t, c, &mapcache.Entry{Prefix: netip.MustParsePrefix("10.4.0.0/16"), Action: mapcache.DropPolicyDenied})
	insert(t, c, &mapcache.Entry{Prefix: netip.MustParsePrefix("10.5.0.0/16"), Action: mapcache.SendMapRequest})
	l := startLink(t, i, nil, true)
	native := ipv4Packet("10.1.0.5", "10.3.0.1", 1, 2, 5)
	l.send(t, native)
	if b := readDevice(t, l.native); !bytes.Equal(b, native) {
		t.Error("natively forwarded packet changed")
	}
	l.send(t, ipv4Packet("10.1.0.5", "10.4.0.1", 1, 2, 5))
	l.send(t, ipv4Packet("10.1.0.5", "10.5.0.1", 1, 2, 5))
	waitFor(t, "actions counted", func() bool {
		cs := i.Counters()
		return counter(cs, "dropped_by_action") == 1 && counter(cs, "misses") == 1 && counter(cs, "natively_forwarded") == 1
	})
	if i.Outstanding() != 1 {
		t.Error("send-map-request did not start a request")
	}

	// Without a native path the packet is dropped and counted.
	i2, _, clk := newTestITR(t, nil)
	insert(t, i2.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("10.3.0.0/16"), Action: mapcache.NativelyForward, TTL: time.Minute})
	l2 := startLink(t, i2, nil, false)
	l2.send(t, native)
	waitFor(t, "no native path", func() bool { return counter(i2.Counters(), "native_forward_no_path") == 1 })
	// Once the negative entry expires, packets miss again.
	clk.Advance(2 * time.Minute)
	i2.Cache().Sweep(clk.Now())
	l2.send(t, native)
	waitFor(t, "miss after expiry", func() bool { return counter(i2.Counters(), "misses") == 1 })
}

func TestDataPlaneDecap(t *testing.T) {
	e, _, _ := newTestETR(t, nil)
	l := startLink(t, nil, e, false)
	inner := icmpEcho("10.2.0.9", "10.1.0.5", false, 1, 1)
	dgram := append([]byte{0x80, 0, 0, 1, 0, 0, 0, 0}, inner...)
	to := []dataplane.Meta{{Addr: netip.MustParseAddrPort("192.0.2.1:4341")}}
	if _, err := l.remote.Write([][]byte{dgram}, to, 0); err != nil {
		t.Fatal(err)
	}
	if b := readDevice(t, l.host); !bytes.Equal(b, inner) {
		t.Errorf("delivered %x, want %x", b, inner)
	}
	// A packet for an EID that is not ours is dropped.
	foreign := append([]byte{0x80, 0, 0, 2, 0, 0, 0, 0}, icmpEcho("10.2.0.9", "10.9.0.5", false, 1, 2)...)
	if _, err := l.remote.Write([][]byte{foreign}, to, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "not-our-EID drop", func() bool { return counter(l.dp.Counters(), "decap_drop_not_our_eid") == 1 })
	if counter(l.dp.Counters(), "decap_packets") != 1 {
		t.Error("decap_packets")
	}
}

func TestNewDataPlaneValidates(t *testing.T) {
	i, _, _ := newTestITR(t, nil)
	dev := newDiscardDevice()
	c4, c4b := newDiscardConn("192.0.2.1:4341"), newDiscardConn("192.0.2.9:4341")
	for name, cfg := range map[string]DataPlaneConfig{
		"no device":  {Conns: []dataplane.Conn{c4}, ITR: i},
		"no conn":    {Device: dev, ITR: i},
		"no role":    {Device: dev, Conns: []dataplane.Conn{c4}},
		"two v4":     {Device: dev, Conns: []dataplane.Conn{c4, c4b}, ITR: i},
		"bad mtu":    {Device: dev, Conns: []dataplane.Conn{c4}, ITR: i, Encap: dataplane.EncapConfig{PathMTU: 10}},
		"bad buffer": {Device: dev, Conns: []dataplane.Conn{c4}, ITR: i, BufferSize: 10},
	} {
		if _, err := NewDataPlane(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	dp, err := NewDataPlane(DataPlaneConfig{Device: dev, Conns: []dataplane.Conn{c4}, ITR: i})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dp.Run(ctx) }()
	waitFor(t, "running", dp.running.Load)
	if err := dp.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDataPlaneTwoFamilies(t *testing.T) {
	i, _, _ := newTestITR(t, func(c *ITRConfig) { c.RLOCs = []netip.Addr{rlocA, netip.MustParseAddr("2001:db8::1")} })
	insert(t, i.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: rlocs("2001:db8::2")})
	insert(t, i.Cache(), &mapcache.Entry{Prefix: netip.MustParsePrefix("10.3.0.0/16"), RLOCs: rlocs("192.0.2.3")})
	c4, c6 := newDiscardConn("192.0.2.1:4341"), newDiscardConn("[2001:db8::1]:4341")
	dp, err := NewDataPlane(DataPlaneConfig{Device: newDiscardDevice(), Conns: []dataplane.Conn{c4, c6}, ITR: i})
	if err != nil {
		t.Fatal(err)
	}
	l, err := dp.newEncapLoop(dp.enc, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	b := l.batch
	b.Reset()
	for k, d := range []string{"10.2.0.1", "10.3.0.1", "10.2.0.2"} {
		p := ipv4Packet("10.1.0.1", d, 1, 2, 10)
		b.Sizes[k] = copy(b.Bufs[k][dataplane.Headroom:], p)
	}
	l.process(b, 3)
	if c4.n != 1 || c6.n != 2 {
		t.Errorf("IPv4 conn got %d, IPv6 conn %d; want 1 and 2", c4.n, c6.n)
	}
	dp.closeAll()
}

func TestDataPlaneDropsNonEIDDestinations(t *testing.T) {
	i, out, _ := newTestITR(t, func(c *ITRConfig) { c.TickInterval = time.Millisecond })
	runITR(t, i)
	l := startLink(t, i, nil, false)
	for _, dst := range []string{"224.0.0.5", "169.254.1.1", "255.255.255.255", "127.0.0.1"} {
		l.send(t, ipv4Packet("10.1.0.5", dst, 1000, 2000, 10))
	}
	waitFor(t, "non-EID destinations dropped", func() bool { return counter(i.Counters(), "dropped_not_eid") == 4 })
	// A real EID after them still misses and is asked for: the drop above
	// did not send a Map-Request.
	l.send(t, ipv4Packet("10.1.0.5", "10.2.3.4", 1000, 2000, 10))
	msgs := out.waitSent(t, 1)
	if _, req := innerRequest(t, msgs[0]); len(req.Records) != 1 {
		t.Fatalf("Map-Request %+v", req)
	} else if _, p, _ := req.Records[0].Prefix(); p.Addr().String() != "10.2.3.4" {
		t.Errorf("the first Map-Request asks for %s, want 10.2.3.4", p)
	}
	if c := counter(i.Counters(), "misses"); c != 1 {
		t.Errorf("misses = %d, want 1 (non-EID drops are not misses)", c)
	}
}
