package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/lab/benchdata"
	"github.com/lispd/lispd/lab/labkit"
)

func init() { subcommands = append(subcommands, addBenchDataplane, addRelay) }

// dataplaneTarget is the target: lispd delivers at least this
// fraction of the baseline relay's packets per second.
const dataplaneTarget = 0.80

// addBenchDataplane adds `lisplab bench dataplane`.
func addBenchDataplane(root *cobra.Command) {
	var (
		duration time.Duration
		warmup   time.Duration
		sizes    string
		lispd    string
		rate     string
		rounds   int
		gso      bool
	)
	cmd := &cobra.Command{
		Use:   "dataplane",
		Short: "Packet rate of lispd's data plane against a plain relay",
		Long: `Build the two-site topology in network namespaces (hostA -> xtrA -> RLOC
network -> xtrB -> hostB, with a Map-Server/Map-Resolver on the RLOC
network) and, for each of --sizes (inner IP packet bytes), send one UDP
flow from hostA to hostB for --duration, with each of two routers, --rounds
times (alternating which goes first):

  lispd  lispd on xtrA (ITR) and xtrB (ETR), TUN device lisp0, LISP
         encapsulation in UDP 4341;
  relay  the baseline: a relay on the same nodes with the same TUN device,
         routes, UDP sockets and batching (recvmmsg/sendmmsg, GSO) that
         sends each packet as it is, with no LISP processing.

The sender writes batches of 128 datagrams with sendmmsg (with --sender-gso,
as one UDP GSO message per batch, which reaches the TUN device as runs of
up to 64 packets per read). With --rate adaptive it offers a quarter more
than was delivered in the last 50 ms, so the routers are always saturated
but the CPUs are not spent on packets dropped anyway; --rate max sends as
fast as it can, a number at that many datagrams per second. The receiver
counts what arrives after --warmup.

It prints, for each size and router, the median round's delivered packets/s
and bits/s (inner packets), send rate and loss, the CPU each router process
used and the machine's (percent of one core), then lispd's rate as a
fraction of the relay's: the median of the rounds' ratios, each round's,
and whether the target (80%) is met. Sender, routers and receiver share
this machine's CPUs.

It needs root (network namespaces, TUN). lispd is --lispd, else a lispd
next to lisplab, else one on $PATH, else one built with "go build" (inside
the lispd source tree). Everything it creates is removed at the end.`,
		Example: `  lisplab bench dataplane
  lisplab bench dataplane --duration 10s --rounds 5 --sizes 64,512,1400
  lisplab bench dataplane --lispd ./lispd --sender-gso --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			szs, err := parseSizes(sizes)
			if err != nil {
				return err
			}
			r, err := parseRate(rate)
			if err != nil {
				return err
			}
			if duration <= 0 {
				return usageErrorf("--duration must be positive")
			}
			if warmup < 0 {
				return usageErrorf("--warmup must not be negative")
			}
			if rounds <= 0 {
				return usageErrorf("--rounds must be positive")
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("lisplab: locating this program for the relay: %w", err)
			}
			dir, err := os.MkdirTemp("", "lisplab-dataplane-")
			if err != nil {
				return fmt.Errorf("lisplab: %w", err)
			}
			defer os.RemoveAll(dir)
			bin, err := labkit.FindLispd(cmd.Context(), lispd, dir)
			if err != nil {
				return err
			}
			res, err := benchdata.Run(cmd.Context(), benchdata.Config{
				Lispd:     bin,
				Relay:     []string{self, "relay"},
				Duration:  duration,
				Warmup:    warmup,
				Sizes:     szs,
				Rate:      r,
				Rounds:    rounds,
				SenderGSO: gso,
				Progress:  cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return writeJSON(cmd, res)
			}
			return writeDataplaneTable(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	def := make([]string, len(benchdata.DefaultSizes))
	for i, s := range benchdata.DefaultSizes {
		def[i] = strconv.Itoa(s)
	}
	f.DurationVar(&duration, "duration", benchdata.DefaultDuration, "how long each measurement counts packets")
	f.DurationVar(&warmup, "warmup", benchdata.DefaultWarmup, "traffic before counting starts (after the first packet got through)")
	f.StringVar(&sizes, "sizes", strings.Join(def, ","), fmt.Sprintf("inner IP packet sizes in bytes, comma-separated (%d..%d)", benchdata.MinSize, benchdata.MaxSize))
	f.StringVar(&lispd, "lispd", "", "the lispd binary to test")
	f.IntVar(&rounds, "rounds", benchdata.DefaultRounds, "measurements of each size with each router (the ratio is the median of the rounds')")
	f.StringVar(&rate, "rate", benchdata.RateName(benchdata.RateAdaptive), `sender rate: "adaptive" (a quarter more than is delivered), "max", or datagrams per second`)
	f.BoolVar(&gso, "sender-gso", false, "send with UDP GSO (runs of 64 datagrams reach the TUN device at once)")
	benchCmd(root).AddCommand(cmd)
}

// parseSizes parses --sizes.
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < benchdata.MinSize || n > benchdata.MaxSize {
			return nil, usageErrorf("--sizes: %q is not a size between %d and %d", strings.TrimSpace(f), benchdata.MinSize, benchdata.MaxSize)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseRate parses --rate.
func parseRate(s string) (int, error) {
	switch s {
	case benchdata.RateName(benchdata.RateAdaptive):
		return benchdata.RateAdaptive, nil
	case benchdata.RateName(benchdata.RateMax):
		return benchdata.RateMax, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, usageErrorf("--rate: %q is not \"adaptive\", \"max\" or a positive number", s)
	}
	return n, nil
}

// writeDataplaneTable prints a benchdata.Result as tables.
func writeDataplaneTable(w io.Writer, r *benchdata.Result) error {
	gso := "sendmmsg, 128 per call"
	if r.SenderGSO {
		gso = "sendmmsg with UDP GSO, 128 per call"
	}
	fmt.Fprintf(w, "hostA -> xtrA (ITR) -> xtrB (ETR) -> hostB in network namespaces, one UDP flow (%s, rate %s),\n", gso, r.Rate)
	fmt.Fprintf(w, "%.1fs per measurement, %d rounds per size and router (the median round is shown);\n", r.DurationSeconds, r.Rounds)
	fmt.Fprintf(w, "%d CPUs (%s), kernel %s, load average %s at start, %s;\n", r.Machine.CPUs, r.Machine.Model, r.Machine.Kernel,
		r.Machine.LoadAverage, r.Date.Format(time.DateOnly))
	fmt.Fprintf(w, "the sender, both routers and the receiver share these CPUs (CPU in %% of one core)\n\n")
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\trouter\tsent/s\tdelivered/s\tdelivered bit/s\tloss\txtrA CPU\txtrB CPU\tgen CPU\tmachine CPU\t")
	for _, s := range r.Sizes {
		for _, m := range []benchdata.Measurement{s.Lispd, s.Relay} {
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.0f\t%s\t%.1f%%\t%.0f%%\t%.0f%%\t%.0f%%\t%.0f%%\t\n", s.Size, m.Router, m.SentPerSecond,
				m.PacketsPerSecond, bitRate(m.BitsPerSecond), 100*m.Loss, m.ITRCPU, m.ETRCPU, m.GeneratorCPU, m.MachineCPU)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\tlispd/relay\trounds\ttarget\t")
	for _, s := range r.Sizes {
		verdict := "met"
		if s.Ratio < dataplaneTarget {
			verdict = "NOT met"
		}
		rounds := make([]string, len(s.Rounds))
		for i, rd := range s.Rounds {
			rounds[i] = fmt.Sprintf("%.0f%%", 100*rd.Ratio)
		}
		fmt.Fprintf(tw, "%d\t%.0f%%\t%s\t>= %.0f%%: %s\t\n", s.Size, 100*s.Ratio, strings.Join(rounds, " "), 100*dataplaneTarget, verdict)
	}
	return tw.Flush()
}

// bitRate formats bits per second with an SI prefix.
func bitRate(b float64) string {
	switch {
	case b >= 1e9:
		return fmt.Sprintf("%.2f Gbit/s", b/1e9)
	case b >= 1e6:
		return fmt.Sprintf("%.1f Mbit/s", b/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.1f kbit/s", b/1e3)
	}
	return fmt.Sprintf("%.0f bit/s", b)
}

// addRelay adds the hidden `lisplab relay`, the baseline router that
// `lisplab bench dataplane` runs in the xTR namespaces.
func addRelay(root *cobra.Command) {
	var (
		tun    string
		mtu    int
		routes []string
		listen string
		peer   string
	)
	cmd := &cobra.Command{
		Use:    "relay",
		Hidden: true,
		Short:  "Baseline relay of lisplab bench dataplane (TUN <-> UDP, no LISP)",
		Long: `Create the TUN device --tun with --routes, bind a UDP socket at --listen,
and move packets between them with lispd's batching but no LISP processing:
each packet read from the TUN device is sent as it is to --peer, and each
datagram received is written to the TUN device. Prints "` + benchdata.RelayReady + `" once it
relays, and its counters when it stops (SIGTERM or Ctrl-C). Needs
CAP_NET_ADMIN. lisplab bench dataplane runs it in the xTR namespaces.`,
		Example: `  lisplab relay --tun lisp0 --route 10.2.0.0/24 --listen 198.19.0.1:4341 --peer 198.19.0.2:4341`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rc := benchdata.RelayConfig{TUN: tun, MTU: mtu, Ready: cmd.OutOrStdout()}
			var err error
			if rc.Listen, err = netip.ParseAddrPort(listen); err != nil {
				return usageErrorf("--listen: %v", err)
			}
			if rc.Peer, err = netip.ParseAddrPort(peer); err != nil {
				return usageErrorf("--peer: %v", err)
			}
			for _, r := range routes {
				p, err := netip.ParsePrefix(r)
				if err != nil {
					return usageErrorf("--route: %v", err)
				}
				rc.Routes = append(rc.Routes, p)
			}
			if err := benchdata.RunRelay(cmd.Context(), rc); err != nil {
				if errors.Is(err, benchdata.ErrInvalid) {
					return &usageError{err: err}
				}
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&tun, "tun", "lisp0", "name of the TUN device to create")
	f.IntVar(&mtu, "mtu", 0, "MTU of the TUN device (0: lispd's default)")
	f.StringArrayVar(&routes, "route", nil, "prefix routed into the TUN device (repeatable)")
	f.StringVar(&listen, "listen", "", "local UDP address (ip:port)")
	f.StringVar(&peer, "peer", "", "UDP address (ip:port) packets from the TUN device are sent to")
	root.AddCommand(cmd)
}
