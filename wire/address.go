package wire

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// AFI is an Address Family Identifier (IANA "Address Family Numbers"), the
// 16-bit tag in front of every address in a LISP message.
type AFI uint16

// The address families this package encodes and decodes.
const (
	// AFINone (0) is an empty address: the AFI field and nothing after it.
	AFINone AFI = 0
	// AFIIPv4 (1) is followed by a 4-byte IPv4 address.
	AFIIPv4 AFI = 1
	// AFIIPv6 (2) is followed by a 16-byte IPv6 address.
	AFIIPv6 AFI = 2
	// AFIDistinguishedName (17) is followed by a NUL-terminated ASCII string.
	AFIDistinguishedName AFI = 17
	// AFILCAF (16387) is followed by a LISP Canonical Address Format body
	// (RFC 8060).
	AFILCAF AFI = 16387
	// AFIMAC (16389) is followed by a 6-byte 48-bit MAC address.
	AFIMAC AFI = 16389
)

// String returns a short name of the family.
func (f AFI) String() string {
	switch f {
	case AFINone:
		return "none"
	case AFIIPv4:
		return "ipv4"
	case AFIIPv6:
		return "ipv6"
	case AFIDistinguishedName:
		return "dn"
	case AFILCAF:
		return "lcaf"
	case AFIMAC:
		return "mac"
	}
	return "afi(" + strconv.Itoa(int(f)) + ")"
}

// MaxAddressDepth is how deeply LCAFs may nest (an Instance-ID LCAF wrapping
// an AFI-List wrapping ... counts one level per LCAF). Deeper input is
// refused with ErrTooDeep rather than recursing without bound.
const MaxAddressDepth = 8

// Address is a LISP address: an AFI and the value that follows it.
//
// Which fields are meaningful depends on AFI:
//
//   - AFINone: nothing.
//   - AFIIPv4, AFIIPv6: IP.
//   - AFIDistinguishedName: Raw holds the name without its NUL terminator.
//   - AFIMAC: Raw holds the 6 bytes of the MAC address.
//   - AFILCAF: LCAFType, LCAFFlags and LCAFRsvd1 always; then for
//     LCAFInstanceID: InstanceID, IIDMaskLen and Inner; for LCAFAFIList:
//     List and LCAFRsvd2; for any other LCAF type: LCAFRsvd2 and Raw, the
//     LCAF body kept opaque so that it round-trips byte for byte.
//
// Parsed addresses never alias the input buffer.
type Address struct {
	// AFI is the address family.
	AFI AFI
	// IP is the address for AFIIPv4 and AFIIPv6.
	IP netip.Addr
	// Raw is the distinguished name, the MAC address or an opaque LCAF body.
	Raw []byte

	// LCAFType is the LCAF Type field.
	LCAFType LCAFType
	// LCAFFlags is the LCAF Flags field.
	LCAFFlags uint8
	// LCAFRsvd1 is the LCAF Rsvd1 field, kept so that it round-trips.
	LCAFRsvd1 uint8
	// LCAFRsvd2 is the LCAF Rsvd2 field for every LCAF type except
	// LCAFInstanceID, where that byte is the IID mask-len.
	LCAFRsvd2 uint8

	// InstanceID is the 32-bit Instance ID of an Instance-ID LCAF.
	InstanceID uint32
	// IIDMaskLen is the IID mask-len of an Instance-ID LCAF.
	IIDMaskLen uint8
	// Inner is the address wrapped by an Instance-ID LCAF.
	Inner *Address
	// List is the address list of an AFI-List LCAF.
	List []Address
}

// AddrFrom returns the plain IPv4 or IPv6 address for ip (an IPv4-mapped IPv6
// address stays IPv6). An invalid ip gives the empty (AFINone) address.
func AddrFrom(ip netip.Addr) Address {
	switch {
	case ip.Is4():
		return Address{AFI: AFIIPv4, IP: ip}
	case ip.Is6():
		return Address{AFI: AFIIPv6, IP: ip}
	}
	return Address{}
}

