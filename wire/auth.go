package wire

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"
	"strconv"
)

// AlgorithmID is the 8-bit Algorithm ID of Map-Register, Map-Notify and
// Map-Notify-Ack (RFC 9301 sections 5.6 and 12.5, IANA "LISP Algorithm ID
// Numbers"). It names both the MAC and the key derivation.
type AlgorithmID uint8

// The algorithms of RFC 9301.
const (
	// AlgNone (0): no authentication.
	AlgNone AlgorithmID = 0
	// AlgHMACSHA196 (1): HMAC-SHA-1-96, no key derivation (the key is the
	// pre-shared key). RFC 6830's "Key ID 1".
	AlgHMACSHA196 AlgorithmID = 1
	// AlgHMACSHA256128 (2): HMAC-SHA-256-128, no key derivation. RFC 6830's
	// "Key ID 2".
	AlgHMACSHA256128 AlgorithmID = 2
	// AlgHMACSHA256128HKDF (3): HMAC-SHA256-128 with a per-message key
	// derived with HKDF-SHA256 from the nonce, a per-type string and the
	// pre-shared key.
	AlgHMACSHA256128HKDF AlgorithmID = 3
)

// maxAuthLen is the longest MAC output of the supported algorithms.
const maxAuthLen = sha256.Size

// String returns the IANA name of the algorithm, or "Algorithm-N".
func (a AlgorithmID) String() string {
	switch a {
	case AlgNone:
		return "None"
	case AlgHMACSHA196:
		return "HMAC-SHA-1-96"
	case AlgHMACSHA256128:
		return "HMAC-SHA-256-128"
	case AlgHMACSHA256128HKDF:
		return "HMAC-SHA256-128+HKDF-SHA256"
	}
	return "Algorithm-" + strconv.Itoa(int(a))
}

// Known reports whether this package implements the algorithm (None
// included).
func (a AlgorithmID) Known() bool { return a <= AlgHMACSHA256128HKDF }

// AuthLen returns the length of the Authentication Data for the algorithm:
// the full HMAC output (20 bytes for SHA-1, 32 for SHA-256), which deployed
// routers send and expect, or, when truncated is set, the truncation the
// algorithm's name gives (12 and 16 bytes). It is 0 for AlgNone and for
// unknown algorithms.
func (a AlgorithmID) AuthLen(truncated bool) int {
	switch a {
	case AlgHMACSHA196:
		if truncated {
			return 12
		}
		return sha1.Size
	case AlgHMACSHA256128, AlgHMACSHA256128HKDF:
		if truncated {
			return 16
		}
		return sha256.Size
	}
	return 0
}

// authOffset is where the Authentication Data starts in Map-Register,
// Map-Notify and Map-Notify-Ack: after the first word, the nonce and the
// Key ID / Algorithm ID / length word.
const authOffset = 16

// AuthHeader is the authentication part of the fixed header of an encoded
// Map-Register, Map-Notify or Map-Notify-Ack.
type AuthHeader struct {
	// Type is the message type.
	Type MessageType
	// Nonce is the message's nonce.
	Nonce uint64
	// KeyID selects the pre-shared key.
	KeyID uint8
	// AlgorithmID selects the algorithm.
	AlgorithmID AlgorithmID
	// AuthDataLen is the Authentication Data Length field; the
	// Authentication Data is msg[16:16+AuthDataLen].
	AuthDataLen int
}

// ParseAuthHeader reads the authentication fields of an encoded
// Map-Register, Map-Notify, Map-Notify-Ack or Info message without parsing
// the rest, so a receiver can pick the key for KeyID before calling Verify. It fails with
// ErrAuthType for other message types and ErrTruncated when the message is
// shorter than the fields and the Authentication Data they announce.
func ParseAuthHeader(msg []byte) (AuthHeader, error) {
	if len(msg) < 1 {
		return AuthHeader{}, parseErr("Type", 0, ErrTruncated)
	}
	t := MessageType(msg[0] >> 4)
	if t != TypeMapRegister && t != TypeMapNotify && t != TypeMapNotifyAck && t != TypeInfo {
		return AuthHeader{}, ErrAuthType
	}
	if len(msg) < authOffset {
		return AuthHeader{}, parseErr("Authentication Data Length", len(msg), ErrTruncated)
	}
	h := AuthHeader{
		Type:        t,
		Nonce:       binary.BigEndian.Uint64(msg[4:]),
		KeyID:       msg[12],
		AlgorithmID: AlgorithmID(msg[13]),
		AuthDataLen: int(binary.BigEndian.Uint16(msg[14:])),
	}
	if len(msg)-authOffset < h.AuthDataLen {
		return AuthHeader{}, parseErr("Authentication Data", authOffset, ErrTruncated)
	}
	return h, nil
}

