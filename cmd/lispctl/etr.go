package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/api"
)

func init() { subcommands = append(subcommands, addETRCommands) }

func addETRCommands(root *cobra.Command) {
	noun := nounCommand("etr",
		"Inspect the ETR's registrations",
		`Inspect the Egress Tunnel Router: its EID database and its registration
with each Map-Server.`,
		`  lispctl etr show`)
	var down bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the ETR's registration state and EID database",
		Long: `Show the ETR's xTR-ID and site-ID, its registration state with each
Map-Server, and the EID prefixes it registers with their RLOCs.

STATE is "registering" until the first Map-Notify acknowledges a Map-Register,
"up" while acknowledgments keep coming (within three register intervals, the
Map-Server's registration timeout) and "down" when they stop. AUTH-FAIL counts
Map-Notifies from the Map-Server that failed authentication (a key mismatch).
LOCAL marks this xTR's own RLOCs.

With --check, the exit status is 1 when a Map-Server is not "up".`,
		Example: `  lispctl etr show
  lispctl etr show --json
  lispctl etr show --check && echo registered`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := apiClient(cmd)
			defer c.Close()
			st, err := c.ETR(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				err = writeJSON(cmd, st)
			} else {
				err = printETR(cmd, st, time.Now())
			}
			if err != nil {
				return err
			}
			if down {
				for _, m := range st.MapServers {
					if m.State != api.ETRStateUp {
						return errors.New("not registered with Map-Server " + m.MapServer.String() + " (" + m.State + ")")
					}
				}
				if len(st.MapServers) == 0 {
					return errors.New("no Map-Server configured")
				}
			}
			return nil
		},
	}
	show.Flags().BoolVar(&down, "check", false, "exit with status 1 unless every Map-Server registration is up")
	noun.AddCommand(show)
	root.AddCommand(noun)
}

func printETR(cmd *cobra.Command, st api.ETRStatus, now time.Time) error {
	w := newTable(cmd.OutOrStdout())
	proxy := "no"
	if st.ProxyReply {
		proxy = "yes"
	}
	fmt.Fprintf(w, "xtr-id\t%s\n", st.XTRID)
	fmt.Fprintf(w, "site-id\t%d\n", st.SiteID)
	fmt.Fprintf(w, "record ttl\t%s\n", fmtDuration(secondsDuration(st.TTLSeconds)))
	fmt.Fprintf(w, "proxy-reply\t%s\n", proxy)
	fmt.Fprintf(w, "\nMAP-SERVER\tSTATE\tLAST-REGISTER\tLAST-NOTIFY\tREGISTERS\tNOTIFIES\tAUTH-FAIL\tKEY-ID\tALGORITHM\n")
	for _, m := range st.MapServers {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", m.MapServer, m.State,
			fmtAgo(m.LastRegister, now), fmtAgo(m.LastNotify, now), m.RegistersSent, m.NotifiesReceived,
			m.AuthFailures, m.KeyID, m.Algorithm)
	}
	fmt.Fprintf(w, "\nEID-PREFIX\tRLOC\tPRI/WGT\tLOCAL\n")
	for _, m := range st.Database {
		eid := eidString(m.InstanceID, m.EIDPrefix)
		if len(m.RLOCs) == 0 {
			fmt.Fprintf(w, "%s\t-\t-\t-\n", eid)
			continue
		}
		for i, l := range m.RLOCs {
			lead := eid
			if i > 0 {
				lead = ""
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", lead, l.Address, priWeight(l), strconv.FormatBool(l.Local))
		}
	}
	return w.Flush()
}
