// Command lispctl is the operator's CLI for lispd. It talks to the daemon's
// local API over its unix socket (and, for some commands, speaks LISP
// itself). Commands are noun-verb ("lispctl map-cache show"); results go to
// stdout as tables, or as stable JSON with --json; diagnostics go to stderr.
//
// Exit status: 0 success; 1 the operation failed or found nothing; 2 usage
// error; 3 the daemon is unreachable (socket missing, refused, permission
// denied, no answer in time).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lispd/lispd/api"
)

// Exit statuses.
const (
	exitOK          = 0 // success
	exitFailure     = 1 // the operation failed, or found nothing
	exitUsage       = 2 // bad command line
	exitUnreachable = 3 // the daemon cannot be reached
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &app{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, now: time.Now})
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status. Errors are
// printed to a.stderr.
func run(ctx context.Context, args []string, a *app) int {
	root := buildRoot(a)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintf(a.stderr, "lispctl: %s\n", errorMessage(err))
	if code == exitUsage {
		path := "lispctl"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", path)
	}
	return code
}

// usageError is a bad command line; it exits with status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a usage error (exit status 2). Subcommands return it
// for bad arguments that cobra's own checks do not catch.
func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// runError marks an error returned by a command's RunE, as opposed to one
// cobra returns for a bad command line.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// exitCode maps an error from Execute to an exit status.
func exitCode(err error) int {
	var ue *usageError
	var re *runError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case api.IsUnreachable(err):
		return exitUnreachable
	case errors.As(err, &re):
		return exitFailure
	}
	// Everything else comes from cobra's parsing of the command line.
	return exitUsage
}

// errorMessage is the text printed for err, without the package prefixes
// meant for logs.
func errorMessage(err error) string {
	var un *api.UnreachableError
	var se *api.StatusError
	switch {
	case errors.As(err, &un):
		if un.Reason == api.ReasonPermission {
			return permissionMessage(un.Socket)
		}
		return un.Message()
	case errors.As(err, &se):
		return se.Message
	}
	return err.Error()
}
