package capture

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// naiveSum is a deliberately simple one's complement sum, independent of
// the package's checksum code: add 16-bit words, fold at the end.
func naiveSum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	sum := 0
	for i := 0; i < len(all); i += 2 {
		sum += int(all[i])<<8 | int(all[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// pseudoHeader builds the UDP pseudo-header bytes (RFC 768, RFC 8200 8.1).
func pseudoHeader(src, dst netip.Addr, udpLen int) []byte {
	b := append(src.AsSlice(), dst.AsSlice()...)
	if src.Is4() {
		return append(b, 0, 17, byte(udpLen>>8), byte(udpLen))
	}
	return append(b, 0, 0, byte(udpLen>>8), byte(udpLen), 0, 0, 0, 17)
}

// verifyFrame checks, independently of the package, that frame is
// Ethernet + IP + UDP with correct lengths and checksums, and returns the
// UDP checksum field.
func verifyFrame(t *testing.T, frame []byte, src, dst netip.AddrPort, payload []byte) uint16 {
	t.Helper()
	sa, da := src.Addr().Unmap(), dst.Addr().Unmap()
	udpLen := 8 + len(payload)
	var udp []byte
	if sa.Is4() {
		if frame[12] != 0x08 || frame[13] != 0x00 {
			t.Fatalf("EtherType %x, want 0800", frame[12:14])
		}
		ip := frame[14:]
		if len(ip) != 20+udpLen || int(ip[2])<<8|int(ip[3]) != 20+udpLen {
			t.Fatalf("IPv4 total length field %d, packet %d, want %d", int(ip[2])<<8|int(ip[3]), len(ip), 20+udpLen)
		}
		if s := naiveSum(ip[:20]); s != 0xffff {
			t.Errorf("IPv4 header checksum does not verify: sum %#x", s)
		}
		udp = ip[20:]
	} else {
		if frame[12] != 0x86 || frame[13] != 0xdd {
			t.Fatalf("EtherType %x, want 86dd", frame[12:14])
		}
		ip := frame[14:]
		if len(ip) != 40+udpLen || int(ip[4])<<8|int(ip[5]) != udpLen || ip[6] != 17 {
			t.Fatalf("IPv6 payload length/next header wrong: %x", ip[:8])
		}
		udp = ip[40:]
	}
	if int(udp[4])<<8|int(udp[5]) != udpLen {
		t.Errorf("UDP length field %d, want %d", int(udp[4])<<8|int(udp[5]), udpLen)
	}
	ck := uint16(udp[6])<<8 | uint16(udp[7])
	if ck == 0 {
		t.Error("UDP checksum 0 (none): the writer must always compute one")
	}
	if s := naiveSum(pseudoHeader(sa, da, udpLen), udp); s != 0xffff {
		t.Errorf("UDP checksum %#04x does not verify: sum %#x", ck, s)
	}
	if !bytes.Equal(udp[8:], payload) {
		t.Errorf("UDP payload %x, want %x", udp[8:], payload)
	}
	return ck
}

// rawFrames returns the records of a classic pcap file via pcapgo.
func rawFrames(t *testing.T, file []byte) ([][]byte, []gopacket.CaptureInfo) {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v, want Ethernet", r.LinkType())
	}
	var frames [][]byte
	var cis []gopacket.CaptureInfo
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return frames, cis
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, data)
		cis = append(cis, ci)
	}
}

type udpCase struct {
	ts       time.Time
	src, dst netip.AddrPort
	payload  []byte
}

