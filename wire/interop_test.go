package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// TestReservedBitsRoundTrip feeds messages written by hand with every
// reserved bit set and checks that they are kept and sent back unchanged.
func TestReservedBitsRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		wire []byte
		want Message
	}{
		{"map-request", hx(t,
			"10 2f 80 01",             // Type=1, flags 0, R=1 (bit 10), Rsvd=11111 (bits 12-16), L=0 D=0, IRC=0, Count=1
			"00 00 00 00 00 00 00 01", // Nonce
			"00 00",                   // Source-EID-AFI = 0
			"00 01 0a 00 00 01",       // ITR-RLOC 10.0.0.1
			"7f 20 00 01 0a 00 00 02", // Rec: N=0 Reserved=0x7f, mask-len=32, AFI=1 10.0.0.2
		), &MapRequest{Reserved: MapRequestReservedMask, Nonce: 1, ITRRLOCs: []Address{ipa("10.0.0.1")},
			Records: []RequestRecord{{Reserved: 0x7f, MaskLen: 32, EID: ipa("10.0.0.2")}}}},
		{"map-reply", hx(t,
			"21 ff ff 01",             // Type=2, P=0 E=0 S=0, Reserved all ones, Record Count=1
			"00 00 00 00 00 00 00 02", // Nonce
			"00 00 00 0a",             // Record TTL = 10
			"01 20 ff ff",             // Locator Count=1, mask-len=32, ACT=7 A=1 Reserved=0xfff
			"f0 00 00 01",             // Rsvd=0xf Map-Version=0, AFI=1
			"0a 00 00 02",             // 10.0.0.2
			"01 01 01 01",             // Priority, Weight, M Priority, M Weight = 1
			"ff f8 00 01",             // Unused Flags = 0x1fff, L=0 p=0 R=0, Loc-AFI=1
			"0a 00 00 03",             // 10.0.0.3
		), &MapReply{Reserved: MapReplyReservedMask, Nonce: 2, Records: []EIDRecord{{
			RecordTTL: 10, MaskLen: 32, Action: 7, Authoritative: true, Reserved: 0xfff, Rsvd: 0xf,
			EID: ipa("10.0.0.2"),
			Locators: []Locator{{Priority: 1, Weight: 1, MPriority: 1, MWeight: 1, UnusedFlags: 0x1fff,
				Address: ipa("10.0.0.3")}},
		}}}},
		{"map-register", hx(t,
			"31 ff e2 00",             // Type=3, P S I=0, Reserved bits 7-18 all ones, E T a=0, R=1, M=0, Count=0
			"00 00 00 00 00 00 00 03", // Nonce
			"00 00 00 00",             // Key ID, Algorithm ID, Authentication Data Length = 0
		), &MapRegister{Reserved: MapRegisterReservedMask, Nonce: 3}},
		{"map-notify", hx(t,
			"47 ff ff 00",             // Type=4, I=0, Reserved all ones, Count=0
			"00 00 00 00 00 00 00 04", // Nonce
			"00 00 00 00",             // no authentication
		), &MapNotify{Reserved: MapNotifyReservedMask, Nonce: 4}},
		{"lcaf-rsvd-and-flags", hx(t,
			"20 00 00 01",                   // Map-Reply, Record Count=1
			"00 00 00 00 00 00 00 05",       // Nonce
			"00 00 00 0a",                   // Record TTL = 10
			"00 20 00 00",                   // Locator Count=0, mask-len=32
			"00 00 40 03",                   // AFI = LCAF
			"ab cd 02 00 00 0a",             // Rsvd1=0xab Flags=0xcd Type=2 IID mask-len=0 Length=10
			"00 00 00 01 00 01 0a 00 00 02", // IID 1, 10.0.0.2
		), &MapReply{Nonce: 5, Records: []EIDRecord{{RecordTTL: 10, MaskLen: 32,
			EID: Address{AFI: AFILCAF, LCAFType: LCAFInstanceID, LCAFRsvd1: 0xab, LCAFFlags: 0xcd,
				InstanceID: 1, Inner: &Address{AFI: AFIIPv4, IP: ip("10.0.0.2")}}}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse(c.wire)
			if err != nil {
				t.Fatal(err)
			}
			requireEqual(t, m, c.want)
			out, err := m.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			requireBytes(t, out, c.wire)
		})
	}
}

