package cachesync

import (
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sync.key")
	if err := WritePrivateKey(path, k); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	if err := WritePrivateKey(path, k); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite: %v", err)
	}
	got, err := LoadPrivateKey(path)
	if err != nil || !got.Equal(k) {
		t.Fatalf("load: %v", err)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "-----BEGIN PRIVATE KEY-----") {
		t.Fatalf("not PKCS #8 PEM: %q", data)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadPrivateKey(path); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("group-readable key accepted: %v", err)
	}
	pub := PublicKeyOf(k)
	s := FormatPublicKey(pub)
	if len(s) != 44 {
		t.Fatalf("public key %q", s)
	}
	back, err := ParsePublicKey(s)
	if err != nil || !back.Equal(pub) {
		t.Fatalf("parse public: %v", err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA", s[:40]} {
		if _, err := ParsePublicKey(bad); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParsePublicKey(%q): %v", bad, err)
		}
	}
	for _, bad := range []string{"", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"} {
		if _, err := ParsePrivateKey([]byte(bad)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParsePrivateKey(%q): %v", bad, err)
		}
	}
	if _, err := MarshalPrivateKey(ed25519.PrivateKey{1, 2}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("short key marshaled: %v", err)
	}
	cert, err := selfSignedCert(k, "a")
	if err != nil {
		t.Fatal(err)
	}
	lk, err := leafKey(cert.Certificate)
	if err != nil || !lk.Equal(pub) {
		t.Fatalf("leaf key: %v", err)
	}
}
