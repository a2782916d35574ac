// Package wire is the LISP wire format: the data-plane header of RFC 9300,
// the control messages of RFC 9301 (Map-Request, Map-Reply, Map-Register,
// Map-Notify, Map-Notify-Ack and the Encapsulated Control Message, with the
// pub/sub additions of RFC 9437), the addresses they carry (IPv4, IPv6,
// distinguished names, MAC and the LISP Canonical Address Format of RFC
// 8060), and the authentication of Map-Register and Map-Notify.
//
// It is pure: bytes in, structs out. It does no I/O, starts no goroutines
// and has no mutable global state.
//
// # Encoding and decoding
//
// Parse decodes one control message and returns a *MapRequest, *MapReply,
// *MapRegister, *MapNotify, *MapNotifyAck, *ECM, *MapReferral (LISP-DDT,
// RFC 8111), *Info (Info-Request/Info-Reply of LISP NAT traversal) or
// *SharedExtension (RFC 9304, kept opaque after its sub-type); every message type has an
// AppendBinary method that appends its encoding to a buffer without
// allocating when the buffer has room. ParseDataHeader and
// DataHeader.AppendBinary handle the 8-byte data-plane header and never
// allocate. Every read is bounds-checked, every malformed input yields an
// error (never a panic), and record counts are never trusted beyond what the
// input could hold. Errors match the package's sentinel errors with
// errors.Is, and ErrorReason turns any of them into a stable label for
// metrics.
//
// # Liberal acceptance
//
// Deployed routers differ, so the parsers accept what they can make sense
// of and refuse only what cannot be parsed: reserved bits are kept (and sent
// back unchanged), bytes after the declared contents are accepted and
// counted in each message's Trailing field, LCAF types this package does not
// structure are kept as opaque bytes that round-trip exactly, a
// Map-Notify-Ack may carry no records, and an ECM's inner UDP checksum may
// be zero. The encoders are strict: values that do not fit their fields are
// refused.
//
// # Authentication
//
// RFC 6830 had a 16-bit Key ID whose values 1 and 2 meant HMAC-SHA-1-96 and
// HMAC-SHA-256-128; RFC 9301 splits it into an 8-bit Key ID and an 8-bit
// Algorithm ID, so "key-id 1/2" on the wire is Key ID 0 with Algorithm ID
// 1/2. Algorithm 3 (HMAC-SHA256-128+HKDF-SHA256) uses a per-message key
// derived as RFC 9301 section 5.6 gives it.
//
// Despite the "-96" and "-128" in the names, deployed routers send and expect
// the full HMAC output (20 bytes for SHA-1, 32 for SHA-256), with the
// Authentication Data Length field saying so. This package sends the full
// length by default (a zeroed field of AlgorithmID.AuthLen(false) bytes is
// reserved when AuthData is nil) and can send the truncated form on request;
// Verify accepts both, driven by the length field. The MAC is computed over
// the whole message as received, with the Authentication Data taken as zero,
// and compared in constant time. Sign and Verify work on encoded bytes; an
// Authenticator does the same without allocating.
package wire
