package wire

import (
	"errors"
	"net/netip"
	"testing"
)

// golden is a message written by hand in hex from the RFC diagrams, with the
// struct it must parse to.
type golden struct {
	name string
	wire []byte
	want Message
}

// goldenMessages are the hand-written control messages. The bytes are not
// produced by the encoder: each line is one field or one 32-bit word of the
// RFC diagram, commented.
func goldenMessages(t testing.TB) []golden {
	xtr := XTRID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	gs := []golden{
		{
			name: "map-request/ipv4",
			wire: hx(t,
				"10 00 00 01", // Type=1, A M P S p s R I = 0, Rsvd=0, L=0 D=0, IRC=0, Record Count=1
				"01 23 45 67", // Nonce (high)
				"89 ab cd ef", // Nonce (low)
				"00 01",       // Source-EID-AFI = 1 (IPv4)
				"0a 00 00 01", // Source EID 10.0.0.1
				"00 01",       // ITR-RLOC-AFI 1 = 1
				"c0 00 02 01", // ITR-RLOC 1 192.0.2.1
				"00 18 00 01", // Rec: Reserved=0, EID mask-len=24, EID-Prefix-AFI=1
				"0a 01 02 00", // EID-Prefix 10.1.2.0
			),
			want: &MapRequest{
				Nonce:     0x0123456789abcdef,
				SourceEID: ipa("10.0.0.1"),
				ITRRLOCs:  []Address{ipa("192.0.2.1")},
				Records:   []RequestRecord{{MaskLen: 24, EID: ipa("10.1.2.0")}},
			},
		},
		{
			name: "map-request/ipv6-iid-lcaf",
			wire: hx(t,
				"12 40 01 01", // Type=1, P=1 | s=1 | IRC=1 (two ITR-RLOCs) | Record Count=1
				"00 00 00 00", // Nonce
				"00 00 00 2a", // Nonce = 42
				"00 02",       // Source-EID-AFI = 2 (IPv6)
				"20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01", // 2001:db8::1
				"00 01 c0 00 02 01", // ITR-RLOC 1: AFI=1 192.0.2.1
				"00 02 20 01 0d b8 ff ff 00 00 00 00 00 00 00 00 00 01", // ITR-RLOC 2: AFI=2 2001:db8:ffff::1
				"00 30",       // Rec: Reserved=0, EID mask-len=48
				"40 03",       // EID-Prefix-AFI = 16387 (LCAF)
				"00 00",       // LCAF Rsvd1=0, Flags=0
				"02 00 00 16", // LCAF Type=2 (Instance ID), IID mask-len=0, Length=22
				"00 00 03 e8", // Instance ID = 1000
				"00 02 20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 00", // AFI=2 2001:db8:1::
			),
			want: &MapRequest{
				Probe:      true,
				SMRInvoked: true,
				Nonce:      42,
				SourceEID:  ipa("2001:db8::1"),
				ITRRLOCs:   []Address{ipa("192.0.2.1"), ipa("2001:db8:ffff::1")},
				Records:    []RequestRecord{{MaskLen: 48, EID: iidAddr(1000, ipa("2001:db8:1::"))}},
			},
		},
		{
			name: "map-request/map-reply-record-xtr-id",
			wire: hx(t,
				"14 10 60 01",       // Type=1, M=1 | I=1 | L=1 D=1 IRC=0 | Record Count=1
				"00 00 00 00",       // Nonce
				"00 00 00 07",       // Nonce = 7
				"00 00",             // Source-EID-AFI = 0 (no source EID)
				"00 01 c6 33 64 01", // ITR-RLOC: AFI=1 198.51.100.1
				"80 20 00 01",       // Rec: N=1 Reserved=0, EID mask-len=32, AFI=1
				"0a 00 00 01",       // EID-Prefix 10.0.0.1
				// Map-Reply Record
				"00 00 05 a0", // Record TTL = 1440
				"01 20 10 00", // Locator Count=1, EID mask-len=32, ACT=0 A=1 Reserved=0
				"00 00 00 01", // Rsvd=0 Map-Version=0, EID-Prefix-AFI=1
				"0a 00 00 01", // EID-Prefix 10.0.0.1
				"01 64 ff 00", // Priority=1 Weight=100 M Priority=255 M Weight=0
				"00 05 00 01", // Unused Flags=0 L=1 p=0 R=1, Loc-AFI=1
				"c6 33 64 01", // Locator 198.51.100.1
				"00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff", // xTR-ID
				"00 00 00 00 00 00 00 63",                         // site-ID = 99
			),
			want: &MapRequest{
				XTRIDPresent: true,
				LocalXTR:     true,
				DontMapReply: true,
				Nonce:        7,
				ITRRLOCs:     []Address{ipa("198.51.100.1")},
				Records:      []RequestRecord{{NotifyRequested: true, MaskLen: 32, EID: ipa("10.0.0.1")}},
				MapReplyRecord: &EIDRecord{
					RecordTTL: 1440, MaskLen: 32, Authoritative: true, EID: ipa("10.0.0.1"),
					Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Local: true, Reachable: true, Address: ipa("198.51.100.1")}},
				},
				XTRID:  xtr,
				SiteID: 99,
			},
		},
		{
			name: "map-reply/ipv4-two-locators",
			wire: hx(t,
				"20 00 00 01",             // Type=2, P=0 E=0 S=0, Reserved=0, Record Count=1
				"01 23 45 67 89 ab cd ef", // Nonce
				"00 00 05 a0",             // Record TTL = 1440
				"02 18 10 00",             // Locator Count=2, EID mask-len=24, ACT=0 A=1
				"00 00 00 01",             // Rsvd=0 Map-Version=0, EID-Prefix-AFI=1
				"0a 01 02 00",             // EID-Prefix 10.1.2.0
				"01 32 ff 00",             // Priority=1 Weight=50 M Priority=255 M Weight=0
				"00 01 00 01",             // L=0 p=0 R=1, Loc-AFI=1
				"c0 00 02 01",             // Locator 192.0.2.1
				"02 32 ff 00",             // Priority=2 Weight=50 M Priority=255 M Weight=0
				"00 01 00 01",             // R=1, Loc-AFI=1
				"c0 00 02 02",             // Locator 192.0.2.2
			),
			want: &MapReply{
				Nonce: 0x0123456789abcdef,
				Records: []EIDRecord{{
					RecordTTL: 1440, MaskLen: 24, Authoritative: true, EID: ipa("10.1.2.0"),
					Locators: []Locator{
						{Priority: 1, Weight: 50, MPriority: 255, Reachable: true, Address: ipa("192.0.2.1")},
						{Priority: 2, Weight: 50, MPriority: 255, Reachable: true, Address: ipa("192.0.2.2")},
					},
				}},
			},
		},
		{
			name: "map-reply/negative-ipv6",
			wire: hx(t,
				"20 00 00 01",             // Type=2, Record Count=1
				"00 00 00 00 00 00 00 01", // Nonce = 1
				"00 00 00 0f",             // Record TTL = 15
				"00 20 20 00",             // Locator Count=0, EID mask-len=32, ACT=1 (Natively-Forward) A=0
				"00 00 00 02",             // Rsvd=0 Map-Version=0, EID-Prefix-AFI=2
				"20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 00", // 2001:db8::
			),
			want: &MapReply{
				Nonce:   1,
				Records: []EIDRecord{{RecordTTL: 15, MaskLen: 32, Action: NativelyForward, EID: ipa("2001:db8::")}},
			},
		},
		{
			name: "map-reply/negative-drop-iid",
			wire: hx(t,
				"20 00 00 01",             // Type=2, Record Count=1
				"00 00 00 00 00 00 00 02", // Nonce = 2
				"00 00 00 01",             // Record TTL = 1
				"00 08 90 00",             // Locator Count=0, EID mask-len=8, ACT=4 (Drop/Policy-Denied) A=1
				"00 00 40 03",             // Rsvd=0 Map-Version=0, EID-Prefix-AFI=16387
				"00 00 02 00 00 0a",       // LCAF Rsvd1=0 Flags=0 Type=2 IID mask-len=0 Length=10
				"00 ff ff ff",             // Instance ID = 16777215
				"00 01 0a 00 00 00",       // AFI=1 10.0.0.0
			),
			want: &MapReply{
				Nonce: 2,
				Records: []EIDRecord{{
					RecordTTL: 1, MaskLen: 8, Action: DropPolicyDenied, Authoritative: true,
					EID: iidAddr(0xffffff, ipa("10.0.0.0")),
				}},
			},
		},
		{
			name: "map-reply/iid-eid-ipv6-locator",
			wire: hx(t,
				"2c 00 00 01",             // Type=2, P=1 E=1 S=0, Record Count=1
				"00 00 00 00 00 00 00 09", // Nonce = 9
				"00 00 00 3c",             // Record TTL = 60
				"01 10 10 00",             // Locator Count=1, EID mask-len=16, ACT=0 A=1
				"00 7b 40 03",             // Rsvd=0 Map-Version=123, EID-Prefix-AFI=16387
				"00 00 02 00 00 0a",       // LCAF Rsvd1=0 Flags=0 Type=2 IID mask-len=0 Length=10
				"00 00 00 05",             // Instance ID = 5
				"00 01 0a 0b 00 00",       // AFI=1 10.11.0.0
				"01 64 01 64",             // Priority=1 Weight=100 M Priority=1 M Weight=100
				"00 03 00 02",             // L=0 p=1 R=1, Loc-AFI=2
				"20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02", // 2001:db8::2
			),
			want: &MapReply{
				Probe: true, EchoNonce: true, Nonce: 9,
				Records: []EIDRecord{{
					RecordTTL: 60, MaskLen: 16, Authoritative: true, MapVersion: 123,
					EID: iidAddr(5, ipa("10.11.0.0")),
					Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 1, MWeight: 100,
						Probed: true, Reachable: true, Address: ipa("2001:db8::2")}},
				}},
			},
		},
		{
			name: "map-reply/afi-list-locator",
			wire: hx(t,
				"20 00 00 01",             // Type=2, Record Count=1
				"00 00 00 00 00 00 00 0a", // Nonce = 10
				"00 00 05 a0",             // Record TTL = 1440
				"01 20 10 00",             // Locator Count=1, EID mask-len=32, A=1
				"00 00 00 01",             // Map-Version=0, EID-Prefix-AFI=1
				"0a 00 00 63",             // 10.0.0.99
				"01 64 ff 00",             // Priority=1 Weight=100 M Priority=255 M Weight=0
				"00 01 40 03",             // R=1, Loc-AFI=16387
				"00 00 01 00 00 18",       // LCAF Rsvd1=0 Flags=0 Type=1 (AFI List) Rsvd2=0 Length=24
				"00 01 c0 00 02 05",       // AFI=1 192.0.2.5
				"00 02 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 05", // AFI=2 2001:db8::5
			),
			want: &MapReply{
				Nonce: 10,
				Records: []EIDRecord{{
					RecordTTL: 1440, MaskLen: 32, Authoritative: true, EID: ipa("10.0.0.99"),
					Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Reachable: true,
						Address: Address{AFI: AFILCAF, LCAFType: LCAFAFIList,
							List: []Address{ipa("192.0.2.5"), ipa("2001:db8::5")}}}},
				}},
			},
		},
		{
			name: "map-register/no-auth",
			wire: hx(t,
				"30 00 04 01",             // Type=3, P S I = 0, Reserved, E=0 T=0 a=1 R=0 M=0, Record Count=1
				"00 00 00 00 00 00 00 00", // Nonce = 0
				"00 00 00 00",             // Key ID=0, Algorithm ID=0 (None), Authentication Data Length=0
				"ff ff ff ff",             // Record TTL = forever
				"00 20 10 00",             // Locator Count=0, EID mask-len=32, A=1
				"00 00 40 05",             // Map-Version=0, EID-Prefix-AFI=16389 (MAC)
				"00 11 22 33 44 55",       // MAC 00:11:22:33:44:55
			),
			want: &MapRegister{
				MergeRequest: true,
				Records: []EIDRecord{{RecordTTL: 0xffffffff, MaskLen: 32, Authoritative: true,
					EID: Address{AFI: AFIMAC, Raw: []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}}}},
			},
		},
		{
			name: "map-notify-ack/no-records",
			wire: hx(t,
				"50 00 00 00",             // Type=5, I=0, Reserved=0, Record Count=0
				"01 02 03 04 05 06 07 08", // Nonce
				"00 00 00 00",             // Key ID=0, Algorithm ID=0, Authentication Data Length=0
			),
			want: &MapNotifyAck{Nonce: 0x0102030405060708},
		},
		{
			name: "ecm/ipv4-map-request",
			wire: hx(t,
				"80 00 00 00", // LH: Type=8, S=0 D=0 E=0 M=0, Reserved=0
				"45 00 00 3c", // IH: Version=4 IHL=5, TOS=0, Total Length=60
				"00 00 00 00", // Identification=0, Flags=0, Fragment Offset=0
				"40 11 8e 72", // TTL=64, Protocol=17, Header Checksum=0x8e72
				"c0 00 02 01", // Source 192.0.2.1
				"c6 33 64 0a", // Destination 198.51.100.10
				"10 f6 10 f6", // UDP Source Port=4342, Dest Port=4342
				"00 28 6b 2d", // UDP Length=40, UDP Checksum=0x6b2d
				// LCM: the map-request/ipv4 golden message
				"10 00 00 01 01 23 45 67 89 ab cd ef 00 01 0a 00 00 01",
				"00 01 c0 00 02 01 00 18 00 01 0a 01 02 00",
			),
			want: &ECM{
				Source:      netip.MustParseAddrPort("192.0.2.1:4342"),
				Destination: netip.MustParseAddrPort("198.51.100.10:4342"),
				TTL:         64,
				Inner: &MapRequest{
					Nonce:     0x0123456789abcdef,
					SourceEID: ipa("10.0.0.1"),
					ITRRLOCs:  []Address{ipa("192.0.2.1")},
					Records:   []RequestRecord{{MaskLen: 24, EID: ipa("10.1.2.0")}},
				},
			},
		},
		{
			name: "ecm/ipv6-map-request",
			wire: hx(t,
				"81 00 00 00", // LH: Type=8, S=0 D=0 E=0 M=1 (to-MS), Reserved=0
				"60 00 00 00", // IH: Version=6, Traffic Class=0, Flow Label=0
				"00 5e 11 40", // Payload Length=94, Next Header=17, Hop Limit=64
				"20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01", // Source 2001:db8::1
				"20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02", // Destination 2001:db8::2
				"c0 00 10 f6", // UDP Source Port=49152, Dest Port=4342
				"00 5e 2d f3", // UDP Length=94, UDP Checksum=0x2df3
				// LCM: the map-request/ipv6-iid-lcaf golden message
				"12 40 01 01 00 00 00 00 00 00 00 2a",
				"00 02 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01",
				"00 01 c0 00 02 01",
				"00 02 20 01 0d b8 ff ff 00 00 00 00 00 00 00 00 00 01",
				"00 30 40 03 00 00 02 00 00 16 00 00 03 e8",
				"00 02 20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 00",
			),
			want: &ECM{
				ToMS:        true,
				Source:      netip.MustParseAddrPort("[2001:db8::1]:49152"),
				Destination: netip.MustParseAddrPort("[2001:db8::2]:4342"),
				TTL:         64,
				Inner: &MapRequest{
					Probe: true, SMRInvoked: true, Nonce: 42,
					SourceEID: ipa("2001:db8::1"),
					ITRRLOCs:  []Address{ipa("192.0.2.1"), ipa("2001:db8:ffff::1")},
					Records:   []RequestRecord{{MaskLen: 48, EID: iidAddr(1000, ipa("2001:db8:1::"))}},
				},
			},
		},
		{
			name: "map-referral/ms-referral-signed",
			wire: hx(t,
				"60 00 00 01", // Type=6, Reserved=0, Record Count=1
				"00 00 00 00", // Nonce
				"00 00 00 63", // Nonce = 99
				"00 00 05 a0", // Record TTL = 1440
				"01 10 38 00", // Referral Count=1, EID mask-len=16, ACT=1 (MS-REFERRAL) A=1 I=1, Reserved=0
				"10 05 00 01", // SigCnt=1, Map Version Number=5, EID-AFI=1
				"0a 01 00 00", // EID-Prefix 10.1.0.0
				"01 64 ff 00", // Ref: Priority=1 Weight=100 M Priority=255 M Weight=0
				"00 01 00 01", // Unused Flags=0 L=0 p=0 R=1, Loc-AFI=1
				"c6 33 64 0a", // Locator 198.51.100.10
				"00 00 05 a0", // Sig: Original Record TTL = 1440
				"65 00 00 00", // Signature Expiration = 0x65000000
				"64 00 00 00", // Signature Inception = 0x64000000
				"12 34 00 04", // Key Tag=0x1234, Sig Length=4
				"02 00 00 00", // Sig-Algorithm=2 (RSA-SHA256), Reserved=0, Reserved=0
				"de ad be ef", // Signature
			),
			want: &MapReferral{
				Nonce: 99,
				Records: []ReferralRecord{{
					RecordTTL: 1440, MaskLen: 16, Action: MSReferral, Authoritative: true, Incomplete: true,
					MapVersion: 5, EID: ipa("10.1.0.0"),
					Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Reachable: true, Address: ipa("198.51.100.10")}},
					Signatures: []ReferralSignature{{
						OriginalTTL: 1440, Expiration: 0x65000000, Inception: 0x64000000,
						KeyTag: 0x1234, Algorithm: 2, Signature: []byte{0xde, 0xad, 0xbe, 0xef},
					}},
				}},
			},
		},
		{
			name: "map-referral/not-registered-ipv6",
			wire: hx(t,
				"60 00 00 02", // Type=6, Reserved=0, Record Count=2
				"00 00 00 00", // Nonce
				"00 00 00 64", // Nonce = 100
				"00 00 00 0f", // Rec 1: Record TTL = 15
				"00 30 60 00", // Referral Count=0, EID mask-len=48, ACT=3 (MS-NOT-REGISTERED) A=0 I=0
				"00 00 00 02", // SigCnt=0, Map Version Number=0, EID-AFI=2
				"20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 00", // EID-Prefix 2001:db8:1::
				"00 00 00 00", // Rec 2: Record TTL = 0
				"00 00 a0 00", // Referral Count=0, EID mask-len=0, ACT=5 (NOT-AUTHORITATIVE)
				"00 00 00 00", // SigCnt=0, Map Version Number=0, EID-AFI=0 (no prefix)
			),
			want: &MapReferral{
				Nonce: 100,
				Records: []ReferralRecord{
					{RecordTTL: 15, MaskLen: 48, Action: MSNotRegistered, EID: ipa("2001:db8:1::")},
					{Action: NotAuthoritative},
				},
			},
		},
		{
			name: "info-request/ipv4",
			wire: hx(t,
				"70 00 00 00", // Type=7, R=0 (Info-Request), Reserved=0
				"00 00 00 00", // Nonce
				"00 00 00 07", // Nonce = 7
				"00 00 00 00", // Key ID=0, Algorithm ID=0 (None), Authentication Data Length=0
				"00 00 00 00", // TTL = 0
				"00 18 00 01", // Reserved=0, EID mask-len=24, EID-Prefix-AFI=1
				"0a 01 02 00", // EID-Prefix 10.1.2.0
				"00 00",       // AFI = 0 (no NAT-Traversal LCAF in a request)
			),
			want: &Info{Nonce: 7, MaskLen: 24, EID: ipa("10.1.2.0")},
		},
		{
			name: "info-reply/nat-traversal-lcaf",
			wire: hx(t,
				"78 00 00 00",       // Type=7, R=1 (Info-Reply), Reserved=0
				"00 00 00 00",       // Nonce
				"00 00 00 07",       // Nonce = 7
				"00 01 00 00",       // Key ID=0, Algorithm ID=1 (HMAC-SHA-1-96), Authentication Data Length=0
				"00 00 05 a0",       // TTL = 1440
				"00 18 00 01",       // Reserved=0, EID mask-len=24, EID-Prefix-AFI=1
				"0a 01 02 00",       // EID-Prefix 10.1.2.0
				"40 03",             // AFI = 16387 (LCAF)
				"00 00",             // Rsvd1=0, Flags=0
				"07 00 00 22",       // Type=7 (NAT-Traversal), Rsvd2=0, Length=34
				"10 f6 d4 31",       // MS UDP Port=4342, ETR UDP Port=54321
				"00 01 cb 00 71 05", // Global ETR RLOC: AFI=1 203.0.113.5
				"00 01 c0 00 02 0a", // MS RLOC: AFI=1 192.0.2.10
				"00 01 0a 00 00 05", // Private ETR RLOC: AFI=1 10.0.0.5
				"00 01 c6 33 64 01", // RTR RLOC 1: AFI=1 198.51.100.1
				"00 01 c6 33 64 02", // RTR RLOC 2: AFI=1 198.51.100.2
			),
			want: &Info{
				Reply: true, Nonce: 7, AlgorithmID: AlgHMACSHA196, AuthData: []byte{},
				TTL: 1440, MaskLen: 24, EID: ipa("10.1.2.0"),
				Address: Address{AFI: AFILCAF, LCAFType: LCAFNATTraversal, Raw: hx(t,
					"10 f6 d4 31",
					"00 01 cb 00 71 05", "00 01 c0 00 02 0a", "00 01 0a 00 00 05",
					"00 01 c6 33 64 01", "00 01 c6 33 64 02")},
			},
		},
		{
			name: "shared-extension/sub-type-5",
			wire: hx(t,
				"f0 05",       // Type=15, Sub-type=5
				"12 34",       // extension-specific
				"00 00 00 2a", // extension-specific
				"de ad be ef", // extension-specific
				"ca fe",       // extension-specific
			),
			want: &SharedExtension{SubType: 5, Data: hx(t, "12 34 00 00 00 2a de ad be ef ca fe")},
		},
	}
	return append(gs, authGoldens(t)...)
}

