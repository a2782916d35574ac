package capture

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ErrTsharkNotFound means no tshark executable was found.
var ErrTsharkNotFound = errors.New("capture: tshark not found (install Wireshark's tshark, e.g. apt-get install tshark)")

// ErrTshark means tshark failed or printed something this package cannot
// read.
var ErrTshark = errors.New("capture: tshark failed")

// tsharkFallbackPaths are tried when tshark is not on $PATH.
var tsharkFallbackPaths = [...]string{
	"/usr/bin/tshark",
	"/usr/local/bin/tshark",
	"/opt/homebrew/bin/tshark",
	"/Applications/Wireshark.app/Contents/MacOS/tshark",
}

// tsharkWaitDelay bounds how long Tshark waits for tshark's output pipes
// after tshark exits or its context ends.
const tsharkWaitDelay = 5 * time.Second

// stderrTail is how much of tshark's standard error an error message keeps.
const stderrTail = 2048

// maxJSONDepth bounds the nesting the tshark JSON reader follows.
const maxJSONDepth = 100

// Expert info severities as tshark's JSON output prints them
// (_ws.expert.severity, epan/proto.h PI_*).
var tsharkSeverities = map[string]string{
	"1048576": "comment",
	"2097152": "chat",
	"4194304": "note",
	"6291456": "warning",
	"8388608": "error",
}

// LookTshark returns the path of the tshark executable: the first "tshark"
// on $PATH, else a well-known install location. It returns an error
// wrapping ErrTsharkNotFound when there is none.
func LookTshark() (string, error) {
	if p, err := exec.LookPath("tshark"); err == nil {
		return p, nil
	}
	for _, p := range tsharkFallbackPaths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrTsharkNotFound
}

// Tshark runs the tshark at path with args and returns its standard
// output. A failure (start error, non-zero exit, ctx ending) returns an
// error wrapping ErrTshark that quotes the end of tshark's standard error.
func Tshark(ctx context.Context, path string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout bytes.Buffer
	stderr := &tailWriter{max: stderrTail}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	cmd.WaitDelay = tsharkWaitDelay
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), tsharkError(args, err, stderr)
	}
	return stdout.Bytes(), nil
}

// TsharkVersion returns the first line of "tshark --version", such as
// "TShark (Wireshark) 4.0.17 (Git v4.0.17 packaged as 4.0.17-0+deb12u3).".
func TsharkVersion(ctx context.Context, path string) (string, error) {
	out, err := Tshark(ctx, path, "--version")
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line), nil
}

// TsharkExpert is one expert info item tshark attached to a packet.
type TsharkExpert struct {
	// Severity is "comment", "chat", "note", "warning" or "error" (or the
	// number tshark printed when it is none of those).
	Severity string
	// Message is the expert message, e.g. "Malformed Packet (Exception
	// occurred)".
	Message string
	// Field is the expert field that raised it, e.g.
	// "_ws.malformed.expert", when tshark names one.
	Field string
}

// TsharkPacket is tshark's decoding of one packet.
type TsharkPacket struct {
	// Frame is the 1-based frame number (frame.number).
	Frame int
	// Time is frame.time_epoch (zero when absent).
	Time time.Time
	// Protocols is the protocol stack, frame.protocols split at ':', e.g.
	// [eth ethertype ip udp lisp].
	Protocols []string
	// Fields maps every field tshark printed (frame.*, eth.*, ip.*,
	// ipv6.*, udp.*, lisp.*, lisp-data.*, data.*, _ws.* and the rest) to
	// its values in dissection order. A field that occurs more than once
	// (ip.addr; the outer then the inner ip.src of an encapsulated packet)
	// has several values. Values are as tshark prints them in JSON: numbers
	// in decimal or 0x-hex, byte strings as colon-separated hex.
	Fields map[string][]string
	// Malformed reports that tshark flagged the packet malformed
	// (_ws.malformed) or raised an expert item of error severity.
	Malformed bool
	// Expert holds the packet's expert info items.
	Expert []TsharkExpert
}

