package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/capture"
)

func init() { subcommands = append(subcommands, addDecodeCommand) }

// decodeOptions are the flags of "lispctl decode".
type decodeOptions struct {
	pcap string
	hex  []string
	port int
}

func addDecodeCommand(root *cobra.Command) {
	o := &decodeOptions{}
	cmd := &cobra.Command{
		Use:   "decode (--pcap FILE | --hex BYTES)",
		Short: "Decode LISP control messages and data packets from a capture or hex bytes",
		Long: `Decode every LISP packet of a pcap or pcapng capture (UDP 4342 control
messages and UDP 4341 data packets, over IPv4 and IPv6; optionally gzipped;
"-" reads standard input), or the LISP message given as hex bytes with --hex.

Each packet is printed as a block: frame number, capture time, source ->
destination, message type, then every field: flags by their RFC letters and
names, the nonce, key ID and algorithm, authentication data, the records with
their EID-prefix and instance-ID, TTL, action, A bit and map-version, and each
locator's priority, weight, multicast priority and weight and L/p/R bits. An
Encapsulated Control Message shows its inner IP/UDP header and the inner
message; a data packet its LISP header and a summary of the inner IP packet.
With --json, one JSON object per line (JSON Lines) per packet, with stable
snake_case keys: frame, time, src, dst, length, type, then the fields.

A datagram is a control message when its destination port is 4342, a data
packet when it is 4341, and otherwise by its source port. Other UDP
datagrams and non-UDP frames are skipped; a count goes to stderr. IP
fragments are reassembled.

--hex takes a LISP control message (the UDP payload on port 4342) or a LISP
data packet (the UDP payload on port 4341: the LISP header and the inner IP
packet); spaces, colons, dashes and a leading 0x are allowed. --port 4342 or
4341 says which; without it the bytes are tried as a control message, then as
a data packet. --hex may be repeated: each value is one packet, numbered
from 1.

A packet that cannot be decoded is reported with its frame number, the error
and its bytes (in JSON: "error" and "payload_hex"), and decoding goes on.

Exit status: 0 when every LISP packet decoded; 1 when any packet (or capture
frame) could not be decoded, or the file cannot be read; 2 on bad arguments.`,
		Example: `  lispctl decode --pcap lisp.pcapng
  lispctl decode --pcap lisp.pcap --json | jq 'select(.type == "Map-Register")'
  tcpdump -i eth0 -w - udp port 4342 | lispctl decode --pcap -
  lispctl decode --hex '10000001 0123456789abcdef 0001 0a000001 0001 c0000201 0018 0001 0a010200'
  lispctl decode --port 4341 --hex '880000010003e801 4500001c00000000400100000a0101010a020202 0800000000010001'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDecode(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.pcap, "pcap", "", "pcap or pcapng capture to decode (\"-\": standard input)")
	f.StringArrayVar(&o.hex, "hex", nil, "a LISP control message or data packet as hex bytes (repeatable)")
	f.IntVar(&o.port, "port", 0, "with --hex: 4342 for a control message, 4341 for a data packet (default: try both)")
	root.AddCommand(cmd)
}

// decodeCounts counts what a decode run saw.
type decodeCounts struct {
	packets    int // LISP packets and unreadable frames reported
	failed     int // of those, how many could not be decoded
	unreadable int // capture frames the reader could not decode (counted in packets and failed too)
	other      int // UDP datagrams on other ports, skipped
}

func runDecode(cmd *cobra.Command, o *decodeOptions) error {
	switch {
	case o.pcap == "" && len(o.hex) == 0:
		return usageErrorf("decode: give --pcap FILE or --hex BYTES")
	case o.pcap != "" && len(o.hex) > 0:
		return usageErrorf("decode: give --pcap or --hex, not both")
	case o.port != 0 && o.port != capture.DataPort && o.port != capture.ControlPort:
		return usageErrorf("decode: --port must be %d (control) or %d (data), not %d",
			capture.ControlPort, capture.DataPort, o.port)
	case o.port != 0 && o.pcap != "":
		return usageErrorf("decode: --port applies to --hex; a capture's datagrams carry their own ports")
	}
	bw := bufio.NewWriter(cmd.OutOrStdout())
	pr := &packetPrinter{w: bw, json: jsonOutput(cmd), flushEach: o.pcap == "-"}
	var (
		n   decodeCounts
		err error
	)
	if o.pcap != "" {
		n, err = decodeCapture(cmd, o.pcap, pr)
	} else {
		n, err = decodeHexArgs(o.hex, o.port, pr)
	}
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("decode: writing output: %w", ferr)
	}
	if err != nil {
		return err
	}
	if n.failed > 0 {
		return fmt.Errorf("decode: %d of %d packets could not be decoded", n.failed, n.packets)
	}
	return nil
}

// packetPrinter writes packet views as text blocks or JSON Lines. With
// flushEach it flushes after each packet, so that a live capture piped in
// on stdin shows at once.
type packetPrinter struct {
	w         *bufio.Writer
	json      bool
	flushEach bool
}

func (pr *packetPrinter) print(p *packetView) error {
	var err error
	if pr.json {
		err = writeJSONLine(pr.w, p)
	} else {
		err = writePacketText(pr.w, p)
	}
	if err == nil && pr.flushEach {
		err = pr.w.Flush()
	}
	if err != nil {
		return fmt.Errorf("decode: writing output: %w", err)
	}
	return nil
}

// decodeHexArgs decodes each --hex value as one packet. All values are
// checked before anything is printed.
func decodeHexArgs(args []string, port int, pr *packetPrinter) (decodeCounts, error) {
	var n decodeCounts
	payloads := make([][]byte, len(args))
	for i, s := range args {
		b, err := parseHexBytes(s)
		if err != nil {
			if len(args) > 1 {
				return n, usageErrorf("decode: --hex value %d: %v", i+1, err)
			}
			return n, usageErrorf("decode: --hex: %v", err)
		}
		payloads[i] = b
	}
	for i, b := range payloads {
		p := viewHex(i+1, b, port)
		n.packets++
		if p.failed() {
			n.failed++
		}
		if err := pr.print(p); err != nil {
			return n, err
		}
	}
	return n, nil
}

// viewHex decodes one --hex payload as a control message (port 4342), a
// data packet (port 4341), or, for port 0, whichever of the two succeeds,
// control first.
func viewHex(frame int, b []byte, port int) *packetView {
	meta := packetMeta{Frame: frame}
	switch port {
	case capture.ControlPort:
		return viewPacket(meta, b, true)
	case capture.DataPort:
		return viewPacket(meta, b, false)
	}
	c := viewPacket(meta, b, true)
	if !c.failed() {
		return c
	}
	d := viewPacket(meta, b, false)
	if !d.failed() {
		return d
	}
	return &packetView{
		Meta:    c.Meta,
		Err:     fmt.Sprintf("neither a LISP control message (%s) nor a LISP data packet (%s); --port says which it is", c.Err, d.Err),
		Payload: b,
	}
}

// parseHexBytes decodes hex digits, ignoring whitespace, colons and dashes
// between them and a leading "0x".
func parseHexBytes(s string) ([]byte, error) {
	t := strings.TrimSpace(s)
	if len(t) >= 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') {
		t = t[2:]
	}
	digits := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':' || c == '-':
		case ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F'):
			digits = append(digits, c)
		default:
			return nil, fmt.Errorf("%s at offset %d is not a hex digit", strconv.QuoteRune(rune(c)), i)
		}
	}
	switch {
	case len(digits) == 0:
		return nil, errors.New("no hex digits")
	case len(digits)%2 != 0:
		return nil, fmt.Errorf("odd number of hex digits (%d)", len(digits))
	}
	b := make([]byte, len(digits)/2)
	if _, err := hex.Decode(b, digits); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeCapture decodes every LISP datagram of the capture at path ("-":
// standard input). Frames the capture reader cannot decode are reported
// like undecodable packets. A counts line goes to stderr at the end.
func decodeCapture(cmd *cobra.Command, path string, pr *packetPrinter) (decodeCounts, error) {
	var (
		n   decodeCounts
		r   *capture.Reader
		err error
	)
	if path == "-" {
		r, err = capture.NewReader(cmd.InOrStdin(), capture.WithReassembly())
	} else {
		r, err = capture.ReadFile(path, capture.WithReassembly())
	}
	if err != nil {
		return n, fmt.Errorf("decode: %w", err)
	}
	defer r.Close()
	var final error
	for {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var fe *capture.FrameError
		if errors.As(err, &fe) {
			n.packets++
			n.failed++
			n.unreadable++
			if err := pr.print(&packetView{Meta: packetMeta{Frame: fe.Frame}, Err: fe.Error(), frameOnly: true}); err != nil {
				return n, err
			}
			continue
		}
		if err != nil {
			// A damaged file: nothing after this point can be read.
			final = fmt.Errorf("decode: %s: %w", path, err)
			break
		}
		if !capture.IsLISP(d) {
			n.other++
			continue
		}
		p := viewPacket(metaFor(d.Frame, d.FirstFrame, d.Time, d.Src, d.Dst), d.Payload, isControlDatagram(d))
		n.packets++
		if p.failed() {
			n.failed++
		}
		if err := pr.print(p); err != nil {
			return n, err
		}
	}
	st := r.Stats()
	lisp := n.packets - n.unreadable
	fmt.Fprintf(cmd.ErrOrStderr(), "decode: %d frames: %d LISP packets (%d could not be decoded), %d unreadable frames, %d other UDP datagrams and %d non-UDP frames skipped\n",
		st.Frames, lisp, n.failed-n.unreadable, n.unreadable, n.other, st.Skipped)
	return n, final
}

// isControlDatagram says whether a LISP datagram is a control message (port
// 4342) rather than a data packet (port 4341): by its destination port, or
// when that is neither, by its source port.
func isControlDatagram(d capture.Datagram) bool {
	switch d.Dst.Port() {
	case capture.ControlPort:
		return true
	case capture.DataPort:
		return false
	}
	return d.Src.Port() == capture.ControlPort
}
