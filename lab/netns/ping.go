package netns

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// PingReply is one echo reply that ping reported.
type PingReply struct {
	// Seq is the ICMP sequence number, counted from 1 and unwrapped past
	// 65535 (so a long run keeps increasing).
	Seq int
	// At is when ping printed the reply (its -D timestamp); zero if the
	// output had no timestamps.
	At time.Time
	// From is the address the reply came from.
	From string
	// TTL is the reply's TTL (hop limit for IPv6); 0 if not shown.
	TTL int
	// RTT is the round-trip time.
	RTT time.Duration
	// Dup marks a duplicate reply to a sequence already answered.
	Dup bool
}

// PingEvent is a line of ping output about one sequence number that is
// not a reply: "no answer yet" (ping -O) or an ICMP error ("From ...
// Destination Host Unreachable").
type PingEvent struct {
	// Seq is the unwrapped sequence number.
	Seq int
	// At is the line's timestamp; zero without -D.
	At time.Time
	// Text is the rest of the line ("no answer yet", "From 10.0.0.1
	// Destination Host Unreachable").
	Text string
}

// PingResult is what iputils ping reported.
type PingResult struct {
	// Target is the address ping sent to (from its "PING" header).
	Target string
	// Transmitted, Received, Duplicates and Errors are the numbers of
	// ping's statistics; zero until the statistics are printed (see
	// Summary).
	Transmitted, Received, Duplicates, Errors int
	// Summary reports whether ping printed its statistics (it does when it
	// ends normally or on SIGINT).
	Summary bool
	// LastSeq is the highest sequence number in any reply or event line.
	LastSeq int
	// Replies are the replies in the order printed, duplicates included.
	Replies []PingReply
	// Unanswered are the "no answer yet" lines (ping -O), printed when the
	// next probe goes out without an answer to this one.
	Unanswered []PingEvent
	// ICMPErrors are ICMP errors reported for probes.
	ICMPErrors []PingEvent
	// RTTMin, RTTAvg, RTTMax and RTTMDev are ping's RTT statistics; zero
	// if nothing was received.
	RTTMin, RTTAvg, RTTMax, RTTMDev time.Duration
}

// Sent returns the number of probes sent: Transmitted once the statistics
// are printed, LastSeq before (at most 2^24 either way).
func (r *PingResult) Sent() int {
	if r.Summary {
		return min(r.Transmitted, maxPingCount)
	}
	return min(r.LastSeq, maxPingCount)
}

// Answered reports whether sequence number seq got a (non-duplicate)
// reply.
func (r *PingResult) Answered(seq int) bool {
	for _, rep := range r.Replies {
		if rep.Seq == seq && !rep.Dup {
			return true
		}
	}
	return false
}

// Lost returns the sequence numbers from 1 to Sent() that got no reply, in
// order.
func (r *PingResult) Lost() []int {
	n := r.Sent()
	if n <= 0 {
		return nil
	}
	got := r.answered(n)
	var lost []int
	for s := 1; s <= n; s++ {
		if !got[s] {
			lost = append(lost, s)
		}
	}
	return lost
}

// answered returns the set of sequence numbers in 1..n that got a reply.
func (r *PingResult) answered(n int) map[int]bool {
	got := make(map[int]bool, len(r.Replies))
	for _, rep := range r.Replies {
		if rep.Seq >= 1 && rep.Seq <= n {
			got[rep.Seq] = true
		}
	}
	return got
}

// LossRatio returns the fraction of sent probes that got no reply (0 if
// none were sent).
func (r *PingResult) LossRatio() float64 {
	n := r.Sent()
	if n <= 0 {
		return 0
	}
	return float64(n-len(r.answered(n))) / float64(n)
}

// clone returns a deep copy.
func (r *PingResult) clone() PingResult {
	c := *r
	c.Replies = append([]PingReply(nil), r.Replies...)
	c.Unanswered = append([]PingEvent(nil), r.Unanswered...)
	c.ICMPErrors = append([]PingEvent(nil), r.ICMPErrors...)
	return c
}

// pingParser reads iputils ping output (with -n, and optionally -D and
// -O) line by line. It never fails on odd lines: unknown lines are
// ignored, and malformed known ones are counted in bad.
type pingParser struct {
	res      PingResult
	lastRaw  int // last unwrapped sequence number, for unwrapping
	bad      int
	partial  []byte
	skipping bool // inside a line longer than maxPingLine
}

