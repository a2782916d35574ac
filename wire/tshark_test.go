package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writePcap writes each payload as a UDP datagram from port 4342 to port 4342
// (IPv4 over Ethernet) into a classic pcap file.
func writePcap(t *testing.T, path string, payloads [][]byte) {
	var f bytes.Buffer
	le := binary.LittleEndian
	hdr := make([]byte, 24)
	le.PutUint32(hdr[0:], 0xa1b2c3d4)
	le.PutUint16(hdr[4:], 2)
	le.PutUint16(hdr[6:], 4)
	le.PutUint32(hdr[16:], 65535)
	le.PutUint32(hdr[20:], 1) // LINKTYPE_ETHERNET
	f.Write(hdr)
	for i, p := range payloads {
		pkt := hx(t, "02 00 00 00 00 02 02 00 00 00 00 01 08 00") // Ethernet, IPv4
		ipStart := len(pkt)
		pkt = append(pkt, hx(t, "45 00 00 00 00 00 00 00 40 11 00 00 c0 00 02 01 c0 00 02 02")...)
		pkt = append(pkt, hx(t, "10 f6 10 f6 00 00 00 00")...)
		pkt = append(pkt, p...)
		binary.BigEndian.PutUint16(pkt[ipStart+2:], uint16(len(pkt)-ipStart))
		binary.BigEndian.PutUint16(pkt[ipStart+10:], checksum(0, pkt[ipStart:ipStart+20]))
		binary.BigEndian.PutUint16(pkt[ipStart+24:], uint16(len(pkt)-ipStart-20))
		rec := make([]byte, 16)
		le.PutUint32(rec[0:], uint32(1700000000+i))
		le.PutUint32(rec[8:], uint32(len(pkt)))
		le.PutUint32(rec[12:], uint32(len(pkt)))
		f.Write(rec)
		f.Write(pkt)
	}
	if err := os.WriteFile(path, f.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTsharkDecodesOurBytes cross-checks the encoder against Wireshark's
// independent LISP dissector: every message we encode must decode without
// malformed-packet errors and with the type, nonce, record count and
// addresses we put in. It is skipped when tshark is not installed.
func TestTsharkDecodesOurBytes(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	if testing.Short() {
		t.Skip("short mode")
	}
	type expect struct {
		name   string
		wire   []byte
		fields map[string]string // tshark field -> expected value
	}
	var cases []expect
	for _, g := range goldenMessages(t) {
		wire, err := g.want.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		e := expect{name: g.name, wire: wire, fields: map[string]string{}}
		m := g.want
		if ecm, ok := m.(*ECM); ok {
			e.fields["lisp.type"] = "8,1" // ECM, then the inner Map-Request
			e.fields["udp.dstport"] = "4342," + strconv.Itoa(int(ecm.Destination.Port()))
			m = ecm.Inner
		} else {
			e.fields["lisp.type"] = strconv.Itoa(int(m.Type()))
		}
		switch v := m.(type) {
		case *MapRequest:
			e.fields["lisp.nonce"] = "0x" + hex64(v.Nonce)
			e.fields["lisp.records"] = strconv.Itoa(len(v.Records))
			e.fields["lisp.irc"] = strconv.Itoa(len(v.ITRRLOCs) - 1)
		case *MapReply:
			e.fields["lisp.nonce"] = "0x" + hex64(v.Nonce)
			e.fields["lisp.records"] = strconv.Itoa(len(v.Records))
			e.fields["lisp.mapping.ttl"] = strconv.Itoa(int(v.Records[0].RecordTTL))
			e.fields["lisp.mapping.loccnt"] = strconv.Itoa(len(v.Records[0].Locators))
		case *MapRegister:
			e.fields["lisp.nonce"] = "0x" + hex64(v.Nonce)
			e.fields["lisp.records"] = strconv.Itoa(len(v.Records))
			// Wireshark still reads RFC 6830's 16-bit Key ID: Key ID 0
			// with Algorithm ID n shows as n.
			e.fields["lisp.keyid"] = "0x" + hex64(uint64(v.KeyID)<<8 | uint64(v.AlgorithmID))[12:]
			e.fields["lisp.authlen"] = strconv.Itoa(len(v.AuthData))
		case *MapNotify:
			e.fields["lisp.nonce"] = "0x" + hex64(v.Nonce)
			e.fields["lisp.records"] = strconv.Itoa(len(v.Records))
			e.fields["lisp.authlen"] = strconv.Itoa(len(v.AuthData))
		}
		cases = append(cases, e)
	}
	// Random messages too, restricted to what Wireshark 4.0 knows (IP,
	// Instance-ID and AFI-List addresses, reserved bits clear), checked for
	// clean decoding of type, nonce and record count.
	g := newGen(2024)
	for i := 0; i < 200; i++ {
		var m Message
		var nonce uint64
		var records int
		if i%2 == 0 {
			r := g.mapReply()
			r.Reserved = 0
			for j := range r.Records {
				wiresharkRecord(g, &r.Records[j])
			}
			m, nonce, records = r, r.Nonce, len(r.Records)
		} else {
			rq := g.mapRequest()
			rq.Reserved, rq.XTRIDPresent, rq.MapReplyRecord = 0, false, nil
			rq.SourceEID = wiresharkAddress(g, rq.SourceEID)
			for j := range rq.ITRRLOCs {
				rq.ITRRLOCs[j] = AddrFrom(g.ip())
			}
			for j := range rq.Records {
				rec := &rq.Records[j]
				rec.NotifyRequested, rec.Reserved = false, 0
				rec.EID = wiresharkAddress(g, rec.EID)
				rec.MaskLen = g.maskLen(&rec.EID)
			}
			m, nonce, records = rq, rq.Nonce, len(rq.Records)
		}
		wire, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, expect{name: "random-" + strconv.Itoa(i), wire: wire, fields: map[string]string{
			"lisp.type":    strconv.Itoa(int(m.Type())),
			"lisp.nonce":   "0x" + hex64(nonce),
			"lisp.records": strconv.Itoa(records),
		}})
	}

	dir := t.TempDir()
	pcap := filepath.Join(dir, "lisp.pcap")
	payloads := make([][]byte, len(cases))
	for i, c := range cases {
		payloads[i] = c.wire
	}
	writePcap(t, pcap, payloads)
	names := []string{"frame.number", "_ws.malformed", "_ws.expert.severity", "udp.dstport", "lisp.type",
		"lisp.nonce", "lisp.records", "lisp.irc", "lisp.mapping.ttl", "lisp.mapping.loccnt", "lisp.keyid", "lisp.authlen"}
	args := []string{"-r", pcap, "-n", "-o", "udp.check_checksum:TRUE", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, n := range names {
		args = append(args, "-e", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, tshark, args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("tshark printed %d lines for %d packets:\n%s", len(lines), len(cases), out)
	}
	for i, line := range lines {
		cols := strings.Split(line, "\t")
		got := map[string]string{}
		for j, n := range names {
			if j < len(cols) {
				got[n] = cols[j]
			}
		}
		c := cases[i]
		if got["_ws.malformed"] != "" {
			t.Errorf("%s: tshark reports a malformed packet: %s\n%x", c.name, line, c.wire)
		}
		// Severity 8388608 is "warning", 12582912 "error".
		if sev := got["_ws.expert.severity"]; strings.Contains(sev, "12582912") || strings.Contains(sev, "8388608") {
			t.Errorf("%s: tshark expert warning/error: %s\n%x", c.name, line, c.wire)
		}
		for k, want := range c.fields {
			if got[k] != want {
				t.Errorf("%s: tshark %s = %q, want %q", c.name, k, got[k], want)
			}
		}
	}
}

func hex64(v uint64) string {
	s := strconv.FormatUint(v, 16)
	return strings.Repeat("0", 16-len(s)) + s
}

// wiresharkAddress replaces an address Wireshark 4.0 does not dissect (MAC
// and DN in some positions, opaque LCAFs, nested LCAFs) with an IP or
// Instance-ID address.
func wiresharkAddress(g *gen, a Address) Address {
	switch {
	case a.AFI == AFIIPv4 || a.AFI == AFIIPv6:
		return a
	case a.AFI == AFILCAF && a.LCAFType == LCAFInstanceID:
		return IIDAddr(a.InstanceID, g.ip())
	}
	return AddrFrom(g.ip())
}

func wiresharkRecord(g *gen, r *EIDRecord) {
	r.Reserved, r.Rsvd = 0, 0
	if r.Action > DropAuthFailure {
		r.Action = NoAction
	}
	r.EID = wiresharkAddress(g, r.EID)
	r.MaskLen = g.maskLen(&r.EID)
	for i := range r.Locators {
		l := &r.Locators[i]
		l.UnusedFlags = 0
		if l.Address.AFI != AFILCAF || l.Address.LCAFType != LCAFAFIList {
			l.Address = AddrFrom(g.ip())
		} else {
			l.Address.LCAFFlags, l.Address.LCAFRsvd1, l.Address.LCAFRsvd2 = 0, 0, 0
			for j := range l.Address.List {
				l.Address.List[j] = AddrFrom(g.ip())
			}
		}
	}
}
