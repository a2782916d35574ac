package wire

import (
	"errors"
	"net/netip"
	"testing"
)

// addressGoldens are addresses written by hand from RFC 8060 and the AFI
// registry.
func addressGoldens(t testing.TB) []struct {
	name string
	wire []byte
	want Address
	str  string
} {
	return []struct {
		name string
		wire []byte
		want Address
		str  string
	}{
		{"none", hx(t, "00 00"), // AFI = 0
			Address{}, "no-address"},
		{"ipv4", hx(t, "00 01 c0 00 02 01"), // AFI = 1, 192.0.2.1
			ipa("192.0.2.1"), "192.0.2.1"},
		{"ipv6", hx(t, "00 02 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01"), // AFI = 2, 2001:db8::1
			ipa("2001:db8::1"), "2001:db8::1"},
		{"distinguished-name", hx(t,
			"00 11",             // AFI = 17
			"73 69 74 65 31 00", // "site1" NUL
		), Address{AFI: AFIDistinguishedName, Raw: []byte("site1")}, `"site1"`},
		{"empty-distinguished-name", hx(t, "00 11 00"), // AFI = 17, NUL
			Address{AFI: AFIDistinguishedName}, `""`},
		{"mac", hx(t, "40 05 00 11 22 33 44 55"), // AFI = 16389, 00:11:22:33:44:55
			Address{AFI: AFIMAC, Raw: []byte{0, 0x11, 0x22, 0x33, 0x44, 0x55}}, "00:11:22:33:44:55"},
		{"iid-ipv4", hx(t,
			"40 03",             // AFI = 16387
			"00 00 02 00 00 0a", // Rsvd1=0 Flags=0 Type=2 IID mask-len=0 Length=10
			"00 00 03 e8",       // Instance ID = 1000
			"00 01 0a 00 00 01", // AFI = 1, 10.0.0.1
		), IIDAddr(1000, ip("10.0.0.1")), "[1000]10.0.0.1"},
		{"iid-wrapping-afi-list", hx(t,
			"40 03",             // AFI = 16387
			"00 00 02 18 00 18", // Rsvd1=0 Flags=0 Type=2 IID mask-len=24 Length=24
			"00 00 00 64",       // Instance ID = 100
			"40 03",             // AFI = 16387
			"00 00 01 00 00 0c", // Rsvd1=0 Flags=0 Type=1 (AFI List) Rsvd2=0 Length=12
			"00 01 0a 00 00 01", // AFI = 1, 10.0.0.1
			"00 01 0a 00 00 02", // AFI = 1, 10.0.0.2
		), Address{AFI: AFILCAF, LCAFType: LCAFInstanceID, InstanceID: 100, IIDMaskLen: 24,
			Inner: &Address{AFI: AFILCAF, LCAFType: LCAFAFIList, List: []Address{ipa("10.0.0.1"), ipa("10.0.0.2")}}},
			"[100/24](10.0.0.1, 10.0.0.2)"},
		{"afi-list-with-dn-and-mac", hx(t,
			"40 03",                   // AFI = 16387
			"00 00 01 00 00 0e",       // Type=1 (AFI List) Length=14
			"00 11 78 00",             // AFI = 17, "x" NUL
			"40 05 aa bb cc dd ee ff", // AFI = 16389, aa:bb:cc:dd:ee:ff
			"00 00",                   // AFI = 0
		), Address{AFI: AFILCAF, LCAFType: LCAFAFIList, List: []Address{
			{AFI: AFIDistinguishedName, Raw: []byte("x")},
			{AFI: AFIMAC, Raw: []byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}},
			{},
		}}, `("x", aa:bb:cc:dd:ee:ff, no-address)`},
		{"unknown-lcaf-json", hx(t,
			"40 03",             // AFI = 16387
			"11 80 0e 22 00 05", // Rsvd1=0x11 Flags=0x80 Type=14 (JSON) Rsvd2=0x22 Length=5
			"de ad be ef 01",    // opaque body
		), Address{AFI: AFILCAF, LCAFRsvd1: 0x11, LCAFFlags: 0x80, LCAFType: LCAFJSON, LCAFRsvd2: 0x22,
			Raw: []byte{0xde, 0xad, 0xbe, 0xef, 0x01}}, "lcaf(json, 5 bytes)"},
		{"unassigned-lcaf-type-empty", hx(t,
			"40 03",             // AFI = 16387
			"00 00 c8 00 00 00", // Type=200 (unassigned) Length=0
		), Address{AFI: AFILCAF, LCAFType: 200}, "lcaf(type-200, 0 bytes)"},
	}
}

