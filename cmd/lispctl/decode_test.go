package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/capture"
	"github.com/lispd/lispd/wire"
)

// updateDecodeGolden rewrites the golden files under testdata/decode/
// instead of comparing with them: go test ./cmd/lispctl -run Decode -update
var updateDecodeGolden = flag.Bool("update", false, "rewrite the golden files of the decode tests")

// execLispctl runs lispctl in-process through newRootCmd, as main does,
// and returns its stdout, stderr and exit status.
func execLispctl(t *testing.T, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs(args)
	if stdin != nil {
		root.SetIn(stdin)
	}
	_, err := root.ExecuteContextC(context.Background())
	code := exitCode(err)
	if err != nil {
		fmt.Fprintf(&errb, "lispctl: %s\n", errorMessage(err))
	}
	return out.String(), errb.String(), code
}

// checkGolden compares got with testdata/decode/name, or rewrites the file
// with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "decode", name)
	if *updateDecodeGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run with -update to rewrite it, then review the diff)", path, i+1, g, w)
			}
		}
	}
}

// Addresses and keys of the test capture.
var (
	decKey      = []byte("decode-test-key")
	decITR4     = netip.MustParseAddr("192.0.2.1")
	decMR4      = netip.MustParseAddr("192.0.2.10")
	decETR4     = netip.MustParseAddr("192.0.2.20")
	decITR6     = netip.MustParseAddr("2001:db8::1")
	decMR6      = netip.MustParseAddr("2001:db8::10")
	decETR6     = netip.MustParseAddr("2001:db8::20")
	decXTRID    = wire.XTRID{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	decBaseTime = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
)

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

func ipAddr(s string) wire.Address { return wire.AddrFrom(netip.MustParseAddr(s)) }

// mustEncode encodes a message, failing the test on error.
func mustEncode(t testing.TB, m wire.Message) []byte {
	t.Helper()
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatalf("encoding %T: %v", m, err)
	}
	return b
}

// signed encodes a Map-Register, Map-Notify or Map-Notify-Ack and signs it
// with decKey.
func signed(t testing.TB, m wire.Message) []byte {
	t.Helper()
	b := mustEncode(t, m)
	if err := wire.Sign(b, decKey); err != nil {
		t.Fatalf("signing %T: %v", m, err)
	}
	return b
}

// mapping returns a mapping record for prefix in instance iid.
func mapping(iid uint32, prefix string, ttl uint32, locs ...wire.Locator) wire.EIDRecord {
	r := wire.NewEIDRecord(iid, netip.MustParsePrefix(prefix))
	r.RecordTTL = ttl
	r.Authoritative = true
	r.Locators = locs
	return r
}

// ipv4Packet builds an IPv4 packet (no options) carrying payload.
func ipv4Packet(src, dst string, proto uint8, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0], b[8], b[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(payload)))
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	return append(b, payload...)
}

// ipv6Packet builds an IPv6 packet carrying payload after next.
func ipv6Packet(src, dst string, next uint8, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0], b[6], b[7] = 0x60, next, 64
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, payload...)
}

// icmpEcho is an ICMP or ICMPv6 echo message with n bytes of data.
func icmpEcho(typ uint8, id, seq uint16, n int) []byte {
	b := make([]byte, 8+n)
	b[0] = typ
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	for i := range n {
		b[8+i] = byte(i)
	}
	return b
}

// dataPacket is a LISP data packet: header h and the inner packet.
func dataPacket(t testing.TB, h wire.DataHeader, inner []byte) []byte {
	t.Helper()
	b, err := h.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, inner...)
}

// capturedPacket is one UDP datagram of the test capture.
type capturedPacket struct {
	src, dst netip.AddrPort
	payload  []byte
}

