package wire

// MapRequest is a Map-Request (type 1, RFC 9301 section 5.2, with the I bit,
// N bit and xTR-ID/site-ID of RFC 9437):
//
//	    0                   1                   2                   3
//	    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |Type=1 |A|M|P|S|p|s|R|I|  Rsvd   |L|D|   IRC   | Record Count  |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |                         Nonce . . .                           |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |                         . . . Nonce                           |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |        Source-EID-AFI         |   Source EID Address  ...     |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |         ITR-RLOC-AFI 1        |    ITR-RLOC Address 1  ...    |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |                              ...                              |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |         ITR-RLOC-AFI n        |    ITR-RLOC Address n  ...    |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	 / |N|   Reserved  | EID mask-len  |        EID-Prefix-AFI         |
//	Rec +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	 \ |                       EID-Prefix  ...                         |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |                   Map-Reply Record  ...                       |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |                       xTR-ID (128 bits) ...                   |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	   |                       site-ID (64 bits) ...                   |
//	   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// IRC (ITR-RLOC Count) is len(ITRRLOCs)-1, Record Count is len(Records), the
// M bit is set exactly when MapReplyRecord is non-nil, and the xTR-ID and
// site-ID follow everything else when XTRIDPresent (I) is set.
type MapRequest struct {
	// Authoritative is the A bit.
	Authoritative bool
	// Probe is the P bit: an RLOC-probe.
	Probe bool
	// SMR is the S bit: Solicit-Map-Request.
	SMR bool
	// PITR is the p bit: sent by a Proxy-ITR.
	PITR bool
	// SMRInvoked is the s bit: sent in answer to an SMR.
	SMRInvoked bool
	// XTRIDPresent is the I bit (RFC 9437): XTRID and SiteID are appended.
	XTRIDPresent bool
	// LocalXTR is the L bit: sent by an xTR of the same site.
	LocalXTR bool
	// DontMapReply is the D bit: the receiver must not send a Map-Reply.
	DontMapReply bool
	// Reserved holds the reserved bits of the first word (the R bit at
	// position 10 and Rsvd at 12-16), in place: see MapRequestReservedMask.
	Reserved uint32
	// Nonce is the 64-bit nonce.
	Nonce uint64
	// SourceEID is the Source-EID (AFINone when absent).
	SourceEID Address
	// ITRRLOCs are the ITR-RLOC addresses (1 to 32).
	ITRRLOCs []Address
	// Records are the EID records requested.
	Records []RequestRecord
	// MapReplyRecord is the sender's own mapping (M bit), or nil.
	MapReplyRecord *EIDRecord
	// XTRID is the xTR-ID, present when XTRIDPresent is set.
	XTRID XTRID
	// SiteID is the site-ID, present when XTRIDPresent is set.
	SiteID uint64
	// NoSiteID is set when the I bit's xTR-ID ends the message without a
	// site-ID after it, as lispers.net's subscribing Map-Requests do (16
	// bytes of xTR-ID only); SiteID is then 0 and AppendBinary omits it.
	NoSiteID bool
	// Trailing is the number of bytes after the message's declared
	// contents that Parse accepted and ignored.
	Trailing int
}

// Flag bits of the first word of a Map-Request.
const (
	mreqA    = 0x08000000
	mreqM    = 0x04000000
	mreqP    = 0x02000000
	mreqS    = 0x01000000
	mreqPITR = 0x00800000
	mreqSMRI = 0x00400000
	mreqI    = 0x00100000
	mreqL    = 0x00004000
	mreqD    = 0x00002000

	// MapRequestReservedMask selects the reserved bits of a Map-Request's
	// first word (the R bit and the 5-bit Rsvd field).
	MapRequestReservedMask = 0x002f8000
)

// Type returns TypeMapRequest.
func (m *MapRequest) Type() MessageType { return TypeMapRequest }

