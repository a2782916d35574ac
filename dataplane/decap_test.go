package dataplane

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// lispDatagram builds a UDP payload by hand: LISP header + inner packet,
// placed at ConnOffset in a buffer.
func lispDatagram(t testing.TB, header string, inner []byte) (buf []byte, n int) {
	h := unhex(t, header)
	buf = make([]byte, ConnOffset+len(h)+len(inner))
	copy(buf[ConnOffset:], h)
	copy(buf[ConnOffset+len(h):], inner)
	return buf, len(h) + len(inner)
}

func TestDecapDeliverAndDrops(t *testing.T) {
	eids := mustEIDs(t,
		eid(0, "10.2.0.0/16"),
		eid(0, "2001:db8:2::/48"),
		eid(7, "10.2.2.0/24"),
	)
	in4 := unhex(t, inner4Hex) // to 10.2.2.2
	in6 := unhex(t, inner6Hex) // to 2001:db8:2::2
	other4 := udp4Packet("10.1.1.1", "10.3.3.3", 1, 2, 0, 64, false, nil)
	badSum := bytes.Clone(in4)
	badSum[11] ^= 0xff
	tests := []struct {
		name   string
		header string
		inner  []byte
		want   Reason // ReasonNone: delivered
		iid    uint32
	}{
		{"v4 no iid", "80 12 34 56 00 00 00 00", in4, ReasonNone, 0},
		{"v6 no iid", "80 12 34 56 00 00 00 00", in6, ReasonNone, 0},
		{"v4 iid 7", "88 12 34 56 00 00 07 00", in4, ReasonNone, 7},
		{"R bit and no N", "04 00 00 00 00 00 00 00", in4, ReasonNone, 0},
		// LISP-crypto (RFC 8061): KK names the key that encrypted the
		// payload; lispd has none, so the payload is not a packet to
		// deliver, whatever it looks like.
		{"KK 01", "81 00 00 01 00 00 00 00", in4, DropLISPCrypto, 0},
		{"KK 10", "82 00 00 01 00 00 00 00", in4, DropLISPCrypto, 0},
		{"KK 11 with R", "07 00 00 00 00 00 00 00", in4, DropLISPCrypto, 0},
		{"KK with iid", "89 00 00 01 00 00 07 00", in4, DropLISPCrypto, 7},
		// An inner source inside the site's own prefixes: spoofed.
		{"own v4 source", "80 00 00 01 00 00 00 00", udp4Packet("10.2.9.9", "10.2.2.2", 1, 2, 0, 64, false, nil), DropOwnEIDSource, 0},
		{"own v6 source", "80 00 00 01 00 00 00 00", udp6Packet("2001:db8:2::9", "2001:db8:2::2", 1, 2, 0, 64, nil), DropOwnEIDSource, 0},
		{"own source, iid 7", "88 00 00 01 00 00 07 00", udp4Packet("10.2.2.9", "10.2.2.2", 1, 2, 0, 64, false, nil), DropOwnEIDSource, 7},
		{"own in iid 0, not in iid 7", "88 00 00 01 00 00 07 00", udp4Packet("10.2.9.9", "10.2.2.2", 1, 2, 0, 64, false, nil), ReasonNone, 7},
		{"map-version header", "90 00 10 02 00 00 00 00", in4, ReasonNone, 0},
		{"not our EID", "80 00 00 01 00 00 00 00", other4, DropNotOurEID, 0},
		{"iid 7 outside its prefix", "88 00 00 01 00 00 07 00", udp4Packet("10.1.1.1", "10.2.3.3", 1, 2, 0, 64, false, nil), DropNotOurEID, 7},
		{"v6 in iid 7", "88 00 00 01 00 00 07 00", in6, DropNotOurEID, 7},
		{"unknown iid", "88 00 00 01 00 00 09 00", in4, DropWrongIID, 9},
		{"short header", "80 00 00", nil, DropBadHeader, 0},
		{"header only", "80 00 00 01 00 00 00 00", nil, DropBadInner, 0},
		{"version 0", "80 00 00 01 00 00 00 00", append([]byte{0x05}, in4[1:]...), DropBadInner, 0},
		{"truncated inner", "80 00 00 01 00 00 00 00", in4[:31], DropBadInner, 0},
		{"truncated v6", "80 00 00 01 00 00 00 00", in6[:47], DropBadInner, 0},
		{"bad v4 checksum", "80 00 00 01 00 00 00 00", badSum, DropBadInner, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecapsulator(eids)
			buf, n := lispDatagram(t, tc.header, tc.inner)
			r := d.Decap(buf, ConnOffset, n, Meta{})
			s := d.Stats()
			if tc.want == ReasonNone {
				if !r.Deliver || !bytes.Equal(buf[r.Start:r.End], tc.inner) || r.InstanceID != tc.iid {
					t.Fatalf("result %+v", r)
				}
				if s.Packets != 1 || s.Bytes != uint64(len(tc.inner)) {
					t.Fatalf("stats %+v", s)
				}
				return
			}
			if r.Deliver || r.Reason != tc.want {
				t.Fatalf("got deliver=%v reason %v, want drop %v", r.Deliver, r.Reason, tc.want)
			}
			if s.Drops[tc.want] != 1 || s.Packets != 0 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestDecapHeaderFields(t *testing.T) {
	d := NewDecapsulator(mustEIDs(t, eid(0, "10.2.0.0/16")))
	buf, n := lispDatagram(t, "e0 ab cd ef 00 00 00 03", unhex(t, inner4Hex)) // N E, nonce, LSBs 3
	r := d.Decap(buf, ConnOffset, n, Meta{})
	if !r.Deliver || !r.Header.N || !r.Header.E || r.Header.Nonce != 0xabcdef || r.Header.LSB != 3 {
		t.Fatalf("result %+v", r)
	}
}

func TestDecapTrailingBytes(t *testing.T) {
	d := NewDecapsulator(mustEIDs(t, eid(0, "10.2.0.0/16")))
	inner := unhex(t, inner4Hex)
	buf, n := lispDatagram(t, "80 00 00 01 00 00 00 00", append(bytes.Clone(inner), 1, 2, 3))
	r := d.Decap(buf, ConnOffset, n, Meta{})
	if !r.Deliver || r.End-r.Start != len(inner) {
		t.Fatalf("result %+v", r)
	}
}

func TestDecapTTLAndECN(t *testing.T) {
	d := NewDecapsulator(mustEIDs(t, eid(0, "10.2.0.0/16"), eid(0, "2001:db8:2::/48")))
	check := func(name string, inner []byte, m Meta, wantTTL, wantTOS uint8, wantDrop Reason) {
		t.Helper()
		buf, n := lispDatagram(t, "80 00 00 01 00 00 00 00", inner)
		r := d.Decap(buf, ConnOffset, n, m)
		if wantDrop != ReasonNone {
			if r.Deliver || r.Reason != wantDrop {
				t.Fatalf("%s: got %+v, want drop %v", name, r, wantDrop)
			}
			return
		}
		if !r.Deliver {
			t.Fatalf("%s: dropped %v", name, r.Reason)
		}
		p := buf[r.Start:r.End]
		h, _ := parseIPHeader(p)
		if h.ttl != wantTTL || h.tos != wantTOS {
			t.Fatalf("%s: ttl %d tos %#x, want %d %#x", name, h.ttl, h.tos, wantTTL, wantTOS)
		}
		if h.version == 4 && refChecksum(p[:20]) != 0 {
			t.Fatalf("%s: IPv4 header checksum broken by the rewrite", name)
		}
		if h.version == 6 && binary.BigEndian.Uint32(p[0:4])&0xfffff != 0x12345 {
			t.Fatalf("%s: flow label changed", name)
		}
	}
	v4 := func(tos, ttl uint8) []byte { return udp4Packet("10.1.1.1", "10.2.2.2", 1, 2, tos, ttl, false, nil) }
	v6 := func(tc, hl uint8) []byte { return udp6Packet("2001:db8:1::1", "2001:db8:2::2", 1, 2, tc, hl, nil) }
	check("outer TTL lower", v4(0, 64), Meta{TTL: 20}, 20, 0, ReasonNone)
	check("outer TTL higher", v4(0, 64), Meta{TTL: 200}, 64, 0, ReasonNone)
	check("outer TTL unknown", v4(0, 64), Meta{}, 64, 0, ReasonNone)
	check("v6 hop limit lower", v6(0, 64), Meta{TTL: 9}, 9, 0, ReasonNone)
	check("CE onto ECT(0)", v4(0xb8|2, 64), Meta{TOS: 0x03, TTL: 64}, 64, 0xbb, ReasonNone)
	check("CE onto ECT(1) v6", v6(0x29, 64), Meta{TOS: 0x03}, 64, 0x2b, ReasonNone)
	check("CE onto not-ECT", v4(0xb8, 64), Meta{TOS: 0x03}, 0, 0, DropECN)
	check("outer ECT only", v4(0xb8, 64), Meta{TOS: 0x02}, 64, 0xb8, ReasonNone)
	check("outer DSCP not copied", v4(0x00, 64), Meta{TOS: 0xb8}, 64, 0, ReasonNone)
	if s := d.Stats(); s.TTLCopied != 2 || s.ECNMarked != 2 || s.Drops[DropECN] != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDecapEIDSwap(t *testing.T) {
	d := NewDecapsulator(nil)
	buf, n := lispDatagram(t, "80 00 00 01 00 00 00 00", unhex(t, inner4Hex))
	if r := d.Decap(bytes.Clone(buf), ConnOffset, n, Meta{}); r.Deliver || r.Reason != DropWrongIID {
		t.Fatalf("no EIDs: %+v", r)
	}
	d.SetEIDs(mustEIDs(t, eid(0, "10.2.2.2/32")))
	if r := d.Decap(bytes.Clone(buf), ConnOffset, n, Meta{}); !r.Deliver {
		t.Fatalf("after swap: %+v", r)
	}
	d.SetEIDs(mustEIDs(t, eid(0, "10.2.2.3/32")))
	if r := d.Decap(bytes.Clone(buf), ConnOffset, n, Meta{}); r.Reason != DropNotOurEID {
		t.Fatalf("after second swap: %+v", r)
	}
	for _, a := range [][2]int{{-1, 10}, {0, -1}, {len(buf), 10}, {ConnOffset, 1 << 20}} {
		if r := d.Decap(buf, a[0], a[1], Meta{}); r.Deliver {
			t.Fatalf("Decap(off=%d, n=%d) delivered", a[0], a[1])
		}
	}
}

func TestDecapBatch(t *testing.T) {
	d := NewDecapsulator(mustEIDs(t, eid(0, "10.2.0.0/16"), eid(3, "2001:db8:2::/48")))
	b, _ := NewBatch(4, 2048)
	put := func(i int, hdr string, inner []byte) {
		h := unhex(t, hdr)
		copy(b.Bufs[i][ConnOffset:], h)
		copy(b.Bufs[i][ConnOffset+8:], inner)
		b.Sizes[i] = len(h) + len(inner)
	}
	put(0, "80 00 00 01 00 00 00 00", unhex(t, inner4Hex))
	put(1, "80 00 00 01 00 00 00 00", unhex(t, inner6Hex)) // iid 0 has no IPv6: not our EID
	put(2, "88 00 00 01 00 00 03 00", unhex(t, inner6Hex))
	b.Sizes[3] = 0
	d.DecapBatch(b, 4)
	if len(b.Out) != 2 || len(b.OutIID) != 2 || b.OutIID[0] != 0 || b.OutIID[1] != 3 {
		t.Fatalf("out %d iids %v", len(b.Out), b.OutIID)
	}
	if !bytes.Equal(b.Out[0][OutOffset:], unhex(t, inner4Hex)) || !bytes.Equal(b.Out[1][OutOffset:], unhex(t, inner6Hex)) {
		t.Fatal("outputs not framed at OutOffset")
	}
}

func TestEIDSet(t *testing.T) {
	s := mustEIDs(t, eid(5, "10.1.2.3/16"), eid(0, "2001:db8::/32"), eid(5, "10.1.0.0/16"), eid(0, "192.0.2.0/24"))
	if got := s.Prefixes(); len(got) != 3 || got[0].String() != "192.0.2.0/24" || got[2].String() != "[5]10.1.0.0/16" {
		t.Fatalf("prefixes %v", got)
	}
	if !s.Contains(5, netip.MustParseAddr("10.1.200.1")) || s.Contains(0, netip.MustParseAddr("10.1.200.1")) ||
		!s.Contains(0, netip.MustParseAddr("2001:db8::1")) || s.Contains(5, netip.MustParseAddr("2001:db8::1")) {
		t.Fatal("membership wrong")
	}
	if !s.Serves(5) || s.Serves(6) || (*EIDSet)(nil).Serves(0) || (*EIDSet)(nil).Contains(0, netip.MustParseAddr("10.0.0.1")) {
		t.Fatal("Serves wrong")
	}
	for _, bad := range []EIDPrefix{{0, netip.Prefix{}}, {1 << 24, netip.MustParsePrefix("10.0.0.0/8")}, {0, netip.MustParsePrefix("::ffff:10.0.0.0/104")}} {
		if _, err := NewEIDSet(bad); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("NewEIDSet(%v) err %v", bad, err)
		}
	}
}

func TestStatsCounterNames(t *testing.T) {
	enc, _ := NewEncapsulator(EncapConfig{})
	var names []string
	for _, c := range enc.Stats().Counters() {
		names = append(names, c.Name)
	}
	want := []string{"packets", "bytes", "fragmented", "fragments", "icmp_frag_needed", "icmpv6_packet_too_big",
		"icmp_rate_limited", "drop_no_route", "drop_bad_inner", "drop_bad_tunnel", "drop_no_headroom", "drop_too_big", "drop_no_buffer"}
	if !equalStrings(names, want) {
		t.Fatalf("encap counters %v", names)
	}
	names = names[:0]
	for _, c := range NewDecapsulator(nil).Stats().Counters() {
		names = append(names, c.Name)
	}
	want = []string{"packets", "bytes", "ttl_copied", "ecn_marked", "drop_bad_header", "drop_bad_inner",
		"drop_wrong_iid", "drop_not_our_eid", "drop_ecn_ce_not_ect", "drop_unknown_rloc", "drop_own_eid_source",
		"drop_lisp_crypto"}
	if !equalStrings(names, want) {
		t.Fatalf("decap counters %v", names)
	}
	if Reason(200).String() != "unknown" {
		t.Fatal("out-of-range reason")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDecapBatchMeta(t *testing.T) {
	d := NewDecapsulator(mustEIDs(t, eid(0, "10.2.0.0/16"), eid(3, "2001:db8:2::/48")))
	b, _ := NewBatch(4, 2048)
	put := func(i int, hdr string, inner []byte, from string) {
		h := unhex(t, hdr)
		copy(b.Bufs[i][ConnOffset:], h)
		copy(b.Bufs[i][ConnOffset+8:], inner)
		b.Sizes[i] = len(h) + len(inner)
		b.Meta[i] = Meta{Addr: netip.MustParseAddrPort(from)}
	}
	put(0, "c0 00 00 01 80 00 00 05", unhex(t, inner4Hex), "192.0.2.9:4341")
	put(1, "c0 00 00 01 00 00 00 01", unhex(t, inner6Hex), "192.0.2.8:4341") // not our EID
	put(2, "c8 00 00 01 00 00 03 fe", unhex(t, inner6Hex), "[::ffff:192.0.2.7]:4341")
	put(3, "80 00 00 01 00 00 00 07", unhex(t, inner4Hex), "[2001:db8::9]:4341")
	d.DecapBatch(b, 4)
	want := []DecapMeta{
		{Outer: netip.MustParseAddr("192.0.2.9"), L: true, LSBLen: 32, LSB: 0x80000005},
		{Outer: netip.MustParseAddr("192.0.2.7"), L: true, LSBLen: 8, LSB: 0xfe},
		{Outer: netip.MustParseAddr("2001:db8::9"), LSBLen: 32}, // L clear: no bits
	}
	if len(b.OutDecap) != len(want) || len(b.Out) != len(want) {
		t.Fatalf("out %d, meta %+v", len(b.Out), b.OutDecap)
	}
	for k, w := range want {
		if b.OutDecap[k] != w {
			t.Errorf("meta %d: %+v, want %+v", k, b.OutDecap[k], w)
		}
	}
	b.Reset()
	if len(b.OutDecap) != 0 {
		t.Error("Reset kept OutDecap")
	}
}