func TestAddressGolden(t *testing.T) {
	for _, g := range addressGoldens(t) {
		t.Run(g.name, func(t *testing.T) {
			a, n, err := ParseAddress(append(g.wire, 0xff, 0xff)) // followed by other bytes
			if err != nil {
				t.Fatal(err)
			}
			if n != len(g.wire) {
				t.Fatalf("consumed %d, want %d", n, len(g.wire))
			}
			requireEqual(t, a, g.want)
			if !a.Equal(g.want) {
				t.Fatal("Equal")
			}
			if g.want.Len() != len(g.wire) {
				t.Fatalf("Len() = %d, want %d", g.want.Len(), len(g.wire))
			}
			out, err := g.want.AppendBinary([]byte{7})
			if err != nil {
				t.Fatal(err)
			}
			requireBytes(t, out, append([]byte{7}, g.wire...))
			if a.String() != g.str {
				t.Fatalf("String() = %q, want %q", a.String(), g.str)
			}
		})
	}
}

func TestAddressErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		wire []byte
		err  error
	}{
		{"empty", nil, ErrTruncated},
		{"short-afi", hx(t, "00"), ErrTruncated},
		{"short-ipv4", hx(t, "00 01 0a 00 00"), ErrTruncated},
		{"short-ipv6", hx(t, "00 02 20 01"), ErrTruncated},
		{"short-mac", hx(t, "40 05 00 11"), ErrTruncated},
		{"dn-without-nul", hx(t, "00 11 61 62"), ErrTruncated},
		{"unknown-afi", hx(t, "00 03 00 00 00 00"), ErrBadAFI},
		{"short-lcaf-header", hx(t, "40 03 00 00 02"), ErrTruncated},
		{"lcaf-body-past-end", hx(t, "40 03 00 00 0e 00 00 05 01 02"), ErrTruncated},
		{"iid-too-short", hx(t, "40 03 00 00 02 00 00 04 00 00 00 01"), ErrBadLCAF},
		{"iid-length-too-small", hx(t, "40 03 00 00 02 00 00 08 00 00 00 01 00 01 0a 00"), ErrBadLCAF},
		{"iid-length-too-big", hx(t, "40 03 00 00 02 00 00 0b 00 00 00 01 00 01 0a 00 00 01 ff"), ErrBadLCAF},
		{"afi-list-bad-item", hx(t, "40 03 00 00 01 00 00 03 00 01 0a"), ErrBadLCAF},
		{"afi-list-unknown-afi", hx(t, "40 03 00 00 01 00 00 02 12 34"), ErrBadAFI},
	} {
		_, _, err := ParseAddress(c.wire)
		if !errors.Is(err, c.err) {
			t.Fatalf("%s: err = %v, want %v", c.name, err, c.err)
		}
	}
	var ae *AFIError
	if _, _, err := ParseAddress(hx(t, "00 03")); !errors.As(err, &ae) || ae.AFI != 3 || ErrorReason(err) != "bad_afi" {
		t.Fatalf("AFIError: %v", err)
	}
}

func TestAddressEncodeErrors(t *testing.T) {
	for _, a := range []Address{
		{AFI: AFIIPv4, IP: ip("2001:db8::1")},
		{AFI: AFIIPv4},
		{AFI: AFIIPv6, IP: ip("10.0.0.1")},
		{AFI: AFIIPv6, IP: ip("fe80::1%eth0")},
		{AFI: AFIMAC, Raw: []byte{1, 2, 3}},
		{AFI: AFIDistinguishedName, Raw: []byte("a\x00b")},
		{AFI: AFINone, IP: ip("10.0.0.1")},
		{AFI: 3},
		{AFI: AFILCAF, LCAFType: LCAFInstanceID},
		{AFI: AFILCAF, LCAFType: LCAFAFIList, List: []Address{{AFI: 99}}},
		{AFI: AFILCAF, LCAFType: LCAFJSON, Raw: make([]byte, 0x10000)},
	} {
		out, err := a.AppendBinary([]byte{1})
		if err == nil || len(out) != 1 {
			t.Fatalf("%+v: out=%x err=%v", a, out, err)
		}
	}
}

// nest wraps a in n Instance-ID LCAFs.
func nest(a Address, n int) Address {
	for i := 0; i < n; i++ {
		a = iidAddr(uint32(i), a)
	}
	return a
}

func TestAddressDepthLimit(t *testing.T) {
	ok := nest(ipa("10.0.0.1"), MaxAddressDepth)
	b, err := ok.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := ParseAddress(b)
	if err != nil {
		t.Fatalf("depth %d: %v", MaxAddressDepth, err)
	}
	requireEqual(t, got, ok)

	deep := nest(ipa("10.0.0.1"), MaxAddressDepth+1)
	if _, err := deep.AppendBinary(nil); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("encode too deep: %v", err)
	}
	// Build the too-deep encoding by hand: one more IID LCAF around b.
	hdr := hx(t, "40 03 00 00 02 00")
	wrapped := append(append(hdr, byte((len(b)+4)>>8), byte(len(b)+4)), 0, 0, 0, 9)
	wrapped = append(wrapped, b...)
	if _, _, err := ParseAddress(wrapped); !errors.Is(err, ErrTooDeep) || ErrorReason(err) != "too_deep" {
		t.Fatalf("parse too deep: %v", err)
	}
	// A pathological input nesting AFI-Lists 10000 deep is refused quickly.
	var p []byte
	for i := 0; i < 10000; i++ {
		p = append(p, 0x40, 0x03, 0, 0, 1, 0, 0xff, 0xff)
	}
	if _, _, err := ParseAddress(p); err == nil {
		t.Fatal("deep AFI-List parsed")
	}
}

