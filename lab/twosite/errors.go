package twosite

import "errors"

// Errors returned by this package; match them with errors.Is.
var (
	// ErrInvalid is wrapped by every error about a malformed argument or
	// option.
	ErrInvalid = errors.New("twosite: invalid argument")
	// ErrNoReply is returned by Host.Ping when no echo reply came in time.
	ErrNoReply = errors.New("twosite: no echo reply")
	// ErrClosed is returned by the methods of a closed Host or topology.
	ErrClosed = errors.New("twosite: closed")
	// ErrNotReady is wrapped when the topology did not come up in time:
	// a daemon's API did not answer, or a site did not register.
	ErrNotReady = errors.New("twosite: topology not ready")
)
