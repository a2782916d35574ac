package wire

import (
	"bytes"
	"encoding/binary"
)

// Info is an Info-Request or Info-Reply (type 7), the NAT-traversal messages
// of draft-ietf-lisp-nat-traversal (section 5; no RFC has replaced it at the
// time of writing). The R bit tells them apart:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Type=7 |R|               Reserved                              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Nonce . . .                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      . . . Nonce                              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    Key ID     | Algorithm ID  |  Authentication Data Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                     Authentication Data                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                              TTL                              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Reserved    | EID mask-len  |        EID-Prefix-AFI         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          EID-Prefix                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|             AFI = 0 (Request) or 16387 (Reply)  |  NAT LCAF ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The Info-Request carries an empty (AFI 0) address at the end; the
// Info-Reply carries a NAT-Traversal LCAF (LCAF type 7), which Parse keeps
// as an opaque LCAF in Address: decode it with ParseNATTraversal. The
// 16-bit Key ID of the older drafts is the Key ID and Algorithm ID of RFC
// 9301, as in Map-Register, and the authentication data is computed the same
// way, over the whole message with the field zeroed, so Sign and Verify
// handle Info messages with the algorithms that need no per-type key
// derivation (HMAC-SHA-1-96 and HMAC-SHA-256-128).
type Info struct {
	// Reply is the R bit: an Info-Reply rather than an Info-Request.
	Reply bool
	// Reserved holds the reserved bits of the first word in place (see
	// InfoReservedMask).
	Reserved uint32
	// Nonce pairs an Info-Reply with its Info-Request.
	Nonce uint64
	// KeyID selects the pre-shared key.
	KeyID uint8
	// AlgorithmID selects the MAC.
	AlgorithmID AlgorithmID
	// AuthData is the Authentication Data; see MapRegister.
	AuthData []byte
	// TTL is the validity of the Info-Reply's information, in minutes.
	TTL uint32
	// EIDReserved is the 8-bit Reserved field before the EID mask-len.
	EIDReserved uint8
	// MaskLen is the EID mask-len.
	MaskLen uint8
	// EID is the EID-Prefix with its AFI.
	EID Address
	// Address is the final address: empty (AFI 0) in an Info-Request, the
	// NAT-Traversal LCAF in an Info-Reply. Any address is accepted.
	Address Address
	// Trailing is the number of bytes after the message's declared
	// contents that Parse accepted and ignored.
	Trailing int
}

const (
	infoR = 0x08000000

	// InfoReservedMask selects the reserved bits of an Info message's first
	// word.
	InfoReservedMask = 0x07ffffff
)

// Type returns TypeInfo.
func (m *Info) Type() MessageType { return TypeInfo }

func parseInfo(b []byte) (*Info, error) {
	r := reader{b: b}
	w, nonce, err := header(&r)
	if err != nil {
		return nil, err
	}
	m := &Info{Reply: w&infoR != 0, Reserved: w & InfoReservedMask, Nonce: nonce}
	if m.KeyID, m.AlgorithmID, m.AuthData, err = parseAuthFields(&r); err != nil {
		return nil, err
	}
	if m.TTL, err = r.u32("TTL"); err != nil {
		return nil, err
	}
	if m.EIDReserved, err = r.u8("Reserved"); err != nil {
		return nil, err
	}
	if m.MaskLen, err = r.u8("EID mask-len"); err != nil {
		return nil, err
	}
	if m.EID, err = r.address("EID-Prefix", 0); err != nil {
		return nil, err
	}
	if m.Address, err = r.address("AFI", 0); err != nil {
		return nil, err
	}
	m.Trailing = r.remaining()
	return m, nil
}

