package cachesync

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// FuzzFrame feeds arbitrary bytes to the frame reader and decoder: they
// must never panic, and whatever decodes must re-encode to a frame that
// decodes to the same thing. Seeds are in testdata/fuzz/FuzzFrame.
func FuzzFrame(f *testing.F) {
	e := testEntry(1, "10.1.0.0/16", time.Minute, 11, "192.0.2.1", "2001:db8::1")
	c := mapcache.New(mapcache.Config{Clock: func() time.Time { return t0 }})
	if _, err := c.Insert(e); err != nil {
		f.Fatal(err)
	}
	frames, _ := recordsFrames([]*mapcache.Entry{e}, t0, false, MinMaxFrameSize)
	f.Add(frames[0])
	f.Add(appendHello(nil, hello{mode: ModeNaive, origin: 3, round: time.Second, window: time.Minute, name: "a"}))
	f.Add(appendKeys(nil, keysMsg{nbuckets: 16, buckets: []uint32{0, 3}, keys: []keyVersion{{1, 2}}}))
	f.Add(appendUsage(nil, []usageItem{{hash: 5, age: time.Second}}))
	f.Add(appendStatus(nil, MemberStatus{Down: true, Reason: "eth1 down", RLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
		ITRs: []RemoteITR{{RLOC: netip.MustParseAddr("2001:db8::7"), InstanceID: 7, EID: netip.MustParseAddr("10.2.2.1"), Age: time.Second}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := readFrame(bytes.NewReader(b), MinMaxFrameSize, nil)
		if err != nil {
			return
		}
		fr, err := parseFrame(raw)
		if err != nil || encodeFrame(&fr) == nil {
			return // refused, or an unknown type (skipped)
		}
		again, err := parseFrame(encodeFrame(&fr))
		if err != nil {
			t.Fatalf("re-encoded frame does not parse: %v", err)
		}
		if !reflect.DeepEqual(again, fr) {
			t.Fatalf("round trip changed the frame:\n%+v\n%+v", fr, again)
		}
	})
}
