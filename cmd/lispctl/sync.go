package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/cachesync"
)

func init() { subcommands = append(subcommands, addSyncCommands) }

func addSyncCommands(root *cobra.Command) {
	noun := nounCommand("sync",
		"Inspect the synchronization set and make its keys",
		`The synchronization set is the group of redundant ITRs of a site whose
map-caches lispd keeps in step ([sync] in lispd.toml), so that when one fails
the others already hold every mapping it was using.

"keygen" makes a member's key pair; "peers" and "status" show the running
member's view of its peers and its counters.`,
		`  lispctl sync keygen /etc/lispd/sync.key
  lispctl sync peers
  lispctl sync status --json`)
	noun.AddCommand(syncKeygenCommand(), syncPubkeyCommand(), syncPeersCommand(), syncStatusCommand())
	root.AddCommand(noun)
}

// keyResult is the JSON answer of keygen and pubkey.
type keyResult struct {
	PrivateKeyFile string `json:"private_key_file"`
	PublicKey      string `json:"public_key"`
}

func syncKeygenCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen PRIVATE-KEY-FILE",
		Short: "Make a member's key pair and print its public key",
		Long: `Make a new Ed25519 key pair for a member of a naive or smart
synchronization set. The private key is written to PRIVATE-KEY-FILE (PEM,
PKCS #8, mode 0600; an existing file is never overwritten): point
sync.private-key at it. The public key is printed on stdout: put it in the
public-key of this member's [[sync.peer]] table on every other member.

Peers pin each other's public keys: a connection from or to a peer that
proves another key is refused (and counted in "lispctl sync status").

This command does not talk to lispd.`,
		Example: `  lispctl sync keygen /etc/lispd/sync.key
  lispctl sync keygen ./itr-2.key --json`,
		Args: syncOneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			k, err := cachesync.GenerateKey()
			if err != nil {
				return err
			}
			if err := cachesync.WritePrivateKey(path, k); err != nil {
				if errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("%s already exists; not overwriting a key (remove it first, or choose another file)", path)
				}
				return err
			}
			pub := cachesync.FormatPublicKey(cachesync.PublicKeyOf(k))
			if jsonOutput(cmd) {
				abs, _ := filepath.Abs(path)
				return writeJSON(cmd, keyResult{PrivateKeyFile: abs, PublicKey: pub})
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote the private key to %s (mode 0600); the public key for the peers' [[sync.peer]] tables:\n", path)
			fmt.Fprintln(cmd.OutOrStdout(), pub)
			return nil
		},
	}
}

func syncPubkeyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "pubkey PRIVATE-KEY-FILE",
		Short: "Print the public key of a member's private key file",
		Long: `Print the public key that goes with a private key file made by
"lispctl sync keygen" (or "openssl genpkey -algorithm ed25519"), in the form
[[sync.peer]] tables take. This command does not talk to lispd.`,
		Example: `  lispctl sync pubkey /etc/lispd/sync.key`,
		Args:    syncOneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := cachesync.LoadPrivateKey(args[0])
			if err != nil {
				return err
			}
			pub := cachesync.FormatPublicKey(cachesync.PublicKeyOf(k))
			if jsonOutput(cmd) {
				abs, _ := filepath.Abs(args[0])
				return writeJSON(cmd, keyResult{PrivateKeyFile: abs, PublicKey: pub})
			}
			fmt.Fprintln(cmd.OutOrStdout(), pub)
			return nil
		},
	}
}

func syncPeersCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List the peers of the synchronization set and their state",
		Long: `List the other members of the synchronization set as this member sees
them: address, state, since when, and when it last heard from each.

STATE is "connected" (a session is up; gossip: the member is alive), "idle"
(not connected yet), "connecting", "backoff" (the last attempt or session
failed; retrying), "disconnected" (the session ended; the peer dials),
"refused" (the peer proved another public key than the pinned one, or runs
another mode: see LAST-ERROR in --json) or "dead" (gossip). DIALS tells which
side of each pair connects: the member with the smaller public key.`,
		Example: `  lispctl sync peers
  lispctl sync peers --json | jq '.[] | select(.state != "connected")'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := apiClient(cmd)
			defer c.Close()
			peers, err := c.SyncPeers(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return writeJSON(cmd, peers)
			}
			if len(peers) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no peers known yet")
				return nil
			}
			now := time.Now()
			w := newTable(cmd.OutOrStdout())
			fmt.Fprintln(w, "PEER\tADDRESS\tSTATE\tSINCE\tLAST-EXCHANGE\tDIALS\tCONNECTS\tAUTH-FAIL")
			for _, p := range peers {
				dials := "peer"
				if p.Dials {
					dials = "us"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", p.Name, syncAddr(p.Address), p.State,
					fmtAgo(p.Since, now), fmtAgo(p.LastExchange, now), dials, p.Connects, p.AuthFailures)
			}
			return w.Flush()
		},
	}
}

func syncStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the synchronization set's mode, counters and per-peer exchanges",
		Long: `Show this member of the synchronization set: its mode, name, address,