// Sign computes the authentication data of an encoded Map-Register,
// Map-Notify, Map-Notify-Ack or Info message (see Info) with key and writes
// it into the message's Authentication Data field, whose length (full or truncated, see
// AlgorithmID.AuthLen) the message already declares. The MAC covers the whole
// message with the field taken as zero, whatever it holds. A message with
// Algorithm ID None and no authentication data is left as it is. Sign
// allocates; an Authenticator does not.
func Sign(msg []byte, key []byte) error {
	return NewAuthenticator(key).Sign(msg)
}

// Verify checks the authentication data of a received Map-Register,
// Map-Notify, Map-Notify-Ack or Info message against key, over the raw
// bytes as received (every byte, trailing bytes included) with the Authentication Data taken
// as zero. It accepts the full and the truncated MAC length, as the length
// field says, compares in constant time and does not modify msg. It returns
// nil, or ErrAuthFailed, ErrAuthAlgorithm, ErrAuthLength, ErrNoAuth (the
// message says Algorithm ID None), ErrAuthType or a truncation error. Verify
// allocates; an Authenticator does not.
func Verify(msg []byte, key []byte) error {
	return NewAuthenticator(key).Verify(msg)
}

// Authenticator signs and verifies messages with one pre-shared key, reusing
// its hash states so that Sign and Verify do not allocate. It is not safe for
// concurrent use; give each goroutine its own.
type Authenticator struct {
	key    []byte
	sha1   *macState
	sha256 *macState
	out    [maxAuthLen]byte
	prk    [sha256.Size]byte
	okm    [sha256.Size]byte
	one    [1]byte
}

// NewAuthenticator returns an Authenticator for key (which it copies).
func NewAuthenticator(key []byte) *Authenticator {
	a := &Authenticator{}
	a.SetKey(key)
	return a
}

// SetKey replaces the pre-shared key (copying it).
func (a *Authenticator) SetKey(key []byte) {
	a.key = append(a.key[:0], key...)
	for _, s := range []*macState{a.sha1, a.sha256} {
		if s != nil {
			s.forget()
		}
	}
}

// Sign fills the Authentication Data of an encoded message; see the
// package-level Sign.
func (a *Authenticator) Sign(msg []byte) error {
	h, err := ParseAuthHeader(msg)
	if err != nil {
		return err
	}
	if h.AlgorithmID == AlgNone {
		if h.AuthDataLen != 0 {
			return ErrAuthLength
		}
		return nil
	}
	mac, err := a.mac(msg, &h)
	if err != nil {
		return err
	}
	copy(msg[authOffset:authOffset+h.AuthDataLen], mac)
	return nil
}

// Verify checks the Authentication Data of a received message; see the
// package-level Verify.
func (a *Authenticator) Verify(msg []byte) error {
	h, err := ParseAuthHeader(msg)
	if err != nil {
		return err
	}
	if h.AlgorithmID == AlgNone {
		return ErrNoAuth
	}
	mac, err := a.mac(msg, &h)
	if err != nil {
		return err
	}
	if !hmac.Equal(mac, msg[authOffset:authOffset+h.AuthDataLen]) {
		return ErrAuthFailed
	}
	return nil
}

// Salts of the HKDF per-message key derivation (RFC 9301 section 5.6).
var (
	saltMapRegister  = []byte("Map-Register Authentication")
	saltMapNotify    = []byte("Map-Notify Authentication")
	saltMapNotifyAck = []byte("Map-Notify-Ack Authentication")
)

// mac returns the first h.AuthDataLen bytes of the message's MAC, after
// checking the algorithm and that the length is its full or truncated size.
func (a *Authenticator) mac(msg []byte, h *AuthHeader) ([]byte, error) {
	if !h.AlgorithmID.Known() {
		return nil, ErrAuthAlgorithm
	}
	if h.Type == TypeInfo && h.AlgorithmID == AlgHMACSHA256128HKDF {
		// No per-message key derivation string is defined for the
		// Info messages.
		return nil, ErrAuthAlgorithm
	}
	if h.AuthDataLen != h.AlgorithmID.AuthLen(false) && h.AuthDataLen != h.AlgorithmID.AuthLen(true) {
		return nil, ErrAuthLength
	}
	var s *macState
	key := a.key
	switch h.AlgorithmID {
	case AlgHMACSHA196:
		if a.sha1 == nil {
			a.sha1 = newMACState(sha1.New())
		}
		s = a.sha1
	default:
		if a.sha256 == nil {
			a.sha256 = newMACState(sha256.New())
		}
		s = a.sha256
	}
	if h.AlgorithmID == AlgHMACSHA256128HKDF {
		key = a.perMessageKey(s, msg[4:12], h.Type)
		s.start(key)
	} else {
		s.startCached(key)
	}
	s.h.Write(msg[:authOffset])
	s.h.Write(authZeros[:h.AuthDataLen])
	s.h.Write(msg[authOffset+h.AuthDataLen:])
	return s.finish(a.out[:0])[:h.AuthDataLen], nil
}

