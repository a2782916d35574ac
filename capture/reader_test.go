package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// checkDatagram compares the fields the test packets set.
func checkDatagram(t *testing.T, d Datagram, frame int, src, dst netip.AddrPort, payload []byte) {
	t.Helper()
	if d.Frame != frame || d.FirstFrame != frame {
		t.Errorf("frame %d/%d, want %d", d.Frame, d.FirstFrame, frame)
	}
	if d.Src != src || d.Dst != dst {
		t.Errorf("addresses %v -> %v, want %v -> %v", d.Src, d.Dst, src, dst)
	}
	if !bytes.Equal(d.Payload, payload) {
		t.Errorf("payload %x, want %x", d.Payload, payload)
	}
	if d.TTL != 33 || d.TOS != 0xb8 {
		t.Errorf("TTL %d TOS %#x, want 33 0xb8", d.TTL, d.TOS)
	}
	if d.Fragmented {
		t.Error("Fragmented set on a whole datagram")
	}
	if d.Checksum == 0 {
		t.Error("checksum 0, gopacket computed one")
	}
}

func TestReaderLinkTypes(t *testing.T) {
	payload := []byte("lisp payload \x00\x01\x02")
	v4 := udpPacket(t, addr4a, addr4b, payload)
	v6 := udpPacket(t, addr6a, addr6b, payload)
	// A non-UDP IPv4 packet (ICMP), to check skipping on every link type.
	icmp := append(ipv4Header(addr4a.Addr(), addr4b.Addr(), 1, 28, 9, false, 0), make([]byte, 8)...)
	le, be := binary.LittleEndian, binary.BigEndian
	cases := []struct {
		name      string
		linkType  uint32
		wrap      func(ip []byte) []byte
		skipFrame []byte // a frame of this link type with no IP UDP in it
		v6        bool
	}{
		{"ethernet/ipv4", 1, func(ip []byte) []byte { return ether(0x0800, ip) }, ether(0x0806, make([]byte, 28)), false},
		{"ethernet/ipv6", 1, func(ip []byte) []byte { return ether(0x86DD, ip) }, ether(0x0800, icmp), true},
		{"ethernet/padded", 1, func(ip []byte) []byte { return append(ether(0x0800, ip), make([]byte, 30)...) }, ether(0x0800, icmp), false},
		{"ethernet/802.1Q", 1, func(ip []byte) []byte { return ether(0x0800, ip, 0x8100) }, ether(0x0800, icmp, 0x8100), false},
		{"ethernet/QinQ", 1, func(ip []byte) []byte { return ether(0x86DD, ip, 0x88A8, 0x8100) }, ether(0x0800, icmp, 0x88A8, 0x8100), true},
		{"ethernet/802.3-LLC", 1, func(ip []byte) []byte { return ether(0x0800, ip) }, ether(46, make([]byte, 46)), false},
		{"sll/ipv4", 113, func(ip []byte) []byte { return sll(0x0800, 1, ip) }, sll(0x0806, 1, make([]byte, 28)), false},
		{"sll/ipv6-tun", 113, func(ip []byte) []byte { return sll(0x86DD, 0xFFFE, ip) }, sll(0x0800, 772, icmp), true},
		{"sll/vlan", 113, func(ip []byte) []byte { return sll(0x8100, 1, append([]byte{0, 100, 0x08, 0x00}, ip...)) }, sll(0x0800, 824, v4), false},
		{"sll2/ipv4", 276, func(ip []byte) []byte { return sll2(0x0800, 1, ip) }, sll2(0x0800, 824, v4), false},
		{"sll2/ipv6", 276, func(ip []byte) []byte { return sll2(0x86DD, 772, ip) }, sll2(0x0800, 1, icmp), true},
		{"raw101/ipv4", 101, func(ip []byte) []byte { return ip }, icmp, false},
		{"raw101/ipv6", 101, func(ip []byte) []byte { return ip }, icmp, true},
		{"raw12/ipv4", 12, func(ip []byte) []byte { return ip }, icmp, false},
		{"raw14/ipv6", 14, func(ip []byte) []byte { return ip }, icmp, true},
		{"ipv4-228", 228, func(ip []byte) []byte { return ip }, icmp, false},
		{"ipv6-229", 229, func(ip []byte) []byte { return ip }, ipv6ICMP(), true},
		{"null-le/ipv4", 0, func(ip []byte) []byte { return nullHdr(le, 2, ip) }, nullHdr(le, 2, icmp), false},
		{"null-be/ipv4", 0, func(ip []byte) []byte { return nullHdr(be, 2, ip) }, nullHdr(le, 7, icmp), false},
		{"null-le/ipv6-darwin", 0, func(ip []byte) []byte { return nullHdr(le, 30, ip) }, nullHdr(le, 2, icmp), true},
		{"null-be/ipv6-netbsd", 0, func(ip []byte) []byte { return nullHdr(be, 24, ip) }, nullHdr(be, 2, icmp), true},
		{"null-le/ipv6-freebsd", 0, func(ip []byte) []byte { return nullHdr(le, 28, ip) }, nullHdr(le, 2, icmp), true},
		{"null-le/ipv6-linux", 0, func(ip []byte) []byte { return nullHdr(le, 10, ip) }, nullHdr(le, 2, icmp), true},
		{"loop/ipv4", 108, func(ip []byte) []byte { return nullHdr(be, 2, ip) }, nullHdr(be, 2, icmp), false},
		{"loop/ipv6", 108, func(ip []byte) []byte { return nullHdr(be, 28, ip) }, nullHdr(be, 17, v4), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ip, src, dst := v4, addr4a, addr4b
			if c.v6 {
				ip, src, dst = v6, addr6a, addr6b
			}
			file := pcapFile(le, true, c.linkType,
				rec{ts: t0, data: c.skipFrame},
				rec{ts: t0.Add(time.Second), data: c.wrap(ip)},
			)
			r := mustReader(t, file)
			res := readAll(t, r)
			if len(res) != 1 || res[0].err != nil {
				t.Fatalf("got %+v, want one datagram", res)
			}
			d := res[0].d
			checkDatagram(t, d, 2, src, dst, payload)
			if !d.Time.Equal(t0.Add(time.Second)) {
				t.Errorf("time %v, want %v", d.Time, t0.Add(time.Second))
			}
			if d.LinkType != layers.LinkType(c.linkType) {
				t.Errorf("link type %v, want %d", d.LinkType, c.linkType)
			}
			if d.Length != len(c.wrap(ip)) {
				t.Errorf("length %d, want %d", d.Length, len(c.wrap(ip)))
			}
			want := Stats{Frames: 2, Datagrams: 1, Skipped: 1}
			if got := r.Stats(); got != want {
				t.Errorf("stats %+v, want %+v", got, want)
			}
		})
	}
}

