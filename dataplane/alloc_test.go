package dataplane

import (
	"net/netip"
	"testing"
)

func requireNoAllocs(t *testing.T, name string, f func()) {
	t.Helper()
	f() // warm up (first-use buffers)
	if a := testing.AllocsPerRun(200, f); a != 0 {
		t.Errorf("%s: %v allocations per run, want 0", name, a)
	}
}

func TestAllocsEncapDecap(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful under -cover or -race")
	}
	in4 := udp4Packet("10.1.1.1", "10.2.2.2", 1000, 2000, 0, 64, true, payloadOf(1400))
	in6 := udp6Packet("2001:db8:1::1", "2001:db8:2::2", 1000, 2000, 0, 64, payloadOf(64))
	rloc := netip.MustParseAddr("192.0.2.2")
	enc, _ := NewEncapsulator(EncapConfig{})
	raw, _ := NewEncapsulator(EncapConfig{OuterHeaders: true})
	dec := NewDecapsulator(mustEIDs(t, eid(0, "10.2.0.0/16"), eid(9, "2001:db8:2::/48")))
	buf4, buf6 := inBuf(in4, 0), inBuf(in6, 0)
	tunnel := Tunnel{Src: netip.MustParseAddr("192.0.2.1"), Dst: rloc, InstanceID: 9}

	requireNoAllocs(t, "FlowHash", func() { _ = FlowHash(in4) })
	requireNoAllocs(t, "Encap", func() {
		copy(buf4[Headroom:], in4)
		if r := enc.Encap(buf4, Headroom, len(in4), Tunnel{Dst: rloc}); r.Verdict != VerdictSend {
			t.Fatal(r.Reason)
		}
	})
	requireNoAllocs(t, "Encap raw", func() {
		copy(buf6[Headroom:], in6)
		if r := raw.Encap(buf6, Headroom, len(in6), tunnel); r.Verdict != VerdictSend {
			t.Fatal(r.Reason)
		}
	})
	requireNoAllocs(t, "Encap+Decap", func() {
		copy(buf6[Headroom:], in6)
		r := enc.Encap(buf6, Headroom, len(in6), tunnel)
		if d := dec.Decap(buf6, r.Start, r.End-r.Start, Meta{TTL: 3, TOS: 0xb8}); !d.Deliver {
			t.Fatal(d.Reason)
		}
	})
	requireNoAllocs(t, "ICMP too big", func() {
		copy(buf4[Headroom:], in4)
		enc.icmpTokens = 10 // keep the limiter open
		if r := enc.Encap(buf4, Headroom, len(in4), Tunnel{Dst: rloc, PathMTU: 1000}); r.Verdict != VerdictReply {
			t.Fatal(r.Verdict, r.Reason)
		}
	})
	filtered := NewDecapsulator(dec.EIDs())
	filtered.SetRLOCFilter(mustRLOCs(t, "192.0.2.0/24", "2001:db8:ff::/48"))
	requireNoAllocs(t, "Encap+Decap filtered", func() {
		copy(buf6[Headroom:], in6)
		r := enc.Encap(buf6, Headroom, len(in6), tunnel)
		if d := filtered.Decap(buf6, r.Start, r.End-r.Start, Meta{Addr: netip.MustParseAddrPort("[::ffff:192.0.2.1]:4341")}); !d.Deliver {
			t.Fatal(d.Reason)
		}
	})
	requireNoAllocs(t, "Decap unknown RLOC", func() {
		copy(buf6[Headroom:], in6)
		r := enc.Encap(buf6, Headroom, len(in6), tunnel)
		if d := filtered.Decap(buf6, r.Start, r.End-r.Start, Meta{Addr: netip.MustParseAddrPort("[2001:db8:fe::1]:4341")}); d.Reason != DropUnknownRLOC {
			t.Fatal(d.Reason)
		}
	})
	requireNoAllocs(t, "Decap drop", func() {
		_ = dec.Decap(buf4, 0, 3, Meta{})
	})

	// Batches, including fragmentation into the spare buffers.
	b, _ := NewBatch(8, 2048)
	nofrag := udp4Packet("10.1.1.1", "10.2.2.2", 1, 2, 0, 64, false, payloadOf(1600))
	lookup := func([]byte, uint32) (Tunnel, bool) { return Tunnel{Dst: rloc}, true }
	requireNoAllocs(t, "EncapBatch", func() {
		b.Reset()
		for i := range 8 {
			p := in4
			if i == 3 {
				p = nofrag
			}
			copy(b.Bufs[i][Headroom:], p)
			b.Sizes[i] = len(p)
		}
		enc.EncapBatch(b, 8, lookup)
		if len(b.Out) != 9 {
			t.Fatalf("%d out", len(b.Out))
		}
	})
	requireNoAllocs(t, "DecapBatch", func() {
		b.Reset()
		for i := range 8 {
			copy(b.Bufs[i][ConnOffset:], []byte{0x80, 0, 0, 1, 0, 0, 0, 0})
			copy(b.Bufs[i][Headroom:], in4)
			b.Sizes[i] = 8 + len(in4)
		}
		dec.DecapBatch(b, 8)
		if len(b.Out) != 8 {
			t.Fatalf("%d out", len(b.Out))
		}
	})
}

func TestAllocsMemLink(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful under -cover or -race")
	}
	a, b := NewMemDevicePair("a", "b", 1500, 64)
	defer a.Close()
	defer b.Close()
	mn := NewMemNetwork(64)
	c1, _ := mn.Listen(netip.MustParseAddrPort("192.0.2.1:4341"))
	c2, _ := mn.Listen(netip.MustParseAddrPort("192.0.2.2:4341"))
	defer c1.Close()
	defer c2.Close()
	batch, _ := NewBatch(16, 2048)
	for i := range 16 {
		batch.Bufs[i] = batch.Bufs[i][:Headroom+200]
		batch.Meta[i] = Meta{Addr: c2.LocalAddr()}
	}
	requireNoAllocs(t, "MemDevice write+read", func() {
		a.Write(batch.Bufs, Headroom)
		if n, _ := b.Read(batch.Bufs, batch.Sizes, Headroom); n != 16 {
			t.Fatal(n)
		}
	})
	requireNoAllocs(t, "MemConn write+read", func() {
		c1.Write(batch.Bufs, batch.Meta, Headroom)
		if n, _ := c2.Read(batch.Bufs, batch.Sizes, batch.Meta[:16], Headroom); n != 16 {
			t.Fatal(n)
		}
		for i := range 16 {
			batch.Meta[i] = Meta{Addr: c2.LocalAddr()}
		}
	})
}
