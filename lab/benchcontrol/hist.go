package benchcontrol

import (
	"sync/atomic"
	"time"
)

// histogram counts latencies in buckets of 1 µs up to 2 ms, 10 µs up to
// 20 ms, 100 µs up to 200 ms and 1 ms up to 2 s; longer ones go in the last
// bucket. It is safe for concurrent use and does not allocate.
type histogram struct {
	b [histBuckets]atomic.Uint64
}

const (
	histTier    = 2000 // buckets per tier
	histTiers   = 4
	histBuckets = histTier * histTiers
)

// bucketOf returns the bucket of d.
func bucketOf(d time.Duration) int {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	width := int64(1)
	for tier := range histTiers {
		if us < histTier*width {
			return tier*histTier + int(us/width)
		}
		width *= 10
	}
	return histBuckets - 1
}

// bucketUpper returns the upper bound of bucket i.
func bucketUpper(i int) time.Duration {
	tier, k := i/histTier, i%histTier
	width := int64(1)
	for range tier {
		width *= 10
	}
	return time.Duration(int64(k+1)*width) * time.Microsecond
}

func (h *histogram) add(d time.Duration) { h.b[bucketOf(d)].Add(1) }

// quantile returns the upper bound of the bucket holding quantile q (0 to
// 1) of the samples, or 0 when there are none.
func (h *histogram) quantile(q float64) time.Duration {
	var counts [histBuckets]uint64
	var total uint64
	for i := range h.b {
		counts[i] = h.b[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	if rank >= total {
		rank = total - 1
	}
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen > rank {
			return bucketUpper(i)
		}
	}
	return bucketUpper(histBuckets - 1)
}