func TestUnknownLCAFInMessage(t *testing.T) {
	// A Map-Reply whose locator is a Geo-Coordinates LCAF (type 5) and whose
	// EID is a vendor LCAF: both are kept opaque and the message
	// round-trips byte for byte.
	wire := hx(t,
		"20 00 00 01",                      // Map-Reply, Record Count=1
		"00 00 00 00 00 00 00 06",          // Nonce
		"00 00 00 3c",                      // Record TTL = 60
		"01 00 00 00",                      // Locator Count=1, mask-len=0
		"00 00 40 03",                      // AFI = LCAF
		"00 00 ff 00 00 05 00 00 09 01 02", // Vendor LCAF (255), Length=5: OUI 00:00:09, 01 02
		"01 64 ff 00",                      // Priority/Weight
		"00 01 40 03",                      // R=1, Loc-AFI = LCAF
		"00 00 05 00 00 18",                // Geo LCAF (5), Length=24
		"80 25 0b 14 00 7a 0c 06 16 00 00 00 00 00 00 00 00 00 00 01 c0 00 02 01", // opaque
	)
	m, err := Parse(wire)
	if err != nil {
		t.Fatal(err)
	}
	rec := m.(*MapReply).Records[0]
	if rec.EID.LCAFType != LCAFVendorSpecific || len(rec.EID.Raw) != 5 || rec.Locators[0].Address.LCAFType != LCAFGeo {
		t.Fatalf("got %s", dump(rec))
	}
	out, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	requireBytes(t, out, wire)
}

