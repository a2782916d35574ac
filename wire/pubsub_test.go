package wire

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// The publish/subscribe messages of RFC 9437, written as hex by hand from
// the RFC's figures (Map-Request: RFC 9437 section 4, Figure 1; Map-Notify
// and Map-Notify-Ack: RFC 9301 section 5.7; EID records: RFC 9301 section
// 5.4), one field or one 32-bit word per line, not produced by the encoder.
//
// The story they tell: an ITR (xTR-ID 00112233445566778899aabbccddeeff,
// site-ID 1, RLOC 10.0.0.1) subscribes to 192.0.2.1/32 with nonce
// 0x0102030405060708; the Map-Server confirms with the registered prefix
// 192.0.2.0/24 that holds it, signed with the pub/sub key (Key ID 7,
// HMAC-SHA-256-128 with the full 32-byte HMAC, as lispd sends it by
// default); the ITR acks; a mapping of instance 1000 is withdrawn; a
// subscription whose Map-Notifies went unacked is removed (action 5); the
// ITR unsubscribes (one ITR-RLOC of AFI 0) and the Map-Server confirms
// with a Map-Notify with no records. Then the lispers.net forms: its
// subscribing Map-Request (xTR-ID, no site-ID), its unsigned confirmation
// (a Map-Reply rewritten as a Map-Notify), and its Map-Notify-Ack.
//
// The Authentication Data of the signed messages was computed with
// Python's hmac module (HMAC-SHA-256 with pubsubKey over the message with
// the field zero), not with wire.Sign.

// pubsubKey is the pub/sub key (RFC 9437 section 7.1, "PubSubKey") of the
// signed goldens.
var pubsubKey = []byte("rfc9437-pubsub-key")

// pubsubXTRID is the subscribing ITR's xTR-ID.
var pubsubXTRID = XTRID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}

// pubsubGolden is one hand-written pub/sub message and the struct it must
// parse to. The hex is kept as strings (decoded by the test) so that the
// structs can also feed the tshark cross-check, which has no testing.T
// when it lists its messages.
type pubsubGolden struct {
	name string
	wire []string
	want Message
	// signed: the Authentication Data is an HMAC with pubsubKey.
	signed bool
}

// unhex decodes a hex literal of the test (whitespace ignored); it panics
// on a typo, which is a bug of the test itself.
func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic("bad hex in test: " + err.Error())
	}
	return b
}

// The HMACs of the signed goldens (see the comment at the top).
const (
	pubsubMACConfirm  = "a8f3ed3788355060d7cf7e0520ef7430ce5ec419349d4e5cd4cdcb064c62bd5f"
	pubsubMACAck      = "f6ea2144ac33cb00922d7c4b35f73ca245c9ca8e866e8ca78c896dad42072bb9"
	pubsubMACWithdraw = "fb4918480eca50556bec8c8d6723244b7028efd069e01e4d37a67bf6340ddcde"
	pubsubMACRemoval  = "42a4b4964cbf3b84146e98659adf9d520644989d4844ef61a83addb125235fb4"
	pubsubMACEmpty    = "67c7936c4be559f6abfc71d32188271154252c4583c4a077a86e31ad4f57dc33"
	pubsubMACEmptyAck = "f391939746ef3720efaa4e8a127b442b33939b99f3e12739e4e6a3a72ea43f96"
)

