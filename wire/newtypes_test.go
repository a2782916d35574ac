package wire

import (
	"errors"
	"testing"
)

func TestParseNATTraversal(t *testing.T) {
	m, _ := goldenByName(t, "info-reply/nat-traversal-lcaf")
	n, err := ParseNATTraversal(m.(*Info).Address)
	if err != nil {
		t.Fatal(err)
	}
	want := NATTraversal{
		MSPort: 4342, ETRPort: 54321,
		GlobalETR: ipa("203.0.113.5"), MS: ipa("192.0.2.10"), PrivateETR: ipa("10.0.0.5"),
		RTRs: []Address{ipa("198.51.100.1"), ipa("198.51.100.2")},
	}
	requireEqual(t, n, want)
	a, err := want.Address()
	if err != nil {
		t.Fatal(err)
	}
	requireEqual(t, a, m.(*Info).Address)

	if _, err := ParseNATTraversal(ipa("10.0.0.1")); !errors.Is(err, ErrBadValue) {
		t.Fatalf("plain address: %v", err)
	}
	for _, raw := range [][]byte{nil, {0x10, 0xf6, 0xd4}, {0x10, 0xf6, 0xd4, 0x31, 0x00, 0x01, 0xcb}} {
		bad := Address{AFI: AFILCAF, LCAFType: LCAFNATTraversal, Raw: raw}
		if _, err := ParseNATTraversal(bad); !errors.Is(err, ErrBadLCAF) {
			t.Fatalf("body %x: err = %v, want ErrBadLCAF", raw, err)
		}
	}
	// A body that stops after the global ETR RLOC is accepted.
	short := Address{AFI: AFILCAF, LCAFType: LCAFNATTraversal, Raw: hx(t, "10 f6 d4 31", "00 01 cb 00 71 05")}
	n, err = ParseNATTraversal(short)
	if err != nil || !n.GlobalETR.Equal(ipa("203.0.113.5")) || !n.MS.IsZero() || n.RTRs != nil {
		t.Fatalf("short body: %+v, %v", n, err)
	}
}

func TestInfoSignVerify(t *testing.T) {
	key := []byte("info-key")
	for _, alg := range []AlgorithmID{AlgHMACSHA196, AlgHMACSHA256128} {
		m := &Info{Nonce: 9, AlgorithmID: alg, MaskLen: 24, EID: ipa("10.1.2.0")}
		b, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := Sign(b, key); err != nil {
			t.Fatalf("%v: Sign: %v", alg, err)
		}
		if err := Verify(b, key); err != nil {
			t.Fatalf("%v: Verify: %v", alg, err)
		}
		// The MAC is HMAC over the message with the field zeroed, as for
		// Map-Register.
		requireBytes(t, b[authOffset:authOffset+alg.AuthLen(false)], referenceMAC(t, zeroAuth(b), key))
		b[len(b)-1] ^= 1
		if err := Verify(b, key); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("%v: altered message: %v", alg, err)
		}
	}
	m := &Info{AlgorithmID: AlgHMACSHA256128HKDF, EID: ipa("10.1.2.0")}
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Sign(b, key); !errors.Is(err, ErrAuthAlgorithm) {
		t.Fatalf("HKDF on Info: %v", err)
	}
}

func TestNewTypesEncodeErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		m    Message
	}{
		{"referral reserved", &MapReferral{Reserved: 0xff}},
		{"referral act", &MapReferral{Records: []ReferralRecord{{Action: 8}}}},
		{"referral record reserved", &MapReferral{Records: []ReferralRecord{{Reserved: 0x800}}}},
		{"sigcnt", &MapReferral{Records: []ReferralRecord{{Signatures: make([]ReferralSignature, 16)}}}},
		{"sig reserved", &MapReferral{Records: []ReferralRecord{{Signatures: []ReferralSignature{{Reserved: 1 << 24}}}}}},
		{"sig length", &MapReferral{Records: []ReferralRecord{{Signatures: []ReferralSignature{{Signature: make([]byte, 0x10000)}}}}}},
		{"map version", &MapReferral{Records: []ReferralRecord{{MapVersion: 0x1000}}}},
		{"info reserved", &Info{Reserved: infoR}},
		{"info mask-len", &Info{MaskLen: 33, EID: ipa("10.0.0.0")}},
		{"sub-type", &SharedExtension{SubType: 0x1000}},
	} {
		prefix := []byte{1, 2}
		out, err := c.m.AppendBinary(prefix)
		if !errors.Is(err, ErrBadValue) {
			t.Fatalf("%s: err = %v, want ErrBadValue", c.name, err)
		}
		requireBytes(t, out, prefix)
	}
}

func TestReferralActionAndTypeNames(t *testing.T) {
	for a, want := range map[ReferralAction]string{NodeReferral: "NODE-REFERRAL", MSAck: "MS-ACK",
		DelegationHole: "DELEGATION-HOLE", 6: "ACT-6"} {
		if a.String() != want {
			t.Fatalf("%d: %q", a, a.String())
		}
	}
	// A Shared Extension message is at least its type and sub-type.
	if _, err := Parse([]byte{0xf0}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("1-byte Shared Extension: %v", err)
	}
	m, err := Parse([]byte{0xff, 0xff})
	if err != nil || m.(*SharedExtension).SubType != 0xfff || m.(*SharedExtension).Data != nil {
		t.Fatalf("2-byte Shared Extension: %v, %v", m, err)
	}
}