// AppendBinary appends the encoded Info-Request or Info-Reply to b, with the
// Authentication Data as for MapRegister.
func (m *Info) AppendBinary(b []byte) ([]byte, error) {
	orig := len(b)
	if err := checkReserved(m.Reserved, InfoReservedMask, "Info Reserved"); err != nil {
		return b, err
	}
	if !checkMaskLen(&m.EID, m.MaskLen) {
		return b, encodeErr("EID mask-len", ErrBadValue)
	}
	w := uint32(TypeInfo)<<28 | m.Reserved
	if m.Reply {
		w |= infoR
	}
	b = appendU32(b, w)
	b = appendU64(b, m.Nonce)
	b, err := appendAuthFields(b, m.KeyID, m.AlgorithmID, m.AuthData)
	if err != nil {
		return b[:orig], err
	}
	b = appendU32(b, m.TTL)
	b = append(b, m.EIDReserved, m.MaskLen)
	if b, err = appendAddress(b, &m.EID, 0); err != nil {
		return b[:orig], err
	}
	if b, err = appendAddress(b, &m.Address, 0); err != nil {
		return b[:orig], err
	}
	return b, nil
}

// NATTraversal is the body of a NAT-Traversal LCAF (LCAF type 7, RFC 8060
// section 4.5), carried by an Info-Reply:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           AFI = 16387         |     Rsvd1     |     Flags     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Type = 7    |     Rsvd2     |             Length            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|       MS UDP Port Number      |      ETR UDP Port Number      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|              AFI = x          |  Global ETR RLOC Address  ... |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|              AFI = x          |       MS RLOC Address  ...    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|              AFI = x          | Private ETR RLOC Address ...  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|              AFI = x          |      RTR RLOC Address 1 ...   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|              AFI = x          |      RTR RLOC Address n ...   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The header fields (Rsvd1, Flags, Rsvd2) stay in the Address.
type NATTraversal struct {
	// MSPort is the MS UDP Port Number.
	MSPort uint16
	// ETRPort is the ETR UDP Port Number: the translated source port of
	// the Info-Request.
	ETRPort uint16
	// GlobalETR is the Global ETR RLOC: the translated source address of
	// the Info-Request.
	GlobalETR Address
	// MS is the MS RLOC Address.
	MS Address
	// PrivateETR is the Private ETR RLOC Address.
	PrivateETR Address
	// RTRs are the RTR RLOC Addresses.
	RTRs []Address
}

// ParseNATTraversal decodes the body of a NAT-Traversal LCAF address (as
// found in Info.Address of an Info-Reply). It fails with ErrBadValue when a
// is not a NAT-Traversal LCAF and ErrBadLCAF when its body is malformed.
func ParseNATTraversal(a Address) (NATTraversal, error) {
	var n NATTraversal
	if a.AFI != AFILCAF || a.LCAFType != LCAFNATTraversal {
		return n, parseErr("NAT-Traversal LCAF", 0, ErrBadValue)
	}
	body := a.Raw
	if len(body) < 4 {
		return n, parseErr("NAT-Traversal LCAF ports", 0, ErrBadLCAF)
	}
	n.MSPort = binary.BigEndian.Uint16(body)
	n.ETRPort = binary.BigEndian.Uint16(body[2:])
	off := 4
	for i, dst := range [...]*Address{&n.GlobalETR, &n.MS, &n.PrivateETR} {
		if off == len(body) && i > 0 {
			// Accept a reply that stops early, as some senders omit the
			// private ETR RLOC.
			return n, nil
		}
		v, k, err := parseAddress(body[off:], 1)
		if err != nil {
			return n, lcafInnerErr(err, off)
		}
		*dst = v
		off += k
	}
	for off < len(body) {
		v, k, err := parseAddress(body[off:], 1)
		if err != nil {
			return n, lcafInnerErr(err, off)
		}
		n.RTRs = append(n.RTRs, v)
		off += k
	}
	return n, nil
}

// Address returns n encoded as a NAT-Traversal LCAF address, ready for
// Info.Address.
func (n *NATTraversal) Address() (Address, error) {
	body := appendU16(nil, n.MSPort)
	body = appendU16(body, n.ETRPort)
	var err error
	for _, a := range [...]*Address{&n.GlobalETR, &n.MS, &n.PrivateETR} {
		if body, err = appendAddress(body, a, 1); err != nil {
			return Address{}, err
		}
	}
	for i := range n.RTRs {
		if body, err = appendAddress(body, &n.RTRs[i], 1); err != nil {
			return Address{}, err
		}
	}
	if len(body) > 0xffff {
		return Address{}, encodeErr("LCAF length", ErrBadValue)
	}
	return Address{AFI: AFILCAF, LCAFType: LCAFNATTraversal, Raw: bytes.Clone(body)}, nil
}
