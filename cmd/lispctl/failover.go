package main

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/api"
)

func init() { subcommands = append(subcommands, addFailoverCommands) }

func addFailoverCommands(root *cobra.Command) {
	noun := nounCommand("failover",
		"Show and steer failover: withdrawn RLOCs, sync members, remote ITRs",
		`Show and steer failover in both directions. An xTR stops claiming an RLOC
it cannot serve: its own, when its EID-side interfaces are down or it is
drained, and another member's of its synchronization set, when that member
died or is down. A withdrawn RLOC is registered with priority 255 and the R
bit clear, answered so to RLOC-probes, cleared in the Locator-Status-Bits
of every packet the site encapsulates, and the remote ITRs that were
sending to the site are sent SMRs.`,
		`  lispctl failover show
  lispctl failover check
  lispctl failover peer-down 192.0.2.2`)
	show := &cobra.Command{
		Use:   "show",
		Short: "Show what this xTR claims and knows of its site",
		Long: `Show this xTR's RLOCs, its EID-side link state, whether it is drained,
the locators it registers as unusable and why, the other members of its
synchronization set (ALIVE: connected; SERVING: alive and neither down nor
drained), and the remote ITRs that encapsulated to the site recently (the
targets of its SMRs).`,
		Example: `  lispctl failover show
  lispctl failover show --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := apiClient(cmd)
			defer c.Close()
			st, err := c.Failover(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return writeJSON(cmd, st)
			}
			return printFailover(cmd, st, time.Now())
		},
	}
	check := &cobra.Command{
		Use:   "check",
		Short: "Declare silent sync members dead now (keepalived's notify hook)",
		Long: `Declare dead, at once, every member of the synchronization set from which
nothing arrived for two heartbeat intervals, instead of waiting for
failover.dead-after, and withdraw its RLOCs. keepalived's notify script
(deploy/keepalived/lispd-vrrp-notify) runs it when this router becomes VRRP
master. Members that are alive are not touched.`,
		Example: `  lispctl failover check`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := apiClient(cmd)
			defer c.Close()
			st, err := c.FailoverCheck(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return writeJSON(cmd, st)
			}
			return printFailover(cmd, st, time.Now())
		},
	}
	override := func(use string, down bool, short, long string) *cobra.Command {
		return &cobra.Command{
			Use:     use + " RLOC",
			Short:   short,
			Long:    long,
			Example: "  lispctl failover " + use + " 192.0.2.2",
			Args:    exactArgsUsage(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				a, err := netip.ParseAddr(args[0])
				if err != nil {
					return usageErrorf("%q is not an IP address", args[0])
				}
				c := apiClient(cmd)
				defer c.Close()
				st, err := c.SetPeerDown(cmd.Context(), api.PeerOverride{RLOC: a, Down: down})
				if err != nil {
					return err
				}
				if jsonOutput(cmd) {
					return writeJSON(cmd, st)
				}
				return printFailover(cmd, st, time.Now())
			},
		}
	}
	noun.AddCommand(show, check,
		override("peer-down", true, "Withdraw another xTR's RLOC by hand",
			`Withdraw another xTR's RLOC of the site's EID database by hand, as if that
member had died, until "lispctl failover peer-up". For this xTR's own RLOCs
use "lispctl drain".`),
		override("peer-up", false, "Undo lispctl failover peer-down",
			`Undo "lispctl failover peer-down": the RLOC is claimed again unless the
synchronization set says its member is dead or down.`))
	root.AddCommand(noun)

	var drainTimeout time.Duration
	drain := &cobra.Command{
		Use:   "drain",
		Short: "Move the LISP ingress and the gateway away from this xTR, losing nothing",
		Long: `Prepare this xTR for maintenance without losing a packet: lispd withdraws its
RLOCs (registered with priority 255, Locator-Status-Bit 0, SMRs to the remote
ITRs, and the other members of the synchronization set are told), keeps
forwarding in both directions while the remote ITRs move to the other RLOCs,
waits until no LISP packet arrived for failover.drain-quiet (or the drain
timeout), and then writes 1 to failover.vrrp-track-file, so that keepalived
hands the gateway address over. "lispctl undrain" undoes it.

The exit status is 1 when the ingress did not go quiet before the timeout
(the gateway is handed over anyway).`,
		Example: `  lispctl drain
  lispctl drain --drain-timeout 1m && systemctl stop lispd`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wait := drainTimeout
			if wait <= 0 {
				wait = 5 * time.Minute // the daemon's drain-timeout bounds it
			}
			c := api.NewClient(socket(cmd), api.WithTimeout(wait+timeout(cmd)))
			defer c.Close()
			res, err := c.Drain(cmd.Context(), api.DrainRequest{Timeout: drainTimeout})
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				if err := writeJSON(cmd, res); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "drained: RLOCs %s withdrawn\n", joinAddrs(res.Status.LocalRLOCs))
				fmt.Fprintf(w, "waited %v for the ingress to move (%d LISP packets meanwhile)\n", res.Waited.Round(time.Millisecond), res.PacketsDuring)
				if res.TrackFile != "" {
					fmt.Fprintf(w, "VRRP track file %s set: keepalived hands the gateway over\n", res.TrackFile)
				} else {
					fmt.Fprintln(w, "no failover.vrrp-track-file: hand the gateway over yourself")
				}
			}
			if !res.Quiet {
				return fmt.Errorf("LISP packets were still arriving after %v", res.Waited.Round(time.Millisecond))
			}
			return nil
		},
	}
	drain.Flags().DurationVar(&drainTimeout, "drain-timeout", 0, "longest wait for the ingress to move (default failover.drain-timeout)")
	undrain := &cobra.Command{
		Use:   "undrain",
		Short: "Undo lispctl drain",
		Long: `Undo "lispctl drain": write 0 to failover.vrrp-track-file (keepalived takes
the gateway back if this router has the higher priority) and claim this
xTR's RLOCs again (unless its EID-side interfaces are down).`,
		Example: `  lispctl undrain`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := apiClient(cmd)
			defer c.Close()
			st, err := c.Undrain(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return writeJSON(cmd, st)
			}
			return printFailover(cmd, st, time.Now())
		},
	}
	root.AddCommand(drain, undrain)
}

