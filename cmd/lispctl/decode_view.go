package main

// The views of decoded packets: plain structs built from the wire package's
// types, rendered as JSON Lines by "lispctl decode --json" and as text
// blocks by format_text.go. Presentation stays here, out of package wire.
//
// JSON keys (stable: keys may be added, never renamed or removed).
//
// Every line is one object for one packet. It starts with:
//
//	frame        int     1-based frame number in the capture (--hex: 1, 2, ...)
//	first_frame  int     first fragment's frame, only for reassembled datagrams
//	time         string  capture time, RFC 3339 UTC with nanoseconds (absent for --hex)
//	src, dst     string  outer IP address and UDP port, "ip:port" / "[ip6]:port" (absent for --hex)
//	length       int     UDP payload length in bytes
//	type         string  "Map-Request", "Map-Reply", "Map-Register", "Map-Notify",
//	                     "Map-Notify-Ack", "Encapsulated-Control-Message" or "Data";
//	                     for a control message that failed to decode, the name of its
//	                     type field ("Map-Referral", "Type-12", ...)
//
// then the fields of the message (below), and for a packet that could not
// be decoded:
//
//	error        string  why (the wire package's error, which names the field and offset)
//	payload_hex  string  the whole UDP payload in hex
//
// Control messages (Map-Request, Map-Reply, Map-Register, Map-Notify,
// Map-Notify-Ack):
//
//	flags          object  one boolean per flag bit of the type, named as below
//	reserved       int     the reserved bits of the first word, in place
//	nonce          string  64-bit nonce, "0x" and 16 hex digits
//	record_count   int     number of records
//	records        array   the records (Map-Request: request records, else mapping records)
//	trailing_bytes int     bytes after the message's declared contents (accepted, ignored)
//	trailing_hex   string  those bytes in hex, only when there are some
//
//	Map-Request flags: authoritative (A), map_data_present (M), probe (P),
//	smr (S), pitr (p), smr_invoked (s), xtr_id_present (I), local_xtr (L),
//	dont_map_reply (D). Map-Request also has source_eid (address),
//	itr_rlocs (array of address), map_reply_record (mapping record, only
//	with M), and xtr_id / site_id (only with I).
//	Request record: notify_requested (N), reserved, eid_mask_len,
//	eid_prefix, iid, eid (address).
//
//	Map-Reply flags: probe (P), echo_nonce_capable (E), security (S).
//
//	Map-Register flags: proxy_map_reply (P), security_capable (S),
//	xtr_id_present (I), eid_notify (E), use_ttl_for_timeout (T),
//	merge_request (a), want_map_notify (M).
//	Map-Notify and Map-Notify-Ack flags: xtr_id_present (I).
//	Map-Register, Map-Notify and Map-Notify-Ack also have key_id,
//	algorithm_id, algorithm (IANA name), auth_data_length, auth_data (hex),
//	auth_data_form ("full", "truncated", "none" or "nonstandard": the
//	length against the algorithm's HMAC output), and xtr_id (32 hex
//	digits) / site_id ("0x" and 16 hex digits), only with I.
//
// Mapping record: record_ttl (minutes), eid_mask_len, action (IANA name),
// action_code, authoritative (A), reserved, rsvd, map_version, eid_prefix
// (the EID and "/mask-len", without the instance-ID), iid (the
// Instance-ID LCAF's instance-ID, 0 for a plain EID), eid (address),
// locator_count, locators.
//
// Locator: priority, weight, m_priority, m_weight, local (L), probed (p),
// reachable (R), unused_flags, address (address).
//
// Address: afi ("none", "ipv4", "ipv6", "dn", "mac", "lcaf"), text (human
// form), and by family ip, mac, name (distinguished name); for an LCAF
// lcaf_type (name), lcaf_type_number, lcaf_flags, lcaf_rsvd1, lcaf_rsvd2,
// and instance_id, iid_mask_len, inner (address) for Instance-ID, list
// (array of address) for AFI-List, body_hex for the other types.
//
// Encapsulated-Control-Message: flags security (S), ddt_originated (D),
// to_etr (E), to_ms (M); reserved; inner_src, inner_dst ("ip:port" of the
// inner IP/UDP header); inner_ttl; message (the inner control message: an
// object with "type" and that message's fields); trailing_bytes.
//
// Data (UDP 4341): flags nonce_present (N), lsb_enabled (L),
// echo_nonce_request (E), map_version_present (V), instance_id_present
// (I); reserved (the R/K/K bits); nonce ("0x" and 6 hex digits, when V is
// clear) or source_map_version and dest_map_version (when V is set); iid
// (when I is set); lsbs (Locator-Status-Bits in hex); inner (the inner IP
// packet: version, src, dst, protocol, protocol_number, length, ttl,
// fragment, captured_length, and src_port / dst_port for TCP and UDP,
// icmp_type / icmp_code for ICMP and ICMPv6, icmp_id / icmp_seq for echo
// messages); inner is absent when the inner packet cannot be read, which
// is then the packet's error.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/lispd/lispd/wire"
)

