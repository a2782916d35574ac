package wire

import (
	"errors"
	"testing"
)

// dataGoldens are data-plane headers written by hand from RFC 9300 section 5.3.
func dataGoldens(t testing.TB) []struct {
	name string
	wire []byte
	want DataHeader
} {
	return []struct {
		name string
		wire []byte
		want DataHeader
	}{
		{"none", hx(t,
			"00 00 00 00", // N L E V I R K K = 0, Nonce = 0
			"00 00 00 00", // Locator-Status-Bits = 0
		), DataHeader{}},
		{"nonce-lsb", hx(t,
			"c0 ab cd ef", // N=1 L=1, Nonce = 0xabcdef
			"00 00 00 03", // Locator-Status-Bits = 3 (32 bits, I=0)
		), DataHeader{N: true, L: true, Nonce: 0xabcdef, LSB: 3}},
		{"nonce-iid", hx(t,
			"88 12 34 56", // N=1 I=1, Nonce = 0x123456
			"00 aa aa 01", // Instance ID = 0x00aaaa, LSB = 0x01
		), DataHeader{N: true, I: true, Nonce: 0x123456, InstanceID: 0xaaaa, LSB: 1}},
		{"map-version-iid", hx(t,
			"18 12 34 56", // V=1 I=1, Source Map-Version = 0x123, Dest Map-Version = 0x456
			"00 00 07 00", // Instance ID = 7, LSB = 0
		), DataHeader{V: true, I: true, SourceMapVersion: 0x123, DestMapVersion: 0x456, InstanceID: 7}},
		{"echo-nonce", hx(t,
			"a0 00 00 01", // N=1 E=1, Nonce = 1
			"ff ff ff ff", // LSB = all up
		), DataHeader{N: true, E: true, Nonce: 1, LSB: 0xffffffff}},
		{"reserved-rkk", hx(t,
			"8f 00 00 2a", // N=1 I=1, R K K = 1 1 1, Nonce = 42
			"ff ff ff ff", // Instance ID = 0xffffff, LSB = 0xff
		), DataHeader{N: true, I: true, Reserved: 7, Nonce: 42, InstanceID: 0xffffff, LSB: 0xff}},
		{"max-map-versions", hx(t,
			"10 ff ff ff", // V=1, Source Map-Version = 0xfff, Dest Map-Version = 0xfff
			"00 00 00 00", // LSB = 0
		), DataHeader{V: true, SourceMapVersion: 0xfff, DestMapVersion: 0xfff}},
	}
}

func TestDataHeaderGolden(t *testing.T) {
	for _, g := range dataGoldens(t) {
		t.Run(g.name, func(t *testing.T) {
			h, err := ParseDataHeader(append(g.wire, 0x45, 0x00)) // followed by payload
			if err != nil {
				t.Fatal(err)
			}
			requireEqual(t, h, g.want)
			out, err := g.want.AppendBinary([]byte{0x01})
			if err != nil {
				t.Fatal(err)
			}
			requireBytes(t, out, append([]byte{0x01}, g.wire...))
		})
	}
}

func TestDataHeaderErrors(t *testing.T) {
	for n := 0; n < DataHeaderLen; n++ {
		if _, err := ParseDataHeader(make([]byte, n)); !errors.Is(err, ErrTruncated) {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
	for _, h := range []DataHeader{
		{Nonce: 1 << 24},
		{N: true, Nonce: 1 << 24},
		{V: true, SourceMapVersion: 0x1000},
		{V: true, DestMapVersion: 0x1000},
		{V: true, Nonce: 1},
		{SourceMapVersion: 1},
		{I: true, InstanceID: 1 << 24},
		{I: true, LSB: 0x100},
		{InstanceID: 5},
		{Reserved: 8},
	} {
		out, err := h.AppendBinary(nil)
		if !errors.Is(err, ErrBadValue) || len(out) != 0 {
			t.Fatalf("%+v: out=%x err=%v", h, out, err)
		}
	}
}

func TestDataHeaderAllBytes(t *testing.T) {
	// Every first byte parses and re-encodes exactly, whatever the flags.
	for f := 0; f < 256; f++ {
		b := []byte{byte(f), 0x9a, 0xbc, 0xde, 0x12, 0x34, 0x56, 0x78}
		h, err := ParseDataHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		out, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatalf("%02x: %v", f, err)
		}
		requireBytes(t, out, b)
	}
}
