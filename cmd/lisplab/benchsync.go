package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/cachesync"
	"github.com/lispd/lispd/lab/benchsync"
)

func init() { subcommands = append(subcommands, addBenchSync) }

// addBenchSync adds `lisplab bench sync`.
func addBenchSync(root *cobra.Command) {
	var (
		modes          string
		sizes          string
		mappings       int
		samples        int
		gossipMembers  int
		gossipMappings int
		gossipInterval time.Duration
		gossipIdle     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Cost and delay of the synchronization set's modes",
		Long: `Run members of a synchronization set in this process, each with its own
map-cache, over real loopback sockets (TLS 1.3 over TCP for naive and smart,
memberlist's UDP and TCP for gossip), and measure:

  cost    records and bytes the set sends per new mapping, with 2 members
          whose caches already hold each of --sizes shared records;
  delay   from the Map-Reply insert on one member to the record being usable
          on the other (p50, p99), 2 members, --samples mappings;
  gossip  with --gossip-members members, the time until all hold a new
          mapping, and the bytes each member sends per mapping and per second
          of idle membership traffic.

Bytes are frame payload, and wire bytes (TLS records; for gossip, all of
memberlist's traffic during the measurement). docs/BENCHMARKS.md records the
figures with the command that produced them.`,
		Example: `  lisplab bench sync
  lisplab bench sync --modes smart --sizes 1000 --samples 1000
  lisplab bench sync --gossip-members 32 --gossip-interval 50ms --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := benchsync.Config{
				Mappings: mappings, LatencySamples: samples, GossipMembers: gossipMembers,
				GossipMappings: gossipMappings, GossipInterval: gossipInterval, GossipIdle: gossipIdle,
				Progress: cmd.ErrOrStderr(),
			}
			for _, m := range strings.Split(modes, ",") {
				mode, err := cachesync.ParseMode(strings.TrimSpace(m))
				if err != nil || mode == cachesync.ModeOff {
					return usageErrorf("--modes: %q is not naive, smart or gossip", m)
				}
				cfg.Modes = append(cfg.Modes, mode)
			}
			for _, f := range strings.Split(sizes, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil || n < 0 || n > 1_000_000 {
					return usageErrorf("--sizes: %q is not a cache size from 0 to 1000000", f)
				}
				cfg.Sizes = append(cfg.Sizes, n)
			}
			if mappings <= 0 || samples <= 0 || gossipMappings <= 0 {
				return usageErrorf("--mappings, --samples and --gossip-mappings must be positive")
			}
			if gossipMembers == 1 || gossipMembers < 0 {
				return usageErrorf("--gossip-members must be 0 (skip) or at least 2")
			}
			if gossipMembers == 0 {
				cfg.GossipMembers = -1
			}
			res, err := benchsync.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return writeJSON(cmd, res)
			}
			return writeSyncTables(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&modes, "modes", "naive,smart,gossip", "modes to measure, comma-separated")
	f.StringVar(&sizes, "sizes", "10,1000,100000", "cache sizes for the cost per mapping, comma-separated")
	f.IntVar(&mappings, "mappings", 20, "new mappings per cost measurement (naive above 10,000 records: at most 3)")
	f.IntVar(&samples, "samples", 300, "mappings timed per mode for the delay")
	f.IntVar(&gossipMembers, "gossip-members", 16, "members of the large gossip set (0 skips it)")
	f.IntVar(&gossipMappings, "gossip-mappings", 30, "mappings timed in the large gossip set")
	f.DurationVar(&gossipInterval, "gossip-interval", 0, "memberlist gossip interval (default: its LAN default, 200ms)")
	f.DurationVar(&gossipIdle, "gossip-idle", 5*time.Second, "how long idle membership traffic is measured")
	benchCmd(root).AddCommand(cmd)
}

// writeSyncTables prints a benchsync.Result.
func writeSyncTables(w io.Writer, r *benchsync.Result) error {
	fmt.Fprintf(w, "synchronization set on 127.0.0.1, in-process members, %d CPUs, %s\n\n", r.CPUs, r.Date.Format(time.DateOnly))
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cost per new mapping\tcache\tmappings\trecords\tbytes\twire bytes\t")
	for _, c := range r.Cost {
		fmt.Fprintf(tw, "%s, %d members\t%d\t%d\t%.1f\t%.0f\t%.0f\t\n", c.Mode, c.Members, c.CacheSize, c.Mappings,
			c.RecordsPerMapping, c.BytesPerMapping, c.WireBytesPerMapping)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "Map-Reply to usable on a peer\tcache\tsamples\tp50\tp99\tmax\t")
	for _, l := range r.Latency {
		fmt.Fprintf(tw, "%s, %d members\t%d\t%d\t%s\t%s\t%s\t\n", l.Mode, l.Members, l.CacheSize, l.Samples,
			micros(l.P50Micros), micros(l.P99Micros), micros(l.MaxMicros))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if g := r.Gossip; g != nil {
		fmt.Fprintf(w, "\ngossip, %d members (gossip interval %.0f ms), %d mappings:\n", g.Members, g.GossipIntervalMs, g.Mappings)
		fmt.Fprintf(w, "  until all hold a new mapping: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", g.ConvergeP50Ms, g.ConvergeP99Ms, g.ConvergeMaxMs)
		fmt.Fprintf(w, "  per member per mapping: %.1f records, %.0f bytes, %.0f wire bytes\n",
			g.RecordsPerMemberPerMapping, g.BytesPerMemberPerMapping, g.WireBytesPerMemberPerMapping)
		fmt.Fprintf(w, "  idle membership traffic: %.0f wire bytes per member per second\n", g.IdleWireBytesPerMemberPerSecond)
	}
	return nil
}