// Field returns the first value of the named field, or "" when absent.
func (p *TsharkPacket) Field(name string) string {
	if v := p.Fields[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Has reports whether the named field occurs in the packet.
func (p *TsharkPacket) Has(name string) bool {
	return len(p.Fields[name]) > 0
}

// HasProtocol reports whether proto (e.g. "lisp", "lisp-data") is in the
// packet's protocol stack.
func (p *TsharkPacket) HasProtocol(proto string) bool {
	for _, q := range p.Protocols {
		if q == proto {
			return true
		}
	}
	return false
}

// Bytes returns the first value of a byte-string field (such as
// udp.payload or data.data), decoded from tshark's colon-separated hex. An
// absent field is an error.
func (p *TsharkPacket) Bytes(name string) ([]byte, error) {
	v := p.Fields[name]
	if len(v) == 0 {
		return nil, fmt.Errorf("%w: frame %d has no field %s", ErrTshark, p.Frame, name)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(v[0], ":", ""))
	if err != nil {
		return nil, fmt.Errorf("%w: frame %d field %s: %q is not a byte string", ErrTshark, p.Frame, name, v[0])
	}
	return b, nil
}

// TsharkPackets runs "tshark -n -r pcapPath -T json" with the tshark that
// LookTshark finds, plus extraArgs (for example "-o",
// "udp.check_checksum:TRUE", or "-d", "udp.port==4343,lisp"), and returns
// tshark's decoding of every packet. tshark 4.x dissects UDP port 4342 as
// LISP control ("lisp") and 4341 as LISP data ("lisp-data") without
// options. On error, the packets read before it are returned too.
func TsharkPackets(ctx context.Context, pcapPath string, extraArgs ...string) ([]TsharkPacket, error) {
	path, err := LookTshark()
	if err != nil {
		return nil, err
	}
	return TsharkDecode(ctx, path, pcapPath, extraArgs...)
}

// TsharkDecode is TsharkPackets with an explicit tshark path. tshark's
// output is parsed as it streams, so large captures do not need their
// whole JSON in memory.
func TsharkDecode(ctx context.Context, tsharkPath, pcapPath string, extraArgs ...string) ([]TsharkPacket, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	args := append([]string{"-n", "-r", pcapPath, "-T", "json"}, extraArgs...)
	cmd := exec.CommandContext(ctx, tsharkPath, args...)
	stderr := &tailWriter{max: stderrTail}
	cmd.Stderr = stderr
	cmd.WaitDelay = tsharkWaitDelay
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTshark, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTshark, err)
	}
	pkts, perr := ParseTsharkJSON(stdout)
	if perr != nil {
		cancel() // stop tshark; it may be blocked writing to the pipe
	}
	werr := cmd.Wait()
	if werr != nil {
		return pkts, tsharkError(args, werr, stderr)
	}
	if perr != nil {
		return pkts, perr
	}
	return pkts, nil
}

// tsharkError describes a failed tshark run, quoting tshark's standard
// error without its warning about running as root.
func tsharkError(args []string, err error, stderr *tailWriter) error {
	var lines []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "Running as user") {
			lines = append(lines, line)
		}
	}
	msg := ""
	if len(lines) > 0 {
		msg = ": " + strings.Join(lines, "; ")
	}
	cmd := strings.Join(append([]string{"tshark"}, args...), " ")
	return fmt.Errorf("%w: %s: %v%s", ErrTshark, cmd, err, msg)
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	max int
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string { return string(w.buf) }

// ParseTsharkJSON reads the output of "tshark -T json" (with or without
// --no-duplicate-keys): an array of packets, each with _source.layers
// holding the protocol trees. Keys repeated within one JSON object, which
// tshark prints, are all kept.
func ParseTsharkJSON(r io.Reader) ([]TsharkPacket, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, nil // tshark prints nothing for some empty inputs
	}
	if err != nil {
		return nil, jsonError(dec, err)
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("%w: output does not start with a JSON array", ErrTshark)
	}
	var pkts []TsharkPacket
	for dec.More() {
		p := TsharkPacket{Fields: make(map[string][]string)}
		if err := parsePacket(dec, &p); err != nil {
			return pkts, err
		}
		if err := p.finish(); err != nil {
			return pkts, err
		}
		pkts = append(pkts, p)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return pkts, jsonError(dec, err)
	}
	return pkts, nil
}

// jsonError wraps a JSON syntax or read error.
func jsonError(dec *json.Decoder, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: reading JSON output at byte %d: %v", ErrTshark, dec.InputOffset(), err)
}

// parsePacket reads one packet object, collecting _source.layers.
func parsePacket(dec *json.Decoder, p *TsharkPacket) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		key, err := readKey(dec)
		if err != nil {
			return err
		}
		if key != "_source" {
			if err := skipValue(dec); err != nil {
				return err
			}
			continue
		}
		if err := expectDelim(dec, '{'); err != nil {
			return err
		}
		for dec.More() {
			k, err := readKey(dec)
			if err != nil {
				return err
			}
			if k != "layers" {
				if err := skipValue(dec); err != nil {
					return err
				}
				continue
			}
			if err := expectDelim(dec, '{'); err != nil {
				return err
			}
			if err := p.walkObject(dec, 1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // '}' of _source
			return jsonError(dec, err)
		}
	}
	if _, err := dec.Token(); err != nil { // '}' of the packet
		return jsonError(dec, err)
	}
	return nil
}

