package dataplane

import "errors"

// Errors returned by this package. They are matched with errors.Is; wrapped
// errors keep the "dataplane:" prefix.
var (
	// ErrClosed is returned by operations on a closed Device, Conn or Relay.
	ErrClosed = errors.New("dataplane: closed")
	// ErrInvalidConfig is wrapped by every configuration error.
	ErrInvalidConfig = errors.New("dataplane: invalid configuration")
	// ErrBufferTooSmall is returned when a buffer cannot hold a packet plus
	// the headroom the operation needs.
	ErrBufferTooSmall = errors.New("dataplane: buffer too small")
	// ErrAddressFamily is returned when a destination's address family does
	// not match the socket or the header being built.
	ErrAddressFamily = errors.New("dataplane: address family mismatch")
	// ErrAddrInUse is returned by MemNetwork.Listen for a bound address.
	ErrAddrInUse = errors.New("dataplane: address already in use")
	// ErrBadPacket is returned by the header builders and parsers for a
	// packet that is not a well-formed IP/UDP packet.
	ErrBadPacket = errors.New("dataplane: malformed packet")
	// ErrUnsupported is returned on platforms without TUN or batched UDP
	// support.
	ErrUnsupported = errors.New("dataplane: not supported on this platform")
)
