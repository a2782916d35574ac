package wire

// MapNotify is a Map-Notify (type 4, RFC 9301 section 5.7). Map-Notify-Ack
// (type 5) has the same layout, with Type=5, and is the MapNotifyAck type:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Type=4 |I|             Reserved                | Record Count  |
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
// The fields are those of the Map-Register being acknowledged. The I bit (bit
// 4, as deployed implementations and the NAT-traversal and pub/sub
// extensions use it) says the xTR-ID and site-ID are appended. A
// Map-Notify-Ack may carry no records. AuthData follows the same rules as
// MapRegister.AuthData.
type MapNotify struct {
	// XTRIDPresent is the I bit: XTRID and SiteID are appended.
	XTRIDPresent bool
	// Reserved holds the reserved bits of the first word in place (see
	// MapNotifyReservedMask).
	Reserved uint32
	// Nonce is the nonce of the Map-Register being acknowledged (or of the
	// subscription, RFC 9437).
	Nonce uint64
	// KeyID selects the pre-shared key.
	KeyID uint8
	// AlgorithmID selects the MAC and key derivation.
	AlgorithmID AlgorithmID
	// AuthData is the Authentication Data; see MapRegister.
	AuthData []byte
	// Records are the mappings being notified.
	Records []EIDRecord
	// XTRID is the xTR-ID, present when XTRIDPresent is set.
	XTRID XTRID
	// SiteID is the site-ID, present when XTRIDPresent is set.
	SiteID uint64
	// Trailing is the number of bytes after the message's declared
	// contents that Parse accepted and ignored.
	Trailing int
}

// MapNotifyAck is a Map-Notify-Ack (type 5): a MapNotify sent back by the ETR.
// Convert with MapNotifyAck(n) / MapNotify(a); the layout is identical.
type MapNotifyAck MapNotify

const (
	mnotI = 0x08000000

	// MapNotifyReservedMask selects the reserved bits of a Map-Notify's or
	// Map-Notify-Ack's first word.
	MapNotifyReservedMask = 0x07ffff00
)

// Type returns TypeMapNotify.
func (m *MapNotify) Type() MessageType { return TypeMapNotify }

// AppendBinary appends the encoded Map-Notify to b.
func (m *MapNotify) AppendBinary(b []byte) ([]byte, error) {
	return appendNotify(b, m, TypeMapNotify)
}

// Type returns TypeMapNotifyAck.
func (m *MapNotifyAck) Type() MessageType { return TypeMapNotifyAck }

// AppendBinary appends the encoded Map-Notify-Ack to b.
func (m *MapNotifyAck) AppendBinary(b []byte) ([]byte, error) {
	return appendNotify(b, (*MapNotify)(m), TypeMapNotifyAck)
}

func parseNotify(b []byte) (*MapNotify, error) {
	r := reader{b: b}
	w, nonce, err := header(&r)
	if err != nil {
		return nil, err
	}
	m := &MapNotify{
		XTRIDPresent: w&mnotI != 0,
		Reserved:     w & MapNotifyReservedMask,
		Nonce:        nonce,
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

func appendNotify(b []byte, m *MapNotify, t MessageType) ([]byte, error) {
	orig := len(b)
	if len(m.Records) > 255 {
		return b, encodeErr("Record Count", ErrBadValue)
	}
	if err := checkReserved(m.Reserved, MapNotifyReservedMask, "Map-Notify Reserved"); err != nil {
		return b, err
	}
	w := uint32(t)<<28 | m.Reserved | uint32(len(m.Records))
	if m.XTRIDPresent {
		w |= mnotI
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
