package xtr

import "testing"

// BenchmarkITREncap measures the ITR's per-packet path on map-cache hits:
// map-cache lookup, RLOC choice by weight and flow hash, LISP
// encapsulation, and the write to the conn (a discarding one), in batches
// of 64 packets of 1228 bytes.
func BenchmarkITREncap(b *testing.B) {
	const n = 64
	l, fill := hitSetup(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		fill()
		l.process(l.batch, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkETRDecap measures the ETR's per-packet path: LISP header and
// inner header checks, EID-set lookups (destination and source), and the
// write to the device (a discarding one), in batches of 64; without the
// decapsulation filter (filter=off), with it and an outer source among
// 10,000 RLOCs learned from Map-Requests (filter=on), and with an outer
// source known only from the ITR's map-cache entry for the inner source
// (filter=map-cache).
func BenchmarkETRDecap(b *testing.B) {
	for _, filter := range []string{filterOff, filterOn, filterMapCache} {
		b.Run("filter="+filter, func(b *testing.B) {
			const n = 64
			dp, batch, fill := decapSetup(b, n, filter)
			dec := dp.etr.Decapsulator()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				fill()
				dec.DecapBatch(batch, n)
				dp.writeDevice(batch.Out)
			}
			if len(batch.Out) != n {
				b.Fatalf("%d of %d delivered", len(batch.Out), n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
			b.ReportMetric(0, "ns/op")
		})
	}
}
