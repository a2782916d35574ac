package wire

import (
	"net/netip"
	"testing"
)

// goldenByName returns the parsed golden message called name.
func goldenByName(t testing.TB, name string) (Message, []byte) {
	for _, g := range goldenMessages(t) {
		if g.name == name {
			m, err := Parse(g.wire)
			if err != nil {
				t.Fatal(err)
			}
			return m, g.wire
		}
	}
	t.Fatalf("no golden %q", name)
	return nil, nil
}

func TestAppendAllocations(t *testing.T) {
	reg := &MapRegister{WantMapNotify: true, XTRIDPresent: true, Nonce: 1, AlgorithmID: AlgHMACSHA256128,
		Records: []EIDRecord{NewEIDRecord(1000, netip.MustParsePrefix("10.1.0.0/16"))}}
	reg.Records[0].Locators = []Locator{{Priority: 1, Weight: 100, Address: ipa("192.0.2.1")}}
	for _, name := range []string{"map-request/ipv4", "map-request/ipv6-iid-lcaf",
		"map-request/map-reply-record-xtr-id", "map-reply/ipv4-two-locators", "map-reply/afi-list-locator",
		"map-register/hmac-sha256-full-xtr-id", "map-notify-ack/no-records", "ecm/ipv6-map-request",
		"map-referral/ms-referral-signed", "info-reply/nat-traversal-lcaf", "shared-extension/sub-type-5"} {
		m, wire := goldenByName(t, name)
		buf := make([]byte, 0, 512)
		allocs := testing.AllocsPerRun(200, func() {
			var err error
			if buf, err = m.AppendBinary(buf[:0]); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: AppendBinary allocates %.1f times", name, allocs)
		}
		requireBytes(t, buf, wire)
	}
	buf := make([]byte, 0, 512)
	if a := testing.AllocsPerRun(200, func() { buf, _ = reg.AppendBinary(buf[:0]) }); a != 0 {
		t.Errorf("MapRegister with default AuthData: %.1f allocs", a)
	}
	h := DataHeader{N: true, I: true, Nonce: 5, InstanceID: 7, LSB: 1}
	if a := testing.AllocsPerRun(1000, func() { buf, _ = h.AppendBinary(buf[:0]) }); a != 0 {
		t.Errorf("DataHeader.AppendBinary: %.1f allocs", a)
	}
	if a := testing.AllocsPerRun(1000, func() { h, _ = ParseDataHeader(buf) }); a != 0 {
		t.Errorf("ParseDataHeader: %.1f allocs", a)
	}
	short := buf[:3]
	if a := testing.AllocsPerRun(1000, func() { _, _ = ParseDataHeader(short) }); a != 0 {
		t.Errorf("ParseDataHeader error path: %.1f allocs", a)
	}
	ip := ipa("2001:db8::1")
	ab, _ := ip.AppendBinary(nil)
	if a := testing.AllocsPerRun(1000, func() { _, _, _ = ParseAddress(ab) }); a != 0 {
		t.Errorf("ParseAddress: %.1f allocs", a)
	}
	if a := testing.AllocsPerRun(1000, func() { buf, _ = ip.AppendBinary(buf[:0]) }); a != 0 {
		t.Errorf("Address.AppendBinary: %.1f allocs", a)
	}
}

func TestAuthenticatorAllocations(t *testing.T) {
	for _, c := range authCases(t) {
		signed := c.signed(t)
		b := append([]byte{}, c.zeroed...)
		a := NewAuthenticator(c.key)
		if err := a.Sign(b); err != nil { // warm up the hash states
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(200, func() {
			if err := a.Sign(b); err != nil {
				t.Fatal(err)
			}
			if err := a.Verify(signed); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: Sign+Verify allocate %.1f times", c.name, n)
		}
		bad := append([]byte{}, signed...)
		bad[len(bad)-1] ^= 1
		if n := testing.AllocsPerRun(200, func() { _ = a.Verify(bad) }); n != 0 {
			t.Errorf("%s: failing Verify allocates %.1f times", c.name, n)
		}
	}
}
