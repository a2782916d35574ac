package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lispd/lispd/capture"
)

// TestDecodeAgreesWithTshark decodes the test capture with lispctl and with
// tshark, an implementation we did not write, and compares what both show:
// message type, nonce, records, TTLs, mask lengths, locators, key ID and
// authentication data length, the data header's nonce and instance-ID, and
// the inner packet's addresses. Frames tshark does not decode (it has no
// Map-Notify-Ack) are skipped; the corrupt frame must be flagged by both.
func TestDecodeAgreesWithTshark(t *testing.T) {
	if _, err := capture.LookTshark(); err != nil {
		t.Skipf("tshark not installed: %v", err)
	}
	path := writeDecodeCapture(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pkts, err := capture.TsharkPackets(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	out, _, _ := execLispctl(t, nil, "decode", "--pcap", path, "--json")
	ours := map[int]map[string]any{}
	for _, m := range jsonLines(t, out) {
		ours[int(mustInt(t, m["frame"]))] = m
	}
	compared := 0
	for i := range pkts {
		p := &pkts[i]
		m, ok := ours[p.Frame]
		switch {
		case p.HasProtocol("lisp-data"):
			if !ok {
				t.Errorf("frame %d: tshark sees LISP data, lispctl printed nothing", p.Frame)
				continue
			}
			compareData(t, p, m)
			compared++
		case p.HasProtocol("lisp"):
			if !ok {
				t.Errorf("frame %d: tshark sees LISP, lispctl printed nothing", p.Frame)
				continue
			}
			if p.Malformed {
				if _, failed := m["error"]; !failed {
					t.Errorf("frame %d: tshark finds it malformed, lispctl decoded it", p.Frame)
				}
				compared++
				continue
			}
			if !p.Has("lisp.nonce") {
				continue // a type tshark does not decode
			}
			compareControl(t, p, m)
			compared++
		default:
			if ok {
				t.Errorf("frame %d: lispctl decoded a frame tshark does not see as LISP", p.Frame)
			}
		}
	}
	if compared < 14 {
		t.Errorf("only %d frames compared", compared)
	}
}

// tsharkInts parses a tshark field's values as integers (decimal or 0x).
func tsharkInts(t *testing.T, p *capture.TsharkPacket, field string) []int64 {
	t.Helper()
	var out []int64
	for _, v := range p.Fields[field] {
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			t.Fatalf("frame %d: %s = %q: %v", p.Frame, field, v, err)
		}
		out = append(out, n)
	}
	return out
}

func compareControl(t *testing.T, p *capture.TsharkPacket, m map[string]any) {
	t.Helper()
	types := tsharkInts(t, p, "lisp.type")
	msg := m
	wantType := map[string]int64{"Map-Request": 1, "Map-Reply": 2, "Map-Register": 3, "Map-Notify": 4,
		"Map-Notify-Ack": 5, "Encapsulated-Control-Message": 8}
	if m["type"] == "Encapsulated-Control-Message" {
		msg = m["message"].(map[string]any)
		if len(types) != 2 || types[0] != 8 || types[1] != wantType[msg["type"].(string)] {
			t.Errorf("frame %d: tshark types %v, lispctl ECM of %v", p.Frame, types, msg["type"])
		}
	} else if len(types) != 1 || types[0] != wantType[m["type"].(string)] {
		t.Errorf("frame %d: tshark type %v, lispctl %v", p.Frame, types, m["type"])
	}
	if got := p.Field("lisp.nonce"); got != msg["nonce"] {
		t.Errorf("frame %d: tshark nonce %s, lispctl %v", p.Frame, got, msg["nonce"])
	}
	recs := asList(msg["records"])
	if n := tsharkInts(t, p, "lisp.records"); len(n) != 1 || n[0] != int64(len(recs)) {
		t.Errorf("frame %d: tshark record count %v, lispctl %d", p.Frame, n, len(recs))
	}
	var ttls, masks, iids []int64
	var locs []string
	for _, r := range recs {
		r := r.(map[string]any)
		if _, ok := r["record_ttl"]; ok {
			ttls = append(ttls, mustInt(t, r["record_ttl"]))
			masks = append(masks, mustInt(t, r["eid_mask_len"]))
		}
		if eid := r["eid"].(map[string]any); eid["instance_id"] != nil {
			iids = append(iids, mustInt(t, eid["instance_id"]))
		}
		for _, l := range asList(r["locators"]) {
			if a := l.(map[string]any)["address"].(map[string]any); a["ip"] != nil {
				locs = append(locs, a["ip"].(string))
			}
		}
	}
	for _, c := range []struct {
		field string
		ours  []int64
	}{{"lisp.mapping.ttl", ttls}, {"lisp.mapping.eid.masklen", masks}, {"lisp.lcaf.iid", iids}} {
		if got := tsharkInts(t, p, c.field); !slices.Equal(got, c.ours) {
			t.Errorf("frame %d: tshark %s %v, lispctl %v", p.Frame, c.field, got, c.ours)
		}
	}
	if got := p.Fields["lisp.loc.locator"]; !slices.Equal(got, locs) {
		t.Errorf("frame %d: tshark locators %v, lispctl %v", p.Frame, got, locs)
	}
	if p.Has("lisp.keyid") {
		// tshark reads the RFC 6830 16-bit Key ID: Key ID << 8 | Algorithm ID.
		want := mustInt(t, msg["key_id"])<<8 | mustInt(t, msg["algorithm_id"])
		if got := tsharkInts(t, p, "lisp.keyid"); len(got) != 1 || got[0] != want {
			t.Errorf("frame %d: tshark key id %v, lispctl %#x", p.Frame, got, want)
		}
		if got := tsharkInts(t, p, "lisp.authlen"); len(got) != 1 || got[0] != mustInt(t, msg["auth_data_length"]) {
			t.Errorf("frame %d: tshark auth length %v, lispctl %v", p.Frame, got, msg["auth_data_length"])
		}
		auth := strings.ReplaceAll(p.Field("lisp.auth"), ":", "")
		if auth != msg["auth_data"] {
			t.Errorf("frame %d: tshark auth data %s, lispctl %v", p.Frame, auth, msg["auth_data"])
		}
	}
	if p.Has("lisp.xtrid") {
		if got := strings.ReplaceAll(p.Field("lisp.xtrid"), ":", ""); got != msg["xtr_id"] {
			t.Errorf("frame %d: tshark xTR-ID %s, lispctl %v", p.Frame, got, msg["xtr_id"])
		}
	}
}

func compareData(t *testing.T, p *capture.TsharkPacket, m map[string]any) {
	t.Helper()
	flags := m["flags"].(map[string]any)
	if p.Has("lisp-data.nonce") {
		n := tsharkInts(t, p, "lisp-data.nonce")
		if len(n) != 1 || fmt.Sprintf("0x%06x", n[0]) != m["nonce"] {
			t.Errorf("frame %d: tshark data nonce %v, lispctl %v", p.Frame, n, m["nonce"])
		}
	}
	if p.Has("lisp-data.iid") {
		if n := tsharkInts(t, p, "lisp-data.iid"); len(n) != 1 || n[0] != mustInt(t, m["iid"]) {
			t.Errorf("frame %d: tshark iid %v, lispctl %v", p.Frame, n, m["iid"])
		}
	} else if flags["instance_id_present"].(bool) {
		t.Errorf("frame %d: lispctl shows an instance-ID tshark does not", p.Frame)
	}
	if p.Has("lisp-data.srcmapver") {
		s, d := tsharkInts(t, p, "lisp-data.srcmapver"), tsharkInts(t, p, "lisp-data.dstmapver")
		if len(s) != 1 || len(d) != 1 || s[0] != mustInt(t, m["source_map_version"]) || d[0] != mustInt(t, m["dest_map_version"]) {
			t.Errorf("frame %d: tshark map-versions %v/%v, lispctl %v/%v", p.Frame, s, d, m["source_map_version"], m["dest_map_version"])
		}
	}
	for _, f := range []struct{ tshark, ours string }{
		{"lisp-data.flags.nonce", "nonce_present"}, {"lisp-data.flags.lsb", "lsb_enabled"},
		{"lisp-data.flags.enr", "echo_nonce_request"}, {"lisp-data.flags.mv", "map_version_present"},
		{"lisp-data.flags.iid", "instance_id_present"},
	} {
		got := p.Field(f.tshark)
		want := "0"
		if flags[f.ours].(bool) {
			want = "1"
		}
		if got != want && !(got == "True" && want == "1") && !(got == "False" && want == "0") {
			t.Errorf("frame %d: tshark %s = %q, lispctl %s = %v", p.Frame, f.tshark, got, f.ours, flags[f.ours])
		}
	}
	// The inner packet's addresses: tshark lists the outer then the
	// inner source and destination.
	in, ok := m["inner"].(map[string]any)
	if !ok {
		t.Errorf("frame %d: no inner packet", p.Frame)
		return
	}
	prefix := "ip"
	if mustInt(t, in["version"]) == 6 {
		prefix = "ipv6"
	}
	srcs, dsts := p.Fields[prefix+".src"], p.Fields[prefix+".dst"]
	if len(srcs) == 0 || srcs[len(srcs)-1] != in["src"] || dsts[len(dsts)-1] != in["dst"] {
		t.Errorf("frame %d: tshark inner %v -> %v, lispctl %v -> %v", p.Frame, srcs, dsts, in["src"], in["dst"])
	}
	if id, ok := in["icmp_id"]; ok {
		field := "icmp.ident"
		if prefix == "ipv6" {
			field = "icmpv6.echo.identifier"
		}
		got := tsharkInts(t, p, field)
		if len(got) == 0 || got[0] != mustInt(t, id) {
			t.Errorf("frame %d: tshark %s %v, lispctl %v", p.Frame, field, got, id)
		}
	}
}