// unwrap turns a 16-bit sequence number into the value closest to the
// last one seen.
func (p *pingParser) unwrap(raw int) int {
	raw &= 0xffff
	v := p.lastRaw&^0xffff | raw
	switch {
	case v-p.lastRaw > 0x8000 && v >= 0x10000:
		v -= 0x10000
	case p.lastRaw-v > 0x8000:
		v += 0x10000
	}
	if v > p.lastRaw {
		p.lastRaw = v
	}
	if v > p.res.LastSeq {
		p.res.LastSeq = v
	}
	return v
}

// maxPingLine bounds a line of ping output; longer lines are skipped.
const maxPingLine = 4096

// maxPingCount bounds the counts in ping's statistics (2^24 probes is
// two days at 10 ms); larger numbers are taken for garbage.
const maxPingCount = 1 << 24

// Write feeds raw output; complete lines are parsed.
func (p *pingParser) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		k := bytes.IndexByte(b, '\n')
		if k < 0 {
			if !p.skipping {
				p.partial = append(p.partial, b...)
				if len(p.partial) > maxPingLine {
					p.partial = p.partial[:0]
					p.skipping = true
					p.bad++
				}
			}
			break
		}
		if p.skipping {
			p.skipping = false
		} else {
			p.line(string(append(p.partial, b[:k]...)))
		}
		p.partial = p.partial[:0]
		b = b[k+1:]
	}
	return n, nil
}

// flush parses a final line without a newline.
func (p *pingParser) flush() {
	if len(p.partial) > 0 && !p.skipping {
		p.line(string(p.partial))
		p.partial = p.partial[:0]
	}
}

// parseStamp parses a -D timestamp "[1700000000.123456]" at the start of
// line and returns the time and the rest.
func parseStamp(line string) (time.Time, string, bool) {
	if !strings.HasPrefix(line, "[") {
		return time.Time{}, line, true
	}
	end := strings.IndexByte(line, ']')
	if end < 0 {
		return time.Time{}, line, false
	}
	secStr, fracStr, _ := strings.Cut(line[1:end], ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, line, false
	}
	var nsec int64
	if fracStr != "" {
		if len(fracStr) > 9 {
			fracStr = fracStr[:9]
		}
		f, err := strconv.ParseInt(fracStr, 10, 64)
		if err != nil || f < 0 {
			return time.Time{}, line, false
		}
		for i := len(fracStr); i < 9; i++ {
			f *= 10
		}
		nsec = f
	}
	return time.Unix(sec, nsec), strings.TrimSpace(line[end+1:]), true
}

