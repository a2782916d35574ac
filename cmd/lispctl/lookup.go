package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/wire"
)

// Defaults of "lispctl lookup".
const (
	// lookupDefaultTimeout is how long one lookup waits for its Map-Reply,
	// all tries included.
	lookupDefaultTimeout = 3 * time.Second
	// lookupDefaultRetries is how many more Map-Requests are sent after the
	// first one while no Map-Reply has come.
	lookupDefaultRetries = 2
	// lispControlPort is the Map-Resolver's UDP port (RFC 9301 section 5).
	lispControlPort = 4342
	// lookupInnerTTL is the TTL of the ECM's inner IP header.
	lookupInnerTTL = 64
	// lookupMaxRetries bounds --retries, so that a slip of the keyboard
	// cannot turn a lookup into a flood of Map-Requests.
	lookupMaxRetries = 100
)

func init() { subcommands = append(subcommands, addLookupCommand) }

// lookupOptions are the flags of "lispctl lookup".
type lookupOptions struct {
	mr      string
	iid     uint32
	source  string
	count   int
	timeout time.Duration
	retries int
}

func addLookupCommand(root *cobra.Command) {
	o := &lookupOptions{}
	cmd := &cobra.Command{
		Use:   "lookup EID --mr ADDR",
		Short: "Ask a Map-Resolver for the mapping of an EID (a real Map-Request, like lig)",
		Long: `Send a Map-Request for EID, encapsulated in an ECM, to the Map-Resolver ADDR
(UDP 4342) from an ephemeral local UDP socket, and print the Map-Reply: the
EID-prefix, its TTL and action, and the locators with their priority, weight
and reachability, the replier's address and the round-trip time.

EID is an IPv4 or IPv6 address (asked for as a host prefix) or a prefix,
optionally with its instance as "iid:N/EID" (or use --iid).
ADDR is host or host:port ([v6]:port); a name is resolved. The Map-Request's
ITR-RLOC is the local socket's address, so the reply, which may come from
the Map-Resolver, a Map-Server or the ETR itself, returns to this socket.

--timeout is the whole wait of one lookup. Within it, the Map-Request is
sent 1 + --retries times at even intervals, each with a new random nonce;
a Map-Reply carrying the nonce of any of them is accepted. Datagrams that
are not a Map-Reply with one of those nonces are ignored and counted.

Exit status: 0 when every lookup got a Map-Reply (a negative Map-Reply
counts), 1 when one did not or on another failure, 2 on bad arguments.`,
		Example: `  lispctl lookup 10.2.2.2 --mr 192.0.2.10
  lispctl lookup 2001:db8:2::1 --mr [2001:db8::10]:4342 --iid 1000 --json
  lispctl lookup iid:1000/10.2.2.0/24 --mr mr.example.net --timeout 5s --retries 4`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("%q takes one EID argument, got %d", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLookup(cmd, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.mr, "mr", "", "Map-Resolver address, host or host:port (port 4342 when omitted)")
	f.Uint32Var(&o.iid, "iid", 0, "instance-ID of the EID (0: the default, plain-AFI EID space)")
	f.StringVar(&o.source, "source", "", "local address to send from (default: chosen by the kernel's route to the Map-Resolver)")
	f.IntVar(&o.count, "count", 1, "number of lookups to make, one after the other")
	f.DurationVar(&o.timeout, "timeout", lookupDefaultTimeout, "how long one lookup waits for a Map-Reply, all tries included")
	f.IntVar(&o.retries, "retries", lookupDefaultRetries, "Map-Requests to send after the first while no Map-Reply has come")
	root.AddCommand(cmd)
}

// lookupTarget is what "lispctl lookup" asks for and where.
type lookupTarget struct {
	iid    uint32
	prefix netip.Prefix   // the EID-prefix requested (a host prefix for an address)
	mr     netip.AddrPort // the Map-Resolver
}

func runLookup(cmd *cobra.Command, o *lookupOptions, eidArg string) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	iidFlag := int64(-1) // not given: the EID argument's "iid:N/" or 0
	if cmd.Flags().Changed("iid") {
		iidFlag = int64(o.iid)
	}
	ef, err := parseEIDFilter([]string{eidArg}, iidFlag)
	if err != nil {
		return err
	}
	prefix := ef.prefix
	if ef.addr.IsValid() {
		prefix = netip.PrefixFrom(ef.addr, ef.addr.BitLen())
	}
	if prefix.Addr().Is4In6() {
		return usageErrorf("lookup: EID %s is an IPv4-mapped IPv6 address; give the IPv4 address", eidArg)
	}
	switch {
	case o.mr == "":
		return usageErrorf("lookup: --mr ADDR is required: the Map-Resolver to ask")
	case o.count < 1:
		return usageErrorf("lookup: --count must be at least 1, not %d", o.count)
	case o.retries < 0 || o.retries > lookupMaxRetries:
		return usageErrorf("lookup: --retries must be 0..%d, not %d", lookupMaxRetries, o.retries)
	case o.timeout <= 0:
		return usageErrorf("lookup: --timeout must be positive, not %v", o.timeout)
	}
	var source netip.Addr
	if o.source != "" {
		if source, err = netip.ParseAddr(o.source); err != nil {
			return usageErrorf("lookup: --source %q is not an IP address", o.source)
		}
		source = source.Unmap()
		if source.IsUnspecified() || source.IsMulticast() {
			return usageErrorf("lookup: --source %s is not a unicast address", source)
		}
	}
	mr, err := resolveMapResolver(ctx, o.mr, source)
	if err != nil {
		return err
	}
	if mr.Addr().IsUnspecified() || mr.Addr().IsMulticast() {
		return usageErrorf("lookup: --mr %s is not a unicast address", mr.Addr())
	}
	conn, local, err := openLookupSocket(mr, source)
	if err != nil {
		return err
	}
	defer conn.Close()

	t := lookupTarget{iid: ef.iid, prefix: prefix, mr: mr}
	out := cmd.OutOrStdout()
	jsonOut := jsonOutput(cmd)
	failed := 0
	for i := 0; i < o.count; i++ {
		res, err := lookupOnce(ctx, conn, local, t, o.timeout, o.retries+1)
		if err != nil {
			var nr *noReplyError
			if !errors.As(err, &nr) || o.count == 1 {
				return err
			}
			failed++
			fmt.Fprintf(cmd.ErrOrStderr(), "lispctl: %v\n", err)
			continue
		}
		if jsonOut {
			err = writeJSON(cmd, res)
		} else {
			if i > 0 {
				fmt.Fprintln(out)
			}
			err = writeLookupText(out, res)
		}
		if err != nil {
			return fmt.Errorf("lookup: writing output: %w", err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("lookup: %d of %d lookups got no Map-Reply from %s", failed, o.count, mr)
	}
	return nil
}

// resolveMapResolver turns "host", "host:port", "[v6]:port" or a bare
// IPv6 address into an address and port (lispControlPort by default). A
// host name is resolved, preferring the family of source when one is
// given.
func resolveMapResolver(ctx context.Context, s string, source netip.Addr) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), lispControlPort), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, usageErrorf("lookup: --mr %q: port 0", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host, portStr, err := net.SplitHostPort(s)
	port := uint16(lispControlPort)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	} else {
		p, perr := strconv.ParseUint(portStr, 10, 16)
		if perr != nil || p == 0 {
			return netip.AddrPort{}, usageErrorf("lookup: --mr %q: bad port %q", s, portStr)
		}
		port = uint16(p)
	}
	if host == "" {
		return netip.AddrPort{}, usageErrorf("lookup: --mr %q: no host", s)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), port), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("lookup: resolving map-resolver %q: %w", host, err)
	}
	var pick netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if !pick.IsValid() {
			pick = a
		}
		if source.IsValid() && a.Is4() == source.Is4() {
			pick = a
			break
		}
	}
	if !pick.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("lookup: map-resolver %q has no address", host)
	}
	return netip.AddrPortFrom(pick, port), nil
}

