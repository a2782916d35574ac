package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// WriterSnaplen is the snapshot length the Writer declares in the file
// header (libpcap's maximum); no frame longer than this can be written.
const WriterSnaplen = 262144

// Header field values of the frames the Writer builds.
var (
	// writerSrcMAC and writerDstMAC are locally administered unicast
	// addresses.
	writerSrcMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	writerDstMAC = [6]byte{0x02, 0, 0, 0, 0, 0x02}
)

const (
	writerTTL        = 64 // IPv4 TTL and IPv6 Hop Limit
	ethHeaderLen     = 14
	ipv4HeaderLen    = 20
	ipv6HeaderLen    = 40
	udpHeaderLen     = 8
	maxIPv4Total     = 65535
	maxIPv6Payload   = 65535
	maxPcapTimestamp = math.MaxUint32
)

// Writer writes a classic pcap file (little-endian, nanosecond timestamps,
// link type Ethernet). Each Write call writes one record straight through
// to the underlying writer. A Writer is not safe for concurrent use.
type Writer struct {
	pw     *pcapgo.Writer
	bw     *bufio.Writer // set by CreateFile
	closer io.Closer     // set by CreateFile
	buf    []byte        // frame under construction, reused
	ipID   uint16        // next IPv4 Identification
}

// NewWriter writes the pcap file header to w and returns a Writer that
// appends records to it.
func NewWriter(w io.Writer) (*Writer, error) {
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(WriterSnaplen, layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("capture: writing pcap header: %w", err)
	}
	return &Writer{pw: pw, ipID: 1}, nil
}

// CreateFile creates (or truncates) the file at path and returns a
// buffered Writer on it. Close the Writer to flush and close the file.
func CreateFile(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	bw := bufio.NewWriter(f)
	w, err := NewWriter(bw)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.bw, w.closer = bw, f
	return w, nil
}

// Close flushes and closes the file when CreateFile made the Writer, after
// which every Write fails; for a Writer from NewWriter it does nothing.
func (w *Writer) Close() error {
	if w.closer == nil {
		return nil
	}
	ferr := w.bw.Flush()
	cerr := w.closer.Close()
	w.closer, w.bw, w.pw = nil, nil, nil
	if ferr != nil {
		return fmt.Errorf("capture: %w", ferr)
	}
	if cerr != nil {
		return fmt.Errorf("capture: %w", cerr)
	}
	return nil
}

// WriteFrame writes frame, an Ethernet frame, as one record captured at t
// in full. It does not look inside the frame, so it can write malformed
// frames on purpose.
func (w *Writer) WriteFrame(t time.Time, frame []byte) error {
	if w.pw == nil {
		return fmt.Errorf("%w: Writer closed or not made by NewWriter or CreateFile", ErrWrite)
	}
	if len(frame) > WriterSnaplen {
		return fmt.Errorf("%w: frame of %d bytes exceeds the snapshot length %d", ErrWrite, len(frame), WriterSnaplen)
	}
	if s := t.Unix(); s < 0 || s > maxPcapTimestamp {
		return fmt.Errorf("%w: time %v outside the pcap range 1970..2106", ErrWrite, t)
	}
	ci := gopacket.CaptureInfo{Timestamp: t, CaptureLength: len(frame), Length: len(frame)}
	if err := w.pw.WritePacket(ci, frame); err != nil {
		return fmt.Errorf("capture: writing record: %w", err)
	}
	return nil
}

// WriteIPPacket writes pkt, a complete IPv4 or IPv6 packet, wrapped in an
// Ethernet header whose EtherType follows the version in pkt's first
// nibble. The packet itself is written as given.
func (w *Writer) WriteIPPacket(t time.Time, pkt []byte) error {
	if len(pkt) == 0 {
		return fmt.Errorf("%w: empty IP packet", ErrWrite)
	}
	var etherType uint16
	switch v := pkt[0] >> 4; v {
	case 4:
		etherType = etherTypeIPv4
	case 6:
		etherType = etherTypeIPv6
	default:
		return fmt.Errorf("%w: IP version %d in the first nibble, want 4 or 6", ErrWrite, v)
	}
	b := w.ethernet(etherType)
	b = append(b, pkt...)
	w.buf = b
	return w.WriteFrame(t, b)
}