func roundTripCases() []udpCase {
	big := make([]byte, 9000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	return []udpCase{
		{t0, addr4a, addr4b, []byte("map-request")},
		{t0.Add(time.Nanosecond), addr6a, addr6b, []byte("odd")},
		{t0.Add(time.Second), addr4b, addr4a, nil},
		{t0.Add(2 * time.Second), addr6b, addr6a, []byte{}},
		{t0.Add(3 * time.Second), addr4a, addr4b, big},
		{t0.Add(4 * time.Second), addr6a, addr6b, big[:8999]},
		{time.Unix(0, 0), netip.MustParseAddrPort("0.0.0.1:1"), netip.MustParseAddrPort("255.255.255.255:65535"), []byte{0xff}},
		{time.Unix(1<<32-1, 999999999), netip.MustParseAddrPort("[::1]:0"), netip.MustParseAddrPort("[ff02::1%eth0]:4341"), []byte{0, 0, 0}},
		{t0, netip.MustParseAddrPort("[::ffff:10.0.0.1]:4342"), netip.MustParseAddrPort("10.0.0.2:4342"), []byte("mapped")},
	}
}

func TestWriterRoundTrip(t *testing.T) {
	cases := roundTripCases()
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if err := w.WriteUDP(c.ts, c.src, c.dst, c.payload); err != nil {
			t.Fatalf("WriteUDP(%v -> %v): %v", c.src, c.dst, err)
		}
	}
	file := buf.Bytes()

	// Checksums and lengths, verified without the package's code.
	frames, cis := rawFrames(t, file)
	if len(frames) != len(cases) {
		t.Fatalf("%d records, want %d", len(frames), len(cases))
	}
	for i, c := range cases {
		verifyFrame(t, frames[i], c.src, c.dst, c.payload)
		if !cis[i].Timestamp.Equal(c.ts) || cis[i].CaptureLength != len(frames[i]) || cis[i].Length != len(frames[i]) {
			t.Errorf("record %d: capture info %+v", i, cis[i])
		}
	}

	// Read back with the package's reader.
	r := mustReader(t, file)
	res := readAll(t, r)
	if len(res) != len(cases) {
		t.Fatalf("%d datagrams, want %d", len(res), len(cases))
	}
	for i, c := range cases {
		d := res[i].d
		if res[i].err != nil {
			t.Fatalf("datagram %d: %v", i, res[i].err)
		}
		wantSrc := netip.AddrPortFrom(c.src.Addr().Unmap().WithZone(""), c.src.Port())
		wantDst := netip.AddrPortFrom(c.dst.Addr().Unmap().WithZone(""), c.dst.Port())
		if d.Frame != i+1 || d.Src != wantSrc || d.Dst != wantDst || !d.Time.Equal(c.ts) ||
			!bytes.Equal(d.Payload, c.payload) || d.TTL != 64 || d.TOS != 0 || d.Fragmented {
			t.Errorf("datagram %d: got %v -> %v at %v ttl %d payload %d bytes; want %v -> %v at %v payload %d bytes",
				i, d.Src, d.Dst, d.Time, d.TTL, len(d.Payload), wantSrc, wantDst, c.ts, len(c.payload))
		}
	}
}

// The writer's frames must equal what gopacket's serializer builds from
// the same header fields.
func TestWriterMatchesGopacket(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	cases := roundTripCases()
	for _, c := range cases {
		if err := w.WriteUDP(c.ts, c.src, c.dst, c.payload); err != nil {
			t.Fatal(err)
		}
	}
	frames, _ := rawFrames(t, buf.Bytes())
	id := uint16(1)
	for i, c := range cases {
		sa, da := c.src.Addr().Unmap(), c.dst.Addr().Unmap()
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr(writerSrcMAC[:]), DstMAC: net.HardwareAddr(writerDstMAC[:])}
		udp := &layers.UDP{SrcPort: layers.UDPPort(c.src.Port()), DstPort: layers.UDPPort(c.dst.Port())}
		var ip gopacket.SerializableLayer
		if sa.Is4() {
			eth.EthernetType = layers.EthernetTypeIPv4
			v4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: id, Protocol: layers.IPProtocolUDP, SrcIP: sa.AsSlice(), DstIP: da.AsSlice()}
			id++
			_ = udp.SetNetworkLayerForChecksum(v4)
			ip = v4
		} else {
			eth.EthernetType = layers.EthernetTypeIPv6
			v6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: sa.AsSlice(), DstIP: da.AsSlice()}
			_ = udp.SetNetworkLayerForChecksum(v6)
			ip = v6
		}
		sb := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip, udp, gopacket.Payload(c.payload)); err != nil {
			t.Fatal(err)
		}
		want := sb.Bytes()
		got := frames[i]
		// gopacket pads Ethernet frames to the 60-byte minimum; the Writer
		// writes the frame as the sender's capture shows it, unpadded.
		if len(want) == 60 && len(got) < 60 && bytes.Equal(want[len(got):], make([]byte, 60-len(got))) {
			want = want[:len(got)]
		}
		// gopacket sends a computed zero UDP checksum as 0; RFC 768 says
		// 0xFFFF. Compare everything but a checksum that differs that way.
		if len(got) == len(want) {
			off := len(got) - len(c.payload) - 2
			if got[off] == 0xff && got[off+1] == 0xff && want[off] == 0 && want[off+1] == 0 {
				want = append([]byte(nil), want...)
				want[off], want[off+1] = 0xff, 0xff
			}
		}
		if !bytes.Equal(got, want) {
			t.Errorf("case %d: frame\n%x\nwant (gopacket)\n%x", i, got, want)
		}
	}
}

