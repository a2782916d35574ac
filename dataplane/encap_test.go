package dataplane

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/lispd/lispd/wire"
)

// Hand-written inner packets: TOS/Traffic Class 0xb9 (DSCP EF, ECT(1)),
// TTL/hop limit 63, UDP 12345 -> 80 carrying deadbeef.
const (
	inner4Hex = `45 b9 00 20 | 12 34 40 00 | 3f 11 11 db | 0a 01 01 01 | 0a 02 02 02
	             30 39 00 50 | 00 0c 00 00 | de ad be ef`
	inner6Hex = `6b 91 23 45 | 00 0c 11 3f
	             20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 01
	             20 01 0d b8 00 02 00 00 00 00 00 00 00 00 00 02
	             30 39 00 50 | 00 0c d6 37 | de ad be ef`
)

func TestEncapGolden(t *testing.T) {
	rloc4a, rloc4b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	rloc6a, rloc6b := netip.MustParseAddr("2001:db8:ff::1"), netip.MustParseAddr("2001:db8:ff::2")
	tests := []struct {
		name     string
		inner    string
		src, dst netip.Addr
		iid      uint32
		// outer headers before the UDP source port, then after it; the
		// source port is the flow's hash-derived port.
		ipHdr, udpRest, lisp string
	}{
		{
			name: "4in4", inner: inner4Hex, src: rloc4a, dst: rloc4b,
			ipHdr:   "45 b9 00 44 | 00 01 40 00 | 3f 11 b6 eb | c0 00 02 01 | c0 00 02 02",
			udpRest: "10 f5 | 00 30 00 00",
			lisp:    "80 ab cd ef | 00 00 00 00",
		},
		{
			name: "4in4-iid", inner: inner4Hex, src: rloc4a, dst: rloc4b, iid: 7,
			ipHdr:   "45 b9 00 44 | 00 01 40 00 | 3f 11 b6 eb | c0 00 02 01 | c0 00 02 02",
			udpRest: "10 f5 | 00 30 00 00",
			lisp:    "88 ab cd ef | 00 00 07 00",
		},
		{
			name: "6in4", inner: inner6Hex, src: rloc4a, dst: rloc4b,
			ipHdr:   "45 b9 00 58 | 00 01 40 00 | 3f 11 b6 d7 | c0 00 02 01 | c0 00 02 02",
			udpRest: "10 f5 | 00 44 00 00",
			lisp:    "80 ab cd ef | 00 00 00 00",
		},
		{
			name: "6in4-iid", inner: inner6Hex, src: rloc4a, dst: rloc4b, iid: 0xfffffe,
			ipHdr:   "45 b9 00 58 | 00 01 40 00 | 3f 11 b6 d7 | c0 00 02 01 | c0 00 02 02",
			udpRest: "10 f5 | 00 44 00 00",
			lisp:    "88 ab cd ef | ff ff fe 00",
		},
		{
			name: "4in6", inner: inner4Hex, src: rloc6a, dst: rloc6b,
			ipHdr: `6b 90 00 00 | 00 30 11 3f
			        20 01 0d b8 00 ff 00 00 00 00 00 00 00 00 00 01
			        20 01 0d b8 00 ff 00 00 00 00 00 00 00 00 00 02`,
			udpRest: "10 f5 | 00 30 00 00",
			lisp:    "80 ab cd ef | 00 00 00 00",
		},
		{
			name: "4in6-iid", inner: inner4Hex, src: rloc6a, dst: rloc6b, iid: 1,
			ipHdr: `6b 90 00 00 | 00 30 11 3f
			        20 01 0d b8 00 ff 00 00 00 00 00 00 00 00 00 01
			        20 01 0d b8 00 ff 00 00 00 00 00 00 00 00 00 02`,
			udpRest: "10 f5 | 00 30 00 00",
			lisp:    "88 ab cd ef | 00 00 01 00",
		},
		{
			name: "6in6", inner: inner6Hex, src: rloc6a, dst: rloc6b,
			ipHdr: `6b 90 00 00 | 00 44 11 3f
			        20 01 0d b8 00 ff 00 00 00 00 00 00 00 00 00 01
			        20 01 0d b8 00 ff 00 00 00 00 00 00 00 00 00 02`,
			udpRest: "10 f5 | 00 44 00 00",
			lisp:    "80 ab cd ef | 00 00 00 00",
		},
		{
			name: "6in6-iid", inner: inner6Hex, src: rloc6a, dst: rloc6b, iid: 0x123456,
			ipHdr: `6b 90 00 00 | 00 44 11 3f
			        20 01 0d b8 00 ff 00 00 00 00 00 00 00 00 00 01
			        20 01 0d b8 00 ff 00 00 00 00 00 00 00 00 00 02`,
			udpRest: "10 f5 | 00 44 00 00",
			lisp:    "88 ab cd ef | 12 34 56 00",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inner := unhex(t, tc.inner)
			if c := refChecksum(inner[:20]); inner[0]>>4 == 4 && c != 0 {
				t.Fatalf("hand-written inner IPv4 header checksum is wrong (%#04x)", c)
			}
			enc, err := NewEncapsulator(EncapConfig{Nonces: fixedNonces(0xabcdef), OuterHeaders: true})
			if err != nil {
				t.Fatal(err)
			}
			buf := inBuf(inner, 0)
			r := enc.Encap(buf, Headroom, len(inner), Tunnel{Src: tc.src, Dst: tc.dst, InstanceID: tc.iid})
			if r.Verdict != VerdictSend {
				t.Fatalf("verdict %v reason %v", r.Verdict, r.Reason)
			}
			sport := SourcePort(FlowHash(inner))
			if sport < 49152 {
				t.Fatalf("source port %d outside the ephemeral range", sport)
			}
			var want []byte
			want = append(want, unhex(t, tc.ipHdr)...)
			want = binary.BigEndian.AppendUint16(want, sport)
			want = append(want, unhex(t, tc.udpRest)...)
			want = append(want, unhex(t, tc.lisp)...)
			want = append(want, inner...)
			got := buf[r.Start:r.End]
			if !bytes.Equal(got, want) {
				t.Fatalf("encapsulated packet\n got %x\nwant %x", got, want)
			}
			if r.Meta.Addr != netip.AddrPortFrom(tc.dst, 4341) || r.Meta.TOS != 0xb9 || r.Meta.TTL != 63 || r.SrcPort != sport {
				t.Fatalf("result %+v", r)
			}
			if tc.src.Is4() {
				if c := refChecksum(got[:20]); c != 0 {
					t.Fatalf("outer IPv4 header checksum does not verify: %#04x", c)
				}
			}

			// Back again: parse the outer headers, decapsulate.
			oh, off, err := ParseOuter(got)
			if err != nil {
				t.Fatal(err)
			}
			if oh.Src != tc.src || oh.Dst != tc.dst || oh.DstPort != 4341 || oh.SrcPort != sport || oh.TTL != 63 || oh.TOS != 0xb9 {
				t.Fatalf("ParseOuter = %+v", oh)
			}
			dst := netip.MustParseAddr("10.2.2.2")
			if inner[0]>>4 == 6 {
				dst = netip.MustParseAddr("2001:db8:2::2")
			}
			dec := NewDecapsulator(mustEIDs(t, EIDPrefix{tc.iid, netip.PrefixFrom(dst, dst.BitLen())}))
			base := r.Start + off
			dr := dec.Decap(buf, base, r.End-base, Meta{TOS: oh.TOS, TTL: oh.TTL})
			if !dr.Deliver {
				t.Fatalf("decap dropped: %v", dr.Reason)
			}
			if !bytes.Equal(buf[dr.Start:dr.End], inner) {
				t.Fatalf("decapsulated\n got %x\nwant %x", buf[dr.Start:dr.End], inner)
			}
			if dr.InstanceID != tc.iid || !dr.Header.N || dr.Header.Nonce != 0xabcdef || dr.Header.I != (tc.iid != 0) {
				t.Fatalf("decap header %+v iid %d", dr.Header, dr.InstanceID)
			}
		})
	}
}

