package wire

import "strconv"

// MessageType is the 4-bit Type field that starts every LISP control message
// (IANA "LISP Packet Types").
type MessageType uint8

// Control message types.
const (
	TypeReserved        MessageType = 0
	TypeMapRequest      MessageType = 1
	TypeMapReply        MessageType = 2
	TypeMapRegister     MessageType = 3
	TypeMapNotify       MessageType = 4
	TypeMapNotifyAck    MessageType = 5
	TypeMapReferral     MessageType = 6
	TypeInfo            MessageType = 7
	TypeECM             MessageType = 8
	TypeSharedExtension MessageType = 15
)

// String returns the RFC name of the message type, or "Type-N".
func (t MessageType) String() string {
	switch t {
	case TypeReserved:
		return "Reserved"
	case TypeMapRequest:
		return "Map-Request"
	case TypeMapReply:
		return "Map-Reply"
	case TypeMapRegister:
		return "Map-Register"
	case TypeMapNotify:
		return "Map-Notify"
	case TypeMapNotifyAck:
		return "Map-Notify-Ack"
	case TypeMapReferral:
		return "Map-Referral"
	case TypeInfo:
		return "Info"
	case TypeECM:
		return "Encapsulated-Control-Message"
	case TypeSharedExtension:
		return "Shared-Extension"
	}
	return "Type-" + strconv.Itoa(int(t))
}

// Message is a parsed LISP control message. Parse returns one of *MapRequest,
// *MapReply, *MapRegister, *MapNotify, *MapNotifyAck, *MapReferral, *Info,
// *ECM or *SharedExtension.
type Message interface {
	// Type returns the message's type.
	Type() MessageType
	// AppendBinary appends the encoded message to b.
	AppendBinary(b []byte) ([]byte, error)
}

// Parse parses one LISP control message, as received in the payload of a UDP
// datagram to or from port 4342, switching on its 4-bit type. Unassigned
// types (0 and 9-14) give an *UnknownTypeError (ErrUnknownType). Bytes after the declared
// contents are accepted and counted in the message's Trailing field. The
// returned message does not alias b.
func Parse(b []byte) (Message, error) {
	return parse(b, 0)
}

func parse(b []byte, ecmDepth int) (Message, error) {
	if len(b) == 0 {
		return nil, parseErr("Type", 0, ErrTruncated)
	}
	// Each case returns an untyped nil Message on error, never a nil
	// pointer wrapped in a non-nil interface.
	switch t := MessageType(b[0] >> 4); t {
	case TypeMapRequest:
		return asMessage(parseMapRequest(b))
	case TypeMapReply:
		return asMessage(parseMapReply(b))
	case TypeMapRegister:
		return asMessage(parseMapRegister(b))
	case TypeMapNotify:
		return asMessage(parseNotify(b))
	case TypeMapNotifyAck:
		n, err := parseNotify(b)
		if err != nil {
			return nil, err
		}
		return (*MapNotifyAck)(n), nil
	case TypeMapReferral:
		return asMessage(parseMapReferral(b))
	case TypeInfo:
		return asMessage(parseInfo(b))
	case TypeSharedExtension:
		return asMessage(parseSharedExtension(b))
	case TypeECM:
		if ecmDepth > 0 {
			return nil, parseErr("ECM inside ECM", 0, ErrBadValue)
		}
		return asMessage(parseECM(b))
	default:
		return nil, &UnknownTypeError{Type: t}
	}
}

// asMessage converts a parser's typed result into a Message, keeping the interface
// nil on error.
func asMessage[M Message](m M, err error) (Message, error) {
	if err != nil {
		return nil, err
	}
	return m, nil
}

// XTRID is the 128-bit xTR-ID that identifies an xTR in Map-Register,
// Map-Notify, Map-Notify-Ack and (RFC 9437) Map-Request messages.
type XTRID [16]byte

// String formats the xTR-ID as 32 hexadecimal digits.
func (x XTRID) String() string {
	const hexdigits = "0123456789abcdef"
	var s [32]byte
	for i, v := range x {
		s[2*i] = hexdigits[v>>4]
		s[2*i+1] = hexdigits[v&0x0f]
	}
	return string(s[:])
}

// xtrIDLen is the size of the xTR-ID and site-ID trailer.
const xtrIDLen = 16 + 8

func parseXTRID(r *reader) (XTRID, uint64, error) {
	var x XTRID
	p, err := r.bytes(16, "xTR-ID")
	if err != nil {
		return x, 0, err
	}
	copy(x[:], p)
	site, err := r.u64("site-ID")
	return x, site, err
}

func appendXTRID(b []byte, x *XTRID, site uint64) []byte {
	b = append(b, x[:]...)
	return appendU64(b, site)
}

// header reads the first 32-bit word and the 64-bit nonce shared by every
// control message except the ECM.
func header(r *reader) (uint32, uint64, error) {
	w, err := r.u32("Type")
	if err != nil {
		return 0, 0, err
	}
	nonce, err := r.u64("Nonce")
	return w, nonce, err
}

// checkReserved refuses reserved bits outside the reserved mask of a header
// word, so an encoder never silently sets a defined flag.
func checkReserved(v, mask uint32, field string) error {
	if v&^mask != 0 {
		return encodeErr(field, ErrBadValue)
	}
	return nil
}
