package netns

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by this package; match them with errors.Is.
var (
	// ErrClosed is returned by every method of a Lab (and of its nodes,
	// links and processes) that would create something after Close.
	ErrClosed = errors.New("netns: lab is closed")
	// ErrUnsupported is wrapped by the error of Supported.
	ErrUnsupported = errors.New("netns: network-namespace lab not supported here")
	// ErrInvalid is wrapped by every error about a malformed argument: a
	// bad name, address, prefix, sysctl key or configuration.
	ErrInvalid = errors.New("netns: invalid argument")
	// ErrExists is returned when a node, interface or bridge name is
	// already taken.
	ErrExists = errors.New("netns: already exists")
	// ErrNotFound is returned for an interface, node or address that does
	// not exist.
	ErrNotFound = errors.New("netns: not found")
	// ErrTimeout is wrapped when a wait helper's deadline passes.
	ErrTimeout = errors.New("netns: timed out")
	// ErrExited is wrapped when a process exited before it became ready.
	ErrExited = errors.New("netns: process exited")
	// ErrPingOutput is wrapped when ping's output cannot be understood.
	ErrPingOutput = errors.New("netns: unparsable ping output")
	// ErrSplitBrain is returned by VIPOwner when more than one node holds
	// the virtual address.
	ErrSplitBrain = errors.New("netns: virtual address held by more than one node")
)

// invalidf returns an error wrapping ErrInvalid.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ProcessError reports a process that failed: it could not start, it
// exited with a failure, or it did not become ready. Tail holds the last
// lines of its output, which usually say why.
type ProcessError struct {
	// Node is the node's short name.
	Node string
	// Name is the process's label (the program's base name unless
	// chosen).
	Name string
	// Pid is the process ID, 0 if it never started.
	Pid int
	// Err is the underlying error (an *exec.ExitError for a failed exit).
	Err error
	// Tail is the end of the process's stdout and stderr.
	Tail string
}

// Error implements error.
func (e *ProcessError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "netns: node %s: %s", e.Node, e.Name)
	if e.Pid != 0 {
		fmt.Fprintf(&b, " (pid %d)", e.Pid)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if t := strings.TrimSpace(e.Tail); t != "" {
		b.WriteString("\n--- output tail ---\n")
		b.WriteString(t)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *ProcessError) Unwrap() error { return e.Err }