func TestMessageEncodeErrors(t *testing.T) {
	rloc := []Address{ipa("192.0.2.1")}
	many := func(n int) []Address {
		a := make([]Address, n)
		for i := range a {
			a[i] = ipa("192.0.2.1")
		}
		return a
	}
	for _, c := range []struct {
		name  string
		m     Message
		field string
	}{
		{"no-itr-rloc", &MapRequest{}, "IRC"},
		{"irc-over-31", &MapRequest{ITRRLOCs: many(33)}, "IRC"},
		{"too-many-request-records", &MapRequest{ITRRLOCs: rloc, Records: make([]RequestRecord, 256)}, "Record Count"},
		{"request-mask-len", &MapRequest{ITRRLOCs: rloc, Records: []RequestRecord{{MaskLen: 33, EID: ipa("10.0.0.0")}}}, "EID mask-len"},
		{"request-reserved", &MapRequest{ITRRLOCs: rloc, Reserved: mreqL}, "Map-Request Reserved"},
		{"request-record-reserved", &MapRequest{ITRRLOCs: rloc, Records: []RequestRecord{{Reserved: 0x80}}}, "EID record Reserved"},
		{"too-many-records", &MapReply{Records: make([]EIDRecord, 256)}, "Record Count"},
		{"too-many-locators", &MapReply{Records: []EIDRecord{{Locators: make([]Locator, 256)}}}, "Locator Count"},
		{"mask-len-ipv4", &MapReply{Records: []EIDRecord{{MaskLen: 33, EID: ipa("10.0.0.0")}}}, "EID mask-len"},
		{"mask-len-ipv6", &MapReply{Records: []EIDRecord{{MaskLen: 129, EID: ipa("2001:db8::")}}}, "EID mask-len"},
		{"mask-len-iid", &MapReply{Records: []EIDRecord{{MaskLen: 33, EID: IIDAddr(1, ip("10.0.0.0"))}}}, "EID mask-len"},
		{"mask-len-none", &MapReply{Records: []EIDRecord{{MaskLen: 1}}}, "EID mask-len"},
		{"action", &MapReply{Records: []EIDRecord{{Action: 8}}}, "ACT"},
		{"map-version", &MapReply{Records: []EIDRecord{{MapVersion: 0x1000}}}, "Map-Version Number"},
		{"record-reserved", &MapReply{Records: []EIDRecord{{Reserved: 0x1000}}}, "EID record Reserved"},
		{"record-rsvd", &MapReply{Records: []EIDRecord{{Rsvd: 0x10}}}, "EID record Rsvd"},
		{"unused-flags", &MapReply{Records: []EIDRecord{{Locators: []Locator{{UnusedFlags: 0x2000}}}}}, "Locator Unused Flags"},
		{"bad-locator", &MapReply{Records: []EIDRecord{{Locators: []Locator{{Address: Address{AFI: AFIIPv4}}}}}}, "IPv4 address"},
		{"reply-reserved", &MapReply{Reserved: mrepP}, "Map-Reply Reserved"},
		{"register-reserved", &MapRegister{Reserved: mregM}, "Map-Register Reserved"},
		{"register-records", &MapRegister{Records: make([]EIDRecord, 256)}, "Record Count"},
		{"register-auth-len", &MapRegister{AuthData: make([]byte, 0x10000)}, "Authentication Data Length"},
		{"notify-reserved", &MapNotify{Reserved: mnotI}, "Map-Notify Reserved"},
		{"notify-ack-records", &MapNotifyAck{Records: make([]EIDRecord, 256)}, "Record Count"},
		{"ecm-no-inner", &ECM{Source: netip.MustParseAddrPort("10.0.0.1:1"), Destination: netip.MustParseAddrPort("10.0.0.2:2")}, "ECM LISP Control Message"},
		{"ecm-mixed-families", NewECM(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("[::1]:2"), &MapReply{}), "ECM inner addresses"},
		{"ecm-invalid-address", NewECM(netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:2"), &MapReply{}), "ECM inner addresses"},
		{"ecm-nested", NewECM(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), &ECM{}), "ECM inside ECM"},
		{"ecm-reserved", &ECM{Reserved: ecmS, Source: netip.MustParseAddrPort("10.0.0.1:1"), Destination: netip.MustParseAddrPort("10.0.0.2:2"), Inner: &MapReply{}}, "ECM Reserved"},
		{"ecm-inner-error", NewECM(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), &MapRequest{}), "IRC"},
	} {
		t.Run(c.name, func(t *testing.T) {
			prefix := []byte{1, 2, 3}
			out, err := c.m.AppendBinary(prefix)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field || fe.Op != "encode" {
				t.Fatalf("err = %v, want a FieldError on %q", err, c.field)
			}
			if !errors.Is(err, ErrBadValue) || ErrorReason(err) != "bad_value" {
				t.Fatalf("err = %v, want ErrBadValue", err)
			}
			requireBytes(t, out, prefix)
		})
	}
}

func TestMapRegisterAuthDataDefaults(t *testing.T) {
	for _, c := range []struct {
		alg  AlgorithmID
		data []byte
		n    int
	}{
		{AlgNone, nil, 0},
		{AlgHMACSHA196, nil, 20},
		{AlgHMACSHA256128, nil, 32},
		{AlgHMACSHA256128HKDF, nil, 32},
		{AlgHMACSHA256128, make([]byte, 16), 16},
		{AlgHMACSHA256128, []byte{}, 0},
		{AlgorithmID(200), nil, 0},
	} {
		m := &MapRegister{AlgorithmID: c.alg, AuthData: c.data}
		b, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := int(binary.BigEndian.Uint16(b[14:])); got != c.n || len(b) != 16+c.n {
			t.Fatalf("%v %v: length %d, %d bytes", c.alg, c.data, got, len(b))
		}
		// The parsed message holds the field explicitly and re-encodes to
		// the same bytes.
		p, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.(*MapRegister).AuthData; len(got) != c.n || (got == nil) != (c.n == 0 && c.alg.AuthLen(false) == 0) {
			t.Fatalf("%v %v: parsed AuthData %v", c.alg, c.data, got)
		}
		again, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		requireBytes(t, again, b)
	}
}

