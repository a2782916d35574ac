package cachesync

import (
	"encoding/binary"
	"net/netip"

	"github.com/lispd/lispd/mapcache"
)

// FNV-1a 64-bit parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// keyHash is the 64-bit hash of a map-cache key that digests and usage
// reports carry instead of the key itself. It is the same on every host
// (no per-process seed): FNV-1a over the instance-ID, the family, the
// prefix length and the 16-byte address, then a 64-bit finalizer so that
// the top bits, which choose the digest bucket, are well mixed.
func keyHash(k mapcache.Key) uint64 {
	return prefixHash(k.InstanceID, k.Prefix)
}

func prefixHash(iid uint32, p netip.Prefix) uint64 {
	var b [22]byte
	binary.BigEndian.PutUint32(b[0:4], iid)
	if p.Addr().Is4() {
		b[4] = 4
	} else {
		b[4] = 6
	}
	b[5] = byte(p.Bits())
	a := p.Addr().As16()
	copy(b[6:], a[:])
	h := uint64(fnvOffset)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return mix64(h)
}

// mix64 is the finalizer of SplitMix64: a bijection that spreads every
// input bit over the whole output.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// recordHash is what a record contributes to its digest bucket: its key
// and its version, so that two members holding the same keys at the same
// versions have equal buckets.
func recordHash(kh, version uint64) uint64 {
	return mix64(kh ^ mix64(version+0x9e3779b97f4a7c15))
}