func parseMapRequest(b []byte) (*MapRequest, error) {
	r := reader{b: b}
	w, nonce, err := header(&r)
	if err != nil {
		return nil, err
	}
	m := &MapRequest{
		Authoritative: w&mreqA != 0,
		Probe:         w&mreqP != 0,
		SMR:           w&mreqS != 0,
		PITR:          w&mreqPITR != 0,
		SMRInvoked:    w&mreqSMRI != 0,
		XTRIDPresent:  w&mreqI != 0,
		LocalXTR:      w&mreqL != 0,
		DontMapReply:  w&mreqD != 0,
		Reserved:      w & MapRequestReservedMask,
		Nonce:         nonce,
	}
	irc := int(w>>8&0x1f) + 1
	count := int(w & 0xff)
	if m.SourceEID, err = r.address("Source-EID", 0); err != nil {
		return nil, err
	}
	m.ITRRLOCs = make([]Address, 0, capFor(irc, r.remaining(), 2))
	for i := 0; i < irc; i++ {
		a, err := r.address("ITR-RLOC", 0)
		if err != nil {
			return nil, err
		}
		m.ITRRLOCs = append(m.ITRRLOCs, a)
	}
	if count > 0 {
		m.Records = make([]RequestRecord, 0, capFor(count, r.remaining(), 4))
	}
	for i := 0; i < count; i++ {
		var rec RequestRecord
		v, err := r.u16("EID mask-len")
		if err != nil {
			return nil, err
		}
		rec.NotifyRequested = v&0x8000 != 0
		rec.Reserved = uint8(v>>8) & 0x7f
		rec.MaskLen = uint8(v)
		if rec.EID, err = r.address("EID-Prefix", 0); err != nil {
			return nil, err
		}
		m.Records = append(m.Records, rec)
	}
	if w&mreqM != 0 {
		rec, err := parseRecord(&r)
		if err != nil {
			return nil, err
		}
		m.MapReplyRecord = &rec
	}
	if m.XTRIDPresent {
		if r.remaining() == len(m.XTRID) {
			// lispers.net: the xTR-ID and no site-ID.
			p, _ := r.bytes(len(m.XTRID), "xTR-ID")
			copy(m.XTRID[:], p)
			m.NoSiteID = true
		} else if m.XTRID, m.SiteID, err = parseXTRID(&r); err != nil {
			return nil, err
		}
	}
	m.Trailing = r.remaining()
	return m, nil
}

// AppendBinary appends the encoded Map-Request to b. It fails for an empty or
// over-long (more than 32) ITR-RLOC list, more than 255 records, reserved
// bits outside MapRequestReservedMask or unencodable addresses.
func (m *MapRequest) AppendBinary(b []byte) ([]byte, error) {
	orig := len(b)
	switch {
	case len(m.ITRRLOCs) == 0 || len(m.ITRRLOCs) > 32:
		return b, encodeErr("IRC", ErrBadValue)
	case len(m.Records) > 255:
		return b, encodeErr("Record Count", ErrBadValue)
	}
	if err := checkReserved(m.Reserved, MapRequestReservedMask, "Map-Request Reserved"); err != nil {
		return b, err
	}
	w := uint32(TypeMapRequest)<<28 | m.Reserved | uint32(len(m.ITRRLOCs)-1)<<8 | uint32(len(m.Records))
	for _, f := range [...]struct {
		set bool
		bit uint32
	}{
		{m.Authoritative, mreqA}, {m.MapReplyRecord != nil, mreqM}, {m.Probe, mreqP},
		{m.SMR, mreqS}, {m.PITR, mreqPITR}, {m.SMRInvoked, mreqSMRI},
		{m.XTRIDPresent, mreqI}, {m.LocalXTR, mreqL}, {m.DontMapReply, mreqD},
	} {
		if f.set {
			w |= f.bit
		}
	}
	b = appendU32(b, w)
	b = appendU64(b, m.Nonce)
	var err error
	if b, err = appendAddress(b, &m.SourceEID, 0); err != nil {
		return b[:orig], err
	}
	for i := range m.ITRRLOCs {
		if b, err = appendAddress(b, &m.ITRRLOCs[i], 0); err != nil {
			return b[:orig], err
		}
	}
	for i := range m.Records {
		rec := &m.Records[i]
		if rec.Reserved > 0x7f {
			return b[:orig], encodeErr("EID record Reserved", ErrBadValue)
		}
		if !checkMaskLen(&rec.EID, rec.MaskLen) {
			return b[:orig], encodeErr("EID mask-len", ErrBadValue)
		}
		v := rec.Reserved
		if rec.NotifyRequested {
			v |= 0x80
		}
		b = append(b, v, rec.MaskLen)
		if b, err = appendAddress(b, &rec.EID, 0); err != nil {
			return b[:orig], err
		}
	}
	if m.MapReplyRecord != nil {
		if b, err = m.MapReplyRecord.AppendBinary(b); err != nil {
			return b[:orig], err
		}
	}
	if m.XTRIDPresent {
		if m.NoSiteID {
			b = append(b, m.XTRID[:]...)
		} else {
			b = appendXTRID(b, &m.XTRID, m.SiteID)
		}
	}
	return b, nil
}
