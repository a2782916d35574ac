package cachesync

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"time"
)

// Keys: each member of a naive or smart set has an Ed25519 key pair. The
// private key is a PEM file ("PRIVATE KEY", PKCS #8, the format of
// `openssl genpkey -algorithm ed25519`); the public key is written in
// configs as the standard base64 of its 32 bytes (44 characters), the way
// WireGuard writes its keys. `lispctl sync keygen` makes both.

// pemTypePrivateKey is the PEM block type of a PKCS #8 private key.
const pemTypePrivateKey = "PRIVATE KEY"

// GenerateKey returns a new Ed25519 private key.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cachesync: generate key: %w", err)
	}
	return priv, nil
}

// MarshalPrivateKey returns the PEM encoding (PKCS #8) of k.
func MarshalPrivateKey(k ed25519.PrivateKey) ([]byte, error) {
	if len(k) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key of %d bytes", ErrInvalidKey, len(k))
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemTypePrivateKey, Bytes: der}), nil
}

// ParsePrivateKey parses a PEM "PRIVATE KEY" block holding an Ed25519 key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	blk, rest := pem.Decode(data)
	if blk == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrInvalidKey)
	}
	if blk.Type != pemTypePrivateKey {
		return nil, fmt.Errorf("%w: PEM block %q, want %q", ErrInvalidKey, blk.Type, pemTypePrivateKey)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: data after the PEM block", ErrInvalidKey)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not an Ed25519 key", ErrInvalidKey, k)
	}
	return ek, nil
}

// LoadPrivateKey reads the private key file at path. Like ssh, it refuses
// a file that others than its owner may read or write.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cachesync: private key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v; it must be readable by its owner only (chmod 600)",
			ErrInvalidKey, path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cachesync: private key: %w", err)
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return k, nil
}

// WritePrivateKey writes k to a new file at path with mode 0600. It refuses
// to overwrite an existing file (fs.ErrExist).
func WritePrivateKey(path string, k ed25519.PrivateKey) error {
	data, err := MarshalPrivateKey(k)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cachesync: %s already exists; not overwriting a key: %w", path, fs.ErrExist)
		}
		return fmt.Errorf("cachesync: write private key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("cachesync: write private key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("cachesync: write private key: %w", err)
	}
	return nil
}

// FormatPublicKey returns the config form of a public key: the standard
// base64 of its 32 bytes.
func FormatPublicKey(k ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(k)
}

// ParsePublicKey parses the config form of a public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: public key %q is not base64", ErrInvalidKey, s)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key %q has %d bytes, want %d", ErrInvalidKey, s, len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// PublicKeyOf returns the public half of k.
func PublicKeyOf(k ed25519.PrivateKey) ed25519.PublicKey {
	return k.Public().(ed25519.PublicKey)
}

// alpnProtocol is the TLS application protocol of the sync transport.
const alpnProtocol = "lispd-sync/1"

// selfSignedCert makes the TLS certificate a member presents: self-signed
// with its Ed25519 key. Nobody checks its issuer, names or dates; peers
// pin its public key.
func selfSignedCert(k ed25519.PrivateKey, name string) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cachesync: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "lispd sync " + name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cachesync: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cachesync: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}, nil
}

// leafKey returns the Ed25519 public key of the first certificate of a TLS
// peer's chain.
func leafKey(raw [][]byte) (ed25519.PublicKey, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: no certificate", ErrUnknownPeer)
	}
	c, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrUnknownPeer, err)
	}
	k, ok := c.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T key, want Ed25519", ErrUnknownPeer, c.PublicKey)
	}
	return k, nil
}