// openLookupSocket opens the unconnected UDP socket a lookup sends from and
// listens on (unconnected, because the Map-Reply may come from an ETR rather
// than the Map-Resolver). Without a source address it asks the kernel which
// address its route to mr uses. It returns the socket and its address.
func openLookupSocket(mr netip.AddrPort, source netip.Addr) (*net.UDPConn, netip.AddrPort, error) {
	network := "udp4"
	if mr.Addr().Is6() {
		network = "udp6"
	}
	if source.IsValid() && source.Is4() != mr.Addr().Is4() {
		return nil, netip.AddrPort{}, usageErrorf("lookup: --source %s and map-resolver %s are of different address families", source, mr.Addr())
	}
	if !source.IsValid() {
		// Connecting a UDP socket sends nothing; it makes the kernel pick
		// the source address of its route to mr.
		probe, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(mr))
		if err != nil {
			return nil, netip.AddrPort{}, fmt.Errorf("lookup: no route to map-resolver %s: %w", mr, err)
		}
		source = probe.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		probe.Close()
		if mr.Addr().Zone() != "" && source.Zone() == "" {
			source = source.WithZone(mr.Addr().Zone())
		}
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(source, 0)))
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("lookup: opening a UDP socket on %s: %w", source, err)
	}
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	return conn, local, nil
}

