package cachesync

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lispd/lispd/mapcache"
)

// Frames are what members exchange: on the TLS connections of the naive
// and smart modes, one after the other on the stream; in gossip mode, one
// per memberlist message, after a small envelope naming the sender.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|              Length (bytes after this field)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Version = 1  |     Type      |          Body ...             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// All integers are big-endian. The bodies, by type:
//
//	HELLO   Mode(1) Origin(2) Flags(1) Round-ms(4) Window-ms(4)
//	        Name-len(1) Name
//	RECORDS Flags(1: bit 0 = the sender's whole cache) Count(4) records
//	        (see record.go)
//	DIGEST  Buckets(4, a power of two) Records(4) Buckets x Hash(8)
//	KEYS    Buckets(4) N(4) N x Bucket(4, increasing) M(4)
//	        M x (Key-hash(8) Version(8))
//	USAGE   N(4) N x (Key-hash(8) Age-ms(4))
//	PING    (empty)
//	BYE     Reason-len(2) Reason (UTF-8)
//	STATUS  see status.go
//
// A frame of an unknown type is skipped (and counted), so that later
// versions can add types; a frame of another version is refused.
type frameType uint8

// Frame types.
const (
	frameHello   frameType = 1
	frameRecords frameType = 2
	frameDigest  frameType = 3
	frameKeys    frameType = 4
	frameUsage   frameType = 5
	framePing    frameType = 6
	frameBye     frameType = 7
	frameStatus  frameType = 8
)

var frameNames = [...]string{
	frameHello:   "hello",
	frameRecords: "records",
	frameDigest:  "digest",
	frameKeys:    "keys",
	frameUsage:   "usage",
	framePing:    "ping",
	frameBye:     "bye",
	frameStatus:  "status",
}

// String names the frame type.
func (t frameType) String() string {
	if int(t) < len(frameNames) && frameNames[t] != "" {
		return frameNames[t]
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

const (
	frameVersion   = 1
	frameHeaderLen = 6 // length, version, type
	// DefaultMaxFrameSize bounds a frame when Config.MaxFrameSize is 0.
	DefaultMaxFrameSize = 16 << 20
	// MinMaxFrameSize is the smallest Config.MaxFrameSize accepted: a frame
	// must hold the largest record (255 IPv6 locators) and a digest of
	// 4096 buckets.
	MinMaxFrameSize = 64 << 10
	// maxDigestBuckets bounds the buckets of a digest.
	maxDigestBuckets = 1 << 16
	// maxNameLen is the longest member name.
	maxNameLen = 255
	// maxReasonLen is the longest BYE reason.
	maxReasonLen = 1024

	recordsFlagFull = 0x01
)

// hello is the first frame each side of a connection sends.
type hello struct {
	mode   Mode
	origin uint16
	round  time.Duration
	window time.Duration
	name   string
}

// digest summarizes a member's shareable records: each record's key hash
// chooses a bucket (its top bits) and each bucket is the XOR of the
// recordHash of its records.
type digest struct {
	buckets []uint64
	records uint32
}

// keyVersion is one record in a KEYS frame.
type keyVersion struct {
	hash    uint64
	version uint64
}

// keysMsg lists the records a member holds in some digest buckets.
type keysMsg struct {
	nbuckets int
	buckets  []uint32
	keys     []keyVersion
}

// usageItem says a key was used age ago.
type usageItem struct {
	hash uint64
	age  time.Duration
}

// frame is a decoded frame; the fields of its type are set.
type frame struct {
	typ     frameType
	hello   hello
	full    bool
	records []record
	digest  digest
	keys    keysMsg
	usage   []usageItem
	reason  string
	status  MemberStatus
}

// beginFrame appends a frame header of type t to b with a zero length and
// returns b and the frame's start, for finishFrame.
func beginFrame(b []byte, t frameType) ([]byte, int) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, frameVersion, byte(t))
	return b, start
}

// finishFrame writes the length of the frame that starts at start.
func finishFrame(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

func appendHello(b []byte, h hello) []byte {
	b, s := beginFrame(b, frameHello)
	b = append(b, byte(h.mode))
	b = binary.BigEndian.AppendUint16(b, h.origin)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, durMillis32(h.round))
	b = binary.BigEndian.AppendUint32(b, durMillis32(h.window))
	name := h.name
	if len(name) > maxNameLen {
		name = name[:maxNameLen]
	}
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return finishFrame(b, s)
}

func durMillis32(d time.Duration) uint32 {
	return uint32(min(max(d.Milliseconds(), 0), 1<<32-1))
}

