package paper

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/lab/topo"
)

// This file is where the lab meets publish/subscribe (RFC 9437): the
// [map-server.pubsub] table and the [itr] keys (Options.PubSub), the
// remote xTRs' measurements (their counters, and when their map-caches
// showed ITR1's RLOC withdrawn) and the checks that pub/sub alone carried
// the failover to them.

// pubsubKey is the pre-shared pub/sub key of the lab's Map-Server and
// xTRs (map-server.pubsub.authentication-key, itr.pubsub-key).
const pubsubKey = "lisplab-pubsub-key"

// RemotePoll is how often the remote xTRs' map-caches are read, from just
// before the failure to the end of the run, to time when ITR1's RLOC is
// withdrawn in them.
const RemotePoll = 20 * time.Millisecond

// msPubSubConfig is the Map-Server's [map-server.pubsub] table.
func msPubSubConfig() string {
	return fmt.Sprintf("\n[map-server.pubsub]\nenabled = true\nauthentication-key = %q\n", pubsubKey)
}

// itrPubSubConfig are the [itr] keys of an xTR of a pub/sub run: it
// subscribes to the mappings it asks for, with the Map-Server's key, and
// disregards the Locator-Status-Bits of the packets it receives (which
// would otherwise tell it of ITR1's withdrawal too). Empty without pubsub.
func itrPubSubConfig(pubsub bool) string {
	if !pubsub {
		return ""
	}
	return fmt.Sprintf("subscribe = true\npubsub-key = %q\nignore-locator-status-bits = true\n", pubsubKey)
}

// siteProxyReply says whether the site's xTRs ask the Map-Server to
// answer Map-Requests for them (etr.proxy-reply): in a pub/sub run. The
// Map-Server's confirmation then answers a remote ITR's subscribing
// Map-Request alone; otherwise the Map-Server also forwards it to one of
// the site's ETRs, which answers and remembers the remote ITR as a
// requester of the site's prefix, and an ETR sends SMRs to its requesters
// whenever its database changes (RFC 9301 section 6.1), a failover's
// withdrawal included, failover.solicit-map-requests notwithstanding:
// pub/sub would not be the only way the remote ITRs could learn of it.
func siteProxyReply(pubsub bool) bool { return pubsub }

// proxyReplyConfig is the [etr] key that asks for proxy replies.
func proxyReplyConfig(on bool) string {
	if !on {
		return ""
	}
	return "proxy-reply = true\n"
}

// Counter names of the remote ITRs (xtr's itrCounterNames, with the
// daemon's itr_ prefix), the Map-Server's and the failover's.
const (
	ctrSMRReceived        = "itr_smr_received"
	ctrLSBDown            = "itr_lsb_locators_down"
	ctrPubSubInstalled    = "itr_pubsub_notifies_installed"
	ctrSubscribeRefreshes = "itr_subscribe_refreshes"
	ctrMSPublications     = "mapserver_publications"
)

// siteWithdrawn looks at a map-cache's mappings of the site's prefix: ok
// when it has one with locators, withdrawn when in each of them ITR1's
// RLOC is withdrawn (priority 255 or not reachable, or not listed any
// more; without pub/sub, Locator-Status-Bits mark it unreachable); source is how
// the most specific of them was learned, and learned when it was installed
// (its expiry less its TTL; zero when unknown).
func siteWithdrawn(entries []api.MapCacheEntry, site netip.Prefix, rloc netip.Addr) (withdrawn, ok bool, source string, learned time.Time) {
	withdrawn = true
	bits := -1
	for _, e := range entries {
		if !positive(e) || !e.Prefix.Overlaps(site) {
			continue
		}
		ok = true
		if e.Prefix.Bits() > bits {
			bits, source = e.Prefix.Bits(), e.Source
			learned, _ = learnedAt(e)
		}
		for _, r := range e.RLOCs {
			if r.Address == rloc && r.Priority != 255 && r.Reachable {
				withdrawn = false
			}
		}
	}
	return withdrawn && ok, ok, source, learned
}

// withdrawalWatch reads the remote xTRs' map-caches every RemotePoll and
// records, per remote xTR, when its mapping of the site first showed
// ITR1's RLOC withdrawn: when the mapping that showed it was installed, if
// that was since the previous reading (as it is when one publication
// withdrew it), or else when it was read.
type withdrawalWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	seen   map[string]time.Time // guarded by mu
}

