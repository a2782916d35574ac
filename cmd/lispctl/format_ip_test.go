package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// udpHeader is an 8-byte UDP header.
func udpHeader(sp, dp uint16) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b, sp)
	binary.BigEndian.PutUint16(b[2:], dp)
	binary.BigEndian.PutUint16(b[4:], 8)
	return b
}

func TestParseInnerPacket(t *testing.T) {
	withOptions := ipv4Packet("10.0.0.1", "10.0.0.2", protoUDP, udpHeader(1000, 2000))
	// Insert 4 bytes of options: IHL 6.
	withOptions = append(append(append([]byte{}, withOptions[:20]...), 1, 1, 1, 0), withOptions[20:]...)
	withOptions[0] = 0x46
	binary.BigEndian.PutUint16(withOptions[2:], uint16(len(withOptions)))

	laterFrag := ipv4Packet("10.0.0.1", "10.0.0.2", protoUDP, udpHeader(1000, 2000))
	binary.BigEndian.PutUint16(laterFrag[6:], 185) // offset 1480
	firstFrag := ipv4Packet("10.0.0.1", "10.0.0.2", protoUDP, udpHeader(1000, 2000))
	binary.BigEndian.PutUint16(firstFrag[6:], 0x2000) // MF

	long := ipv4Packet("10.0.0.1", "10.0.0.2", protoICMP, icmpEcho(8, 1, 2, 8))
	binary.BigEndian.PutUint16(long[2:], 200)

	// IPv6: hop-by-hop (8 bytes), then a first fragment, then UDP.
	ext := []byte{ipv6Fragment, 0, 1, 4, 0, 0, 0, 0} // hop-by-hop: next=fragment, len 0 (8 bytes), PadN
	frag := []byte{protoUDP, 0, 0, 1, 0, 0, 0, 7}    // fragment: next=UDP, offset 0, M=1, id 7
	v6first := ipv6Packet("2001:db8::1", "2001:db8::2", ipv6HopByHop, append(append(ext, frag...), udpHeader(53, 5353)...))
	laterFrag6 := []byte{protoUDP, 0, 0x05, 0xa8, 0, 0, 0, 7} // offset 181*8, M=0
	v6later := ipv6Packet("2001:db8::1", "2001:db8::2", ipv6Fragment, append(laterFrag6, 1, 2, 3, 4))
	v6cutExt := ipv6Packet("2001:db8::1", "2001:db8::2", ipv6Routing, []byte{protoUDP, 4, 0, 0}) // says 40 bytes, has 4
	v6long := ipv6Packet("2001:db8::1", "2001:db8::2", protoICMPv6, icmpEcho(128, 5, 6, 0))
	binary.BigEndian.PutUint16(v6long[4:], 100)
	v6unreach := ipv6Packet("2001:db8::1", "2001:db8::2", protoICMPv6, []byte{1, 4, 0, 0, 0, 0, 0, 0})
	v4unreach := ipv4Packet("10.0.0.1", "10.0.0.2", protoICMP, []byte{3, 3, 0, 0, 0, 0, 0, 0})
	gre := ipv4Packet("10.0.0.1", "10.0.0.2", 47, []byte{0, 0, 8, 0})

	for _, c := range []struct {
		name    string
		b       []byte
		want    string // innerSummary of the result, "" when none
		wantErr string
	}{
		{"empty", nil, "", "nothing follows the LISP header"},
		{"not IP", []byte{0x55, 0, 0, 0}, "", "IP version 5, want 4 or 6"},
		{"short IPv4", make([]byte, 19), "", "IP version 0"},
		{"short IPv4 header", append([]byte{0x45}, make([]byte, 18)...), "", "IPv4 header truncated: 19 of 20 bytes"},
		{"IHL below 5", append([]byte{0x44}, make([]byte, 19)...), "", "IPv4 header length 16 below 20"},
		{"options cut", append([]byte{0x4f}, make([]byte, 19)...), "", "IPv4 header with options truncated"},
		{"options", withOptions, "IPv4 10.0.0.1:1000 -> 10.0.0.2:2000  UDP  length 32  ttl 64", ""},
		{"first fragment", firstFrag, "IPv4 10.0.0.1:1000 -> 10.0.0.2:2000  UDP  length 28  ttl 64  fragment", ""},
		{"later fragment", laterFrag, "IPv4 10.0.0.1 -> 10.0.0.2  UDP  length 28  ttl 64  fragment", ""},
		{"total beyond data", long, "IPv4 10.0.0.1 -> 10.0.0.2  ICMP  length 200  ttl 64  (36 bytes after the LISP header)", "IPv4 total length 200 exceeds the 36 bytes present"},
		{"ICMP unreachable", v4unreach, "IPv4 10.0.0.1 -> 10.0.0.2  ICMP  length 28  ttl 64  dest-unreachable code 3", ""},
		{"GRE", gre, "IPv4 10.0.0.1 -> 10.0.0.2  GRE  length 24  ttl 64", ""},
		{"short IPv6", append([]byte{0x60}, make([]byte, 30)...), "", "IPv6 header truncated: 31 of 40 bytes"},
		{"IPv6 ext headers", v6first, "IPv6 [2001:db8::1]:53 -> [2001:db8::2]:5353  UDP  length 64  ttl 64  fragment", ""},
		{"IPv6 later fragment", v6later, "IPv6 2001:db8::1 -> 2001:db8::2  UDP  length 52  ttl 64  fragment", ""},
		{"IPv6 ext header cut", v6cutExt, "IPv6 2001:db8::1 -> 2001:db8::2  IPv6-Route  length 44  ttl 64", ""},
		{"IPv6 beyond data", v6long, "IPv6 2001:db8::1 -> 2001:db8::2  ICMPv6  length 140  ttl 64  echo-request code 0 id 5 seq 6  (48 bytes after the LISP header)", "IPv6 payload length 100 exceeds the 8 bytes present"},
		{"ICMPv6 unreachable", v6unreach, "IPv6 2001:db8::1 -> 2001:db8::2  ICMPv6  length 48  ttl 64  dest-unreachable code 4", ""},
	} {
		v, err := parseInnerPacket(c.b)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, errInner)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.wantErr)
		}
		got := ""
		if v != nil {
			got = innerSummary(v)
		}
		if got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestMergeObjects(t *testing.T) {
	b, err := mergeObjects(struct {
		A int `json:"a"`
	}{1}, struct{}{}, map[string]string{"b": "<&>"})
	if err != nil || string(b) != `{"a":1,"b":"<&>"}` {
		t.Errorf("mergeObjects = %s, %v", b, err)
	}
	if _, err := mergeObjects([]int{1}); err == nil {
		t.Error("mergeObjects accepted a JSON array")
	}
}