func appendDigest(b []byte, d digest) []byte {
	b, s := beginFrame(b, frameDigest)
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.buckets)))
	b = binary.BigEndian.AppendUint32(b, d.records)
	for _, h := range d.buckets {
		b = binary.BigEndian.AppendUint64(b, h)
	}
	return finishFrame(b, s)
}

func appendKeys(b []byte, k keysMsg) []byte {
	b, s := beginFrame(b, frameKeys)
	b = binary.BigEndian.AppendUint32(b, uint32(k.nbuckets))
	b = binary.BigEndian.AppendUint32(b, uint32(len(k.buckets)))
	for _, x := range k.buckets {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(k.keys)))
	for _, kv := range k.keys {
		b = binary.BigEndian.AppendUint64(b, kv.hash)
		b = binary.BigEndian.AppendUint64(b, kv.version)
	}
	return finishFrame(b, s)
}

func appendUsage(b []byte, items []usageItem) []byte {
	b, s := beginFrame(b, frameUsage)
	b = binary.BigEndian.AppendUint32(b, uint32(len(items)))
	for _, u := range items {
		b = binary.BigEndian.AppendUint64(b, u.hash)
		b = binary.BigEndian.AppendUint32(b, durMillis32(u.age))
	}
	return finishFrame(b, s)
}

func appendPing(b []byte) []byte {
	b, s := beginFrame(b, framePing)
	return finishFrame(b, s)
}

func appendBye(b []byte, reason string) []byte {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	reason = strings.ToValidUTF8(reason, "?")
	b, s := beginFrame(b, frameBye)
	b = binary.BigEndian.AppendUint16(b, uint16(len(reason)))
	b = append(b, reason...)
	return finishFrame(b, s)
}

// recordsFrames encodes the shareable entries of es as RECORDS frames of at
// most limit bytes each, computing remaining times at now. It returns the
// frames and how many records each holds. full marks the frames as (part
// of) the sender's whole cache.
func recordsFrames(es []*mapcache.Entry, now time.Time, full bool, limit int) ([][]byte, []int) {
	var frames [][]byte
	var counts []int
	var b []byte
	var start, n int
	open := func() {
		b, start = beginFrame(make([]byte, 0, min(limit, 64<<10)), frameRecords)
		var flags byte
		if full {
			flags |= recordsFlagFull
		}
		b = append(b, flags, 0, 0, 0, 0)
		n = 0
	}
	closeFrame := func() {
		binary.BigEndian.PutUint32(b[start+frameHeaderLen+1:], uint32(n))
		frames = append(frames, finishFrame(b, start))
		counts = append(counts, n)
		b = nil
	}
	for _, e := range es {
		if b == nil {
			open()
		}
		before := len(b)
		var ok bool
		b, ok = appendRecord(b, e, now)
		if !ok {
			continue
		}
		if len(b) > limit && n > 0 {
			rec := append([]byte(nil), b[before:]...)
			b = b[:before]
			closeFrame()
			open()
			b = append(b, rec...)
		}
		n++
	}
	if b != nil && n > 0 {
		closeFrame()
	}
	return frames, counts
}

// readFrame reads one frame from r into buf (grown as needed) and returns
// it, length prefix included. A frame longer than limit is refused with
// ErrFrameTooLarge before its body is read.
func readFrame(r io.Reader, limit int, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int64(binary.BigEndian.Uint32(hdr[:]))
	if n < 2 {
		return nil, fmt.Errorf("%w: length %d", ErrMalformed, n)
	}
	if n+4 > int64(limit) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n+4, limit)
	}
	total := int(n) + 4
	if cap(buf) < total {
		buf = make([]byte, total)
	}
	buf = buf[:total]
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// reader walks a frame body with bounds checks.
type reader struct {
	b   []byte
	err error
	// what names the frame part being read, for errors.
	what string
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errTruncated(r.what)
	}
}

