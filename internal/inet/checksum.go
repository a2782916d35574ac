// Package inet holds the Internet checksum (RFC 1071) and the IPv4/IPv6
// pseudo-header sum, shared by every package that builds or checks IP, UDP
// or ICMP headers (wire, capture, dataplane, mapserver, the lab).
package inet

import (
	"encoding/binary"
	"net/netip"
)

// Sum adds b, as big-endian 16-bit words (an odd last byte padded with zero),
// to the unfolded ones'-complement sum acc. Sums can be chained over
// several slices as long as every slice but the last has an even length.
func Sum(acc uint64, b []byte) uint64 {
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		acc += v >> 32
		acc += v & 0xffffffff
		b = b[8:]
	}
	if len(b) >= 4 {
		acc += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// Fold folds acc to 16 bits and complements it: the value to store in a
// zeroed checksum field, or 0 when the summed bytes hold a correct checksum.
func Fold(acc uint64) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return ^uint16(acc)
}

// Checksum is the Internet checksum of b.
func Checksum(b []byte) uint16 { return Fold(Sum(0, b)) }

// PseudoHeaderSum is the unfolded sum of the IPv4 (RFC 768) or IPv6 (RFC
// 8200 section 8.1) pseudo-header of a transport segment of length l with
// protocol proto, between src and dst (both of one family).
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, l int) uint64 {
	var acc uint64
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		acc = Sum(Sum(acc, s[:]), d[:])
	} else {
		s, d := src.As16(), dst.As16()
		acc = Sum(Sum(acc, s[:]), d[:])
	}
	return acc + uint64(proto) + uint64(l)
}

// TransportChecksum is the checksum of the UDP, TCP or ICMPv6 segment seg
// (its checksum field included) with the pseudo-header of src and dst: the
// value to store when the field is zero, 0 when the segment is correct.
func TransportChecksum(src, dst netip.Addr, proto uint8, seg []byte) uint16 {
	return Fold(Sum(PseudoHeaderSum(src, dst, proto, len(seg)), seg))
}
