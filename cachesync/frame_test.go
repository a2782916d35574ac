package cachesync

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// testEntry returns an entry as the ITR inserts it.
func testEntry(iid uint32, prefix string, ttl time.Duration, version uint64, rlocs ...string) *mapcache.Entry {
	e := &mapcache.Entry{
		InstanceID: iid,
		Prefix:     netip.MustParsePrefix(prefix),
		TTL:        ttl,
		Source:     mapcache.FromMapReply,
		Version:    version,
		MapVersion: 7,
	}
	for i, r := range rlocs {
		e.RLOCs = append(e.RLOCs, mapcache.RLOC{
			Addr: netip.MustParseAddr(r), Priority: uint8(i + 1), Weight: 50, MPriority: 255, MWeight: 0,
			Reachable: true, Local: i == 1,
		})
	}
	if len(rlocs) == 0 {
		e.Action = mapcache.NativelyForward
	}
	return e
}

// insertAt inserts e into a fresh cache whose clock reads now, so that its
// Expires is now + TTL.
func insertAt(t *testing.T, e *mapcache.Entry, now time.Time) *mapcache.Cache {
	t.Helper()
	c := mapcache.New(mapcache.Config{Clock: func() time.Time { return now }})
	if _, err := c.Insert(e); err != nil {
		t.Fatal(err)
	}
	return c
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// TestRecordGolden pins the record encoding.
func TestRecordGolden(t *testing.T) {
	e := testEntry(1000, "10.1.0.0/16", 10*time.Minute, 0x0102030405060708, "192.0.2.1", "2001:db8::1")
	insertAt(t, e, t0)
	b, ok := appendRecord(nil, e, t0.Add(time.Minute))
	if !ok {
		t.Fatal("not shareable")
	}
	want := "000003e8" + // iid 1000
		"01" + "10" + "00" + "00" + // AFI 1, /16, action 0, flags
		"0007" + "02" + // map-version 7, 2 locators
		"0102030405060708" + // version
		"000927c0" + // TTL 600000 ms
		"00083d60" + // remaining 540000 ms
		"0a010000" + // 10.1.0.0
		"01" + "02" + "01" + "32" + "ff" + "00" + "c0000201" + // 192.0.2.1 R, prio 1 w 50
		"02" + "03" + "02" + "32" + "ff" + "00" + "20010db8000000000000000000000001" // 2001:db8::1 R+L, prio 2
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("record\n got %s\nwant %s", got, want)
	}
	r, n, err := parseRecord(b)
	if err != nil || n != len(b) {
		t.Fatalf("parse: %v (%d of %d bytes)", err, n, len(b))
	}
	if r.key != e.Key() || r.version != e.Version || r.ttl != e.TTL || r.remaining != 9*time.Minute ||
		r.mapVersion != 7 || r.action != e.Action || !reflect.DeepEqual(r.rlocs, e.RLOCs) {
		t.Fatalf("parsed %+v, want the entry %+v", r, e)
	}
	got := r.entry(t0, "peer")
	if !got.Expires.Equal(t0.Add(9*time.Minute)) || got.Source != mapcache.FromSync || got.Origin != "peer" {
		t.Fatalf("entry %+v", got)
	}
}

// TestRecordSeconds checks the seconds encoding of very long TTLs.
func TestRecordSeconds(t *testing.T) {
	e := testEntry(0, "2001:db8::/32", 100*24*time.Hour, 9, "192.0.2.1")
	insertAt(t, e, t0)
	b, _ := appendRecord(nil, e, t0)
	r, _, err := parseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if b[7]&recFlagSeconds == 0 || r.ttl != e.TTL || r.remaining != e.TTL {
		t.Fatalf("flags %x ttl %v remaining %v", b[7], r.ttl, r.remaining)
	}
	// Expired and permanent entries are not shareable.
	if _, ok := appendRecord(nil, e, t0.Add(e.TTL)); ok {
		t.Error("expired entry encoded")
	}
	p := testEntry(0, "10.0.0.0/8", mapcache.Permanent, 1)
	insertAt(t, p, t0)
	if _, ok := appendRecord(nil, p, t0); ok {
		t.Error("permanent entry encoded")
	}
}

