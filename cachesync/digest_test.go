package cachesync

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// fill returns a cache (clock t0) with n entries, versions base+i.
func fill(t *testing.T, n int, base uint64) (*mapcache.Cache, []*mapcache.Entry) {
	t.Helper()
	c := mapcache.New(mapcache.Config{Clock: func() time.Time { return t0 }})
	var es []*mapcache.Entry
	for i := range n {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		es = append(es, testEntry(0, p.String(), time.Hour, base+uint64(i), "192.0.2.1"))
	}
	if errs := c.InsertBatch(es); errs != nil {
		t.Fatal(errs)
	}
	return c, es
}

// TestDigestOneChange: two caches that differ by one newer record differ
// in one bucket, and only that record is sent.
func TestDigestOneChange(t *testing.T) {
	a, es := fill(t, 1000, 100)
	b, _ := fill(t, 1000, 100)
	newer := testEntry(0, es[500].Prefix.String(), time.Hour, 5000, "192.0.2.9")
	if _, err := a.Insert(newer); err != nil {
		t.Fatal(err)
	}
	sa, sb := collectShareable(a, t0), collectShareable(b, t0)
	nb := bucketsFor(len(sa.entries))
	if nb != 128 {
		t.Fatalf("buckets for 1000: %d", nb)
	}
	diff := sb.diffBuckets(sa.digest(nb)) // B received A's digest
	if len(diff) != 1 {
		t.Fatalf("%d buckets differ, want 1", len(diff))
	}
	keys := sb.keys(nb, diff) // B's answer
	if len(keys.keys) > 30 {
		t.Fatalf("%d keys in one bucket", len(keys.keys))
	}
	miss := sa.missing(keys) // what A sends
	if len(miss) != 1 || miss[0] != newer {
		t.Fatalf("A sends %d records", len(miss))
	}
	// The other way round B has nothing A lacks.
	if miss := sb.missing(sa.keys(nb, sa.diffBuckets(sb.digest(nb)))); len(miss) != 0 {
		t.Fatalf("B sends %d records", len(miss))
	}
	// Equal caches: no bucket differs.
	sb2 := collectShareable(b, t0)
	if d := sb.diffBuckets(sb2.digest(nb)); len(d) != 0 {
		t.Fatalf("equal caches differ in %d buckets", len(d))
	}
}

// TestDigestEmptyMember: a member with nothing receives everything.
func TestDigestEmptyMember(t *testing.T) {
	a, _ := fill(t, 300, 1)
	empty := mapcache.New(mapcache.Config{Clock: func() time.Time { return t0 }})
	sa, se := collectShareable(a, t0), collectShareable(empty, t0)
	nb := bucketsFor(len(sa.entries))
	keys := se.keys(nb, se.diffBuckets(sa.digest(nb)))
	if miss := sa.missing(keys); len(miss) != 300 {
		t.Fatalf("sends %d of 300", len(miss))
	}
}

func TestKeysFramesSplit(t *testing.T) {
	a, _ := fill(t, 20000, 1)
	sa := collectShareable(a, t0)
	nb := 16 // few buckets: each holds about 1250 keys (20 KB)
	all := make([]uint32, nb)
	for i := range all {
		all[i] = uint32(i)
	}
	k := sa.keys(nb, all)
	frames := keysFrames(k, MinMaxFrameSize)
	var got []keyVersion
	var buckets []uint32
	for _, b := range frames {
		if len(b) > MinMaxFrameSize {
			t.Fatalf("frame of %d bytes", len(b))
		}
		f, err := parseFrame(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.keys.keys...)
		buckets = append(buckets, f.keys.buckets...)
	}
	if len(got) != 20000 || len(frames) < 4 {
		t.Fatalf("%d keys in %d frames", len(got), len(frames))
	}
	slices.Sort(buckets)
	if buckets = slices.Compact(buckets); len(buckets) != nb {
		t.Fatalf("buckets %v", buckets)
	}
	if bucketsFor(0) != minDigestBuckets || bucketsFor(1<<30) != maxDigestBuckets {
		t.Fatal("bucketsFor bounds")
	}
}
