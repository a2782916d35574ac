package wire

import "encoding/binary"

// reader walks a byte slice, checking the bounds before every read. Each
// read names the field it reads so a short input yields a precise error.
type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) need(n int, field string) error {
	if n < 0 || r.remaining() < n {
		return parseErr(field, r.off, ErrTruncated)
	}
	return nil
}

func (r *reader) u8(field string) (uint8, error) {
	if err := r.need(1, field); err != nil {
		return 0, err
	}
	v := r.b[r.off]
	r.off++
	return v, nil
}

func (r *reader) u16(field string) (uint16, error) {
	if err := r.need(2, field); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v, nil
}

func (r *reader) u32(field string) (uint32, error) {
	if err := r.need(4, field); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, nil
}

func (r *reader) u64(field string) (uint64, error) {
	if err := r.need(8, field); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v, nil
}

// bytes returns the next n bytes without copying them.
func (r *reader) bytes(n int, field string) ([]byte, error) {
	if err := r.need(n, field); err != nil {
		return nil, err
	}
	v := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return v, nil
}

// address parses an AFI-prefixed address at the current position.
func (r *reader) address(field string, depth int) (Address, error) {
	a, n, err := parseAddress(r.b[r.off:], depth)
	if err != nil {
		return Address{}, wrapAt(field, r.off, err)
	}
	r.off += n
	return a, nil
}

// wrapAt re-bases an error from a nested parser: a FieldError keeps its own
// field name but gets its offset shifted by base; anything else is wrapped.
func wrapAt(field string, base int, err error) error {
	if fe, ok := err.(*FieldError); ok {
		return &FieldError{Op: fe.Op, Field: fe.Field, Offset: fe.Offset + base, Err: fe.Err}
	}
	return parseErr(field, base, err)
}

// capFor bounds a preallocation: an untrusted count is never trusted beyond
// what the remaining bytes could hold at minSize bytes per element.
func capFor(count, remaining, minSize int) int {
	if minSize <= 0 {
		return 0
	}
	if m := remaining / minSize; count > m {
		return m
	}
	return count
}

func appendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
