package dataplane

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func mustRLOCs(t testing.TB, ps ...string) *RLOCSet {
	t.Helper()
	var pfx []netip.Prefix
	for _, p := range ps {
		pfx = append(pfx, netip.MustParsePrefix(p))
	}
	s, err := NewRLOCSet(pfx...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRLOCSet(t *testing.T) {
	s := mustRLOCs(t, "192.0.2.9/32", "198.51.100.0/24", "2001:db8::9/128", "203.0.113.7/24")
	a := netip.MustParseAddr
	for _, c := range []struct {
		addr string
		in   bool
	}{
		{"192.0.2.9", true}, {"192.0.2.8", false}, {"::ffff:192.0.2.9", true},
		{"198.51.100.200", true}, {"203.0.113.1", true}, {"2001:db8::9", true}, {"2001:db8::8", false},
	} {
		if got := s.Contains(a(c.addr)); got != c.in {
			t.Errorf("Contains(%s) = %v", c.addr, got)
		}
	}
	if s.Contains(netip.Addr{}) || (*RLOCSet)(nil).Contains(a("192.0.2.9")) || (*RLOCSet)(nil).Len() != 0 {
		t.Error("invalid address or nil set contains something")
	}
	if s.Len() != 4 {
		t.Errorf("Len %d", s.Len())
	}
	for _, bad := range []netip.Prefix{{}, netip.MustParsePrefix("::ffff:192.0.2.0/120")} {
		if _, err := NewRLOCSet(bad); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewRLOCSet(%v) err %v", bad, err)
		}
	}
	if p := HostPrefix(a("::ffff:192.0.2.1")); p != netip.MustParsePrefix("192.0.2.1/32") {
		t.Errorf("HostPrefix %v", p)
	}
	if p := HostPrefix(a("fe80::1%eth0")); p != netip.MustParsePrefix("fe80::1/128") {
		t.Errorf("HostPrefix %v", p)
	}

	// Update leaves the old set alone, both in small steps (copy-on-write
	// per prefix) and in bulk (one clone).
	n := s.Update([]netip.Prefix{HostPrefix(a("192.0.2.8"))}, []netip.Prefix{HostPrefix(a("192.0.2.9"))})
	if !n.Contains(a("192.0.2.8")) || n.Contains(a("192.0.2.9")) || s.Contains(a("192.0.2.8")) || !s.Contains(a("192.0.2.9")) {
		t.Fatal("small update")
	}
	var many []netip.Prefix
	for k := range 2 * bulkUpdate {
		many = append(many, HostPrefix(netip.AddrFrom4([4]byte{10, 9, 0, byte(k)})))
	}
	big := n.Update(many, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")})
	if !big.Contains(a("10.9.0.100")) || big.Contains(a("198.51.100.1")) || n.Contains(a("10.9.0.100")) || !n.Contains(a("198.51.100.1")) {
		t.Fatal("bulk update")
	}
	if big.Len() != 4+2*bulkUpdate-1 {
		t.Errorf("Len %d after bulk update", big.Len())
	}
	if e := (*RLOCSet)(nil).Update([]netip.Prefix{HostPrefix(a("192.0.2.1")), {}}, nil); !e.Contains(a("192.0.2.1")) || e.Len() != 1 {
		t.Error("update of the nil set")
	}
	if got := n.Prefixes(); !slices.Equal(got, []netip.Prefix{
		netip.MustParsePrefix("192.0.2.8/32"), netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::9/128"),
	}) {
		t.Errorf("Prefixes %v", got)
	}
}

// TestDecapRLOCFilter checks the decapsulation filter: without one every
// outer source is accepted (the behaviour before it existed); with one, a
// datagram from an address outside it is dropped before anything else is
// looked at and counted as unknown_rloc; swapping the set takes effect on
// the next datagram.
func TestDecapRLOCFilter(t *testing.T) {
	d := NewDecapsulator(mustEIDs(t, eid(0, "10.2.0.0/16")))
	in := unhex(t, inner4Hex)
	try := func(from string, header string) DecapResult {
		buf, n := lispDatagram(t, header, in)
		return d.Decap(buf, ConnOffset, n, Meta{Addr: netip.MustParseAddrPort(from)})
	}
	if r := try("203.0.113.66:4341", "80 00 00 01 00 00 00 00"); !r.Deliver {
		t.Fatalf("no filter: %v", r.Reason)
	}
	d.SetRLOCFilter(mustRLOCs(t, "192.0.2.9/32", "198.51.100.0/24"))
	for _, c := range []struct {
		from, header string
		want         Reason
	}{
		{"192.0.2.9:4341", "80 00 00 01 00 00 00 00", ReasonNone},
		{"[::ffff:192.0.2.9]:61000", "80 00 00 01 00 00 00 00", ReasonNone},
		{"198.51.100.77:4341", "80 00 00 01 00 00 00 00", ReasonNone},
		{"203.0.113.66:4341", "80 00 00 01 00 00 00 00", DropUnknownRLOC},
		{"[2001:db8::66]:4341", "80 00 00 01 00 00 00 00", DropUnknownRLOC},
		{"203.0.113.66:4341", "07 00 00 00 00 00 00 00", DropUnknownRLOC}, // the filter comes first
		{"192.0.2.9:4341", "07 00 00 00 00 00 00 00", DropLISPCrypto},
	} {
		r := try(c.from, c.header)
		if c.want == ReasonNone {
			if !r.Deliver {
				t.Errorf("from %s: dropped %v", c.from, r.Reason)
			}
			continue
		}
		if r.Deliver || r.Reason != c.want {
			t.Errorf("from %s: deliver %v reason %v, want %v", c.from, r.Deliver, r.Reason, c.want)
		}
	}
	if got := d.Stats().Drops[DropUnknownRLOC]; got != 3 {
		t.Errorf("unknown_rloc %d, want 3", got)
	}
	// A datagram without a source (an in-memory conn that gives none)
	// is unknown too.
	buf, n := lispDatagram(t, "80 00 00 01 00 00 00 00", in)
	if r := d.Decap(buf, ConnOffset, n, Meta{}); r.Reason != DropUnknownRLOC {
		t.Errorf("no source: %+v", r)
	}
	d.SetRLOCFilter(d.RLOCFilter().Update([]netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}, nil))
	if r := try("203.0.113.66:4341", "80 00 00 01 00 00 00 00"); !r.Deliver {
		t.Errorf("after the swap: %v", r.Reason)
	}
	d.SetRLOCFilter(nil)
	if r := try("[2001:db8::66]:4341", "80 00 00 01 00 00 00 00"); !r.Deliver || d.RLOCFilter() != nil {
		t.Errorf("filter off: %v", r.Reason)
	}
}

// TestDecapRLOCCheck checks the filter's second opinion: asked only for an
// outer source outside the set, with the inner packet's instance-ID and
// source, after the other checks.
func TestDecapRLOCCheck(t *testing.T) {
	d := NewDecapsulator(mustEIDs(t, eid(0, "10.2.0.0/16")))
	d.SetRLOCFilter(mustRLOCs(t, "192.0.2.9/32"))
	var asked []string
	d.SetRLOCCheck(func(iid uint32, src, outer netip.Addr) bool {
		asked = append(asked, src.String()+" "+outer.String())
		return outer == netip.MustParseAddr("198.51.100.7") && src == netip.MustParseAddr("10.1.1.1")
	})
	try := func(from string, inner []byte) Reason {
		buf, n := lispDatagram(t, "80 00 00 01 00 00 00 00", inner)
		return d.Decap(buf, ConnOffset, n, Meta{Addr: netip.MustParseAddrPort(from)}).Reason
	}
	in := unhex(t, inner4Hex) // 10.1.1.1 -> 10.2.2.2
	for _, c := range []struct {
		from  string
		inner []byte
		want  Reason
	}{
		{"192.0.2.9:4341", in, ReasonNone},             // in the set: not asked
		{"[::ffff:198.51.100.7]:4341", in, ReasonNone}, // accepted by the check
		{"198.51.100.8:4341", in, DropUnknownRLOC},     // refused by it
		{"198.51.100.7:4341", in[:10], DropBadInner},   // never asked: malformed
		{"198.51.100.7:4341", udp4Packet("10.1.1.1", "10.9.9.9", 1, 2, 0, 64, false, nil), DropNotOurEID},
	} {
		if got := try(c.from, c.inner); got != c.want {
			t.Errorf("from %s: %v, want %v", c.from, got, c.want)
		}
	}
	if want := []string{"10.1.1.1 198.51.100.7", "10.1.1.1 198.51.100.8"}; !slices.Equal(asked, want) {
		t.Errorf("asked %q, want %q", asked, want)
	}
	d.SetRLOCCheck(nil)
	if got := try("198.51.100.7:4341", in); got != DropUnknownRLOC {
		t.Errorf("without the check: %v", got)
	}
}