func pubsubGoldens() []pubsubGolden {
	subscribeRecord := []RequestRecord{{NotifyRequested: true, MaskLen: 32, EID: ipa("192.0.2.1")}}
	// The subscribed mapping as the Map-Server holds it: the registered
	// prefix 192.0.2.0/24 with two locators.
	mapping := EIDRecord{RecordTTL: 1440, MaskLen: 24, Authoritative: true, EID: ipa("192.0.2.0"),
		Locators: []Locator{
			{Priority: 1, Weight: 50, MPriority: 255, Reachable: true, Address: ipa("203.0.113.5")},
			{Priority: 1, Weight: 50, MPriority: 255, Reachable: true, Address: ipa("2001:db8::5")},
		}}
	mappingHex := []string{
		"00 00 05 a0", // Record TTL = 1440 minutes
		"02 18 10 00", // Locator Count=2, EID mask-len=24, ACT=0, A=1, Reserved=0
		"00 00 00 01", // Rsvd=0, Map-Version=0, EID-Prefix-AFI=1
		"c0 00 02 00", // EID-Prefix 192.0.2.0
		"01 32 ff 00", // Loc 1: Priority=1, Weight=50, M Priority=255, M Weight=0
		"00 01 00 01", //        Unused Flags=0, L=0 p=0 R=1, Loc-AFI=1
		"cb 00 71 05", //        203.0.113.5
		"01 32 ff 00", // Loc 2: Priority=1, Weight=50, M Priority=255, M Weight=0
		"00 01 00 02", //        R=1, Loc-AFI=2
		"20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 05", // 2001:db8::5
	}
	// lispers.net's confirmation: its proxy Map-Reply for the requested
	// EID (192.0.2.1/32, TTL 1440, one locator) rewritten as a Map-Notify.
	lnRecord := []EIDRecord{{RecordTTL: 1440, MaskLen: 32, EID: ipa("192.0.2.1"),
		Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Reachable: true, Address: ipa("203.0.113.5")}}}}
	lnRecordHex := []string{
		"00 00 05 a0", // Record TTL = 1440
		"01 20 00 00", // Locator Count=1, EID mask-len=32, ACT=0, A=0
		"00 00 00 01", // Rsvd=0, Map-Version=0, EID-Prefix-AFI=1
		"c0 00 02 01", // EID-Prefix 192.0.2.1
		"01 64 ff 00", // Priority=1, Weight=100, M Priority=255, M Weight=0
		"00 01 00 01", // R=1, Loc-AFI=1
		"cb 00 71 05", // 203.0.113.5
	}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	return []pubsubGolden{
		{
			name: "map-request/rfc9437-subscribe",
			wire: []string{
				"10 10 00 01", // Type=1, A M P S p s R=0, I=1, Rsvd=0, L=0 D=0, IRC=0, Record Count=1
				"01 02 03 04", // Nonce (high)
				"05 06 07 08", // Nonce (low)
				"00 00",       // Source-EID-AFI = 0 (none)
				"00 01",       // ITR-RLOC-AFI 1 = 1
				"0a 00 00 01", // ITR-RLOC 1 10.0.0.1
				"80 20 00 01", // Rec: N=1, Reserved=0, EID mask-len=32, EID-Prefix-AFI=1
				"c0 00 02 01", // EID-Prefix 192.0.2.1
				"00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff", // xTR-ID
				"00 00 00 00 00 00 00 01",                         // site-ID = 1
			},
			want: &MapRequest{XTRIDPresent: true, Nonce: 0x0102030405060708,
				ITRRLOCs: []Address{ipa("10.0.0.1")}, Records: subscribeRecord,
				XTRID: pubsubXTRID, SiteID: 1},
		},
		{
			// lispers.net appends the xTR-ID alone (encode_xtr_id).
			name: "map-request/lispers-net-subscribe-no-site-id",
			wire: []string{
				"10 10 00 01",             // Type=1, I=1, IRC=0, Record Count=1
				"01 02 03 04 05 06 07 08", // Nonce
				"00 00",                   // Source-EID-AFI = 0
				"00 01 0a 00 00 01",       // ITR-RLOC 1: AFI=1 10.0.0.1
				"80 20 00 01",             // Rec: N=1, EID mask-len=32, EID-Prefix-AFI=1
				"c0 00 02 01",             // EID-Prefix 192.0.2.1
				"00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff", // xTR-ID, and nothing after it
			},
			want: &MapRequest{XTRIDPresent: true, Nonce: 0x0102030405060708,
				ITRRLOCs: []Address{ipa("10.0.0.1")}, Records: subscribeRecord,
				XTRID: pubsubXTRID, NoSiteID: true},
		},
		{
			// RFC 9437 section 5: "only one ITR-RLOC with AFI = 0".
			name: "map-request/rfc9437-unsubscribe",
			wire: []string{
				"10 10 00 01",             // Type=1, I=1, IRC=0 (one ITR-RLOC), Record Count=1
				"01 02 03 04 05 06 07 0b", // Nonce
				"00 00",                   // Source-EID-AFI = 0
				"00 00",                   // ITR-RLOC-AFI 1 = 0 (Unknown Address): no address follows
				"80 20 00 01",             // Rec: N=1, EID mask-len=32, EID-Prefix-AFI=1
				"c0 00 02 01",             // EID-Prefix 192.0.2.1
				"00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff", // xTR-ID
				"00 00 00 00 00 00 00 01",                         // site-ID = 1
			},
			want: &MapRequest{XTRIDPresent: true, Nonce: 0x010203040506070b,
				ITRRLOCs: []Address{{}}, Records: subscribeRecord,
				XTRID: pubsubXTRID, SiteID: 1},
		},
		{
			// RFC 9437 section 5: the confirmation carries the request's
			// nonce and is signed with the pub/sub key. A publication of a
			// changed mapping has the same form with the next nonce.
			name: "map-notify/confirmation-signed",
			wire: cat([]string{
				"40 00 00 01",             // Type=4, I=0, Reserved=0, Record Count=1
				"01 02 03 04 05 06 07 08", // Nonce = the Map-Request's
				"07 02 00 20",             // Key ID=7, Algorithm ID=2 (HMAC-SHA-256-128), Authentication Data Length=32
				pubsubMACConfirm,          // Authentication Data: the HMAC-SHA-256 (32 bytes)
			}, mappingHex),
			want: &MapNotify{Nonce: 0x0102030405060708, KeyID: 7, AlgorithmID: AlgHMACSHA256128,
				AuthData: unhex(pubsubMACConfirm), Records: []EIDRecord{mapping}},
			signed: true,
		},
		{
			// The ITR's ack: the Map-Notify with Type=5, the same nonce,
			// key and records, and the HMAC recomputed.
			name: "map-notify-ack/confirmation-signed",
			wire: cat([]string{
				"50 00 00 01",             // Type=5, Reserved=0, Record Count=1
				"01 02 03 04 05 06 07 08", // Nonce
				"07 02 00 20",             // Key ID=7, Algorithm ID=2, Authentication Data Length=32
				pubsubMACAck,              // Authentication Data: the HMAC-SHA-256 (32 bytes)
			}, mappingHex),
			want: &MapNotifyAck{Nonce: 0x0102030405060708, KeyID: 7, AlgorithmID: AlgHMACSHA256128,
				AuthData: unhex(pubsubMACAck), Records: []EIDRecord{mapping}},
			signed: true,
		},
		{
			// RFC 9437 section 5: a withdrawn mapping is published with
			// Record TTL 0; lispd sends it with no locators.
			name: "map-notify/withdrawal-ttl-0-iid",
			wire: []string{
				"40 00 00 01",             // Type=4, Record Count=1
				"01 02 03 04 05 06 07 09", // Nonce = last + 1
				"07 02 00 20",             // Key ID=7, Algorithm ID=2, Authentication Data Length=32
				pubsubMACWithdraw,         // Authentication Data: the HMAC-SHA-256 (32 bytes)
				"00 00 00 00",             // Record TTL = 0: remove now
				"00 10 00 00",             // Locator Count=0, EID mask-len=16, ACT=0 (No-Action), A=0
				"00 00 40 03",             // Rsvd=0, Map-Version=0, EID-Prefix-AFI=16387 (LCAF)
				"00 00 02 00",             // LCAF Rsvd1=0, Flags=0, Type=2 (Instance ID), IID mask-len=0
				"00 0a",                   // LCAF Length=10
				"00 00 03 e8",             // Instance ID = 1000
				"00 01 0a 01 00 00",       // AFI=1 10.1.0.0
			},
			want: &MapNotify{Nonce: 0x0102030405060709, KeyID: 7, AlgorithmID: AlgHMACSHA256128,
				AuthData: unhex(pubsubMACWithdraw),
				Records:  []EIDRecord{{MaskLen: 16, EID: IIDAddr(1000, ip("10.1.0.0"))}}},
			signed: true,
		},
		{
			// RFC 9437 section 5: a subscription removed after its
			// Map-Notifies went unacked: Loc-Count=0, ACT=5
			// (Drop/Auth-Failure).
			name: "map-notify/removal-notice-act-5",
			wire: []string{
				"40 00 00 01",             // Type=4, Record Count=1
				"01 02 03 04 05 06 07 0a", // Nonce = the unacked Map-Notify's
				"07 02 00 20",             // Key ID=7, Algorithm ID=2, Authentication Data Length=32
				pubsubMACRemoval,          // Authentication Data: the HMAC-SHA-256 (32 bytes)
				"00 00 00 00",             // Record TTL = 0
				"00 18 a0 00",             // Locator Count=0, EID mask-len=24, ACT=5, A=0
				"00 00 00 01",             // Rsvd=0, Map-Version=0, EID-Prefix-AFI=1
				"c0 00 02 00",             // EID-Prefix 192.0.2.0
			},
			want: &MapNotify{Nonce: 0x010203040506070a, KeyID: 7, AlgorithmID: AlgHMACSHA256128,
				AuthData: unhex(pubsubMACRemoval),
				Records:  []EIDRecord{{MaskLen: 24, Action: DropAuthFailure, EID: ipa("192.0.2.0")}}},
			signed: true,
		},
		{
			// The unsubscription's confirmation: the request's nonce and no
			// records.
			name: "map-notify/unsubscribe-confirmation-no-records",
			wire: []string{
				"40 00 00 00",             // Type=4, Record Count=0
				"01 02 03 04 05 06 07 0b", // Nonce = the unsubscribing Map-Request's
				"07 02 00 20",             // Key ID=7, Algorithm ID=2, Authentication Data Length=32
				pubsubMACEmpty,            // Authentication Data: the HMAC-SHA-256 (32 bytes)
			},
			want: &MapNotify{Nonce: 0x010203040506070b, KeyID: 7, AlgorithmID: AlgHMACSHA256128,
				AuthData: unhex(pubsubMACEmpty)},
			signed: true,
		},
		{
			name: "map-notify-ack/unsubscribe-no-records",
			wire: []string{
				"50 00 00 00",             // Type=5, Record Count=0
				"01 02 03 04 05 06 07 0b", // Nonce
				"07 02 00 20",             // Key ID=7, Algorithm ID=2, Authentication Data Length=32
				pubsubMACEmptyAck,         // Authentication Data: the HMAC-SHA-256 (32 bytes)
			},
			want: &MapNotifyAck{Nonce: 0x010203040506070b, KeyID: 7, AlgorithmID: AlgHMACSHA256128,
				AuthData: unhex(pubsubMACEmptyAck)},
			signed: true,
		},
		{
			// lispers.net (lisp_convert_reply_to_notify): the Map-Reply's
			// header becomes Type=4 with the same nonce and four zero bytes
			// of Key ID, Algorithm ID 0 and no Authentication Data.
			name: "map-notify/lispers-net-unsigned",
			wire: cat([]string{
				"40 00 00 01",             // Type=4, Record Count=1
				"01 02 03 04 05 06 07 08", // Nonce = the Map-Request's
				"00 00 00 00",             // Key ID=0, Algorithm ID=0 (none), Authentication Data Length=0
			}, lnRecordHex),
			want: &MapNotify{Nonce: 0x0102030405060708, Records: lnRecord},
		},
		{
			// lispers.net's ack as it would be with its record bytes (see
			// TestPubSubLispersNetAckWithoutRecords for what it sends).
			name: "map-notify-ack/lispers-net-unsigned",
			wire: cat([]string{
				"50 00 00 01",             // Type=5, Record Count=1
				"01 02 03 04 05 06 07 08", // Nonce
				"00 00 00 00",             // Key ID=0, Algorithm ID=0, Authentication Data Length=0
			}, lnRecordHex),
			want: &MapNotifyAck{Nonce: 0x0102030405060708, Records: lnRecord},
		},
	}
}

