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
// inner header checks, EID-set lookup, and the write to the device (a
// discarding one), in batches of 64.
func BenchmarkETRDecap(b *testing.B) {
	const n = 64
	dp, batch, fill := decapSetup(b, n)
	dec := dp.etr.Decapsulator()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		fill()
		dec.DecapBatch(batch, n)
		dp.writeDevice(batch.Out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
	b.ReportMetric(0, "ns/op")
}
