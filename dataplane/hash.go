package dataplane

import (
	"encoding/binary"
	"math/bits"
)

// Hash constants: the splitmix64 / Stafford "mix13" multipliers.
const (
	hashSeed = 0x9e3779b97f4a7c15
	hashK1   = 0xbf58476d1ce4e5b9
	hashK2   = 0x94d049bb133111eb
)

// hashWord folds one 64-bit word into h.
func hashWord(h, w uint64) uint64 {
	h ^= w
	h *= hashK1
	return bits.RotateLeft64(h, 31)
}

// hashFinal is the splitmix64 finalizer (full avalanche).
func hashFinal(h uint64) uint32 {
	h ^= h >> 30
	h *= hashK1
	h ^= h >> 27
	h *= hashK2
	h ^= h >> 31
	return uint32(h) ^ uint32(h>>32)
}

// FlowHash returns a hash of the flow a packet belongs to: the 5-tuple
// (source and destination address, protocol, source and destination port)
// for TCP, UDP and SCTP, and the addresses and protocol for anything else
// and for fragments (so that all fragments of a datagram hash alike), as
// RFC 9300 section 12 describes. IPv6 extension headers are skipped.
//
// The hash is deterministic (no per-process seed): every ITR of a site
// computes the same value for a flow, so redundant ITRs pick the same RLOC
// and outer source port. It is fast and non-cryptographic, and never
// allocates. A packet that is not a well-formed IPv4 or IPv6 packet hashes to
// 0.
func FlowHash(pkt []byte) uint32 {
	h, ok := parseIPHeader(pkt)
	if !ok {
		return 0
	}
	return flowHash(pkt[:h.length], h)
}

// flowHash is FlowHash for a packet parseIPHeader accepted and trimmed.
func flowHash(p []byte, h ipHeader) uint32 {
	x := uint64(hashSeed)
	if h.version == 4 {
		x = hashWord(x, binary.BigEndian.Uint64(p[12:20]))
	} else {
		x = hashWord(x, binary.BigEndian.Uint64(p[8:16]))
		x = hashWord(x, binary.BigEndian.Uint64(p[16:24]))
		x = hashWord(x, binary.BigEndian.Uint64(p[24:32]))
		x = hashWord(x, binary.BigEndian.Uint64(p[32:40]))
	}
	proto, off, ok := transport(p, h)
	var ports uint32
	if ok && !h.frag && (proto == protoTCP || proto == protoUDP || proto == protoSCTP) && off+4 <= len(p) {
		ports = binary.BigEndian.Uint32(p[off : off+4])
	}
	if !ok {
		// A fragment or an unparsable chain: hash the addresses and the
		// protocol the header names, the same for every fragment.
		proto = h.proto
	}
	x = hashWord(x, uint64(proto)<<32|uint64(ports))
	return hashFinal(x)
}

// Ephemeral port range (RFC 6335) that LISP outer source ports are taken
// from.
const (
	ephemeralPortFirst = 49152
	ephemeralPortMask  = 0x3fff // 16384 ports
)

// SourcePort maps a flow hash to an outer UDP source port in the ephemeral
// range 49152-65535, as RFC 9300 section 5.3 and 12 suggest, so that core
// routers spread encapsulated flows over ECMP paths and LAG members. It uses
// the high bits of the hash so that the port does not correlate with an RLOC
// chosen from hash % n.
func SourcePort(flowHash uint32) uint16 {
	return ephemeralPortFirst | uint16(flowHash>>16)&ephemeralPortMask
}
