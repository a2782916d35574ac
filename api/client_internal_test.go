package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTransportErrorClassification covers the reasons that cannot be
// produced for real in a test running as root (permission) or without
// races (timeouts while dialing).
func TestTransportErrorClassification(t *testing.T) {
	c := NewClient("/run/x.sock", WithTimeout(3*time.Second))
	defer c.Close()
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", err)}
	}
	tests := []struct {
		err    error
		reason Reason
		msg    string
	}{
		{opErr(syscall.ENOENT), ReasonNotRunning, "lispd is not running (no socket at /run/x.sock); start it or pass --socket"},
		{opErr(syscall.ECONNREFUSED), ReasonStale, "lispd is not running (nothing listens on /run/x.sock; the socket is stale); start it or pass --socket"},
		{opErr(syscall.EACCES), ReasonPermission, "permission denied on /run/x.sock; run as root or a member of the socket's group"},
		{fmt.Errorf("x: %w", fs.ErrPermission), ReasonPermission, "permission denied"},
		{context.DeadlineExceeded, ReasonTimeout, "lispd did not answer on /run/x.sock within 3s"},
		{opErr(syscall.ECONNRESET), ReasonBroken, "cannot talk to lispd on /run/x.sock: dial unix: connect: connection reset by peer"},
	}
	for _, tt := range tests {
		err := c.transportError(context.Background(), tt.err)
		var ue *UnreachableError
		if !errors.As(err, &ue) || ue.Reason != tt.reason || !strings.Contains(ue.Message(), tt.msg) {
			t.Errorf("%v: got %v, want reason %v and %q", tt.err, err, tt.reason, tt.msg)
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("%v does not unwrap to its cause", err)
		}
	}
	if err := c.transportError(context.Background(), context.Canceled); IsUnreachable(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	for r := ReasonNotRunning; r <= ReasonBroken; r++ {
		if strings.HasPrefix(r.String(), "reason(") {
			t.Errorf("reason %d has no name", r)
		}
	}
}
