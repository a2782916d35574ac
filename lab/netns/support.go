package netns

import (
	"os"
	"strconv"
	"strings"
)

// SupportError says why the lab cannot run on this machine. It wraps
// ErrUnsupported.
type SupportError struct {
	// NotRoot is set when the process lacks root privileges; nothing else
	// is checked then.
	NotRoot bool
	// Missing lists programs that were not found (ip, ping, keepalived,
	// dumpcap or tshark).
	Missing []string
	// Problems lists anything else that is wrong (no writable /run/netns,
	// namespaces cannot be created, not Linux).
	Problems []string
}

// Error implements error.
func (e *SupportError) Error() string {
	var parts []string
	if e.NotRoot {
		parts = append(parts, "not running as root")
	}
	parts = append(parts, e.Problems...)
	if len(e.Missing) > 0 {
		parts = append(parts, "missing programs: "+strings.Join(e.Missing, ", "))
	}
	return ErrUnsupported.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap returns ErrUnsupported.
func (e *SupportError) Unwrap() error { return ErrUnsupported }

// TB is the part of testing.TB that Require uses.
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
}

// Require skips the test when the lab cannot run here: when not root, or
// when a program or a kernel feature is missing. When the environment
// variable CI is true, a missing program or feature fails the test
// instead (CI installs them; only root is optional there).
func Require(t TB) {
	t.Helper()
	err := Supported()
	if err == nil {
		return
	}
	se, ok := err.(*SupportError)
	if ok && se.NotRoot {
		t.Skip(err.Error())
		return
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(err.Error())
		return
	}
	t.Skip(err.Error())
}