// timeLayout is the capture time format of text and JSON output: RFC 3339
// in UTC with a fixed nine-digit fraction, so columns line up.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// typeData is the "type" of a LISP-encapsulated data packet.
const typeData = "Data"

// packetMeta is where and when a packet was captured.
type packetMeta struct {
	Frame      int    `json:"frame"`
	FirstFrame int    `json:"first_frame,omitempty"`
	Time       string `json:"time,omitempty"`
	Src        string `json:"src,omitempty"`
	Dst        string `json:"dst,omitempty"`
	Length     int    `json:"length"`
}

// packetView is one decoded (or undecodable) packet. Its JSON form is a
// single flat object: the meta keys, "type", the message's own keys, then
// "error" and "payload_hex" for a failure.
type packetView struct {
	Meta packetMeta
	// Type is the message type name ("" when not even that is known).
	Type string
	// Body is the decoded message: *mapRequestView, *mapReplyView,
	// *authMessageView, *ecmView or *dataView; nil when decoding failed
	// before anything could be shown.
	Body any
	// Err is the decoding error, "" on success.
	Err string
	// Payload is the raw UDP payload, shown when decoding failed.
	Payload []byte
	// frameOnly marks a capture frame that could not be read at all (no
	// datagram, so no addresses or payload): only frame and error are
	// shown.
	frameOnly bool
}

// failed reports whether the packet could not be decoded.
func (p *packetView) failed() bool { return p.Err != "" }

// errorTail holds the keys written after the message for a failure.
type errorTail struct {
	Error      string `json:"error"`
	PayloadHex string `json:"payload_hex"`
}

// MarshalJSON writes the packet as one flat object.
func (p *packetView) MarshalJSON() ([]byte, error) {
	if p.frameOnly {
		return mergeObjects(struct {
			Frame int    `json:"frame"`
			Error string `json:"error"`
		}{p.Meta.Frame, p.Err})
	}
	parts := []any{p.Meta}
	if p.Type != "" {
		parts = append(parts, typeKey{p.Type})
	}
	if p.Body != nil {
		parts = append(parts, p.Body)
	}
	if p.Err != "" {
		parts = append(parts, errorTail{Error: p.Err, PayloadHex: hex.EncodeToString(p.Payload)})
	}
	return mergeObjects(parts...)
}

// typeKey is the "type" key on its own.
type typeKey struct {
	Type string `json:"type"`
}

// typedView is a control message nested in another one (the ECM's inner
// message): "type" followed by the message's keys.
type typedView struct {
	Type string
	Body any
}

// MarshalJSON writes {"type": ..., <body keys>}.
func (t typedView) MarshalJSON() ([]byte, error) {
	return mergeObjects(typeKey{t.Type}, t.Body)
}

// mergeObjects encodes each value, which must encode as a JSON object, and
// joins their keys into one object, in order. HTML characters are not
// escaped.
func mergeObjects(vals ...any) ([]byte, error) {
	out := []byte{'{'}
	for _, v := range vals {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
		b := bytes.TrimSpace(buf.Bytes())
		if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
			return nil, fmt.Errorf("decode: %T does not encode as a JSON object", v)
		}
		inner := b[1 : len(b)-1]
		if len(inner) == 0 {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, inner...)
	}
	return append(out, '}'), nil
}

// mapRequestFlags are the flag bits of a Map-Request.
type mapRequestFlags struct {
	Authoritative  bool `json:"authoritative"`
	MapDataPresent bool `json:"map_data_present"`
	Probe          bool `json:"probe"`
	SMR            bool `json:"smr"`
	PITR           bool `json:"pitr"`
	SMRInvoked     bool `json:"smr_invoked"`
	XTRIDPresent   bool `json:"xtr_id_present"`
	LocalXTR       bool `json:"local_xtr"`
	DontMapReply   bool `json:"dont_map_reply"`
}

// mapRequestView is a Map-Request.
type mapRequestView struct {
	Flags          mapRequestFlags     `json:"flags"`
	Reserved       uint32              `json:"reserved"`
	Nonce          string              `json:"nonce"`
	SourceEID      addressView         `json:"source_eid"`
	ITRRLOCs       []addressView       `json:"itr_rlocs"`
	RecordCount    int                 `json:"record_count"`
	Records        []requestRecordView `json:"records"`
	MapReplyRecord *recordView         `json:"map_reply_record,omitempty"`
	XTRID          string              `json:"xtr_id,omitempty"`
	SiteID         string              `json:"site_id,omitempty"`
	TrailingBytes  int                 `json:"trailing_bytes"`
	TrailingHex    string              `json:"trailing_hex,omitempty"`
}