// ipv6ICMP returns an IPv6 ICMPv6 echo request.
func ipv6ICMP() []byte {
	b := []byte{0x60, 0, 0, 0, 0, 8, 58, 64}
	s, d := addr6a.Addr().As16(), addr6b.Addr().As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	return append(b, 128, 0, 0, 0, 0, 1, 0, 1)
}

func TestReaderFileFormats(t *testing.T) {
	payload := []byte{1, 2, 3, 4, 5}
	frame := ether(0x0800, udpPacket(t, addr4a, addr4b, payload))
	ts := time.Date(2024, 1, 2, 3, 4, 5, 987654321, time.UTC)
	for _, c := range []struct {
		name  string
		order orderBoth
		nano  bool
		want  time.Time
	}{
		{"le-micro", binary.LittleEndian, false, ts.Truncate(time.Microsecond)},
		{"be-micro", binary.BigEndian, false, ts.Truncate(time.Microsecond)},
		{"le-nano", binary.LittleEndian, true, ts},
		{"be-nano", binary.BigEndian, true, ts},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := pcapFile(c.order, c.nano, 1, rec{ts: ts, data: frame}, rec{ts: ts, data: frame})
			for _, gz := range []bool{false, true} {
				in := file
				if gz {
					in = gzipBytes(t, file)
				}
				res := readAll(t, mustReader(t, in))
				if len(res) != 2 {
					t.Fatalf("gzip %v: %d results, want 2", gz, len(res))
				}
				for i, r := range res {
					if r.err != nil {
						t.Fatalf("gzip %v: %v", gz, r.err)
					}
					checkDatagram(t, r.d, i+1, addr4a, addr4b, payload)
					if !r.d.Time.Equal(c.want) {
						t.Errorf("gzip %v: time %v, want %v", gz, r.d.Time, c.want)
					}
				}
			}
		})
	}
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReaderPcapng(t *testing.T) {
	payload := []byte("pcapng")
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[layers.LinkType]int{layers.LinkTypeEthernet: 0}
	for _, lt := range []layers.LinkType{layers.LinkTypeLinuxSLL2, layers.LinkTypeIEEE802_11, layers.LinkTypeRaw} {
		id, err := w.AddInterface(pcapgo.NgInterface{Name: lt.String(), LinkType: lt, SnapLength: 65535})
		if err != nil {
			t.Fatal(err)
		}
		ids[lt] = id
	}
	write := func(lt layers.LinkType, ts time.Time, data []byte) {
		t.Helper()
		ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: len(data), InterfaceIndex: ids[lt]}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	v4 := udpPacket(t, addr4a, addr4b, payload)
	v6 := udpPacket(t, addr6a, addr6b, payload)
	write(layers.LinkTypeEthernet, t0, ether(0x0800, v4))                                 // 1
	write(layers.LinkTypeLinuxSLL2, t0.Add(1), sll2(0x86DD, 1, v6))                       // 2
	write(layers.LinkTypeIEEE802_11, t0.Add(2), make([]byte, 40))                         // 3: unsupported
	write(layers.LinkTypeEthernet, t0.Add(3), ether(0x0806, make([]byte, 28)))            // 4: ARP
	write(layers.LinkTypeRaw, t0.Add(4), v6)                                              // 5
	write(layers.LinkTypeEthernet, t0.Add(5*time.Millisecond), ether(0x86DD, v6, 0x8100)) // 6
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, gz := range []bool{false, true} {
		in := buf.Bytes()
		if gz {
			in = gzipBytes(t, in)
		}
		r := mustReader(t, in)
		res := readAll(t, r)
		if len(res) != 5 {
			t.Fatalf("gzip %v: %d results, want 5: %+v", gz, len(res), res)
		}
		checkDatagram(t, res[0].d, 1, addr4a, addr4b, payload)
		checkDatagram(t, res[1].d, 2, addr6a, addr6b, payload)
		var fe *FrameError
		if !errors.As(res[2].err, &fe) || fe.Frame != 3 || !errors.Is(res[2].err, ErrLinkType) {
			t.Errorf("frame 3: %v, want a FrameError for frame 3 wrapping ErrLinkType", res[2].err)
		}
		checkDatagram(t, res[3].d, 5, addr6a, addr6b, payload)
		for _, c := range []struct {
			i     int
			iface int
			lt    layers.LinkType
			ts    time.Time
		}{{0, 0, layers.LinkTypeEthernet, t0}, {1, 1, layers.LinkTypeLinuxSLL2, t0.Add(1)}, {3, 3, layers.LinkTypeRaw, t0.Add(4)}} {
			d := res[c.i].d
			if d.Interface != c.iface || d.LinkType != c.lt || !d.Time.Equal(c.ts) {
				t.Errorf("frame %d: interface %d link %v time %v, want %d %v %v", d.Frame, d.Interface, d.LinkType, d.Time, c.iface, c.lt, c.ts)
			}
		}
		checkDatagram(t, res[4].d, 6, addr6a, addr6b, payload)
		if !res[4].d.Time.Equal(t0.Add(5 * time.Millisecond)) {
			t.Errorf("frame 6 time %v", res[4].d.Time)
		}
		want := Stats{Frames: 6, Datagrams: 4, Skipped: 1, Errors: 1}
		if got := r.Stats(); got != want {
			t.Errorf("stats %+v, want %+v", got, want)
		}
	}
}

