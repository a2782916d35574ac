package wire

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// checkParseRoundTrip is the property every input must satisfy: Parse never
// panics and fails only with a classified error, and whatever it accepts
// re-encodes (unless a mask-len exceeds its EID, which the encoder refuses)
// to bytes that parse back to an equal value and re-encode identically.
func checkParseRoundTrip(t *testing.T, b []byte) {
	m, err := Parse(b)
	if err != nil {
		if m != nil {
			t.Fatalf("Parse returned a message and an error: %v", err)
		}
		if ErrorReason(err) == "other" || !strings.HasPrefix(err.Error(), "wire: ") {
			t.Fatalf("unclassified error: %v", err)
		}
		return
	}
	out, err := m.AppendBinary(nil)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Field == "EID mask-len" && errors.Is(err, ErrBadValue) {
			return // liberal parse, strict encode
		}
		t.Fatalf("parsed message does not re-encode: %v\n%s", err, dump(m))
	}
	if len(out) > len(b) {
		t.Fatalf("re-encoding grew from %d to %d bytes", len(b), len(out))
	}
	m2, err := Parse(out)
	if err != nil {
		t.Fatalf("re-encoded message does not parse: %v\n%x", err, out)
	}
	clearTrailing(m)
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("round trip changed the message\nfirst:  %s\nsecond: %s", dump(m), dump(m2))
	}
	out2, err := m2.AppendBinary(nil)
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("second encoding differs: %v\n%x\n%x", err, out, out2)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x10})
	f.Fuzz(checkParseRoundTrip)
}

func checkDataHeader(t *testing.T, b []byte) {
	h, err := ParseDataHeader(b)
	if len(b) < DataHeaderLen {
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("short header: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	// Every 8 bytes are a valid header that re-encodes exactly.
	out, err := h.AppendBinary(nil)
	if err != nil {
		t.Fatalf("%+v: %v", h, err)
	}
	if !bytes.Equal(out, b[:DataHeaderLen]) {
		t.Fatalf("re-encoded %x, want %x", out, b[:DataHeaderLen])
	}
}

func FuzzParseDataHeader(f *testing.F) {
	f.Fuzz(checkDataHeader)
}

func checkAddress(t *testing.T, b []byte) {
	a, n, err := ParseAddress(b)
	if err != nil {
		if ErrorReason(err) == "other" {
			t.Fatalf("unclassified error: %v", err)
		}
		return
	}
	if n < 2 || n > len(b) {
		t.Fatalf("consumed %d of %d bytes", n, len(b))
	}
	_ = a.String()
	if a.Len() != n {
		t.Fatalf("Len() = %d, consumed %d", a.Len(), n)
	}
	// Address encodings are canonical: re-encoding gives the same bytes.
	out, err := a.AppendBinary(nil)
	if err != nil {
		t.Fatalf("%s: %v", dump(a), err)
	}
	if !bytes.Equal(out, b[:n]) {
		t.Fatalf("re-encoded %x, want %x", out, b[:n])
	}
	a2, _, err := ParseAddress(out)
	if err != nil || !reflect.DeepEqual(a, a2) || !a.Equal(a2) {
		t.Fatalf("second parse differs: %v", err)
	}
}

func FuzzParseAddress(f *testing.F) {
	f.Fuzz(checkAddress)
}

func checkVerify(t *testing.T, msg, key []byte) {
	orig := bytes.Clone(msg)
	err := Verify(msg, key)
	if !bytes.Equal(msg, orig) {
		t.Fatal("Verify modified the message")
	}
	if err != nil && ErrorReason(err) == "other" {
		t.Fatalf("unclassified error: %v", err)
	}
	a := NewAuthenticator(key)
	if err2 := a.Verify(msg); (err == nil) != (err2 == nil) {
		t.Fatalf("package-level and Authenticator disagree: %v / %v", err, err2)
	}
	// Whatever Sign accepts, Verify accepts afterwards, and Sign touches
	// only the Authentication Data.
	signed := bytes.Clone(msg)
	if err := a.Sign(signed); err != nil {
		return
	}
	h, err := ParseAuthHeader(signed)
	if err != nil {
		t.Fatalf("signed message has no auth header: %v", err)
	}
	if !bytes.Equal(signed[:authOffset], orig[:authOffset]) ||
		!bytes.Equal(signed[authOffset+h.AuthDataLen:], orig[authOffset+h.AuthDataLen:]) {
		t.Fatal("Sign changed bytes outside the Authentication Data")
	}
	if h.AlgorithmID == AlgNone {
		return
	}
	if err := Verify(signed, key); err != nil {
		t.Fatalf("Verify after Sign: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Fuzz(checkVerify)
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus under testdata/fuzz from the golden messages")

// seedCorpus lists the seed files the fuzz targets start from: every golden
// message, data header and address.
func seedCorpus(t *testing.T) map[string]string {
	files := map[string]string{}
	add := func(target, name string, args ...[]byte) {
		var sb strings.Builder
		sb.WriteString("go test fuzz v1\n")
		for _, a := range args {
			sb.WriteString("[]byte(" + strconv.Quote(string(a)) + ")\n")
		}
		files[filepath.Join("testdata", "fuzz", target, "golden-"+strings.ReplaceAll(name, "/", "-"))] = sb.String()
	}
	for _, g := range goldenMessages(t) {
		add("FuzzParse", g.name, g.wire)
		add("FuzzParseAddress", "msg-"+g.name, g.wire[12:])
	}
	for _, c := range authCases(t) {
		add("FuzzVerify", c.name, c.signed(t), c.key)
		add("FuzzVerify", c.name+"-zeroed", c.zeroed, c.key)
	}
	for _, g := range dataGoldens(t) {
		add("FuzzParseDataHeader", g.name, g.wire)
	}
	for _, g := range addressGoldens(t) {
		add("FuzzParseAddress", g.name, g.wire)
	}
	return files
}

// TestSeedCorpus keeps testdata/fuzz in step with the golden messages; run
// with -update-corpus after changing them.
func TestSeedCorpus(t *testing.T) {
	for path, content := range seedCorpus(t) {
		if *updateCorpus {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("seed corpus file %s is missing or stale (go test ./wire -run TestSeedCorpus -update-corpus): %v", path, err)
		}
	}
}