// ecmWith builds an ECM by hand around a Map-Reply payload so the header
// fields can be broken one at a time.
func ecmIPv4(t *testing.T, mutate func(b []byte)) []byte {
	payload := hx(t, "20 00 00 00 00 00 00 00 00 00 00 01") // Map-Reply, no records, Nonce=1
	b := hx(t,
		"80 00 00 00", // ECM
		"45 00 00 00", // IPv4, Total Length set below
		"00 00 40 00", // DF set (allowed)
		"40 11 00 00", // TTL 64, UDP, checksum set below
		"0a 00 00 01 0a 00 00 02",
		"10 f6 10 f6 00 00 00 00", // ports, UDP length below, checksum 0
	)
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[6:], uint16(len(b)-4))
	binary.BigEndian.PutUint16(b[28:], uint16(len(b)-24))
	binary.BigEndian.PutUint16(b[14:], checksum(0, b[4:24]))
	if mutate != nil {
		mutate(b)
	}
	return b
}

func TestECMParsing(t *testing.T) {
	// UDP checksum 0 on IPv4 is accepted.
	b := ecmIPv4(t, nil)
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	e := m.(*ECM)
	if e.Source != netip.MustParseAddrPort("10.0.0.1:4342") || e.TTL != 64 || e.Inner.(*MapReply).Nonce != 1 {
		t.Fatalf("got %s", dump(e))
	}
	// IPv4 header checksum 0 (left to the kernel) is accepted too.
	if _, err := Parse(ecmIPv4(t, func(b []byte) { b[14], b[15] = 0, 0 })); err != nil {
		t.Fatal(err)
	}
	// A computed UDP checksum is verified.
	good := ecmIPv4(t, func(b []byte) {
		binary.BigEndian.PutUint16(b[30:], udpChecksum(ip("10.0.0.1"), ip("10.0.0.2"), b[24:]))
	})
	if _, err := Parse(good); err != nil {
		t.Fatal(err)
	}
	// The inner payload is available raw.
	p, err := ECMPayload(good)
	if err != nil || !bytes.Equal(p, good[32:]) {
		t.Fatalf("ECMPayload = %x, %v", p, err)
	}

	for _, c := range []struct {
		name   string
		mutate func(b []byte)
		err    error
	}{
		{"bad-udp-checksum", func(b []byte) { copy(b[30:], good[30:32]); b[30] ^= 1 }, ErrChecksum},
		{"bad-ip-checksum", func(b []byte) { b[15] ^= 1 }, ErrChecksum},
		{"ip-version-5", func(b []byte) { b[4] = 0x55 }, ErrBadHeader},
		{"ihl-4", func(b []byte) { b[4] = 0x44 }, ErrBadHeader},
		{"not-udp", func(b []byte) { b[13] = 6; b[14], b[15] = 0, 0 }, ErrBadHeader},
		{"fragment", func(b []byte) { b[10] = 0x20; b[14], b[15] = 0, 0 }, ErrBadHeader},
		{"total-too-long", func(b []byte) { b[7]++; b[14], b[15] = 0, 0 }, ErrTruncated},
		{"total-too-short", func(b []byte) { b[6], b[7] = 0, 27; b[14], b[15] = 0, 0 }, ErrBadLength},
		{"udp-length-too-long", func(b []byte) { b[29]++ }, ErrBadLength},
		{"udp-length-under-8", func(b []byte) { b[28], b[29] = 0, 7 }, ErrBadLength},
		{"inner-garbage", func(b []byte) { b[32] = 0x90 }, ErrUnknownType},
		{"inner-ecm", func(b []byte) { b[32] = 0x80 }, ErrBadValue},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(ecmIPv4(t, c.mutate))
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
		})
	}

	// Errors inside the inner message carry offsets within the ECM.
	_, err = Parse(append(ecmIPv4(t, func(b []byte) { b[35] = 1 }), 0)) // Record Count 1, no record
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Offset != 44 || fe.Field != "Record TTL" {
		t.Fatalf("inner error: %v", err)
	}

	// IPv4 options are skipped; bytes after the IP packet are trailing.
	opt := ecmIPv4(t, nil)
	withOpts := append(append(append([]byte{}, opt[:24]...), 1, 1, 1, 0), opt[24:]...) // 4 bytes of NOP/EOL options
	withOpts[4] = 0x46
	binary.BigEndian.PutUint16(withOpts[6:], uint16(len(withOpts)-4))
	withOpts[14], withOpts[15] = 0, 0
	binary.BigEndian.PutUint16(withOpts[14:], checksum(0, withOpts[4:28]))
	withOpts = append(withOpts, 0xee, 0xee)
	m, err = Parse(withOpts)
	if err != nil {
		t.Fatal(err)
	}
	if m.(*ECM).Trailing != 2 {
		t.Fatalf("Trailing = %d", m.(*ECM).Trailing)
	}
	// Re-encoding drops the options and fixes every length and checksum.
	out, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	clearTrailing(m)
	requireEqual(t, again, m)
}