func TestReaderMalformedFrames(t *testing.T) {
	payload := []byte("0123456789")
	good := ether(0x0800, udpPacket(t, addr4a, addr4b, payload))
	a, b := addr4a.Addr(), addr4b.Addr()
	badIHL := append([]byte(nil), udpPacket(t, addr4a, addr4b, payload)...)
	badIHL[0] = 0x43
	udpTooLong := append(ipv4Header(a, b, 17, 20+8+4, 1, false, 0), udpHeaderBytes(1, 4342, 8+40)...)
	udpTooLong = append(udpTooLong, 1, 2, 3, 4)
	udpTooShort := append(ipv4Header(a, b, 17, 20+8+4, 1, false, 0), udpHeaderBytes(1, 4342, 7)...)
	udpTooShort = append(udpTooShort, 1, 2, 3, 4)
	totalTooLong := append(ipv4Header(a, b, 17, 200, 1, false, 0), udpHeaderBytes(1, 4342, 12)...)
	totalTooLong = append(totalTooLong, 1, 2, 3, 4)
	totalTooShort := append(ipv4Header(a, b, 17, 12, 1, false, 0), udpHeaderBytes(1, 4342, 12)...)
	udpCut := append(ipv4Header(a, b, 17, 20+4, 1, false, 0), 0, 1, 0x10, 0xf6)
	v6 := udpPacket(t, addr6a, addr6b, payload)
	v6AsV4 := ether(0x0800, v6)
	tcpBig := append(ipv4Header(a, b, 6, 1500, 1, false, 0), make([]byte, 40)...)
	udpBig := append(ipv4Header(a, b, 17, 1500, 1, false, 0), udpHeaderBytes(1, 4342, 1480)...)
	v6Short := v6[:30]
	v6PlenLong := append([]byte(nil), v6...)
	v6PlenLong[5] += 50
	frames := []rec{
		{data: good},                                 // 1 ok
		{data: ether(0x0800, badIHL[:10])},           // 2 truncated IP header
		{data: ether(0x0800, badIHL)},                // 3 bad IHL
		{data: ether(0x0800, udpTooLong)},            // 4 UDP length larger than packet
		{data: ether(0x0800, totalTooLong)},          // 5 IP total length larger than frame
		{data: good},                                 // 6 ok
		{data: good[:40], origLen: len(good)},        // 7 truncated by the capture
		{data: ether(0x0806, make([]byte, 28))},      // 8 ARP: skipped
		{data: ether(0x0800, nil, 0x8100)[:15]},      // 9 VLAN tag cut short
		{data: v6AsV4},                               // 10 EtherType IPv4, version 6
		{data: ether(0x0800, udpTooShort)},           // 11 UDP length below 8
		{data: ether(0x0800, tcpBig), origLen: 1514}, // 12 TCP cut by snaplen: skipped
		{data: ether(0x0800, udpBig), origLen: 1514}, // 13 UDP cut by snaplen
		{data: ether(0x0800, totalTooShort)},         // 14 total length below header
		{data: ether(0x0800, udpCut)},                // 15 UDP header cut
		{data: ether(0x86DD, v6Short)},               // 16 IPv6 header cut
		{data: ether(0x86DD, v6PlenLong)},            // 17 IPv6 payload length too long
		{data: good[:10]},                            // 18 Ethernet header cut
		{data: ether(0x86DD, v6)},                    // 19 ok
		{data: ether(0x0800, nil, 0x8100, 0x8100, 0x8100, 0x8100, 0x8100, 0x8100, 0x8100, 0x8100, 0x8100)}, // 20 too many tags
	}
	for i := range frames {
		frames[i].ts = t0.Add(time.Duration(i) * time.Millisecond)
	}
	r := mustReader(t, pcapFile(binary.LittleEndian, true, 1, frames...))
	res := readAll(t, r)
	type expect struct {
		frame int
		err   error  // nil: a datagram
		says  string // in the message
	}
	wants := []expect{
		{1, nil, ""},
		{2, ErrMalformed, "IPv4 header needs 20 bytes, 10 left"},
		{3, ErrMalformed, "IPv4 header length 12 (IHL 3) below 20"},
		{4, ErrMalformed, "UDP length 48 larger than the 12-byte IP payload"},
		{5, ErrMalformed, "IPv4 total length 200 exceeds the 32 bytes left"},
		{6, nil, ""},
		{7, ErrTruncated, "captured 40 of 52 bytes"},
		{9, ErrMalformed, "VLAN tag needs 4 bytes, 1 left"},
		{10, ErrMalformed, "IPv4 link type but IP version 6"},
		{11, ErrMalformed, "UDP length 7 below 8"},
		{13, ErrTruncated, "captured 42 of 1514 bytes"},
		{14, ErrMalformed, "IPv4 total length 12 below header length 20"},
		{15, ErrMalformed, "UDP header needs 8 bytes, 4 left"},
		{16, ErrMalformed, "IPv6 header needs 40 bytes, 30 left"},
		{17, ErrMalformed, "IPv6 payload length 68 exceeds the 18 bytes left"},
		{18, ErrMalformed, "Ethernet header needs 14 bytes, frame has 10"},
		{19, nil, ""},
		{20, ErrMalformed, "more than 8 stacked VLAN tags"},
	}
	if len(res) != len(wants) {
		for _, r := range res {
			t.Logf("%d %v", r.d.Frame, r.err)
		}
		t.Fatalf("%d results, want %d", len(res), len(wants))
	}
	for i, w := range wants {
		got := res[i]
		if w.err == nil {
			if got.err != nil {
				t.Errorf("result %d: %v, want a datagram from frame %d", i, got.err, w.frame)
			} else if got.d.Frame != w.frame {
				t.Errorf("result %d: frame %d, want %d", i, got.d.Frame, w.frame)
			}
			continue
		}
		var fe *FrameError
		if !errors.As(got.err, &fe) {
			t.Errorf("result %d: %v, want a *FrameError for frame %d", i, got.err, w.frame)
			continue
		}
		if fe.Frame != w.frame || !errors.Is(got.err, w.err) || !strings.Contains(got.err.Error(), w.says) {
			t.Errorf("result %d: %v (frame %d), want frame %d wrapping %v saying %q", i, got.err, fe.Frame, w.frame, w.err, w.says)
		}
		prefix := "capture: frame "
		if msg := got.err.Error(); !strings.HasPrefix(msg, prefix) || strings.Count(msg, "capture:") != 1 {
			t.Errorf("result %d: message %q, want one %q prefix", i, msg, prefix)
		}
	}
	want := Stats{Frames: 20, Datagrams: 3, Skipped: 2, Errors: 15}
	if got := r.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

// fragments splits a UDP datagram (header and payload) into IPv4 fragments
// of chunk bytes (a multiple of 8) and returns the IP packets.
func fragments4(src, dst netip.AddrPort, id uint16, payload []byte, chunk int) [][]byte {
	dgram := append(udpHeaderBytes(src.Port(), dst.Port(), 8+len(payload)), payload...)
	var pkts [][]byte
	for off := 0; off < len(dgram); off += chunk {
		end := min(off+chunk, len(dgram))
		h := ipv4Header(src.Addr(), dst.Addr(), 17, 20+end-off, id, end < len(dgram), off)
		pkts = append(pkts, append(h, dgram[off:end]...))
	}
	return pkts
}

// fragments6 does the same with IPv6 Fragment headers.
func fragments6(src, dst netip.AddrPort, id uint32, payload []byte, chunk int) [][]byte {
	dgram := append(udpHeaderBytes(src.Port(), dst.Port(), 8+len(payload)), payload...)
	var pkts [][]byte
	for off := 0; off < len(dgram); off += chunk {
		end := min(off+chunk, len(dgram))
		more := end < len(dgram)
		pkts = append(pkts, ipv6With(src.Addr(), dst.Addr(), 44, append(fragHeader(17, off, more, id), dgram[off:end]...)))
	}
	return pkts
}

func fragHeader(next byte, off int, more bool, id uint32) []byte {
	h := []byte{next, 0, 0, 0}
	om := uint16(off/8) << 3
	if more {
		om |= 1
	}
	binary.BigEndian.PutUint16(h[2:], om)
	return binary.BigEndian.AppendUint32(h, id)
}

// ipv6With builds an IPv6 packet with the given first next header and the
// rest of the packet.
func ipv6With(src, dst netip.Addr, next byte, rest []byte) []byte {
	b := []byte{0x60, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(len(rest)))
	b = append(b, next, 64)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	return append(b, rest...)
}

func TestReaderFragments(t *testing.T) {
	payload := bytes.Repeat([]byte("abcdefgh"), 5) // 40 bytes; datagram 48
	frags4 := fragments4(addr4a, addr4b, 0x1234, payload, 16)
	frags6 := fragments6(addr6a, addr6b, 0xdeadbeef, payload, 16)
	if len(frags4) != 3 || len(frags6) != 3 {
		t.Fatalf("%d and %d fragments, want 3", len(frags4), len(frags6))
	}
	good := ether(0x0800, udpPacket(t, addr4a, addr4b, []byte("x")))
	for _, fam := range []struct {
		name     string
		frags    [][]byte
		et       uint16
		src, dst netip.AddrPort
	}{{"ipv4", frags4, 0x0800, addr4a, addr4b}, {"ipv6", frags6, 0x86DD, addr6a, addr6b}} {
		frame := func(i int) rec { return rec{ts: t0, data: ether(fam.et, fam.frags[i])} }
		t.Run(fam.name+"/plain", func(t *testing.T) {
			r := mustReader(t, pcapFile(binary.LittleEndian, true, 1, frame(0), frame(1), frame(2), rec{ts: t0, data: good}))
			res := readAll(t, r)
			if len(res) != 4 {
				t.Fatalf("%d results, want 4", len(res))
			}
			d := res[0].d
			if res[0].err != nil || d.Frame != 1 || !d.Fragmented || !bytes.Equal(d.Payload, payload[:8]) || d.Src != fam.src || d.Dst != fam.dst {
				t.Errorf("first fragment: %+v %v, want frame 1 fragmented with payload %q", d, res[0].err, payload[:8])
			}
			for i, f := range []int{2, 3} {
				var fe *FrameError
				if err := res[1+i].err; !errors.As(err, &fe) || fe.Frame != f || !errors.Is(err, ErrFragment) {
					t.Errorf("frame %d: %v, want FrameError wrapping ErrFragment", f, err)
				}
			}
			if res[3].err != nil || res[3].d.Frame != 4 {
				t.Errorf("frame 4: %+v %v", res[3].d, res[3].err)
			}
			if s := r.Stats(); s.Fragments != 3 || s.Errors != 2 || s.Datagrams != 2 {
				t.Errorf("stats %+v", s)
			}
		})
		t.Run(fam.name+"/reassembled", func(t *testing.T) {
			r := mustReader(t, pcapFile(binary.LittleEndian, true, 1, rec{ts: t0, data: good}, frame(0), frame(1), frame(2), rec{ts: t0, data: good}), WithReassembly())
			res := readAll(t, r)
			if len(res) != 3 {
				t.Fatalf("%d results, want 3: %+v", len(res), res)
			}
			d := res[1].d
			if res[1].err != nil || d.Frame != 4 || d.FirstFrame != 2 || !d.Fragmented || !bytes.Equal(d.Payload, payload) || d.Src != fam.src || d.Dst != fam.dst {
				t.Errorf("reassembled: %+v %v, want frames 2..4 with the whole payload", d, res[1].err)
			}
			if res[2].d.Frame != 5 {
				t.Errorf("next datagram from frame %d, want 5", res[2].d.Frame)
			}
			if s := r.Stats(); s.Fragments != 3 || s.Reassembled != 1 || s.Errors != 0 || s.Datagrams != 3 {
				t.Errorf("stats %+v", s)
			}
		})
		t.Run(fam.name+"/out-of-order", func(t *testing.T) {
			r := mustReader(t, pcapFile(binary.LittleEndian, true, 1, frame(0), frame(2), frame(1)), WithReassembly())
			res := readAll(t, r)
			if len(res) != 2 {
				t.Fatalf("%d results, want 2: %+v", len(res), res)
			}
			for i, f := range []int{2, 3} {
				var fe *FrameError
				if err := res[i].err; !errors.As(err, &fe) || fe.Frame != f || !errors.Is(err, ErrFragment) {
					t.Errorf("result %d: %v, want FrameError for frame %d wrapping ErrFragment", i, err, f)
				}
			}
		})
		t.Run(fam.name+"/incomplete", func(t *testing.T) {
			r := mustReader(t, pcapFile(binary.LittleEndian, true, 1, frame(0), frame(1), rec{ts: t0, data: good}), WithReassembly())
			res := readAll(t, r)
			if len(res) != 2 || res[0].err != nil || res[0].d.Frame != 3 {
				t.Fatalf("got %+v, want the datagram of frame 3 then an error", res)
			}
			var fe *FrameError
			if err := res[1].err; !errors.As(err, &fe) || fe.Frame != 1 || !errors.Is(err, ErrFragment) {
				t.Errorf("at the end: %v, want FrameError for frame 1 wrapping ErrFragment", err)
			}
		})
		t.Run(fam.name+"/restarted", func(t *testing.T) {
			r := mustReader(t, pcapFile(binary.LittleEndian, true, 1, frame(0), frame(0), frame(1), frame(2)), WithReassembly())
			res := readAll(t, r)
			if len(res) != 2 {
				t.Fatalf("%d results, want 2: %+v", len(res), res)
			}
			var fe *FrameError
			if err := res[0].err; !errors.As(err, &fe) || fe.Frame != 1 || !errors.Is(err, ErrFragment) {
				t.Errorf("first: %v, want FrameError for frame 1", err)
			}
			if d := res[1].d; res[1].err != nil || d.FirstFrame != 2 || d.Frame != 4 || !bytes.Equal(d.Payload, payload) {
				t.Errorf("second: %+v %v, want datagram of frames 2..4", d, res[1].err)
			}
		})
	}
	t.Run("pending-limit", func(t *testing.T) {
		var recs []rec
		for id := 0; id < maxPendingDatagrams+1; id++ {
			recs = append(recs, rec{ts: t0, data: ether(0x0800, fragments4(addr4a, addr4b, uint16(id), payload, 16)[0])})
		}
		r := mustReader(t, pcapFile(binary.LittleEndian, true, 1, recs...), WithReassembly())
		res := readAll(t, r)
		if len(res) != maxPendingDatagrams+1 {
			t.Fatalf("%d results, want %d", len(res), maxPendingDatagrams+1)
		}
		for i, x := range res {
			var fe *FrameError
			if !errors.As(x.err, &fe) || fe.Frame != i+1 {
				t.Errorf("result %d: %v, want FrameError for frame %d", i, x.err, i+1)
			}
		}
		// The first datagram was dropped when the 65th arrived, not at the
		// end of the file.
		if msg := res[0].err.Error(); !strings.Contains(msg, "pending reassembly, dropped the oldest") {
			t.Errorf("first error %q, want the eviction", msg)
		}
		if msg := res[1].err.Error(); !strings.Contains(msg, "never completed") {
			t.Errorf("second error %q, want incomplete at the end", msg)
		}
	})
	t.Run("ipv6-atomic", func(t *testing.T) {
		dgram := append(udpHeaderBytes(addr6a.Port(), addr6b.Port(), 8+3), 'a', 'b', 'c')
		pkt := ipv6With(addr6a.Addr(), addr6b.Addr(), 44, append(fragHeader(17, 0, false, 5), dgram...))
		res := readAll(t, mustReader(t, pcapFile(binary.LittleEndian, true, 101, rec{ts: t0, data: pkt})))
		if len(res) != 1 || res[0].err != nil || res[0].d.Fragmented || string(res[0].d.Payload) != "abc" {
			t.Fatalf("got %+v, want one whole datagram", res)
		}
	})
}

func TestReaderIPv6ExtensionHeaders(t *testing.T) {
	a, b := addr6a.Addr(), addr6b.Addr()
	dgram := append(udpHeaderBytes(addr6a.Port(), addr6b.Port(), 8+4), 'l', 'i', 's', 'p')
	hbh := []byte{60, 0, 1, 4, 0, 0, 0, 0}                          // Hop-by-Hop, PadN, next: Destination Options
	dst := []byte{43, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // Destination Options (16 bytes), next: Routing
	rt := []byte{51, 0, 4, 0, 0, 0, 0, 0}                           // Routing (8 bytes), next: AH
	ah := append([]byte{17, 1, 0, 0}, make([]byte, 8)...)           // AH: (1+2)*4 = 12 bytes, next: UDP
	chain := append(append(append(append(append([]byte(nil), hbh...), dst...), rt...), ah...), dgram...)
	esp := append([]byte{0, 0, 1, 0, 0, 0, 0, 1}, dgram...)
	badLen := []byte{17, 9, 0, 0, 0, 0, 0, 0}
	recs := []rec{
		{ts: t0, data: ipv6With(a, b, 0, chain)},       // 1 ok
		{ts: t0, data: ipv6With(a, b, 50, esp)},        // 2 ESP: skipped
		{ts: t0, data: ipv6With(a, b, 60, badLen)},     // 3 header longer than packet
		{ts: t0, data: ipv6With(a, b, 59, nil)},        // 4 No Next Header: skipped
		{ts: t0, data: ipv6With(a, b, 0, []byte{17})},  // 5 header cut
		{ts: t0, data: ipv6With(a, b, 0, nil)},         // 6 jumbogram form
		{ts: t0, data: ipv6With(a, b, 44, []byte{17})}, // 7 fragment header cut
	}
	res := readAll(t, mustReader(t, pcapFile(binary.LittleEndian, true, 229, recs...)))
	if len(res) != 5 {
		t.Fatalf("%d results, want 5: %+v", len(res), res)
	}
	if d := res[0].d; res[0].err != nil || string(d.Payload) != "lisp" || d.Src != addr6a || d.Dst != addr6b {
		t.Errorf("frame 1: %+v %v", d, res[0].err)
	}
	for i, f := range []int{3, 5, 6, 7} {
		var fe *FrameError
		if err := res[1+i].err; !errors.As(err, &fe) || fe.Frame != f || !errors.Is(err, ErrMalformed) {
			t.Errorf("frame %d: %v, want malformed", f, err)
		}
	}
}

func TestReaderCorruptFile(t *testing.T) {
	good := ether(0x0800, udpPacket(t, addr4a, addr4b, []byte("payload")))
	file := pcapFile(binary.LittleEndian, true, 1, rec{ts: t0, data: good}, rec{ts: t0, data: good}, rec{ts: t0, data: good})
	for _, cut := range []int{len(file) - 5, len(file) - len(good) - 3} {
		frag := fragments4(addr4a, addr4b, 1, make([]byte, 32), 16)[0]
		withFrag := pcapFile(binary.LittleEndian, true, 1, rec{ts: t0, data: ether(0x0800, frag)}, rec{ts: t0, data: good}, rec{ts: t0, data: good})
		for _, in := range [][]byte{file[:cut], withFrag[:len(withFrag)-5]} {
			r := mustReader(t, in, WithReassembly())
			var last error
			n := 0
			for i := 0; i < 10; i++ {
				_, err := r.Next()
				var fe *FrameError
				if err == nil || errors.As(err, &fe) {
					n++
					continue
				}
				last = err
				break
			}
			if !errors.Is(last, ErrCorrupt) {
				t.Fatalf("after %d results: %v, want ErrCorrupt", n, last)
			}
			if _, err := r.Next(); err != last {
				t.Errorf("error not sticky: %v then %v", last, err)
			}
		}
	}
	// A record length beyond any snapshot length.
	bad := pcapFile(binary.LittleEndian, true, 1, rec{ts: t0, data: good})
	binary.LittleEndian.PutUint32(bad[24+8:], 0x7fffffff)
	binary.LittleEndian.PutUint32(bad[24+12:], 0x7fffffff)
	r := mustReader(t, bad)
	if _, err := r.Next(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("huge record: %v, want ErrCorrupt", err)
	}
}

func TestReaderOpenErrors(t *testing.T) {
	good := pcapFile(binary.LittleEndian, true, 1)
	wrongVersion := append([]byte(nil), good...)
	wrongVersion[4] = 9
	ngBad := []byte{0x0A, 0x0D, 0x0D, 0x0A, 28, 0, 0, 0, 1, 2, 3, 4}
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrFormat},
		{"short", []byte{0xd4, 0xc3, 0xb2}, ErrFormat},
		{"text", []byte("hello, world: not a capture"), ErrFormat},
		{"pcap-header-cut", good[:20], ErrFormat},
		{"pcap-version", wrongVersion, ErrFormat},
		{"pcapng-byte-order", ngBad, ErrFormat},
		{"gzip-garbage", []byte{0x1f, 0x8b, 0, 0, 0}, ErrFormat},
		// Fuzzer crasher: a gzip header with no stream after it.
		{"gzip-header-only", []byte("\x1f\x8b\bA000000"), ErrFormat},
		{"gzip-empty-stream", gzipBytes(t, nil), ErrFormat},
		{"802.11", pcapFile(binary.LittleEndian, true, 105), ErrLinkType},
		{"usb", pcapFile(binary.BigEndian, false, 220), ErrLinkType},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(c.in))
			if !errors.Is(err, c.want) || r != nil {
				t.Fatalf("NewReader = %v, %v; want error wrapping %v", r, err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "capture: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.pcap")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v", err)
	}
}

func TestReadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pcap")
	good := ether(0x0800, udpPacket(t, addr4a, addr4b, []byte("file")))
	if err := os.WriteFile(path, pcapFile(binary.BigEndian, false, 1, rec{ts: t0, data: good}), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Next()
	if err != nil || string(d.Payload) != "file" {
		t.Fatalf("Next = %+v, %v", d, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next = %v, want io.EOF", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pcap")
	if err := os.WriteFile(bad, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(bad); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), bad) {
		t.Errorf("ReadFile of a bad file: %v", err)
	}
}

func TestIsLISP(t *testing.T) {
	mk := func(s, d uint16) Datagram {
		return Datagram{Src: netip.AddrPortFrom(addr4a.Addr(), s), Dst: netip.AddrPortFrom(addr4b.Addr(), d)}
	}
	for _, c := range []struct {
		d    Datagram
		want bool
	}{
		{mk(4342, 4342), true}, {mk(50000, 4342), true}, {mk(4342, 50000), true},
		{mk(4341, 1), true}, {mk(1, 4341), true}, {mk(53, 53), false}, {mk(4343, 4340), false}, {Datagram{}, false},
	} {
		if got := IsLISP(c.d); got != c.want {
			t.Errorf("IsLISP(%v -> %v) = %v, want %v", c.d.Src, c.d.Dst, got, c.want)
		}
	}
}