// noReplyError is a lookup that got no Map-Reply in time.
type noReplyError struct {
	mr      netip.AddrPort
	timeout time.Duration
	tries   int
	ignored int
}

func (e *noReplyError) Error() string {
	s := fmt.Sprintf("no Map-Reply from %s within %v (%d tries): is the Map-Resolver reachable on UDP %d?",
		e.mr.Addr(), e.timeout, e.tries, e.mr.Port())
	if e.ignored > 0 {
		s += fmt.Sprintf(" (%d unrelated datagrams ignored)", e.ignored)
	}
	return s
}

// lookupResult is the outcome of one lookup; its JSON keys are stable:
//
//	eid           string  the EID-prefix asked for ("10.1.1.9/32")
//	iid           int     its instance-ID
//	map_resolver  string  the Map-Resolver's "ip:port"
//	source        string  the local socket's "ip:port" (the ITR-RLOC and inner UDP source)
//	replier       string  the Map-Reply's source "ip:port"
//	rtt_ms        number  round-trip time of the answered Map-Request, in milliseconds
//	nonce         string  the nonce of the answered Map-Request ("0x" and 16 hex digits)
//	try           int     which Map-Request (1-based) was answered
//	tries         int     how many Map-Requests were sent
//	ignored       int     datagrams ignored while waiting (wrong nonce, not a Map-Reply, malformed)
//	flags         object  the Map-Reply's probe, echo_nonce_capable and security bits
//	records       array   the Map-Reply's records, with the keys of "lispctl decode --json"
type lookupResult struct {
	EID         string        `json:"eid"`
	IID         uint32        `json:"iid"`
	MapResolver string        `json:"map_resolver"`
	Source      string        `json:"source"`
	Replier     string        `json:"replier"`
	RTTMillis   float64       `json:"rtt_ms"`
	Nonce       string        `json:"nonce"`
	Try         int           `json:"try"`
	Tries       int           `json:"tries"`
	Ignored     int           `json:"ignored"`
	Flags       mapReplyFlags `json:"flags"`
	Records     []recordView  `json:"records"`

	rtt    time.Duration
	prefix netip.Prefix
}

// buildLookupRequest encodes the ECM carrying a Map-Request for t with the
// given nonce, from the local socket address local.
func buildLookupRequest(buf []byte, t lookupTarget, local netip.AddrPort, nonce uint64) ([]byte, error) {
	req := &wire.MapRequest{
		Nonce:     nonce,
		SourceEID: wire.Address{}, // no source EID: this host is not in an EID space
		ITRRLOCs:  []wire.Address{wire.AddrFrom(local.Addr().WithZone(""))},
		Records:   []wire.RequestRecord{wire.NewRequestRecord(t.iid, t.prefix)},
	}
	// The inner header goes from the ITR's RLOC to the EID (RFC 9301
	// section 5.8); when their families differ the inner source is the
	// EID family's unspecified address, and the reply still finds its
	// way by the ITR-RLOC.
	eid := t.prefix.Addr()
	innerSrc := local.Addr().WithZone("")
	if innerSrc.Is4() != eid.Is4() {
		innerSrc = netip.IPv4Unspecified()
		if eid.Is6() {
			innerSrc = netip.IPv6Unspecified()
		}
	}
	ecm := wire.NewECM(netip.AddrPortFrom(innerSrc, local.Port()), netip.AddrPortFrom(eid, lispControlPort), req)
	ecm.TTL = lookupInnerTTL
	return ecm.AppendBinary(buf[:0])
}

