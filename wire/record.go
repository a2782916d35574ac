package wire

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// Action is the 3-bit ACT field of an EID record: what an ITR does with
// packets that match a record with no locators (IANA "LISP ACT Values").
type Action uint8

// The ACT values of RFC 9301.
const (
	// NoAction: the map-cache entry is kept alive and no encapsulation occurs.
	NoAction Action = 0
	// NativelyForward: packets are forwarded without encapsulation.
	NativelyForward Action = 1
	// SendMapRequest: packets cause a Map-Request.
	SendMapRequest Action = 2
	// DropNoReason: packets are dropped ("Drop/No-Reason").
	DropNoReason Action = 3
	// DropPolicyDenied: packets are dropped by policy ("Drop/Policy-Denied").
	DropPolicyDenied Action = 4
	// DropAuthFailure: packets are dropped because the Map-Request failed
	// authentication ("Drop/Auth-Failure").
	DropAuthFailure Action = 5
)

// String returns the IANA name of the action, or "ACT-N" for other values.
func (a Action) String() string {
	switch a {
	case NoAction:
		return "No-Action"
	case NativelyForward:
		return "Natively-Forward"
	case SendMapRequest:
		return "Send-Map-Request"
	case DropNoReason:
		return "Drop/No-Reason"
	case DropPolicyDenied:
		return "Drop/Policy-Denied"
	case DropAuthFailure:
		return "Drop/Auth-Failure"
	}
	return "ACT-" + strconv.Itoa(int(a))
}

// EIDRecord is the mapping record carried by Map-Reply, Map-Register,
// Map-Notify, Map-Notify-Ack and the Map-Request's Map-Reply Record
// (RFC 9301 section 5.4):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Record TTL                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Locator Count | EID mask-len  | ACT |A|      Reserved         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Rsvd  |  Map-Version Number   |       EID-Prefix-AFI          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          EID-Prefix                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      Locator records ...                      |
//
// The Locator Count is len(Locators).
type EIDRecord struct {
	// RecordTTL is the record's time to live in minutes; 0xffffffff means
	// forever and 0 means remove now.
	RecordTTL uint32
	// MaskLen is the EID mask-len.
	MaskLen uint8
	// Action is the 3-bit ACT field.
	Action Action
	// Authoritative is the A bit.
	Authoritative bool
	// Reserved is the 12-bit Reserved field after the A bit.
	Reserved uint16
	// Rsvd is the 4-bit Rsvd field before the Map-Version Number.
	Rsvd uint8
	// MapVersion is the 12-bit Map-Version Number.
	MapVersion uint16
	// EID is the EID-Prefix with its AFI.
	EID Address
	// Locators are the record's locators.
	Locators []Locator
}

// NewEIDRecord returns a record for prefix p (masked) in instance iid: a plain
// IP EID for iid 0, an Instance-ID LCAF otherwise.
func NewEIDRecord(iid uint32, p netip.Prefix) EIDRecord {
	eid, ml := prefixAddress(iid, p)
	return EIDRecord{MaskLen: ml, EID: eid}
}

func prefixAddress(iid uint32, p netip.Prefix) (Address, uint8) {
	p = p.Masked()
	if !p.IsValid() {
		return Address{}, 0
	}
	if iid == 0 {
		return AddrFrom(p.Addr()), uint8(p.Bits())
	}
	return IIDAddr(iid, p.Addr()), uint8(p.Bits())
}

// Prefix returns the record's EID as an instance ID and a masked prefix. ok
// is false when the EID is not a plain or Instance-ID-wrapped IP address or
// when the mask-len exceeds the address length.
func (r EIDRecord) Prefix() (iid uint32, p netip.Prefix, ok bool) {
	return eidPrefix(&r.EID, r.MaskLen)
}

