package wire

import (
	"bytes"
	"strconv"
)

// ReferralAction is the 3-bit ACT field of a Map-Referral record (RFC 8111
// section 6.4.1, IANA "LISP-DDT Map-Referral Actions"). Its values differ
// from those of the Action of an EIDRecord.
type ReferralAction uint8

// The referral actions of RFC 8111.
const (
	// NodeReferral: the referral points to DDT nodes.
	NodeReferral ReferralAction = 0
	// MSReferral: the referral points to Map-Servers.
	MSReferral ReferralAction = 1
	// MSAck: a Map-Server acknowledges a request for a registered EID.
	MSAck ReferralAction = 2
	// MSNotRegistered: the Map-Server has no registration for the EID.
	MSNotRegistered ReferralAction = 3
	// DelegationHole: the EID is in a hole of the delegation.
	DelegationHole ReferralAction = 4
	// NotAuthoritative: the DDT node is not authoritative for the EID.
	NotAuthoritative ReferralAction = 5
)

// String returns the RFC 8111 name of the action, or "ACT-N".
func (a ReferralAction) String() string {
	switch a {
	case NodeReferral:
		return "NODE-REFERRAL"
	case MSReferral:
		return "MS-REFERRAL"
	case MSAck:
		return "MS-ACK"
	case MSNotRegistered:
		return "MS-NOT-REGISTERED"
	case DelegationHole:
		return "DELEGATION-HOLE"
	case NotAuthoritative:
		return "NOT-AUTHORITATIVE"
	}
	return "ACT-" + strconv.Itoa(int(a))
}

// MapReferral is a Map-Referral (type 6, RFC 8111 section 6.4), the answer of
// a LISP-DDT node or Map-Server to a DDT Map-Request:
//
//	    0                   1                   2                   3
//	    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |Type=6 |                Reserved               | Record Count  |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |                         Nonce . . .                           |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |                         . . . Nonce                           |
//	+->+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  |                          Record TTL                           |
//	|  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	R  | Referral Count| EID mask-len  | ACT |A|I|     Reserved        |
//	e  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	c  |SigCnt |   Map Version Number  |            EID-AFI            |
//	o  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	r  |                          EID-Prefix ...                       |
//	d  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  /|    Priority   |    Weight     |  M Priority   |   M Weight    |
//	| R +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| e |        Unused Flags         |L|p|R|         Loc-AFI           |
//	| f +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  \|                             Locator ...                       |
//	|   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   ~                 Signature sections (SigCnt) ...               ~
//	+-> +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The referral records are laid out like the EID records of RFC 9301 with
// three differences: the Locator Count is the Referral Count, the ACT field
// holds a ReferralAction, bit 20 is the I (incomplete) bit, and the 4-bit
// Rsvd before the Map-Version Number is SigCnt, the number of signature
// sections that follow the record's referrals.
type MapReferral struct {
	// Reserved holds the reserved bits of the first word in place (see
	// MapReferralReservedMask).
	Reserved uint32
	// Nonce is the nonce of the DDT Map-Request being answered.
	Nonce uint64
	// Records are the referral records.
	Records []ReferralRecord
	// Trailing is the number of bytes after the message's declared
	// contents that Parse accepted and ignored.
	Trailing int
}

// MapReferralReservedMask selects the reserved bits of a Map-Referral's first
// word.
const MapReferralReservedMask = 0x0fffff00

// ReferralRecord is one record of a Map-Referral. Its Locators are the
// referrals (DDT nodes or Map-Servers) and their count is the Referral Count.
type ReferralRecord struct {
	// RecordTTL is the time to live of the referral, in minutes.
	RecordTTL uint32
	// MaskLen is the EID mask-len.
	MaskLen uint8
	// Action is the 3-bit ACT field.
	Action ReferralAction
	// Authoritative is the A bit: the sender is authoritative for the EID.
	Authoritative bool
	// Incomplete is the I bit: the referral set is incomplete.
	Incomplete bool
	// Reserved is the 11-bit Reserved field after the I bit.
	Reserved uint16
	// MapVersion is the 12-bit Map Version Number.
	MapVersion uint16
	// EID is the EID-Prefix with its AFI.
	EID Address
	// Locators are the referrals.
	Locators []Locator
	// Signatures are the signature sections; SigCnt is their number.
	Signatures []ReferralSignature
}

// ReferralSignature is a signature section of a Map-Referral record (RFC
// 8111 section 6.4.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Original Record TTL                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Signature Expiration                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Signature Inception                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Key Tag            |           Sig Length          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Sig-Algorithm |   Reserved    |            Reserved           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                             Signature                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The signature is carried, not checked.
type ReferralSignature struct {
	// OriginalTTL is the Original Record TTL.
	OriginalTTL uint32
	// Expiration is the Signature Expiration (seconds since the epoch).
	Expiration uint32
	// Inception is the Signature Inception (seconds since the epoch).
	Inception uint32
	// KeyTag identifies the signing key.
	KeyTag uint16
	// Algorithm is the Sig-Algorithm (1: RSA-SHA1, 2: RSA-SHA256).
	Algorithm uint8
	// Reserved holds the 24 reserved bits after Sig-Algorithm.
	Reserved uint32
	// Signature is the signature; Sig Length is its length.
	Signature []byte
}