// walkObject collects the members of an object whose '{' was read, up to
// and including its '}'.
func (p *TsharkPacket) walkObject(dec *json.Decoder, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("%w: JSON nested deeper than %d", ErrTshark, maxJSONDepth)
	}
	for dec.More() {
		key, err := readKey(dec)
		if err != nil {
			return err
		}
		if err := p.walkValue(dec, key, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return jsonError(dec, err)
	}
	return nil
}

// walkValue collects the value of member key.
func (p *TsharkPacket) walkValue(dec *json.Decoder, key string, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("%w: JSON nested deeper than %d", ErrTshark, maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return jsonError(dec, err)
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			if key == "_ws.expert" {
				return p.walkExpert(dec, depth+1)
			}
			return p.walkObject(dec, depth+1)
		case '[':
			// --no-duplicate-keys merges repeated keys into arrays.
			for dec.More() {
				if err := p.walkValue(dec, key, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return jsonError(dec, err)
			}
			return nil
		}
		return fmt.Errorf("%w: unexpected %v in JSON output", ErrTshark, v)
	case string:
		if key == "_ws.malformed" {
			p.Malformed = true
		}
		p.add(key, v)
	case json.Number:
		p.add(key, v.String())
	case bool:
		p.add(key, strconv.FormatBool(v))
	case nil:
		p.add(key, "")
	}
	return nil
}

// walkExpert reads an _ws.expert object whose '{' was read: its fields go
// to Fields like any other, and it becomes one TsharkExpert.
func (p *TsharkPacket) walkExpert(dec *json.Decoder, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("%w: JSON nested deeper than %d", ErrTshark, maxJSONDepth)
	}
	var e TsharkExpert
	for dec.More() {
		key, err := readKey(dec)
		if err != nil {
			return err
		}
		before := len(p.Fields[key])
		if err := p.walkValue(dec, key, depth); err != nil {
			return err
		}
		vals := p.Fields[key]
		if len(vals) == before {
			continue // an object: nothing under this key itself
		}
		switch v := vals[before]; key {
		case "_ws.expert.message":
			e.Message = v
		case "_ws.expert.severity":
			if name, ok := tsharkSeverities[v]; ok {
				e.Severity = name
			} else {
				e.Severity = v
			}
		case "_ws.expert.group":
		default:
			if e.Field == "" {
				e.Field = key
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return jsonError(dec, err)
	}
	if e.Severity == "error" {
		p.Malformed = true
	}
	p.Expert = append(p.Expert, e)
	return nil
}

// add appends a field value.
func (p *TsharkPacket) add(key, value string) {
	p.Fields[key] = append(p.Fields[key], value)
}

// finish fills Frame, Time and Protocols from the collected fields.
func (p *TsharkPacket) finish() error {
	n, err := strconv.Atoi(p.Field("frame.number"))
	if err != nil || n < 1 {
		return fmt.Errorf("%w: packet without a valid frame.number (%q)", ErrTshark, p.Field("frame.number"))
	}
	p.Frame = n
	if s := p.Field("frame.protocols"); s != "" {
		p.Protocols = strings.Split(s, ":")
	}
	if s := p.Field("frame.time_epoch"); s != "" {
		if t, ok := parseEpoch(s); ok {
			p.Time = t
		}
	}
	return nil
}

// parseEpoch parses "seconds.fraction" exactly, to the nanosecond.
func parseEpoch(s string) (time.Time, bool) {
	secStr, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	if len(frac) > 9 {
		frac = frac[:9]
	}
	var nsec int64
	if frac != "" {
		v, err := strconv.ParseUint(frac, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		nsec = int64(v)
		for i := len(frac); i < 9; i++ {
			nsec *= 10
		}
	}
	if sec < 0 {
		nsec = -nsec
	}
	return time.Unix(sec, nsec).UTC(), true
}

// readKey reads an object member name.
func readKey(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", jsonError(dec, err)
	}
	key, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("%w: expected an object key in JSON output, got %v", ErrTshark, tok)
	}
	return key, nil
}

// expectDelim reads the delimiter d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonError(dec, err)
	}
	if tok != d {
		return fmt.Errorf("%w: expected %v in JSON output, got %v", ErrTshark, d, tok)
	}
	return nil
}

// skipValue reads and discards one value.
func skipValue(dec *json.Decoder) error {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return jsonError(dec, err)
	}
	return nil
}
