package wire

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// hx decodes hex written by hand: whitespace between bytes is ignored.
func hx(t testing.TB, parts ...string) []byte {
	t.Helper()
	s := strings.Join(strings.Fields(strings.Join(parts, " ")), "")
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ipa(s string) Address { return AddrFrom(ip(s)) }

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func iidAddr(iid uint32, inner Address) Address {
	return Address{AFI: AFILCAF, LCAFType: LCAFInstanceID, InstanceID: iid, Inner: &inner}
}

// dump renders a value for failure messages (pointers followed).
func dump(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func requireEqual(t testing.TB, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mismatch\n got: %s\nwant: %s", dump(got), dump(want))
	}
}

func requireBytes(t testing.TB, got, want []byte) {
	t.Helper()
	if string(got) != string(want) {
		t.Fatalf("bytes differ\n got: %x\nwant: %x", got, want)
	}
}

// clearTrailing zeroes the Trailing counts of m (and of an ECM's inner
// message), which re-encoding does not reproduce.
func clearTrailing(m Message) {
	switch v := m.(type) {
	case *MapRequest:
		v.Trailing = 0
	case *MapReply:
		v.Trailing = 0
	case *MapRegister:
		v.Trailing = 0
	case *MapNotify:
		v.Trailing = 0
	case *MapNotifyAck:
		v.Trailing = 0
	case *MapReferral:
		v.Trailing = 0
	case *Info:
		v.Trailing = 0
	case *ECM:
		v.Trailing = 0
		if v.Inner != nil {
			clearTrailing(v.Inner)
		}
	}
}

func trailingOf(m Message) int {
	switch v := m.(type) {
	case *MapRequest:
		return v.Trailing
	case *MapReply:
		return v.Trailing
	case *MapRegister:
		return v.Trailing
	case *MapNotify:
		return v.Trailing
	case *MapNotifyAck:
		return v.Trailing
	case *MapReferral:
		return v.Trailing
	case *Info:
		return v.Trailing
	case *ECM:
		return v.Trailing
	}
	return -1
}