// requestRecordView is one EID record of a Map-Request.
type requestRecordView struct {
	NotifyRequested bool        `json:"notify_requested"`
	Reserved        uint8       `json:"reserved"`
	EIDMaskLen      uint8       `json:"eid_mask_len"`
	EIDPrefix       string      `json:"eid_prefix"`
	IID             uint32      `json:"iid"`
	EID             addressView `json:"eid"`
}

// mapReplyFlags are the flag bits of a Map-Reply.
type mapReplyFlags struct {
	Probe            bool `json:"probe"`
	EchoNonceCapable bool `json:"echo_nonce_capable"`
	Security         bool `json:"security"`
}

// mapReplyView is a Map-Reply.
type mapReplyView struct {
	Flags         mapReplyFlags `json:"flags"`
	Reserved      uint32        `json:"reserved"`
	Nonce         string        `json:"nonce"`
	RecordCount   int           `json:"record_count"`
	Records       []recordView  `json:"records"`
	TrailingBytes int           `json:"trailing_bytes"`
	TrailingHex   string        `json:"trailing_hex,omitempty"`
}

// mapRegisterFlags are the flag bits of a Map-Register.
type mapRegisterFlags struct {
	ProxyMapReply    bool `json:"proxy_map_reply"`
	SecurityCapable  bool `json:"security_capable"`
	XTRIDPresent     bool `json:"xtr_id_present"`
	EIDNotify        bool `json:"eid_notify"`
	UseTTLForTimeout bool `json:"use_ttl_for_timeout"`
	MergeRequest     bool `json:"merge_request"`
	WantMapNotify    bool `json:"want_map_notify"`
}

// mapNotifyFlags are the flag bits of a Map-Notify and Map-Notify-Ack.
type mapNotifyFlags struct {
	XTRIDPresent bool `json:"xtr_id_present"`
}

// authMessageView is a Map-Register, Map-Notify or Map-Notify-Ack: the
// messages with authentication data. Flags holds a mapRegisterFlags or a
// mapNotifyFlags.
type authMessageView struct {
	Flags          any          `json:"flags"`
	Reserved       uint32       `json:"reserved"`
	Nonce          string       `json:"nonce"`
	KeyID          uint8        `json:"key_id"`
	AlgorithmID    uint8        `json:"algorithm_id"`
	Algorithm      string       `json:"algorithm"`
	AuthDataLength int          `json:"auth_data_length"`
	AuthData       string       `json:"auth_data"`
	AuthDataForm   string       `json:"auth_data_form"`
	RecordCount    int          `json:"record_count"`
	Records        []recordView `json:"records"`
	XTRID          string       `json:"xtr_id,omitempty"`
	SiteID         string       `json:"site_id,omitempty"`
	TrailingBytes  int          `json:"trailing_bytes"`
	TrailingHex    string       `json:"trailing_hex,omitempty"`
}

// recordView is a mapping record (EID record with locators).
type recordView struct {
	RecordTTL     uint32        `json:"record_ttl"`
	EIDMaskLen    uint8         `json:"eid_mask_len"`
	Action        string        `json:"action"`
	ActionCode    uint8         `json:"action_code"`
	Authoritative bool          `json:"authoritative"`
	Reserved      uint16        `json:"reserved"`
	Rsvd          uint8         `json:"rsvd"`
	MapVersion    uint16        `json:"map_version"`
	EIDPrefix     string        `json:"eid_prefix"`
	IID           uint32        `json:"iid"`
	EID           addressView   `json:"eid"`
	LocatorCount  int           `json:"locator_count"`
	Locators      []locatorView `json:"locators"`
}

// locatorView is one locator of a mapping record.
type locatorView struct {
	Priority    uint8       `json:"priority"`
	Weight      uint8       `json:"weight"`
	MPriority   uint8       `json:"m_priority"`
	MWeight     uint8       `json:"m_weight"`
	Local       bool        `json:"local"`
	Probed      bool        `json:"probed"`
	Reachable   bool        `json:"reachable"`
	UnusedFlags uint16      `json:"unused_flags"`
	Address     addressView `json:"address"`
}