// FuzzDecodePayload checks that decoding any payload, as a control message
// or as a data packet, never panics and always renders as text and as one
// valid JSON object.
func FuzzDecodePayload(f *testing.F) {
	for _, p := range decodeTestPackets(f) {
		f.Add(p.payload, true)
		f.Add(p.payload, false)
	}
	f.Add([]byte{}, true)
	f.Add([]byte{0x88, 0, 0, 0, 0, 0, 0, 0, 0x60}, false)
	f.Fuzz(func(t *testing.T, b []byte, control bool) {
		for _, p := range []*packetView{viewPacket(packetMeta{Frame: 1}, b, control), viewHex(1, b, 0)} {
			if err := writePacketText(io.Discard, p); err != nil {
				t.Fatal(err)
			}
			j, err := json.Marshal(p)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			var m map[string]any
			if err := json.Unmarshal(j, &m); err != nil {
				t.Fatalf("invalid JSON %s: %v", j, err)
			}
			if p.failed() != (m["error"] != nil) {
				t.Fatalf("error shown %v, failed %v", m["error"], p.failed())
			}
		}
	})
}

// BenchmarkDecodePackets decodes and renders the 17 packets of the test
// capture (one iteration = all of them) as JSON Lines and as text.
func BenchmarkDecodePackets(b *testing.B) {
	pkts := decodeTestPackets(b)
	for _, mode := range []string{"json", "text"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, p := range pkts {
					v := viewPacket(packetMeta{Frame: 1}, p.payload, p.dst.Port() != 4341)
					var err error
					if mode == "json" {
						err = writeJSONLine(io.Discard, v)
					} else {
						err = writePacketText(io.Discard, v)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