func eidPrefix(a *Address, maskLen uint8) (uint32, netip.Prefix, bool) {
	iid, ip, ok := a.InstanceIP()
	if !ok || int(maskLen) > ip.BitLen() {
		return 0, netip.Prefix{}, false
	}
	p, err := ip.Prefix(int(maskLen))
	if err != nil {
		return 0, netip.Prefix{}, false
	}
	return iid, p, true
}

// checkMaskLen refuses a mask-len longer than the EID it applies to, for the
// families whose length is known.
func checkMaskLen(a *Address, maskLen uint8) bool {
	var bits int
	switch a.AFI {
	case AFINone:
		bits = 0
	case AFIIPv4:
		bits = 32
	case AFIIPv6:
		bits = 128
	case AFIMAC:
		bits = 48
	case AFILCAF:
		if a.LCAFType != LCAFInstanceID || a.Inner == nil {
			return true
		}
		return checkMaskLen(a.Inner, maskLen)
	default:
		return true
	}
	return int(maskLen) <= bits
}

// Locator is one locator (RLOC) record of an EIDRecord (RFC 9301 section
// 5.4):
//
//	   0                   1                   2                   3
//	   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	 /|    Priority   |    Weight     |  M Priority   |   M Weight    |
//	L +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	o |        Unused Flags     |L|p|R|           Loc-AFI             |
//	c +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	 \|                             Locator                           |
//	  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Locator struct {
	// Priority is the unicast priority (255: do not use for unicast).
	Priority uint8
	// Weight is the unicast weight.
	Weight uint8
	// MPriority is the multicast priority.
	MPriority uint8
	// MWeight is the multicast weight.
	MWeight uint8
	// UnusedFlags are the 13 unassigned flag bits, kept so they round-trip.
	UnusedFlags uint16
	// Local is the L bit: the locator belongs to the sending site's xTR.
	Local bool
	// Probed is the p bit: the Map-Reply answers an RLOC probe to this
	// locator.
	Probed bool
	// Reachable is the R bit.
	Reachable bool
	// Address is the Loc-AFI and Locator.
	Address Address
}

const (
	locLocal     = 0x0004
	locProbed    = 0x0002
	locReachable = 0x0001
	// minRecordLen is the size of an EID record with an AFI-0 EID and no
	// locators; minLocatorLen the size of a locator with an AFI-0 address.
	minRecordLen  = 12
	minLocatorLen = 8
)

func parseRecord(r *reader) (EIDRecord, error) {
	var rec EIDRecord
	ttl, err := r.u32("Record TTL")
	if err != nil {
		return rec, err
	}
	w, err := r.u32("Locator Count")
	if err != nil {
		return rec, err
	}
	w2, err := r.u16("Map-Version Number")
	if err != nil {
		return rec, err
	}
	rec.RecordTTL = ttl
	count := int(w >> 24)
	rec.MaskLen = uint8(w >> 16)
	rec.Action = Action(w >> 13 & 0x7)
	rec.Authoritative = w&0x1000 != 0
	rec.Reserved = uint16(w & 0x0fff)
	rec.Rsvd = uint8(w2 >> 12)
	rec.MapVersion = w2 & 0x0fff
	if rec.EID, err = r.address("EID-Prefix", 0); err != nil {
		return rec, err
	}
	if count > 0 {
		rec.Locators = make([]Locator, 0, capFor(count, r.remaining(), minLocatorLen))
	}
	for i := 0; i < count; i++ {
		var l Locator
		if err := r.need(6, "Locator"); err != nil {
			return rec, err
		}
		b := r.b[r.off:]
		l.Priority, l.Weight, l.MPriority, l.MWeight = b[0], b[1], b[2], b[3]
		f := binary.BigEndian.Uint16(b[4:])
		l.UnusedFlags = f >> 3
		l.Local = f&locLocal != 0
		l.Probed = f&locProbed != 0
		l.Reachable = f&locReachable != 0
		r.off += 6
		if l.Address, err = r.address("Locator", 0); err != nil {
			return rec, err
		}
		rec.Locators = append(rec.Locators, l)
	}
	return rec, nil
}

