package wire

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

// authCase is a hand-written authenticated message: zeroed is the message
// with a zero Authentication Data field, key the pre-shared key, and want the
// struct it parses to once signed (AuthData filled in by the test).
type authCase struct {
	name   string
	key    []byte
	zeroed []byte
	want   Message
}

func authCases(t testing.TB) []authCase {
	zeros := func(n int) string { return hex.EncodeToString(make([]byte, n)) }
	rec := func() []EIDRecord {
		return []EIDRecord{{
			RecordTTL: 1440, MaskLen: 24, Authoritative: true, EID: ipa("10.1.2.0"),
			Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Local: true, Reachable: true, Address: ipa("192.0.2.1")}},
		}}
	}
	recHex := []string{
		"00 00 05 a0", // Record TTL = 1440
		"01 18 10 00", // Locator Count=1, EID mask-len=24, ACT=0 A=1
		"00 00 00 01", // Map-Version=0, EID-Prefix-AFI=1
		"0a 01 02 00", // EID-Prefix 10.1.2.0
		"01 64 ff 00", // Priority=1 Weight=100 M Priority=255 M Weight=0
		"00 05 00 01", // L=1 p=0 R=1, Loc-AFI=1
		"c0 00 02 01", // Locator 192.0.2.1
	}
	xtr := XTRID{0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00}
	return []authCase{
		{
			name: "map-register/hmac-sha1-full",
			key:  []byte("lisp-key-1"),
			zeroed: hx(t, append([]string{
				"30 00 01 01",             // Type=3, P S I=0, M=1 (want-map-notify), Record Count=1
				"01 02 03 04 05 06 07 08", // Nonce
				"00 01 00 14",             // Key ID=0, Algorithm ID=1 (HMAC-SHA-1-96), Authentication Data Length=20
				zeros(20),                 // Authentication Data (zeroed)
			}, recHex...)...),
			want: &MapRegister{WantMapNotify: true, Nonce: 0x0102030405060708,
				AlgorithmID: AlgHMACSHA196, Records: rec()},
		},
		{
			name: "map-register/hmac-sha256-full-xtr-id",
			key:  []byte("another secret"),
			zeroed: hx(t,
				"3a 00 08 01",             // Type=3, P=1 S=0 I=1, T=1 (use-TTL), Record Count=1
				"de ad be ef 00 00 00 01", // Nonce
				"00 02 00 20",             // Key ID=0, Algorithm ID=2 (HMAC-SHA-256-128), Authentication Data Length=32
				zeros(32),                 // Authentication Data (zeroed)
				"00 00 05 a0",             // Record TTL = 1440
				"01 30 10 00",             // Locator Count=1, EID mask-len=48, A=1
				"00 00 40 03",             // Map-Version=0, EID-Prefix-AFI=16387
				"00 00 02 00 00 16",       // LCAF Type=2 (Instance ID), IID mask-len=0, Length=22
				"00 00 00 07",             // Instance ID = 7
				"00 02 20 01 0d b8 00 0a 00 00 00 00 00 00 00 00 00 00", // AFI=2 2001:db8:a::
				"01 64 ff 00", // Priority=1 Weight=100 M Priority=255 M Weight=0
				"00 05 00 01", // L=1 R=1, Loc-AFI=1
				"c0 00 02 0a", // Locator 192.0.2.10
				"0f 0e 0d 0c 0b 0a 09 08 07 06 05 04 03 02 01 00", // xTR-ID
				"00 00 00 00 00 00 00 01",                         // site-ID = 1
			),
			want: &MapRegister{ProxyReply: true, XTRIDPresent: true, UseTTL: true, Nonce: 0xdeadbeef00000001,
				AlgorithmID: AlgHMACSHA256128,
				Records: []EIDRecord{{RecordTTL: 1440, MaskLen: 48, Authoritative: true,
					EID:      iidAddr(7, ipa("2001:db8:a::")),
					Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Local: true, Reachable: true, Address: ipa("192.0.2.10")}}}},
				XTRID: xtr, SiteID: 1},
		},
		{
			name: "map-register/hmac-sha256-truncated",
			key:  []byte("lisp-key-1"),
			zeroed: hx(t, append([]string{
				"30 00 01 01",             // Type=3, M=1, Record Count=1
				"00 00 00 00 00 00 00 05", // Nonce = 5
				"01 02 00 10",             // Key ID=1, Algorithm ID=2, Authentication Data Length=16
				zeros(16),                 // Authentication Data (zeroed)
			}, recHex...)...),
			want: &MapRegister{WantMapNotify: true, Nonce: 5, KeyID: 1,
				AlgorithmID: AlgHMACSHA256128, AuthData: make([]byte, 16), Records: rec()},
		},
		{
			name: "map-register/hmac-sha1-truncated",
			key:  []byte("k"),
			zeroed: hx(t, append([]string{
				"30 00 01 01",             // Type=3, M=1, Record Count=1
				"00 00 00 00 00 00 00 06", // Nonce = 6
				"03 01 00 0c",             // Key ID=3, Algorithm ID=1, Authentication Data Length=12
				zeros(12),                 // Authentication Data (zeroed)
			}, recHex...)...),
			want: &MapRegister{WantMapNotify: true, Nonce: 6, KeyID: 3,
				AlgorithmID: AlgHMACSHA196, AuthData: make([]byte, 12), Records: rec()},
		},
		{
			name: "map-register/hkdf-sha256",
			key:  []byte("per-message keys"),
			zeroed: hx(t, append([]string{
				"30 00 01 01",             // Type=3, M=1, Record Count=1
				"11 22 33 44 55 66 77 88", // Nonce
				"02 03 00 20",             // Key ID=2, Algorithm ID=3 (HMAC-SHA256-128+HKDF-SHA256), Length=32
				zeros(32),                 // Authentication Data (zeroed)
			}, recHex...)...),
			want: &MapRegister{WantMapNotify: true, Nonce: 0x1122334455667788, KeyID: 2,
				AlgorithmID: AlgHMACSHA256128HKDF, Records: rec()},
		},
		{
			name: "map-notify/hmac-sha1-full",
			key:  []byte("lisp-key-1"),
			zeroed: hx(t, append([]string{
				"40 00 00 01",             // Type=4, I=0, Reserved=0, Record Count=1
				"01 02 03 04 05 06 07 08", // Nonce (of the Map-Register)
				"00 01 00 14",             // Key ID=0, Algorithm ID=1, Authentication Data Length=20
				zeros(20),                 // Authentication Data (zeroed)
			}, recHex...)...),
			want: &MapNotify{Nonce: 0x0102030405060708, AlgorithmID: AlgHMACSHA196, Records: rec()},
		},
		{
			name: "map-notify/hkdf-sha256",
			key:  []byte("per-message keys"),
			zeroed: hx(t, append([]string{
				"40 00 00 01",             // Type=4, Record Count=1
				"11 22 33 44 55 66 77 88", // Nonce
				"02 03 00 10",             // Key ID=2, Algorithm ID=3, Authentication Data Length=16 (truncated)
				zeros(16),                 // Authentication Data (zeroed)
			}, recHex...)...),
			want: &MapNotify{Nonce: 0x1122334455667788, KeyID: 2, AlgorithmID: AlgHMACSHA256128HKDF,
				AuthData: make([]byte, 16), Records: rec()},
		},
		{
			name: "map-notify-ack/hmac-sha256-xtr-id-no-records",
			key:  []byte("another secret"),
			zeroed: hx(t,
				"58 00 00 00",             // Type=5, I=1, Reserved=0, Record Count=0
				"de ad be ef 00 00 00 01", // Nonce
				"00 02 00 20",             // Key ID=0, Algorithm ID=2, Authentication Data Length=32
				zeros(32),                 // Authentication Data (zeroed)
				"0f 0e 0d 0c 0b 0a 09 08 07 06 05 04 03 02 01 00", // xTR-ID
				"00 00 00 00 00 00 00 01",                         // site-ID = 1
			),
			want: &MapNotifyAck{XTRIDPresent: true, Nonce: 0xdeadbeef00000001,
				AlgorithmID: AlgHMACSHA256128, XTRID: xtr, SiteID: 1},
		},
		{
			name: "map-notify-ack/hkdf-sha256",
			key:  []byte("per-message keys"),
			zeroed: hx(t,
				"50 00 00 00",             // Type=5, Record Count=0
				"11 22 33 44 55 66 77 88", // Nonce
				"02 03 00 20",             // Key ID=2, Algorithm ID=3, Authentication Data Length=32
				zeros(32),                 // Authentication Data (zeroed)
			),
			want: &MapNotifyAck{Nonce: 0x1122334455667788, KeyID: 2, AlgorithmID: AlgHMACSHA256128HKDF},
		},
	}
}