// decodeTestPackets returns the datagrams of the test capture: every
// message type over IPv4 and then over IPv6, one non-LISP datagram and one
// corrupt LISP payload (frame 9).
func decodeTestPackets(t testing.TB) []capturedPacket {
	t.Helper()
	etrLoc4 := wire.Locator{Priority: 1, Weight: 100, MPriority: 255, Local: true, Reachable: true, Address: wire.AddrFrom(decETR4)}
	etrLoc6 := wire.Locator{Priority: 2, Weight: 0, MPriority: 255, Reachable: true, Address: wire.AddrFrom(decETR6)}
	probedLoc := etrLoc4
	probedLoc.Probed = true

	// IPv4.
	req4 := &wire.MapRequest{
		Probe: true, Nonce: 0x0102030405060708, SourceEID: ipAddr("10.1.1.1"),
		ITRRLOCs: []wire.Address{wire.AddrFrom(decITR4), wire.AddrFrom(decITR6)},
		Records:  []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix("10.2.2.2/32"))},
	}
	rep4rec := mapping(0, "10.2.0.0/16", 1440, probedLoc, etrLoc6)
	rep4rec.MapVersion = 5
	rep4 := &wire.MapReply{Probe: true, Nonce: req4.Nonce, Records: []wire.EIDRecord{rep4rec}}
	reg4 := &wire.MapRegister{
		ProxyReply: true, WantMapNotify: true, XTRIDPresent: true, Nonce: 0x1111111111111111,
		KeyID: 0, AlgorithmID: wire.AlgHMACSHA196, // RFC 6830's "key-id 1"
		Records: []wire.EIDRecord{mapping(0, "10.2.0.0/16", 1440, etrLoc4)}, XTRID: decXTRID, SiteID: 7,
	}
	reg4b := signed(t, reg4)
	not4 := &wire.MapNotify{XTRIDPresent: true, Nonce: reg4.Nonce, KeyID: 0, AlgorithmID: wire.AlgHMACSHA196,
		Records: reg4.Records, XTRID: decXTRID, SiteID: 7}
	ack4 := &wire.MapNotifyAck{Nonce: 0x2222222222222222, KeyID: 0, AlgorithmID: wire.AlgHMACSHA196}
	ecm4 := wire.NewECM(ap(decITR4, 61000), ap(netip.MustParseAddr("10.2.2.2"), 4342), &wire.MapRequest{
		Nonce: 0x3333333333333333, ITRRLOCs: []wire.Address{wire.AddrFrom(decITR4)},
		Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix("10.2.2.2/32"))},
	})
	data4 := dataPacket(t, wire.DataHeader{N: true, I: true, Nonce: 0xabcdef, InstanceID: 1000, LSB: 0x03},
		ipv4Packet("10.1.1.1", "10.2.2.2", protoICMP, icmpEcho(8, 0x1234, 7, 56)))

	// IPv6.
	req6 := &wire.MapRequest{
		SMRInvoked: true, XTRIDPresent: true, Nonce: 0x4444444444444444,
		ITRRLOCs: []wire.Address{wire.AddrFrom(decITR6)},
		Records:  []wire.RequestRecord{wire.NewRequestRecord(1000, netip.MustParsePrefix("2001:db8:2::1/128"))},
		XTRID:    decXTRID, SiteID: 9,
	}
	req6.Records[0].NotifyRequested = true
	neg := mapping(1000, "2001:db8:3::/48", 15)
	neg.Action, neg.Authoritative = wire.NativelyForward, false
	listLoc := wire.Locator{Priority: 1, Weight: 50, MPriority: 255, Reachable: true, Address: wire.Address{
		AFI: wire.AFILCAF, LCAFType: wire.LCAFAFIList, List: []wire.Address{wire.AddrFrom(decETR4), wire.AddrFrom(decETR6)}}}
	rep6 := &wire.MapReply{EchoNonce: true, Nonce: req6.Nonce, Records: []wire.EIDRecord{
		neg, mapping(1000, "2001:db8:2::/48", 60, etrLoc6, listLoc)}}
	reg6 := &wire.MapRegister{
		WantMapNotify: true, UseTTL: true, MergeRequest: true, Nonce: 0x5555555555555555,
		KeyID: 0, AlgorithmID: wire.AlgHMACSHA256128, // RFC 6830's "key-id 2"
		AuthData: make([]byte, wire.AlgHMACSHA256128.AuthLen(true)), // truncated form
		Records:  []wire.EIDRecord{mapping(1000, "2001:db8:2::/48", 60, etrLoc6)},
	}
	not6 := &wire.MapNotify{Nonce: reg6.Nonce, KeyID: 1, AlgorithmID: wire.AlgHMACSHA256128HKDF, Records: reg6.Records}
	ack6 := &wire.MapNotifyAck{Nonce: 0x6666666666666666, KeyID: 0, AlgorithmID: wire.AlgHMACSHA256128, Records: reg6.Records}
	ecm6 := wire.NewECM(ap(decITR6, 61001), ap(netip.MustParseAddr("2001:db8:2::1"), 4342), &wire.MapRequest{
		Nonce: 0x7777777777777777, ITRRLOCs: []wire.Address{wire.AddrFrom(decITR6)},
		Records: []wire.RequestRecord{wire.NewRequestRecord(1000, netip.MustParsePrefix("2001:db8:2::1/128"))},
	})
	ecm6.ToMS = true
	data6 := dataPacket(t, wire.DataHeader{V: true, SourceMapVersion: 0x123, DestMapVersion: 0x456, LSB: 1},
		ipv6Packet("2001:db8:2::1", "2001:db8:1::1", protoICMPv6, icmpEcho(129, 0x42, 9, 16)))
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp, 40000)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	tcp[12], tcp[13] = 0x50, 0x02 // data offset 5, SYN
	data6tcp := dataPacket(t, wire.DataHeader{N: true, L: true, E: true, Nonce: 0x000102, LSB: 0x5},
		ipv4Packet("10.1.1.1", "10.2.2.2", protoTCP, tcp))

	return []capturedPacket{
		{ap(decITR4, 4342), ap(decETR4, 4342), mustEncode(t, req4)},                         // 1
		{ap(decETR4, 4342), ap(decITR4, 4342), mustEncode(t, rep4)},                         // 2
		{ap(decETR4, 4342), ap(decMR4, 4342), reg4b},                                        // 3
		{ap(decMR4, 4342), ap(decETR4, 4342), signed(t, not4)},                              // 4
		{ap(decETR4, 4342), ap(decMR4, 4342), signed(t, ack4)},                              // 5
		{ap(decITR4, 61000), ap(decMR4, 4342), mustEncode(t, ecm4)},                         // 6
		{ap(decITR4, 51000), ap(decETR4, 4341), data4},                                      // 7
		{ap(decITR4, 53000), ap(netip.MustParseAddr("192.0.2.53"), 53), []byte("not LISP")}, // 8
		{ap(decETR4, 4342), ap(decMR4, 4342), reg4b[:len(reg4b)-30]},                        // 9: cut in the locator
		{ap(decITR6, 4342), ap(decETR6, 4342), mustEncode(t, req6)},                         // 10
		{ap(decETR6, 4342), ap(decITR6, 4342), mustEncode(t, rep6)},                         // 11
		{ap(decETR6, 4342), ap(decMR6, 4342), signed(t, reg6)},                              // 12
		{ap(decMR6, 4342), ap(decETR6, 4342), signed(t, not6)},                              // 13
		{ap(decETR6, 4342), ap(decMR6, 4342), signed(t, ack6)},                              // 14
		{ap(decITR6, 61001), ap(decMR6, 4342), mustEncode(t, ecm6)},                         // 15
		{ap(decITR6, 51000), ap(decETR6, 4341), data6},                                      // 16
		{ap(decITR6, 51001), ap(decETR6, 4341), data6tcp},                                   // 17
	}
}