func TestECMIPv6ExtensionHeaders(t *testing.T) {
	payload := hx(t, "20 00 00 00 00 00 00 00 00 00 00 01")
	src, dst := ip("2001:db8::1"), ip("2001:db8::2")
	udp := append(hx(t, "10 f6 10 f6 00 14 00 00"), payload...)
	binary.BigEndian.PutUint16(udp[6:], udpChecksum(src, dst, udp))
	ext := hx(t, "11 00 01 04 00 00 00 00") // destination options: Next Header=17, Hdr Ext Len=0, PadN
	body := append(ext, udp...)
	b := hx(t, "80 00 00 00", "60 00 00 00")
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	b = append(b, 60, 255) // Next Header = 60 (destination options), Hop Limit = 255
	s, d := src.As16(), dst.As16()
	b = append(append(append(b, s[:]...), d[:]...), body...)
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if e := m.(*ECM); e.TTL != 255 || e.Destination != netip.AddrPortFrom(dst, 4342) {
		t.Fatalf("got %s", dump(e))
	}
	// A fragment header cannot be handled.
	b[4+6] = 44
	if _, err := Parse(b); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("fragment header: %v", err)
	}
	// An extension header running past the payload.
	b[4+6] = 60
	b[4+40+1] = 9
	if _, err := Parse(b); !errors.Is(err, ErrBadLength) {
		t.Fatalf("long extension header: %v", err)
	}
}

func TestECMEncodeChecksums(t *testing.T) {
	for _, c := range []struct{ src, dst string }{
		{"192.0.2.1:4342", "198.51.100.10:4342"},
		{"[2001:db8::1]:61000", "[2001:db8::2]:4342"},
	} {
		e := NewECM(netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst),
			&MapRequest{Nonce: 99, ITRRLOCs: []Address{ipa("192.0.2.1")}})
		b, err := e.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		ipStart, udpStart := 4, 24
		if e.Source.Addr().Is6() {
			udpStart = 44
		} else if checksum(0, b[ipStart:udpStart]) != 0 {
			t.Fatal("IPv4 header checksum does not verify")
		}
		if binary.BigEndian.Uint16(b[udpStart+6:]) == 0 {
			t.Fatal("UDP checksum not set")
		}
		if udpChecksum(e.Source.Addr(), e.Destination.Addr(), b[udpStart:]) != 0 {
			t.Fatal("UDP checksum does not verify")
		}
		if int(binary.BigEndian.Uint16(b[udpStart+4:])) != len(b)-udpStart {
			t.Fatal("UDP length")
		}
		m, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		requireEqual(t, m, e)
	}
}

