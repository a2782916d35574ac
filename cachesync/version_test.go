package cachesync

import (
	"sync"
	"testing"
	"time"
)

func TestVersionClock(t *testing.T) {
	now := t0
	c := NewVersionClock(5, func() time.Time { return now })
	v1 := c.Next()
	v2 := c.Next() // same microsecond: the logical part moves on
	if v2 <= v1 || VersionOrigin(v1) != 5 || !VersionTime(v1).Equal(t0) {
		t.Fatalf("v1 %x v2 %x origin %d time %v", v1, v2, VersionOrigin(v1), VersionTime(v1))
	}
	// A version seen from a peer ahead of us: the next one is newer.
	other := NewVersionClock(9, func() time.Time { return now.Add(time.Second) })
	ov := other.Next()
	c.Observe(ov)
	if v3 := c.Next(); v3 <= ov || VersionOrigin(v3) != 5 {
		t.Fatalf("after observing %x: %x", ov, v3)
	}
	// A version from far in the future is not followed.
	far := NewVersionClock(9, func() time.Time { return now.Add(24 * time.Hour) }).Next()
	c.Observe(far)
	if v4 := c.Next(); VersionTime(v4).After(now.Add(2 * time.Second)) {
		t.Fatalf("followed a far-future version: %v", VersionTime(v4))
	}
	// Origins are folded into 1..MaxOriginID.
	if NewVersionClock(0, nil).Origin() != 1 || NewVersionClock(MaxOriginID+1, nil).Origin() != 1 {
		t.Fatal("origin folding")
	}
	if o := OriginID("itr-1"); o == 0 || o > MaxOriginID || o != OriginID("itr-1") {
		t.Fatalf("OriginID %d", o)
	}
}

func TestVersionClockConcurrent(t *testing.T) {
	c := NewVersionClock(3, nil)
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				v := c.Next()
				mu.Lock()
				if seen[v] {
					t.Errorf("version %x handed out twice", v)
				}
				seen[v] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