// The socket path: only the 8-byte LISP header is written, the kernel adds
// the rest.
func TestEncapSocketPath(t *testing.T) {
	inner := unhex(t, inner4Hex)
	enc, err := NewEncapsulator(EncapConfig{Nonces: fixedNonces(0x010203)})
	if err != nil {
		t.Fatal(err)
	}
	// Trailing garbage after the IP total length is cut off.
	buf := inBuf(append(inner, 0xee, 0xee), 0)
	r := enc.Encap(buf, Headroom, len(inner)+2, Tunnel{Dst: netip.MustParseAddr("2001:db8::9"), InstanceID: 0x42})
	if r.Verdict != VerdictSend || r.Start != Headroom-8 || r.End != Headroom+len(inner) {
		t.Fatalf("result %+v", r)
	}
	want := append(unhex(t, "88 01 02 03 | 00 00 42 00"), inner...)
	if !bytes.Equal(buf[r.Start:r.End], want) {
		t.Fatalf("got %x\nwant %x", buf[r.Start:r.End], want)
	}
	if r.Meta.Addr.String() != "[2001:db8::9]:4341" || r.MTU != DefaultPathMTU-56 {
		t.Fatalf("meta %+v mtu %d", r.Meta, r.MTU)
	}
	if s := enc.Stats(); s.Packets != 1 || s.Bytes != uint64(len(inner)) {
		t.Fatalf("stats %+v", s)
	}
}

