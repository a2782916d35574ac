package paper

import "errors"

// Errors returned by this package.
var (
	// ErrInvalid is wrapped by every invalid option.
	ErrInvalid = errors.New("paper: invalid option")
	// ErrUnsupported is returned when a mode cannot run here (netns
	// without root, without keepalived, on another OS).
	ErrUnsupported = errors.New("paper: not supported here")
	// ErrChecks is returned by Run when a relation that must hold did
	// not (the result is returned with it).
	ErrChecks = errors.New("paper: checks failed")
)
