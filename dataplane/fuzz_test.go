package dataplane

import (
	"bytes"
	"net/netip"
	"testing"
)

// fuzzEIDs are the ETR prefixes the fuzzer decapsulates for.
var fuzzEIDPrefixes = []EIDPrefix{
	{0, netip.MustParsePrefix("10.2.0.0/16")},
	{0, netip.MustParsePrefix("2001:db8:2::/48")},
	{7, netip.MustParsePrefix("0.0.0.0/0")},
	{7, netip.MustParsePrefix("::/0")},
}

// FuzzDecap feeds arbitrary UDP payloads and outer TOS/TTL to the
// Decapsulator. It must never panic or read outside the datagram; whatever
// it delivers must be a well-formed inner packet for one of the ETR's
// prefixes, and must survive encapsulation and decapsulation again
// unchanged. Seeds are in testdata/fuzz/FuzzDecap.
func FuzzDecap(f *testing.F) {
	eids, err := NewEIDSet(fuzzEIDPrefixes...)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte{0x80, 1, 2, 3, 0, 0, 0, 0}, udp4Packet("10.1.1.1", "10.2.2.2", 1, 2, 0, 64, false, []byte("x"))...), uint8(0), uint8(64))
	f.Fuzz(func(t *testing.T, pkt []byte, tos, ttl uint8) {
		dec := NewDecapsulator(eids)
		// The datagram sits at ConnOffset with bytes on both sides that
		// must not be touched.
		buf := make([]byte, ConnOffset+len(pkt)+16)
		for i := range buf {
			buf[i] = 0xa5
		}
		copy(buf[ConnOffset:], pkt)
		r := dec.Decap(buf, ConnOffset, len(pkt), Meta{TOS: tos, TTL: ttl})
		for i := range ConnOffset {
			if buf[i] != 0xa5 {
				t.Fatalf("byte %d before the datagram was written", i)
			}
		}
		for i := ConnOffset + len(pkt); i < len(buf); i++ {
			if buf[i] != 0xa5 {
				t.Fatalf("byte %d after the datagram was written", i)
			}
		}
		s := dec.Stats()
		if !r.Deliver {
			if r.Reason == ReasonNone || s.Drops[r.Reason] != 1 || s.Packets != 0 {
				t.Fatalf("drop without its counter: %+v %+v", r, s)
			}
			return
		}
		if r.Start != ConnOffset+8 || r.End < r.Start || r.End > ConnOffset+len(pkt) || s.Packets != 1 {
			t.Fatalf("delivered bounds %d..%d of a %d-byte datagram", r.Start, r.End, len(pkt))
		}
		inner := bytes.Clone(buf[r.Start:r.End])
		h, ok := parseIPHeader(inner)
		if !ok || h.length != len(inner) {
			t.Fatalf("delivered a malformed inner packet %x", inner)
		}
		if !eids.Contains(r.InstanceID, dstAddr(inner, h.version)) {
			t.Fatalf("delivered a packet for %v in instance %d", dstAddr(inner, h.version), r.InstanceID)
		}
		if ttl != 0 && h.ttl > ttl {
			t.Fatalf("inner TTL %d above outer %d", h.ttl, ttl)
		}
		if h.version == 4 && checksum(inner[:h.hdrLen]) != 0 {
			t.Fatal("delivered an IPv4 header with a bad checksum")
		}
		_ = FlowHash(inner)

		// Round trip: encapsulate again and decapsulate.
		enc, err := NewEncapsulator(EncapConfig{PathMTU: MaxPathMTU, OuterHeaders: true, ICMPRate: -1})
		if err != nil {
			t.Fatal(err)
		}
		src, dst := netip.MustParseAddr("2001:db8:ff::1"), netip.MustParseAddr("2001:db8:ff::2")
		b2 := inBuf(inner, 0)
		er := enc.Encap(b2, Headroom, len(inner), Tunnel{Src: src, Dst: dst, InstanceID: r.InstanceID})
		if er.Verdict != VerdictSend {
			if h.ttl == 0 && er.Reason == DropBadInner {
				return // TTL 0 is not forwarded
			}
			t.Fatalf("re-encapsulation: %v %v", er.Verdict, er.Reason)
		}
		oh, off, err := ParseOuter(b2[er.Start:er.End])
		if err != nil {
			t.Fatalf("ParseOuter of our own packet: %v", err)
		}
		dr := dec.Decap(b2, er.Start+off, er.End-er.Start-off, Meta{TOS: oh.TOS, TTL: oh.TTL})
		if !dr.Deliver || !bytes.Equal(b2[dr.Start:dr.End], inner) || dr.InstanceID != r.InstanceID {
			t.Fatalf("round trip: %+v", dr)
		}
	})
}

// FuzzEncap feeds arbitrary inner packets to the Encapsulator (including
// the ICMP and fragmentation paths) and ParseOuter: never a panic, never a
// write outside the buffer.
func FuzzEncap(f *testing.F) {
	f.Add(udp4Packet("10.1.1.1", "10.2.2.2", 1, 2, 0, 64, false, payloadOf(1500)), uint16(576), true)
	f.Add(udp6Packet("2001:db8:1::1", "2001:db8:2::2", 1, 2, 0, 64, payloadOf(700)), uint16(600), false)
	f.Fuzz(func(t *testing.T, pkt []byte, mtu uint16, v4 bool) {
		enc, err := NewEncapsulator(EncapConfig{Nonces: fixedNonces(1)})
		if err != nil {
			t.Fatal(err)
		}
		rloc := netip.MustParseAddr("2001:db8::2")
		if v4 {
			rloc = netip.MustParseAddr("192.0.2.2")
		}
		b, _ := NewBatch(2, Headroom+len(pkt)+64)
		copy(b.Bufs[0][Headroom:], pkt)
		b.Sizes[0] = len(pkt)
		enc.EncapBatch(b, 1, func(inner []byte, hash uint32) (Tunnel, bool) {
			if hash != FlowHash(inner) {
				t.Fatal("hash mismatch")
			}
			return Tunnel{Dst: rloc, PathMTU: int(mtu)}, true
		})
		for _, o := range append(b.Out, b.Reply...) {
			if len(o) < OutOffset {
				t.Fatal("output without OutOffset")
			}
		}
		_, _, _ = ParseOuter(pkt)
	})
}
