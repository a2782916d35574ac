package wire

import "encoding/binary"

// DataHeaderLen is the size of the LISP data-plane header.
const DataHeaderLen = 8

// DataHeader is the LISP header of an encapsulated data packet (RFC 9300
// section 5.3), carried after the outer UDP header (port 4341):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|N|L|E|V|I|R|K|K|            Nonce/Map-Version                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Instance ID/Locator-Status-Bits               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// With V set the first word's low 24 bits are two 12-bit map-versions:
//
//	|N|L|E|V|I|R|K|K|  Source Map-Version   |   Dest Map-Version    |
//
// With I set the second word is a 24-bit Instance ID and 8
// Locator-Status-Bits; with I clear it is 32 Locator-Status-Bits.
//
// When V is clear the 24 bits are kept in Nonce whatever N says, so a header
// round-trips exactly; when V is set they are the two map-versions.
type DataHeader struct {
	// N is the nonce-present bit.
	N bool
	// L is the Locator-Status-Bits-enabled bit.
	L bool
	// E is the echo-nonce-request bit.
	E bool
	// V is the map-version-present bit.
	V bool
	// I is the Instance-ID bit.
	I bool
	// Reserved holds the R, K and K bits (the low 3 bits of the first
	// byte), kept so they round-trip.
	Reserved uint8
	// Nonce is the 24-bit nonce (when V is clear).
	Nonce uint32
	// SourceMapVersion is the 12-bit Source Map-Version (when V is set).
	SourceMapVersion uint16
	// DestMapVersion is the 12-bit Dest Map-Version (when V is set).
	DestMapVersion uint16
	// InstanceID is the 24-bit Instance ID (when I is set).
	InstanceID uint32
	// LSB are the Locator-Status-Bits: 8 bits when I is set, 32 otherwise.
	LSB uint32
}

const (
	dataN = 0x80
	dataL = 0x40
	dataE = 0x20
	dataV = 0x10
	dataI = 0x08
)

// ParseDataHeader parses the 8-byte data header at the start of b. It does
// not allocate, not even for its error: a short b gives ErrTruncated itself.
func ParseDataHeader(b []byte) (h DataHeader, err error) {
	if len(b) < DataHeaderLen {
		return h, ErrTruncated
	}
	f := b[0]
	w0 := binary.BigEndian.Uint32(b)
	w1 := binary.BigEndian.Uint32(b[4:])
	h.N, h.L, h.E, h.V, h.I = f&dataN != 0, f&dataL != 0, f&dataE != 0, f&dataV != 0, f&dataI != 0
	h.Reserved = f & 0x07
	if h.V {
		h.SourceMapVersion, h.DestMapVersion = uint16(w0>>12&0x0fff), uint16(w0&0x0fff)
	} else {
		h.Nonce = w0 & 0xffffff
	}
	if h.I {
		h.InstanceID, h.LSB = w1>>8, w1&0xff
	} else {
		h.LSB = w1
	}
	return h, nil
}

// AppendBinary appends the 8-byte header to b. It fails when a field does not
// fit (Nonce over 24 bits, map-versions over 12 bits, Instance ID over 24
// bits, LSB over 8 bits with I set, Reserved over 3 bits) or is set while its
// flag says it is absent (map-versions without V, Nonce with V, Instance ID
// without I). It does not allocate when b has room.
func (h DataHeader) AppendBinary(b []byte) ([]byte, error) {
	f := h.Reserved
	switch {
	case h.Reserved > 0x07:
		return b, encodeErr("data header reserved flags", ErrBadValue)
	case h.V && (h.SourceMapVersion > 0x0fff || h.DestMapVersion > 0x0fff || h.Nonce != 0):
		return b, encodeErr("Map-Version", ErrBadValue)
	case !h.V && (h.Nonce > 0xffffff || h.SourceMapVersion != 0 || h.DestMapVersion != 0):
		return b, encodeErr("Nonce", ErrBadValue)
	case h.I && (h.InstanceID > 0xffffff || h.LSB > 0xff):
		return b, encodeErr("Instance ID", ErrBadValue)
	case !h.I && h.InstanceID != 0:
		return b, encodeErr("Instance ID", ErrBadValue)
	}
	if h.N {
		f |= dataN
	}
	if h.L {
		f |= dataL
	}
	if h.E {
		f |= dataE
	}
	if h.V {
		f |= dataV
	}
	if h.I {
		f |= dataI
	}
	v := h.Nonce
	if h.V {
		v = uint32(h.SourceMapVersion)<<12 | uint32(h.DestMapVersion)
	}
	w := h.LSB
	if h.I {
		w = h.InstanceID<<8 | h.LSB
	}
	return append(b, f, byte(v>>16), byte(v>>8), byte(v), byte(w>>24), byte(w>>16), byte(w>>8), byte(w)), nil
}