func TestGoldenMessages(t *testing.T) {
	for _, g := range goldenMessages(t) {
		t.Run(g.name, func(t *testing.T) {
			m, err := Parse(g.wire)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			requireEqual(t, m, g.want)
			if m.Type() != g.want.Type() {
				t.Fatalf("Type() = %v, want %v", m.Type(), g.want.Type())
			}
			// Re-encode the expected struct (not the parsed one) onto a
			// non-empty prefix, proving the append behaviour.
			prefix := []byte{0xde, 0xad}
			out, err := g.want.AppendBinary(prefix)
			if err != nil {
				t.Fatalf("AppendBinary: %v", err)
			}
			requireBytes(t, out[:2], prefix)
			requireBytes(t, out[2:], g.wire)
		})
	}
}

func TestGoldenTruncations(t *testing.T) {
	// Every proper prefix of a golden message must fail with an error, never
	// a panic; most fail as truncated, the others because a length field no
	// longer fits (ECM) or because the cut leaves a valid shorter message
	// impossible (counts are fixed in the header).
	for _, g := range goldenMessages(t) {
		for n := 0; n < len(g.wire); n++ {
			if g.want.Type() == TypeSharedExtension && n >= 2 {
				break // everything after the Sub-type is opaque
			}
			m, err := Parse(g.wire[:n])
			if req, ok := g.want.(*MapRequest); ok && req.XTRIDPresent && !req.NoSiteID && n == len(g.wire)-8 {
				// Without its site-ID a Map-Request with the I bit is what
				// lispers.net sends: valid, with NoSiteID.
				if got, ok := m.(*MapRequest); err != nil || !ok || !got.NoSiteID || got.XTRID != req.XTRID {
					t.Fatalf("%s: without its site-ID: %v %s", g.name, err, dump(m))
				}
				continue
			}
			if err == nil {
				t.Fatalf("%s: Parse of %d/%d bytes succeeded: %s", g.name, n, len(g.wire), dump(m))
			}
			if ErrorReason(err) == "other" {
				t.Fatalf("%s: error without reason: %v", g.name, err)
			}
			if m != nil {
				t.Fatalf("%s: Parse returned a non-nil message with its error", g.name)
			}
		}
	}
}

