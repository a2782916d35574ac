package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/config"
)

// secondsDuration converts a count of seconds from the API.
func secondsDuration(s uint32) time.Duration { return time.Duration(s) * time.Second }

func addReloadCommand(root *cobra.Command) {
	root.AddCommand(&cobra.Command{
		Use:   "reload",
		Short: "Make lispd re-read its config file",
		Long: `Make lispd re-read and apply its config file, as SIGHUP does. Sites,
listeners and timers are updated in place. If the file has errors, they are
printed and the running config is kept (exit status 1). Keys that need a
restart (daemon.roles, daemon.api-socket, daemon.log-format) are reported in
lispd's log.`,
		Example: `  lispctl reload
  lispctl reload --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := apiClient(cmd)
			defer c.Close()
			if err := c.Reload(cmd.Context()); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return writeJSON(cmd, api.ReloadResult{Reloaded: true})
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "config reloaded")
			return err
		},
	})
}

func addLogLevelCommand(root *cobra.Command) {
	levels := strings.Join(config.LogLevelNames(), ", ")
	root.AddCommand(&cobra.Command{
		Use:   "log-level [LEVEL]",
		Short: "Show or change lispd's log level",
		Long: `Show lispd's log level, or change it at run time to LEVEL, one of
` + levels + `. The change lasts until lispd restarts or reloads a config
with a different daemon.log-level.`,
		Example: `  lispctl log-level
  lispctl log-level debug`,
		Args:      maxArgs(1),
		ValidArgs: config.LogLevelNames(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := apiClient(cmd)
			defer c.Close()
			var level string
			if len(args) == 0 {
				st, err := c.Status(cmd.Context())
				if err != nil {
					return err
				}
				level = st.LogLevel
			} else {
				l, err := config.ParseLogLevel(args[0])
				if err != nil {
					return usageErrorf("unknown log level %q: want one of %s", args[0], levels)
				}
				level = config.LogLevelName(l)
				if err := c.SetLogLevel(cmd.Context(), level); err != nil {
					return err
				}
			}
			if jsonOutput(cmd) {
				return writeJSON(cmd, api.LogLevel{Level: level})
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), level)
			return err
		},
	})
}