func (r *reader) u8() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if len(r.b) < 2 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u32() uint32 {
	if len(r.b) < 4 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if len(r.b) < n {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// count reads a 32-bit element count and checks that count elements of at
// least size bytes each can follow, before anything is allocated.
func (r *reader) count(size int) int {
	n := r.u32()
	if r.err != nil {
		return 0
	}
	if uint64(n)*uint64(size) > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: %s count %d exceeds the %d bytes left", ErrMalformed, r.what, n, len(r.b))
		return 0
	}
	return int(n)
}

// parseFrame decodes a whole frame (length prefix included). It either
// returns every element of the frame, validated, or an error wrapping
// ErrMalformed or ErrFrameVersion: never part of a frame.
func parseFrame(b []byte) (frame, error) {
	var f frame
	if len(b) < frameHeaderLen {
		return f, errTruncated("frame header")
	}
	if n := binary.BigEndian.Uint32(b); uint64(n) != uint64(len(b)-4) {
		return f, fmt.Errorf("%w: length field %d, frame has %d bytes", ErrMalformed, n, len(b)-4)
	}
	if b[4] != frameVersion {
		return f, fmt.Errorf("%w: version %d", ErrFrameVersion, b[4])
	}
	f.typ = frameType(b[5])
	r := &reader{b: b[frameHeaderLen:], what: f.typ.String()}
	switch f.typ {
	case frameHello:
		f.hello.mode = Mode(r.u8())
		f.hello.origin = r.u16()
		r.u8() // flags, reserved
		f.hello.round = time.Duration(r.u32()) * time.Millisecond
		f.hello.window = time.Duration(r.u32()) * time.Millisecond
		name := r.bytes(int(r.u8()))
		if r.err == nil && (!utf8.Valid(name) || len(name) == 0) {
			r.err = fmt.Errorf("%w: hello name is empty or not UTF-8", ErrMalformed)
		}
		f.hello.name = string(name)
		if r.err == nil && !f.hello.mode.valid() {
			r.err = fmt.Errorf("%w: hello mode %d", ErrMalformed, f.hello.mode)
		}
	case frameRecords:
		f.full = r.u8()&recordsFlagFull != 0
		n := r.count(minRecordLen)
		if r.err == nil && n > 0 {
			f.records = make([]record, 0, n)
			for range n {
				rec, k, err := parseRecord(r.b)
				if err != nil {
					r.err = err
					break
				}
				f.records = append(f.records, rec)
				r.b = r.b[k:]
			}
		}
	case frameDigest:
		nb := r.u32()
		if r.err == nil && !validBuckets(int64(nb)) {
			r.err = fmt.Errorf("%w: %d digest buckets", ErrMalformed, nb)
		}
		f.digest.records = r.u32()
		if r.err == nil {
			if uint64(len(r.b)) != uint64(nb)*8 {
				r.err = fmt.Errorf("%w: digest of %d buckets has %d bytes", ErrMalformed, nb, len(r.b))
				break
			}
			f.digest.buckets = make([]uint64, nb)
			for i := range f.digest.buckets {
				f.digest.buckets[i] = r.u64()
			}
		}
	case frameKeys:
		nb := r.u32()
		if r.err == nil && !validBuckets(int64(nb)) {
			r.err = fmt.Errorf("%w: %d key buckets", ErrMalformed, nb)
		}
		f.keys.nbuckets = int(nb)
		n := r.count(4)
		if r.err == nil && n > 0 {
			f.keys.buckets = make([]uint32, n)
			for i := range f.keys.buckets {
				x := r.u32()
				if x >= nb || (i > 0 && x <= f.keys.buckets[i-1]) {
					r.err = fmt.Errorf("%w: key bucket %d out of order or range", ErrMalformed, x)
					break
				}
				f.keys.buckets[i] = x
			}
		}
		m := r.count(16)
		if r.err == nil && m > 0 {
			f.keys.keys = make([]keyVersion, m)
			for i := range f.keys.keys {
				f.keys.keys[i] = keyVersion{hash: r.u64(), version: r.u64()}
			}
		}
	case frameUsage:
		n := r.count(12)
		if r.err == nil && n > 0 {
			f.usage = make([]usageItem, n)
			for i := range f.usage {
				f.usage[i] = usageItem{hash: r.u64(), age: time.Duration(r.u32()) * time.Millisecond}
			}
		}
	case framePing:
	case frameStatus:
		f.status = parseStatus(r)
	case frameBye:
		f.reason = string(r.bytes(int(r.u16())))
		if r.err == nil && !utf8.ValidString(f.reason) {
			r.err = fmt.Errorf("%w: bye reason is not UTF-8", ErrMalformed)
		}
	default:
		// Unknown type: skipped by the caller.
		return f, nil
	}
	if r.err != nil {
		return frame{}, r.err
	}
	if len(r.b) != 0 {
		return frame{}, fmt.Errorf("%w: %d bytes after the %s body", ErrMalformed, len(r.b), f.typ)
	}
	return f, nil
}

// validBuckets reports whether n is a valid digest bucket count: a power
// of two from 1 to maxDigestBuckets.
func validBuckets(n int64) bool {
	return n >= 1 && n <= maxDigestBuckets && bits.OnesCount64(uint64(n)) == 1
}