// perMessageKey derives the per-message key of RFC 9301 section 5.6,
// per-msg-key = KDF(nonce + s + PSK[Key ID]), with KDF = HKDF-SHA256 (RFC
// 5869) taking the concatenation as its input keying material, no salt, no
// info and a 32-byte output:
//
//	PRK = HMAC-SHA256(32 zero bytes, nonce || s || PSK)
//	per-msg-key = HMAC-SHA256(PRK, 0x01)
//
// where s is "Map-Register Authentication", "Map-Notify Authentication" or
// "Map-Notify-Ack Authentication" by message type.
func (a *Authenticator) perMessageKey(s *macState, nonce []byte, t MessageType) []byte {
	salt := saltMapRegister
	switch t {
	case TypeMapNotify:
		salt = saltMapNotify
	case TypeMapNotifyAck:
		salt = saltMapNotifyAck
	}
	s.start(authZeros[:sha256.Size])
	s.h.Write(nonce)
	s.h.Write(salt)
	s.h.Write(a.key)
	prk := s.finish(a.prk[:0])
	a.one[0] = 1
	s.start(prk)
	s.h.Write(a.one[:])
	return s.finish(a.okm[:0])
}

// macState computes HMAC (RFC 2104) over a reusable hash, so that keys can
// change per message without allocating. For the pre-shared key it also
// keeps the hash states after the inner and outer padded keys, so that a
// message costs no key setup at all.
type macState struct {
	h     hash.Hash
	block int
	ipad  [64]byte
	opad  [64]byte
	kbuf  [64]byte
	inner [64]byte

	// cached is set when istate/ostate hold the states of the pre-shared
	// key; outer selects the cached outer state in finish.
	cached, outer  bool
	istate, ostate []byte
	ibuf, obuf     [256]byte
}

func newMACState(h hash.Hash) *macState {
	return &macState{h: h, block: h.BlockSize()}
}

// forget drops the cached pre-shared key states.
func (s *macState) forget() { s.cached = false }

// start resets the state and feeds the inner padded key.
func (s *macState) start(key []byte) {
	s.outer = false
	if len(key) > s.block {
		s.h.Reset()
		s.h.Write(key)
		key = s.h.Sum(s.kbuf[:0])
	}
	for i := 0; i < s.block; i++ {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		s.ipad[i] = k ^ 0x36
		s.opad[i] = k ^ 0x5c
	}
	s.h.Reset()
	s.h.Write(s.ipad[:s.block])
}

// startCached is start for the pre-shared key psk, restoring the hash state
// saved the first time instead of hashing the padded key again. Hashes that
// cannot save their state fall back to start.
func (s *macState) startCached(psk []byte) {
	m, ok1 := s.h.(encoding.BinaryAppender)
	u, ok2 := s.h.(encoding.BinaryUnmarshaler)
	if !ok1 || !ok2 {
		s.start(psk)
		return
	}
	if !s.cached {
		s.start(psk)
		s.h.Reset()
		s.h.Write(s.opad[:s.block])
		o, err1 := m.AppendBinary(s.obuf[:0])
		s.start(psk)
		i, err2 := m.AppendBinary(s.ibuf[:0])
		if err1 != nil || err2 != nil {
			return // state already started the slow way
		}
		s.istate, s.ostate, s.cached = i, o, true
		s.outer = true
		return
	}
	if u.UnmarshalBinary(s.istate) != nil {
		s.cached = false
		s.start(psk)
		return
	}
	s.outer = true
}

// finish appends the HMAC of everything written since start to out.
func (s *macState) finish(out []byte) []byte {
	in := s.h.Sum(s.inner[:0])
	if u, ok := s.h.(encoding.BinaryUnmarshaler); ok && s.outer && u.UnmarshalBinary(s.ostate) == nil {
		s.h.Write(in)
		return s.h.Sum(out)
	}
	s.h.Reset()
	s.h.Write(s.opad[:s.block])
	s.h.Write(in)
	return s.h.Sum(out)
}
