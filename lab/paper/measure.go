package paper

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/lab/topo"
	"github.com/lispd/lispd/lab/traffic"
)

// snapshot is the state of the site's xTRs at one moment, read through
// their local API as lispctl would.
type snapshot struct {
	at       time.Time
	caches   map[string][]api.MapCacheEntry
	counters map[string]map[string]uint64
}

// takeSnapshot reads every xTR's map-cache and counters.
func takeSnapshot(ctx context.Context, clients map[string]*api.Client) (snapshot, error) {
	s := snapshot{at: time.Now(), caches: map[string][]api.MapCacheEntry{}, counters: map[string]map[string]uint64{}}
	for name, c := range clients {
		mc, err := c.MapCache(ctx)
		if err != nil {
			return s, fmt.Errorf("paper: %s map-cache: %w", name, err)
		}
		st, err := c.Status(ctx)
		if err != nil {
			return s, fmt.Errorf("paper: %s status: %w", name, err)
		}
		s.caches[name] = mc
		s.counters[name] = st.Counters
	}
	return s, nil
}

// delta returns b - a for every counter of router (0 where it went down).
func delta(a, b snapshot, router string) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range b.counters[router] {
		if old := a.counters[router][k]; v >= old {
			out[k] = v - old
		}
	}
	return out
}

// Counter names this package reads (the xTR's and the sync set's own).
const (
	ctrRequestsSent  = "itr_map_requests_sent"
	ctrRetries       = "itr_map_request_retries"
	ctrSMRInvoked    = "itr_smr_invoked_requests"
	ctrRefreshes     = "itr_expiry_refreshes"
	ctrMissDropped   = "itr_miss_packets_dropped"
	ctrCacheInserts  = "itr_map_cache_inserts"
	ctrCacheReplaces = "itr_map_cache_replaces"
)

// missRequests is the number of Map-Requests an xTR started for map-cache
// misses in a counter delta: requests sent, less retries, SMR-invoked
// requests, expiry refreshes and subscription renewals (pub/sub).
func missRequests(d map[string]uint64) int {
	n := int(d[ctrRequestsSent]) - int(d[ctrRetries]) - int(d[ctrSMRInvoked]) - int(d[ctrRefreshes]) - int(d[ctrSubscribeRefreshes])
	return max(n, 0)
}

// Counter names of the synchronization set in an xTR's status.
const (
	ctrSyncBytes     = "sync_bytes_sent"
	ctrSyncWireBytes = "sync_wire_bytes_sent"
	ctrSyncRecords   = "sync_records_sent"
	ctrSyncPeers     = "sync_peers"
	ctrSyncConnected = "sync_peers_connected"
)

// positive reports whether a map-cache entry has locators.
func positive(e api.MapCacheEntry) bool { return len(e.RLOCs) > 0 }

// countCache counts a map-cache as the paper does.
func countCache(t *topo.Topology, entries []api.MapCacheEntry) CacheCount {
	c := CacheCount{Total: len(entries)}
	for _, e := range entries {
		if !positive(e) {
			continue
		}
		u1, u2 := false, false
		for _, f := range t.FlowsTo(e.Prefix) {
			switch f.Host {
			case topo.USR1:
				u1 = true
			case topo.USR2:
				u2 = true
			}
		}
		if u1 {
			c.USR1++
		}
		if u2 {
			c.USR2++
		}
	}
	return c
}

// learnedAt is when an entry was installed: its expiry minus its TTL.
func learnedAt(e api.MapCacheEntry) (time.Time, bool) {
	if e.Expires.IsZero() || e.TTLSeconds == 0 {
		return time.Time{}, false
	}
	return e.Expires.Add(-time.Duration(e.TTLSeconds) * time.Second), true
}

