package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// File magic numbers, as the first four bytes read little-endian.
const (
	magicPcapMicro        = 0xA1B2C3D4
	magicPcapMicroSwapped = 0xD4C3B2A1
	magicPcapNano         = 0xA1B23C4D
	magicPcapNanoSwapped  = 0x4D3CB2A1
	magicPcapng           = 0x0A0D0D0A // Section Header Block type, a palindrome
	magicGzip             = 0x8B1F     // first two bytes, little-endian
)

// Stats counts what a Reader has seen so far.
type Stats struct {
	// Frames is the number of packet records read.
	Frames int
	// Datagrams is the number of UDP datagrams Next returned.
	Datagrams int
	// Skipped is the number of frames skipped silently because they hold
	// no IPv4 or IPv6 UDP (ARP, TCP, ICMP, ...).
	Skipped int
	// Errors is the number of *FrameError values Next returned.
	Errors int
	// Fragments is the number of IP fragments of UDP datagrams seen.
	Fragments int
	// Reassembled is the number of datagrams rebuilt from fragments (only
	// with WithReassembly).
	Reassembled int
}

// Option configures a Reader.
type Option func(*Reader)

// WithReassembly makes the reader rebuild UDP datagrams from IPv4 and IPv6
// fragments that appear in order (first fragment first, each next fragment
// starting where the previous one ended). The rebuilt datagram is returned
// at its last fragment, with Fragmented set and FirstFrame naming its first
// fragment; the earlier fragments yield nothing. A fragment that does not
// fit (out of order, overlapping, no first fragment) and a datagram whose
// last fragment never comes yield a *FrameError wrapping ErrFragment; the
// latter at the end of the file, naming the first fragment's frame. At most
// 64 datagrams are pending at a time; beyond that the oldest is dropped with
// such an error.
//
// Without this option, a first fragment is returned on its own with
// Fragmented set and an incomplete Payload, and every later fragment yields
// a *FrameError wrapping ErrFragment.
func WithReassembly() Option {
	return func(r *Reader) { r.reasm = newReassembler() }
}

// Reader returns the UDP datagrams of a pcap or pcapng capture in file
// order. It is not safe for concurrent use.
type Reader struct {
	closer io.Closer // the file ReadFile opened; nil for NewReader
	src    packetSource
	frame  int // number of the last record read
	stats  Stats
	reasm  *reassembler // nil unless WithReassembly
	queued []error      // frame errors to return before reading on
	err    error        // final error (io.EOF or ErrCorrupt), sticky
}

// packetSource is a pcap or pcapng record reader.
type packetSource interface {
	next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error)
}

// pcapSource reads classic pcap files.
type pcapSource struct {
	r  *pcapgo.Reader
	lt layers.LinkType
}

func (s *pcapSource) next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := s.r.ReadPacketData()
	return data, ci, s.lt, err
}

// pcapngSource reads pcapng files, each packet with its interface's link
// type.
type pcapngSource struct {
	r *pcapgo.NgReader
}

func (s *pcapngSource) next() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	data, ci, err := s.r.ReadPacketData()
	if err != nil {
		return nil, ci, 0, err
	}
	lt, ok := layers.LinkType(0), false
	if len(ci.AncillaryData) > 0 {
		lt, ok = ci.AncillaryData[0].(layers.LinkType)
	}
	if !ok {
		return nil, ci, 0, errors.New("pcapng reader gave no link type")
	}
	return data, ci, lt, nil
}

// ReadFile opens a capture file; see NewReader. Close the Reader to close
// the file.
func ReadFile(path string, opts ...Option) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	r, err := NewReader(f, opts...)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	r.closer = f
	return r, nil
}

// NewReader reads a capture from rd. It detects classic pcap (either byte
// order, microsecond or nanosecond timestamps), pcapng and gzip-compressed
// forms of both, and reads the file header. A classic pcap file with a link
// type the reader does not decode fails here with ErrLinkType; a pcapng
// interface with such a link type makes each of its frames a *FrameError.
func NewReader(rd io.Reader, opts ...Option) (*Reader, error) {
	br := bufio.NewReader(rd)
	magic, err := br.Peek(4)
	if len(magic) >= 2 && binary.LittleEndian.Uint16(magic) == magicGzip {
		zr, zerr := gzip.NewReader(br)
		if zerr != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrFormat, zerr)
		}
		br = bufio.NewReader(zr)
		magic, err = br.Peek(4)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: file holds %d bytes, too short for a header", ErrFormat, len(magic))
		}
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	r := &Reader{}
	switch m := binary.LittleEndian.Uint32(magic); m {
	case magicPcapMicro, magicPcapMicroSwapped, magicPcapNano, magicPcapNanoSwapped:
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: pcap header: %v", ErrFormat, err)
		}
		lt := pr.LinkType()
		if !supportedLinkType(lt) {
			return nil, fmt.Errorf("%w %d (%s)", ErrLinkType, uint16(lt), lt)
		}
		r.src = &pcapSource{r: pr, lt: lt}
	case magicPcapng:
		nr, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{
			WantMixedLinkType:  true,
			SkipUnknownVersion: true,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: pcapng header: %v", ErrFormat, err)
		}
		r.src = &pcapngSource{r: nr}
	default:
		return nil, fmt.Errorf("%w: unknown magic number %#08x", ErrFormat, m)
	}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Close closes the file if ReadFile opened it; for a Reader from NewReader