func TestEncapEchoNonce(t *testing.T) {
	inner := unhex(t, inner6Hex)
	enc, _ := NewEncapsulator(EncapConfig{Nonces: fixedNonces(0xabcdef)})
	buf := inBuf(inner, 0)
	r := enc.Encap(buf, Headroom, len(inner), Tunnel{Dst: netip.MustParseAddr("192.0.2.7"), Nonce: 0x5a5a5a, EchoNonceRequest: true})
	if got, want := buf[r.Start:Headroom], unhex(t, "a0 5a 5a 5a 00 00 00 00"); !bytes.Equal(got, want) {
		t.Fatalf("LISP header %x, want %x", got, want)
	}
	h, err := wire.ParseDataHeader(buf[r.Start:])
	if err != nil || !h.N || !h.E || h.Nonce != 0x5a5a5a {
		t.Fatalf("header %+v err %v", h, err)
	}
}

func TestEncapRandomNonces(t *testing.T) {
	inner := unhex(t, inner4Hex)
	enc, _ := NewEncapsulator(EncapConfig{})
	seen := map[uint32]bool{}
	for range 64 {
		buf := inBuf(inner, 0)
		r := enc.Encap(buf, Headroom, len(inner), Tunnel{Dst: netip.MustParseAddr("192.0.2.7")})
		h, err := wire.ParseDataHeader(buf[r.Start:])
		if err != nil || !h.N || h.I {
			t.Fatalf("header %+v err %v", h, err)
		}
		seen[h.Nonce] = true
	}
	if len(seen) < 60 {
		t.Fatalf("only %d distinct nonces in 64 packets", len(seen))
	}
}