// WriteUDP writes one UDP datagram from src to dst captured at t, as an
// Ethernet frame holding an IPv4 packet (TTL 64, header checksum) or an
// IPv6 packet (Hop Limit 64), with the UDP length and checksum filled in.
// Both addresses must be of the same family; IPv4-mapped IPv6 addresses
// count as IPv4.
func (w *Writer) WriteUDP(t time.Time, src, dst netip.AddrPort, payload []byte) error {
	sa, da := src.Addr().Unmap(), dst.Addr().Unmap()
	if !sa.IsValid() || !da.IsValid() {
		return fmt.Errorf("%w: invalid address %v -> %v", ErrWrite, src, dst)
	}
	udpLen := udpHeaderLen + len(payload)
	var b []byte
	switch {
	case sa.Is4() && da.Is4():
		if ipv4HeaderLen+udpLen > maxIPv4Total {
			return fmt.Errorf("%w: %d-byte payload exceeds the IPv4 maximum", ErrWrite, len(payload))
		}
		b = w.ethernet(etherTypeIPv4)
		ip := len(b)
		b = append(b,
			0x45, 0, // version 4, IHL 5; TOS 0
			0, 0, // total length
			byte(w.ipID>>8), byte(w.ipID), // identification
			0, 0, // flags, fragment offset
			writerTTL, protoUDP,
			0, 0, // header checksum
		)
		s4, d4 := sa.As4(), da.As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
		binary.BigEndian.PutUint16(b[ip+2:], uint16(ipv4HeaderLen+udpLen))
		binary.BigEndian.PutUint16(b[ip+10:], checksum(b[ip:ip+ipv4HeaderLen], 0))
		w.ipID++
		b = appendUDP(b, src.Port(), dst.Port(), payload, pseudoHeaderSum(sa, da, udpLen))
	case sa.Is6() && da.Is6():
		if udpLen > maxIPv6Payload {
			return fmt.Errorf("%w: %d-byte payload exceeds the IPv6 maximum without jumbograms", ErrWrite, len(payload))
		}
		b = w.ethernet(etherTypeIPv6)
		b = append(b,
			0x60, 0, 0, 0, // version 6, traffic class 0, flow label 0
			byte(udpLen>>8), byte(udpLen), // payload length
			protoUDP, writerTTL,
		)
		s16, d16 := sa.As16(), da.As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
		b = appendUDP(b, src.Port(), dst.Port(), payload, pseudoHeaderSum(sa, da, udpLen))
	default:
		return fmt.Errorf("%w: address families differ: %v -> %v", ErrWrite, src, dst)
	}
	w.buf = b
	return w.WriteFrame(t, b)
}

// ethernet starts a frame in the reused buffer with an Ethernet header.
func (w *Writer) ethernet(etherType uint16) []byte {
	b := append(w.buf[:0], writerDstMAC[:]...)
	b = append(b, writerSrcMAC[:]...)
	return append(b, byte(etherType>>8), byte(etherType))
}

// appendUDP appends a UDP header and payload to b, with the checksum over
// the pseudo-header sum pseudo, the header and the payload. A computed
// checksum of zero is sent as 0xFFFF (RFC 768; RFC 8200 section 8.1).
func appendUDP(b []byte, srcPort, dstPort uint16, payload []byte, pseudo uint64) []byte {
	start := len(b)
	n := udpHeaderLen + len(payload)
	b = append(b,
		byte(srcPort>>8), byte(srcPort),
		byte(dstPort>>8), byte(dstPort),
		byte(n>>8), byte(n),
		0, 0,
	)
	b = append(b, payload...)
	c := checksum(b[start:], pseudo)
	if c == 0 {
		c = 0xFFFF
	}
	binary.BigEndian.PutUint16(b[start+6:], c)
	return b
}
