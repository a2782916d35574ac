package wire

import "bytes"

// MapRegister is a Map-Register (type 3, RFC 9301 section 5.6):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Type=3 |P|S|I|        Reserved       |E|T|a|R|M| Record Count  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Nonce . . .                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         . . . Nonce                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    Key ID     | Algorithm ID  |  Authentication Data Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                     Authentication Data                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     EID records (EIDRecord) ...               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       xTR-ID (128 bits) ...                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       site-ID (64 bits) ...                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The xTR-ID and site-ID are present when XTRIDPresent (I) is set. The R bit
// is unassigned and kept in Reserved.
//
// Authentication: AuthData is the Authentication Data field. When it is nil,
// AppendBinary reserves AlgorithmID.AuthLen(false) zero bytes (the full HMAC
// output, which deployed routers expect); set it to a zeroed slice of
// AlgorithmID.AuthLen(true) bytes to send the truncated form. Sign or an
// Authenticator then fills the field in the encoded bytes.
type MapRegister struct {
	// ProxyReply is the P bit: the Map-Server should answer Map-Requests
	// for these EIDs itself (proxy Map-Reply).
	ProxyReply bool
	// SecurityCapable is the S bit: the ETR is LISP-SEC capable.
	SecurityCapable bool
	// XTRIDPresent is the I bit: XTRID and SiteID are appended.
	XTRIDPresent bool
	// EIDNotify is the E bit: an EID-notify from a first-hop router.
	EIDNotify bool
	// UseTTL is the T bit: time the registration out with the Record TTL.
	UseTTL bool
	// MergeRequest is the a bit: merge the RLOC sets of several ETRs.
	MergeRequest bool
	// WantMapNotify is the M bit: acknowledge with a Map-Notify.
	WantMapNotify bool
	// Reserved holds the reserved bits of the first word in place (see
	// MapRegisterReservedMask).
	Reserved uint32
	// Nonce is the 64-bit nonce.
	Nonce uint64
	// KeyID selects the pre-shared key (8 bits in RFC 9301).
	KeyID uint8
	// AlgorithmID selects the MAC and key derivation.
	AlgorithmID AlgorithmID
	// AuthData is the Authentication Data; see the type documentation.
	AuthData []byte
	// Records are the registered mappings.
	Records []EIDRecord
	// XTRID is the xTR-ID, present when XTRIDPresent is set.
	XTRID XTRID
	// SiteID is the site-ID, present when XTRIDPresent is set.
	SiteID uint64
	// Trailing is the number of bytes after the message's declared
	// contents that Parse accepted and ignored.
	Trailing int
}

const (
	mregP = 0x08000000
	mregS = 0x04000000
	mregI = 0x02000000
	mregE = 0x00001000
	mregT = 0x00000800
	mrega = 0x00000400
	mregM = 0x00000100

	// MapRegisterReservedMask selects the reserved bits of a Map-Register's
	// first word (bits 7-18 and the unassigned R bit).
	MapRegisterReservedMask = 0x01ffe200
)

// Type returns TypeMapRegister.
func (m *MapRegister) Type() MessageType { return TypeMapRegister }

func parseMapRegister(b []byte) (*MapRegister, error) {
	r := reader{b: b}
	w, nonce, err := header(&r)
	if err != nil {
		return nil, err
	}
	m := &MapRegister{
		ProxyReply:      w&mregP != 0,
		SecurityCapable: w&mregS != 0,
		XTRIDPresent:    w&mregI != 0,
		EIDNotify:       w&mregE != 0,
		UseTTL:          w&mregT != 0,
		MergeRequest:    w&mrega != 0,
		WantMapNotify:   w&mregM != 0,
		Reserved:        w & MapRegisterReservedMask,
		Nonce:           nonce,
	}
	if m.KeyID, m.AlgorithmID, m.AuthData, err = parseAuthFields(&r); err != nil {
		return nil, err
	}
	if m.Records, err = parseRecords(&r, int(w&0xff)); err != nil {
		return nil, err
	}
	if m.XTRIDPresent {
		if m.XTRID, m.SiteID, err = parseXTRID(&r); err != nil {
			return nil, err
		}
	}
	m.Trailing = r.remaining()
	return m, nil
}

// AppendBinary appends the encoded Map-Register to b, with the Authentication
// Data as described on the type (zeroed, ready for Sign, when AuthData is
// nil).
func (m *MapRegister) AppendBinary(b []byte) ([]byte, error) {
	orig := len(b)
	if len(m.Records) > 255 {
		return b, encodeErr("Record Count", ErrBadValue)
	}
	if err := checkReserved(m.Reserved, MapRegisterReservedMask, "Map-Register Reserved"); err != nil {
		return b, err
	}
	w := uint32(TypeMapRegister)<<28 | m.Reserved | uint32(len(m.Records))
	for _, f := range [...]struct {
		set bool
		bit uint32
	}{
		{m.ProxyReply, mregP}, {m.SecurityCapable, mregS}, {m.XTRIDPresent, mregI},
		{m.EIDNotify, mregE}, {m.UseTTL, mregT}, {m.MergeRequest, mrega}, {m.WantMapNotify, mregM},
	} {
		if f.set {
			w |= f.bit
		}
	}
	b = appendU32(b, w)
	b = appendU64(b, m.Nonce)
	b, err := appendAuthFields(b, m.KeyID, m.AlgorithmID, m.AuthData)
	if err != nil {
		return b[:orig], err
	}
	if b, err = appendRecords(b, m.Records); err != nil {
		return b[:orig], err
	}
	if m.XTRIDPresent {
		b = appendXTRID(b, &m.XTRID, m.SiteID)
	}
	return b, nil
}

// parseAuthFields reads Key ID, Algorithm ID, Authentication Data Length and
// the Authentication Data. A zero-length field parses as nil when that is
// what AppendBinary writes for a nil AuthData, and as an empty slice
// otherwise, so that parse and append are exact inverses.
func parseAuthFields(r *reader) (uint8, AlgorithmID, []byte, error) {
	keyID, err := r.u8("Key ID")
	if err != nil {
		return 0, 0, nil, err
	}
	alg, err := r.u8("Algorithm ID")
	if err != nil {
		return 0, 0, nil, err
	}
	n, err := r.u16("Authentication Data Length")
	if err != nil {
		return 0, 0, nil, err
	}
	p, err := r.bytes(int(n), "Authentication Data")
	if err != nil {
		return 0, 0, nil, err
	}
	var data []byte
	switch {
	case n > 0:
		data = bytes.Clone(p)
	case AlgorithmID(alg).AuthLen(false) != 0:
		data = []byte{}
	}
	return keyID, AlgorithmID(alg), data, nil
}

// authZeros supplies the zeroed Authentication Data written for a nil
// AuthData and hashed in place of the field. It is never written to.
var authZeros [maxAuthLen]byte

func appendAuthFields(b []byte, keyID uint8, alg AlgorithmID, data []byte) ([]byte, error) {
	if data == nil {
		data = authZeros[:alg.AuthLen(false)]
	}
	if len(data) > 0xffff {
		return b, encodeErr("Authentication Data Length", ErrBadValue)
	}
	b = append(b, keyID, uint8(alg))
	b = appendU16(b, uint16(len(data)))
	return append(b, data...), nil
}
