package main

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/lispd/lispd/wire"
)

// The publish/subscribe messages of RFC 9437 (the hand-written goldens of
// wire/pubsub_test.go, whose comments give every field), as "lispctl
// decode" shows them. The signed ones carry HMAC-SHA-256 with Key ID 7.
const (
	psSubscribeHex = "10100001 0102030405060708 0000 00010a000001 80200001 c0000201" +
		" 00112233445566778899aabbccddeeff 0000000000000001"
	psLispersNetSubscribeHex = "10100001 0102030405060708 0000 00010a000001 80200001 c0000201" +
		" 00112233445566778899aabbccddeeff"
	psUnsubscribeHex = "10100001 010203040506070b 0000 0000 80200001 c0000201" +
		" 00112233445566778899aabbccddeeff 0000000000000001"
	psMappingHex = " 000005a0 02181000 00000001 c0000200" +
		" 0132ff00 00010001 cb007105" +
		" 0132ff00 00010002 20010db8000000000000000000000005"
	psConfirmHex = "40000001 0102030405060708 07020020" +
		" a8f3ed3788355060d7cf7e0520ef7430ce5ec419349d4e5cd4cdcb064c62bd5f" + psMappingHex
	psAckHex = "50000001 0102030405060708 07020020" +
		" f6ea2144ac33cb00922d7c4b35f73ca245c9ca8e866e8ca78c896dad42072bb9" + psMappingHex
	psWithdrawHex = "40000001 0102030405060709 07020020" +
		" fb4918480eca50556bec8c8d6723244b7028efd069e01e4d37a67bf6340ddcde" +
		" 00000000 00100000 00004003 0000 0200 000a 000003e8 0001 0a010000"
	psRemovalHex = "40000001 010203040506070a 07020020" +
		" 42a4b4964cbf3b84146e98659adf9d520644989d4844ef61a83addb125235fb4" +
		" 00000000 0018a000 00000001 c0000200"
	psUnsubscribedHex = "40000000 010203040506070b 07020020" +
		" 67c7936c4be559f6abfc71d32188271154252c4583c4a077a86e31ad4f57dc33"
	psLispersNetNotifyHex = "40000001 0102030405060708 00000000" +
		" 000005a0 01200000 00000001 c0000201 0164ff00 00010001 cb007105"
	// lispers.net's Map-Notify-Ack declares a record and carries none.
	psLispersNetAckHex = "50000001 0102030405060708 00000000"
)