// records explains every entry of an xTR's map-cache: which flows it
// serves, whether the xTR carried one of them from the LAN before it was
// learned, and what put it there.
func records(t *topo.Topology, router string, entries []api.MapCacheEntry, handed func(flow uint16, router string) (time.Time, bool), start time.Time) []Record {
	var out []Record
	for _, e := range entries {
		r := Record{Prefix: e.Prefix, Source: e.Source}
		learned, known := learnedAt(e)
		if known {
			r.Learned = learned.Sub(start)
		}
		var trigger string
		for _, f := range t.FlowsTo(e.Prefix) {
			r.Flows = append(r.Flows, f.ID)
			if first, ok := handed(f.ID, router); ok && (!known || !first.After(learned)) {
				r.Carried = true
				if trigger == "" {
					trigger = f.String()
				}
			}
		}
		switch {
		case !positive(e) && len(r.Flows) == 0:
			r.Mechanism = fmt.Sprintf("negative %s for traffic that is none of the hosts' flows (source %s)", e.Prefix, e.Source)
		case e.Source == api.SourceSync:
			r.Mechanism = "synchronized from its peer (source sync)"
		case e.Source == api.SourceMapReply && r.Carried:
			r.Mechanism = "Map-Reply to its own Map-Request, triggered by a LAN packet of " + trigger
		case e.Source == api.SourceMapReply:
			r.Mechanism = "Map-Reply to a Map-Request that no LAN packet of its flows preceded"
		case e.Source == api.SourcePubSub && r.Carried:
			r.Mechanism = "pub/sub Map-Notify answering its own subscribing Map-Request, triggered by a LAN packet of " + trigger
		case e.Source == api.SourcePubSub:
			r.Mechanism = "pub/sub Map-Notify (a publication, or the answer to a subscribing Map-Request that no LAN packet of its flows preceded)"
		case e.Source == "":
			r.Mechanism = "unknown source"
		default:
			r.Mechanism = "source " + e.Source
		}
		out = append(out, r)
	}
	return out
}

// uncarried returns the records for flows the xTR never carried from the
// LAN before the failure (those with no flow at all are included: nothing
// the hosts sent asked for them).
func uncarried(recs []Record, carried []uint16) []Record {
	var out []Record
	for _, r := range recs {
		hit := false
		for _, f := range r.Flows {
			if slices.Contains(carried, f) {
				hit = true
				break
			}
		}
		if !hit {
			out = append(out, r)
		}
	}
	return out
}

// covered reports whether a positive entry of entries covers addr.
func covered(entries []api.MapCacheEntry, addr netip.Addr) (api.MapCacheEntry, bool) {
	best := -1
	for i, e := range entries {
		if positive(e) && e.Prefix.Contains(addr) && (best < 0 || e.Prefix.Bits() > entries[best].Prefix.Bits()) {
			best = i
		}
	}
	if best < 0 {
		return api.MapCacheEntry{}, false
	}
	return entries[best], true
}

// sameLocators reports whether two entries map to the same locator set
// (addresses, priorities and weights).
func sameLocators(a, b api.MapCacheEntry) bool {
	key := func(e api.MapCacheEntry) []string {
		var k []string
		for _, r := range e.RLOCs {
			k = append(k, fmt.Sprintf("%s/%d/%d", r.Address, r.Priority, r.Weight))
		}
		slices.Sort(k)
		return k
	}
	return a.Prefix == b.Prefix && slices.Equal(key(a), key(b))
}

// observation is everything a runner measured during one run.
type observation struct {
	topo    *topo.Topology
	spec    Spec
	variant Variant
	start   time.Time
	failAt  time.Time
	end     time.Time
	// switched is, per VRID that failed over, when the backup claimed the
	// address and who it was.
	switched []Switchover
	// first, before and last are snapshots at the start of traffic, just
	// before the failure and at the end.
	first, before, last snapshot
	// remoteFirst, remoteBefore and remoteLast are the remote xTRs' at
	// the same moments; msBefore and msLast the Map-Server's counters
	// just before the failure and at the end.
	remoteFirst, remoteBefore, remoteLast snapshot
	msBefore, msLast                      map[string]uint64
	// withdrawnAt is, per remote xTR, when its map-cache was first seen
	// with ITR1's RLOC withdrawn after the failure.
	withdrawnAt map[string]time.Time
	ledger      *traffic.Ledger
	// handed is when a router first received a flow's request from the
	// LAN.
	handed func(flow uint16, router string) (time.Time, bool)
	// switchAt is, per host whose gateway failed over, when it moved.
	switchAt map[string]time.Time
}