func TestRecordRejects(t *testing.T) {
	e := testEntry(5, "10.1.0.0/16", time.Minute, 3, "192.0.2.1", "192.0.2.2")
	insertAt(t, e, t0)
	good, _ := appendRecord(nil, e, t0)
	mut := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	cases := map[string][]byte{
		"truncated":        good[:20],
		"bad afi":          mut(func(b []byte) { b[4] = 3 }),
		"prefix too long":  mut(func(b []byte) { b[5] = 33 }),
		"host bits":        mut(func(b []byte) { b[5] = 8 }), // 10.1.0.0/8
		"action":           mut(func(b []byte) { b[6] = 6 }),
		"map-version":      mut(func(b []byte) { b[8] = 0x10 }),
		"zero ttl":         mut(func(b []byte) { copy(b[19:23], []byte{0, 0, 0, 0}) }),
		"zero remaining":   mut(func(b []byte) { copy(b[23:27], []byte{0, 0, 0, 0}) }),
		"too many rlocs":   mut(func(b []byte) { b[10] = 3 }),
		"duplicate rloc":   mut(func(b []byte) { b[len(b)-1] = 1 }),
		"unspecified rloc": mut(func(b []byte) { copy(b[len(b)-4:], []byte{0, 0, 0, 0}) }),
	}
	for name, b := range cases {
		if _, _, err := parseRecord(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
	// An IPv4-mapped EID prefix is refused.
	m := mut(func(b []byte) {})
	m4in6 := append(append(bytes.Clone(m[:27]), make([]byte, 10)...), 0xff, 0xff, 10, 1, 0, 0)
	m4in6[4], m4in6[5], m4in6[10] = afiIPv6, 112, 0
	if _, _, err := parseRecord(m4in6); !errors.Is(err, ErrMalformed) {
		t.Errorf("4in6 prefix: err %v", err)
	}
}

// roundTrip parses f, re-encodes what it decoded and checks the bytes.
func roundTrip(t *testing.T, b []byte) frame {
	t.Helper()
	f, err := parseFrame(b)
	if err != nil {
		t.Fatalf("parse %x: %v", b, err)
	}
	if again := encodeFrame(&f); !bytes.Equal(again, b) {
		t.Fatalf("re-encoded\n got %x\nwant %x", again, b)
	}
	return f
}

// encodeFrame encodes a decoded frame (records through entries inserted at
// t0 with their remaining time).
func encodeFrame(f *frame) []byte {
	switch f.typ {
	case frameHello:
		return appendHello(nil, f.hello)
	case frameRecords:
		b, s := beginFrame(nil, frameRecords)
		var flags byte
		if f.full {
			flags = recordsFlagFull
		}
		b = append(b, flags, 0, 0, 0, byte(len(f.records)))
		for i := range f.records {
			b = appendRecordOf(b, &f.records[i])
		}
		return finishFrame(b, s)
	case frameDigest:
		return appendDigest(nil, f.digest)
	case frameKeys:
		return appendKeys(nil, f.keys)
	case frameUsage:
		return appendUsage(nil, f.usage)
	case framePing:
		return appendPing(nil)
	case frameBye:
		return appendBye(nil, f.reason)
	}
	return nil
}

// appendRecordOf re-encodes a decoded record.
func appendRecordOf(b []byte, r *record) []byte {
	e := r.entry(t0, "")
	c := mapcache.New(mapcache.Config{Clock: func() time.Time { return t0 }})
	if _, err := c.Insert(e); err != nil {
		panic(err)
	}
	for i := range e.RLOCs {
		e.SetReachable(i, r.rlocs[i].Reachable)
	}
	out, _ := appendRecord(b, e, t0)
	return out
}

func TestFrameRoundTrips(t *testing.T) {
	e1 := testEntry(1, "10.1.0.0/16", time.Minute, 11, "192.0.2.1")
	e2 := testEntry(2, "2001:db8:1::/48", time.Hour, 12)
	c := mapcache.New(mapcache.Config{Clock: func() time.Time { return t0 }})
	c.InsertBatch([]*mapcache.Entry{e1, e2})
	frames, counts := recordsFrames([]*mapcache.Entry{e1, e2}, t0, true, MinMaxFrameSize)
	if len(frames) != 1 || counts[0] != 2 {
		t.Fatalf("frames %d counts %v", len(frames), counts)
	}
	f := roundTrip(t, frames[0])
	if !f.full || len(f.records) != 2 || f.records[1].key != e2.Key() || f.records[1].action != mapcache.NativelyForward {
		t.Fatalf("records frame %+v", f)
	}
	h := roundTrip(t, appendHello(nil, hello{mode: ModeSmart, origin: 77, round: 5 * time.Second, window: time.Minute, name: "itr-1"}))
	if h.hello != (hello{mode: ModeSmart, origin: 77, round: 5 * time.Second, window: time.Minute, name: "itr-1"}) {
		t.Fatalf("hello %+v", h.hello)
	}
	d := roundTrip(t, appendDigest(nil, digest{buckets: []uint64{1, 2, 3, 4}, records: 9}))
	if !reflect.DeepEqual(d.digest, digest{buckets: []uint64{1, 2, 3, 4}, records: 9}) {
		t.Fatalf("digest %+v", d.digest)
	}
	k := keysMsg{nbuckets: 16, buckets: []uint32{1, 5}, keys: []keyVersion{{7, 8}, {9, 10}}}
	if got := roundTrip(t, appendKeys(nil, k)); !reflect.DeepEqual(got.keys, k) {
		t.Fatalf("keys %+v", got.keys)
	}
	u := []usageItem{{hash: 42, age: 1500 * time.Millisecond}}
	if got := roundTrip(t, appendUsage(nil, u)); !reflect.DeepEqual(got.usage, u) {
		t.Fatalf("usage %+v", got.usage)
	}
	roundTrip(t, appendPing(nil))
	if got := roundTrip(t, appendBye(nil, "mode mismatch")); got.reason != "mode mismatch" {
		t.Fatalf("bye %q", got.reason)
	}
}

func TestFrameRejects(t *testing.T) {
	ping := appendPing(nil)
	cases := map[string][]byte{
		"short":          ping[:5],
		"length":         append(bytes.Clone(ping), 0),
		"hello no name":  appendHelloRaw(ModeSmart, ""),
		"hello bad mode": appendHelloRaw(9, "x"),
		"digest not pow2": func() []byte {
			return appendDigest(nil, digest{buckets: make([]uint64, 3)})
		}(),
		"digest short": func() []byte {
			b := appendDigest(nil, digest{buckets: make([]uint64, 4)})
			b = b[:len(b)-8]
			return fixLen(b)
		}(),
		"keys out of order": appendKeys(nil, keysMsg{nbuckets: 16, buckets: []uint32{5, 1}}),
		"keys out of range": appendKeys(nil, keysMsg{nbuckets: 16, buckets: []uint32{16}}),
		"keys count":        fixLen(append(appendKeys(nil, keysMsg{nbuckets: 16})[:14], 0xff, 0xff, 0xff, 0xff)),
		"usage count":       fixLen([]byte{0, 0, 0, 0, 1, byte(frameUsage), 0x10, 0, 0, 0}),
		"records count":     fixLen([]byte{0, 0, 0, 0, 1, byte(frameRecords), 0, 0, 0, 0, 5}),
		"trailing bytes":    fixLen(append(appendPing(nil), 1)),
		"bye not utf8":      fixLen(append(appendBye(nil, "")[:6], 0, 1, 0xff)),
	}
	for name, b := range cases {
		if _, err := parseFrame(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
	v2 := bytes.Clone(ping)
	v2[4] = 2
	if _, err := parseFrame(v2); !errors.Is(err, ErrFrameVersion) {
		t.Errorf("version 2: err %v", err)
	}
	// Unknown types are skipped, not refused.
	unk := fixLen([]byte{0, 0, 0, 0, 1, 200, 1, 2, 3})
	if f, err := parseFrame(unk); err != nil || f.typ != 200 {
		t.Errorf("unknown type: %v %v", f.typ, err)
	}
}

// TestRecordsFrameAllOrNothing: one bad record makes the whole frame
// malformed; none of its records is returned.
func TestRecordsFrameAllOrNothing(t *testing.T) {
	e1 := testEntry(1, "10.1.0.0/16", time.Minute, 11, "192.0.2.1")
	e2 := testEntry(1, "10.2.0.0/16", time.Minute, 12, "192.0.2.1")
	c := mapcache.New(mapcache.Config{Clock: func() time.Time { return t0 }})
	c.InsertBatch([]*mapcache.Entry{e1, e2})
	frames, _ := recordsFrames([]*mapcache.Entry{e1, e2}, t0, false, MinMaxFrameSize)
	b := bytes.Clone(frames[0])
	b[len(b)-41+6] = 99 // the second record (41 bytes) has action 99
	f, err := parseFrame(b)
	if !errors.Is(err, ErrMalformed) || len(f.records) != 0 {
		t.Fatalf("err %v, %d records", err, len(f.records))
	}
}

func TestRecordsFramesSplit(t *testing.T) {
	c := mapcache.New(mapcache.Config{Clock: func() time.Time { return t0 }})
	var es []*mapcache.Entry
	for i := range 5000 {
		e := testEntry(0, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24).String(), time.Minute, uint64(i+1), "192.0.2.1")
		es = append(es, e)
	}
	if errs := c.InsertBatch(es); errs != nil {
		t.Fatal(errs)
	}
	frames, counts := recordsFrames(es, t0, false, MinMaxFrameSize)
	total := 0
	for i, f := range frames {
		if len(f) > MinMaxFrameSize {
			t.Fatalf("frame %d has %d bytes", i, len(f))
		}
		pf, err := parseFrame(f)
		if err != nil || len(pf.records) != counts[i] {
			t.Fatalf("frame %d: %v, %d records, counted %d", i, err, len(pf.records), counts[i])
		}
		total += counts[i]
	}
	if total != len(es) || len(frames) < 2 {
		t.Fatalf("%d records in %d frames", total, len(frames))
	}
}

func appendHelloRaw(mode Mode, name string) []byte {
	b, s := beginFrame(nil, frameHello)
	b = append(b, byte(mode), 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, byte(len(name)))
	b = append(b, name...)
	return finishFrame(b, s)
}

// fixLen rewrites the length field of a hand-made frame.
func fixLen(b []byte) []byte { return finishFrame(b, 0) }

func TestReadFrame(t *testing.T) {
	ping := appendPing(nil)
	b, err := readFrame(bytes.NewReader(ping), 64, nil)
	if err != nil || !bytes.Equal(b, ping) {
		t.Fatalf("%x %v", b, err)
	}
	big := make([]byte, 4)
	big[0] = 1 // 16 MiB
	if _, err := readFrame(bytes.NewReader(big), MinMaxFrameSize, nil); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 0, 0, 1, 1}), 64, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("length 1: %v", err)
	}
	if _, err := readFrame(bytes.NewReader(ping[:5]), 64, nil); err == nil {
		t.Fatal("truncated frame read")
	}
}
