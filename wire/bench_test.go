package wire

import (
	"bytes"
	"testing"
)

func benchParse(b *testing.B, name string) {
	_, wire := goldenByName(b, name)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(wire); err != nil {
			b.Fatal(err)
		}
	}
}

func benchAppend(b *testing.B, name string) {
	m, wire := goldenByName(b, name)
	buf := make([]byte, 0, 1500)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = m.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseMapRequest(b *testing.B)  { benchParse(b, "map-request/ipv4") }
func BenchmarkAppendMapRequest(b *testing.B) { benchAppend(b, "map-request/ipv4") }
func BenchmarkParseMapReply(b *testing.B)    { benchParse(b, "map-reply/ipv4-two-locators") }
func BenchmarkAppendMapReply(b *testing.B)   { benchAppend(b, "map-reply/ipv4-two-locators") }
func BenchmarkParseECM(b *testing.B)         { benchParse(b, "ecm/ipv4-map-request") }
func BenchmarkAppendECM(b *testing.B)        { benchAppend(b, "ecm/ipv4-map-request") }

// registerCase is the HMAC-SHA-256 Map-Register (full 32-byte MAC) with an
// xTR-ID.
func registerCase(b *testing.B) authCase {
	for _, c := range authCases(b) {
		if c.name == "map-register/hmac-sha256-full-xtr-id" {
			return c
		}
	}
	b.Fatal("missing case")
	return authCase{}
}

// BenchmarkMapRegisterAppendSign encodes a Map-Register and signs it with
// HMAC-SHA-256 through a reused Authenticator.
func BenchmarkMapRegisterAppendSign(b *testing.B) {
	c := registerCase(b)
	m := c.want.(*MapRegister)
	a := NewAuthenticator(c.key)
	buf := make([]byte, 0, 1500)
	want := c.signed(b)
	b.SetBytes(int64(len(want)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = m.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
		if err := a.Sign(buf); err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.Equal(buf, want) {
		b.Fatal("wrong signature")
	}
}

// BenchmarkMapRegisterParseVerify parses a signed Map-Register and verifies
// its HMAC-SHA-256 through a reused Authenticator.
func BenchmarkMapRegisterParseVerify(b *testing.B) {
	c := registerCase(b)
	wire := c.signed(b)
	a := NewAuthenticator(c.key)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(wire); err != nil {
			b.Fatal(err)
		}
		if err := a.Verify(wire); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapRegisterVerifyHKDF verifies an HMAC-SHA256-128+HKDF-SHA256
// Map-Register (per-message key derivation included).
func BenchmarkMapRegisterVerifyHKDF(b *testing.B) {
	for _, c := range authCases(b) {
		if c.name != "map-register/hkdf-sha256" {
			continue
		}
		wire := c.signed(b)
		a := NewAuthenticator(c.key)
		b.ReportAllocs()
		for b.Loop() {
			if err := a.Verify(wire); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkVerifyPackageLevel shows the cost of the allocating package-level
// Verify for comparison with the Authenticator.
func BenchmarkVerifyPackageLevel(b *testing.B) {
	c := registerCase(b)
	wire := c.signed(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(wire, c.key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDataHeaderEncode(b *testing.B) {
	h := DataHeader{N: true, I: true, Nonce: 0x123456, InstanceID: 1000, LSB: 1}
	buf := make([]byte, 0, DataHeaderLen)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = h.AppendBinary(buf[:0])
	}
}

func BenchmarkDataHeaderDecode(b *testing.B) {
	wire := []byte{0x88, 0x12, 0x34, 0x56, 0x00, 0x03, 0xe8, 0x01}
	b.ReportAllocs()
	var sum uint32
	for i := 0; i < b.N; i++ {
		h, err := ParseDataHeader(wire)
		if err != nil {
			b.Fatal(err)
		}
		sum += h.InstanceID
	}
	if sum != uint32(b.N)*1000 {
		b.Fatal(sum)
	}
}