// analyze turns an observation into the run's result, with its checks.
func analyze(o *observation) RunResult {
	t := o.topo
	sum := o.ledger.Classify(o.start, traffic.ClassifyOptions{FailAt: o.failAt, Failed: topo.ITR1, SwitchAt: o.switchAt, Crashed: o.spec.Failure == FailCrash})
	run := RunResult{
		Failure:     o.spec.Failure,
		Healing:     o.spec.Healing,
		PubSub:      o.spec.PubSub,
		Test:        int(t.Test),
		Variant:     o.variant,
		Duration:    o.end.Sub(o.start),
		FailAt:      o.failAt.Sub(o.start),
		Switchovers: o.switched,
		Traffic:     sum,
	}
	for _, x := range t.XTRs {
		recs := records(t, x.Name, o.before.caches[x.Name], o.handed, o.start)
		run.ITRs = append(run.ITRs, ITRResult{
			Name:                 x.Name,
			BeforeFailure:        countCache(t, o.before.caches[x.Name]),
			AtEnd:                countCache(t, o.last.caches[x.Name]),
			Records:              recs,
			Uncarried:            uncarried(recs, sum.Carried[x.Name]),
			Counters:             delta(o.first, o.last, x.Name),
			CountersAfterFailure: delta(o.before, o.last, x.Name),
		})
	}
	itr2 := run.ITR(topo.ITR2)
	after := itr2.CountersAfterFailure
	run.ITR2Misses = missRequests(after)
	run.ITR2MissDrops = int(after[ctrMissDropped])

	// Flows whose destination ITR2 had no mapping for just before the
	// failure, and ITR2's records learned by Map-Reply after it.
	unseen := map[uint16]bool{}
	for _, f := range t.Flows {
		if _, ok := covered(o.before.caches[topo.ITR2], f.Dst); !ok {
			unseen[f.ID] = true
		}
	}
	run.UnseenFlows = len(unseen)
	resolvedAfter := 0
	for _, e := range o.last.caches[topo.ITR2] {
		// With pub/sub, the Map-Server's confirmation (a Map-Notify)
		// answers a miss's Map-Request in place of the Map-Reply.
		answer := e.Source == api.SourceMapReply || (o.spec.PubSub && e.Source == api.SourcePubSub)
		if l, ok := learnedAt(e); ok && answer && !l.Before(o.failAt) {
			resolvedAfter++
		}
	}

	if o.variant != Off {
		sr := &SyncResult{BytesSent: map[string]uint64{}, WireBytesSent: map[string]uint64{}, RecordsSent: map[string]uint64{}}
		for _, x := range t.XTRs {
			end := o.last
			if _, ok := end.counters[x.Name]; !ok {
				// A crashed router's counters end where they were last
				// read: just before the failure.
				end = o.before
			}
			d := delta(o.first, end, x.Name)
			sr.BytesSent[x.Name], sr.WireBytesSent[x.Name], sr.RecordsSent[x.Name] = d[ctrSyncBytes], d[ctrSyncWireBytes], d[ctrSyncRecords]
			sr.TotalBytes += d[ctrSyncBytes]
			sr.TotalWireBytes += d[ctrSyncWireBytes]
		}
		run.Sync = sr
	}

	// The losses after the failure, and the return path's after the
	// switchover.
	run.Losses = Losses{
		Gap:       sum.After[traffic.LostSwitchover],
		CacheMiss: sum.After[traffic.LostAtITR],
		Return:    sum.After[traffic.LostReturnFailed],
		Other:     sum.After[traffic.LostReturnOther] + sum.After[traffic.LostUnseen],
	}
	lastSwitch := o.failAt
	for _, sw := range o.switched {
		lastSwitch = maxTime(lastSwitch, o.failAt.Add(sw.After))
	}
	failRel, switchRel := o.failAt.Sub(o.start), lastSwitch.Sub(o.start)
	run.ReturnAfterSwitch = make([]int, len(sum.Flows))
	for _, m := range sum.Timeline {
		if m.Fate != traffic.LostReturnFailed || m.At < failRel {
			continue
		}
		run.LastReturnLoss = max(run.LastReturnLoss, m.At-failRel)
		if m.At >= switchRel && m.Flow < len(run.ReturnAfterSwitch) {
			run.ReturnAfterSwitch[m.Flow]++
		}
	}
	if len(run.ReturnAfterSwitch) > 0 {
		run.MaxReturnAfterSwitch = slices.Max(run.ReturnAfterSwitch)
	}

	// The relations that must hold.
	missLost := sum.After[traffic.LostAtITR]
	check := func(name string, ok bool, format string, args ...any) {
		run.Checks = append(run.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	check("ITR2's miss counter agrees with its map-cache", run.ITR2Misses == resolvedAfter,
		"Map-Requests started on misses after the failure %d, records learned by Map-Reply (or pub/sub confirmation) after it %d", run.ITR2Misses, resolvedAfter)
	check("cache-miss losses seen on the LAN = ITR2's miss drops", missLost == run.ITR2MissDrops,
		"requests lost at a live ITR after the failure %d, ITR2's miss_packets_dropped %d", missLost, run.ITR2MissDrops)
	check("no loss outside the named categories", run.Losses.Other == 0 && sum.Unexpected == 0,
		"unseen %d, reply lost elsewhere %d, unexpected packets %d", sum.After[traffic.LostUnseen], sum.After[traffic.LostReturnOther], sum.Unexpected)
	check("every flow was delivered before the failure", allDeliveredBefore(sum),
		"flows with no reply before the failure: %v", undeliveredBefore(sum))
	fewest := minSentSince(sum, lastSwitch.Sub(o.start))
	check("every flow sent several packets after the switchover", fewest >= 3 && len(o.switched) > 0,
		"switchovers measured %d, fewest requests one flow sent after the last one: %d", len(o.switched), fewest)
	// What the healing promises.
	switch {
	case o.spec.Healing && o.spec.Failure == FailDrain:
		check("drain: no request lost", run.Losses.Total() == 0,
			"lost after the drain began: gap %d, cache miss %d, return path %d, other %d", run.Losses.Gap, run.Losses.CacheMiss, run.Losses.Return, run.Losses.Other)
	case o.spec.Healing:
		check("healing: at most 1 return-path loss per flow after the switchover", run.MaxReturnAfterSwitch <= 1,
			"most return-path losses of one flow after the switchover %d (all flows %d); last return-path loss %v after the failure",
			run.MaxReturnAfterSwitch, sumInts(run.ReturnAfterSwitch), run.LastReturnLoss.Round(time.Millisecond))
	}
	if o.variant == Off {
		check("sync off: ITR2's misses = the flows it had not seen", run.ITR2Misses == run.UnseenFlows,
			"misses %d, flows with no mapping on ITR2 before the failure %d", run.ITR2Misses, run.UnseenFlows)
		var wrong []string
		for _, fr := range sum.Flows {
			lost := fr.After[traffic.LostAtITR]
			if unseen[fr.Flow.ID] != (lost > 0) {
				wrong = append(wrong, fmt.Sprintf("%s (unseen %v, lost %d)", fr.Flow, unseen[fr.Flow.ID], lost))
			}
		}
		check("sync off: exactly the unseen flows lost packets to misses", len(wrong) == 0, "mismatches: %v", wrong)
	} else {
		check("sync on: zero cache-miss losses on ITR2", missLost == 0 && run.ITR2MissDrops == 0 && run.ITR2Misses == 0,
			"lost to misses %d, ITR2 miss drops %d, ITR2 misses %d", missLost, run.ITR2MissDrops, run.ITR2Misses)
		var diff []string
		for _, f := range t.Flows {
			a, okA := covered(o.before.caches[topo.ITR1], f.Dst)
			b, okB := covered(o.before.caches[topo.ITR2], f.Dst)
			if !okA || !okB || !sameLocators(a, b) {
				diff = append(diff, f.String())
			}
		}
		check("sync on: identical cache contents for the flows in use", len(diff) == 0,
			"flows whose mapping differs or is missing on ITR1 or ITR2 just before the failure: %v", diff)
		check("sync on: the sync set sent something", run.Sync.TotalBytes > 0, "bytes sent %d", run.Sync.TotalBytes)
	}
	// The remote xTRs, and what carried the failover to them.
	run.Remotes = remoteResults(o)
	if o.spec.PubSub {
		run.PubSubSummary = pubsubSummary(o, run.Remotes)
		pubsubChecks(o, &run, check)
	}
	return run
}

func sumInts(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func allDeliveredBefore(s traffic.Summary) bool { return len(undeliveredBefore(s)) == 0 }

func undeliveredBefore(s traffic.Summary) []string {
	var out []string
	for _, fr := range s.Flows {
		if fr.Before[traffic.Delivered] == 0 {
			out = append(out, fr.Flow.String())
		}
	}
	return out
}

// minSentSince is the fewest requests any flow sent at or after since
// (relative to the start).
func minSentSince(s traffic.Summary, since time.Duration) int {
	per := make([]int, len(s.Flows))
	for _, m := range s.Timeline {
		if m.At >= since && m.Flow < len(per) {
			per[m.Flow]++
		}
	}
	if len(per) == 0 {
		return 0
	}
	return slices.Min(per)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// syncConnected reports whether every xTR that runs a sync set has all its
// peers connected, from its status counters.
func syncConnected(ctx context.Context, clients map[string]*api.Client) (bool, error) {
	for name, c := range clients {
		st, err := c.Status(ctx)
		if err != nil {
			return false, fmt.Errorf("paper: %s status: %w", name, err)
		}
		peers, ok := st.Counters[ctrSyncPeers]
		if !ok {
			continue // no sync set
		}
		if st.Counters[ctrSyncConnected] < peers {
			return false, nil
		}
	}
	return true, nil
}