// exactArgsUsage is cobra.ExactArgs(n) as a usage error.
func exactArgsUsage(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%q takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

func joinAddrs(as []netip.Addr) string {
	if len(as) == 0 {
		return "-"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func printFailover(cmd *cobra.Command, st api.FailoverStatus, now time.Time) error {
	w := newTable(cmd.OutOrStdout())
	fmt.Fprintf(w, "failover\t%s\n", map[bool]string{true: "on", false: "off (failover.enabled = false)"}[st.Enabled])
	fmt.Fprintf(w, "local rlocs\t%s\n", joinAddrs(st.LocalRLOCs))
	ifs := strings.Join(st.Interfaces, ", ")
	if ifs == "" {
		ifs = "-"
	}
	fmt.Fprintf(w, "eid-side interfaces\t%s (%s)\n", ifs, map[bool]string{true: "up", false: "down"}[st.LinkUp])
	fmt.Fprintf(w, "drained\t%s\n", yesNo(st.Draining))
	fmt.Fprintf(w, "withdrawals/restorations\t%d/%d (SMR targets %d)\n", st.Withdrawals, st.Restorations, st.SMRTargets)
	if err := w.Flush(); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintln(out, "\nWITHDRAWN RLOCS")
	w = newTable(out)
	fmt.Fprintf(w, "RLOC\tREASON\n")
	for _, r := range st.Withdrawn {
		fmt.Fprintf(w, "%s\t%s\n", r.Address, r.Reason)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nSYNC MEMBERS")
	w = newTable(out)
	fmt.Fprintf(w, "NAME\tALIVE\tSERVING\tRLOCS\tREMOTE-ITRS\tREASON\n")
	for _, m := range st.Members {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", m.Name, yesNo(m.Alive), yesNo(m.Serving), joinAddrs(m.RLOCs), m.RemoteITRs, m.Reason)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nREMOTE ITRS")
	w = newTable(out)
	fmt.Fprintf(w, "RLOC\tIID\tEID\tLAST-SEEN\n")
	for _, r := range st.RemoteITRs {
		eid := "-"
		if r.EID.IsValid() {
			eid = r.EID.String()
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s ago\n", r.RLOC, r.InstanceID, eid, now.Sub(r.LastSeen).Round(time.Second))
	}
	return w.Flush()
}