// newNonce returns a random 64-bit nonce.
func newNonce() (uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("lookup: random nonce: %w", err)
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

// lookupOnce makes one lookup: it sends up to tries Map-Requests, evenly
// spread over timeout, each with a new nonce, and returns the first
// Map-Reply that carries one of those nonces. Other datagrams are counted
// and ignored. It returns a *noReplyError when the time runs out.
func lookupOnce(ctx context.Context, conn *net.UDPConn, local netip.AddrPort, t lookupTarget,
	timeout time.Duration, tries int) (*lookupResult, error) {
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()

	start := time.Now()
	deadline := start.Add(timeout)
	interval := timeout / time.Duration(tries)
	sentAt := make([]time.Time, 0, tries)
	nonces := make(map[uint64]int, tries) // nonce -> try index
	var (
		sendBuf = make([]byte, 0, 256)
		recvBuf = make([]byte, 65535)
		ignored int
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("lookup: %w", err)
		}
		now := time.Now()
		if len(sentAt) < tries && !now.Before(start.Add(time.Duration(len(sentAt))*interval)) {
			nonce, err := newNonce()
			if err != nil {
				return nil, err
			}
			for nonces[nonce] != 0 || nonce == 0 { // never reuse a nonce within a lookup
				if nonce, err = newNonce(); err != nil {
					return nil, err
				}
			}
			pkt, err := buildLookupRequest(sendBuf, t, local, nonce)
			if err != nil {
				return nil, fmt.Errorf("lookup: building the Map-Request: %w", err)
			}
			sendBuf = pkt
			nonces[nonce] = len(sentAt) + 1
			sentAt = append(sentAt, time.Now())
			if _, err := conn.WriteToUDPAddrPort(pkt, t.mr); err != nil {
				return nil, fmt.Errorf("lookup: sending the Map-Request to %s: %w", t.mr, err)
			}
			continue
		}
		if !now.Before(deadline) {
			return nil, &noReplyError{mr: t.mr, timeout: timeout, tries: len(sentAt), ignored: ignored}
		}
		wake := deadline
		if len(sentAt) < tries {
			if next := start.Add(time.Duration(len(sentAt)) * interval); next.Before(wake) {
				wake = next
			}
		}
		if err := conn.SetReadDeadline(wake); err != nil {
			return nil, fmt.Errorf("lookup: %w", err)
		}
		n, from, err := conn.ReadFromUDPAddrPort(recvBuf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return nil, fmt.Errorf("lookup: receiving: %w", err)
		}
		got := time.Now()
		msg, err := wire.Parse(recvBuf[:n])
		if err != nil {
			ignored++
			continue
		}
		rep, ok := msg.(*wire.MapReply)
		if !ok {
			ignored++
			continue
		}
		try := nonces[rep.Nonce]
		if try == 0 {
			ignored++
			continue
		}
		rtt := got.Sub(sentAt[try-1])
		return &lookupResult{
			EID:         t.prefix.String(),
			IID:         t.iid,
			MapResolver: t.mr.String(),
			Source:      local.String(),
			Replier:     netip.AddrPortFrom(from.Addr().Unmap(), from.Port()).String(),
			RTTMillis:   float64(rtt.Microseconds()) / 1000,
			Nonce:       hexNonce64(rep.Nonce),
			Try:         try,
			Tries:       len(sentAt),
			Ignored:     ignored,
			Flags:       mapReplyFlags{Probe: rep.Probe, EchoNonceCapable: rep.EchoNonce, Security: rep.Security},
			Records:     viewRecords(rep.Records),
			rtt:         rtt,
			prefix:      t.prefix,
		}, nil
	}
}