// referenceMAC computes the expected Authentication Data with the standard
// library only (crypto/hmac, crypto/hkdf), following RFC 9301 section 5.6,
// independently of the package's own HMAC code.
func referenceMAC(t testing.TB, zeroed, key []byte) []byte {
	t.Helper()
	alg := AlgorithmID(zeroed[13])
	n := int(zeroed[14])<<8 | int(zeroed[15])
	var mac []byte
	switch alg {
	case AlgHMACSHA196:
		h := hmac.New(sha1.New, key)
		h.Write(zeroed)
		mac = h.Sum(nil)
	case AlgHMACSHA256128:
		h := hmac.New(sha256.New, key)
		h.Write(zeroed)
		mac = h.Sum(nil)
	case AlgHMACSHA256128HKDF:
		salt := map[byte]string{3: "Map-Register Authentication", 4: "Map-Notify Authentication",
			5: "Map-Notify-Ack Authentication"}[zeroed[0]>>4]
		ikm := append(append(append([]byte{}, zeroed[4:12]...), salt...), key...)
		k, err := hkdf.Key(sha256.New, ikm, nil, "", 32)
		if err != nil {
			t.Fatal(err)
		}
		h := hmac.New(sha256.New, k)
		h.Write(zeroed)
		mac = h.Sum(nil)
	default:
		t.Fatalf("no reference for algorithm %d", alg)
	}
	return mac[:n]
}

