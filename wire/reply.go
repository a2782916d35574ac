package wire

// MapReply is a Map-Reply (type 2, RFC 9301 section 5.4):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Type=2 |P|E|S|          Reserved               | Record Count  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Nonce . . .                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         . . . Nonce                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     EID records (EIDRecord) ...               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// A negative Map-Reply is a record with no locators and an Action.
// Record Count is len(Records). When the S bit is set, LISP-SEC data follows
// the records; this package does not interpret it and counts it in Trailing.
type MapReply struct {
	// Probe is the P bit: the reply answers an RLOC-probe.
	Probe bool
	// EchoNonce is the E bit: the ETR supports the echo-nonce algorithm.
	EchoNonce bool
	// Security is the S bit: LISP-SEC authentication data follows.
	Security bool
	// Reserved holds the reserved bits of the first word in place (see
	// MapReplyReservedMask).
	Reserved uint32
	// Nonce is the nonce copied from the Map-Request.
	Nonce uint64
	// Records are the mapping records.
	Records []EIDRecord
	// Trailing is the number of bytes after the records that Parse
	// accepted and ignored.
	Trailing int
}

const (
	mrepP = 0x08000000
	mrepE = 0x04000000
	mrepS = 0x02000000

	// MapReplyReservedMask selects the reserved bits of a Map-Reply's first
	// word.
	MapReplyReservedMask = 0x01ffff00
)

// Type returns TypeMapReply.
func (m *MapReply) Type() MessageType { return TypeMapReply }

func parseMapReply(b []byte) (*MapReply, error) {
	r := reader{b: b}
	w, nonce, err := header(&r)
	if err != nil {
		return nil, err
	}
	m := &MapReply{
		Probe:     w&mrepP != 0,
		EchoNonce: w&mrepE != 0,
		Security:  w&mrepS != 0,
		Reserved:  w & MapReplyReservedMask,
		Nonce:     nonce,
	}
	if m.Records, err = parseRecords(&r, int(w&0xff)); err != nil {
		return nil, err
	}
	m.Trailing = r.remaining()
	return m, nil
}

// AppendBinary appends the encoded Map-Reply to b. It fails for more than 255
// records or locators, reserved bits outside MapReplyReservedMask, out of
// range record fields or unencodable addresses.
func (m *MapReply) AppendBinary(b []byte) ([]byte, error) {
	orig := len(b)
	if len(m.Records) > 255 {
		return b, encodeErr("Record Count", ErrBadValue)
	}
	if err := checkReserved(m.Reserved, MapReplyReservedMask, "Map-Reply Reserved"); err != nil {
		return b, err
	}
	w := uint32(TypeMapReply)<<28 | m.Reserved | uint32(len(m.Records))
	if m.Probe {
		w |= mrepP
	}
	if m.EchoNonce {
		w |= mrepE
	}
	if m.Security {
		w |= mrepS
	}
	b = appendU32(b, w)
	b = appendU64(b, m.Nonce)
	b, err := appendRecords(b, m.Records)
	if err != nil {
		return b[:orig], err
	}
	return b, nil
}
