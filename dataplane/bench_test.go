package dataplane

import (
	"fmt"
	"net/netip"
	"testing"
)

var benchSizes = []int{64, 1400}

// benchInner returns an IPv4/UDP packet of total size n.
func benchInner(n int) []byte {
	return udp4Packet("10.1.1.1", "10.2.2.2", 1000, 2000, 0, 64, true, payloadOf(n-28))
}

func BenchmarkEncap(b *testing.B) {
	for _, size := range benchSizes {
		inner := benchInner(size)
		rloc := netip.MustParseAddr("192.0.2.2")
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			enc, _ := NewEncapsulator(EncapConfig{})
			buf := inBuf(inner, 0)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				// Encap rewrites only the headroom, so the packet stays valid.
				if r := enc.Encap(buf, Headroom, size, Tunnel{Dst: rloc, InstanceID: 5}); r.Verdict != VerdictSend {
					b.Fatal(r.Reason)
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/raw", size), func(b *testing.B) {
			enc, _ := NewEncapsulator(EncapConfig{OuterHeaders: true})
			buf := inBuf(inner, 0)
			t := Tunnel{Src: netip.MustParseAddr("192.0.2.1"), Dst: rloc}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if r := enc.Encap(buf, Headroom, size, t); r.Verdict != VerdictSend {
					b.Fatal(r.Reason)
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/batch128", size), func(b *testing.B) {
			enc, _ := NewEncapsulator(EncapConfig{})
			batch, _ := NewBatch(128, Headroom+size+64)
			for i := range batch.Bufs {
				copy(batch.Bufs[i][Headroom:], inner)
				batch.Sizes[i] = size
			}
			lookup := func([]byte, uint32) (Tunnel, bool) { return Tunnel{Dst: rloc}, true }
			b.SetBytes(int64(size) * 128)
			b.ReportAllocs()
			for b.Loop() {
				batch.Reset()
				enc.EncapBatch(batch, 128, lookup)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*128), "ns/packet")
		})
	}
}

func BenchmarkDecap(b *testing.B) {
	for _, size := range benchSizes {
		inner := benchInner(size)
		dec := NewDecapsulator(mustEIDs(b, eid(0, "10.2.0.0/16"), eid(0, "2001:db8:2::/48")))
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			buf := make([]byte, ConnOffset+8+size)
			copy(buf[ConnOffset:], []byte{0x80, 1, 2, 3, 0, 0, 0, 0})
			copy(buf[Headroom:], inner)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if r := dec.Decap(buf, ConnOffset, 8+size, Meta{TTL: 64}); !r.Deliver {
					b.Fatal(r.Reason)
				}
			}
		})
		// filtered: the decapsulation filter holds 10,000 RLOCs, the
		// sender's among them.
		filtered := NewDecapsulator(dec.EIDs())
		filtered.SetRLOCFilter(benchRLOCs(b, 10000))
		for _, c := range []struct {
			name string
			dec  *Decapsulator
		}{{"batch128", dec}, {"batch128/filtered", filtered}} {
			b.Run(fmt.Sprintf("%dB/%s", size, c.name), func(b *testing.B) {
				batch, _ := NewBatch(128, Headroom+size+64)
				for i := range batch.Bufs {
					copy(batch.Bufs[i][ConnOffset:], []byte{0x80, 1, 2, 3, 0, 0, 0, 0})
					copy(batch.Bufs[i][Headroom:], inner)
					batch.Sizes[i] = 8 + size
					batch.Meta[i] = Meta{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, 64, 19, byte(i)}), 4341), TTL: 64}
				}
				b.SetBytes(int64(size) * 128)
				b.ReportAllocs()
				for b.Loop() {
					batch.Reset()
					c.dec.DecapBatch(batch, 128)
				}
				if len(batch.Out) != 128 {
					b.Fatalf("%d of 128 delivered", len(batch.Out))
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*128), "ns/packet")
			})
		}
	}
}

// benchRLOCs returns a set of n host RLOCs, 100.64.0.0 onwards.
func benchRLOCs(tb testing.TB, n int) *RLOCSet {
	ps := make([]netip.Prefix, 0, n)
	for k := range n {
		ps = append(ps, HostPrefix(netip.AddrFrom4([4]byte{100, 64, byte(k >> 8), byte(k)})))
	}
	s, err := NewRLOCSet(ps...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func BenchmarkFlowHash(b *testing.B) {
	p4 := benchInner(64)
	p6 := udp6Packet("2001:db8:1::1", "2001:db8:2::2", 1, 2, 0, 64, nil)
	b.Run("ipv4", func(b *testing.B) {
		for b.Loop() {
			_ = FlowHash(p4)
		}
	})
	b.Run("ipv6", func(b *testing.B) {
		for b.Loop() {
			_ = FlowHash(p6)
		}
	})
}
