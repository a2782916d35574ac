package inet

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// reference is RFC 1071's algorithm written the plain way, 16 bits at a
// time, as an independent check of the 64-bit accumulation.
func reference(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 200; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := Checksum(b), reference(b); got != want {
			t.Fatalf("len %d: Checksum = %#04x, reference %#04x", n, got, want)
		}
	}
}

func TestRFC1071Example(t *testing.T) {
	// RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2, so the
	// checksum is its complement 220d.
	if got := Checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}); got != 0x220d {
		t.Fatalf("Checksum = %#04x, want 0x220d", got)
	}
}

func TestTransportChecksumVerifies(t *testing.T) {
	for _, pair := range [][2]string{{"192.0.2.1", "198.51.100.7"}, {"2001:db8::1", "2001:db8:ffff::2"}} {
		src, dst := netip.MustParseAddr(pair[0]), netip.MustParseAddr(pair[1])
		seg := []byte{0x10, 0xf6, 0x10, 0xf6, 0, 13, 0, 0, 'h', 'e', 'l', 'l', 'o'}
		c := TransportChecksum(src, dst, 17, seg)
		seg[6], seg[7] = byte(c>>8), byte(c)
		if v := TransportChecksum(src, dst, 17, seg); v != 0 {
			t.Errorf("%s: a segment holding its checksum sums to %#04x, want 0", pair[0], v)
		}
		seg[9] ^= 1
		if v := TransportChecksum(src, dst, 17, seg); v == 0 {
			t.Errorf("%s: a flipped bit still verifies", pair[0])
		}
	}
}
