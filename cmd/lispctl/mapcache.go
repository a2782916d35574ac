package main

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/api"
)

// prefixT shortens the filter callbacks' signatures.
type prefixT = netip.Prefix

func addMapCacheCommands(root *cobra.Command, a *app) {
	noun := nounCommand("map-cache",
		"Inspect the ITR's map-cache",
		`Inspect the map-cache: the EID-to-RLOC mappings the ITR has learned from
Map-Replies, configuration and its synchronization peers.`,
		`  lispctl map-cache show`)
	var iid int64
	show := &cobra.Command{
		Use:   "show [EID|PREFIX]",
		Short: "List map-cache entries",
		Long: `List the map-cache, one line per RLOC. Negative entries (no RLOCs) show
their action, e.g. natively-forward or send-map-request.

With an EID (an address), show the entry that packets to it use: the longest
prefix containing it, in each instance. With a prefix, show the entries inside
it. An EID or prefix may carry its instance as "iid:N/..."; --iid limits the
output to one instance. Nothing matching a filter is an error (exit status 1).`,
		Example: `  lispctl map-cache show
  lispctl map-cache show 10.2.3.4
  lispctl map-cache show 10.0.0.0/8 --iid 1000
  lispctl map-cache show iid:1000/10.2.3.4 --json`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseEIDFilter(args, iid)
			if err != nil {
				return err
			}
			c := apiClient(cmd)
			defer c.Close()
			entries, err := c.MapCache(cmd.Context())
			if err != nil {
				return err
			}
			sel, err := showSelected(cmd, f, entries, func(x, y api.MapCacheEntry) int {
				return cmp.Or(cmp.Compare(x.InstanceID, y.InstanceID), x.Prefix.Addr().Compare(y.Prefix.Addr()),
					cmp.Compare(x.Prefix.Bits(), y.Prefix.Bits()))
			}, func(e api.MapCacheEntry) (uint32, prefixT) { return e.InstanceID, e.Prefix },
				func(sel []api.MapCacheEntry) error { return printMapCache(cmd, a, sel) })
			if err != nil {
				return err
			}
			if len(sel) == 0 {
				if len(entries) == 0 {
					if err := missingRole(cmd, c, "itr", "so it has no map-cache",
						`run "lispctl map-cache show" on an xTR`); err != nil {
						return err
					}
				}
				if f.active() {
					hint := "the ITR has not needed it, or the mapping expired"
					if f.addr.IsValid() {
						hint += fmt.Sprintf(`; "lispctl lookup %s --mr MAP-RESOLVER" asks the mapping system`, f.text)
					}
					return errors.New("no map-cache entry " + describeFilter(f, "") + ": " + hint)
				}
				if !jsonOutput(cmd) {
					fmt.Fprintln(cmd.ErrOrStderr(), "the map-cache is empty")
				}
			}
			return nil
		},
	}
	show.Flags().Int64Var(&iid, "iid", -1, "only this instance ID")
	noun.AddCommand(show)
	root.AddCommand(noun)
}

func printMapCache(cmd *cobra.Command, a *app, entries []api.MapCacheEntry) error {
	now := a.now()
	w := newTable(cmd.OutOrStdout())
	fmt.Fprintln(w, "EID-PREFIX\tRLOC\tPRI/WGT\tSTATE\tACTION\tSOURCE\tTTL\tEXPIRES\tLAST-USED")
	for _, e := range entries {
		action := string(e.Action)
		if action == "" {
			action = "-"
		}
		tail := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", action, e.Source,
			fmtDuration(secondsDuration(e.TTLSeconds)), fmtUntil(e.Expires, now), fmtAgo(e.LastUsed, now))
		eid := eidString(e.InstanceID, e.Prefix)
		if len(e.RLOCs) == 0 {
			fmt.Fprintf(w, "%s\t-\t-\t-\t%s\n", eid, tail)
			continue
		}
		for i, l := range e.RLOCs {
			if i > 0 {
				fmt.Fprintf(w, "\t%s\t%s\t%s\t\t\t\t\t\n", l.Address, priWeight(l), rlocState(l))
				continue
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", eid, l.Address, priWeight(l), rlocState(l), tail)
		}
	}
	return w.Flush()
}