// writeDecodeCapture writes the test capture to a temporary pcap file.
func writeDecodeCapture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lisp.pcap")
	w, err := capture.CreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range decodeTestPackets(t) {
		if err := w.WriteUDP(decBaseTime.Add(time.Duration(i)*1500*time.Microsecond), p.src, p.dst, p.payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// decodeWantTypes are the types of the LISP packets of the test capture by
// frame (frame 8 is not LISP; frame 9 is corrupt).
var decodeWantTypes = map[int]string{
	1: "Map-Request", 2: "Map-Reply", 3: "Map-Register", 4: "Map-Notify", 5: "Map-Notify-Ack",
	6: "Encapsulated-Control-Message", 7: "Data", 9: "Map-Register",
	10: "Map-Request", 11: "Map-Reply", 12: "Map-Register", 13: "Map-Notify", 14: "Map-Notify-Ack",
	15: "Encapsulated-Control-Message", 16: "Data", 17: "Data",
}

func TestDecodeCaptureText(t *testing.T) {
	path := writeDecodeCapture(t)
	out, errOut, code := execLispctl(t, nil, "decode", "--pcap", path)
	if code != exitFailure {
		t.Errorf("exit status %d, want %d (one corrupt packet); stderr:\n%s", code, exitFailure, errOut)
	}
	wantErr := "decode: 17 frames: 16 LISP packets (1 could not be decoded), 0 unreadable frames, 1 other UDP datagrams and 0 non-UDP frames skipped\n" +
		"lispctl: decode: 1 of 16 packets could not be decoded\n"
	if errOut != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, wantErr)
	}
	checkGolden(t, "capture.txt", out)

	// Every LISP frame has its block, in order, and the corrupt one
	// reports its error while decoding goes on after it.
	var frames []int
	for _, line := range strings.Split(out, "\n") {
		var f int
		if _, err := fmt.Sscanf(line, "frame %d ", &f); err == nil {
			frames = append(frames, f)
		}
	}
	if want := []int{1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17}; !slices.Equal(frames, want) {
		t.Errorf("frames %v, want %v", frames, want)
	}
	block9 := out[strings.Index(out, "frame 9 "):strings.Index(out, "frame 10 ")]
	for _, want := range []string{"192.0.2.20:4342 -> 192.0.2.10:4342  Map-Register", "error: wire: parse ", "truncated input", "payload: "} {
		if !strings.Contains(block9, want) {
			t.Errorf("frame 9 block lacks %q:\n%s", want, block9)
		}
	}
	for _, want := range []string{
		"flags: P(probe)",
		"flags: P(proxy-map-reply) I(xtr-id-present) M(want-map-notify)",
		"key-id: 0  algorithm-id: 1 (HMAC-SHA-1-96)",
		"auth-data: 20 bytes (full) ",
		"key-id: 0  algorithm-id: 2 (HMAC-SHA-256-128)",
		"auth-data: 16 bytes (truncated) ",
		"key-id: 1  algorithm-id: 3 (HMAC-SHA256-128+HKDF-SHA256)",
		"record 1: eid-prefix 10.2.0.0/16  ttl 1440 min  action No-Action(0)  A=1  map-version 5",
		"locator 1: 192.0.2.20  priority 1  weight 100  m-priority 255  m-weight 0  L=1 p=1 R=1",
		"record 1: eid-prefix iid:1000/2001:db8:3::/48  ttl 15 min  action Natively-Forward(1)  A=0",
		"record 1: eid-prefix iid:1000/2001:db8:2::1/128  N(notify-requested)",
		"inner: 192.0.2.1:61000 -> 10.2.2.2:4342  ttl 64",
		"message: Map-Request",
		"inner: IPv4 10.1.1.1 -> 10.2.2.2  ICMP  length 84  ttl 64  echo-request code 0 id 4660 seq 7",
		"iid: 1000  lsbs: 0x03",
		"source-map-version: 291  dest-map-version: 1110",
		"inner: IPv6 2001:db8:2::1 -> 2001:db8:1::1  ICMPv6  length 64  ttl 64  echo-reply code 0 id 66 seq 9",
		"inner: IPv4 10.1.1.1:40000 -> 10.2.2.2:80  TCP  length 40  ttl 64",
		"xtr-id: 00112233445566778899aabbccddeeff  site-id: 0x0000000000000007",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "frame 8 ") || strings.Contains(out, "not LISP") {
		t.Error("the non-LISP datagram was printed")
	}
}

