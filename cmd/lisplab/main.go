// Command lisplab is lispd's lab: benchmarks and reproductions of
// experiments, driving lispd as a user would.
//
//	lisplab paper                  the paper's experiment (Table 1), embedded
//	lisplab paper --netns          the same with lispd, TUN and keepalived in namespaces
//	lisplab bench control          control-plane throughput of an MS/MR
//	lisplab bench dataplane        ITR -> ETR forwarding rate against a plain relay
//	lisplab bench sync             cost and delay of the synchronization set modes
//
// Results go to stdout (a table, or JSON with --json); progress and
// diagnostics go to stderr.
//
// Exit status: 0 on success, 1 when a run failed, 2 for a bad command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "lisplab: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
