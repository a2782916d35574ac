package wire

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// gen builds random, valid messages from a seeded source.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

func (g *gen) bool() bool    { return g.r.IntN(2) == 0 }
func (g *gen) u8() uint8     { return uint8(g.r.Uint32()) }
func (g *gen) u16() uint16   { return uint16(g.r.Uint32()) }
func (g *gen) u32() uint32   { return g.r.Uint32() }
func (g *gen) u64() uint64   { return g.r.Uint64() }
func (g *gen) n(max int) int { return g.r.IntN(max + 1) }
func (g *gen) bytes(n int) []byte {
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = g.u8()
	}
	return b
}

func (g *gen) ip() netip.Addr {
	if g.bool() {
		var a [4]byte
		copy(a[:], g.bytes(4))
		return netip.AddrFrom4(a)
	}
	var a [16]byte
	copy(a[:], g.bytes(16))
	return netip.AddrFrom16(a)
}

// address returns a random address; depth bounds LCAF nesting.
func (g *gen) address(depth int) Address {
	k := g.n(9)
	if depth >= 3 && k >= 6 {
		k = 0
	}
	switch k {
	case 0, 1, 2:
		return AddrFrom(g.ip())
	case 3:
		return Address{AFI: AFIMAC, Raw: g.bytes(6)}
	case 4:
		name := make([]byte, g.n(12))
		for i := range name {
			name[i] = 'a' + byte(g.n(25))
		}
		if len(name) == 0 {
			name = nil
		}
		return Address{AFI: AFIDistinguishedName, Raw: name}
	case 5:
		return Address{}
	case 6, 7:
		inner := g.address(depth + 1)
		return Address{AFI: AFILCAF, LCAFType: LCAFInstanceID, LCAFFlags: g.u8(), LCAFRsvd1: g.u8(),
			InstanceID: g.u32(), IIDMaskLen: g.u8(), Inner: &inner}
	case 8:
		var list []Address
		for i := g.n(3); i > 0; i-- {
			list = append(list, g.address(depth+1))
		}
		return Address{AFI: AFILCAF, LCAFType: LCAFAFIList, LCAFRsvd2: g.u8(), List: list}
	default:
		t := LCAFType(g.u8())
		if t == LCAFAFIList || t == LCAFInstanceID {
			t = LCAFJSON
		}
		return Address{AFI: AFILCAF, LCAFType: t, LCAFFlags: g.u8(), LCAFRsvd1: g.u8(), LCAFRsvd2: g.u8(),
			Raw: g.bytes(g.n(20))}
	}
}

// maskLen returns a mask-len valid for a.
func (g *gen) maskLen(a *Address) uint8 {
	for a.AFI == AFILCAF && a.LCAFType == LCAFInstanceID && a.Inner != nil {
		a = a.Inner
	}
	switch a.AFI {
	case AFINone:
		return 0
	case AFIIPv4:
		return uint8(g.n(32))
	case AFIIPv6:
		return uint8(g.n(128))
	case AFIMAC:
		return uint8(g.n(48))
	}
	return g.u8()
}

func (g *gen) record() EIDRecord {
	r := EIDRecord{
		RecordTTL: g.u32(), Action: Action(g.n(7)), Authoritative: g.bool(),
		Reserved: uint16(g.n(0xfff)), Rsvd: uint8(g.n(0xf)), MapVersion: uint16(g.n(0xfff)),
		EID: g.address(0),
	}
	r.MaskLen = g.maskLen(&r.EID)
	for i := g.n(4); i > 0; i-- {
		r.Locators = append(r.Locators, Locator{
			Priority: g.u8(), Weight: g.u8(), MPriority: g.u8(), MWeight: g.u8(),
			UnusedFlags: uint16(g.n(0x1fff)), Local: g.bool(), Probed: g.bool(), Reachable: g.bool(),
			Address: g.address(0),
		})
	}
	return r
}

func (g *gen) records() []EIDRecord {
	var recs []EIDRecord
	for i := g.n(4); i > 0; i-- {
		recs = append(recs, g.record())
	}
	return recs
}

func (g *gen) xtr() (bool, XTRID, uint64) {
	if !g.bool() {
		return false, XTRID{}, 0
	}
	var x XTRID
	copy(x[:], g.bytes(16))
	return true, x, g.u64()
}

// auth returns authentication fields in the form Parse produces them (so the
// round trip is exact): AuthData is never nil unless the algorithm's default
// length is zero.
func (g *gen) auth() (uint8, AlgorithmID, []byte) {
	alg := AlgorithmID(g.n(4))
	n := alg.AuthLen(false)
	switch g.n(2) {
	case 0:
	case 1:
		n = alg.AuthLen(true)
	default:
		n = g.n(40)
	}
	data := g.bytes(n)
	if data == nil && alg.AuthLen(false) != 0 {
		data = []byte{}
	}
	return g.u8(), alg, data
}

