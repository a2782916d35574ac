package capture

import (
	"encoding/binary"
	"net/netip"
)

// sum16 adds b as big-endian 16-bit words (an odd last byte padded with
// zero) to the one's complement accumulator acc, without folding.
func sum16(b []byte, acc uint64) uint64 {
	for len(b) >= 8 {
		acc += uint64(binary.BigEndian.Uint16(b[0:2])) + uint64(binary.BigEndian.Uint16(b[2:4])) +
			uint64(binary.BigEndian.Uint16(b[4:6])) + uint64(binary.BigEndian.Uint16(b[6:8]))
		b = b[8:]
	}
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// checksum returns the Internet checksum (RFC 1071) of b, starting from
// the partial sum acc (for a pseudo-header).
func checksum(b []byte, acc uint64) uint16 {
	acc = sum16(b, acc)
	for acc>>16 != 0 {
		acc = acc&0xFFFF + acc>>16
	}
	return ^uint16(acc)
}

// pseudoHeaderSum is the partial sum of the UDP pseudo-header: for IPv4
// (RFC 768) source, destination, zero, protocol and UDP length; for IPv6
// (RFC 8200 section 8.1) source, destination, 32-bit upper-layer length
// and next header. The sums are the same shape, since the zero octets
// add nothing.
func pseudoHeaderSum(src, dst netip.Addr, udpLen int) uint64 {
	var acc uint64
	if src.Is4() {
		s4, d4 := src.As4(), dst.As4()
		acc = sum16(s4[:], sum16(d4[:], 0))
	} else {
		s16, d16 := src.As16(), dst.As16()
		acc = sum16(s16[:], sum16(d16[:], 0))
	}
	return acc + protoUDP + uint64(udpLen)
}