// signed returns the case's message with the reference MAC spliced in.
func (c authCase) signed(t testing.TB) []byte {
	b := bytes.Clone(c.zeroed)
	copy(b[authOffset:], referenceMAC(t, c.zeroed, c.key))
	return b
}

// authGoldens turns the authenticated cases into golden messages whose
// expected AuthData is the reference MAC.
func authGoldens(t testing.TB) []golden {
	var gs []golden
	for _, c := range authCases(t) {
		mac := referenceMAC(t, c.zeroed, c.key)
		var want Message
		switch w := c.want.(type) {
		case *MapRegister:
			cp := *w
			cp.AuthData = mac
			want = &cp
		case *MapNotify:
			cp := *w
			cp.AuthData = mac
			want = &cp
		case *MapNotifyAck:
			cp := *w
			cp.AuthData = mac
			want = &cp
		}
		gs = append(gs, golden{name: c.name, wire: c.signed(t), want: want})
	}
	return gs
}

func TestAuthKnownAnswers(t *testing.T) {
	for _, c := range authCases(t) {
		t.Run(c.name, func(t *testing.T) {
			signed := c.signed(t)
			// The encoder reserves exactly the zeroed field the case wrote
			// by hand (AuthData nil means full length).
			enc, err := c.want.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			requireBytes(t, enc, c.zeroed)

			// Sign fills in the reference MAC, package-level and reusable.
			b := bytes.Clone(c.zeroed)
			if err := Sign(b, c.key); err != nil {
				t.Fatalf("Sign: %v", err)
			}
			requireBytes(t, b, signed)
			a := NewAuthenticator(c.key)
			b = bytes.Clone(c.zeroed)
			if err := a.Sign(b); err != nil {
				t.Fatalf("Authenticator.Sign: %v", err)
			}
			requireBytes(t, b, signed)
			// Signing again ignores what the field holds.
			if err := a.Sign(b); err != nil {
				t.Fatal(err)
			}
			requireBytes(t, b, signed)

			if err := Verify(signed, c.key); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if err := a.Verify(signed); err != nil {
				t.Fatalf("Authenticator.Verify: %v", err)
			}
			before := bytes.Clone(signed)
			_ = Verify(signed, c.key)
			requireBytes(t, signed, before)
		})
	}
}