func (g *gen) mapRequest() *MapRequest {
	m := &MapRequest{
		Authoritative: g.bool(), Probe: g.bool(), SMR: g.bool(), PITR: g.bool(), SMRInvoked: g.bool(),
		LocalXTR: g.bool(), DontMapReply: g.bool(), Reserved: g.u32() & MapRequestReservedMask,
		Nonce: g.u64(), SourceEID: g.address(0),
	}
	for i := g.n(31) + 1; i > 0; i-- {
		m.ITRRLOCs = append(m.ITRRLOCs, g.address(0))
	}
	for i := g.n(4); i > 0; i-- {
		rec := RequestRecord{NotifyRequested: g.bool(), Reserved: uint8(g.n(0x7f)), EID: g.address(0)}
		rec.MaskLen = g.maskLen(&rec.EID)
		m.Records = append(m.Records, rec)
	}
	if g.bool() {
		rec := g.record()
		m.MapReplyRecord = &rec
	}
	m.XTRIDPresent, m.XTRID, m.SiteID = g.xtr()
	return m
}

func (g *gen) mapReply() *MapReply {
	return &MapReply{Probe: g.bool(), EchoNonce: g.bool(), Security: g.bool(),
		Reserved: g.u32() & MapReplyReservedMask, Nonce: g.u64(), Records: g.records()}
}

func (g *gen) mapRegister() *MapRegister {
	m := &MapRegister{
		ProxyReply: g.bool(), SecurityCapable: g.bool(), EIDNotify: g.bool(), UseTTL: g.bool(),
		MergeRequest: g.bool(), WantMapNotify: g.bool(), Reserved: g.u32() & MapRegisterReservedMask,
		Nonce: g.u64(), Records: g.records(),
	}
	m.KeyID, m.AlgorithmID, m.AuthData = g.auth()
	m.XTRIDPresent, m.XTRID, m.SiteID = g.xtr()
	return m
}

func (g *gen) mapNotify() *MapNotify {
	m := &MapNotify{Reserved: g.u32() & MapNotifyReservedMask, Nonce: g.u64(), Records: g.records()}
	m.KeyID, m.AlgorithmID, m.AuthData = g.auth()
	m.XTRIDPresent, m.XTRID, m.SiteID = g.xtr()
	return m
}

func (g *gen) ecm() *ECM {
	var src, dst netip.Addr
	if g.bool() {
		src, dst = netip.AddrFrom4([4]byte(g.bytes(4))), netip.AddrFrom4([4]byte(g.bytes(4)))
	} else {
		src, dst = netip.AddrFrom16([16]byte(g.bytes(16))), netip.AddrFrom16([16]byte(g.bytes(16)))
	}
	var inner Message
	switch g.n(4) {
	case 0:
		inner = g.mapRequest()
	case 1:
		inner = g.mapReply()
	case 2:
		inner = g.mapRegister()
	case 3:
		inner = g.mapNotify()
	default:
		inner = (*MapNotifyAck)(g.mapNotify())
	}
	return &ECM{Security: g.bool(), DDT: g.bool(), ToETR: g.bool(), ToMS: g.bool(),
		Reserved: g.u32() & ECMReservedMask, TTL: g.u8(),
		Source: netip.AddrPortFrom(src, g.u16()), Destination: netip.AddrPortFrom(dst, g.u16()), Inner: inner}
}

func (g *gen) mapReferral() *MapReferral {
	m := &MapReferral{Reserved: g.u32() & MapReferralReservedMask, Nonce: g.u64()}
	for range g.n(3) {
		e := g.record()
		r := ReferralRecord{RecordTTL: e.RecordTTL, MaskLen: e.MaskLen, Action: ReferralAction(e.Action),
			Authoritative: e.Authoritative, Incomplete: g.bool(), Reserved: e.Reserved & 0x07ff,
			MapVersion: e.MapVersion, EID: e.EID, Locators: e.Locators}
		for range g.n(2) {
			r.Signatures = append(r.Signatures, ReferralSignature{OriginalTTL: g.u32(), Expiration: g.u32(),
				Inception: g.u32(), KeyTag: g.u16(), Algorithm: g.u8(), Reserved: g.u32() & 0x00ffffff,
				Signature: g.bytes(g.n(40))})
		}
		m.Records = append(m.Records, r)
	}
	return m
}

