package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

func addStatusCommand(root *cobra.Command) {
	root.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show the daemon's version, roles, listeners and counters",
		Long: `Show what the running lispd is: its version, process ID, roles, uptime,
config file, log level, the sockets it listens on and its event counters.`,
		Example: `  lispctl status
  lispctl status --json | jq .counters`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := apiClient(cmd)
			defer c.Close()
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return writeJSON(cmd, st)
			}
			w := newTable(cmd.OutOrStdout())
			fmt.Fprintf(w, "version\t%s\n", st.Version)
			fmt.Fprintf(w, "pid\t%d\n", st.PID)
			fmt.Fprintf(w, "roles\t%s\n", strings.Join(st.Roles, ", "))
			fmt.Fprintf(w, "started\t%s (up %s)\n", st.StartedAt.Local().Format("2006-01-02 15:04:05 MST"), fmtDuration(st.Uptime()))
			fmt.Fprintf(w, "config\t%s\n", st.ConfigPath)
			fmt.Fprintf(w, "log level\t%s\n", st.LogLevel)
			if len(st.Listeners) > 0 {
				fmt.Fprintf(w, "\nLISTENER\tNETWORK\tADDRESS\n")
				for _, l := range st.Listeners {
					fmt.Fprintf(w, "%s\t%s\t%s\n", l.Name, l.Network, l.Address)
				}
			}
			if len(st.Counters) > 0 {
				names := make([]string, 0, len(st.Counters))
				for n := range st.Counters {
					names = append(names, n)
				}
				slices.Sort(names)
				fmt.Fprintf(w, "\nCOUNTER\tVALUE\n")
				for _, n := range names {
					fmt.Fprintf(w, "%s\t%d\n", n, st.Counters[n])
				}
			}
			return w.Flush()
		},
	})
}