func TestAuthRejects(t *testing.T) {
	for _, c := range authCases(t) {
		t.Run(c.name, func(t *testing.T) {
			signed := c.signed(t)
			if err := Verify(signed, append(bytes.Clone(c.key), 'x')); !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("wrong key: %v", err)
			}
			if err := Verify(c.zeroed, c.key); !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("unsigned: %v", err)
			}
			// Flipping any bit of any byte (other than the length and
			// algorithm fields, which give their own errors) must fail.
			a := NewAuthenticator(c.key)
			for i := range signed {
				if i >= 13 && i < 16 {
					continue
				}
				b := bytes.Clone(signed)
				b[i] ^= 0x01
				err := a.Verify(b)
				if !errors.Is(err, ErrAuthFailed) && !errors.Is(err, ErrAuthType) {
					t.Fatalf("flipped byte %d: %v", i, err)
				}
			}
			// Appended bytes are covered by the MAC.
			if err := a.Verify(append(bytes.Clone(signed), 0)); !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("appended byte: %v", err)
			}
			if ErrorReason(a.Verify(c.zeroed)) != "auth_failed" {
				t.Fatal("reason")
			}
		})
	}
}

func TestAuthLengthsAndAlgorithms(t *testing.T) {
	c := authCases(t)[0] // HMAC-SHA-1, full length
	key := c.key
	mk := func(alg AlgorithmID, n int) []byte {
		m := *(c.want.(*MapRegister))
		m.AlgorithmID = alg
		m.AuthData = make([]byte, n)
		b, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Both full and truncated lengths sign and verify, for every algorithm.
	for _, alg := range []AlgorithmID{AlgHMACSHA196, AlgHMACSHA256128, AlgHMACSHA256128HKDF} {
		for _, n := range []int{alg.AuthLen(false), alg.AuthLen(true)} {
			b := mk(alg, n)
			if err := Sign(b, key); err != nil {
				t.Fatalf("%v/%d: Sign: %v", alg, n, err)
			}
			requireBytes(t, b[authOffset:authOffset+n], referenceMAC(t, mk(alg, n), key))
			if err := Verify(b, key); err != nil {
				t.Fatalf("%v/%d: Verify: %v", alg, n, err)
			}
		}
		// Any other length is refused.
		for _, n := range []int{1, 8, 13, 21, 31, 33} {
			if n == alg.AuthLen(false) || n == alg.AuthLen(true) {
				continue
			}
			b := mk(alg, n)
			if err := Sign(b, key); !errors.Is(err, ErrAuthLength) || !errors.Is(err, ErrAuth) {
				t.Fatalf("%v/%d: Sign: %v", alg, n, err)
			}
			if err := Verify(b, key); !errors.Is(err, ErrAuthLength) {
				t.Fatalf("%v/%d: Verify: %v", alg, n, err)
			}
		}
	}
	// Unknown algorithm.
	b := mk(9, 20)
	if err := Verify(b, key); !errors.Is(err, ErrAuthAlgorithm) || ErrorReason(err) != "auth_unknown_algorithm" {
		t.Fatalf("unknown algorithm: %v", err)
	}
	// None: Sign leaves the message alone, Verify says it is unauthenticated.
	b = mk(AlgNone, 0)
	orig := bytes.Clone(b)
	if err := Sign(b, key); err != nil {
		t.Fatal(err)
	}
	requireBytes(t, b, orig)
	if err := Verify(b, key); !errors.Is(err, ErrNoAuth) {
		t.Fatalf("none: %v", err)
	}
	if err := Sign(mk(AlgNone, 4), key); !errors.Is(err, ErrAuthLength) {
		t.Fatalf("none with data: %v", err)
	}
	// Wrong message types and short messages.
	mreq, _ := (&MapRequest{ITRRLOCs: []Address{ipa("192.0.2.1")}}).AppendBinary(nil)
	if err := Verify(mreq, key); !errors.Is(err, ErrAuthType) {
		t.Fatalf("map-request: %v", err)
	}
	full := mk(AlgHMACSHA196, 20)
	for n := 0; n < authOffset+20; n++ {
		if err := Verify(full[:n], key); !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrAuthType) {
			t.Fatalf("short %d: %v", n, err)
		}
	}
}

