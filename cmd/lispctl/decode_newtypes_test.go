package main

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/lispd/lispd/wire"
)

// TestDecodeReferralInfoSharedExtension: the LISP-DDT Map-Referral, the NAT
// traversal Info-Request/Info-Reply and the Shared Extension Message decode
// with their fields (not as errors) in both output forms.
func TestDecodeReferralInfoSharedExtension(t *testing.T) {
	ip := func(s string) wire.Address { return wire.AddrFrom(netip.MustParseAddr(s)) }
	rec := wire.ReferralRecord{RecordTTL: 1440, MaskLen: 16, Action: wire.MSReferral, Authoritative: true,
		Incomplete: true, EID: ip("10.1.0.0"), Locators: []wire.Locator{{Priority: 1, Weight: 50, Address: ip("192.0.2.7")}}}
	nat := wire.NATTraversal{MSPort: 4342, ETRPort: 61001, GlobalETR: ip("203.0.113.9"), MS: ip("192.0.2.1"),
		PrivateETR: ip("10.0.0.2"), RTRs: []wire.Address{ip("198.51.100.1"), ip("198.51.100.2")}}
	natAddr, err := nat.Address()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, typ string
		msg       wire.Message
		want      []string // substrings of the JSON line
	}{
		{"referral", "Map-Referral", &wire.MapReferral{Nonce: 0x0102030405060708, Records: []wire.ReferralRecord{rec}},
			[]string{`"nonce":"0x0102030405060708"`, `"incomplete":true`, `"eid_prefix":"10.1.0.0/16"`, `"192.0.2.7"`}},
		{"info-request", "Info", &wire.Info{Nonce: 0xaa, AlgorithmID: wire.AlgHMACSHA196, TTL: 1, MaskLen: 24,
			EID: ip("10.1.1.0"), Address: wire.Address{AFI: wire.AFINone}},
			[]string{`"reply":false`, `"eid_prefix":"10.1.1.0/24"`, `"auth_data_length":20`}},
		{"info-reply", "Info", &wire.Info{Reply: true, Nonce: 0xbb, AlgorithmID: wire.AlgHMACSHA256128, TTL: 1,
			MaskLen: 24, EID: ip("10.1.1.0"), Address: natAddr},
			[]string{`"reply":true`, `"ms_port":4342`, `"etr_port":61001`, `"203.0.113.9"`, `"198.51.100.2"`}},
		{"shared-extension", "Shared-Extension", &wire.SharedExtension{SubType: 5, Data: []byte{1, 2, 3, 4}},
			[]string{`"sub_type":5`, `"data":"01020304"`}},
	}
	for _, c := range cases {
		b, err := c.msg.AppendBinary(nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		out, errOut, code := execLispctl(t, nil, "decode", "--port", "4342", "--hex", hex.EncodeToString(b), "--json")
		if code != 0 {
			t.Errorf("%s: exit %d\n%s%s", c.name, code, out, errOut)
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &obj); err != nil {
			t.Fatalf("%s: not one JSON object: %v\n%s", c.name, err, out)
		}
		if typ, _ := obj["type"].(string); !strings.EqualFold(strings.ReplaceAll(typ, " ", "-"), c.typ) {
			t.Errorf("%s: type %q, want %q", c.name, typ, c.typ)
		}
		if _, bad := obj["error"]; bad {
			t.Errorf("%s: decoded with an error: %s", c.name, out)
		}
		compact := strings.ReplaceAll(out, " ", "")
		for _, w := range c.want {
			if !strings.Contains(compact, w) {
				t.Errorf("%s: JSON lacks %s\n%s", c.name, w, out)
			}
		}
		text, _, code := execLispctl(t, nil, "decode", "--port", "4342", "--hex", hex.EncodeToString(b))
		if code != 0 || !strings.Contains(strings.ToLower(text), strings.ToLower(strings.Split(c.typ, "-")[0])) {
			t.Errorf("%s: text output (exit %d):\n%s", c.name, code, text)
		}
	}
}