func TestErrorReasons(t *testing.T) {
	if ErrorReason(nil) != "" || ErrorReason(errors.New("x")) != "other" {
		t.Fatal("nil/other")
	}
	_, err := Parse(hx(t, "20 00 00 01 00"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "Nonce" || fe.Offset != 4 || ErrorReason(err) != "truncated" {
		t.Fatalf("%v", err)
	}
	if err.Error() != "wire: parse Nonce at offset 4: truncated input" {
		t.Fatalf("%q", err.Error())
	}
	// Offsets of nested addresses are relative to the message.
	_, err = Parse(hx(t, "20 00 00 01 00 00 00 00 00 00 00 01 00 00 00 01 00 20 00 00 00 00 00 03"))
	if !errors.As(err, &fe) || fe.Offset != 22 || !errors.Is(err, ErrBadAFI) {
		t.Fatalf("%v", err)
	}
	seen := map[string]bool{}
	for _, e := range []error{ErrTruncated, ErrUnknownType, ErrBadAFI, ErrBadLCAF, ErrTooDeep, ErrBadLength,
		ErrBadValue, ErrBadHeader, ErrChecksum, ErrAuthFailed, ErrAuthAlgorithm, ErrAuthLength, ErrNoAuth, ErrAuthType} {
		r := e.(interface{ Reason() string }).Reason()
		if r == "" || ErrorReason(e) != r || e.Error()[:6] != "wire: " || seen[r] {
			t.Fatalf("%v: reason %q", e, r)
		}
		seen[r] = true
	}
	if !errors.Is(ErrAuthFailed, ErrAuth) || errors.Is(ErrTruncated, ErrAuth) || ErrShort != ErrTruncated {
		t.Fatal("hierarchy")
	}
}

// TestLispersNetSubscribeRequest: lispers.net's subscribing Map-Request
// (in an ECM, as captured) sets the I bit and carries a 16-byte xTR-ID with
// no site-ID after it. It parses, with NoSiteID, and encodes back to the
// same bytes.
func TestLispersNetSubscribeRequest(t *testing.T) {
	b := hx(t, "8000000045000076000000008011e57bc633648ac633640a88f810f600620000",
		"10100101009c0fb472f5dcbd",
		"400300000200000a000003e80001c633648a0001c000020c000220010db8ffff000000000000000000128020",
		"400300000200000a000003e80001c633640a",
		"ac382fd1a8673e101f09f70793e7098a")
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	ecm, ok := m.(*ECM)
	if !ok {
		t.Fatalf("parsed %T", m)
	}
	req, ok := ecm.Inner.(*MapRequest)
	if !ok {
		t.Fatalf("inner %T", ecm.Inner)
	}
	want := XTRID{0xac, 0x38, 0x2f, 0xd1, 0xa8, 0x67, 0x3e, 0x10, 0x1f, 0x09, 0xf7, 0x07, 0x93, 0xe7, 0x09, 0x8a}
	if !req.XTRIDPresent || !req.NoSiteID || req.XTRID != want || req.SiteID != 0 || req.Trailing != 0 || len(req.Records) != 1 {
		t.Fatalf("Map-Request %s", dump(req))
	}
	out, err := ecm.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	// lispers.net leaves the inner UDP checksum 0 (allowed on IPv4); lispd
	// computes it. Everything else is the same.
	if _, err := Parse(out); err != nil {
		t.Fatalf("re-encoded: %v", err)
	}
	out[4+20+6], out[4+20+7] = 0, 0
	requireBytes(t, out, b)
	// One byte less is an xTR-ID cut short: refused.
	if _, err := Parse(b[:len(b)-1]); err == nil {
		t.Error("a 15-byte xTR-ID was accepted")
	}
}