// A UDP checksum that computes to zero must go out as 0xFFFF (zero means
// "no checksum" in IPv4 and is forbidden in IPv6).
func TestWriterZeroChecksum(t *testing.T) {
	for _, pair := range [][2]netip.AddrPort{{addr4a, addr4b}, {addr6a, addr6b}} {
		src, dst := pair[0], pair[1]
		// Choose the last payload word so the one's complement sum of
		// pseudo-header, header and payload is 0xFFFF: checksum 0.
		payload := []byte{0x12, 0x34, 0, 0}
		udpLen := 8 + len(payload)
		hdr := []byte{byte(src.Port() >> 8), byte(src.Port()), byte(dst.Port() >> 8), byte(dst.Port()), byte(udpLen >> 8), byte(udpLen), 0, 0}
		s := naiveSum(pseudoHeader(src.Addr(), dst.Addr(), udpLen), hdr, payload)
		last := 0xffff - s
		payload[2], payload[3] = byte(last>>8), byte(last)
		if naiveSum(pseudoHeader(src.Addr(), dst.Addr(), udpLen), hdr, payload) != 0xffff {
			t.Fatal("test setup: payload does not give a zero checksum")
		}
		var buf bytes.Buffer
		w, err := NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteUDP(t0, src, dst, payload); err != nil {
			t.Fatal(err)
		}
		frames, _ := rawFrames(t, buf.Bytes())
		if ck := verifyFrame(t, frames[0], src, dst, payload); ck != 0xffff {
			t.Errorf("%v: checksum %#04x, want 0xffff", src, ck)
		}
	}
}

