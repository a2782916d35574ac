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
		dec := NewDecapsulator(mustEIDs(b, eid(0, "10.0.0.0/8"), eid(0, "2001:db8::/32")))
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
		b.Run(fmt.Sprintf("%dB/batch128", size), func(b *testing.B) {
			batch, _ := NewBatch(128, Headroom+size+64)
			for i := range batch.Bufs {
				copy(batch.Bufs[i][ConnOffset:], []byte{0x80, 1, 2, 3, 0, 0, 0, 0})
				copy(batch.Bufs[i][Headroom:], inner)
				batch.Sizes[i] = 8 + size
				batch.Meta[i] = Meta{TTL: 64}
			}
			b.SetBytes(int64(size) * 128)
			b.ReportAllocs()
			for b.Loop() {
				batch.Reset()
				dec.DecapBatch(batch, 128)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*128), "ns/packet")
		})
	}
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
