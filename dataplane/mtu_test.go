package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func payloadOf(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

func TestTooBigICMPv4(t *testing.T) {
	inner := udp4Packet("10.1.1.1", "10.2.2.2", 1000, 2000, 0, 64, true, payloadOf(1400-28))
	for _, icmpSrc := range []netip.Addr{{}, netip.MustParseAddr("10.1.1.254")} {
		enc, _ := NewEncapsulator(EncapConfig{PathMTU: 1400, ICMPSource4: icmpSrc})
		buf := inBuf(inner, 0)
		r := enc.Encap(buf, Headroom, len(inner), Tunnel{Dst: netip.MustParseAddr("192.0.2.2")})
		if r.Verdict != VerdictReply || r.MTU != 1364 {
			t.Fatalf("verdict %v reason %v mtu %d", r.Verdict, r.Reason, r.MTU)
		}
		got := buf[r.Start:r.End]
		if len(got) != 576 {
			t.Fatalf("ICMP error is %d bytes, want 576", len(got))
		}
		wantSrc := "0a 02 02 02"
		if icmpSrc.IsValid() {
			wantSrc = "0a 01 01 fe"
		}
		// IPv4 header: TOS 0xc0, length 576, TTL 64, protocol 1.
		wantHdr := unhex(t, "45 c0 02 40 | 00 01 00 00 | 40 01 00 00 |"+wantSrc+"| 0a 01 01 01")
		gotHdr := bytes.Clone(got[:20])
		gotHdr[10], gotHdr[11] = 0, 0
		if !bytes.Equal(gotHdr, wantHdr) {
			t.Fatalf("IP header %x, want %x (checksum zeroed)", gotHdr, wantHdr)
		}
		if refChecksum(got[:20]) != 0 {
			t.Fatal("IPv4 header checksum does not verify")
		}
		icmp := got[20:]
		// type 3 code 4, unused 0, next-hop MTU 1364 = 0x0554
		if !bytes.Equal(icmp[:2], []byte{3, 4}) || !bytes.Equal(icmp[4:8], unhex(t, "00 00 05 54")) {
			t.Fatalf("ICMP header %x", icmp[:8])
		}
		if refChecksum(icmp) != 0 {
			t.Fatal("ICMP checksum does not verify")
		}
		if !bytes.Equal(icmp[8:], inner[:548]) {
			t.Fatal("quoted datagram differs from the original")
		}
		if r.Start-OutOffset < 0 {
			t.Fatal("no room for OutOffset in front of the reply")
		}
		if s := enc.Stats(); s.ICMPFragNeeded != 1 || s.Packets != 0 {
			t.Fatalf("stats %+v", s)
		}
	}
}

func TestTooBigICMPv6(t *testing.T) {
	inner := udp6Packet("2001:db8:1::1", "2001:db8:2::2", 1000, 2000, 0, 64, payloadOf(1400-48))
	enc, _ := NewEncapsulator(EncapConfig{PathMTU: 1400})
	buf := inBuf(inner, 0)
	r := enc.Encap(buf, Headroom, len(inner), Tunnel{Dst: netip.MustParseAddr("2001:db8:ff::2")})
	if r.Verdict != VerdictReply || r.MTU != 1344 {
		t.Fatalf("verdict %v reason %v mtu %d", r.Verdict, r.Reason, r.MTU)
	}
	got := buf[r.Start:r.End]
	if len(got) != 1280 {
		t.Fatalf("ICMPv6 error is %d bytes, want 1280", len(got))
	}
	wantHdr := unhex(t, `60 00 00 00 | 04 d8 3a 40
		20 01 0d b8 00 02 00 00 00 00 00 00 00 00 00 02
		20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 01`)
	if !bytes.Equal(got[:40], wantHdr) {
		t.Fatalf("IPv6 header %x\nwant %x", got[:40], wantHdr)
	}
	icmp := got[40:]
	// type 2 code 0, MTU 1344 = 0x540
	if !bytes.Equal(icmp[:2], []byte{2, 0}) || !bytes.Equal(icmp[4:8], unhex(t, "00 00 05 40")) {
		t.Fatalf("ICMPv6 header %x", icmp[:8])
	}
	src, dst := netip.MustParseAddr("2001:db8:2::2"), netip.MustParseAddr("2001:db8:1::1")
	if refChecksum(refPseudo(src, dst, 58, len(icmp)), icmp) != 0 {
		t.Fatal("ICMPv6 checksum does not verify")
	}
	if !bytes.Equal(icmp[8:], inner[:1232]) {
		t.Fatal("quoted packet differs")
	}
	if s := enc.Stats(); s.ICMPv6PacketTooBig != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// IPv6 inner over IPv4 RLOCs: the smaller IPv4 overhead counts.
func TestTooBigUsesOuterFamily(t *testing.T) {
	enc, _ := NewEncapsulator(EncapConfig{PathMTU: 1400})
	fits := udp6Packet("2001:db8:1::1", "2001:db8:2::2", 1, 2, 0, 64, payloadOf(1364-48))
	r := enc.Encap(inBuf(fits, 0), Headroom, len(fits), Tunnel{Dst: netip.MustParseAddr("192.0.2.2")})
	if r.Verdict != VerdictSend {
		t.Fatalf("1364-byte packet over IPv4 RLOCs with MTU 1400: %v %v", r.Verdict, r.Reason)
	}
	r = enc.Encap(inBuf(fits, 0), Headroom, len(fits), Tunnel{Dst: netip.MustParseAddr("2001:db8::2")})
	if r.Verdict != VerdictReply || r.MTU != 1344 {
		t.Fatalf("1364-byte packet over IPv6 RLOCs with MTU 1400: %v %v", r.Verdict, r.Reason)
	}
	// A per-tunnel path MTU overrides the default.
	r = enc.Encap(inBuf(fits, 0), Headroom, len(fits), Tunnel{Dst: netip.MustParseAddr("2001:db8::2"), PathMTU: 1420})
	if r.Verdict != VerdictSend {
		t.Fatalf("tunnel MTU 1420: %v %v", r.Verdict, r.Reason)
	}
}

func TestTooBigNoICMP(t *testing.T) {
	big := payloadOf(1500)
	icmpErr4 := func() []byte {
		p := udp4Packet("10.1.1.1", "10.2.2.2", 0, 0, 0, 64, true, big)
		p[9] = 1
		p[20], p[21] = 3, 1 // destination unreachable: an error
		binary.BigEndian.PutUint16(p[10:], 0)
		binary.BigEndian.PutUint16(p[10:], refChecksum(p[:20]))
		return p
	}()
	echo4 := bytes.Clone(icmpErr4)
	echo4[20], echo4[21] = 8, 0
	icmpErr6 := udp6Packet("2001:db8:1::1", "2001:db8:2::2", 0, 0, 0, 64, big)
	icmpErr6[6] = 58
	icmpErr6[40] = 1 // destination unreachable
	echo6 := bytes.Clone(icmpErr6)
	echo6[40] = 128
	nonFirst := udp4Packet("10.1.1.1", "10.2.2.2", 0, 0, 0, 64, true, big)
	nonFirst[7] = 10
	binary.BigEndian.PutUint16(nonFirst[10:], 0)
	binary.BigEndian.PutUint16(nonFirst[10:], refChecksum(nonFirst[:20]))
	mcastSrc := udp6Packet("ff02::1", "2001:db8:2::2", 0, 0, 0, 64, big)
	unspec := udp4Packet("0.0.0.0", "10.2.2.2", 0, 0, 0, 64, true, big)
	frag6 := func(off uint16, next uint8) []byte {
		p := udp6Packet("2001:db8:1::1", "2001:db8:2::2", 0, 0, 0, 64, big)
		fh := []byte{next, 0, byte(off >> 8), byte(off) | 1, 0, 0, 0, 9}
		q := append(append(bytes.Clone(p[:40]), fh...), p[40:]...)
		q[6] = 44
		binary.BigEndian.PutUint16(q[4:], uint16(len(q)-40))
		return q
	}
	tests := []struct {
		name string
		pkt  []byte
		icmp bool
	}{
		{"ICMPv4 error", icmpErr4, false},
		{"ICMPv4 echo", echo4, true},
		{"ICMPv6 error", icmpErr6, false},
		{"ICMPv6 echo", echo6, true},
		{"IPv4 non-first fragment", nonFirst, false},
		{"multicast source", mcastSrc, false},
		{"unspecified source", unspec, false},
		{"IPv6 first fragment of UDP", frag6(0, 17), true},
		{"IPv6 later fragment", frag6(1480, 17), false},
		{"IPv6 first fragment of ICMPv6 error", func() []byte { p := frag6(0, 58); p[48] = 1; return p }(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc, _ := NewEncapsulator(EncapConfig{})
			r := enc.Encap(inBuf(tc.pkt, 0), Headroom, len(tc.pkt), Tunnel{Dst: netip.MustParseAddr("2001:db8::2")})
			if tc.icmp && r.Verdict != VerdictReply {
				t.Fatalf("want an ICMP error, got %v %v", r.Verdict, r.Reason)
			}
			if !tc.icmp && (r.Verdict != VerdictDrop || r.Reason != DropTooBig) {
				t.Fatalf("want drop too_big, got %v %v", r.Verdict, r.Reason)
			}
		})
	}
}

func TestICMPRateLimit(t *testing.T) {
	inner := udp4Packet("10.1.1.1", "10.2.2.2", 1, 2, 0, 64, true, payloadOf(1500))
	enc, _ := NewEncapsulator(EncapConfig{ICMPRate: 3})
	var replies int
	for range 10 {
		if r := enc.Encap(inBuf(inner, 0), Headroom, len(inner), Tunnel{Dst: netip.MustParseAddr("192.0.2.2")}); r.Verdict == VerdictReply {
			replies++
		}
	}
	s := enc.Stats()
	if replies < 3 || replies > 4 || s.ICMPRateLimited != uint64(10-replies) || s.Drops[DropTooBig] != uint64(10-replies) {
		t.Fatalf("replies %d, stats %+v", replies, s)
	}
	off, _ := NewEncapsulator(EncapConfig{ICMPRate: -1})
	if r := off.Encap(inBuf(inner, 0), Headroom, len(inner), Tunnel{Dst: netip.MustParseAddr("192.0.2.2")}); r.Verdict != VerdictDrop || r.Reason != DropTooBig {
		t.Fatalf("ICMP disabled: %+v", r)
	}
}

// reassemble puts IPv4 fragments back together (test reference).
func reassemble(t *testing.T, frags [][]byte) (hdr, data []byte) {
	t.Helper()
	total := -1
	got := map[int][]byte{}
	var id uint16
	for i, f := range frags {
		if refChecksum(f[:int(f[0]&15)*4]) != 0 {
			t.Fatalf("fragment %d: bad header checksum", i)
		}
		hl := int(f[0]&15) * 4
		if int(binary.BigEndian.Uint16(f[2:])) != len(f) {
			t.Fatalf("fragment %d: total length %d, have %d", i, binary.BigEndian.Uint16(f[2:]), len(f))
		}
		fo := binary.BigEndian.Uint16(f[6:])
		off := int(fo&0x1fff) * 8
		if i == 0 {
			hdr, id = f[:hl], binary.BigEndian.Uint16(f[4:])
		} else if binary.BigEndian.Uint16(f[4:]) != id {
			t.Fatalf("fragment %d: id differs", i)
		}
		if fo&0x2000 == 0 {
			total = off + len(f) - hl
		} else if (len(f)-hl)%8 != 0 {
			t.Fatalf("fragment %d: non-final fragment with %d data bytes", i, len(f)-hl)
		}
		got[off] = f[hl:]
	}
	if total < 0 {
		t.Fatal("no last fragment")
	}
	data = make([]byte, 0, total)
	for len(data) < total {
		d, ok := got[len(data)]
		if !ok {
			t.Fatalf("hole at %d", len(data))
		}
		data = append(data, d...)
	}
	return hdr, data
}

func TestFragmentIPv4BeforeEncap(t *testing.T) {
	inner := udp4Packet("10.1.1.1", "10.2.2.2", 1000, 2000, 0x10, 64, false, payloadOf(2000))
	enc, _ := NewEncapsulator(EncapConfig{Nonces: fixedNonces(7)})
	b, _ := NewBatch(4, DefaultBufferSize)
	copy(b.Bufs[0][Headroom:], inner)
	b.Sizes[0] = len(inner)
	rloc := netip.MustParseAddr("192.0.2.2")
	enc.EncapBatch(b, 1, func([]byte, uint32) (Tunnel, bool) { return Tunnel{Dst: rloc}, true })
	if len(b.Out) != 2 || len(b.Reply) != 0 {
		t.Fatalf("%d packets out, %d replies; want 2 fragments", len(b.Out), len(b.Reply))
	}
	var frags [][]byte
	for i, o := range b.Out {
		p := o[OutOffset:]
		if len(p) > 1500-28 {
			t.Fatalf("fragment %d: %d bytes of UDP payload exceed the 1500-byte path", i, len(p))
		}
		if !bytes.Equal(p[:8], unhex(t, "80 00 00 07 00 00 00 00")) {
			t.Fatalf("fragment %d: LISP header %x", i, p[:8])
		}
		if b.OutMeta[i].Addr != netip.AddrPortFrom(rloc, 4341) || b.OutMeta[i].TOS != 0x10 {
			t.Fatalf("fragment %d meta %+v", i, b.OutMeta[i])
		}
		frags = append(frags, p[8:])
	}
	// "2 equal-sized fragments": 1008 and 1000 data bytes.
	if len(frags[0]) != 20+1008 || len(frags[1]) != 20+1000 {
		t.Fatalf("fragment sizes %d, %d", len(frags[0]), len(frags[1]))
	}
	_, data := reassemble(t, frags)
	if !bytes.Equal(data, inner[20:]) {
		t.Fatal("reassembled payload differs")
	}
	if s := enc.Stats(); s.Fragmented != 1 || s.Fragments != 2 || s.Packets != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFragmentIPv4Options(t *testing.T) {
	base := udp4Packet("10.1.1.1", "10.2.2.2", 1000, 2000, 0, 64, false, payloadOf(3000))
	opts := unhex(t, "94 04 00 00 | 07 07 04 00 00 00 00 | 00") // router alert (copied), record route, EOL
	p := append(append(bytes.Clone(base[:20]), opts...), base[20:]...)
	p[0] = 0x48
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[10:], 0)
	binary.BigEndian.PutUint16(p[10:], refChecksum(p[:32]))
	h, ok := parseIPHeader(p)
	if !ok {
		t.Fatal("test packet does not parse")
	}
	dst := [][]byte{make([]byte, 2000), make([]byte, 2000), make([]byte, 2000)}
	sizes := make([]int, 3)
	first, k, ok := fragmentIPv4(p, h, 1200, dst, 0, sizes)
	if !ok || k != 2 {
		t.Fatalf("ok %v, %d extra fragments", ok, k)
	}
	frags := [][]byte{p[:first]}
	for i := range k {
		f := dst[i][:sizes[i]]
		if f[0] != 0x46 || !bytes.Equal(f[20:24], unhex(t, "94 04 00 00")) {
			t.Fatalf("fragment %d header %x: want only the copied option", i+1, f[:24])
		}
		frags = append(frags, f)
	}
	for i, f := range frags {
		if len(f) > 1200 {
			t.Fatalf("fragment %d is %d bytes", i, len(f))
		}
	}
	hdr, data := reassemble(t, frags)
	if !bytes.Equal(hdr[20:32], opts) || !bytes.Equal(data, p[32:]) {
		t.Fatal("reassembly differs")
	}
	// Not enough buffers: refused, packet untouched.
	orig := bytes.Clone(p)
	h, _ = parseIPHeader(orig)
	cp := bytes.Clone(orig)
	if _, _, ok := fragmentIPv4(cp, h, 1200, dst[:1], 0, sizes); ok || !bytes.Equal(cp, orig) {
		t.Fatal("fragmentation with too few buffers must fail without touching the packet")
	}
}

func TestFragmentPlan(t *testing.T) {
	for _, tc := range []struct{ hl, data, max, per, count int }{
		{20, 2008, 1464, 1008, 2},
		{20, 1440, 1464, 1440, 1},
		{20, 1448, 1464, 728, 2},
		{20, 17, 28, 8, 3},
		{20, 100, 28, 8, 13},
		{60, 5000, 576, 504, 10},
	} {
		per, count, ok := ipv4FragmentPlan(tc.hl, tc.data, tc.max)
		if !ok || per != tc.per || count != tc.count {
			t.Errorf("plan(%d,%d,%d) = %d,%d,%v want %d,%d", tc.hl, tc.data, tc.max, per, count, ok, tc.per, tc.count)
		}
		if ok && ((count-1)*per >= tc.data || per > tc.max-tc.hl || per%8 != 0) {
			t.Errorf("plan(%d,%d,%d) violates its invariants", tc.hl, tc.data, tc.max)
		}
	}
	if _, _, ok := ipv4FragmentPlan(20, 100, 27); ok {
		t.Error("no room for 8 bytes must fail")
	}
}

func TestEncapBatchMixed(t *testing.T) {
	enc, _ := NewEncapsulator(EncapConfig{PathMTU: 1400, Nonces: fixedNonces(1)})
	b, _ := NewBatch(8, 2048)
	pkts := [][]byte{
		udp4Packet("10.1.1.1", "10.2.2.2", 1, 2, 0, 64, true, payloadOf(100)),      // send
		udp4Packet("10.1.1.1", "10.2.2.2", 1, 2, 0, 64, true, payloadOf(1500)),     // ICMP
		udp4Packet("10.1.1.1", "10.2.2.2", 1, 2, 0, 64, false, payloadOf(1500)),    // 2 fragments
		udp6Packet("2001:db8:1::1", "2001:db8:2::2", 1, 2, 0, 64, payloadOf(1500)), // ICMPv6
		udp4Packet("10.1.1.1", "10.9.9.9", 1, 2, 0, 64, true, payloadOf(10)),       // no route
		{0x45, 0, 0}, // bad
		nil,          // empty slot
		udp6Packet("2001:db8:1::1", "2001:db8:2::2", 1, 2, 0, 64, payloadOf(10)), // send
	}
	for i, p := range pkts {
		copy(b.Bufs[i][Headroom:], p)
		b.Sizes[i] = len(p)
	}
	lookup := func(inner []byte, hash uint32) (Tunnel, bool) {
		if hash != FlowHash(inner) {
			t.Errorf("lookup got hash %#x, FlowHash says %#x", hash, FlowHash(inner))
		}
		if dstAddr(inner, inner[0]>>4) == netip.MustParseAddr("10.9.9.9") {
			return Tunnel{}, false
		}
		return Tunnel{Dst: netip.MustParseAddr("2001:db8::2")}, true
	}
	enc.EncapBatch(b, len(pkts), lookup)
	if len(b.Out) != 4 || len(b.OutMeta) != 4 || len(b.Reply) != 2 {
		t.Fatalf("out %d meta %d reply %d", len(b.Out), len(b.OutMeta), len(b.Reply))
	}
	if !bytes.Equal(b.Out[0][OutOffset+8:], pkts[0]) || !bytes.Equal(b.Out[3][OutOffset+8:], pkts[7]) {
		t.Fatal("encapsulated packets are not framed at OutOffset")
	}
	if b.Reply[0][OutOffset+20] != 3 || b.Reply[1][OutOffset+40] != 2 {
		t.Fatal("replies are not the ICMP errors")
	}
	s := enc.Stats()
	if s.Packets != 4 || s.Fragmented != 1 || s.ICMPFragNeeded != 1 || s.ICMPv6PacketTooBig != 1 ||
		s.Drops[DropNoRoute] != 1 || s.Drops[DropBadInner] != 1 {
		t.Fatalf("stats %+v", s)
	}
	// The output lists are reset by the next read cycle.
	b.Reset()
	if len(b.Out)+len(b.Reply)+len(b.OutMeta) != 0 {
		t.Fatal("Reset left outputs")
	}
}

func TestEncapBatchOutOfSpares(t *testing.T) {
	enc, _ := NewEncapsulator(EncapConfig{})
	b, _ := NewBatch(2, DefaultBufferSize)
	// Each needs 6 fragments at the 576-byte tunnel MTU; the batch has 2 spares.
	for i := range 2 {
		p := udp4Packet("10.1.1.1", "10.2.2.2", 1, 2, 0, 64, false, payloadOf(3000))
		copy(b.Bufs[i][Headroom:], p)
		b.Sizes[i] = len(p)
	}
	enc.EncapBatch(b, 2, func([]byte, uint32) (Tunnel, bool) {
		return Tunnel{Dst: netip.MustParseAddr("192.0.2.2"), PathMTU: 576}, true
	})
	if s := enc.Stats(); s.Drops[DropNoBuffer] != 2 || len(b.Out) != 0 {
		t.Fatalf("stats %+v, out %d", s, len(b.Out))
	}
}
