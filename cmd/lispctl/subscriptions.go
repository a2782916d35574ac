package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/api"
)

func addSubscriptionsCommands(root *cobra.Command, a *app) {
	noun := nounCommand("subscriptions",
		"Inspect publish/subscribe subscriptions (RFC 9437)",
		`Inspect the publish/subscribe subscriptions (RFC 9437): on a Map-Server, the
xTRs that subscribed to EID-prefixes and are sent every change of their
mappings in Map-Notifies; on an ITR, the mappings it subscribed to.`,
		`  lispctl subscriptions show`)
	show := &cobra.Command{
		Use:   "show",
		Short: "List the Map-Server's subscribers and the ITR's subscriptions",
		Long: `List the publish/subscribe subscriptions of this lispd: those the
Map-Server holds (ms role, with map-server.pubsub enabled), then the ITR's
own (itr role, with itr.subscribe). A table is printed for each role the
daemon plays.

Map-Server columns: PREFIX is the subscribed EID-prefix: the registered
prefix that held the EID the ITR asked for, or the negative prefix when no
ETR registered it (NEGATIVE yes). XTR-ID and SITE-ID identify the
subscriber, ITR is where its Map-Notifies go. STATE is "pending" until the
subscriber acknowledged a confirmation with the pub/sub key, then
"confirmed". NONCE is the nonce of the last Map-Notify sent to it, EXPIRES
when it goes away unless the ITR renews it, PENDING how many of its
Map-Notifies await their Map-Notify-Ack.

ITR columns: MAP-SERVER sent the last Map-Notify accepted for the
subscription; NONCE is the last nonce used for it (the next subscribing
Map-Request uses NONCE+1); SUBSCRIBED is when the Map-Server last confirmed
it, LAST-NOTIFY when a Map-Notify for it was last accepted, and NOTIFIES how
many were (confirmations included).`,
		Example: `  lispctl subscriptions show
  lispctl subscriptions show --json | jq '.map_server | length'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := apiClient(cmd)
			defer c.Close()
			subs, err := c.Subscriptions(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return writeJSON(cmd, subs)
			}
			return printSubscriptions(cmd, a, subs)
		},
	}
	show.ValidArgsFunction = cobra.NoFileCompletions
	noun.AddCommand(show)
	root.AddCommand(noun)
}

func printSubscriptions(cmd *cobra.Command, a *app, subs api.Subscriptions) error {
	now := a.now()
	out := cmd.OutOrStdout()
	sep := ""
	if subs.MapServer != nil {
		fmt.Fprintln(out, "MAP-SERVER SUBSCRIPTIONS")
		w := newTable(out)
		fmt.Fprintln(w, "IID\tPREFIX\tXTR-ID\tSITE-ID\tITR\tSTATE\tNEGATIVE\tNONCE\tEXPIRES\tPENDING")
		for _, s := range subs.MapServer {
			state := "pending"
			if s.Confirmed {
				state = "confirmed"
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\n", s.InstanceID, s.Prefix, s.XTRID, s.SiteID,
				s.ITR, state, yesNo(s.Negative), s.Nonce, fmtUntil(s.Expires, now), s.Pending)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		sep = "\n"
	}
	if subs.ITR != nil {
		fmt.Fprint(out, sep+"ITR SUBSCRIPTIONS\n")
		w := newTable(out)
		fmt.Fprintln(w, "IID\tPREFIX\tMAP-SERVER\tNONCE\tSUBSCRIBED\tLAST-NOTIFY\tNOTIFIES")
		for _, s := range subs.ITR {
			ms := "-"
			if s.MapServer.IsValid() {
				ms = s.MapServer.String()
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%d\n", s.InstanceID, s.Prefix, ms, s.Nonce,
				fmtAgo(s.Subscribed, now), fmtAgo(s.LastNotify, now), s.Notifies)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if len(subs.MapServer) == 0 && len(subs.ITR) == 0 {
		fmt.Fprintln(cmd.ErrOrStderr(), "no subscriptions")
	}
	return nil
}