// IIDAddr returns ip wrapped in an Instance-ID LCAF carrying iid (with an IID
// mask-len of 0).
func IIDAddr(iid uint32, ip netip.Addr) Address {
	inner := AddrFrom(ip)
	return Address{AFI: AFILCAF, LCAFType: LCAFInstanceID, InstanceID: iid, Inner: &inner}
}

// InstanceIP unwraps a plain IP address (iid 0) or an Instance-ID LCAF that
// wraps a plain IP address. ok is false for every other kind of address.
func (a Address) InstanceIP() (iid uint32, ip netip.Addr, ok bool) {
	switch a.AFI {
	case AFIIPv4, AFIIPv6:
		return 0, a.IP, a.IP.IsValid()
	case AFILCAF:
		if a.LCAFType == LCAFInstanceID && a.Inner != nil &&
			(a.Inner.AFI == AFIIPv4 || a.Inner.AFI == AFIIPv6) && a.Inner.IP.IsValid() {
			return a.InstanceID, a.Inner.IP, true
		}
	}
	return 0, netip.Addr{}, false
}

// IsZero reports whether a is the empty (AFINone) address with no other field
// set.
func (a Address) IsZero() bool { return a.Equal(Address{}) }

// Equal reports whether a and o encode identically (nil and empty byte slices
// are equal).
func (a Address) Equal(o Address) bool {
	if a.AFI != o.AFI || a.IP != o.IP || !bytes.Equal(a.Raw, o.Raw) ||
		a.LCAFType != o.LCAFType || a.LCAFFlags != o.LCAFFlags ||
		a.LCAFRsvd1 != o.LCAFRsvd1 || a.LCAFRsvd2 != o.LCAFRsvd2 ||
		a.InstanceID != o.InstanceID || a.IIDMaskLen != o.IIDMaskLen ||
		len(a.List) != len(o.List) {
		return false
	}
	if (a.Inner == nil) != (o.Inner == nil) {
		return false
	}
	if a.Inner != nil && !a.Inner.Equal(*o.Inner) {
		return false
	}
	for i := range a.List {
		if !a.List[i].Equal(o.List[i]) {
			return false
		}
	}
	return true
}

// String formats the address for people: "10.1.1.1", "2001:db8::1",
// "[1000]10.1.1.1" for an Instance-ID LCAF, "(a, b)" for an AFI-List,
// "aa:bb:cc:dd:ee:ff" for a MAC, a quoted name for a distinguished name.
func (a Address) String() string {
	var sb strings.Builder
	a.writeString(&sb)
	return sb.String()
}

func (a *Address) writeString(sb *strings.Builder) {
	switch a.AFI {
	case AFINone:
		sb.WriteString("no-address")
	case AFIIPv4, AFIIPv6:
		sb.WriteString(a.IP.String())
	case AFIDistinguishedName:
		sb.WriteString(strconv.Quote(string(a.Raw)))
	case AFIMAC:
		sb.WriteString(net.HardwareAddr(a.Raw).String())
	case AFILCAF:
		switch a.LCAFType {
		case LCAFInstanceID:
			sb.WriteByte('[')
			sb.WriteString(strconv.FormatUint(uint64(a.InstanceID), 10))
			if a.IIDMaskLen != 0 {
				sb.WriteByte('/')
				sb.WriteString(strconv.Itoa(int(a.IIDMaskLen)))
			}
			sb.WriteByte(']')
			if a.Inner != nil {
				a.Inner.writeString(sb)
			}
		case LCAFAFIList:
			sb.WriteByte('(')
			for i := range a.List {
				if i > 0 {
					sb.WriteString(", ")
				}
				a.List[i].writeString(sb)
			}
			sb.WriteByte(')')
		default:
			sb.WriteString("lcaf(")
			sb.WriteString(a.LCAFType.String())
			sb.WriteString(", ")
			sb.WriteString(strconv.Itoa(len(a.Raw)))
			sb.WriteString(" bytes)")
		}
	default:
		sb.WriteString(a.AFI.String())
	}
}

// Len returns the number of bytes AppendBinary writes for a, AFI included.
func (a Address) Len() int { return addressLen(&a) }

