package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxTextPayloadHex is how many payload bytes a text block shows for a
// packet that failed to decode; JSON shows them all.
const maxTextPayloadHex = 64

// textWriter writes indented lines and remembers the first write error.
type textWriter struct {
	w   io.Writer
	err error
}

func (t *textWriter) line(indent int, format string, args ...any) {
	if t.err != nil {
		return
	}
	_, t.err = fmt.Fprintf(t.w, "%s%s\n", strings.Repeat("  ", indent), fmt.Sprintf(format, args...))
}

// writePacketText writes one packet as a text block: a header line (frame,
// time, src -> dst, type, length) and one indented line per field group,
// followed by an empty line.
func writePacketText(w io.Writer, p *packetView) error {
	t := &textWriter{w: w}
	if p.frameOnly {
		t.line(0, "frame %d  (unreadable)", p.Meta.Frame)
		t.line(1, "error: %s", p.Err)
		t.line(0, "")
		return t.err
	}
	var head []string
	frame := "frame " + strconv.Itoa(p.Meta.Frame)
	if p.Meta.FirstFrame != 0 {
		frame += " (reassembled from frame " + strconv.Itoa(p.Meta.FirstFrame) + ")"
	}
	head = append(head, frame)
	if p.Meta.Time != "" {
		head = append(head, p.Meta.Time)
	}
	if p.Meta.Src != "" || p.Meta.Dst != "" {
		head = append(head, p.Meta.Src+" -> "+p.Meta.Dst)
	}
	typ := p.Type
	if typ == "" {
		typ = "LISP"
	}
	head = append(head, fmt.Sprintf("%s (%d bytes)", typ, p.Meta.Length))
	t.line(0, "%s", strings.Join(head, "  "))
	if p.Body != nil {
		writeBodyText(t, 1, p.Body)
	}
	if p.failed() {
		t.line(1, "error: %s", p.Err)
		t.line(1, "payload: %s", hexPreview(p.Payload, maxTextPayloadHex))
	}
	t.line(0, "")
	return t.err
}

// hexPreview returns "N bytes HEX", cut after max bytes.
func hexPreview(b []byte, max int) string {
	if len(b) <= max {
		return fmt.Sprintf("%d bytes %s", len(b), hex.EncodeToString(b))
	}
	return fmt.Sprintf("%d bytes %s... (%d more)", len(b), hex.EncodeToString(b[:max]), len(b)-max)
}

// flagName is one flag bit: its letter in the RFC diagram, its name, and
// whether it is set.
type flagName struct {
	letter, name string
	set          bool
}