func TestEncapDrops(t *testing.T) {
	inner := unhex(t, inner4Hex)
	dst := netip.MustParseAddr("192.0.2.2")
	tests := []struct {
		name   string
		pkt    []byte
		off    int
		tunnel Tunnel
		cfg    EncapConfig
		want   Reason
	}{
		{"empty", nil, Headroom, Tunnel{Dst: dst}, EncapConfig{}, DropBadInner},
		{"version 5", append([]byte{0x55}, inner[1:]...), Headroom, Tunnel{Dst: dst}, EncapConfig{}, DropBadInner},
		{"ihl 4", append([]byte{0x44}, inner[1:]...), Headroom, Tunnel{Dst: dst}, EncapConfig{}, DropBadInner},
		{"total length beyond packet", inner[:30], Headroom, Tunnel{Dst: dst}, EncapConfig{}, DropBadInner},
		{"short IPv6", unhex(t, inner6Hex)[:39], Headroom, Tunnel{Dst: dst}, EncapConfig{}, DropBadInner},
		{"ttl 0", func() []byte { p := bytes.Clone(inner); p[8] = 0; return p }(), Headroom, Tunnel{Dst: dst}, EncapConfig{}, DropBadInner},
		{"no RLOC", inner, Headroom, Tunnel{}, EncapConfig{}, DropBadTunnel},
		{"iid over 24 bits", inner, Headroom, Tunnel{Dst: dst, InstanceID: 1 << 24}, EncapConfig{}, DropBadTunnel},
		{"tunnel MTU too small", inner, Headroom, Tunnel{Dst: dst, PathMTU: 100}, EncapConfig{}, DropBadTunnel},
		{"raw without source", inner, Headroom, Tunnel{Dst: dst}, EncapConfig{OuterHeaders: true}, DropBadTunnel},
		{"raw family mismatch", inner, Headroom, Tunnel{Src: netip.MustParseAddr("2001:db8::1"), Dst: dst}, EncapConfig{OuterHeaders: true}, DropBadTunnel},
		{"no headroom", inner, 4, Tunnel{Dst: dst}, EncapConfig{}, DropNoHeadroom},
		{"no headroom raw", inner, 20, Tunnel{Src: netip.MustParseAddr("192.0.2.1"), Dst: dst}, EncapConfig{OuterHeaders: true}, DropNoHeadroom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Nonces = fixedNonces(1)
			enc, err := NewEncapsulator(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, tc.off+len(tc.pkt))
			copy(buf[tc.off:], tc.pkt)
			orig := bytes.Clone(buf)
			r := enc.Encap(buf, tc.off, len(tc.pkt), tc.tunnel)
			if r.Verdict != VerdictDrop || r.Reason != tc.want {
				t.Fatalf("got %v/%v, want drop %v", r.Verdict, r.Reason, tc.want)
			}
			if s := enc.Stats(); s.Drops[tc.want] != 1 || s.Packets != 0 {
				t.Fatalf("stats %+v", s)
			}
			if !bytes.Equal(buf, orig) {
				t.Fatal("a dropped packet's buffer was modified")
			}
		})
	}
	// Out-of-range arguments never panic.
	enc, _ := NewEncapsulator(EncapConfig{})
	for _, a := range [][2]int{{-1, 10}, {0, -1}, {100, 10}, {Headroom, 1 << 20}} {
		if r := enc.Encap(make([]byte, 80), a[0], a[1], Tunnel{Dst: dst}); r.Verdict != VerdictDrop {
			t.Fatalf("Encap(off=%d, n=%d) = %+v", a[0], a[1], r)
		}
	}
}

func TestEncapConfigErrors(t *testing.T) {
	bad := []EncapConfig{
		{PathMTU: 100},
		{PathMTU: 70000},
		{ICMPSource4: netip.MustParseAddr("2001:db8::1")},
		{ICMPSource6: netip.MustParseAddr("192.0.2.1")},
	}
	for _, c := range bad {
		if _, err := NewEncapsulator(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewEncapsulator(%+v) error %v, want ErrInvalidConfig", c, err)
		}
	}
}

func TestOverhead(t *testing.T) {
	if Overhead(netip.MustParseAddr("192.0.2.1")) != 36 || Overhead(netip.MustParseAddr("::ffff:192.0.2.1")) != 36 ||
		Overhead(netip.MustParseAddr("2001:db8::1")) != 56 {
		t.Fatal("wrong overheads")
	}
}