func TestGoldenTrailingBytes(t *testing.T) {
	junk := []byte{0xca, 0xfe, 0xba, 0xbe, 0x00}
	for _, g := range goldenMessages(t) {
		if g.want.Type() == TypeSharedExtension {
			continue // trailing bytes are part of the opaque content
		}
		t.Run(g.name, func(t *testing.T) {
			b := append(append([]byte{}, g.wire...), junk...)
			m, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse with trailing bytes: %v", err)
			}
			if got := trailingOf(m); got != len(junk) {
				t.Fatalf("Trailing = %d, want %d", got, len(junk))
			}
			clearTrailing(m)
			requireEqual(t, m, g.want)
		})
	}
}

func TestParseUnknownTypes(t *testing.T) {
	for _, typ := range []MessageType{0, 9, 10, 11, 12, 13, 14} {
		b := make([]byte, 64)
		b[0] = byte(typ) << 4
		_, err := Parse(b)
		var ute *UnknownTypeError
		if !errors.As(err, &ute) || ute.Type != typ || !errors.Is(err, ErrUnknownType) {
			t.Fatalf("type %d: err = %v, want UnknownTypeError", typ, err)
		}
		if ErrorReason(err) != "unknown_type" {
			t.Fatalf("reason %q", ErrorReason(err))
		}
	}
	if _, err := Parse(nil); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Parse(nil) = %v", err)
	}
}

// TestRegressionParseErrorIsUntypedNil: FuzzParse's seed []byte{0x10} (a
// one-byte Map-Request) once made Parse return a nil *MapRequest inside a
// non-nil Message together with its error.
func TestRegressionParseErrorIsUntypedNil(t *testing.T) {
	for _, b := range [][]byte{{0x10}, {0x20}, {0x30}, {0x40}, {0x50}, {0x80}, {0x80, 0, 0, 0, 0x45}} {
		m, err := Parse(b)
		if err == nil || m != nil {
			t.Fatalf("Parse(%x) = %v, %v; want nil message and an error", b, m, err)
		}
	}
	if p, err := ECMPayload([]byte{0x80, 0, 0}); err == nil || p != nil {
		t.Fatalf("ECMPayload on a short message = %x, %v", p, err)
	}
}