// it does nothing.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	return nil
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.stats }

// Next returns the next UDP datagram in file order. It returns io.EOF at
// the end of the file. A frame that cannot be decoded yields a *FrameError
// naming it, and the next call continues with the following frame. Frames
// holding no IP UDP are skipped silently (see Stats). A damaged file
// structure yields an error wrapping ErrCorrupt, which is final, like
// io.EOF: every later call returns it again.
func (r *Reader) Next() (Datagram, error) {
	for {
		if len(r.queued) > 0 {
			err := r.queued[0]
			r.queued = r.queued[1:]
			r.stats.Errors++
			return Datagram{}, err
		}
		if r.err != nil {
			return Datagram{}, r.err
		}
		data, ci, lt, err := r.src.next()
		if err != nil {
			if err == io.EOF {
				r.err = io.EOF
			} else {
				r.err = fmt.Errorf("%w: record %d: %v", ErrCorrupt, r.frame+1, err)
			}
			if r.reasm != nil {
				r.queued = append(r.queued, r.reasm.flush()...)
			}
			continue
		}
		r.frame++
		r.stats.Frames++
		d, ok, err := r.decode(data, ci, lt)
		switch {
		case err != nil:
			r.stats.Errors++
			return Datagram{}, &FrameError{Frame: r.frame, Err: err}
		case ok:
			r.stats.Datagrams++
			return d, nil
		}
	}
}

// decode turns one frame into a datagram. It returns ok false with a nil
// error when the frame holds no UDP, or holds a fragment kept for
// reassembly.
func (r *Reader) decode(data []byte, ci gopacket.CaptureInfo, lt layers.LinkType) (Datagram, bool, error) {
	truncated := ci.CaptureLength < ci.Length
	truncErr := func() error {
		return fmt.Errorf("%w: captured %d of %d bytes", ErrTruncated, ci.CaptureLength, ci.Length)
	}
	ipb, version, err := linkPayload(lt, data)
	if errors.Is(err, ErrLinkType) {
		return Datagram{}, false, fmt.Errorf("%w %d (%s)", ErrLinkType, uint16(lt), lt)
	}
	if err != nil {
		if truncated {
			return Datagram{}, false, truncErr()
		}
		return Datagram{}, false, err
	}
	var p ipInfo
	switch version {
	case 4:
		p, err = decodeIPv4(ipb, truncated)
	case 6:
		p, err = decodeIPv6(ipb, truncated)
	default:
		r.stats.Skipped++
		return Datagram{}, false, nil
	}
	if err != nil {
		if truncated {
			return Datagram{}, false, truncErr()
		}
		return Datagram{}, false, err
	}
	if !p.udp {
		r.stats.Skipped++
		return Datagram{}, false, nil
	}
	if truncated {
		return Datagram{}, false, truncErr()
	}
	d := Datagram{
		Frame:      r.frame,
		FirstFrame: r.frame,
		Time:       ci.Timestamp,
		Interface:  ci.InterfaceIndex,
		LinkType:   lt,
		Length:     ci.Length,
		TTL:        p.ttl,
		TOS:        p.tos,
	}
	payload := p.payload
	if p.fragment {
		r.stats.Fragments++
		d.Fragmented = true
		switch {
		case r.reasm != nil:
			whole, first, done, queued, err := r.reasm.add(r.frame, p)
			r.queued = append(r.queued, queued...)
			if err != nil || !done {
				return Datagram{}, false, err
			}
			r.stats.Reassembled++
			payload, d.FirstFrame = whole, first
		case p.fragOff != 0:
			return Datagram{}, false, fmt.Errorf("%w: offset %d of datagram ID %#x", ErrFragment, p.fragOff, p.id)
		default:
			u, err := decodeUDP(payload, true)
			if err != nil {
				return Datagram{}, false, err
			}
			d.fill(p, u)
			return d, true, nil
		}
	}
	u, err := decodeUDP(payload, false)
	if err != nil {
		return Datagram{}, false, err
	}
	d.fill(p, u)
	return d, true, nil
}

// fill copies addresses, ports, checksum and payload into d.
func (d *Datagram) fill(p ipInfo, u udpHeader) {
	d.Src = netip.AddrPortFrom(p.src, u.srcPort)
	d.Dst = netip.AddrPortFrom(p.dst, u.dstPort)
	d.Checksum = u.checksum
	d.Payload = u.payload
}
