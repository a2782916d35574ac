package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/api"
)

// Adding a command
//
// A file adds its commands by appending a function to subcommands in its
// own init(); newRootCmd calls each with the root command:
//
//	func init() { subcommands = append(subcommands, addDecodeCommand) }
//
//	func addDecodeCommand(root *cobra.Command) {
//		root.AddCommand(&cobra.Command{Use: ..., Short: ..., Long: ...,
//			Example: ..., Args: ..., RunE: ...})
//	}
//
// Conventions every command follows:
//   - Short, Long and Example are set (a test checks).
//   - Results go to cmd.OutOrStdout(), diagnostics to cmd.ErrOrStderr().
//   - With --json (jsonOutput(cmd)) the result is written with
//     writeJSON(cmd, v) as one stable JSON value; otherwise as a table
//     (newTable) or plain lines.
//   - Errors are returned from RunE, never printed and never os.Exit:
//     usageErrorf(...) for bad arguments (exit 2), an *api.UnreachableError
//     (as apiClient's methods return) when the daemon cannot be reached
//     (exit 3), anything else when the operation failed or found nothing
//     (exit 1).
//   - Network operations are bounded by timeout(cmd), the --timeout flag.
//     apiClient(cmd) returns a client for the --socket.

// subcommands are the functions that add the commands defined in other
// files of this package; see above.
var subcommands []func(root *cobra.Command)

// app is what the commands need from their environment; tests replace it.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
}

// The global flags.
const (
	flagSocket  = "socket"
	flagJSON    = "json"
	flagTimeout = "timeout"
)

// socketEnv is the environment variable that overrides the default socket.
const socketEnv = "LISPD_SOCKET"

// newRootCmd returns the lispctl command tree writing to stdout and stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	return buildRoot(&app{stdout: stdout, stderr: stderr, getenv: os.Getenv, now: time.Now})
}

// buildRoot returns the command tree for a.
func buildRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "lispctl",
		Short: "Control and inspect the lispd LISP daemon",
		Long: `lispctl controls and inspects a running lispd (the LISP Map-Server,
Map-Resolver and xTR daemon) through its local API socket.

Commands are noun-verb: "lispctl registrations show", "lispctl map-cache show".
Results are printed on stdout as tables, or as stable JSON with --json;
diagnostics go to stderr. Every command has --help with examples, and
"lispctl completion" prints a shell completion script.

lispctl finds lispd through its API socket: --socket, else $LISPD_SOCKET,
else /run/lispd/lispd.sock (daemon.api-socket in lispd.toml). Using it needs
root or membership of the socket's group.

Exit status, for scripts:
  0  success
  1  the operation failed, or nothing matched (e.g. no map-cache entry covers the EID)
  2  usage error (bad command, flag or argument)
  3  lispd is unreachable (socket missing, refused, permission denied, no answer)`,
		Example: `  lispctl status
  lispctl registrations show --site site-a
  lispctl map-cache show 10.1.2.3 --iid 1000 --json
  lispctl --socket /tmp/lispd.sock reload
  lispctl status >/dev/null 2>&1; [ $? -eq 3 ] && echo "lispd is down"`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	// "lispctl completion" (completion.go) replaces cobra's default.
	root.CompletionOptions.DisableDefaultCmd = true

	defSocket := api.DefaultSocket
	if s := a.getenv(socketEnv); s != "" {
		defSocket = s
	}
	pf := root.PersistentFlags()
	pf.String(flagSocket, defSocket, "path of lispd's API socket; $"+socketEnv+", when set, changes the default")
	pf.Bool(flagJSON, false, "print results as JSON")
	pf.Duration(flagTimeout, api.DefaultTimeout, "time limit for each request to lispd")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if timeout(cmd) <= 0 {
			return usageErrorf("--timeout must be positive")
		}
		if socket(cmd) == "" {
			return usageErrorf("--socket must not be empty")
		}
		return nil
	}

	addStatusCommand(root)
	addRegistrationsCommands(root, a)
	addSubscriptionsCommands(root, a)
	addMapCacheCommands(root, a)
	addReloadCommand(root)
	addLogLevelCommand(root)
	for _, add := range subcommands {
		add(root)
	}
	markRunErrors(root)
	return root
}

// markRunErrors wraps the RunE of every command so that exitCode can tell
// the errors of a command that ran from those of cobra's argument parsing.
func markRunErrors(c *cobra.Command) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			if err == nil {
				return nil
			}
			if _, ok := err.(*usageError); ok {
				return err
			}
			return &runError{err: err}
		}
	}
	for _, sub := range c.Commands() {
		markRunErrors(sub)
	}
}

// noArgs is cobra.NoArgs as a usage error that names the command.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return usageErrorf("%q takes no arguments, got %q", cmd.CommandPath(), args[0])
	}
	return nil
}

// maxArgs is cobra.MaximumNArgs(n) as a usage error.
func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usageErrorf("%q takes at most %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

// nounCommand returns a command that only groups verbs: run alone it
// shows its help.
func nounCommand(use, short, long, example string) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    long,
		Example: example,
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// jsonOutput reports whether --json was given.
func jsonOutput(cmd *cobra.Command) bool {
	v, err := cmd.Flags().GetBool(flagJSON)
	return err == nil && v
}

// timeout returns --timeout.
func timeout(cmd *cobra.Command) time.Duration {
	v, err := cmd.Flags().GetDuration(flagTimeout)
	if err != nil {
		return api.DefaultTimeout
	}
	return v
}

// socket returns --socket.
func socket(cmd *cobra.Command) string {
	v, err := cmd.Flags().GetString(flagSocket)
	if err != nil {
		return api.DefaultSocket
	}
	return v
}

// apiClient returns a client for the --socket with the --timeout. Close it
// when done.
func apiClient(cmd *cobra.Command) *api.Client {
	return api.NewClient(socket(cmd), api.WithTimeout(timeout(cmd)))
}

// writeJSON writes v to stdout as indented JSON.
func writeJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a tabwriter for aligned columns (cells end with a tab,
// rows with a newline); Flush it when done. Trailing blanks of each row are
// dropped.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(&trimWriter{w: w}, 0, 8, 2, ' ', 0)
}

// trimWriter passes lines on without their trailing spaces.
type trimWriter struct {
	w       io.Writer
	pending []byte // the start of a line not yet ended
}

func (t *trimWriter) Write(p []byte) (int, error) {
	t.pending = append(t.pending, p...)
	for {
		i := bytes.IndexByte(t.pending, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := bytes.TrimRight(t.pending[:i], " ")
		if _, err := t.w.Write(append(line, '\n')); err != nil {
			return 0, err
		}
		t.pending = t.pending[i+1:]
	}
}
