package wire

import (
	"errors"
	"strconv"
)

// wireError is the type of every sentinel error in this package. It carries a
// short, stable reason label for metrics and an optional parent so that, for
// example, every authentication error also matches ErrAuth.
type wireError struct {
	reason string
	text   string
	parent *wireError
}

// Error implements error.
func (e *wireError) Error() string { return "wire: " + e.text }

// Reason returns the stable metrics label of the error kind.
func (e *wireError) Reason() string { return e.reason }

// Is reports whether target is e or one of its parents.
func (e *wireError) Is(target error) bool {
	for p := e.parent; p != nil; p = p.parent {
		if p == target {
			return true
		}
	}
	return false
}

func (e *wireError) detail() string { return e.text }

// errAuth is the parent of every authentication error.
var errAuth = &wireError{reason: "auth", text: "authentication error"}

// Sentinel errors. Every error returned by this package matches exactly one of
// them with errors.Is (the authentication errors also match ErrAuth), and
// ErrorReason maps it to a stable label.
var (
	// ErrTruncated: the input ended before a field that must be there.
	ErrTruncated error = &wireError{reason: "truncated", text: "truncated input"}
	// ErrShort is an alias of ErrTruncated.
	ErrShort = ErrTruncated
	// ErrUnknownType: the message type is not one this package parses
	// (see UnknownTypeError for the number).
	ErrUnknownType error = &wireError{reason: reasonUnknownType, text: "unsupported message type"}
	// ErrBadAFI: an address family whose encoding is unknown, so its length
	// cannot be determined (see AFIError for the number).
	ErrBadAFI error = &wireError{reason: reasonBadAFI, text: "unsupported address family"}
	// ErrBadLCAF: an LCAF whose declared length does not match its contents.
	ErrBadLCAF error = &wireError{reason: "bad_lcaf", text: "malformed LCAF"}
	// ErrTooDeep: LCAFs nested deeper than MaxAddressDepth.
	ErrTooDeep error = &wireError{reason: "too_deep", text: "address nesting too deep"}
	// ErrBadLength: a length field that is inconsistent with the data.
	ErrBadLength error = &wireError{reason: "bad_length", text: "inconsistent length field"}
	// ErrBadValue: a field value that cannot be encoded (out of range, too
	// many elements) or that makes the message meaningless.
	ErrBadValue error = &wireError{reason: "bad_value", text: "invalid field value"}
	// ErrBadHeader: an ECM's inner IP or UDP header that cannot be used.
	ErrBadHeader error = &wireError{reason: "bad_ip_header", text: "malformed inner IP/UDP header"}
	// ErrChecksum: an ECM's inner IPv4 header or UDP checksum is wrong.
	ErrChecksum error = &wireError{reason: "bad_checksum", text: "bad checksum"}

	// ErrAuth is matched by every authentication error below.
	ErrAuth error = errAuth
	// ErrAuthFailed: the authentication data does not match (wrong key or
	// altered message).
	ErrAuthFailed error = &wireError{reason: "auth_failed", text: "authentication failed", parent: errAuth}
	// ErrAuthAlgorithm: the Algorithm ID is not one this package implements.
	ErrAuthAlgorithm error = &wireError{reason: "auth_unknown_algorithm", text: "unknown authentication algorithm", parent: errAuth}
	// ErrAuthLength: the Authentication Data Length is neither the full nor
	// the truncated MAC length of the algorithm.
	ErrAuthLength error = &wireError{reason: "auth_bad_length", text: "bad authentication data length", parent: errAuth}
	// ErrNoAuth: Verify was asked to check a message whose Algorithm ID is
	// None; accepting unauthenticated messages is the caller's decision.
	ErrNoAuth error = &wireError{reason: "auth_none", text: "message is not authenticated", parent: errAuth}
	// ErrAuthType: Sign or Verify was given a message type that carries no
	// authentication data (only Map-Register, Map-Notify, Map-Notify-Ack and Info do).
	ErrAuthType error = &wireError{reason: "auth_wrong_type", text: "message type carries no authentication data", parent: errAuth}
)

const (
	reasonUnknownType = "unknown_type"
	reasonBadAFI      = "bad_afi"
)

// detailer is implemented by the errors of this package: the message without
// the "wire: " prefix, so wrapped errors read naturally.
type detailer interface{ detail() string }

func detailOf(err error) string {
	if d, ok := err.(detailer); ok {
		return d.detail()
	}
	return err.Error()
}

// FieldError reports which field of a message could not be parsed or
// encoded. It wraps one of the sentinel errors (or an *AFIError /
// *UnknownTypeError), so errors.Is and errors.As see through it.
type FieldError struct {
	// Op is "parse" or "encode".
	Op string
	// Field names the field, using the RFC's name where it has one.
	Field string
	// Offset is the byte offset, within the buffer handed to the parser
	// working at that level, where the problem was found; -1 when encoding.
	Offset int
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *FieldError) Error() string { return "wire: " + e.detail() }

func (e *FieldError) detail() string {
	if e.Offset >= 0 {
		return e.Op + " " + e.Field + " at offset " + strconv.Itoa(e.Offset) + ": " + detailOf(e.Err)
	}
	return e.Op + " " + e.Field + ": " + detailOf(e.Err)
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

func parseErr(field string, off int, err error) error {
	return &FieldError{Op: "parse", Field: field, Offset: off, Err: err}
}

func encodeErr(field string, err error) error {
	return &FieldError{Op: "encode", Field: field, Offset: -1, Err: err}
}

// UnknownTypeError is returned by Parse for a message type it does not parse
// (the reserved type 0 and the unassigned types 9-14). It matches
// ErrUnknownType.
type UnknownTypeError struct {
	// Type is the 4-bit type field of the message.
	Type MessageType
}

// Error implements error.
func (e *UnknownTypeError) Error() string { return "wire: " + e.detail() }

func (e *UnknownTypeError) detail() string {
	return "unsupported message type " + strconv.Itoa(int(e.Type)) + " (" + e.Type.String() + ")"
}

// Is reports whether target is ErrUnknownType.
func (e *UnknownTypeError) Is(target error) bool { return target == ErrUnknownType }

// Reason returns the stable metrics label "unknown_type".
func (e *UnknownTypeError) Reason() string { return reasonUnknownType }

// AFIError reports an address family this package cannot parse or encode. It
// matches ErrBadAFI.
type AFIError struct {
	// AFI is the address family number found.
	AFI AFI
}

// Error implements error.
func (e *AFIError) Error() string { return "wire: " + e.detail() }

func (e *AFIError) detail() string {
	return "unsupported address family " + strconv.Itoa(int(e.AFI))
}

// Is reports whether target is ErrBadAFI.
func (e *AFIError) Is(target error) bool { return target == ErrBadAFI }

// Reason returns the stable metrics label "bad_afi".
func (e *AFIError) Reason() string { return reasonBadAFI }

// ErrorReason returns a short, stable label for the kind of err, suitable as a
// metrics label: "truncated", "unknown_type", "bad_afi", "bad_lcaf",
// "too_deep", "bad_length", "bad_value", "bad_ip_header", "bad_checksum",
// "auth_failed", "auth_unknown_algorithm", "auth_bad_length", "auth_none",
// "auth_wrong_type"; "" for a nil error and "other" for errors that do not
// come from this package.
func ErrorReason(err error) string {
	if err == nil {
		return ""
	}
	var r interface{ Reason() string }
	if errors.As(err, &r) {
		return r.Reason()
	}
	return "other"
}
