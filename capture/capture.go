// Package capture reads and writes packet captures of LISP traffic and runs
// tshark as an independent decoder.
//
// The reader ([Reader], from [ReadFile] or [NewReader]) takes classic pcap
// files (either byte order, microsecond or nanosecond timestamps) and pcapng
// files, optionally gzip-compressed, with Ethernet (802.1Q/802.1ad VLAN
// tags), Linux cooked (SLL and SLL2), raw IPv4/IPv6, BSD NULL and LOOP link
// layers, and returns each IPv4 or IPv6 UDP datagram in file order. It knows
// nothing about LISP itself: the payload bytes go to the wire package.
//
// The writer ([Writer]) produces classic pcap files with Ethernet framing and
// correct IPv4 header and UDP checksums, for tests, the lab and
// "lispctl decode".
//
// The tshark helpers ([LookTshark], [Tshark], [TsharkPackets]) run the
// Wireshark command-line decoder on a capture and return its view of every
// packet as flat field maps, so tests can compare our encoding with an
// implementation we did not write.
package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// LISP UDP ports (RFC 9300 section 5.3, RFC 9301 section 5).
const (
	// DataPort is the UDP port of LISP-encapsulated data packets.
	DataPort = 4341
	// ControlPort is the UDP port of LISP control messages.
	ControlPort = 4342
)

// Datagram is one UDP datagram found in a capture.
type Datagram struct {
	// Frame is the 1-based number of the packet record in the file that
	// completed this datagram; it matches the frame numbers Wireshark and
	// tshark show.
	Frame int
	// FirstFrame is the frame number of the first fragment when the
	// datagram was reassembled from IP fragments; otherwise it equals Frame.
	FirstFrame int
	// Time is the capture timestamp of Frame.
	Time time.Time
	// Interface is the pcapng interface index of Frame (0 for classic pcap).
	Interface int
	// LinkType is the link-layer header type of Frame.
	LinkType layers.LinkType
	// Length is the original length of Frame on the wire, link layer
	// included.
	Length int
	// Src and Dst are the IP addresses and UDP ports. IPv4 addresses are
	// 4-byte addresses; IPv6 addresses are 16-byte addresses, as they
	// appeared on the wire.
	Src, Dst netip.AddrPort
	// TTL is the IPv4 Time to Live or the IPv6 Hop Limit.
	TTL uint8
	// TOS is the IPv4 Type of Service octet or the IPv6 Traffic Class
	// (DSCP and ECN).
	TOS uint8
	// Checksum is the UDP checksum field as captured (0: none sent). The
	// reader does not verify it: captures taken on the sending host often
	// hold checksums the NIC fills in later.
	Checksum uint16
	// Payload is the UDP payload. It is owned by the caller: the reader
	// never reuses it. For a first fragment that was not reassembled it
	// holds only the bytes present in that fragment.
	Payload []byte
	// Fragmented reports that the IP packet was a fragment: either the
	// first fragment of a datagram that was not reassembled (Payload is
	// incomplete), or a datagram reassembled from fragments (FirstFrame
	// names where it started).
	Fragmented bool
}

// IsLISP reports whether d uses a LISP UDP port (4341 data or 4342
// control) as its source or destination port.
func IsLISP(d Datagram) bool {
	for _, p := range [...]uint16{d.Src.Port(), d.Dst.Port()} {
		if p == DataPort || p == ControlPort {
			return true
		}
	}
	return false
}

// Errors returned by this package. Frame-level problems come wrapped in a
// *FrameError; test for the cause with errors.Is.
var (
	// ErrFormat means the input is not a pcap or pcapng file the reader
	// understands (bad magic number, version or header).
	ErrFormat = errors.New("capture: not a supported pcap or pcapng file")
	// ErrCorrupt means the file structure is damaged or cut short in the
	// middle of a record, so no further frame can be found. It is final:
	// every later call to Next returns the same error.
	ErrCorrupt = errors.New("capture: corrupt capture file")
	// ErrLinkType means the link-layer header type is not one the reader
	// decodes.
	ErrLinkType = errors.New("capture: unsupported link type")
	// ErrTruncated means the frame was cut short by the capture (its
	// captured length is below its original length), so the datagram is
	// incomplete.
	ErrTruncated = errors.New("capture: frame truncated by the snapshot length")
	// ErrMalformed means the link, IP or UDP header is inconsistent with
	// itself or with the captured bytes.
	ErrMalformed = errors.New("capture: malformed packet")
	// ErrFragment means the frame is an IP fragment that the reader did
	// not reassemble: a non-first fragment, or, with reassembly on, a
	// fragment that arrived out of order or never completed.
	ErrFragment = errors.New("capture: fragment, not reassembled")
	// ErrWrite means the writer refused its arguments.
	ErrWrite = errors.New("capture: cannot write packet")
)

// FrameError reports a frame that could not be decoded. The reader skips
// the frame and continues with the next one on the next call to Next.
type FrameError struct {
	// Frame is the 1-based frame number in the file.
	Frame int
	// Err is the cause; it wraps one of the package's sentinel errors.
	Err error
}

// Error returns "capture: frame N: cause".
func (e *FrameError) Error() string {
	return fmt.Sprintf("capture: frame %d: %s", e.Frame, strings.TrimPrefix(e.Err.Error(), "capture: "))
}

// Unwrap returns the cause.
func (e *FrameError) Unwrap() error { return e.Err }

// malformed builds an error wrapping ErrMalformed with a description.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
