package capture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// requireTshark returns tshark's path, or skips the test when it is not
// installed, except in CI, where a missing tshark fails the test.
func requireTshark(t *testing.T) string {
	t.Helper()
	path, err := LookTshark()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tshark required in CI: %v", err)
		}
		t.Skipf("skipping: tshark is not installed (%v); install it (apt-get install tshark) to run the cross-check", err)
	}
	return path
}

func tsharkContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// tsharkSample is what tshark 4.0 prints with -T json (trimmed), including
// the repeated keys it emits (ip.addr twice, two "ip" layers for an
// encapsulated packet) and a malformed-packet expert item.
const tsharkSample = `[
  {
    "_index": "packets-2023-11-14",
    "_type": "doc",
    "_score": null,
    "_source": {
      "layers": {
        "frame": {
          "frame.time_epoch": "1700000000.123456789",
          "frame.number": "1",
          "frame.protocols": "eth:ethertype:ip:udp:lisp-data:ip"
        },
        "ip": {
          "ip.version": "4",
          "ip.flags_tree": {"ip.flags.df": "0"},
          "ip.src": "10.0.0.1",
          "ip.addr": "10.0.0.1",
          "ip.dst": "10.0.0.2",
          "ip.addr": "10.0.0.2"
        },
        "udp": {
          "udp.srcport": "5000",
          "udp.dstport": "4341",
          "Timestamps": {"udp.time_delta": "0.000000000"},
          "udp.payload": "88:00:00:01"
        },
        "lisp-data": {"lisp-data.flags": "0x88", "lisp-data.iid": "1"},
        "ip": {
          "ip.src": "1.1.1.1",
          "ip.dst": "2.2.2.2"
        }
      }
    }
  },
  {
    "_index": "packets-2023-11-14",
    "_source": {
      "layers": {
        "frame": {
          "frame.time_epoch": "1700000001.5",
          "frame.number": "2",
          "frame.protocols": "eth:ethertype:ip:udp:lisp"
        },
        "lisp": {"lisp.type": "1", "lisp.nonce": "0x0102030405060708", "extra": 7, "flag": true, "nothing": null},
        "_ws.malformed": {
          "_ws.expert": {
            "_ws.malformed.expert": "",
            "_ws.expert.message": "Malformed Packet (Exception occurred)",
            "_ws.expert.severity": "8388608",
            "_ws.expert.group": "117440512"
          },
          "_ws.malformed": "Malformed Packet"
        }
      }
    }
  },
  {
    "_source": {
      "layers": {
        "frame": {"frame.number": "3", "frame.protocols": "eth:ethertype:ipv6:udp:lisp"},
        "ipv6": {"ipv6.addr": ["2001:db8::1", "2001:db8::2"]},
        "ip": [{"ip.src": "10.0.0.1"}, {"ip.src": "10.9.9.9"}],
        "lisp": {
          "lisp.mreq.record": "",
          "_ws.expert": {
            "lisp.mreq.expert": "",
            "_ws.expert.message": "Unusual value",
            "_ws.expert.severity": "6291456",
            "_ws.expert.group": "1"
          }
        }
      }
    }
  },
  {
    "_source": {
      "layers": {
        "frame": {"frame.number": "4", "frame.protocols": "eth:ethertype:ip:udp"},
        "udp": {
          "udp.checksum": "0x1234",
          "udp.checksum.status": "0",
          "_ws.expert": {
            "udp.checksum.bad": "",
            "_ws.expert.message": "Bad checksum [should be 0x4321]",
            "_ws.expert.severity": "8388608",
            "_ws.expert.group": "16777216"
          }
        }
      }
    }
  }
]
`