func TestWriterIPPacketAndFrame(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	v4 := udpPacket(t, addr4a, addr4b, []byte("ecm"))
	v6 := udpPacket(t, addr6a, addr6b, []byte("data"))
	arp := ether(0x0806, make([]byte, 28))
	for _, step := range []func() error{
		func() error { return w.WriteIPPacket(t0, v4) },
		func() error { return w.WriteIPPacket(t0.Add(1), v6) },
		func() error { return w.WriteFrame(t0.Add(2), arp) },
		func() error { return w.WriteFrame(t0.Add(3), ether(0x0800, v4, 0x8100)) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	frames, _ := rawFrames(t, buf.Bytes())
	if !bytes.Equal(frames[0][14:], v4) || frames[0][12] != 0x08 || frames[0][13] != 0x00 {
		t.Errorf("IPv4 frame %x", frames[0])
	}
	if !bytes.Equal(frames[1][14:], v6) || frames[1][12] != 0x86 || frames[1][13] != 0xdd {
		t.Errorf("IPv6 frame %x", frames[1])
	}
	if !bytes.Equal(frames[2], arp) {
		t.Errorf("raw frame %x, want %x", frames[2], arp)
	}
	res := readAll(t, mustReader(t, buf.Bytes()))
	if len(res) != 3 || res[0].d.Frame != 1 || string(res[0].d.Payload) != "ecm" ||
		res[1].d.Frame != 2 || string(res[1].d.Payload) != "data" || res[2].d.Frame != 4 || string(res[2].d.Payload) != "ecm" {
		t.Errorf("read back %+v", res)
	}
}

func TestWriterErrors(t *testing.T) {
	w, err := NewWriter(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		err  error
	}{
		{"mixed families", w.WriteUDP(t0, addr4a, addr6b, nil)},
		{"invalid address", w.WriteUDP(t0, netip.AddrPort{}, addr4b, nil)},
		{"IPv4 too big", w.WriteUDP(t0, addr4a, addr4b, make([]byte, 65535-28+1))},
		{"IPv6 too big", w.WriteUDP(t0, addr6a, addr6b, make([]byte, 65535-8+1))},
		{"before 1970", w.WriteUDP(time.Unix(-1, 0), addr4a, addr4b, nil)},
		{"zero time", w.WriteUDP(time.Time{}, addr4a, addr4b, nil)},
		{"after 2106", w.WriteFrame(time.Unix(1<<32, 0), []byte{1})},
		{"frame too long", w.WriteFrame(t0, make([]byte, WriterSnaplen+1))},
		{"empty IP packet", w.WriteIPPacket(t0, nil)},
		{"IP version 5", w.WriteIPPacket(t0, []byte{0x50, 0, 0, 0})},
		{"zero Writer", (&Writer{}).WriteFrame(t0, []byte{1})},
	} {
		if !errors.Is(c.err, ErrWrite) {
			t.Errorf("%s: %v, want ErrWrite", c.name, c.err)
		}
	}
	// The largest datagrams fit.
	if err := w.WriteUDP(t0, addr4a, addr4b, make([]byte, 65535-28)); err != nil {
		t.Errorf("largest IPv4 datagram: %v", err)
	}
	if err := w.WriteUDP(t0, addr6a, addr6b, make([]byte, 65535-8)); err != nil {
		t.Errorf("largest IPv6 datagram: %v", err)
	}
	if _, err := NewWriter(failWriter{}); err == nil {
		t.Error("NewWriter on a failing writer succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestCreateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.pcap")
	w, err := CreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := w.WriteUDP(t0.Add(time.Duration(i)*time.Millisecond), addr4a, addr4b, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.WriteUDP(t0, addr4a, addr4b, nil); !errors.Is(err, ErrWrite) {
		t.Fatalf("WriteUDP after Close: %v, want ErrWrite", err)
	}
	r, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res := readAll(t, r)
	if len(res) != 100 {
		t.Fatalf("%d datagrams, want 100", len(res))
	}
	for i, x := range res {
		if x.err != nil || x.d.Payload[0] != byte(i) || !x.d.Time.Equal(t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("datagram %d: %+v %v", i, x.d, x.err)
		}
	}
	if _, err := CreateFile(filepath.Join(t.TempDir(), "no", "such", "dir.pcap")); err == nil {
		t.Error("CreateFile in a missing directory succeeded")
	}
}

func TestWriterAllocations(t *testing.T) {
	w, err := NewWriter(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1400)
	for _, pair := range [][2]netip.AddrPort{{addr4a, addr4b}, {addr6a, addr6b}} {
		allocs := testing.AllocsPerRun(100, func() {
			if err := w.WriteUDP(t0, pair[0], pair[1], payload); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: WriteUDP allocates %.1f times per call, want 0", pair[0], allocs)
		}
	}
}

func BenchmarkWriteUDP(b *testing.B) {
	w, err := NewWriter(io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1400)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteUDP(t0, addr4a, addr4b, payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1400)
	for i := 0; i < 1000; i++ {
		if err := w.WriteUDP(t0, addr4a, addr4b, payload); err != nil {
			b.Fatal(err)
		}
	}
	file := buf.Bytes()
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 1000 {
			b.Fatalf("%d datagrams", n)
		}
	}
}