// addressView is a LISP address (AFI-prefixed, possibly an LCAF).
type addressView struct {
	AFI            string        `json:"afi"`
	Text           string        `json:"text"`
	IP             string        `json:"ip,omitempty"`
	MAC            string        `json:"mac,omitempty"`
	Name           *string       `json:"name,omitempty"`
	LCAFType       string        `json:"lcaf_type,omitempty"`
	LCAFTypeNumber *uint8        `json:"lcaf_type_number,omitempty"`
	LCAFFlags      *uint8        `json:"lcaf_flags,omitempty"`
	LCAFRsvd1      *uint8        `json:"lcaf_rsvd1,omitempty"`
	LCAFRsvd2      *uint8        `json:"lcaf_rsvd2,omitempty"`
	InstanceID     *uint32       `json:"instance_id,omitempty"`
	IIDMaskLen     *uint8        `json:"iid_mask_len,omitempty"`
	Inner          *addressView  `json:"inner,omitempty"`
	List           []addressView `json:"list,omitempty"`
	BodyHex        *string       `json:"body_hex,omitempty"`
}

// ecmFlags are the flag bits of an Encapsulated Control Message.
type ecmFlags struct {
	Security      bool `json:"security"`
	DDTOriginated bool `json:"ddt_originated"`
	ToETR         bool `json:"to_etr"`
	ToMS          bool `json:"to_ms"`
}

// ecmView is an Encapsulated Control Message.
type ecmView struct {
	Flags         ecmFlags  `json:"flags"`
	Reserved      uint32    `json:"reserved"`
	InnerSrc      string    `json:"inner_src"`
	InnerDst      string    `json:"inner_dst"`
	InnerTTL      uint8     `json:"inner_ttl"`
	Message       typedView `json:"message"`
	TrailingBytes int       `json:"trailing_bytes"`
	TrailingHex   string    `json:"trailing_hex,omitempty"`
}

// dataFlags are the flag bits of the LISP data header.
type dataFlags struct {
	NoncePresent      bool `json:"nonce_present"`
	LSBEnabled        bool `json:"lsb_enabled"`
	EchoNonceRequest  bool `json:"echo_nonce_request"`
	MapVersionPresent bool `json:"map_version_present"`
	InstanceIDPresent bool `json:"instance_id_present"`
}

// dataView is a LISP-encapsulated data packet.
type dataView struct {
	Flags            dataFlags        `json:"flags"`
	Reserved         uint8            `json:"reserved"`
	Nonce            string           `json:"nonce,omitempty"`
	SourceMapVersion *uint16          `json:"source_map_version,omitempty"`
	DestMapVersion   *uint16          `json:"dest_map_version,omitempty"`
	IID              *uint32          `json:"iid,omitempty"`
	LSBs             string           `json:"lsbs"`
	Inner            *innerPacketView `json:"inner,omitempty"`
}

// hexNonce64 formats a control-message nonce.
func hexNonce64(n uint64) string { return fmt.Sprintf("0x%016x", n) }

// viewPacket builds the view of one UDP payload. control says whether it
// is a control message (port 4342) or a data packet (port 4341). The
// returned view has Err set when the payload could not be decoded.
func viewPacket(meta packetMeta, payload []byte, control bool) *packetView {
	meta.Length = len(payload)
	p := &packetView{Meta: meta}
	if control {
		if len(payload) > 0 {
			p.Type = wire.MessageType(payload[0] >> 4).String()
		}
		msg, err := wire.Parse(payload)
		if err != nil {
			p.Err = err.Error()
			p.Payload = payload
			return p
		}
		p.Type = msg.Type().String()
		p.Body = viewMessage(msg, payload)
		return p
	}
	p.Type = typeData
	body, err := viewData(payload)
	if body != nil {
		p.Body = body
	}
	if err != nil {
		p.Err = err.Error()
		p.Payload = payload
	}
	return p
}