public key and origin ID, its counters (records and bytes sent and received,
records applied or ignored as not newer, refused peers, malformed frames,
refreshes and expiry decisions), and for each peer its state, when it last
heard from it, and the records and bytes exchanged with it.

Bytes are frame bytes; "wire" bytes include TLS (naive, smart) or all of
memberlist's traffic (gossip). In gossip mode the per-peer figures count the
direct exchanges only; broadcasts go to members memberlist chooses and are in
the totals. The same figures are exported as Prometheus metrics (lispd_sync_*).`,
		Example: `  lispctl sync status
  lispctl sync status --json | jq .counters.records_sent`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := apiClient(cmd)
			defer c.Close()
			st, err := c.SyncStatus(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return writeJSON(cmd, st)
			}
			return printSyncStatus(cmd, st, time.Now())
		},
	}
}

func printSyncStatus(cmd *cobra.Command, st api.SyncStatus, now time.Time) error {
	w := newTable(cmd.OutOrStdout())
	ct := st.Counters
	fmt.Fprintf(w, "mode\t%s\n", st.Mode)
	fmt.Fprintf(w, "name\t%s (origin %d)\n", st.Name, st.Origin)
	fmt.Fprintf(w, "listen\t%s\n", syncAddr(st.Listen))
	if st.PublicKey != "" {
		fmt.Fprintf(w, "public key\t%s\n", st.PublicKey)
	}
	fmt.Fprintf(w, "peers\t%d connected of %d\n", st.PeersConnected, st.PeersKnown)
	fmt.Fprintf(w, "refresh window\t%s, round %s\n",
		fmtDuration(time.Duration(st.RefreshWindowSeconds*float64(time.Second))),
		fmtDuration(time.Duration(st.RoundIntervalSeconds*float64(time.Second))))
	fmt.Fprintf(w, "records\t%d sent, %d received (%d applied, %d not newer, %d expired)\n",
		ct.RecordsSent, ct.RecordsReceived, ct.RecordsApplied, ct.RecordsIgnored, ct.RecordsExpired)
	fmt.Fprintf(w, "bytes\t%d sent, %d received (wire %d, %d)\n", ct.BytesSent, ct.BytesReceived, ct.WireBytesSent, ct.WireBytesReceived)
	fmt.Fprintf(w, "anti-entropy\t%d digests answered, %d buckets differed\n", ct.DigestsReceived, ct.BucketsDiffering)
	fmt.Fprintf(w, "expiry\t%d refreshed, %d kept for peers, %d on probation, %d dropped unused, %d dropped stale\n",
		ct.Refreshes, ct.KeptForPeers, ct.Probations, ct.ExpiredUnused, ct.ExpiredStale)
	fmt.Fprintf(w, "refused\t%d authentication failures, %d failed handshakes, %d malformed frames\n",
		ct.AuthFailures, ct.HandshakeFailures, ct.MalformedFrames)
	if len(st.Peers) > 0 {
		fmt.Fprintln(w, "\nPEER\tSTATE\tLAST-EXCHANGE\tRECORDS-SENT\tRECORDS-RCVD\tBYTES-SENT\tBYTES-RCVD")
		for _, p := range st.Peers {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", p.Name, p.State, fmtAgo(p.LastExchange, now),
				p.RecordsSent, p.RecordsReceived, p.BytesSent, p.BytesReceived)
		}
	}
	return w.Flush()
}

// syncOneArg is cobra.ExactArgs(1) as a usage error that names the command.
func syncOneArg(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return usageErrorf("%q takes one argument (the private key file), got %d", cmd.CommandPath(), len(args))
	}
	return nil
}

// syncAddr prints an address, or "-" when unknown.
func syncAddr(a netip.AddrPort) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}