// AppendBinary appends the encoded record and its locators to b.
func (r *EIDRecord) AppendBinary(b []byte) ([]byte, error) {
	orig := len(b)
	switch {
	case len(r.Locators) > 255:
		return b, encodeErr("Locator Count", ErrBadValue)
	case r.Action > 7:
		return b, encodeErr("ACT", ErrBadValue)
	case r.Reserved > 0x0fff:
		return b, encodeErr("EID record Reserved", ErrBadValue)
	case r.Rsvd > 0x0f:
		return b, encodeErr("EID record Rsvd", ErrBadValue)
	case r.MapVersion > 0x0fff:
		return b, encodeErr("Map-Version Number", ErrBadValue)
	case !checkMaskLen(&r.EID, r.MaskLen):
		return b, encodeErr("EID mask-len", ErrBadValue)
	}
	w := uint32(len(r.Locators))<<24 | uint32(r.MaskLen)<<16 | uint32(r.Action)<<13 | uint32(r.Reserved)
	if r.Authoritative {
		w |= 0x1000
	}
	b = appendU32(b, r.RecordTTL)
	b = appendU32(b, w)
	b = appendU16(b, uint16(r.Rsvd)<<12|r.MapVersion)
	var err error
	if b, err = appendAddress(b, &r.EID, 0); err != nil {
		return b[:orig], err
	}
	for i := range r.Locators {
		l := &r.Locators[i]
		if l.UnusedFlags > 0x1fff {
			return b[:orig], encodeErr("Locator Unused Flags", ErrBadValue)
		}
		f := l.UnusedFlags << 3
		if l.Local {
			f |= locLocal
		}
		if l.Probed {
			f |= locProbed
		}
		if l.Reachable {
			f |= locReachable
		}
		b = append(b, l.Priority, l.Weight, l.MPriority, l.MWeight)
		b = appendU16(b, f)
		if b, err = appendAddress(b, &l.Address, 0); err != nil {
			return b[:orig], err
		}
	}
	return b, nil
}

func parseRecords(r *reader, count int) ([]EIDRecord, error) {
	if count == 0 {
		return nil, nil
	}
	recs := make([]EIDRecord, 0, capFor(count, r.remaining(), minRecordLen))
	for i := 0; i < count; i++ {
		rec, err := parseRecord(r)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

func appendRecords(b []byte, recs []EIDRecord) ([]byte, error) {
	var err error
	for i := range recs {
		if b, err = recs[i].AppendBinary(b); err != nil {
			return b, err
		}
	}
	return b, nil
}

// RequestRecord is one EID record of a Map-Request: the EID-Prefix being
// asked for (RFC 9301 section 5.2, with the N bit of RFC 9437):
//
//	    0                   1                   2                   3
//	    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	 / |N|   Reserved  | EID mask-len  |        EID-Prefix-AFI         |
//	Rec +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	 \ |                       EID-Prefix  ...                         |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type RequestRecord struct {
	// NotifyRequested is the N bit (RFC 9437): subscribe to updates of
	// this mapping.
	NotifyRequested bool
	// Reserved holds the 7 reserved bits after N.
	Reserved uint8
	// MaskLen is the EID mask-len.
	MaskLen uint8
	// EID is the EID-Prefix with its AFI.
	EID Address
}

// NewRequestRecord returns a request for prefix p (masked) in instance iid: a
// plain IP EID for iid 0, an Instance-ID LCAF otherwise.
func NewRequestRecord(iid uint32, p netip.Prefix) RequestRecord {
	eid, ml := prefixAddress(iid, p)
	return RequestRecord{MaskLen: ml, EID: eid}
}

// Prefix returns the requested EID as an instance ID and a masked prefix; ok
// is false when the EID is not a plain or Instance-ID-wrapped IP address or
// the mask-len exceeds its length.
func (r RequestRecord) Prefix() (iid uint32, p netip.Prefix, ok bool) {
	return eidPrefix(&r.EID, r.MaskLen)
}
