package cachesync

import "errors"

// Errors returned by the package. Errors about one frame or one peer wrap
// one of these with the details, so test them with errors.Is.
var (
	// ErrInvalidConfig is returned by New for a Config it cannot run.
	ErrInvalidConfig = errors.New("cachesync: invalid config")
	// ErrMalformed is wrapped by every error about a frame that cannot be
	// decoded: truncated, a count larger than the bytes that follow, an
	// invalid prefix or locator, bytes left over.
	ErrMalformed = errors.New("cachesync: malformed frame")
	// ErrFrameTooLarge is returned for a frame whose length exceeds the
	// configured maximum frame size.
	ErrFrameTooLarge = errors.New("cachesync: frame too large")
	// ErrFrameVersion is returned for a frame of a version this build does
	// not speak.
	ErrFrameVersion = errors.New("cachesync: unsupported frame version")
	// ErrUnknownPeer is returned when a peer presents a public key that is
	// not the one configured for it (or, on an incoming connection, not the
	// key of any configured peer).
	ErrUnknownPeer = errors.New("cachesync: peer public key not pinned")
	// ErrHandshake is returned when a peer's HELLO is missing or does not
	// match this member (another mode, a duplicate name).
	ErrHandshake = errors.New("cachesync: handshake refused")
	// ErrInvalidKey is returned for a private or public key that cannot be
	// parsed.
	ErrInvalidKey = errors.New("cachesync: invalid key")
	// ErrRunning is returned by Run when the member is already running.
	ErrRunning = errors.New("cachesync: member already running")
	// ErrSlowPeer is the reason a session is closed when its peer does not
	// read what is sent to it fast enough (its queue is full).
	ErrSlowPeer = errors.New("cachesync: peer too slow, queue full")
)