// watchWithdrawal starts a withdrawalWatch of the remote xTRs whose API
// clients are clients (nobody else may use them until stop returned).
func watchWithdrawal(ctx context.Context, clients map[string]*api.Client, site netip.Prefix, rloc netip.Addr) *withdrawalWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &withdrawalWatch{cancel: cancel, done: make(chan struct{}), seen: map[string]time.Time{}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(RemotePoll)
		defer tick.Stop()
		prev := map[string]time.Time{} // each one's previous reading
		for {
			for name, c := range clients {
				w.mu.Lock()
				_, done := w.seen[name]
				w.mu.Unlock()
				if done {
					continue
				}
				asked := time.Now()
				mc, err := c.MapCache(ctx)
				at := time.Now()
				if err != nil {
					continue // ended, or read again at the next tick
				}
				if wd, _, _, learned := siteWithdrawn(mc, site, rloc); wd {
					if p, ok := prev[name]; ok && learned.After(p) && !learned.After(at) {
						at = learned
					}
					w.mu.Lock()
					w.seen[name] = at
					w.mu.Unlock()
				}
				prev[name] = asked
			}
			w.mu.Lock()
			all := len(w.seen) == len(clients)
			w.mu.Unlock()
			if all {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// stop ends the watch and returns when each remote xTR was first seen
// with ITR1's RLOC withdrawn.
func (w *withdrawalWatch) stop() map[string]time.Time {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.seen)
}

// remoteResults are the remote xTRs' results of an observation.
func remoteResults(o *observation) []RemoteResult {
	t := o.topo
	x1, _ := t.XTR(topo.ITR1)
	var out []RemoteResult
	for _, rx := range t.Remotes {
		r := RemoteResult{
			Name:                 rx.Name,
			Counters:             delta(o.remoteFirst, o.remoteLast, rx.Name),
			CountersAfterFailure: delta(o.remoteBefore, o.remoteLast, rx.Name),
		}
		r.WithdrawnAtEnd, _, r.SiteSource, _ = siteWithdrawn(o.remoteLast.caches[rx.Name], t.SitePrefix, x1.RLOC)
		if at, ok := o.withdrawnAt[rx.Name]; ok {
			r.Withdrawn, r.WithdrawnAfter = true, at.Sub(o.failAt)
		}
		out = append(out, r)
	}
	return out
}

// pubsubSummary sums up the remote xTRs' results of a pub/sub run.
func pubsubSummary(o *observation, remotes []RemoteResult) *PubSubResult {
	ps := &PubSubResult{Remotes: len(remotes), Poll: RemotePoll}
	if a, b := o.msBefore[ctrMSPublications], o.msLast[ctrMSPublications]; b >= a {
		ps.Publications = b - a
	}
	first := true
	for _, r := range remotes {
		ps.Installed += r.CountersAfterFailure[ctrPubSubInstalled]
		ps.SMRReceived += r.Counters[ctrSMRReceived]
		ps.SMRInvoked += r.Counters[ctrSMRInvoked]
		ps.LSBDown += r.Counters[ctrLSBDown]
		if !r.Withdrawn {
			continue
		}
		ps.Moved++
		if first || r.WithdrawnAfter < ps.FirstMoved {
			ps.FirstMoved = r.WithdrawnAfter
		}
		ps.LastMoved = max(ps.LastMoved, r.WithdrawnAfter)
		first = false
	}
	return ps
}

// pubsubChecks adds the checks of a pub/sub run: with the healing, every
// remote ITR installed a published mapping after the failure and ended
// with ITR1's RLOC withdrawn, and none of them learned anything by SMR or
// Locator-Status-Bits; without it, nothing withdrew ITR1's RLOC at the
// remote ITRs (the survivor never re-registers without it).
func pubsubChecks(o *observation, run *RunResult, check func(name string, ok bool, format string, args ...any)) {
	ps := run.PubSubSummary
	var noInstall, notWithdrawn, withdrawn []string
	for _, r := range run.Remotes {
		if r.CountersAfterFailure[ctrPubSubInstalled] == 0 {
			noInstall = append(noInstall, r.Name)
		}
		if !r.WithdrawnAtEnd {
			notWithdrawn = append(notWithdrawn, r.Name)
		}
		if r.WithdrawnAtEnd || r.Withdrawn {
			withdrawn = append(withdrawn, r.Name)
		}
	}
	check("pub/sub: no remote ITR learned by SMR or Locator-Status-Bits", ps.SMRReceived == 0 && ps.SMRInvoked == 0 && ps.LSBDown == 0,
		"over the run, the remote ITRs received %d SMRs, sent %d SMR-invoked Map-Requests and marked %d locators down from Locator-Status-Bits",
		ps.SMRReceived, ps.SMRInvoked, ps.LSBDown)
	if !o.spec.Healing {
		check("pub/sub, healing off: ITR1's RLOC never withdrawn at the remote ITRs", len(withdrawn) == 0,
			"remote ITRs that showed it withdrawn: %v; the Map-Server's publications after the failure %d", withdrawn, ps.Publications)
		return
	}
	check("pub/sub: every remote ITR installed a published mapping after the failure", len(noInstall) == 0 && len(run.Remotes) > 0,
		"published mappings installed after the failure %d (the Map-Server published %d); remote ITRs that installed none: %v",
		ps.Installed, ps.Publications, noInstall)
	check("pub/sub: every remote ITR ends with ITR1's RLOC withdrawn", len(notWithdrawn) == 0 && len(run.Remotes) > 0,
		"remote ITRs whose mapping of the site still had ITR1's RLOC usable at the end: %v; moved %d of %d, %v to %v after the failure",
		notWithdrawn, ps.Moved, ps.Remotes, ps.FirstMoved.Round(time.Millisecond), ps.LastMoved.Round(time.Millisecond))
}

// WritePubSub writes, for the runs of r that used publish/subscribe, how
// the failover reached the remote ITRs: the Map-Server's publications,
// what the remote ITRs installed, what they learned by SMR or
// Locator-Status-Bits (nothing, when pub/sub alone carried it), and when
// their map-caches showed ITR1's RLOC withdrawn. It writes nothing when
// no run used pub/sub.
func WritePubSub(w io.Writer, r *Result) error {
	var runs []RunResult
	for _, run := range r.Runs {
		if run.PubSub && run.PubSubSummary != nil {
			runs = append(runs, run)
		}
	}
	if len(runs) == 0 {
		return nil
	}
	var names []string
	for _, rr := range runs[0].Remotes {
		names = append(names, rr.Name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nPub/sub (RFC 9437): how the failover reached the remote ITRs (%s), which ignore\n", strings.Join(names, ", "))
	fmt.Fprintln(&b, "Locator-Status-Bits and get no SMRs: only the Map-Server's publications can tell them.")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Failure\tHeal\tTest\tSync\tpublished\tinstalled\tSMRs rcvd/invoked\tLSB down\tmoved\tITR1 withdrawn after (first..last)\treturn lost\tmax/flow after sw.")
	for _, run := range runs {
		ps := run.PubSubSummary
		moved := "-"
		if ps.Moved > 0 {
			moved = fmt.Sprintf("%v..%v", ps.FirstMoved.Round(10*time.Microsecond), ps.LastMoved.Round(10*time.Microsecond))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d/%d\t%d\t%d/%d\t%s\t%d\t%d\n",
			run.Failure, onOff(run.Healing), run.Test, run.Variant, ps.Publications, ps.Installed, ps.SMRReceived, ps.SMRInvoked, ps.LSBDown,
			ps.Moved, ps.Remotes, moved, run.Losses.Return, run.MaxReturnAfterSwitch)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&b, "published: the Map-Server's publications after the failure; installed: published mappings the\n")
	fmt.Fprintf(&b, "remote ITRs installed after it; moved: remote ITRs whose map-cache showed ITR1's RLOC withdrawn\n")
	fmt.Fprintf(&b, "(priority 255 or unreachable), read every %v from the failure on, timed by the install time of\n", RemotePoll)
	fmt.Fprintf(&b, "the mapping that showed it (its expiry less its TTL); SMRs and LSB over the whole run.\n")
	var per []string
	for _, run := range runs {
		var parts []string
		for _, rr := range run.Remotes {
			at := "never"
			if rr.Withdrawn {
				at = rr.WithdrawnAfter.Round(10 * time.Microsecond).String()
			}
			parts = append(parts, fmt.Sprintf("%s %s (installed %d, source %s)", rr.Name, at, rr.CountersAfterFailure[ctrPubSubInstalled], orDash(rr.SiteSource)))
		}
		per = append(per, fmt.Sprintf("  %s: %s", run.Spec(), strings.Join(parts, "; ")))
	}
	fmt.Fprintln(&b, "Per remote ITR, ITR1's RLOC withdrawn after:")
	fmt.Fprintln(&b, strings.Join(per, "\n"))
	_, err := io.WriteString(w, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