func TestPrependOuterChecksumAndErrors(t *testing.T) {
	payload := unhex(t, "80 00 00 01 00 00 00 00")
	payload = append(payload, unhex(t, inner4Hex)...)
	for _, pair := range [][2]string{{"192.0.2.1", "192.0.2.2"}, {"2001:db8::1", "2001:db8::2"}} {
		src, dst := netip.MustParseAddr(pair[0]), netip.MustParseAddr(pair[1])
		buf := inBuf(payload, 0)
		s, err := PrependOuter(buf, Headroom, Headroom+len(payload), OuterHeader{Src: src, Dst: dst, SrcPort: 50000, DstPort: 4341, UDPChecksum: true})
		if err != nil {
			t.Fatal(err)
		}
		hl := 20
		if src.Is6() {
			hl = 40
		}
		seg := buf[s+hl : Headroom+len(payload)]
		if c := refChecksum(refPseudo(src, dst, 17, len(seg)), seg); c != 0 {
			t.Fatalf("%v: UDP checksum does not verify (%#04x)", pair, c)
		}
		oh, off, err := ParseOuter(buf[s : Headroom+len(payload)])
		if err != nil || !oh.UDPChecksum || off != hl+8 || oh.TTL != 64 {
			t.Fatalf("ParseOuter %+v %d %v", oh, off, err)
		}
		// A flipped payload bit fails the checksum.
		buf[Headroom+3] ^= 1
		if _, _, err := ParseOuter(buf[s : Headroom+len(payload)]); !errors.Is(err, ErrBadPacket) {
			t.Fatalf("corrupted packet: err %v", err)
		}
	}
	buf := make([]byte, 100)
	if _, err := PrependOuter(buf, 10, 50, OuterHeader{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2")}); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("no headroom: %v", err)
	}
	if _, err := PrependOuter(buf, 60, 80, OuterHeader{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("2001:db8::2")}); !errors.Is(err, ErrAddressFamily) {
		t.Fatalf("mixed families: %v", err)
	}
	for _, bad := range []string{"", "45", inner4Hex} { // inner4 is UDP but its UDP length is 12 of 12: parse ok, so corrupt below
		b := unhex(t, bad)
		if bad == inner4Hex {
			b[25] = 99 // UDP length beyond the packet
		}
		if _, _, err := ParseOuter(b); !errors.Is(err, ErrBadPacket) {
			t.Fatalf("ParseOuter(%x) err %v", b, err)
		}
	}
}

func TestEncapLocatorStatusBits(t *testing.T) {
	inner := unhex(t, inner4Hex)
	enc, _ := NewEncapsulator(EncapConfig{Nonces: fixedNonces(0xabcdef)})
	dst := netip.MustParseAddr("192.0.2.7")
	for _, tc := range []struct {
		name string
		t    Tunnel
		want string
	}{
		// L clear: the bits are not sent even if set.
		{"no L", Tunnel{Dst: dst, LSB: 0x5}, "80 ab cd ef 00 00 00 00"},
		{"L, 32 bits", Tunnel{Dst: dst, L: true, LSB: 0x80000005}, "c0 ab cd ef 80 00 00 05"},
		{"L, none up", Tunnel{Dst: dst, L: true}, "c0 ab cd ef 00 00 00 00"},
		// With the I bit only the low 8 bits fit.
		{"L and I", Tunnel{Dst: dst, L: true, LSB: 0x1fd, InstanceID: 0x123456}, "c8 ab cd ef 12 34 56 fd"},
		{"I, no L", Tunnel{Dst: dst, LSB: 0x3, InstanceID: 7}, "88 ab cd ef 00 00 07 00"},
	} {
		buf := inBuf(inner, 0)
		r := enc.Encap(buf, Headroom, len(inner), tc.t)
		if r.Verdict != VerdictSend {
			t.Fatalf("%s: %+v", tc.name, r)
		}
		if got, want := buf[r.Start:Headroom], unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("%s: LISP header %x, want %x", tc.name, got, want)
		}
		h, err := wire.ParseDataHeader(buf[r.Start:])
		if err != nil || h.L != tc.t.L {
			t.Errorf("%s: header %+v err %v", tc.name, h, err)
		}
	}
}