// viewMessage builds the view of a parsed control message; raw is its
// encoding (for the trailing bytes).
func viewMessage(msg wire.Message, raw []byte) any {
	switch m := msg.(type) {
	case *wire.MapRequest:
		return viewMapRequest(m, raw)
	case *wire.MapReply:
		return &mapReplyView{
			Flags:         mapReplyFlags{Probe: m.Probe, EchoNonceCapable: m.EchoNonce, Security: m.Security},
			Reserved:      m.Reserved,
			Nonce:         hexNonce64(m.Nonce),
			RecordCount:   len(m.Records),
			Records:       viewRecords(m.Records),
			TrailingBytes: m.Trailing,
			TrailingHex:   trailingHex(raw, m.Trailing),
		}
	case *wire.MapRegister:
		v := viewAuth(mapRegisterFlags{
			ProxyMapReply: m.ProxyReply, SecurityCapable: m.SecurityCapable, XTRIDPresent: m.XTRIDPresent,
			EIDNotify: m.EIDNotify, UseTTLForTimeout: m.UseTTL, MergeRequest: m.MergeRequest,
			WantMapNotify: m.WantMapNotify,
		}, m.Reserved, m.Nonce, m.KeyID, m.AlgorithmID, m.AuthData, m.Records, m.Trailing, raw)
		if m.XTRIDPresent {
			v.XTRID, v.SiteID = m.XTRID.String(), hexNonce64(m.SiteID)
		}
		return v
	case *wire.MapNotify:
		return viewNotify((*wire.MapNotify)(m), raw)
	case *wire.MapNotifyAck:
		return viewNotify((*wire.MapNotify)(m), raw)
	case *wire.ECM:
		return viewECM(m, raw)
	case *wire.MapReferral:
		return viewMapReferral(m, raw)
	case *wire.Info:
		return viewInfo(m, raw)
	case *wire.SharedExtension:
		return &sharedExtensionView{SubType: m.SubType, DataLength: len(m.Data), Data: hex.EncodeToString(m.Data)}
	}
	// wire.Parse returns only the types above; a new one shows as its
	// type name with no fields rather than being dropped.
	return struct{}{}
}

func viewMapRequest(m *wire.MapRequest, raw []byte) *mapRequestView {
	v := &mapRequestView{
		Flags: mapRequestFlags{
			Authoritative: m.Authoritative, MapDataPresent: m.MapReplyRecord != nil, Probe: m.Probe,
			SMR: m.SMR, PITR: m.PITR, SMRInvoked: m.SMRInvoked, XTRIDPresent: m.XTRIDPresent,
			LocalXTR: m.LocalXTR, DontMapReply: m.DontMapReply,
		},
		Reserved:      m.Reserved,
		Nonce:         hexNonce64(m.Nonce),
		SourceEID:     viewAddress(&m.SourceEID),
		ITRRLOCs:      make([]addressView, 0, len(m.ITRRLOCs)),
		RecordCount:   len(m.Records),
		Records:       make([]requestRecordView, 0, len(m.Records)),
		TrailingBytes: m.Trailing,
		TrailingHex:   trailingHex(raw, m.Trailing),
	}
	for i := range m.ITRRLOCs {
		v.ITRRLOCs = append(v.ITRRLOCs, viewAddress(&m.ITRRLOCs[i]))
	}
	for i := range m.Records {
		r := &m.Records[i]
		prefix, iid := eidPrefixText(&r.EID, r.MaskLen)
		v.Records = append(v.Records, requestRecordView{
			NotifyRequested: r.NotifyRequested,
			Reserved:        r.Reserved,
			EIDMaskLen:      r.MaskLen,
			EIDPrefix:       prefix,
			IID:             iid,
			EID:             viewAddress(&r.EID),
		})
	}
	if m.MapReplyRecord != nil {
		rv := viewRecord(m.MapReplyRecord)
		v.MapReplyRecord = &rv
	}
	if m.XTRIDPresent {
		v.XTRID, v.SiteID = m.XTRID.String(), hexNonce64(m.SiteID)
		if m.NoSiteID {
			v.SiteID = "none" // lispers.net sends the xTR-ID alone
		}
	}
	return v
}

func viewNotify(m *wire.MapNotify, raw []byte) *authMessageView {
	v := viewAuth(mapNotifyFlags{XTRIDPresent: m.XTRIDPresent}, m.Reserved, m.Nonce, m.KeyID,
		m.AlgorithmID, m.AuthData, m.Records, m.Trailing, raw)
	if m.XTRIDPresent {
		v.XTRID, v.SiteID = m.XTRID.String(), hexNonce64(m.SiteID)
	}
	return v
}

func viewAuth(flags any, reserved uint32, nonce uint64, keyID uint8, alg wire.AlgorithmID,
	auth []byte, recs []wire.EIDRecord, trailing int, raw []byte) *authMessageView {
	return &authMessageView{
		Flags:          flags,
		Reserved:       reserved,
		Nonce:          hexNonce64(nonce),
		KeyID:          keyID,
		AlgorithmID:    uint8(alg),
		Algorithm:      alg.String(),
		AuthDataLength: len(auth),
		AuthData:       hex.EncodeToString(auth),
		AuthDataForm:   authDataForm(alg, len(auth)),
		RecordCount:    len(recs),
		Records:        viewRecords(recs),
		TrailingBytes:  trailing,
		TrailingHex:    trailingHex(raw, trailing),
	}
}

// authDataForm says how the Authentication Data Length compares with the
// algorithm's MAC: "full" (the whole HMAC output, what deployed routers
// send), "truncated" (the length the algorithm's name gives), "none" (no
// data, as algorithm None has), or "nonstandard".
func authDataForm(alg wire.AlgorithmID, n int) string {
	switch {
	case n == 0:
		return "none"
	case alg.AuthLen(false) == n:
		return "full"
	case alg.AuthLen(true) == n:
		return "truncated"
	}
	return "nonstandard"
}