func addressLen(a *Address) int {
	switch a.AFI {
	case AFIIPv4:
		return 2 + 4
	case AFIIPv6:
		return 2 + 16
	case AFIMAC:
		return 2 + 6
	case AFIDistinguishedName:
		return 2 + len(a.Raw) + 1
	case AFILCAF:
		return 2 + 6 + lcafBodyLen(a)
	}
	return 2
}

// ParseAddress parses one AFI-prefixed address at the start of b and returns
// it with the number of bytes it occupies. An AFI whose length is unknown
// gives an *AFIError (ErrBadAFI); LCAF types other than Instance-ID and
// AFI-List are kept opaque.
func ParseAddress(b []byte) (Address, int, error) {
	return parseAddress(b, 0)
}

func parseAddress(b []byte, depth int) (Address, int, error) {
	if depth > MaxAddressDepth {
		return Address{}, 0, parseErr("AFI", 0, ErrTooDeep)
	}
	r := reader{b: b}
	v, err := r.u16("AFI")
	if err != nil {
		return Address{}, 0, err
	}
	switch afi := AFI(v); afi {
	case AFINone:
		return Address{}, 2, nil
	case AFIIPv4:
		p, err := r.bytes(4, "IPv4 address")
		if err != nil {
			return Address{}, 0, err
		}
		return Address{AFI: afi, IP: netip.AddrFrom4([4]byte(p))}, r.off, nil
	case AFIIPv6:
		p, err := r.bytes(16, "IPv6 address")
		if err != nil {
			return Address{}, 0, err
		}
		return Address{AFI: afi, IP: netip.AddrFrom16([16]byte(p))}, r.off, nil
	case AFIMAC:
		p, err := r.bytes(6, "MAC address")
		if err != nil {
			return Address{}, 0, err
		}
		return Address{AFI: afi, Raw: bytes.Clone(p)}, r.off, nil
	case AFIDistinguishedName:
		i := bytes.IndexByte(b[2:], 0)
		if i < 0 {
			return Address{}, 0, parseErr("distinguished name", len(b), ErrTruncated)
		}
		var raw []byte
		if i > 0 {
			raw = bytes.Clone(b[2 : 2+i])
		}
		return Address{AFI: afi, Raw: raw}, 2 + i + 1, nil
	case AFILCAF:
		return parseLCAF(b, depth)
	default:
		return Address{}, 0, parseErr("AFI", 0, &AFIError{AFI: afi})
	}
}

// AppendBinary appends the AFI-prefixed encoding of a to b.
func (a Address) AppendBinary(b []byte) ([]byte, error) {
	return appendAddress(b, &a, 0)
}

func appendAddress(b []byte, a *Address, depth int) ([]byte, error) {
	if depth > MaxAddressDepth {
		return b, encodeErr("address", ErrTooDeep)
	}
	switch a.AFI {
	case AFINone:
		if a.IP.IsValid() || len(a.Raw) != 0 {
			return b, encodeErr("AFI", ErrBadValue)
		}
		return appendU16(b, uint16(AFINone)), nil
	case AFIIPv4:
		if !a.IP.Is4() {
			return b, encodeErr("IPv4 address", ErrBadValue)
		}
		b = appendU16(b, uint16(AFIIPv4))
		v := a.IP.As4()
		return append(b, v[:]...), nil
	case AFIIPv6:
		if !a.IP.Is6() || a.IP.Zone() != "" {
			return b, encodeErr("IPv6 address", ErrBadValue)
		}
		b = appendU16(b, uint16(AFIIPv6))
		v := a.IP.As16()
		return append(b, v[:]...), nil
	case AFIMAC:
		if len(a.Raw) != 6 {
			return b, encodeErr("MAC address", ErrBadValue)
		}
		b = appendU16(b, uint16(AFIMAC))
		return append(b, a.Raw...), nil
	case AFIDistinguishedName:
		if bytes.IndexByte(a.Raw, 0) >= 0 {
			return b, encodeErr("distinguished name", ErrBadValue)
		}
		b = appendU16(b, uint16(AFIDistinguishedName))
		b = append(b, a.Raw...)
		return append(b, 0), nil
	case AFILCAF:
		return appendLCAF(b, a, depth)
	}
	return b, encodeErr("AFI", &AFIError{AFI: a.AFI})
}
