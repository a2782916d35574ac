package dataplane

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
)

// NonceSource supplies the 24-bit nonces of encapsulated packets. An
// Encapsulator calls it from one goroutine at a time; only the low 24 bits
// of the result are used.
type NonceSource interface {
	Nonce() uint32
}

// randomNonces is the default NonceSource: a ChaCha8 generator seeded from
// the operating system's random source, so nonces are unpredictable (RFC 9300
// section 5.3 asks for randomly generated nonces) and cost a few nanoseconds.
type randomNonces struct {
	r *rand.ChaCha8
}

// NewRandomNonces returns the default NonceSource: unpredictable nonces from
// a ChaCha8 generator seeded by crypto/rand. It is not safe for concurrent
// use.
func NewRandomNonces() NonceSource {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		// crypto/rand.Read does not fail on supported platforms (it
		// panics itself rather than return weak data); keep a
		// time-independent fallback anyway.
		binary.LittleEndian.PutUint64(seed[:], rand.Uint64())
	}
	return &randomNonces{r: rand.NewChaCha8(seed)}
}

// Nonce returns the next 24-bit nonce.
func (n *randomNonces) Nonce() uint32 { return uint32(n.r.Uint64()) & 0xffffff }