func viewECM(m *wire.ECM, raw []byte) *ecmView {
	v := &ecmView{
		Flags:         ecmFlags{Security: m.Security, DDTOriginated: m.DDT, ToETR: m.ToETR, ToMS: m.ToMS},
		Reserved:      m.Reserved,
		InnerSrc:      m.Source.String(),
		InnerDst:      m.Destination.String(),
		InnerTTL:      m.TTL,
		TrailingBytes: m.Trailing,
		TrailingHex:   trailingHex(raw, m.Trailing),
	}
	// The inner message's own trailing bytes lie inside the ECM's UDP
	// payload; ECMPayload returns exactly that payload.
	inner, err := wire.ECMPayload(raw)
	if err != nil {
		inner = nil // cannot happen after a successful Parse; show no trailing hex
	}
	v.Message = typedView{Type: m.Inner.Type().String(), Body: viewMessage(m.Inner, inner)}
	return v
}

// trailingHex returns the last n bytes of raw in hex, or "" when there are
// none (or raw is too short to hold them).
func trailingHex(raw []byte, n int) string {
	if n <= 0 || n > len(raw) {
		return ""
	}
	return hex.EncodeToString(raw[len(raw)-n:])
}

func viewRecords(recs []wire.EIDRecord) []recordView {
	out := make([]recordView, 0, len(recs))
	for i := range recs {
		out = append(out, viewRecord(&recs[i]))
	}
	return out
}

func viewRecord(r *wire.EIDRecord) recordView {
	prefix, iid := eidPrefixText(&r.EID, r.MaskLen)
	v := recordView{
		RecordTTL:     r.RecordTTL,
		EIDMaskLen:    r.MaskLen,
		Action:        r.Action.String(),
		ActionCode:    uint8(r.Action),
		Authoritative: r.Authoritative,
		Reserved:      r.Reserved,
		Rsvd:          r.Rsvd,
		MapVersion:    r.MapVersion,
		EIDPrefix:     prefix,
		IID:           iid,
		EID:           viewAddress(&r.EID),
		LocatorCount:  len(r.Locators),
		Locators:      make([]locatorView, 0, len(r.Locators)),
	}
	for i := range r.Locators {
		l := &r.Locators[i]
		v.Locators = append(v.Locators, locatorView{
			Priority:    l.Priority,
			Weight:      l.Weight,
			MPriority:   l.MPriority,
			MWeight:     l.MWeight,
			Local:       l.Local,
			Probed:      l.Probed,
			Reachable:   l.Reachable,
			UnusedFlags: l.UnusedFlags,
			Address:     viewAddress(&l.Address),
		})
	}
	return v
}

// eidPrefixText returns an EID-prefix as "address/mask-len", without the
// instance-ID, and the instance-ID of an Instance-ID LCAF (0 for any other
// address). The address is shown as it is on the wire, host bits and all.
func eidPrefixText(a *wire.Address, maskLen uint8) (string, uint32) {
	var iid uint32
	inner := a
	if a.AFI == wire.AFILCAF && a.LCAFType == wire.LCAFInstanceID && a.Inner != nil {
		iid, inner = a.InstanceID, a.Inner
	}
	return fmt.Sprintf("%s/%d", inner.String(), maskLen), iid
}

