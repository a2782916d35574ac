package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Adding a command
//
// A file adds its commands by appending a function to subcommands in its
// own init(); newRootCmd calls each with the root command:
//
//	func init() { subcommands = append(subcommands, addPaperCommand) }
//
//	func addPaperCommand(root *cobra.Command) {
//		root.AddCommand(&cobra.Command{Use: "paper", ...})
//	}
//
// A benchmark adds itself under `lisplab bench`, which benchCmd(root)
// returns (creating it the first time):
//
//	func addDataplaneBench(root *cobra.Command) {
//		benchCmd(root).AddCommand(&cobra.Command{Use: "dataplane", ...})
//	}
//
// Conventions every command follows:
//   - Short, Long and Example are set (a test checks).
//   - Results go to cmd.OutOrStdout(): a table, or with --json
//     (jsonOutput(cmd)) one JSON value written by writeJSON. Progress and
//     diagnostics go to cmd.ErrOrStderr().
//   - Errors are returned from RunE, never printed and never os.Exit:
//     usageErrorf(...) for a bad command line (exit 2), anything else when
//     the run failed (exit 1).
//   - Long runs stop when cmd.Context() is cancelled (Ctrl-C).

// subcommands are the functions that add the commands defined in other
// files of this package; see above.
var subcommands []func(root *cobra.Command)

// flagJSON is the global flag asking for JSON output.
const flagJSON = "json"

// newRootCmd returns the lisplab command tree writing to stdout and stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "lisplab",
		Short: "The lispd lab: benchmarks and experiments",
		Long: `lisplab runs lispd's lab: benchmarks of the daemon and reproductions of
experiments, driving lispd as a user would (separate processes on loopback,
real LISP messages).

Results are printed on stdout as tables, or as JSON with --json; progress
and diagnostics go to stderr.

Exit status: 0 on success, 1 when a run failed, 2 for a bad command line.`,
		Example: `  lisplab paper
  lisplab paper --netns --plot paper.svg
  lisplab bench control --rates 10000,50000,max --step 2s --json
  lisplab bench dataplane --sizes 64,1400
  lisplab bench sync`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().Bool(flagJSON, false, "print results as JSON")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	for _, add := range subcommands {
		add(root)
	}
	usageArgs(root)
	return root
}

// usageArgs makes the argument errors of every command of the tree usage
// errors (exit status 2), whatever validator the command uses.
func usageArgs(c *cobra.Command) {
	if validate := c.Args; validate != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := validate(cmd, args); err != nil {
				var ue *usageError
				if errors.As(err, &ue) {
					return err
				}
				return &usageError{err: err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

// benchCmd returns the `lisplab bench` parent command of root, creating it
// the first time.
func benchCmd(root *cobra.Command) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == "bench" {
			return c
		}
	}
	b := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks of lispd",
		Long: `Benchmarks of lispd. Each one starts the programs it measures itself and
prints a table of its figures (or JSON with --json); docs/BENCHMARKS.md
records the figures of each with the command that produced them.`,
		Example: `  lisplab bench control`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.AddCommand(b)
	return b
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return &usageError{err: err}
	}
	return nil
}

// usageError is a bad command line (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a usageError.
func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// jsonOutput reports whether --json was given.
func jsonOutput(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool(flagJSON)
	return v
}

// writeJSON writes v as indented JSON on the command's stdout.
func writeJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