func TestInstanceIP(t *testing.T) {
	for _, c := range []struct {
		a   Address
		iid uint32
		ip  netip.Addr
		ok  bool
	}{
		{ipa("10.0.0.1"), 0, ip("10.0.0.1"), true},
		{ipa("2001:db8::1"), 0, ip("2001:db8::1"), true},
		{IIDAddr(77, ip("10.0.0.1")), 77, ip("10.0.0.1"), true},
		{IIDAddr(5, ip("2001:db8::")), 5, ip("2001:db8::"), true},
		{Address{}, 0, netip.Addr{}, false},
		{Address{AFI: AFIMAC, Raw: make([]byte, 6)}, 0, netip.Addr{}, false},
		{iidAddr(3, Address{AFI: AFIMAC, Raw: make([]byte, 6)}), 0, netip.Addr{}, false},
		{Address{AFI: AFILCAF, LCAFType: LCAFAFIList, List: []Address{ipa("10.0.0.1")}}, 0, netip.Addr{}, false},
	} {
		iid, got, ok := c.a.InstanceIP()
		if iid != c.iid || got != c.ip || ok != c.ok {
			t.Fatalf("%v: got (%d, %v, %v)", c.a, iid, got, ok)
		}
	}
	if AddrFrom(netip.Addr{}).AFI != AFINone || AddrFrom(ip("::ffff:10.0.0.1")).AFI != AFIIPv6 {
		t.Fatal("AddrFrom")
	}
}

func TestEIDRecordPrefix(t *testing.T) {
	r := NewEIDRecord(0, pfx("10.1.2.3/24"))
	requireEqual(t, r, EIDRecord{MaskLen: 24, EID: ipa("10.1.2.0")})
	iid, p, ok := r.Prefix()
	if iid != 0 || p != pfx("10.1.2.0/24") || !ok {
		t.Fatalf("Prefix = %d %v %v", iid, p, ok)
	}
	r = NewEIDRecord(1000, pfx("2001:db8:1::/48"))
	requireEqual(t, r, EIDRecord{MaskLen: 48, EID: IIDAddr(1000, ip("2001:db8:1::"))})
	iid, p, ok = r.Prefix()
	if iid != 1000 || p != pfx("2001:db8:1::/48") || !ok {
		t.Fatalf("Prefix = %d %v %v", iid, p, ok)
	}
	// Host bits on the wire are masked off.
	r = EIDRecord{MaskLen: 8, EID: ipa("10.9.9.9")}
	if _, p, _ = r.Prefix(); p != pfx("10.0.0.0/8") {
		t.Fatal(p)
	}
	for _, bad := range []EIDRecord{
		{MaskLen: 33, EID: ipa("10.0.0.0")},
		{MaskLen: 0, EID: Address{AFI: AFIMAC, Raw: make([]byte, 6)}},
	} {
		if _, _, ok := bad.Prefix(); ok {
			t.Fatalf("%+v: ok", bad)
		}
	}
	q := NewRequestRecord(9, pfx("192.0.2.0/24"))
	iid, p, ok = q.Prefix()
	if iid != 9 || p != pfx("192.0.2.0/24") || !ok {
		t.Fatalf("RequestRecord.Prefix = %d %v %v", iid, p, ok)
	}
	requireEqual(t, NewEIDRecord(0, netip.Prefix{}), EIDRecord{})
}

func TestStringers(t *testing.T) {
	for got, want := range map[string]string{
		TypeMapRequest.String():   "Map-Request",
		TypeMapNotifyAck.String(): "Map-Notify-Ack",
		TypeECM.String():          "Encapsulated-Control-Message",
		MessageType(12).String():  "Type-12",
		DropAuthFailure.String():  "Drop/Auth-Failure",
		Action(7).String():        "ACT-7",
		AFILCAF.String():          "lcaf",
		AFI(99).String():          "afi(99)",
		LCAFInstanceID.String():   "instance-id",
		LCAFType(255).String():    "vendor-specific",
		XTRID{0xab, 1}.String():   "ab010000000000000000000000000000",
	} {
		if got != want {
			t.Fatalf("got %q want %q", got, want)
		}
	}
}