// addressText is the human form of an address: the wire package's, except
// that an Instance-ID LCAF reads "iid:N/address", as EIDs do everywhere in
// lispctl, with its IID mask-len when that is not 0.
func addressText(a *wire.Address) string {
	if a.AFI != wire.AFILCAF {
		return a.String()
	}
	switch a.LCAFType {
	case wire.LCAFInstanceID:
		if a.Inner == nil {
			break
		}
		s := "iid:" + strconv.FormatUint(uint64(a.InstanceID), 10) + "/" + addressText(a.Inner)
		if a.IIDMaskLen != 0 {
			s += fmt.Sprintf(" (iid-mask-len %d)", a.IIDMaskLen)
		}
		return s
	case wire.LCAFAFIList:
		parts := make([]string, len(a.List))
		for i := range a.List {
			parts[i] = addressText(&a.List[i])
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return a.String()
}

func viewAddress(a *wire.Address) addressView {
	v := addressView{AFI: a.AFI.String(), Text: addressText(a)}
	switch a.AFI {
	case wire.AFIIPv4, wire.AFIIPv6:
		v.IP = a.IP.String()
	case wire.AFIMAC:
		v.MAC = a.String()
	case wire.AFIDistinguishedName:
		name := string(a.Raw)
		v.Name = &name
	case wire.AFILCAF:
		t, flags, r1 := uint8(a.LCAFType), a.LCAFFlags, a.LCAFRsvd1
		v.LCAFType, v.LCAFTypeNumber, v.LCAFFlags, v.LCAFRsvd1 = a.LCAFType.String(), &t, &flags, &r1
		switch a.LCAFType {
		case wire.LCAFInstanceID:
			iid, ml := a.InstanceID, a.IIDMaskLen
			v.InstanceID, v.IIDMaskLen = &iid, &ml
			if a.Inner != nil {
				in := viewAddress(a.Inner)
				v.Inner = &in
			}
		case wire.LCAFAFIList:
			r2 := a.LCAFRsvd2
			v.LCAFRsvd2 = &r2
			v.List = make([]addressView, 0, len(a.List))
			for i := range a.List {
				v.List = append(v.List, viewAddress(&a.List[i]))
			}
		default:
			r2 := a.LCAFRsvd2
			body := hex.EncodeToString(a.Raw)
			v.LCAFRsvd2, v.BodyHex = &r2, &body
		}
	}
	return v
}

// viewData builds the view of a LISP data packet: the 8-byte LISP header
// and a summary of the inner IP packet. The error reports a payload too
// short for the header or an inner packet that cannot be read; the view
// holds whatever was decoded before it (nil when nothing was).
func viewData(payload []byte) (*dataView, error) {
	h, err := wire.ParseDataHeader(payload)
	if err != nil {
		return nil, fmt.Errorf("decode: LISP data header needs %d bytes, payload has %d: %w",
			wire.DataHeaderLen, len(payload), err)
	}
	v := &dataView{
		Flags: dataFlags{NoncePresent: h.N, LSBEnabled: h.L, EchoNonceRequest: h.E,
			MapVersionPresent: h.V, InstanceIDPresent: h.I},
		Reserved: h.Reserved,
	}
	if h.V {
		s, d := h.SourceMapVersion, h.DestMapVersion
		v.SourceMapVersion, v.DestMapVersion = &s, &d
	} else {
		v.Nonce = fmt.Sprintf("0x%06x", h.Nonce)
	}
	if h.I {
		iid := h.InstanceID
		v.IID = &iid
		v.LSBs = fmt.Sprintf("0x%02x", h.LSB)
	} else {
		v.LSBs = fmt.Sprintf("0x%08x", h.LSB)
	}
	inner, err := parseInnerPacket(payload[wire.DataHeaderLen:])
	if err != nil {
		return v, err
	}
	v.Inner = inner
	return v, nil
}

// metaFor returns the packet meta of a captured datagram.
func metaFor(frame, firstFrame int, t time.Time, src, dst netip.AddrPort) packetMeta {
	m := packetMeta{Frame: frame, Src: src.String(), Dst: dst.String()}
	if firstFrame != 0 && firstFrame != frame {
		m.FirstFrame = firstFrame
	}
	if !t.IsZero() {
		m.Time = t.UTC().Format(timeLayout)
	}
	return m
}

// mapReferralView is a Map-Referral (LISP-DDT).
type mapReferralView struct {
	Reserved      uint32               `json:"reserved"`
	Nonce         string               `json:"nonce"`
	RecordCount   int                  `json:"record_count"`
	Records       []referralRecordView `json:"records"`
	TrailingBytes int                  `json:"trailing_bytes"`
	TrailingHex   string               `json:"trailing_hex,omitempty"`
}

// referralRecordView is one record of a Map-Referral: a mapping record whose
// locators are the referrals, with its incomplete bit and signatures.
type referralRecordView struct {
	recordView
	Incomplete bool            `json:"incomplete"`
	SigCount   int             `json:"sig_count"`
	Signatures []signatureView `json:"signatures"`
}

// signatureView is a signature section of a Map-Referral record.
type signatureView struct {
	OriginalTTL uint32 `json:"original_ttl"`
	Expiration  uint32 `json:"expiration"`
	Inception   uint32 `json:"inception"`
	KeyTag      uint16 `json:"key_tag"`
	Algorithm   uint8  `json:"algorithm"`
	Reserved    uint32 `json:"reserved"`
	Signature   string `json:"signature"`
}

// infoView is an Info-Request or Info-Reply (LISP NAT traversal).
type infoView struct {
	Reply          bool        `json:"reply"`
	Reserved       uint32      `json:"reserved"`
	Nonce          string      `json:"nonce"`
	KeyID          uint8       `json:"key_id"`
	AlgorithmID    uint8       `json:"algorithm_id"`
	Algorithm      string      `json:"algorithm"`
	AuthDataLength int         `json:"auth_data_length"`
	AuthData       string      `json:"auth_data"`
	AuthDataForm   string      `json:"auth_data_form"`
	TTL            uint32      `json:"ttl"`
	EIDReserved    uint8       `json:"eid_reserved"`
	EIDMaskLen     uint8       `json:"eid_mask_len"`
	EIDPrefix      string      `json:"eid_prefix"`
	IID            uint32      `json:"iid"`
	EID            addressView `json:"eid"`
	Address        addressView `json:"address"`
	NAT            *natView    `json:"nat_traversal,omitempty"`
	NATError       string      `json:"nat_traversal_error,omitempty"`
	TrailingBytes  int         `json:"trailing_bytes"`
	TrailingHex    string      `json:"trailing_hex,omitempty"`
}

// natView is the decoded NAT-Traversal LCAF of an Info-Reply.
type natView struct {
	MSPort     uint16        `json:"ms_port"`
	ETRPort    uint16        `json:"etr_port"`
	GlobalETR  addressView   `json:"global_etr_rloc"`
	MS         addressView   `json:"ms_rloc"`
	PrivateETR addressView   `json:"private_etr_rloc"`
	RTRs       []addressView `json:"rtr_rlocs"`
}

// sharedExtensionView is a LISP Shared Extension Message, opaque after its
// sub-type.
type sharedExtensionView struct {
	SubType    uint16 `json:"sub_type"`
	DataLength int    `json:"data_length"`
	Data       string `json:"data"`
}

func viewMapReferral(m *wire.MapReferral, raw []byte) *mapReferralView {
	v := &mapReferralView{
		Reserved:      m.Reserved,
		Nonce:         hexNonce64(m.Nonce),
		RecordCount:   len(m.Records),
		Records:       make([]referralRecordView, 0, len(m.Records)),
		TrailingBytes: m.Trailing,
		TrailingHex:   trailingHex(raw, m.Trailing),
	}
	for i := range m.Records {
		r := &m.Records[i]
		e := wire.EIDRecord{RecordTTL: r.RecordTTL, MaskLen: r.MaskLen, Authoritative: r.Authoritative,
			Reserved: r.Reserved, MapVersion: r.MapVersion, EID: r.EID, Locators: r.Locators}
		rv := referralRecordView{recordView: viewRecord(&e), Incomplete: r.Incomplete,
			SigCount: len(r.Signatures), Signatures: make([]signatureView, 0, len(r.Signatures))}
		rv.Action, rv.ActionCode = r.Action.String(), uint8(r.Action)
		for _, s := range r.Signatures {
			rv.Signatures = append(rv.Signatures, signatureView{OriginalTTL: s.OriginalTTL, Expiration: s.Expiration,
				Inception: s.Inception, KeyTag: s.KeyTag, Algorithm: s.Algorithm, Reserved: s.Reserved,
				Signature: hex.EncodeToString(s.Signature)})
		}
		v.Records = append(v.Records, rv)
	}
	return v
}

func viewInfo(m *wire.Info, raw []byte) *infoView {
	prefix, iid := eidPrefixText(&m.EID, m.MaskLen)
	v := &infoView{
		Reply: m.Reply, Reserved: m.Reserved, Nonce: hexNonce64(m.Nonce),
		KeyID: m.KeyID, AlgorithmID: uint8(m.AlgorithmID), Algorithm: m.AlgorithmID.String(),
		AuthDataLength: len(m.AuthData), AuthData: hex.EncodeToString(m.AuthData),
		AuthDataForm: authDataForm(m.AlgorithmID, len(m.AuthData)),
		TTL:          m.TTL, EIDReserved: m.EIDReserved, EIDMaskLen: m.MaskLen, EIDPrefix: prefix, IID: iid,
		EID: viewAddress(&m.EID), Address: viewAddress(&m.Address),
		TrailingBytes: m.Trailing, TrailingHex: trailingHex(raw, m.Trailing),
	}
	if m.Address.AFI == wire.AFILCAF && m.Address.LCAFType == wire.LCAFNATTraversal {
		n, err := wire.ParseNATTraversal(m.Address)
		if err != nil {
			v.NATError = err.Error()
			return v
		}
		nv := &natView{MSPort: n.MSPort, ETRPort: n.ETRPort, GlobalETR: viewAddress(&n.GlobalETR),
			MS: viewAddress(&n.MS), PrivateETR: viewAddress(&n.PrivateETR), RTRs: make([]addressView, 0, len(n.RTRs))}
		for i := range n.RTRs {
			nv.RTRs = append(nv.RTRs, viewAddress(&n.RTRs[i]))
		}
		v.NAT = nv
	}
	return v
}
