package xtr

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestRemoteITRTable(t *testing.T) {
	e, _, clk := newTestETR(t, nil)
	e.remote.max = 3
	t0 := clk.Now()
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	eid := a("10.2.0.1")
	var seen remoteSeen
	see := func(rloc string, iid uint32, eid netip.Addr) {
		seen.see(e, iid, a(rloc), eid, clk.Now().UnixNano())
	}
	see("192.0.2.11", 0, eid)
	clk.Advance(time.Second)
	see("192.0.2.12", 0, eid)
	see("192.0.2.12", 5, eid) // another instance: another entry
	clk.Advance(time.Second)
	see("192.0.2.13", 0, eid) // evicts .11, the oldest
	list := func(within time.Duration) []string {
		var out []string
		for _, r := range e.RemoteITRs(within) {
			out = append(out, r.RLOC.String())
		}
		return out
	}
	if got := list(0); !slices.Equal(got, []string{"192.0.2.13", "192.0.2.12", "192.0.2.12"}) {
		t.Fatalf("table %v", got)
	}
	if got := list(500 * time.Millisecond); !slices.Equal(got, []string{"192.0.2.13"}) {
		t.Errorf("within 0.5 s: %v", got)
	}

	// The loop stamps a remote ITR once a second at most.
	clk.Advance(500 * time.Millisecond)
	see("192.0.2.13", 0, a("10.2.0.2"))
	if r := e.RemoteITRs(0)[0]; r.EID != eid || !r.LastSeen.Equal(t0.Add(2*time.Second)) {
		t.Errorf("restamped within a second: %+v", r)
	}
	clk.Advance(600 * time.Millisecond)
	see("192.0.2.13", 0, a("10.2.0.2"))
	if r := e.RemoteITRs(0)[0]; r.EID != a("10.2.0.2") || !r.LastSeen.Equal(clk.Now()) {
		t.Errorf("not restamped after a second: %+v", r)
	}

	// Merging keeps the newer LastSeen, fills a free slot, and drops what
	// is older than everything in a full table.
	now := clk.Now()
	e.remote.max = 4
	e.MergeRemoteITRs([]RemoteITR{
		{RLOC: a("192.0.2.13"), EID: a("10.2.0.3"), LastSeen: now.Add(-time.Hour)},               // older: ignored
		{RLOC: a("192.0.2.12"), InstanceID: 5, EID: a("10.2.0.4"), LastSeen: now.Add(time.Hour)}, // newer (future: now)
		{RLOC: a("::ffff:192.0.2.14"), EID: a("10.2.0.5"), LastSeen: now.Add(-time.Minute)},      // new
		{RLOC: a("192.0.2.15"), EID: a("10.2.0.6"), LastSeen: now.Add(-2 * time.Hour)},           // too old for a full table
		{RLOC: netip.Addr{}, EID: eid, LastSeen: now}, {RLOC: a("192.0.2.16"), LastSeen: now},    // invalid
		{RLOC: a("192.0.2.17"), EID: eid, InstanceID: 1 << 24, LastSeen: now}, {RLOC: a("192.0.2.18"), EID: eid}, // invalid
	})
	got := e.RemoteITRs(0)
	want := []RemoteITR{
		{RLOC: a("192.0.2.12"), InstanceID: 5, EID: a("10.2.0.4"), LastSeen: now},
		{RLOC: a("192.0.2.13"), EID: a("10.2.0.2"), LastSeen: now},
		{RLOC: a("192.0.2.12"), EID: eid, LastSeen: t0.Add(time.Second)},
		{RLOC: a("192.0.2.14"), EID: a("10.2.0.5"), LastSeen: now.Add(-time.Minute)},
	}
	if len(got) != len(want) {
		t.Fatalf("after merge %+v", got)
	}
	for k := range want {
		if got[k].RLOC != want[k].RLOC || got[k].InstanceID != want[k].InstanceID || got[k].EID != want[k].EID || !got[k].LastSeen.Equal(want[k].LastSeen) {
			t.Errorf("entry %d: %+v, want %+v", k, got[k], want[k])
		}
	}
}

// TestRemoteITRTableBound fills the table past its default bound in
// random order and checks that the newest entries are the ones kept.
func TestRemoteITRTableBound(t *testing.T) {
	var tb remoteITRTable
	const n = DefaultMaxRemoteITRs + 500
	order := make([]int, n)
	for k := range order {
		order[k] = (k * 7919) % n // a permutation: 7919 is prime and does not divide n
	}
	for _, k := range order {
		tb.stamp(remoteKey{rloc: netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)})}, netip.Addr{}, int64(k+1))
	}
	got := tb.list(0)
	if len(got) != DefaultMaxRemoteITRs || len(tb.h.idx) != DefaultMaxRemoteITRs {
		t.Fatalf("%d entries (%d indexed)", len(got), len(tb.h.idx))
	}
	for k, r := range got {
		if w := int64(n - k); r.LastSeen.UnixNano() != w {
			t.Fatalf("entry %d seen at %d, want %d", k, r.LastSeen.UnixNano(), w)
		}
	}
	for k, nd := range tb.h.nodes {
		if tb.h.idx[nd.key] != k {
			t.Fatalf("index of %v is %d, want %d", nd.key, tb.h.idx[nd.key], k)
		}
	}
}
