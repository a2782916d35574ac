package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/lab/benchcontrol"
)

func init() { subcommands = append(subcommands, addBenchControl) }

// addBenchControl adds `lisplab bench control`.
func addBenchControl(root *cobra.Command) {
	var (
		rates     string
		step      time.Duration
		prefixes  int
		registers int
		memory    int
		lispd     string
		// pub/sub (RFC 9437)
		subscribers   int
		changes       int
		subscriptions int
	)
	cmd := &cobra.Command{
		Use:   "control",
		Short: "Control-plane throughput of lispd as Map-Server/Map-Resolver",
		Long: `Start lispd as a Map-Server and Map-Resolver on 127.0.0.1 (a separate
process), register --prefixes EID-prefixes with authenticated Map-Registers,
then offer Encapsulated Map-Requests at each of --rates (requests per second;
"max" sends as fast as this program can) for --step each. Half of the
requests ask for registered EIDs, half for unregistered ones.

For each step it reports requests sent, replies received, loss, reply
latency p50/p99, and the CPU used by lispd and by this generator (percent of
one core; both share the machine). Then it measures Map-Registers per second
with HMAC-SHA-1 and HMAC-SHA-256 verification against the registered
prefixes, and lispd's memory (VmRSS) empty, with --prefixes and with
--memory-prefixes registered prefixes.

Publish/subscribe (RFC 9437), between the request steps and the Map-Register
test: --pubsub-subscribers xTRs (one xTR-ID each, all on one socket)
subscribe to one proxy-replied prefix and acknowledge its confirmation, then
its ETR changes the mapping --pubsub-changes times; for each change the
time from sending the Map-Register to the publication (Map-Notify) reaching
the first and the last subscriber is reported (kernel receive timestamps),
every publication acknowledged. Then --pubsub-subscriptions confirmed
subscriptions are made of 1,000 xTR-IDs x 100 registered prefixes (for
100,000) and lispd's VmRSS read before and 2 s after (bytes per
subscription); the request steps run again with them in place (peak and p99
against the first run); and as many again of xTR-IDs with one prefix each.
The live heap per subscription of both shapes is measured in this process,
on the same Map-Server code, where a garbage collection can be asked for.
0 skips either part.

lispd is --lispd, else a lispd next to lisplab, else one on $PATH, else one
built with "go build" (inside the lispd source tree).`,
		Example: `  lisplab bench control
  lisplab bench control --rates 10000,50000,max --step 2s
  lisplab bench control --lispd ./lispd --prefixes 100000 --memory-prefixes 0 --json
  lisplab bench control --pubsub-subscribers 0 --pubsub-subscriptions 0`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rs, err := parseRates(rates)
			if err != nil {
				return err
			}
			cfg := benchcontrol.Config{
				Lispd:          lispd,
				Rates:          rs,
				Step:           step,
				Prefixes:       prefixes,
				Registers:      registers,
				MemoryPrefixes: memory,

				PubSubSubscribers:   subscribers,
				PubSubChanges:       changes,
				PubSubSubscriptions: subscriptions,
				Progress:            cmd.ErrOrStderr(),
			}
			if step <= 0 {
				return usageErrorf("--step must be positive")
			}
			if prefixes < 0 || prefixes > benchcontrol.MaxPrefixes {
				return usageErrorf("--prefixes must be between 0 and %d", benchcontrol.MaxPrefixes)
			}
			if registers < 0 {
				return usageErrorf("--registers must not be negative")
			}
			if registers > 0 && prefixes < 2 {
				return usageErrorf("--registers needs at least 2 --prefixes")
			}
			if memory != 0 && (memory < prefixes || memory > benchcontrol.MaxPrefixes) {
				return usageErrorf("--memory-prefixes must be 0 or between --prefixes and %d", benchcontrol.MaxPrefixes)
			}
			if subscribers < 0 || subscribers > benchcontrol.MaxPubSubSubscriptions {
				return usageErrorf("--pubsub-subscribers must be between 0 and %d", benchcontrol.MaxPubSubSubscriptions)
			}
			if subscribers > 0 && (changes < 1 || changes > benchcontrol.MaxPubSubChanges) {
				return usageErrorf("--pubsub-changes must be between 1 and %d", benchcontrol.MaxPubSubChanges)
			}
			if subscriptions < 0 || subscriptions > benchcontrol.MaxPubSubSubscriptions {
				return usageErrorf("--pubsub-subscriptions must be between 0 and %d", benchcontrol.MaxPubSubSubscriptions)
			}
			if subscriptions > 0 && prefixes < 1 {
				return usageErrorf("--pubsub-subscriptions needs --prefixes")
			}
			res, err := benchcontrol.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return writeJSON(cmd, res)
			}
			return writeControlTable(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	defaultRates := make([]string, len(benchcontrol.DefaultRates))
	for i, r := range benchcontrol.DefaultRates {
		defaultRates[i] = benchcontrol.RateName(r)
	}
	f.StringVar(&rates, "rates", strings.Join(defaultRates, ","), `request rates per second, comma-separated; "max" is as fast as possible`)
	f.DurationVar(&step, "step", 5*time.Second, "length of each rate step")
	f.IntVar(&prefixes, "prefixes", 100000, "EID-prefixes registered before the request steps")
	f.IntVar(&registers, "registers", 500000, "Map-Registers sent per algorithm, as fast as possible, in the register test (0 skips it)")
	f.IntVar(&memory, "memory-prefixes", 1000000, "prefixes registered for the memory figure (0 skips it)")
	f.IntVar(&subscribers, "pubsub-subscribers", 1000, "pub/sub: xTRs subscribed to one prefix for the publication latency test (0 skips it)")
	f.IntVar(&changes, "pubsub-changes", 50, "pub/sub: changes of that prefix published, one at a time")
	f.IntVar(&subscriptions, "pubsub-subscriptions", 100000, "pub/sub: confirmed subscriptions per memory shape, held during a second run of the rate steps (0 skips both)")
	f.StringVar(&lispd, "lispd", "", "the lispd binary to test")
	benchCmd(root).AddCommand(cmd)
}

// parseRates parses --rates.
func parseRates(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "max" {
			out = append(out, 0)
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, usageErrorf("--rates: %q is not a positive number or \"max\"", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// writeControlTable prints a Result as tables.
func writeControlTable(w io.Writer, r *benchcontrol.Result) error {
	fmt.Fprintf(w, "lispd MS/MR on 127.0.0.1, %d registered prefixes, %d CPUs (%s), load average %s at start, %s\n\n",
		r.Prefixes, r.Machine.CPUs, r.Machine.Model, r.Machine.LoadAverage, r.Date.Format(time.DateOnly))
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rate/s\tsent\treplies\treplies/s\tloss\tp50\tp99\tlispd CPU\tgen CPU\tlispd drops\tgen drops\t")
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.2f%%\t%s\t%s\t%.0f%%\t%.0f%%\t%d\t%d\t\n",
			benchcontrol.RateName(s.Rate), s.Sent, s.Replies, s.RepliesPerSecond, 100*s.Loss,
			micros(s.P50Micros), micros(s.P99Micros), s.LispdCPU, s.GeneratorCPU, s.LispdDrops, s.GeneratorDrops)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\npeak: %.0f replies/s\n", r.PeakRepliesPerSecond)
	if len(r.Registers) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "Map-Register\tregistered\tsent\taccepted\tper second\tlispd CPU\t")
		for _, g := range r.Registers {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.0f%%\t\n", g.Algorithm, g.Registered, g.Sent, g.Accepted, g.PerSecond, g.LispdCPU)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Memory) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "prefixes\tlispd VmRSS\tpeak (VmHWM)\t")
		for _, m := range r.Memory {
			fmt.Fprintf(tw, "%d\t%s\t%s\t\n", m.Prefixes, mib(m.RSS), mib(m.PeakRSS))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if n := len(r.Memory); n >= 2 && r.Memory[n-1].Prefixes > r.Memory[0].Prefixes {
			first, last := r.Memory[0], r.Memory[n-1]
			per := float64(int64(last.RSS)-int64(first.RSS)) / float64(last.Prefixes-first.Prefixes)
			fmt.Fprintf(w, "\n%.0f bytes of RSS per registered prefix\n", per)
		}
	}
	if r.PubSub != nil {
		return writePubSubTables(w, r)
	}
	return nil
}

// writePubSubTables prints the publish/subscribe figures.
func writePubSubTables(w io.Writer, r *benchcontrol.Result) error {
	ps := r.PubSub
	if l := ps.Latency; l != nil {
		fmt.Fprintf(w, "\npublish/subscribe: %d subscribers of one prefix (subscribed in %.2f s), %d changes\n\n",
			l.Subscribers, l.SubscribeSeconds, l.Changes)
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "Map-Register to Map-Notify\tp50\tp99\tmax\t")
		fmt.Fprintf(tw, "first subscriber\t%s\t\t\t\n", micros(l.FirstP50Micros))
		fmt.Fprintf(tw, "last subscriber\t%s\t%s\t%s\t\n", micros(l.LastP50Micros), micros(l.LastP99Micros), micros(l.LastMaxMicros))
		fmt.Fprintf(tw, "every publication\t%s\t%s\t\t\n", micros(l.AllP50Micros), micros(l.AllP99Micros))
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%d of %d publications received (%d missing, %d duplicates, %d failed authentication), lispd CPU %.0f%%\n",
			l.Received, uint64(l.Subscribers)*uint64(l.Changes), l.Missing, l.Duplicates, l.BadAuth, l.LispdCPU)
		fmt.Fprintf(w, "lispd over the run: %d publications, %d pub/sub Map-Notifies retransmitted, %d given up\n",
			ps.Publications, ps.Retransmissions, ps.GivenUp)
	}
	if len(ps.Memory) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "subscriptions\txTR-IDs\tprefixes each\tseconds\tper second\theld\tVmRSS before\tafter\tRSS/subscription\tlive heap/subscription\t")
		for _, m := range ps.Memory {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%.2f\t%.0f\t%d\t%s\t%s\t%.0f B\t%.0f B\t\n", m.Subscriptions, m.XTRIDs, m.PrefixesPerXTR,
				m.Seconds, m.PerSecond, m.Held, mib(m.RSSBefore), mib(m.RSSAfter), m.BytesPerSubscription,
				m.LiveBytesPerSubscription)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(ps.StepsWithSubscriptions) == len(r.Steps) && len(r.Steps) > 0 {
		fmt.Fprintf(w, "\nMap-Requests without and with %d subscriptions:\n\n", ps.SubscriptionsDuringSteps)
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "rate/s\treplies/s without\twith\tloss without\twith\tp99 without\twith\tlispd CPU without\twith\t")
		for i, a := range r.Steps {
			b := ps.StepsWithSubscriptions[i]
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2f%%\t%.2f%%\t%s\t%s\t%.0f%%\t%.0f%%\t\n", benchcontrol.RateName(a.Rate),
				a.RepliesPerSecond, b.RepliesPerSecond, 100*a.Loss, 100*b.Loss, micros(a.P99Micros), micros(b.P99Micros), a.LispdCPU, b.LispdCPU)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "\npeak: %.0f replies/s without, %.0f with subscriptions (ratio %.2f); p99 at %s/s: %s without, %s with\n",
			r.PeakRepliesPerSecond, ps.PeakWithSubscriptions, ps.PeakRatio, benchcontrol.RateName(ps.CompareRate),
			micros(ps.P99WithoutMicros), micros(ps.P99WithMicros))
	}
	return nil
}

// micros formats a latency in microseconds.
func micros(us float64) string {
	if us >= 10000 {
		return fmt.Sprintf("%.1fms", us/1000)
	}
	return fmt.Sprintf("%.0fµs", us)
}

// mib formats bytes in MiB.
func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