func TestFrameErrorMessage(t *testing.T) {
	err := &FrameError{Frame: 42, Err: malformed("UDP length %d below 8", 3)}
	if got, want := err.Error(), "capture: frame 42: malformed packet: UDP length 3 below 8"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrMalformed) {
		t.Error("FrameError does not unwrap to its cause")
	}
}

// The reader must hand out payloads the caller owns: reading on must not
// change an earlier datagram.
func TestReaderPayloadOwnership(t *testing.T) {
	p1, p2 := bytes.Repeat([]byte{1}, 100), bytes.Repeat([]byte{2}, 100)
	file := pcapFile(binary.LittleEndian, true, 1,
		rec{ts: t0, data: ether(0x0800, udpPacket(t, addr4a, addr4b, p1))},
		rec{ts: t0, data: ether(0x0800, udpPacket(t, addr4a, addr4b, p2))})
	res := readAll(t, mustReader(t, file))
	if len(res) != 2 || !bytes.Equal(res[0].d.Payload, p1) || !bytes.Equal(res[1].d.Payload, p2) {
		t.Fatal("payloads changed while reading on")
	}
	// Appending to a payload must not write into the next datagram.
	_ = append(res[0].d.Payload, 9, 9, 9)
	if !bytes.Equal(res[1].d.Payload, p2) {
		t.Fatal("append to one payload changed another")
	}
}