// lispersNetAckHex is lispers.net's Map-Notify-Ack as its ITR builds it
// (read from its source, not captured): lisp_send_map_notify_ack is given
// the EID records its decode loop has already consumed, so the ack
// declares the record but carries no bytes of it.
const lispersNetAckHex = "50000001" + // Type=5, Record Count=1
	"0102030405060708" + // Nonce
	"00000000" // Key ID=0, Algorithm ID=0, Authentication Data Length=0; then nothing

func TestPubSubGoldens(t *testing.T) {
	for _, g := range pubsubGoldens() {
		t.Run(g.name, func(t *testing.T) {
			b := hx(t, g.wire...)
			m, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			requireEqual(t, m, g.want)
			if m.Type() != g.want.Type() {
				t.Fatalf("Type() = %v, want %v", m.Type(), g.want.Type())
			}
			if n := trailingOf(m); n != 0 {
				t.Fatalf("%d trailing bytes", n)
			}
			out, err := g.want.AppendBinary(nil)
			if err != nil {
				t.Fatalf("AppendBinary: %v", err)
			}
			requireBytes(t, out, b)

			h, herr := ParseAuthHeader(b)
			switch {
			case g.signed:
				if err := Verify(b, pubsubKey); err != nil {
					t.Fatalf("Verify with the pub/sub key: %v", err)
				}
				if err := Verify(b, []byte("another key")); !errors.Is(err, ErrAuthFailed) {
					t.Fatalf("Verify with another key: %v, want ErrAuthFailed", err)
				}
				// The encoder with zero Authentication Data, then Sign,
				// gives the same bytes: what the Map-Server sends.
				z := cloneAuthMessage(g.want)
				enc, err := z.AppendBinary(nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := Sign(enc, pubsubKey); err != nil {
					t.Fatalf("Sign: %v", err)
				}
				requireBytes(t, enc, b)
				// Any change of the covered bytes fails.
				bad := append([]byte(nil), b...)
				bad[len(bad)-1] ^= 1
				if err := Verify(bad, pubsubKey); !errors.Is(err, ErrAuthFailed) {
					t.Fatalf("Verify of an altered message: %v", err)
				}
			case herr == nil:
				// Unsigned: Verify refuses it as such; accepting it is the
				// caller's choice (pubsub-unauthenticated).
				if h.AlgorithmID != AlgNone || h.AuthDataLen != 0 {
					t.Fatalf("auth header %+v", h)
				}
				if err := Verify(b, pubsubKey); !errors.Is(err, ErrNoAuth) {
					t.Fatalf("Verify of an unsigned message: %v, want ErrNoAuth", err)
				}
			}
		})
	}
}

// cloneAuthMessage returns a copy of a Map-Notify or Map-Notify-Ack with its
// Authentication Data zeroed (same length).
func cloneAuthMessage(m Message) Message {
	switch v := m.(type) {
	case *MapNotify:
		c := *v
		c.AuthData = make([]byte, len(v.AuthData))
		return &c
	case *MapNotifyAck:
		c := *v
		c.AuthData = make([]byte, len(v.AuthData))
		return &c
	}
	panic("not a signed message type")
}

// TestPubSubConfirmationSignedByEncoder: the Map-Server's way of building
// the confirmation (nil Authentication Data, which the encoder reserves at
// the algorithm's full length, then Sign) gives the hand-written bytes.
func TestPubSubConfirmationSignedByEncoder(t *testing.T) {
	conf, want := pubsubGoldenByName(t, "map-notify/confirmation-signed")
	n := *conf.(*MapNotify)
	n.AuthData = nil
	b, err := n.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewAuthenticator(pubsubKey).Sign(b); err != nil {
		t.Fatal(err)
	}
	requireBytes(t, b, want)
	// The ack the ITR returns: the same struct as a Map-Notify-Ack, signed.
	a := MapNotifyAck(n)
	ack, err := a.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Sign(ack, pubsubKey); err != nil {
		t.Fatal(err)
	}
	_, wantAck := pubsubGoldenByName(t, "map-notify-ack/confirmation-signed")
	requireBytes(t, ack, wantAck)
}

// pubsubGoldenWant returns a pub/sub golden's struct.
func pubsubGoldenWant(name string) Message {
	for _, g := range pubsubGoldens() {
		if g.name == name {
			return g.want
		}
	}
	panic("no pub/sub golden " + name)
}

// pubsubGoldenByName returns a pub/sub golden's struct and bytes.
func pubsubGoldenByName(t *testing.T, name string) (Message, []byte) {
	t.Helper()
	for _, g := range pubsubGoldens() {
		if g.name == name {
			return g.want, hx(t, g.wire...)
		}
	}
	t.Fatalf("no pub/sub golden %q", name)
	return nil, nil
}

// TestPubSubLispersNetAckWithoutRecords: lispers.net's Map-Notify-Ack
// declares a record and carries none. Parse returns an error, never a
// panic or a message: a *FieldError for the field "Record TTL" at offset 16
// (just after the authentication fields) wrapping ErrTruncated, reason
// "truncated" ("wire: parse Record TTL at offset 16: truncated input").
// The header still reads with ParseAuthHeader, which is what lets a
// Map-Server match such an ack by its nonce. The form cannot be
// re-encoded: Record Count is always len(Records).
func TestPubSubLispersNetAckWithoutRecords(t *testing.T) {
	b := unhex(lispersNetAckHex)
	m, err := Parse(b)
	if m != nil {
		t.Fatalf("Parse returned a message %#v with error %v", m, err)
	}
	if !errors.Is(err, ErrTruncated) || ErrorReason(err) != "truncated" {
		t.Fatalf("Parse: %v (reason %q), want a truncation", err, ErrorReason(err))
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Op != "parse" || fe.Field != "Record TTL" || fe.Offset != 16 {
		t.Fatalf("Parse: %#v", err)
	}
	if got, want := err.Error(), "wire: parse Record TTL at offset 16: truncated input"; got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
	h, err := ParseAuthHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h != (AuthHeader{Type: TypeMapNotifyAck, Nonce: 0x0102030405060708}) {
		t.Fatalf("auth header %+v", h)
	}
	if err := Verify(b, pubsubKey); !errors.Is(err, ErrNoAuth) {
		t.Fatalf("Verify: %v, want ErrNoAuth", err)
	}
	// The same as a Map-Notify (type 4) fails the same way.
	n := append([]byte(nil), b...)
	n[0] = 0x40
	if _, err := Parse(n); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Map-Notify without its record: %v", err)
	}
}

// TestPubSubTruncations: every proper prefix of a pub/sub golden fails to
// parse, without panicking, with one exception: the RFC form of a
// subscribing Map-Request cut just before its site-ID is exactly
// lispers.net's form (xTR-ID only), and parses as such.
func TestPubSubTruncations(t *testing.T) {
	var cut []string
	for _, g := range pubsubGoldens() {
		b := hx(t, g.wire...)
		for n := 0; n < len(b); n++ {
			m, err := Parse(b[:n])
			if err == nil {
				if req, ok := m.(*MapRequest); ok && req.NoSiteID && n == len(b)-8 && req.XTRID == pubsubXTRID {
					cut = append(cut, g.name)
					continue
				}
				t.Errorf("%s: %d of %d bytes parsed: %s", g.name, n, len(b), dump(m))
			}
		}
	}
	if want := []string{"map-request/rfc9437-subscribe", "map-request/rfc9437-unsubscribe"}; !slices.Equal(cut, want) {
		t.Errorf("cut before the site-ID and parsed as lispers.net's form: %q, want %q", cut, want)
	}
}

// TestPubSubRequestTrailer: what follows the records of a Map-Request with
// the I bit: the xTR-ID and site-ID (24 bytes, RFC 9437), the xTR-ID alone
// (16 bytes, lispers.net), more (accepted as trailing bytes after the
// site-ID), or too little (refused: RFC 9437 section 4, "SHOULD log a
// malformed Map-Request and MUST drop the message").
func TestPubSubRequestTrailer(t *testing.T) {
	head := unhex("10100001 0102030405060708 0000 00010a000001 80200001c0000201")
	x := pubsubXTRID[:]
	site := unhex("0000000000000001")
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	for _, c := range []struct {
		name     string
		trailer  []byte
		ok       bool
		noSite   bool
		siteID   uint64
		trailing int
	}{
		{"none", nil, false, false, 0, 0},
		{"15 bytes", x[:15], false, false, 0, 0},
		{"xtr-id only", x, true, true, 0, 0},
		{"xtr-id and half a site-id", cat(x, site[:4]), false, false, 0, 0},
		{"xtr-id and site-id", cat(x, site), true, false, 1, 0},
		{"xtr-id, site-id and 5 more", cat(x, site, []byte{1, 2, 3, 4, 5}), true, false, 1, 5},
	} {
		m, err := Parse(cat(head, c.trailer))
		if !c.ok {
			if err == nil || !errors.Is(err, ErrTruncated) {
				t.Errorf("%s: %v, %v; want a truncation error", c.name, m, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		req := m.(*MapRequest)
		if req.XTRID != pubsubXTRID || req.NoSiteID != c.noSite || req.SiteID != c.siteID || req.Trailing != c.trailing {
			t.Errorf("%s: %s", c.name, dump(req))
		}
	}
	// Without the I bit the same 24 bytes are only trailing bytes.
	noI := cat(head, x, site)
	noI[1] &^= 0x10
	m, err := Parse(noI)
	if err != nil {
		t.Fatal(err)
	}
	if req := m.(*MapRequest); req.XTRIDPresent || req.XTRID != (XTRID{}) || req.Trailing != 24 {
		t.Fatalf("without I: %s", dump(req))
	}
}

// TestPubSubRecordBits: the N bit is the top bit of a request record's
// first byte, separate from its 7 reserved bits, and the I bit is bit 11
// of the Map-Request's first word, separate from the R bit before it and
// the Rsvd bits after it.
func TestPubSubRecordBits(t *testing.T) {
	m := &MapRequest{XTRIDPresent: true, Reserved: MapRequestReservedMask, Nonce: 1,
		ITRRLOCs: []Address{ipa("10.0.0.1")},
		Records: []RequestRecord{
			{NotifyRequested: true, MaskLen: 32, EID: ipa("192.0.2.1")},
			{Reserved: 0x7f, MaskLen: 24, EID: ipa("192.0.2.0")},
			{NotifyRequested: true, Reserved: 0x01, MaskLen: 48, EID: IIDAddr(7, ip("2001:db8::"))},
		},
		XTRID: pubsubXTRID, SiteID: 9}
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if b[1] != 0x3f || b[2] != 0x80 { // p=0 s=0 R=1 I=1 Rsvd=1111 | Rsvd=1 L=0 D=0 IRC=0
		t.Fatalf("first word %x", b[:4])
	}
	off := 4 + 8 + 2 + 6
	if b[off] != 0x80 || b[off+8] != 0x7f || b[off+16] != 0x81 {
		t.Fatalf("record bytes %x %x %x", b[off], b[off+8], b[off+16])
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	requireEqual(t, got, m)
	p := m.Records[2]
	if iid, pr, ok := p.Prefix(); !ok || iid != 7 || pr != netip.MustParsePrefix("2001:db8::/48") {
		t.Fatalf("prefix %d %v %v", iid, pr, ok)
	}
}
