package capture

import (
	"net/netip"

	"github.com/lispd/lispd/internal/inet"
)

// checksum returns the Internet checksum (RFC 1071) of b, starting from
// the partial sum acc (for a pseudo-header).
func checksum(b []byte, acc uint64) uint16 { return inet.Fold(inet.Sum(acc, b)) }

// pseudoHeaderSum is the partial sum of the UDP pseudo-header (RFC 768 for
// IPv4, RFC 8200 section 8.1 for IPv6).
func pseudoHeaderSum(src, dst netip.Addr, udpLen int) uint64 {
	return inet.PseudoHeaderSum(src, dst, protoUDP, udpLen)
}