// TestMACStateVectors checks the package's HMAC against the published test
// vectors of RFC 2202 (HMAC-SHA-1) and RFC 4231 (HMAC-SHA-256), and against
// crypto/hmac for keys longer than a block.
func TestMACStateVectors(t *testing.T) {
	key := bytes.Repeat([]byte{0x0b}, 20)
	data := []byte("Hi There")
	for _, v := range []struct {
		s    *macState
		want string
	}{
		{newMACState(sha1.New()), "b617318655057264e28bc0b6fb378c8ef146be00"},
		{newMACState(sha256.New()), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
	} {
		v.s.start(key)
		v.s.h.Write(data)
		if got := hex.EncodeToString(v.s.finish(nil)); got != v.want {
			t.Fatalf("got %s want %s", got, v.want)
		}
	}
	long := bytes.Repeat([]byte("0123456789"), 20)
	s := newMACState(sha256.New())
	s.start(long)
	s.h.Write(data)
	h := hmac.New(sha256.New, long)
	h.Write(data)
	requireBytes(t, s.finish(nil), h.Sum(nil))
}

func TestParseAuthHeader(t *testing.T) {
	c := authCases(t)[2]
	h, err := ParseAuthHeader(c.signed(t))
	if err != nil {
		t.Fatal(err)
	}
	requireEqual(t, h, AuthHeader{Type: TypeMapRegister, Nonce: 5, KeyID: 1, AlgorithmID: AlgHMACSHA256128, AuthDataLen: 16})
}

func TestAlgorithmNames(t *testing.T) {
	for alg, want := range map[AlgorithmID]string{0: "None", 1: "HMAC-SHA-1-96", 2: "HMAC-SHA-256-128",
		3: "HMAC-SHA256-128+HKDF-SHA256", 4: "Algorithm-4"} {
		if alg.String() != want {
			t.Fatalf("%d: %q", alg, alg.String())
		}
	}
	if AlgorithmID(4).Known() || !AlgHMACSHA256128HKDF.Known() {
		t.Fatal("Known")
	}
}

// TestAuthenticatorReuse drives one Authenticator through every algorithm
// and key in turn, twice, so cached key states must survive algorithm
// switches and be dropped on SetKey.
func TestAuthenticatorReuse(t *testing.T) {
	a := NewAuthenticator(nil)
	cases := authCases(t)
	for round := 0; round < 2; round++ {
		for _, c := range cases {
			a.SetKey(c.key)
			if err := a.Verify(c.signed(t)); err != nil {
				t.Fatalf("round %d %s: %v", round, c.name, err)
			}
			b := bytes.Clone(c.zeroed)
			if err := a.Sign(b); err != nil {
				t.Fatal(err)
			}
			requireBytes(t, b, c.signed(t))
			// The same key with the other hash family in between.
			other := cases[(round+1)%len(cases)]
			_ = a.Verify(other.signed(t))
			if err := a.Verify(c.signed(t)); err != nil {
				t.Fatalf("round %d %s after switching: %v", round, c.name, err)
			}
		}
	}
}
