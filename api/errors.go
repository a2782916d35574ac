package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kinds of errors a Backend returns (see WithKind) and a Client reports
// (errors.Is on a *StatusError), each with its HTTP status.
var (
	// ErrInvalidArgument is a bad request: 400.
	ErrInvalidArgument = errors.New("api: invalid argument")
	// ErrNotFound is a missing object or endpoint: 404.
	ErrNotFound = errors.New("api: not found")
	// ErrFailedPrecondition is a request the daemon cannot carry out in
	// its state, e.g. a reload of a config file with errors: 409.
	ErrFailedPrecondition = errors.New("api: failed precondition")
	// ErrUnavailable is a service the daemon does not run, e.g. the
	// map-cache of a daemon without the itr role: 503.
	ErrUnavailable = errors.New("api: unavailable")
)

// WithKind marks err with kind (one of ErrInvalidArgument, ErrNotFound,
// ErrFailedPrecondition, ErrUnavailable): errors.Is(result, kind) holds and
// the message stays err's, which is what the client shows.
func WithKind(kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}

type kindError struct{ kind, err error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// httpStatus maps an error from a Backend to an HTTP status.
func httpStatus(err error) int {
	switch {
	case errors.Is(err, ErrInvalidArgument):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrFailedPrecondition):
		return http.StatusConflict
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// StatusError is an error answer from the daemon. errors.Is matches it
// against the kind of its status code (ErrNotFound for 404...).
type StatusError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the daemon's explanation, from the error body.
	Message string
}

// Error returns "api: <message> (HTTP <code>)".
func (e *StatusError) Error() string {
	return fmt.Sprintf("api: %s (HTTP %d)", e.Message, e.StatusCode)
}

// Is reports whether target is the kind of e's status code.
func (e *StatusError) Is(target error) bool {
	switch e.StatusCode {
	case http.StatusBadRequest:
		return target == ErrInvalidArgument
	case http.StatusNotFound:
		return target == ErrNotFound
	case http.StatusConflict:
		return target == ErrFailedPrecondition
	case http.StatusServiceUnavailable:
		return target == ErrUnavailable
	}
	return false
}

// Reason says why the daemon could not be reached.
type Reason int

// The reasons of an UnreachableError.
const (
	// ReasonNotRunning: there is no socket file.
	ReasonNotRunning Reason = iota + 1
	// ReasonStale: the socket file exists but nothing listens on it.
	ReasonStale
	// ReasonPermission: the socket cannot be opened by this user.
	ReasonPermission
	// ReasonTimeout: the daemon did not answer in time.
	ReasonTimeout
	// ReasonBroken: the connection failed or broke for another reason.
	ReasonBroken
)

// String names the reason.
func (r Reason) String() string {
	switch r {
	case ReasonNotRunning:
		return "not running"
	case ReasonStale:
		return "stale socket"
	case ReasonPermission:
		return "permission denied"
	case ReasonTimeout:
		return "timeout"
	case ReasonBroken:
		return "connection failed"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// UnreachableError means the client could not talk to the daemon at all;
// its message tells the user what to do. lispctl exits with status 3 on it.
type UnreachableError struct {
	// Socket is the socket path the client used.
	Socket string
	// Reason classifies the failure.
	Reason Reason
	// Timeout is the time limit that ran out, for ReasonTimeout.
	Timeout time.Duration
	// Err is the underlying error.
	Err error
}

// Error returns "api: " followed by Message.
func (e *UnreachableError) Error() string { return "api: " + e.Message() }

// Message explains the failure and the remedy, for the user.
func (e *UnreachableError) Message() string {
	switch e.Reason {
	case ReasonNotRunning:
		return fmt.Sprintf("lispd is not running (no socket at %s); start it or pass --socket", e.Socket)
	case ReasonStale:
		return fmt.Sprintf("lispd is not running (nothing listens on %s; the socket is stale); start it or pass --socket", e.Socket)
	case ReasonPermission:
		return fmt.Sprintf("permission denied on %s; run as root or a member of the socket's group", e.Socket)
	case ReasonTimeout:
		within := "in time"
		if e.Timeout > 0 {
			within = "within " + e.Timeout.String()
		}
		return fmt.Sprintf("lispd did not answer on %s %s; it may be overloaded or hung: check its logs, or pass a longer --timeout",
			e.Socket, within)
	}
	return fmt.Sprintf("cannot talk to lispd on %s: %v", e.Socket, e.Err)
}

// Unwrap returns the underlying error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// IsUnreachable reports whether err means the daemon could not be reached
// (an *UnreachableError).
func IsUnreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
}