func TestParseTsharkJSON(t *testing.T) {
	pkts, err := ParseTsharkJSON(strings.NewReader(tsharkSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != 4 {
		t.Fatalf("%d packets, want 4", len(pkts))
	}
	p := pkts[0]
	if p.Frame != 1 || !p.Time.Equal(time.Unix(1700000000, 123456789)) || p.Malformed || len(p.Expert) != 0 {
		t.Errorf("packet 1: frame %d time %v malformed %v expert %v", p.Frame, p.Time, p.Malformed, p.Expert)
	}
	if want := []string{"eth", "ethertype", "ip", "udp", "lisp-data", "ip"}; strings.Join(p.Protocols, " ") != strings.Join(want, " ") {
		t.Errorf("protocols %v, want %v", p.Protocols, want)
	}
	for name, want := range map[string][]string{
		"ip.addr":         {"10.0.0.1", "10.0.0.2"},
		"ip.src":          {"10.0.0.1", "1.1.1.1"},
		"ip.flags.df":     {"0"},
		"udp.time_delta":  {"0.000000000"},
		"lisp-data.iid":   {"1"},
		"udp.dstport":     {"4341"},
		"frame.protocols": {"eth:ethertype:ip:udp:lisp-data:ip"},
	} {
		if got := p.Fields[name]; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("packet 1 %s = %q, want %q", name, got, want)
		}
	}
	if b, err := p.Bytes("udp.payload"); err != nil || !bytes.Equal(b, []byte{0x88, 0, 0, 1}) {
		t.Errorf("udp.payload = %x, %v", b, err)
	}
	if _, err := p.Bytes("data.data"); !errors.Is(err, ErrTshark) {
		t.Errorf("Bytes of a missing field: %v", err)
	}
	if _, err := p.Bytes("ip.src"); !errors.Is(err, ErrTshark) {
		t.Errorf("Bytes of a non-byte field: %v", err)
	}
	if !p.HasProtocol("lisp-data") || p.HasProtocol("lisp") || !p.Has("ip.dst") || p.Has("lisp.type") || p.Field("nope") != "" {
		t.Error("HasProtocol/Has/Field wrong on packet 1")
	}

	p = pkts[1]
	if p.Frame != 2 || !p.Malformed || !p.Time.Equal(time.Unix(1700000001, 500000000)) {
		t.Errorf("packet 2: frame %d malformed %v time %v", p.Frame, p.Malformed, p.Time)
	}
	if len(p.Expert) != 1 || p.Expert[0] != (TsharkExpert{Severity: "error", Message: "Malformed Packet (Exception occurred)", Field: "_ws.malformed.expert"}) {
		t.Errorf("packet 2 expert %+v", p.Expert)
	}
	if p.Field("extra") != "7" || p.Field("flag") != "true" || !p.Has("nothing") || p.Field("_ws.expert.severity") != "8388608" {
		t.Errorf("packet 2 scalar fields: %v", p.Fields)
	}

	p = pkts[2]
	if p.Malformed || p.Time != (time.Time{}) {
		t.Errorf("packet 3: malformed %v time %v", p.Malformed, p.Time)
	}
	if len(p.Expert) != 1 || p.Expert[0].Severity != "warning" || p.Expert[0].Field != "lisp.mreq.expert" {
		t.Errorf("packet 3 expert %+v", p.Expert)
	}
	if got := p.Fields["ipv6.addr"]; len(got) != 2 || got[1] != "2001:db8::2" {
		t.Errorf("packet 3 ipv6.addr %q", got)
	}
	if got := p.Fields["ip.src"]; len(got) != 2 || got[1] != "10.9.9.9" {
		t.Errorf("packet 3 ip.src %q", got)
	}

	// An error-severity expert item alone marks the packet malformed.
	p = pkts[3]
	if !p.Malformed || len(p.Expert) != 1 || p.Expert[0] != (TsharkExpert{Severity: "error", Message: "Bad checksum [should be 0x4321]", Field: "udp.checksum.bad"}) {
		t.Errorf("packet 4: malformed %v expert %+v", p.Malformed, p.Expert)
	}
}

func TestParseTsharkJSONErrors(t *testing.T) {
	if pkts, err := ParseTsharkJSON(strings.NewReader("")); err != nil || len(pkts) != 0 {
		t.Errorf("empty output: %v, %v", pkts, err)
	}
	if pkts, err := ParseTsharkJSON(strings.NewReader("[\n\n]\n")); err != nil || len(pkts) != 0 {
		t.Errorf("empty array: %v, %v", pkts, err)
	}
	deep := `[{"_source":{"layers":{"frame":{"frame.number":"1"},"x":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}}}]`
	deepObj := `[{"_source":{"layers":{"frame":{"frame.number":"1"},"x":` + strings.Repeat(`{"a":`, 500) + `"v"` + strings.Repeat("}", 500) + `}}}]`
	for name, in := range map[string]string{
		"not an array":     `{"a": 1}`,
		"garbage":          `[{"_source": {"layers": {"frame": {"frame.number": "1"}`,
		"no frame number":  `[{"_source": {"layers": {"ip": {"ip.src": "1.2.3.4"}}}}]`,
		"bad frame number": `[{"_source": {"layers": {"frame": {"frame.number": "zero"}}}}]`,
		"packet not obj":   `["x"]`,
		"layers not obj":   `[{"_source": {"layers": 5}}]`,
		"cut":              `[{"_source": {"layers": {"frame": {"frame.number": "1"}}}}, {"_source": {"la`,
		"deep arrays":      deep,
		"deep objects":     deepObj,
		"bad token":        `[{"_source": {"layers": {"frame": {"frame.number": "1"}, "x": }}}]`,
	} {
		if _, err := ParseTsharkJSON(strings.NewReader(in)); !errors.Is(err, ErrTshark) {
			t.Errorf("%s: %v, want ErrTshark", name, err)
		}
	}
	// Packets before the error are returned.
	pkts, err := ParseTsharkJSON(strings.NewReader(`[{"_source": {"layers": {"frame": {"frame.number": "1"}}}}, {"_source": {"la`))
	if err == nil || len(pkts) != 1 || pkts[0].Frame != 1 {
		t.Errorf("partial output: %v, %v", pkts, err)
	}
}

// validMapRequest is an RFC 9301 Map-Request: nonce 0x0102030405060708, no
// source EID, one ITR-RLOC 10.0.0.1, one record 10.2.2.2/32.
var validMapRequest = mustHex("10000001" + "0102030405060708" + "0000" + "0001" + "0a000001" + "00" + "20" + "0001" + "0a020202")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestTsharkCrossCheck writes datagrams with the Writer, has tshark decode
// them, and checks tshark agrees on addresses, ports, lengths, checksums
// and payload bytes, and on what is LISP and what is malformed.
func TestTsharkCrossCheck(t *testing.T) {
	tshark := requireTshark(t)
	ctx := tsharkContext(t)
	version, err := TsharkVersion(ctx, tshark)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("using %s: %s", tshark, version)

	type sent struct {
		src, dst netip.AddrPort
		payload  []byte
		proto    string // the protocol tshark should see on top of udp
	}
	sends := []sent{
		{netip.MustParseAddrPort("10.0.0.1:4342"), netip.MustParseAddrPort("10.0.0.2:4342"), validMapRequest, "lisp"},
		{netip.MustParseAddrPort("10.0.0.1:61001"), netip.MustParseAddrPort("10.0.0.2:4341"), []byte{0x80, 0, 0, 1, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}, "lisp-data"},
		{netip.MustParseAddrPort("[2001:db8::1]:4342"), netip.MustParseAddrPort("[2001:db8::2]:4342"), []byte{0x10, 0xff, 0xee}, "lisp"}, // cut short: malformed
		{netip.MustParseAddrPort("[2001:db8::1]:4341"), netip.MustParseAddrPort("[2001:db8::2]:4341"), []byte{0x08, 0, 0, 0, 0, 0, 7, 0, 1, 2, 3}, "lisp-data"},
		{netip.MustParseAddrPort("192.0.2.1:40001"), netip.MustParseAddrPort("192.0.2.2:40002"), []byte("arbitrary bytes, not LISP"), "data"},
	}
	path := filepath.Join(t.TempDir(), "cross.pcap")
	w, err := CreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	times := make([]time.Time, len(sends))
	for i, s := range sends {
		times[i] = t0.Add(time.Duration(i) * 1001 * time.Microsecond).Add(7)
		if err := w.WriteUDP(times[i], s.src, s.dst, s.payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	pkts, err := TsharkPackets(ctx, path, "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != len(sends) {
		t.Fatalf("tshark saw %d packets, want %d", len(pkts), len(sends))
	}
	for i, s := range sends {
		p := pkts[i]
		if p.Frame != i+1 {
			t.Errorf("packet %d: frame.number %d", i, p.Frame)
		}
		if !p.Time.Equal(times[i]) {
			t.Errorf("frame %d: time %v, want %v", p.Frame, p.Time, times[i])
		}
		if !p.HasProtocol("udp") || !p.HasProtocol(s.proto) {
			t.Errorf("frame %d: protocols %v, want udp and %s", p.Frame, p.Protocols, s.proto)
		}
		ipPrefix := "ip"
		if s.src.Addr().Is6() {
			ipPrefix = "ipv6"
		} else if got := p.Field("ip.checksum.status"); got != "1" {
			t.Errorf("frame %d: ip.checksum.status %q, want 1 (good)", p.Frame, got)
		}
		for field, want := range map[string]string{
			ipPrefix + ".src": s.src.Addr().String(),
			ipPrefix + ".dst": s.dst.Addr().String(),
			"udp.srcport":     strconv.Itoa(int(s.src.Port())),
			"udp.dstport":     strconv.Itoa(int(s.dst.Port())),
			"udp.length":      strconv.Itoa(8 + len(s.payload)),
			// 1 is "Good": tshark verified the UDP checksum itself.
			"udp.checksum.status": "1",
		} {
			if got := p.Field(field); got != want {
				t.Errorf("frame %d: %s = %q, want %q", p.Frame, field, got, want)
			}
		}
		if b, err := p.Bytes("udp.payload"); err != nil || !bytes.Equal(b, s.payload) {
			t.Errorf("frame %d: udp.payload %x (%v), want %x", p.Frame, b, err, s.payload)
		}
		if s.proto == "data" {
			if b, err := p.Bytes("data.data"); err != nil || !bytes.Equal(b, s.payload) {
				t.Errorf("frame %d: data.data %x (%v), want %x", p.Frame, b, err, s.payload)
			}
		}
	}
	// What tshark's LISP dissectors made of the payloads.
	if p := pkts[0]; p.Malformed || p.Field("lisp.type") != "1" || p.Field("lisp.nonce") != "0x0102030405060708" ||
		p.Field("lisp.mreq.record.prefix.ipv4") != "10.2.2.2" || p.Field("lisp.mreq.itr_rloc_ipv4") != "10.0.0.1" {
		t.Errorf("Map-Request: malformed %v expert %v fields %v", p.Malformed, p.Expert, p.Fields)
	}
	if p := pkts[1]; p.Malformed || p.Field("lisp-data.flags.nonce") != "1" || p.Field("lisp-data.nonce") != "1" {
		t.Errorf("data header: malformed %v lisp-data fields %v", p.Malformed, p.Fields)
	}
	if p := pkts[2]; !p.Malformed || len(p.Expert) == 0 || p.Expert[len(p.Expert)-1].Severity != "error" {
		t.Errorf("cut-short Map-Request: malformed %v expert %+v, want flagged", p.Malformed, p.Expert)
	}
	if p := pkts[3]; p.Malformed || p.Field("lisp-data.flags.iid") != "1" || p.Field("lisp-data.iid") != "7" {
		t.Errorf("data header with instance ID: malformed %v fields %v", p.Malformed, p.Fields)
	}
	if p := pkts[4]; p.Malformed || p.HasProtocol("lisp") {
		t.Errorf("non-LISP datagram: malformed %v protocols %v", p.Malformed, p.Protocols)
	}

	// Our reader must see the same frames with the same payloads.
	r, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res := readAll(t, r)
	if len(res) != len(pkts) {
		t.Fatalf("reader: %d datagrams, tshark %d", len(res), len(pkts))
	}
	for i, x := range res {
		tb, _ := pkts[i].Bytes("udp.payload")
		if x.err != nil || x.d.Frame != pkts[i].Frame || !bytes.Equal(x.d.Payload, tb) || IsLISP(x.d) != (sends[i].proto != "data") {
			t.Errorf("reader frame %d (%v) disagrees with tshark frame %d", x.d.Frame, x.err, pkts[i].Frame)
		}
	}
}

// TestTsharkFrameNumbers checks that the reader's frame numbers are
// tshark's on a pcapng capture like "tshark -i any" writes: Linux cooked
// frames mixed with non-UDP traffic, two interfaces, fragments, and a
// malformed frame.
func TestTsharkFrameNumbers(t *testing.T) {
	tshark := requireTshark(t)
	ctx := tsharkContext(t)
	path := filepath.Join(t.TempDir(), "any.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	w, err := pcapgo.NewNgWriterInterface(bw, pcapgo.NgInterface{Name: "any", LinkType: layers.LinkTypeLinuxSLL2, SnapLength: 262144}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	ethID, err := w.AddInterface(pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 262144})
	if err != nil {
		t.Fatal(err)
	}
	v4 := udpPacket(t, addr4a, addr4b, validMapRequest)
	v6 := udpPacket(t, addr6a, addr6b, []byte{0x80, 0, 0, 1, 0, 0, 0, 0})
	tcp := append(ipv4Header(addr4a.Addr(), addr4b.Addr(), 6, 40, 3, false, 0), make([]byte, 20)...)
	tcp[32] = 0x50 // TCP data offset 5
	frags := fragments4(addr4a, addr4b, 77, bytes.Repeat([]byte{0xab}, 40), 24)
	bad := append([]byte(nil), v4...)
	bad[0] = 0x44 // IHL 4
	frames := []struct {
		iface int
		data  []byte
	}{
		{0, sll2(0x0806, 1, make([]byte, 28))}, // 1 ARP
		{0, sll2(0x0800, 1, v4)},               // 2
		{0, sll2(0x0800, 772, tcp)},            // 3 TCP
		{ethID, ether(0x86DD, v6)},             // 4
		{0, sll2(0x0800, 1, frags[0])},         // 5 first fragment
		{0, sll2(0x0800, 1, frags[1])},         // 6 last fragment
		{ethID, ether(0x0800, bad)},            // 7 malformed
		{0, sll2(0x86DD, 0xFFFE, v6)},          // 8
	}
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(fr.data), Length: len(fr.data), InterfaceIndex: fr.iface}
		if err := w.WritePacket(ci, fr.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	pkts, err := TsharkDecode(ctx, tshark, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) != len(frames) {
		t.Fatalf("tshark saw %d packets, want %d", len(pkts), len(frames))
	}
	for _, reassemble := range []bool{false, true} {
		var opts []Option
		if reassemble {
			opts = append(opts, WithReassembly())
		}
		r, err := ReadFile(path, opts...)
		if err != nil {
			t.Fatal(err)
		}
		res := readAll(t, r)
		r.Close()
		byFrame := map[int]result{}
		for _, x := range res {
			var fe *FrameError
			if errors.As(x.err, &fe) {
				byFrame[fe.Frame] = x
			} else {
				byFrame[x.d.Frame] = x
			}
		}
		for _, p := range pkts {
			x, ok := byFrame[p.Frame]
			udp := p.HasProtocol("udp")
			switch {
			case p.Frame == 7:
				if !ok || !errors.Is(x.err, ErrMalformed) {
					t.Errorf("reassemble %v: frame 7 (tshark protocols %v): %+v, want ErrMalformed", reassemble, p.Protocols, x)
				}
			case p.Frame == 5 && reassemble:
				if ok {
					t.Errorf("reassembly: first fragment returned on its own: %+v", x)
				}
			case p.Frame == 6:
				// tshark reassembles IPv4 by default and shows the datagram
				// at the last fragment, as the reader does with reassembly.
				if reassemble {
					tb, err := p.Bytes("udp.payload")
					if !ok || x.err != nil || err != nil || !bytes.Equal(x.d.Payload, tb) || x.d.FirstFrame != 5 {
						t.Errorf("reassembled datagram at frame 6: %+v; tshark payload %x (%v)", x, tb, err)
					}
				} else if !ok || !errors.Is(x.err, ErrFragment) {
					t.Errorf("frame 6 without reassembly: %+v, want ErrFragment", x)
				}
			case udp:
				tb, err := p.Bytes("udp.payload")
				if !ok || x.err != nil || err != nil || !bytes.Equal(x.d.Payload, tb) {
					t.Errorf("reassemble %v: frame %d: reader %+v; tshark udp.payload %x (%v)", reassemble, p.Frame, x, tb, err)
				}
				if x.d.Src.Addr().String() != firstOf(p, "ip.src", "ipv6.src") || strconv.Itoa(int(x.d.Dst.Port())) != p.Field("udp.dstport") {
					t.Errorf("frame %d: reader %v -> %v, tshark %s -> %s port %s", p.Frame, x.d.Src, x.d.Dst,
						firstOf(p, "ip.src", "ipv6.src"), firstOf(p, "ip.dst", "ipv6.dst"), p.Field("udp.dstport"))
				}
			default:
				if ok && p.Frame != 5 {
					t.Errorf("frame %d (tshark protocols %v) should be skipped: %+v", p.Frame, p.Protocols, x)
				}
			}
		}
		if s := r.Stats(); s.Frames != len(frames) || s.Skipped != 2 {
			t.Errorf("reassemble %v: stats %+v", reassemble, s)
		}
	}
}

func firstOf(p TsharkPacket, names ...string) string {
	for _, n := range names {
		if v := p.Field(n); v != "" {
			return v
		}
	}
	return ""
}

func TestTsharkFailures(t *testing.T) {
	tshark := requireTshark(t)
	ctx := tsharkContext(t)
	_, err := TsharkDecode(ctx, tshark, filepath.Join(t.TempDir(), "missing.pcap"))
	if !errors.Is(err, ErrTshark) || !strings.Contains(err.Error(), "missing.pcap") {
		t.Errorf("missing file: %v, want ErrTshark quoting tshark's message", err)
	}
	// A capture cut in the middle of a record: tshark reports it.
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := w.WriteUDP(t0, addr4a, addr4b, validMapRequest); err != nil {
			t.Fatal(err)
		}
	}
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	if err := os.WriteFile(cut, buf.Bytes()[:buf.Len()-10], 0o600); err != nil {
		t.Fatal(err)
	}
	pkts, err := TsharkDecode(ctx, tshark, cut)
	if !errors.Is(err, ErrTshark) || len(pkts) != 2 {
		t.Errorf("cut capture: %d packets, %v; want 2 packets and ErrTshark", len(pkts), err)
	}
	if _, err := Tshark(ctx, filepath.Join(t.TempDir(), "no-such-tshark")); !errors.Is(err, ErrTshark) {
		t.Errorf("missing executable: %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := TsharkDecode(canceled, tshark, cut); !errors.Is(err, ErrTshark) {
		t.Errorf("canceled context: %v", err)
	}
}

// The field list in testdata must be what the installed tshark exposes,
// when it is the version the list was made with.
func TestTsharkFieldList(t *testing.T) {
	tshark := requireTshark(t)
	ctx := tsharkContext(t)
	data, err := os.ReadFile(filepath.Join("testdata", "tshark-lisp-fields.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var version string
	var listed []string
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "# TShark"); ok && version == "" {
			version = "TShark" + v
		}
		if strings.HasPrefix(line, "F\t") {
			listed = append(listed, line)
		}
	}
	installed, err := TsharkVersion(ctx, tshark)
	if err != nil {
		t.Fatal(err)
	}
	if installed != version {
		t.Skipf("testdata lists fields of %q; installed is %q", version, installed)
	}
	out, err := Tshark(ctx, tshark, "-G", "fields")
	if err != nil {
		t.Fatal(err)
	}
	// The same selection as grep -iE '^F.*\blisp'.
	re := regexp.MustCompile(`(?i)^F.*\blisp`)
	var current []string
	for _, line := range strings.Split(string(out), "\n") {
		if re.MatchString(line) {
			current = append(current, line)
		}
	}
	if len(listed) < 200 || strings.Join(listed, "\n") != strings.Join(current, "\n") {
		t.Errorf("testdata/tshark-lisp-fields.txt (%d fields) differs from tshark -G fields (%d LISP fields)", len(listed), len(current))
	}
}
