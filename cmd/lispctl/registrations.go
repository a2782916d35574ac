package main

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/api"
)

func addRegistrationsCommands(root *cobra.Command, a *app) {
	noun := nounCommand("registrations",
		"Inspect the Map-Server's registrations",
		`Inspect the EID prefixes that ETRs have registered with this Map-Server.`,
		`  lispctl registrations show`)
	var iid int64
	var site string
	show := &cobra.Command{
		Use:   "show [EID|PREFIX]",
		Short: "List registered EID prefixes with their RLOCs",
		Long: `List the EID prefixes registered with the Map-Server, one line per RLOC,
with the site, the ETR that registered them, and when they expire.

With an EID (an address), show the registration a Map-Request for it would
match: the longest registered prefix containing it, in each instance. With a
prefix, show the registrations inside it. An EID or prefix may carry its
instance as "iid:N/..."; --iid limits the output to one instance and --site
to one site. Nothing matching a filter is an error (exit status 1).

Columns: FLAGS has P when the ETR asked for proxy Map-Replies and M when it
asked for a Map-Notify; STATE is the RLOC's reachability.`,
		Example: `  lispctl registrations show
  lispctl registrations show 10.1.2.3
  lispctl registrations show iid:1000/10.1.0.0/16
  lispctl registrations show --site site-a --json`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseEIDFilter(args, iid)
			if err != nil {
				return err
			}
			c := apiClient(cmd)
			defer c.Close()
			regs, err := c.Registrations(cmd.Context())
			if err != nil {
				return err
			}
			if site != "" {
				regs = slices.DeleteFunc(regs, func(r api.Registration) bool { return r.Site != site })
			}
			sel, err := showSelected(cmd, f, regs, func(x, y api.Registration) int {
				return cmp.Or(strings.Compare(x.Site, y.Site), cmp.Compare(x.InstanceID, y.InstanceID),
					x.EIDPrefix.Addr().Compare(y.EIDPrefix.Addr()), cmp.Compare(x.EIDPrefix.Bits(), y.EIDPrefix.Bits()))
			}, func(r api.Registration) (uint32, prefixT) { return r.InstanceID, r.EIDPrefix },
				func(sel []api.Registration) error { return printRegistrations(cmd, a, sel) })
			if err != nil {
				return err
			}
			if len(sel) == 0 {
				if len(regs) == 0 && site == "" {
					if err := missingRole(cmd, c, "ms", "so it holds no registrations",
						`run "lispctl registrations show" on the Map-Server, or "lispctl etr show" here for this ETR's registration state`); err != nil {
						return err
					}
				}
				if f.active() || site != "" {
					return errors.New("no registration " + describeFilter(f, site) +
						`: no ETR has registered it; check the ETR ("lispctl etr show" there) and the mapserver_register_* counters of "lispctl status" here`)
				}
				if !jsonOutput(cmd) {
					fmt.Fprintln(cmd.ErrOrStderr(), "no registrations")
				}
			}
			return nil
		},
	}
	show.Flags().Int64Var(&iid, "iid", -1, "only this instance ID")
	show.Flags().StringVar(&site, "site", "", "only this site")
	noun.AddCommand(show)
	root.AddCommand(noun)
}

func printRegistrations(cmd *cobra.Command, a *app, regs []api.Registration) error {
	now := a.now()
	w := newTable(cmd.OutOrStdout())
	fmt.Fprintln(w, "SITE\tEID-PREFIX\tRLOC\tPRI/WGT\tSTATE\tREGISTERED-BY\tLAST-REGISTERED\tEXPIRES\tFLAGS")
	for _, r := range regs {
		flags := ""
		if r.ProxyReply {
			flags += "P"
		}
		if r.WantMapNotify {
			flags += "M"
		}
		if flags == "" {
			flags = "-"
		}
		lead := fmt.Sprintf("%s\t%s", r.Site, eidString(r.InstanceID, r.EIDPrefix))
		tail := fmt.Sprintf("%s\t%s\t%s\t%s", r.RegisteredBy, fmtAgo(r.LastRegistered, now), fmtUntil(r.Expires, now), flags)
		if len(r.RLOCs) == 0 {
			fmt.Fprintf(w, "%s\t-\t-\t-\t%s\n", lead, tail)
			continue
		}
		for i, l := range r.RLOCs {
			if i > 0 {
				// Further RLOCs of the same prefix: only the RLOC columns.
				fmt.Fprintf(w, "\t\t%s\t%s\t%s\t\t\t\t\n", l.Address, priWeight(l), rlocState(l))
				continue
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", lead, l.Address, priWeight(l), rlocState(l), tail)
		}
	}
	return w.Flush()
}

// describeFilter prints a filter for "no ... <filter>" messages: "covers
// 10.1.2.3 in any instance", "inside 10.0.0.0/8 in instance 7", "in site
// \"a\"".
func describeFilter(f eidFilter, site string) string {
	var parts []string
	switch {
	case f.addr.IsValid():
		parts = append(parts, "covers "+f.text)
	case f.prefix.IsValid():
		parts = append(parts, "inside "+f.text)
	}
	switch {
	case f.hasIID && !strings.HasPrefix(f.text, "iid:"):
		parts = append(parts, fmt.Sprintf("in instance %d", f.iid))
	case !f.hasIID && f.text != "" && site == "":
		parts = append(parts, "in any instance")
	}
	if site != "" {
		parts = append(parts, fmt.Sprintf("in site %q", site))
	}
	return strings.Join(parts, " ")
}

// missingRole returns an error when the daemon behind c does not play
// role, saying so (why) and where to look instead; nil when it plays the
// role or its roles cannot be told.
func missingRole(cmd *cobra.Command, c *api.Client, role, why, instead string) error {
	st, err := c.Status(cmd.Context())
	if err != nil || len(st.Roles) == 0 || slices.Contains(st.Roles, role) {
		return nil
	}
	return fmt.Errorf("this lispd plays %s, not %s, %s; %s", strings.Join(st.Roles, ", "), role, why, instead)
}