// jsonLines parses JSON Lines output into one map per line.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

// keysOf returns the sorted keys of a JSON object.
func keysOf(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

// sortedKeys sorts a key list given in documentation order.
func sortedKeys(s string) []string {
	k := strings.Fields(s)
	slices.Sort(k)
	return k
}

// The documented JSON keys (decode_view.go), per object kind.
var (
	decMetaKeys      = "frame time src dst length type"
	decControlKeys   = "flags reserved nonce record_count records trailing_bytes"
	decAuthKeys      = "key_id algorithm_id algorithm auth_data_length auth_data auth_data_form"
	decRecordKeys    = sortedKeys("record_ttl eid_mask_len action action_code authoritative reserved rsvd map_version eid_prefix iid eid locator_count locators")
	decLocatorKeys   = sortedKeys("priority weight m_priority m_weight local probed reachable unused_flags address")
	decReqRecordKeys = sortedKeys("notify_requested reserved eid_mask_len eid_prefix iid eid")
	decTopKeys       = map[int][]string{
		1:  sortedKeys(decMetaKeys + " " + decControlKeys + " source_eid itr_rlocs"),
		2:  sortedKeys(decMetaKeys + " " + decControlKeys),
		3:  sortedKeys(decMetaKeys + " " + decControlKeys + " " + decAuthKeys + " xtr_id site_id"),
		4:  sortedKeys(decMetaKeys + " " + decControlKeys + " " + decAuthKeys + " xtr_id site_id"),
		5:  sortedKeys(decMetaKeys + " " + decControlKeys + " " + decAuthKeys),
		6:  sortedKeys(decMetaKeys + " flags reserved inner_src inner_dst inner_ttl message trailing_bytes"),
		7:  sortedKeys(decMetaKeys + " flags reserved nonce iid lsbs inner"),
		9:  sortedKeys(decMetaKeys + " error payload_hex"),
		10: sortedKeys(decMetaKeys + " " + decControlKeys + " source_eid itr_rlocs xtr_id site_id"),
		11: sortedKeys(decMetaKeys + " " + decControlKeys),
		12: sortedKeys(decMetaKeys + " " + decControlKeys + " " + decAuthKeys),
		13: sortedKeys(decMetaKeys + " " + decControlKeys + " " + decAuthKeys),
		14: sortedKeys(decMetaKeys + " " + decControlKeys + " " + decAuthKeys),
		15: sortedKeys(decMetaKeys + " flags reserved inner_src inner_dst inner_ttl message trailing_bytes"),
		16: sortedKeys(decMetaKeys + " flags reserved source_map_version dest_map_version lsbs inner"),
		17: sortedKeys(decMetaKeys + " flags reserved nonce lsbs inner"),
	}
	decFlagKeys = map[string][]string{
		"Map-Request":                  sortedKeys("authoritative map_data_present probe smr pitr smr_invoked xtr_id_present local_xtr dont_map_reply"),
		"Map-Reply":                    sortedKeys("probe echo_nonce_capable security"),
		"Map-Register":                 sortedKeys("proxy_map_reply security_capable xtr_id_present eid_notify use_ttl_for_timeout merge_request want_map_notify"),
		"Map-Notify":                   {"xtr_id_present"},
		"Map-Notify-Ack":               {"xtr_id_present"},
		"Encapsulated-Control-Message": sortedKeys("security ddt_originated to_etr to_ms"),
		"Data":                         sortedKeys("nonce_present lsb_enabled echo_nonce_request map_version_present instance_id_present"),
	}
)

func TestDecodeCaptureJSON(t *testing.T) {
	path := writeDecodeCapture(t)
	out, errOut, code := execLispctl(t, nil, "decode", "--pcap", path, "--json")
	if code != exitFailure || !strings.Contains(errOut, "1 of 16 packets could not be decoded") {
		t.Errorf("exit status %d, stderr:\n%s", code, errOut)
	}
	checkGolden(t, "capture.jsonl", out)
	lines := jsonLines(t, out)
	if len(lines) != len(decodeWantTypes) {
		t.Fatalf("%d JSON lines, want %d", len(lines), len(decodeWantTypes))
	}
	for i, m := range lines {
		frame := int(mustInt(t, m["frame"]))
		if i > 0 && frame <= int(mustInt(t, lines[i-1]["frame"])) {
			t.Errorf("line %d: frame %d out of order", i+1, frame)
		}
		if m["type"] != decodeWantTypes[frame] {
			t.Errorf("frame %d: type %v, want %s", frame, m["type"], decodeWantTypes[frame])
		}
		if got, want := keysOf(m), decTopKeys[frame]; !slices.Equal(got, want) {
			t.Errorf("frame %d keys:\n got %v\nwant %v", frame, got, want)
		}
		if ts, _ := m["time"].(string); !strings.HasPrefix(ts, "2025-03-04T05:06:07.") || !strings.HasSuffix(ts, "Z") {
			t.Errorf("frame %d: time %q", frame, ts)
		}
		checkJSONFlags(t, frame, m)
		for _, r := range asList(m["records"]) {
			checkJSONRecord(t, frame, r.(map[string]any), m["type"] == "Map-Request")
		}
	}

	byFrame := map[int]map[string]any{}
	for _, m := range lines {
		byFrame[int(mustInt(t, m["frame"]))] = m
	}
	// Frame 9: the corrupt Map-Register, reported with its error and
	// bytes; decoding went on with frame 10.
	f9 := byFrame[9]
	if e, _ := f9["error"].(string); !strings.HasPrefix(e, "wire: parse ") || !strings.Contains(e, "truncated input") {
		t.Errorf("frame 9 error %q", e)
	}
	if p, _ := f9["payload_hex"].(string); !strings.HasPrefix(p, "3") || len(p) != 2*int(mustInt(t, f9["length"])) {
		t.Errorf("frame 9 payload_hex %q", p)
	}
	// Selected values.
	expectJSON(t, byFrame[1], "src", "192.0.2.1:4342")
	expectJSON(t, byFrame[1], "nonce", "0x0102030405060708")
	expectJSON(t, byFrame[3], "algorithm", "HMAC-SHA-1-96")
	expectJSON(t, byFrame[3], "auth_data_form", "full")
	expectJSON(t, byFrame[3], "xtr_id", "00112233445566778899aabbccddeeff")
	expectJSON(t, byFrame[12], "auth_data_form", "truncated")
	expectJSON(t, byFrame[13], "algorithm", "HMAC-SHA256-128+HKDF-SHA256")
	expectJSON(t, byFrame[10], "dst", "[2001:db8::20]:4342")
	rec := asList(byFrame[11]["records"])[0].(map[string]any)
	expectJSON(t, rec, "action", "Natively-Forward")
	expectJSON(t, rec, "eid_prefix", "2001:db8:3::/48")
	if mustInt(t, rec["iid"]) != 1000 || mustInt(t, rec["locator_count"]) != 0 {
		t.Errorf("frame 11 negative record %v", rec)
	}
	loc := asList(asList(byFrame[11]["records"])[1].(map[string]any)["locators"])[1].(map[string]any)
	addr := loc["address"].(map[string]any)
	if addr["lcaf_type"] != "afi-list" || len(asList(addr["list"])) != 2 {
		t.Errorf("frame 11 AFI-list locator %v", addr)
	}
	ecm := byFrame[15]
	expectJSON(t, ecm, "inner_src", "[2001:db8::1]:61001")
	if !ecm["flags"].(map[string]any)["to_ms"].(bool) {
		t.Error("frame 15: M bit not shown")
	}
	inner := ecm["message"].(map[string]any)
	expectJSON(t, inner, "type", "Map-Request")
	expectJSON(t, inner, "nonce", "0x7777777777777777")
	if got, want := keysOf(inner), sortedKeys("type "+decControlKeys+" source_eid itr_rlocs"); !slices.Equal(got, want) {
		t.Errorf("ECM message keys %v, want %v", got, want)
	}
	d := byFrame[7]
	expectJSON(t, d, "nonce", "0xabcdef")
	expectJSON(t, d, "lsbs", "0x03")
	if mustInt(t, d["iid"]) != 1000 {
		t.Errorf("frame 7 iid %v", d["iid"])
	}
	in := d["inner"].(map[string]any)
	if got, want := keysOf(in), sortedKeys("version src dst protocol protocol_number length ttl fragment captured_length icmp_type icmp_code icmp_id icmp_seq"); !slices.Equal(got, want) {
		t.Errorf("inner packet keys %v, want %v", got, want)
	}
	if in["protocol"] != "ICMP" || mustInt(t, in["icmp_type"]) != 8 || mustInt(t, in["icmp_id"]) != 0x1234 || mustInt(t, in["icmp_seq"]) != 7 || mustInt(t, in["length"]) != 84 {
		t.Errorf("frame 7 inner %v", in)
	}
	in17 := byFrame[17]["inner"].(map[string]any)
	if mustInt(t, in17["src_port"]) != 40000 || mustInt(t, in17["dst_port"]) != 80 {
		t.Errorf("frame 17 inner %v", in17)
	}
}

func checkJSONFlags(t *testing.T, frame int, m map[string]any) {
	t.Helper()
	typ, _ := m["type"].(string)
	if _, ok := m["error"]; ok {
		return
	}
	flags, ok := m["flags"].(map[string]any)
	if !ok {
		t.Errorf("frame %d: no flags object", frame)
		return
	}
	if got, want := keysOf(flags), decFlagKeys[typ]; !slices.Equal(got, want) {
		t.Errorf("frame %d (%s) flag keys %v, want %v", frame, typ, got, want)
	}
}

func checkJSONRecord(t *testing.T, frame int, r map[string]any, request bool) {
	t.Helper()
	want := decRecordKeys
	if request {
		want = decReqRecordKeys
	}
	if got := keysOf(r); !slices.Equal(got, want) {
		t.Errorf("frame %d record keys %v, want %v", frame, got, want)
	}
	for _, l := range asList(r["locators"]) {
		if got := keysOf(l.(map[string]any)); !slices.Equal(got, decLocatorKeys) {
			t.Errorf("frame %d locator keys %v, want %v", frame, got, decLocatorKeys)
		}
	}
	eid := r["eid"].(map[string]any)
	if eid["afi"] == nil || eid["text"] == nil {
		t.Errorf("frame %d: eid %v lacks afi or text", frame, eid)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func mustInt(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func expectJSON(t *testing.T, m map[string]any, key, want string) {
	t.Helper()
	if got, _ := m[key].(string); got != want {
		t.Errorf("%s = %v, want %q (in %v)", key, m[key], want, m["frame"])
	}
}

func TestDecodeCaptureFromStdin(t *testing.T) {
	path := writeDecodeCapture(t)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, _, code := execLispctl(t, f, "decode", "--pcap", "-", "--json")
	fromFile, _, _ := execLispctl(t, nil, "decode", "--pcap", path, "--json")
	if code != exitFailure || out != fromFile {
		t.Errorf("stdin decode (exit %d) differs from the file's:\n%s", code, out)
	}
}

func TestDecodeCaptureAllGood(t *testing.T) {
	// Without the corrupt packet the exit status is 0.
	path := filepath.Join(t.TempDir(), "good.pcap")
	w, err := capture.CreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pkts := decodeTestPackets(t)
	for i, p := range pkts {
		if i == 8 {
			continue
		}
		if err := w.WriteUDP(decBaseTime, p.src, p.dst, p.payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := execLispctl(t, nil, "decode", "--pcap", path)
	if code != exitOK || strings.Contains(out, "error:") {
		t.Errorf("exit status %d; stderr:\n%s", code, errOut)
	}
}

func TestDecodeCaptureErrors(t *testing.T) {
	dir := t.TempDir()
	// A missing file and a file that is not a capture: exit 1 with a
	// clear message.
	_, errOut, code := execLispctl(t, nil, "decode", "--pcap", filepath.Join(dir, "missing.pcap"))
	if code != exitFailure || !strings.Contains(errOut, "missing.pcap") || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
	junk := filepath.Join(dir, "junk.pcap")
	if err := os.WriteFile(junk, []byte("this is not a capture file"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = execLispctl(t, nil, "decode", "--pcap", junk)
	if code != exitFailure || !strings.Contains(errOut, "not a supported pcap or pcapng file") {
		t.Errorf("junk file: exit %d, stderr %q", code, errOut)
	}

	// A capture cut in the middle of a record: the packets before the cut
	// are printed, then the error (exit 1).
	good := writeDecodeCapture(t)
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.pcap")
	if err := os.WriteFile(cut, b[:len(b)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := execLispctl(t, nil, "decode", "--pcap", cut)
	if code != exitFailure || !strings.Contains(out, "frame 16 ") || strings.Contains(out, "frame 17 ") ||
		!strings.Contains(errOut, "corrupt capture file") {
		t.Errorf("cut file: exit %d, stderr %q", code, errOut)
	}

	// A frame the capture reader cannot decode (an IPv4 header claiming
	// more bytes than the frame has) is reported by number, and decoding
	// goes on.
	path := filepath.Join(dir, "badframe.pcap")
	w, err := capture.CreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := ipv4Packet("192.0.2.1", "192.0.2.2", protoUDP, make([]byte, 8))
	binary.BigEndian.PutUint16(bad[2:], 200) // total length beyond the frame
	if err := w.WriteIPPacket(decBaseTime, bad); err != nil {
		t.Fatal(err)
	}
	p := decodeTestPackets(t)[0]
	if err := w.WriteUDP(decBaseTime, p.src, p.dst, p.payload); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = execLispctl(t, nil, "decode", "--pcap", path, "--json")
	lines := jsonLines(t, out)
	if code != exitFailure || len(lines) != 2 || !strings.Contains(errOut, "1 unreadable frames") {
		t.Fatalf("bad frame: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if got := keysOf(lines[0]); !slices.Equal(got, []string{"error", "frame"}) || mustInt(t, lines[0]["frame"]) != 1 {
		t.Errorf("bad frame line %v", lines[0])
	}
	if lines[1]["type"] != "Map-Request" || mustInt(t, lines[1]["frame"]) != 2 {
		t.Errorf("line after the bad frame %v", lines[1])
	}
}

// TestDecodeReassembled checks that a control message split into IPv4
// fragments is decoded once, at its last fragment, naming the first.
func TestDecodeReassembled(t *testing.T) {
	reg := decodeTestPackets(t)[2] // the IPv4 Map-Register
	udp := append(udpHeader(4342, 4342), reg.payload...)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp))) // checksum 0: none (IPv4)
	frag := func(off int, data []byte, more bool) []byte {
		p := ipv4Packet(reg.src.Addr().String(), reg.dst.Addr().String(), protoUDP, data)
		v := uint16(off / 8)
		if more {
			v |= 0x2000
		}
		binary.BigEndian.PutUint16(p[4:], 0x4242) // identification
		binary.BigEndian.PutUint16(p[6:], v)
		p[10], p[11] = 0, 0 // header checksum 0: the reader does not check it
		return p
	}
	path := filepath.Join(t.TempDir(), "frag.pcap")
	w, err := capture.CreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range [][]byte{frag(0, udp[:48], true), frag(48, udp[48:], false)} {
		if err := w.WriteIPPacket(decBaseTime.Add(time.Duration(i)*time.Millisecond), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := execLispctl(t, nil, "decode", "--pcap", path)
	if code != exitOK || !strings.HasPrefix(out, "frame 2 (reassembled from frame 1)  2025-03-04T05:06:07.001000000Z  192.0.2.20:4342 -> 192.0.2.10:4342  Map-Register (88 bytes)\n") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
	jout, _, _ := execLispctl(t, nil, "decode", "--pcap", path, "--json")
	lines := jsonLines(t, jout)
	if len(lines) != 1 || mustInt(t, lines[0]["frame"]) != 2 || mustInt(t, lines[0]["first_frame"]) != 1 {
		t.Errorf("JSON:\n%s", jout)
	}
}

func TestDecodeHex(t *testing.T) {
	pkts := decodeTestPackets(t)
	hexOf := func(b []byte) string { return fmt.Sprintf("%x", b) }
	spaced := func(b []byte) string {
		var s []string
		for _, c := range b {
			s = append(s, fmt.Sprintf("%02X", c))
		}
		return strings.Join(s, ":")
	}
	args := []string{"decode",
		"--hex", spaced(pkts[0].payload), // a Map-Request, colon-separated upper case
		"--hex", "0x" + hexOf(pkts[6].payload), // a data packet whose first byte (0x88) reads as an ECM type
		"--hex", hexOf(pkts[14].payload[:20]) + "\n" + hexOf(pkts[14].payload[20:]), // ECM, split over lines
		"--hex", "dead beef", // neither
	}
	out, errOut, code := execLispctl(t, nil, args...)
	if code != exitFailure || !strings.Contains(errOut, "1 of 4 packets could not be decoded") {
		t.Errorf("exit status %d, stderr:\n%s", code, errOut)
	}
	checkGolden(t, "hex.txt", out)
	for _, want := range []string{
		"frame 1  Map-Request (", "frame 2  Data (", "frame 3  Encapsulated-Control-Message (", "frame 4  LISP (4 bytes)",
		"error: neither a LISP control message (wire: ", "nor a LISP data packet (decode: LISP data header needs 8 bytes, payload has 4",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	jout, _, jcode := execLispctl(t, nil, append(args, "--json")...)
	checkGolden(t, "hex.jsonl", jout)
	lines := jsonLines(t, jout)
	if jcode != exitFailure || len(lines) != 4 {
		t.Fatalf("JSON: exit %d, %d lines", jcode, len(lines))
	}
	for i, m := range lines {
		if mustInt(t, m["frame"]) != int64(i+1) {
			t.Errorf("line %d frame %v", i+1, m["frame"])
		}
		for _, k := range []string{"time", "src", "dst"} {
			if _, ok := m[k]; ok {
				t.Errorf("line %d has %q, which --hex cannot know", i+1, k)
			}
		}
	}
	if got := keysOf(lines[3]); !slices.Equal(got, []string{"error", "frame", "length", "payload_hex"}) {
		t.Errorf("undecodable line keys %v", got)
	}

	// --port forces the interpretation.
	out, _, code = execLispctl(t, nil, "decode", "--port", "4341", "--hex", hexOf(pkts[6].payload))
	if code != exitOK || !strings.Contains(out, "Data (") {
		t.Errorf("--port 4341: exit %d\n%s", code, out)
	}
	out, _, code = execLispctl(t, nil, "decode", "--port", "4342", "--hex", hexOf(pkts[6].payload))
	if code != exitFailure || !strings.Contains(out, "Encapsulated-Control-Message (") || !strings.Contains(out, "error: wire: ") {
		t.Errorf("--port 4342 on a data packet: exit %d\n%s", code, out)
	}
}

func TestDecodeUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"decode"}, "give --pcap FILE or --hex BYTES"},
		{[]string{"decode", "--pcap", "x", "--hex", "00"}, "not both"},
		{[]string{"decode", "--hex", "00", "--port", "53"}, "--port must be 4342 (control) or 4341 (data)"},
		{[]string{"decode", "--pcap", "x", "--port", "4342"}, "--port applies to --hex"},
		{[]string{"decode", "--hex", "0g"}, "'g' at offset 1 is not a hex digit"},
		{[]string{"decode", "--hex", "123"}, "odd number of hex digits"},
		{[]string{"decode", "--hex", " : "}, "no hex digits"},
		{[]string{"decode", "--hex", "00", "--hex", "zz"}, "--hex value 2:"},
		{[]string{"decode", "extra"}, "takes no arguments"},
	} {
		out, errOut, code := execLispctl(t, nil, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errOut, c.want)
		}
	}
}

func TestParseHexBytes(t *testing.T) {
	for in, want := range map[string][]byte{
		"00":                  {0},
		"0x0a0B":              {0x0a, 0x0b},
		" 10:00 00-01\n\tff ": {0x10, 0, 0, 1, 0xff},
		"0XFF":                {0xff},
	} {
		got, err := parseHexBytes(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("parseHexBytes(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0x", "0", "abc", "0x0x00", "12 3", "é0"} {
		if b, err := parseHexBytes(in); err == nil {
			t.Errorf("parseHexBytes(%q) = %x, want an error", in, b)
		}
	}
}

// TestDecodeLispersNetSubscribe: lispers.net's subscribing Map-Request (I
// bit, 16-byte xTR-ID, no site-ID) decodes; before, decode failed with
// "truncated input" at the site-ID.
func TestDecodeLispersNetSubscribe(t *testing.T) {
	r := runCLI(t, nil, "decode", "--hex", "8000000045000076000000008011e57bc633648ac633640a88f810f600620000"+
		"10100101009c0fb472f5dcbd400300000200000a000003e80001c633648a0001c000020c000220010db8ffff000000000000000000128020"+
		"400300000200000a000003e80001c633640aac382fd1a8673e101f09f70793e7098a")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"Encapsulated-Control-Message", "flags: I(xtr-id-present)", "N(notify-requested)",
		"xtr-id: ac382fd1a8673e101f09f70793e7098a  site-id: none"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}
