package wire

import "bytes"

// SharedExtension is a LISP Shared Extension Message (type 15, RFC 9304,
// which obsoletes RFC 8113), the one packet type shared by the LISP
// extensions and experiments that a sub-type identifies:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Type=15|       Sub-type        |      extension-specific       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	//                      extension-specific                     //
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The 12-bit Sub-type is kept, and everything after it, starting with the
// third byte of the message, is kept as opaque bytes so that the message
// round-trips exactly. The message is at least 2 bytes long.
type SharedExtension struct {
	// SubType is the 12-bit Sub-type (IANA "LISP Shared Extension Message
	// Type Sub-types").
	SubType uint16
	// Data is the extension-specific content after the Sub-type.
	Data []byte
}

// Type returns TypeSharedExtension.
func (m *SharedExtension) Type() MessageType { return TypeSharedExtension }

func parseSharedExtension(b []byte) (*SharedExtension, error) {
	r := reader{b: b}
	w, err := r.u16("Sub-type")
	if err != nil {
		return nil, err
	}
	m := &SharedExtension{SubType: w & 0x0fff}
	if r.remaining() > 0 {
		m.Data = bytes.Clone(b[r.off:])
	}
	return m, nil
}

// AppendBinary appends the encoded message to b.
func (m *SharedExtension) AppendBinary(b []byte) ([]byte, error) {
	if m.SubType > 0x0fff {
		return b, encodeErr("Sub-type", ErrBadValue)
	}
	b = appendU16(b, uint16(TypeSharedExtension)<<12|m.SubType)
	return append(b, m.Data...), nil
}