// field returns the value of "key=value" among the words of s.
func field(words []string, key string) (string, bool) {
	for _, w := range words {
		if v, ok := strings.CutPrefix(w, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// parseMillis parses a number of milliseconds.
func parseMillis(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e9 {
		return 0, false
	}
	return time.Duration(f * float64(time.Millisecond)), true
}

// line parses one line of output.
func (p *pingParser) line(raw string) {
	if len(raw) > maxPingLine {
		p.bad++
		return
	}
	line := strings.TrimSpace(raw)
	if line == "" {
		return
	}
	at, rest, ok := parseStamp(line)
	if !ok {
		p.bad++
		return
	}
	words := strings.Fields(rest)
	switch {
	case strings.HasPrefix(rest, "PING "):
		// "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data."
		if o, c := strings.IndexByte(rest, '('), strings.IndexByte(rest, ')'); o >= 0 && c > o {
			p.res.Target = rest[o+1 : c]
		} else if len(words) > 1 {
			p.res.Target = words[1]
		}
	case strings.Contains(rest, " bytes from ") && strings.Contains(rest, "icmp_seq="):
		p.reply(at, rest, words)
	case strings.HasPrefix(rest, "no answer yet for icmp_seq="):
		seq, err := strconv.Atoi(strings.TrimPrefix(rest, "no answer yet for icmp_seq="))
		if err != nil || seq < 0 || seq > 0xffff {
			p.bad++
			return
		}
		p.res.Unanswered = append(p.res.Unanswered, PingEvent{Seq: p.unwrap(seq), At: at, Text: "no answer yet"})
	case strings.HasPrefix(rest, "From ") && strings.Contains(rest, "icmp_seq="):
		// "From 10.0.0.1 icmp_seq=1 Destination Host Unreachable"
		v, _ := field(words, "icmp_seq")
		seq, err := strconv.Atoi(v)
		if err != nil || seq < 0 || seq > 0xffff {
			p.bad++
			return
		}
		text := strings.Replace(rest, "icmp_seq="+v+" ", "", 1)
		p.res.ICMPErrors = append(p.res.ICMPErrors, PingEvent{Seq: p.unwrap(seq), At: at, Text: text})
	case strings.Contains(rest, " packets transmitted, "):
		p.summary(rest)
	case strings.HasPrefix(rest, "rtt ") || strings.HasPrefix(rest, "round-trip "):
		p.rtt(rest)
	}
}

// reply parses "64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.045 ms
// (DUP!)".
func (p *pingParser) reply(at time.Time, rest string, words []string) {
	seqStr, _ := field(words, "icmp_seq")
	seq, err := strconv.Atoi(seqStr)
	if err != nil || seq < 0 || seq > 0xffff {
		p.bad++
		return
	}
	r := PingReply{At: at, Dup: strings.Contains(rest, "(DUP!)")}
	if k := strings.Index(rest, " bytes from "); k >= 0 {
		from := rest[k+len(" bytes from "):]
		if j := strings.Index(from, " icmp_seq="); j >= 0 {
			from = from[:j]
		}
		r.From = strings.TrimSuffix(strings.TrimSpace(from), ":")
	}
	if v, ok := field(words, "ttl"); ok {
		r.TTL, _ = strconv.Atoi(v)
	}
	if v, ok := field(words, "time"); ok {
		if d, ok := parseMillis(v); ok {
			r.RTT = d
		}
	}
	r.Seq = p.unwrap(seq)
	p.res.Replies = append(p.res.Replies, r)
}

// summary parses "5 packets transmitted, 4 received, +1 duplicates,
// +2 errors, 20% packet loss, time 4005ms".
func (p *pingParser) summary(rest string) {
	res := &p.res
	ok := false
	for _, part := range strings.Split(rest, ",") {
		words := strings.Fields(part)
		if len(words) < 2 {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(words[0], "+"))
		if err != nil || n < 0 || n > maxPingCount {
			continue
		}
		switch {
		case words[1] == "packets" && len(words) > 2 && words[2] == "transmitted":
			res.Transmitted = n
			ok = true
		case words[1] == "received":
			res.Received = n
		case strings.HasPrefix(words[1], "duplicate"):
			res.Duplicates = n
		case strings.HasPrefix(words[1], "error"):
			res.Errors = n
		}
	}
	if !ok {
		p.bad++
		return
	}
	res.Summary = true
}

// rtt parses "rtt min/avg/max/mdev = 0.031/0.041/0.052/0.008 ms".
func (p *pingParser) rtt(rest string) {
	_, vals, ok := strings.Cut(rest, "=")
	if !ok {
		p.bad++
		return
	}
	words := strings.Fields(vals)
	if len(words) == 0 {
		p.bad++
		return
	}
	nums := strings.Split(words[0], "/")
	if len(nums) < 4 {
		p.bad++
		return
	}
	var d [4]time.Duration
	for i := range d {
		v, ok := parseMillis(nums[i])
		if !ok {
			p.bad++
			return
		}
		d[i] = v
	}
	p.res.RTTMin, p.res.RTTAvg, p.res.RTTMax, p.res.RTTMDev = d[0], d[1], d[2], d[3]
}

// ParsePing parses the complete output of an iputils ping run with -n
// (and optionally -D, -O). It fails with ErrPingOutput when the output has
// no statistics.
func ParsePing(out []byte) (PingResult, error) {
	var p pingParser
	p.Write(out)
	p.flush()
	if !p.res.Summary {
		return p.res, fmt.Errorf("%w: no statistics in %q", ErrPingOutput, lastLine(out))
	}
	return p.res, nil
}

// lastLine returns the last non-empty line of b, bounded in length, for
// error messages.
func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if k := strings.LastIndexByte(s, '\n'); k >= 0 {
		s = s[k+1:]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