const (
	refIncomplete = 0x0800
	// minSigLen is the size of a signature section with an empty
	// signature.
	minSigLen = 20
)

// Type returns TypeMapReferral.
func (m *MapReferral) Type() MessageType { return TypeMapReferral }

func parseMapReferral(b []byte) (*MapReferral, error) {
	r := reader{b: b}
	w, nonce, err := header(&r)
	if err != nil {
		return nil, err
	}
	m := &MapReferral{Reserved: w & MapReferralReservedMask, Nonce: nonce}
	if count := int(w & 0xff); count > 0 {
		m.Records = make([]ReferralRecord, 0, capFor(count, r.remaining(), minRecordLen))
		for range count {
			rec, err := parseReferralRecord(&r)
			if err != nil {
				return nil, err
			}
			m.Records = append(m.Records, rec)
		}
	}
	m.Trailing = r.remaining()
	return m, nil
}

func parseReferralRecord(r *reader) (ReferralRecord, error) {
	// The fixed part and the locators are those of an EID record; the
	// differences are in fields parseRecord keeps without interpreting.
	e, err := parseRecord(r)
	if err != nil {
		return ReferralRecord{}, err
	}
	rec := ReferralRecord{
		RecordTTL:     e.RecordTTL,
		MaskLen:       e.MaskLen,
		Action:        ReferralAction(e.Action),
		Authoritative: e.Authoritative,
		Incomplete:    e.Reserved&refIncomplete != 0,
		Reserved:      e.Reserved &^ refIncomplete,
		MapVersion:    e.MapVersion,
		EID:           e.EID,
		Locators:      e.Locators,
	}
	if n := int(e.Rsvd); n > 0 {
		rec.Signatures = make([]ReferralSignature, 0, capFor(n, r.remaining(), minSigLen))
		for range n {
			var s ReferralSignature
			if err := r.need(minSigLen, "Signature section"); err != nil {
				return rec, err
			}
			s.OriginalTTL, _ = r.u32("Original Record TTL")
			s.Expiration, _ = r.u32("Signature Expiration")
			s.Inception, _ = r.u32("Signature Inception")
			s.KeyTag, _ = r.u16("Key Tag")
			n, _ := r.u16("Sig Length")
			w, _ := r.u32("Sig-Algorithm")
			s.Algorithm = uint8(w >> 24)
			s.Reserved = w & 0x00ffffff
			p, err := r.bytes(int(n), "Signature")
			if err != nil {
				return rec, err
			}
			if n > 0 {
				s.Signature = bytes.Clone(p)
			}
			rec.Signatures = append(rec.Signatures, s)
		}
	}
	return rec, nil
}

// AppendBinary appends the encoded Map-Referral to b.
func (m *MapReferral) AppendBinary(b []byte) ([]byte, error) {
	orig := len(b)
	if len(m.Records) > 255 {
		return b, encodeErr("Record Count", ErrBadValue)
	}
	if err := checkReserved(m.Reserved, MapReferralReservedMask, "Map-Referral Reserved"); err != nil {
		return b, err
	}
	b = appendU32(b, uint32(TypeMapReferral)<<28|m.Reserved|uint32(len(m.Records)))
	b = appendU64(b, m.Nonce)
	var err error
	for i := range m.Records {
		if b, err = m.Records[i].AppendBinary(b); err != nil {
			return b[:orig], err
		}
	}
	return b, nil
}

// AppendBinary appends the encoded referral record, its referrals and its
// signature sections to b.
func (r *ReferralRecord) AppendBinary(b []byte) ([]byte, error) {
	orig := len(b)
	switch {
	case r.Action > 7:
		return b, encodeErr("ACT", ErrBadValue)
	case r.Reserved > 0x07ff:
		return b, encodeErr("Referral record Reserved", ErrBadValue)
	case len(r.Signatures) > 15:
		return b, encodeErr("SigCnt", ErrBadValue)
	}
	e := EIDRecord{
		RecordTTL:     r.RecordTTL,
		MaskLen:       r.MaskLen,
		Action:        Action(r.Action),
		Authoritative: r.Authoritative,
		Reserved:      r.Reserved,
		Rsvd:          uint8(len(r.Signatures)),
		MapVersion:    r.MapVersion,
		EID:           r.EID,
		Locators:      r.Locators,
	}
	if r.Incomplete {
		e.Reserved |= refIncomplete
	}
	b, err := e.AppendBinary(b)
	if err != nil {
		return b[:orig], err
	}
	for i := range r.Signatures {
		s := &r.Signatures[i]
		if len(s.Signature) > 0xffff {
			return b[:orig], encodeErr("Sig Length", ErrBadValue)
		}
		if s.Reserved > 0x00ffffff {
			return b[:orig], encodeErr("Signature section Reserved", ErrBadValue)
		}
		b = appendU32(b, s.OriginalTTL)
		b = appendU32(b, s.Expiration)
		b = appendU32(b, s.Inception)
		b = appendU16(b, s.KeyTag)
		b = appendU16(b, uint16(len(s.Signature)))
		b = appendU32(b, uint32(s.Algorithm)<<24|s.Reserved)
		b = append(b, s.Signature...)
	}
	return b, nil
}