// flagsText lists the set flags as "M(map-data-present) P(probe)", or
// "none".
func flagsText(flags ...flagName) string {
	var s []string
	for _, f := range flags {
		if f.set {
			s = append(s, f.letter+"("+f.name+")")
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}

func writeBodyText(t *textWriter, in int, body any) {
	switch v := body.(type) {
	case *mapRequestView:
		writeMapRequestText(t, in, v)
	case *mapReplyView:
		f := v.Flags
		t.line(in, "flags: %s", flagsText(
			flagName{"P", "probe", f.Probe}, flagName{"E", "echo-nonce-capable", f.EchoNonceCapable},
			flagName{"S", "security", f.Security}))
		writeReservedText(t, in, v.Reserved)
		t.line(in, "nonce: %s", v.Nonce)
		writeRecordsText(t, in, v.Records)
		writeTrailingText(t, in, v.TrailingBytes, v.TrailingHex)
	case *authMessageView:
		writeAuthMessageText(t, in, v)
	case *ecmView:
		f := v.Flags
		t.line(in, "flags: %s", flagsText(
			flagName{"S", "security", f.Security}, flagName{"D", "ddt-originated", f.DDTOriginated},
			flagName{"E", "to-etr", f.ToETR}, flagName{"M", "to-ms", f.ToMS}))
		writeReservedText(t, in, v.Reserved)
		t.line(in, "inner: %s -> %s  ttl %d", v.InnerSrc, v.InnerDst, v.InnerTTL)
		t.line(in, "message: %s", v.Message.Type)
		writeBodyText(t, in+1, v.Message.Body)
		writeTrailingText(t, in, v.TrailingBytes, v.TrailingHex)
	case *dataView:
		writeDataText(t, in, v)
	case *mapReferralView:
		writeReservedText(t, in, v.Reserved)
		t.line(in, "nonce: %s", v.Nonce)
		if len(v.Records) == 0 {
			t.line(in, "records: none")
		}
		for i := range v.Records {
			r := &v.Records[i]
			writeRecordText(t, in, "record "+strconv.Itoa(i+1), &r.recordView)
			t.line(in+1, "incomplete: %d  sig-count: %d", b2i(r.Incomplete), r.SigCount)
			for j, s := range r.Signatures {
				t.line(in+1, "signature %d: original-ttl %s  expiration %d  inception %d  key-tag %d  algorithm %d  reserved 0x%06x  %s",
					j+1, ttlText(s.OriginalTTL), s.Expiration, s.Inception, s.KeyTag, s.Algorithm, s.Reserved, s.Signature)
			}
		}
		writeTrailingText(t, in, v.TrailingBytes, v.TrailingHex)
	case *infoView:
		kind := "Info-Request"
		if v.Reply {
			kind = "Info-Reply"
		}
		t.line(in, "flags: %s  (%s)", flagsText(flagName{"R", "reply", v.Reply}), kind)
		writeReservedText(t, in, v.Reserved)
		t.line(in, "nonce: %s", v.Nonce)
		t.line(in, "key-id: %d  algorithm-id: %d (%s)", v.KeyID, v.AlgorithmID, v.Algorithm)
		if v.AuthDataLength == 0 {
			t.line(in, "auth-data: none")
		} else {
			t.line(in, "auth-data: %d bytes (%s) %s", v.AuthDataLength, v.AuthDataForm, v.AuthData)
		}
		t.line(in, "ttl: %d min", v.TTL)
		s := "eid-prefix: " + prefixDisplay(v.EIDPrefix, v.IID, &v.EID)
		if v.EIDReserved != 0 {
			s += fmt.Sprintf("  reserved 0x%02x", v.EIDReserved)
		}
		t.line(in, "%s", s)
		switch {
		case v.NAT != nil:
			n := v.NAT
			t.line(in, "nat-traversal: ms-port %d  etr-port %d", n.MSPort, n.ETRPort)
			t.line(in+1, "global-etr-rloc: %s  ms-rloc: %s  private-etr-rloc: %s", n.GlobalETR.Text, n.MS.Text, n.PrivateETR.Text)
			rtrs := make([]string, len(n.RTRs))
			for i := range n.RTRs {
				rtrs[i] = n.RTRs[i].Text
			}
			t.line(in+1, "rtr-rlocs: %s", strings.Join(rtrs, ", "))
		case v.NATError != "":
			t.line(in, "address: %s  (%s)", v.Address.Text, v.NATError)
		default:
			t.line(in, "address: %s", v.Address.Text)
		}
		writeTrailingText(t, in, v.TrailingBytes, v.TrailingHex)
	case *sharedExtensionView:
		t.line(in, "sub-type: %d", v.SubType)
		t.line(in, "data: %d bytes %s", v.DataLength, v.Data)
	}
}

func writeReservedText(t *textWriter, in int, reserved uint32) {
	if reserved != 0 {
		t.line(in, "reserved: 0x%08x", reserved)
	}
}

func writeTrailingText(t *textWriter, in, n int, h string) {
	if n > 0 {
		t.line(in, "trailing: %d bytes %s", n, h)
	}
}

func writeMapRequestText(t *textWriter, in int, v *mapRequestView) {
	f := v.Flags
	t.line(in, "flags: %s", flagsText(
		flagName{"A", "authoritative", f.Authoritative}, flagName{"M", "map-data-present", f.MapDataPresent},
		flagName{"P", "probe", f.Probe}, flagName{"S", "smr", f.SMR}, flagName{"p", "pitr", f.PITR},
		flagName{"s", "smr-invoked", f.SMRInvoked}, flagName{"I", "xtr-id-present", f.XTRIDPresent},
		flagName{"L", "local-xtr", f.LocalXTR}, flagName{"D", "dont-map-reply", f.DontMapReply}))
	writeReservedText(t, in, v.Reserved)
	t.line(in, "nonce: %s", v.Nonce)
	t.line(in, "source-eid: %s", v.SourceEID.Text)
	rlocs := make([]string, len(v.ITRRLOCs))
	for i := range v.ITRRLOCs {
		rlocs[i] = v.ITRRLOCs[i].Text
	}
	t.line(in, "itr-rlocs: %s", strings.Join(rlocs, ", "))
	for i := range v.Records {
		r := &v.Records[i]
		s := fmt.Sprintf("record %d: eid-prefix %s", i+1, prefixDisplay(r.EIDPrefix, r.IID, &r.EID))
		if r.NotifyRequested {
			s += "  N(notify-requested)"
		}
		if r.Reserved != 0 {
			s += fmt.Sprintf("  reserved 0x%02x", r.Reserved)
		}
		t.line(in, "%s", s)
	}
	if v.MapReplyRecord != nil {
		t.line(in, "map-reply record:")
		writeRecordText(t, in+1, "record", v.MapReplyRecord)
	}
	if v.XTRID != "" {
		t.line(in, "xtr-id: %s  site-id: %s", v.XTRID, v.SiteID)
	}
	writeTrailingText(t, in, v.TrailingBytes, v.TrailingHex)
}

func writeAuthMessageText(t *textWriter, in int, v *authMessageView) {
	switch f := v.Flags.(type) {
	case mapRegisterFlags:
		t.line(in, "flags: %s", flagsText(
			flagName{"P", "proxy-map-reply", f.ProxyMapReply}, flagName{"S", "security-capable", f.SecurityCapable},
			flagName{"I", "xtr-id-present", f.XTRIDPresent}, flagName{"E", "eid-notify", f.EIDNotify},
			flagName{"T", "use-ttl-for-timeout", f.UseTTLForTimeout}, flagName{"a", "merge-request", f.MergeRequest},
			flagName{"M", "want-map-notify", f.WantMapNotify}))
	case mapNotifyFlags:
		t.line(in, "flags: %s", flagsText(flagName{"I", "xtr-id-present", f.XTRIDPresent}))
	}
	writeReservedText(t, in, v.Reserved)
	t.line(in, "nonce: %s", v.Nonce)
	t.line(in, "key-id: %d  algorithm-id: %d (%s)", v.KeyID, v.AlgorithmID, v.Algorithm)
	if v.AuthDataLength == 0 {
		t.line(in, "auth-data: none")
	} else {
		t.line(in, "auth-data: %d bytes (%s) %s", v.AuthDataLength, v.AuthDataForm, v.AuthData)
	}
	writeRecordsText(t, in, v.Records)
	if v.XTRID != "" {
		t.line(in, "xtr-id: %s  site-id: %s", v.XTRID, v.SiteID)
	}
	writeTrailingText(t, in, v.TrailingBytes, v.TrailingHex)
}

func writeRecordsText(t *textWriter, in int, recs []recordView) {
	if len(recs) == 0 {
		t.line(in, "records: none")
	}
	for i := range recs {
		writeRecordText(t, in, "record "+strconv.Itoa(i+1), &recs[i])
	}
}

// prefixDisplay is the text form of an EID-prefix in lispctl's notation:
// "iid:N/prefix" when the EID is an Instance-ID LCAF (even for instance 0,
// since that is what is on the wire, with its IID mask-len when not 0), the
// plain prefix otherwise.
func prefixDisplay(prefix string, iid uint32, eid *addressView) string {
	if eid.InstanceID == nil {
		return prefix
	}
	s := "iid:" + strconv.FormatUint(uint64(iid), 10) + "/" + prefix
	if eid.IIDMaskLen != nil && *eid.IIDMaskLen != 0 {
		s += fmt.Sprintf(" (iid-mask-len %d)", *eid.IIDMaskLen)
	}
	return s
}

// ttlText formats a Record TTL (minutes), naming the special values.
func ttlText(ttl uint32) string {
	switch ttl {
	case 0:
		return "0 min (remove now)"
	case 0xffffffff:
		return "4294967295 min (receiver's choice)"
	}
	return strconv.FormatUint(uint64(ttl), 10) + " min"
}

func writeRecordText(t *textWriter, in int, label string, r *recordView) {
	s := fmt.Sprintf("%s: eid-prefix %s  ttl %s  action %s(%d)  A=%d  map-version %d",
		label, prefixDisplay(r.EIDPrefix, r.IID, &r.EID), ttlText(r.RecordTTL), r.Action, r.ActionCode,
		b2i(r.Authoritative), r.MapVersion)
	if r.Reserved != 0 {
		s += fmt.Sprintf("  reserved 0x%03x", r.Reserved)
	}
	if r.Rsvd != 0 {
		s += fmt.Sprintf("  rsvd 0x%x", r.Rsvd)
	}
	t.line(in, "%s", s)
	if len(r.Locators) == 0 {
		t.line(in+1, "locators: none")
	}
	for i := range r.Locators {
		l := &r.Locators[i]
		s := fmt.Sprintf("locator %d: %s  priority %d  weight %d  m-priority %d  m-weight %d  L=%d p=%d R=%d",
			i+1, l.Address.Text, l.Priority, l.Weight, l.MPriority, l.MWeight,
			b2i(l.Local), b2i(l.Probed), b2i(l.Reachable))
		if l.UnusedFlags != 0 {
			s += fmt.Sprintf("  unused-flags 0x%04x", l.UnusedFlags)
		}
		t.line(in+1, "%s", s)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func writeDataText(t *textWriter, in int, v *dataView) {
	f := v.Flags
	t.line(in, "flags: %s", flagsText(
		flagName{"N", "nonce-present", f.NoncePresent}, flagName{"L", "lsb-enabled", f.LSBEnabled},
		flagName{"E", "echo-nonce-request", f.EchoNonceRequest}, flagName{"V", "map-version-present", f.MapVersionPresent},
		flagName{"I", "instance-id-present", f.InstanceIDPresent}))
	if v.Reserved != 0 {
		t.line(in, "reserved: 0x%x", v.Reserved)
	}
	if v.SourceMapVersion != nil {
		t.line(in, "source-map-version: %d  dest-map-version: %d", *v.SourceMapVersion, *v.DestMapVersion)
	} else {
		t.line(in, "nonce: %s", v.Nonce)
	}
	if v.IID != nil {
		t.line(in, "iid: %d  lsbs: %s", *v.IID, v.LSBs)
	} else {
		t.line(in, "lsbs: %s", v.LSBs)
	}
	if v.Inner != nil {
		t.line(in, "inner: %s", innerSummary(v.Inner))
	}
}

// innerSummary is the one-line summary of a data packet's inner packet:
// "IPv4 10.1.1.1 -> 10.2.2.2  ICMP  length 84  ttl 64  echo-request id 1 seq 1".
func innerSummary(v *innerPacketView) string {
	src, dst := v.Src, v.Dst
	if v.SrcPort != nil {
		src = joinHostPort(src, *v.SrcPort)
		dst = joinHostPort(dst, *v.DstPort)
	}
	s := fmt.Sprintf("IPv%d %s -> %s  %s  length %d  ttl %d", v.Version, src, dst, v.Protocol, v.Length, v.TTL)
	if v.ICMPType != nil {
		icmp := uint8(protoICMP)
		if v.Version == 6 {
			icmp = protoICMPv6
		}
		s += fmt.Sprintf("  %s code %d", icmpTypeName(icmp, *v.ICMPType), *v.ICMPCode)
		if v.ICMPID != nil {
			s += fmt.Sprintf(" id %d seq %d", *v.ICMPID, *v.ICMPSeq)
		}
	}
	if v.Fragment {
		s += "  fragment"
	}
	if v.CapturedLength != v.Length {
		s += fmt.Sprintf("  (%d bytes after the LISP header)", v.CapturedLength)
	}
	return s
}

// joinHostPort formats "ip:port", bracketing IPv6 addresses.
func joinHostPort(ip string, port uint16) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + strconv.Itoa(int(port))
	}
	return ip + ":" + strconv.Itoa(int(port))
}