// TestDecodePubSub: every pub/sub message decodes with its N bit, I bit,
// xTR-ID, site-ID (or "none"), withdrawal TTL 0 and removal action shown,
// in text (the whole block) and in JSON.
func TestDecodePubSub(t *testing.T) {
	cases := []struct {
		name, hex string
		text      []string          // the text block, without its trailing empty line
		json      map[string]string // JSON path -> value, as compact JSON
	}{
		{"subscribe", psSubscribeHex, []string{
			"frame 1  Map-Request (52 bytes)",
			"  flags: I(xtr-id-present)",
			"  nonce: 0x0102030405060708",
			"  source-eid: no-address",
			"  itr-rlocs: 10.0.0.1",
			"  record 1: eid-prefix 192.0.2.1/32  N(notify-requested)",
			"  xtr-id: 00112233445566778899aabbccddeeff  site-id: 0x0000000000000001",
		}, map[string]string{
			"type": `"Map-Request"`, "flags.xtr_id_present": `true`, "nonce": `"0x0102030405060708"`,
			"records.0.notify_requested": `true`, "records.0.eid_prefix": `"192.0.2.1/32"`,
			"itr_rlocs.0.ip": `"10.0.0.1"`,
			"xtr_id":         `"00112233445566778899aabbccddeeff"`, "site_id": `"0x0000000000000001"`,
			"trailing_bytes": `0`,
		}},
		{"lispers.net subscribe", psLispersNetSubscribeHex, []string{
			"frame 1  Map-Request (44 bytes)",
			"  flags: I(xtr-id-present)",
			"  nonce: 0x0102030405060708",
			"  source-eid: no-address",
			"  itr-rlocs: 10.0.0.1",
			"  record 1: eid-prefix 192.0.2.1/32  N(notify-requested)",
			"  xtr-id: 00112233445566778899aabbccddeeff  site-id: none",
		}, map[string]string{
			"flags.xtr_id_present": `true`, "records.0.notify_requested": `true`,
			"xtr_id": `"00112233445566778899aabbccddeeff"`, "site_id": `"none"`, "trailing_bytes": `0`,
		}},
		{"unsubscribe", psUnsubscribeHex, []string{
			"frame 1  Map-Request (48 bytes)",
			"  flags: I(xtr-id-present)",
			"  nonce: 0x010203040506070b",
			"  source-eid: no-address",
			"  itr-rlocs: no-address",
			"  record 1: eid-prefix 192.0.2.1/32  N(notify-requested)",
			"  xtr-id: 00112233445566778899aabbccddeeff  site-id: 0x0000000000000001",
		}, map[string]string{
			"itr_rlocs.0": `{"afi":"none","text":"no-address"}`, "records.0.notify_requested": `true`,
			"site_id": `"0x0000000000000001"`,
		}},
		{"confirmation", psConfirmHex, []string{
			"frame 1  Map-Notify (100 bytes)",
			"  flags: none",
			"  nonce: 0x0102030405060708",
			"  key-id: 7  algorithm-id: 2 (HMAC-SHA-256-128)",
			"  auth-data: 32 bytes (full) a8f3ed3788355060d7cf7e0520ef7430ce5ec419349d4e5cd4cdcb064c62bd5f",
			"  record 1: eid-prefix 192.0.2.0/24  ttl 1440 min  action No-Action(0)  A=1  map-version 0",
			"    locator 1: 203.0.113.5  priority 1  weight 50  m-priority 255  m-weight 0  L=0 p=0 R=1",
			"    locator 2: 2001:db8::5  priority 1  weight 50  m-priority 255  m-weight 0  L=0 p=0 R=1",
		}, map[string]string{
			"type": `"Map-Notify"`, "key_id": `7`, "algorithm_id": `2`, "auth_data_form": `"full"`,
			"records.0.record_ttl": `1440`, "records.0.locator_count": `2`,
			"records.0.locators.1.address.ip": `"2001:db8::5"`,
		}},
		{"ack", psAckHex, []string{
			"frame 1  Map-Notify-Ack (100 bytes)",
			"  flags: none",
			"  nonce: 0x0102030405060708",
			"  key-id: 7  algorithm-id: 2 (HMAC-SHA-256-128)",
			"  auth-data: 32 bytes (full) f6ea2144ac33cb00922d7c4b35f73ca245c9ca8e866e8ca78c896dad42072bb9",
			"  record 1: eid-prefix 192.0.2.0/24  ttl 1440 min  action No-Action(0)  A=1  map-version 0",
			"    locator 1: 203.0.113.5  priority 1  weight 50  m-priority 255  m-weight 0  L=0 p=0 R=1",
			"    locator 2: 2001:db8::5  priority 1  weight 50  m-priority 255  m-weight 0  L=0 p=0 R=1",
		}, map[string]string{
			"type": `"Map-Notify-Ack"`, "nonce": `"0x0102030405060708"`, "key_id": `7`,
			"record_count": `1`, "records.0.eid_prefix": `"192.0.2.0/24"`,
		}},
		{"withdrawal", psWithdrawHex, []string{
			"frame 1  Map-Notify (76 bytes)",
			"  flags: none",
			"  nonce: 0x0102030405060709",
			"  key-id: 7  algorithm-id: 2 (HMAC-SHA-256-128)",
			"  auth-data: 32 bytes (full) fb4918480eca50556bec8c8d6723244b7028efd069e01e4d37a67bf6340ddcde",
			"  record 1: eid-prefix iid:1000/10.1.0.0/16  ttl 0 min (remove now)  action No-Action(0)  A=0  map-version 0",
			"    locators: none",
		}, map[string]string{
			"records.0.record_ttl": `0`, "records.0.locator_count": `0`, "records.0.locators": `[]`,
			"records.0.iid": `1000`, "records.0.eid_prefix": `"10.1.0.0/16"`, "records.0.action_code": `0`,
		}},
		{"removal notice", psRemovalHex, []string{
			"frame 1  Map-Notify (64 bytes)",
			"  flags: none",
			"  nonce: 0x010203040506070a",
			"  key-id: 7  algorithm-id: 2 (HMAC-SHA-256-128)",
			"  auth-data: 32 bytes (full) 42a4b4964cbf3b84146e98659adf9d520644989d4844ef61a83addb125235fb4",
			"  record 1: eid-prefix 192.0.2.0/24  ttl 0 min (remove now)  action Drop/Auth-Failure(5)  A=0  map-version 0",
			"    locators: none",
		}, map[string]string{
			"records.0.record_ttl": `0`, "records.0.locator_count": `0`,
			"records.0.action": `"Drop/Auth-Failure"`, "records.0.action_code": `5`,
		}},
		{"unsubscribe confirmation", psUnsubscribedHex, []string{
			"frame 1  Map-Notify (48 bytes)",
			"  flags: none",
			"  nonce: 0x010203040506070b",
			"  key-id: 7  algorithm-id: 2 (HMAC-SHA-256-128)",
			"  auth-data: 32 bytes (full) 67c7936c4be559f6abfc71d32188271154252c4583c4a077a86e31ad4f57dc33",
			"  records: none",
		}, map[string]string{"record_count": `0`, "records": `[]`}},
		{"lispers.net unsigned confirmation", psLispersNetNotifyHex, []string{
			"frame 1  Map-Notify (44 bytes)",
			"  flags: none",
			"  nonce: 0x0102030405060708",
			"  key-id: 0  algorithm-id: 0 (None)",
			"  auth-data: none",
			"  record 1: eid-prefix 192.0.2.1/32  ttl 1440 min  action No-Action(0)  A=0  map-version 0",
			"    locator 1: 203.0.113.5  priority 1  weight 100  m-priority 255  m-weight 0  L=0 p=0 R=1",
		}, map[string]string{"algorithm": `"None"`, "auth_data_length": `0`, "auth_data_form": `"none"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := execLispctl(t, nil, "decode", "--port", "4342", "--hex", c.hex)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			if want := strings.Join(c.text, "\n") + "\n\n"; out != want {
				t.Errorf("text output\n got:\n%s\nwant:\n%s", out, want)
			}
			out, errOut, code = execLispctl(t, nil, "decode", "--port", "4342", "--json", "--hex", c.hex)
			if code != 0 {
				t.Fatalf("--json: exit %d\n%s%s", code, out, errOut)
			}
			obj := psJSONObject(t, out)
			if _, bad := obj["error"]; bad {
				t.Fatalf("decoded with an error: %s", out)
			}
			for path, want := range c.json {
				if got := psJSONAt(t, obj, path); got != want {
					t.Errorf("%s = %s, want %s", path, got, want)
				}
			}
		})
	}
}

// TestDecodePubSubInECM: the subscribing Map-Request as an ITR sends it to
// its Map-Resolver, in an Encapsulated Control Message: the inner message
// keeps its N bit, I bit, xTR-ID and site-ID.
func TestDecodePubSubInECM(t *testing.T) {
	inner, err := wire.Parse(psHex(t, psSubscribeHex))
	if err != nil {
		t.Fatal(err)
	}
	ecm := wire.NewECM(netip.MustParseAddrPort("10.0.0.1:61001"), netip.MustParseAddrPort("192.0.2.1:4342"), inner)
	h := hex.EncodeToString(mustEncode(t, ecm))
	out, errOut, code := execLispctl(t, nil, "decode", "--port", "4342", "--hex", h)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"  message: Map-Request\n    flags: I(xtr-id-present)\n",
		"    record 1: eid-prefix 192.0.2.1/32  N(notify-requested)\n",
		"    xtr-id: 00112233445566778899aabbccddeeff  site-id: 0x0000000000000001\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = execLispctl(t, nil, "decode", "--port", "4342", "--json", "--hex", h)
	if code != 0 {
		t.Fatalf("--json: exit %d", code)
	}
	obj := psJSONObject(t, out)
	for path, want := range map[string]string{
		"type": `"Encapsulated-Control-Message"`, "inner_src": `"10.0.0.1:61001"`,
		"message.type": `"Map-Request"`, "message.flags.xtr_id_present": `true`,
		"message.records.0.notify_requested": `true`, "message.site_id": `"0x0000000000000001"`,
		"message.xtr_id": `"00112233445566778899aabbccddeeff"`,
	} {
		if got := psJSONAt(t, obj, path); got != want {
			t.Errorf("%s = %s, want %s", path, got, want)
		}
	}
}

// TestDecodePubSubLispersNetAck: lispers.net's Map-Notify-Ack, which
// declares a record but carries no record bytes, is reported as a
// Map-Notify-Ack that could not be decoded (the wire package's truncation
// error at the Record TTL, offset 16), with its bytes, and exit status 1:
// not a crash, not a silent success.
func TestDecodePubSubLispersNetAck(t *testing.T) {
	out, errOut, code := execLispctl(t, nil, "decode", "--port", "4342", "--hex", psLispersNetAckHex)
	if code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	want := "frame 1  Map-Notify-Ack (16 bytes)\n" +
		"  error: wire: parse Record TTL at offset 16: truncated input\n" +
		"  payload: 16 bytes 50000001010203040506070800000000\n\n"
	if out != want {
		t.Errorf("text output\n got:\n%s\nwant:\n%s", out, want)
	}
	if !strings.Contains(errOut, "1 of 1 packets could not be decoded") {
		t.Errorf("stderr: %s", errOut)
	}
	out, _, _ = execLispctl(t, nil, "decode", "--port", "4342", "--json", "--hex", psLispersNetAckHex)
	obj := psJSONObject(t, out)
	for path, want := range map[string]string{
		"type":        `"Map-Notify-Ack"`,
		"error":       `"wire: parse Record TTL at offset 16: truncated input"`,
		"payload_hex": `"50000001010203040506070800000000"`,
	} {
		if got := psJSONAt(t, obj, path); got != want {
			t.Errorf("%s = %s, want %s", path, got, want)
		}
	}
}

// psHex decodes hex written with spaces.
func psHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := parseHexBytes(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// psJSONObject parses decode's output of one packet: one JSON object.
func psJSONObject(t *testing.T, out string) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &obj); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	return obj
}

// psJSONAt returns the value at a dotted path ("records.0.eid") of a JSON
// object, as compact JSON; "<absent>" when there is none.
func psJSONAt(t *testing.T, obj map[string]any, path string) string {
	t.Helper()
	var v any = obj
	for _, k := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[k]; !ok {
				return "<absent>"
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return "<absent>"
			}
			v = c[i]
		default:
			return "<absent>"
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