func (g *gen) info() *Info {
	eid := g.address(0)
	m := &Info{Reply: g.bool(), Reserved: g.u32() & InfoReservedMask, Nonce: g.u64(), TTL: g.u32(),
		EIDReserved: g.u8(), EID: eid, MaskLen: g.maskLen(&eid), Address: g.address(0)}
	m.KeyID, m.AlgorithmID, m.AuthData = g.auth()
	return m
}

func (g *gen) message() Message {
	switch g.n(8) {
	case 6:
		return g.mapReferral()
	case 7:
		return g.info()
	case 8:
		return &SharedExtension{SubType: g.u16() & 0x0fff, Data: g.bytes(g.n(20))}
	case 0:
		return g.mapRequest()
	case 1:
		return g.mapReply()
	case 2:
		return g.mapRegister()
	case 3:
		return g.mapNotify()
	case 4:
		return (*MapNotifyAck)(g.mapNotify())
	}
	return g.ecm()
}

func TestRandomRoundTrips(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(*gen) Message
	}{
		{"map-request", func(g *gen) Message { return g.mapRequest() }},
		{"map-reply", func(g *gen) Message { return g.mapReply() }},
		{"map-register", func(g *gen) Message { return g.mapRegister() }},
		{"map-notify", func(g *gen) Message { return g.mapNotify() }},
		{"map-notify-ack", func(g *gen) Message { return (*MapNotifyAck)(g.mapNotify()) }},
		{"ecm", func(g *gen) Message { return g.ecm() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGen(uint64(len(c.name)) * 7919)
			for i := 0; i < 2000; i++ {
				m := c.make(g)
				b, err := m.AppendBinary(nil)
				if err != nil {
					t.Fatalf("#%d AppendBinary: %v\n%s", i, err, dump(m))
				}
				got, err := Parse(b)
				if err != nil {
					t.Fatalf("#%d Parse: %v\n%x\n%s", i, err, b, dump(m))
				}
				requireEqual(t, got, m)
				// Parse -> append is the identity on bytes.
				again, err := got.AppendBinary(nil)
				if err != nil {
					t.Fatal(err)
				}
				requireBytes(t, again, b)
			}
		})
	}
}

func TestRandomAddressesAndDataHeaders(t *testing.T) {
	g := newGen(42)
	for i := 0; i < 5000; i++ {
		a := g.address(0)
		b, err := a.AppendBinary(nil)
		if err != nil {
			t.Fatalf("%v: %v", dump(a), err)
		}
		if len(b) != a.Len() {
			t.Fatalf("Len %d, encoded %d", a.Len(), len(b))
		}
		got, n, err := ParseAddress(b)
		if err != nil || n != len(b) {
			t.Fatalf("%x: %v (%d)", b, err, n)
		}
		requireEqual(t, got, a)
		_ = got.String()

		h := DataHeader{N: g.bool(), L: g.bool(), E: g.bool(), V: g.bool(), I: g.bool(), Reserved: uint8(g.n(7)), LSB: g.u32()}
		if h.V {
			h.SourceMapVersion, h.DestMapVersion = uint16(g.n(0xfff)), uint16(g.n(0xfff))
		} else {
			h.Nonce = uint32(g.n(0xffffff))
		}
		if h.I {
			h.InstanceID, h.LSB = uint32(g.n(0xffffff)), uint32(g.n(0xff))
		}
		db, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		dh, err := ParseDataHeader(db)
		if err != nil {
			t.Fatal(err)
		}
		requireEqual(t, dh, h)
	}
}

func TestRandomSignVerify(t *testing.T) {
	g := newGen(7)
	a := NewAuthenticator(nil)
	for i := 0; i < 300; i++ {
		key := g.bytes(g.n(100))
		a.SetKey(key)
		m := g.mapRegister()
		m.AlgorithmID = AlgorithmID(1 + g.n(2))
		m.AuthData = nil
		if g.bool() {
			m.AuthData = make([]byte, m.AlgorithmID.AuthLen(true))
		}
		var msg Message = m
		if g.bool() {
			n := MapNotify{Nonce: m.Nonce, KeyID: m.KeyID, AlgorithmID: m.AlgorithmID, AuthData: m.AuthData, Records: m.Records}
			msg = &n
		}
		b, err := msg.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Sign(b); err != nil {
			t.Fatal(err)
		}
		n := int(b[14])<<8 | int(b[15])
		requireBytes(t, b[authOffset:authOffset+n], referenceMAC(t, zeroAuth(b), key))
		if err := Verify(b, key); err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
	}
}

// zeroAuth returns msg with its Authentication Data zeroed.
func zeroAuth(msg []byte) []byte {
	b := append([]byte{}, msg...)
	n := int(b[14])<<8 | int(b[15])
	clear(b[authOffset : authOffset+n])
	return b
}
