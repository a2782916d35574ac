package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
)

// LCAFType is the Type field of a LISP Canonical Address Format address
// (RFC 8060, IANA "LISP Canonical Address Format (LCAF) Types").
type LCAFType uint8

// LCAF types. This package structures LCAFInstanceID and LCAFAFIList; every
// other type is carried as opaque bytes (Address.Raw) and round-trips
// unchanged.
const (
	LCAFNull           LCAFType = 0
	LCAFAFIList        LCAFType = 1
	LCAFInstanceID     LCAFType = 2
	LCAFASNumber       LCAFType = 3
	LCAFApplication    LCAFType = 4
	LCAFGeo            LCAFType = 5
	LCAFOpaqueKey      LCAFType = 6
	LCAFNATTraversal   LCAFType = 7
	LCAFNonceLocator   LCAFType = 8
	LCAFMulticastInfo  LCAFType = 9
	LCAFExplicitPath   LCAFType = 10
	LCAFSecurityKey    LCAFType = 11
	LCAFSourceDestKey  LCAFType = 12
	LCAFReplication    LCAFType = 13
	LCAFJSON           LCAFType = 14
	LCAFKeyValue       LCAFType = 15
	LCAFEncapsulation  LCAFType = 16
	LCAFVendorSpecific LCAFType = 255
)

var lcafNames = [...]string{
	LCAFNull:          "null",
	LCAFAFIList:       "afi-list",
	LCAFInstanceID:    "instance-id",
	LCAFASNumber:      "as-number",
	LCAFApplication:   "application-data",
	LCAFGeo:           "geo-coordinates",
	LCAFOpaqueKey:     "opaque-key",
	LCAFNATTraversal:  "nat-traversal",
	LCAFNonceLocator:  "nonce-locator",
	LCAFMulticastInfo: "multicast-info",
	LCAFExplicitPath:  "explicit-locator-path",
	LCAFSecurityKey:   "security-key",
	LCAFSourceDestKey: "source-dest-key",
	LCAFReplication:   "replication-list",
	LCAFJSON:          "json",
	LCAFKeyValue:      "key-value",
	LCAFEncapsulation: "encapsulation-format",
}

// String returns the LCAF type's name, or "type-N" for unnamed values.
func (t LCAFType) String() string {
	if int(t) < len(lcafNames) && lcafNames[t] != "" {
		return lcafNames[t]
	}
	if t == LCAFVendorSpecific {
		return "vendor-specific"
	}
	return "type-" + strconv.Itoa(int(t))
}

// parseLCAF parses an LCAF address; b starts at its AFI field.
//
// The common header (RFC 8060 section 3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           AFI = 16387         |     Rsvd1     |     Flags     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    Type       |     Rsvd2     |            Length             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Length counts the bytes after the Length field.
func parseLCAF(b []byte, depth int) (Address, int, error) {
	r := reader{b: b, off: 2}
	if err := r.need(6, "LCAF header"); err != nil {
		return Address{}, 0, err
	}
	a := Address{AFI: AFILCAF, LCAFRsvd1: b[2], LCAFFlags: b[3], LCAFType: LCAFType(b[4])}
	rsvd2 := b[5]
	length := int(binary.BigEndian.Uint16(b[6:8]))
	r.off = 8
	body, err := r.bytes(length, "LCAF body")
	if err != nil {
		return Address{}, 0, err
	}
	const bodyOff = 8
	switch a.LCAFType {
	case LCAFInstanceID:
		//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
		//	|   Type = 2    | IID mask-len  |             Length            |
		//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
		//	|                         Instance ID                           |
		//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
		//	|              AFI = x          |         Address  ...          |
		//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
		if len(body) < 4+2 {
			return Address{}, 0, parseErr("Instance ID LCAF length", 6, ErrBadLCAF)
		}
		a.IIDMaskLen = rsvd2
		a.InstanceID = binary.BigEndian.Uint32(body)
		inner, n, err := parseAddress(body[4:], depth+1)
		if err != nil {
			return Address{}, 0, lcafInnerErr(err, bodyOff+4)
		}
		if 4+n != len(body) {
			return Address{}, 0, parseErr("Instance ID LCAF length", 6, ErrBadLCAF)
		}
		a.Inner = &inner
	case LCAFAFIList:
		//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
		//	|   Type = 1    |     Rsvd2     |            Length             |
		//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
		//	|            AFI = x            |         Address  ...          |
		//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
		//	|            AFI = y            |         Address  ...          |
		//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
		a.LCAFRsvd2 = rsvd2
		for off := 0; off < len(body); {
			item, n, err := parseAddress(body[off:], depth+1)
			if err != nil {
				return Address{}, 0, lcafInnerErr(err, bodyOff+off)
			}
			a.List = append(a.List, item)
			off += n
		}
	default:
		a.LCAFRsvd2 = rsvd2
		if len(body) > 0 {
			a.Raw = bytes.Clone(body)
		}
	}
	return a, bodyOff + len(body), nil
}

// lcafInnerErr converts an error from an address nested in an LCAF body: the
// body was complete, so running out of it means the LCAF Length was wrong.
func lcafInnerErr(err error, base int) error {
	if errors.Is(err, ErrTruncated) {
		return parseErr("LCAF length", 6, ErrBadLCAF)
	}
	return wrapAt("LCAF address", base, err)
}

func lcafBodyLen(a *Address) int {
	switch a.LCAFType {
	case LCAFInstanceID:
		if a.Inner == nil {
			return 4
		}
		return 4 + addressLen(a.Inner)
	case LCAFAFIList:
		n := 0
		for i := range a.List {
			n += addressLen(&a.List[i])
		}
		return n
	}
	return len(a.Raw)
}

func appendLCAF(b []byte, a *Address, depth int) ([]byte, error) {
	orig := len(b)
	rsvd2 := a.LCAFRsvd2
	if a.LCAFType == LCAFInstanceID {
		rsvd2 = a.IIDMaskLen
	}
	b = appendU16(b, uint16(AFILCAF))
	b = append(b, a.LCAFRsvd1, a.LCAFFlags, uint8(a.LCAFType), rsvd2, 0, 0)
	lenPos := len(b) - 2
	var err error
	switch a.LCAFType {
	case LCAFInstanceID:
		if a.Inner == nil {
			return b[:orig], encodeErr("Instance ID LCAF address", ErrBadValue)
		}
		b = appendU32(b, a.InstanceID)
		if b, err = appendAddress(b, a.Inner, depth+1); err != nil {
			return b[:orig], err
		}
	case LCAFAFIList:
		for i := range a.List {
			if b, err = appendAddress(b, &a.List[i], depth+1); err != nil {
				return b[:orig], err
			}
		}
	default:
		b = append(b, a.Raw...)
	}
	n := len(b) - lenPos - 2
	if n > 0xffff {
		return b[:orig], encodeErr("LCAF length", ErrBadValue)
	}
	binary.BigEndian.PutUint16(b[lenPos:], uint16(n))
	return b, nil
}
