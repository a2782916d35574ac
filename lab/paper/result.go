package paper

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/lispd/lispd/lab/traffic"
)

// Variant is the synchronization mode of a run: off, naive, smart or
// gossip (cachesync's mode names).
type Variant string

// The variants, in the order the table lists them.
const (
	Off    Variant = "off"
	Naive  Variant = "naive"
	Smart  Variant = "smart"
	Gossip Variant = "gossip"
)

// Variants lists every variant in table order.
func Variants() []Variant { return []Variant{Off, Naive, Smart, Gossip} }

// ParseVariant parses a variant name.
func ParseVariant(s string) (Variant, error) {
	for _, v := range Variants() {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("%w: sync variant %q (want off, naive, smart or gossip)", ErrInvalid, s)
}

// CacheCount is a map-cache's records as the paper's Table 1 counts them:
// total / demanded by USR1 / demanded by USR2 (records whose prefix holds
// a destination that host pings).
type CacheCount struct {
	Total int `json:"total"`
	USR1  int `json:"usr1"`
	USR2  int `json:"usr2"`
}

// String formats the count as "30/20/10".
func (c CacheCount) String() string { return fmt.Sprintf("%d/%d/%d", c.Total, c.USR1, c.USR2) }

// Record is one map-cache record and how it got there.
type Record struct {
	Prefix netip.Prefix `json:"prefix"`
	// Source is the map-cache's own account of how the record was learned
	// ("map-reply", "sync", ...).
	Source string `json:"source"`
	// Learned is when the record was installed, relative to the start of
	// the run (from the entry's expiry minus its TTL).
	Learned time.Duration `json:"learned_ns"`
	// Flows are the IDs of the flows whose destination it covers.
	Flows []uint16 `json:"flows"`
	// Carried is true when this ITR received a packet of one of those
	// flows from the LAN before the record was learned (what makes an ITR
	// send a Map-Request).
	Carried bool `json:"carried"`
	// Mechanism says, in words, what put the record there.
	Mechanism string `json:"mechanism"`
}

// ITRResult is what was measured on one of the site's xTRs.
type ITRResult struct {
	Name string `json:"name"`
	// BeforeFailure is the map-cache count just before the failure,
	// AtEnd at the end of the run.
	BeforeFailure CacheCount `json:"before_failure"`
	AtEnd         CacheCount `json:"at_end"`
	// Records are the map-cache records just before the failure.
	Records []Record `json:"records"`
	// Uncarried are the records (just before the failure) for flows this
	// xTR never carried before the failure, with the mechanism that put
	// them there.
	Uncarried []Record `json:"uncarried"`
	// Counters are the xTR's own counters (its API status), as deltas
	// over the run.
	Counters map[string]uint64 `json:"counters"`
	// CountersAfterFailure are the deltas between the failure and the
	// end.
	CountersAfterFailure map[string]uint64 `json:"counters_after_failure"`
}

// RemoteResult is what was measured on one remote xTR: the ITR that
// sends the return traffic to the site's RLOCs.
type RemoteResult struct {
	Name string `json:"name"`
	// Counters are its counters (API status) as deltas over the run;
	// CountersAfterFailure between the failure and the end.
	Counters             map[string]uint64 `json:"counters"`
	CountersAfterFailure map[string]uint64 `json:"counters_after_failure"`
	// SiteSource is how its mapping of the site's prefix was learned, as
	// its map-cache says at the end ("pubsub", "map-reply"...; empty when
	// it had none).
	SiteSource string `json:"site_source"`
	// WithdrawnAtEnd: at the end its mapping of the site had ITR1's RLOC
	// withdrawn (priority 255 or unreachable, or no longer listed).
	WithdrawnAtEnd bool `json:"itr1_withdrawn_at_end"`
	// Withdrawn is set when a reading of its map-cache after the failure
	// (every RemotePoll) showed ITR1's RLOC withdrawn; WithdrawnAfter is
	// the time from the failure to the first such reading.
	Withdrawn      bool          `json:"itr1_withdrawn"`
	WithdrawnAfter time.Duration `json:"itr1_withdrawn_after_ns"`
}

// PubSubResult is what carried the failover to the remote ITRs in a
// pub/sub run, summed over the remote xTRs from their own counters and
// the Map-Server's.
type PubSubResult struct {
	// Publications are the Map-Server's publications (Map-Notifies of a
	// changed mapping to a subscriber, first transmissions) between the
	// failure and the end.
	Publications uint64 `json:"publications"`
	// Installed are the published mappings the remote ITRs installed
	// between the failure and the end (itr_pubsub_notifies_installed).
	Installed uint64 `json:"installed"`
	// SMRReceived, SMRInvoked and LSBDown are, over the whole run, the
	// SMRs the remote ITRs received, the Map-Requests SMRs made them
	// send, and the locators they marked down from Locator-Status-Bits:
	// all 0 when pub/sub alone carried the failover.
	SMRReceived uint64 `json:"smr_received"`
	SMRInvoked  uint64 `json:"smr_invoked_requests"`
	LSBDown     uint64 `json:"lsb_locators_down"`
	// Moved is how many of the Remotes remote ITRs were seen with ITR1's
	// RLOC withdrawn after the failure; FirstMoved and LastMoved the
	// fastest and the slowest of them (from the failure).
	Moved      int           `json:"moved"`
	Remotes    int           `json:"remotes"`
	FirstMoved time.Duration `json:"first_moved_ns"`
	LastMoved  time.Duration `json:"last_moved_ns"`
	// Poll is how often the remote map-caches were read.
	Poll time.Duration `json:"poll_ns"`
}

// Switchover is one VRRP group's failover, measured.
type Switchover struct {
	VRID uint8 `json:"vrid"`
	// To is the router that took the virtual address over.
	To string `json:"to"`
	// After is how long after the failure the new master claimed the
	// address (its gratuitous ARP): the VRRP switchover gap.
	After time.Duration `json:"after_ns"`
}

// SyncResult is what the synchronization set reported, per member, from
// the members' own counters over the whole run.
type SyncResult struct {
	// BytesSent are the sync frames' bytes (payload before TLS or
	// memberlist framing and encryption).
	BytesSent map[string]uint64 `json:"bytes_sent"`
	// WireBytesSent are the bytes on the sockets: TLS records (naive,
	// smart), or all memberlist traffic including membership and failure
	// detection (gossip).
	WireBytesSent map[string]uint64 `json:"wire_bytes_sent"`
	// RecordsSent are the mapping records sent (a naive whole-cache
	// transfer counts every record).
	RecordsSent map[string]uint64 `json:"records_sent"`
	// TotalBytes and TotalWireBytes are the sums over the members.
	TotalBytes     uint64 `json:"total_bytes"`
	TotalWireBytes uint64 `json:"total_wire_bytes"`
}

// Losses are the echo requests sent after the failure that were lost, by
// where (traffic's fates, grouped).
type Losses struct {
	// Gap: lost in the VRRP switchover gap (sent to the failed router).
	Gap int `json:"vrrp_gap"`
	// CacheMiss: dropped by a live ITR on a map-cache miss.
	CacheMiss int `json:"cache_miss"`
	// Return: reached the destination; the reply was sent to the failed
	// router's RLOC.
	Return int `json:"return_path"`
	// Other: reply lost elsewhere, or seen nowhere.
	Other int `json:"other"`
}

// Total is the sum of the categories.
func (l Losses) Total() int { return l.Gap + l.CacheMiss + l.Return + l.Other }

// RunResult is the result of one run: a failure kind, with or without
// the healing, in one test with one variant.
type RunResult struct {
	Failure Failure `json:"failure"`
	// Healing is lispd's [failover] enabled in this run.
	Healing bool    `json:"healing"`
	Test    int     `json:"test"`
	Variant Variant `json:"variant"`
	// Losses are the requests sent after the failure and lost, by
	// category.
	Losses Losses `json:"losses_after_failure"`
	// LastReturnLoss is the time from the failure to the sending of the
	// last request whose reply went to the failed RLOC (0 when none did:
	// see Losses.Return).
	LastReturnLoss time.Duration `json:"last_return_loss_ns"`
	// ReturnAfterSwitch are, per flow (by index), the return-path losses
	// among the requests sent after the last VRRP switchover;
	// MaxReturnAfterSwitch is their maximum.
	ReturnAfterSwitch    []int `json:"return_losses_after_switchover"`
	MaxReturnAfterSwitch int   `json:"max_return_losses_per_flow_after_switchover"`
	// Drain is what ITR1's Drain said (drain runs).
	Drain *DrainOutcome `json:"drain,omitempty"`
	// Duration is the run's length; FailAt when ITR1 failed, both from
	// the start of traffic.
	Duration time.Duration `json:"duration_ns"`
	FailAt   time.Duration `json:"fail_at_ns"`
	// Switchovers are the failed-over VRRP groups.
	Switchovers []Switchover `json:"switchovers"`
	// ITRs are ITR1 and ITR2.
	ITRs []ITRResult `json:"itrs"`
	// ITR2Misses is ITR2's map-cache misses after the switchover: the
	// destinations it had to resolve (Map-Requests for EIDs it had no
	// mapping for), from its own counters.
	ITR2Misses int `json:"itr2_misses"`
	// ITR2MissDrops is the packets ITR2 dropped on those misses, from its
	// own counters.
	ITR2MissDrops int `json:"itr2_miss_drops"`
	// UnseenFlows is the number of flows in use whose destination ITR2
	// had no mapping for just before the failure, from its map-cache.
	UnseenFlows int `json:"unseen_flows"`
	// Traffic is the per-flow accounting of every request.
	Traffic traffic.Summary `json:"traffic"`
	// Sync is the synchronization set's traffic (nil for off).
	Sync *SyncResult `json:"sync,omitempty"`
	// PubSub reports the run's spec: publish/subscribe was the only way
	// the remote ITRs could learn of the failover (Options.PubSub).
	PubSub bool `json:"pubsub,omitempty"`
	// Remotes are the remote xTRs, measured as the site's are: their
	// counters and how their mapping of the site followed the failure.
	Remotes []RemoteResult `json:"remotes"`
	// PubSubSummary sums up what carried the failover to the remote ITRs
	// (pub/sub runs).
	PubSubSummary *PubSubResult `json:"pubsub_summary,omitempty"`
	// Checks are the relations the run must satisfy, each with whether
	// it held.
	Checks []Check `json:"checks"`
}

// Check is one relation that must hold, as measured.
type Check struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Detail gives the measured values.
	Detail string `json:"detail"`
}

// Spec returns what the run was.
func (r *RunResult) Spec() Spec {
	return Spec{Failure: r.Failure, Healing: r.Healing, Test: r.Test, Variant: r.Variant, PubSub: r.PubSub}
}

// Failed returns the checks that did not hold.
func (r *RunResult) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// ITR returns the result of the named xTR.
func (r *RunResult) ITR(name string) *ITRResult {
	for i := range r.ITRs {
		if r.ITRs[i].Name == name {
			return &r.ITRs[i]
		}
	}
	return nil
}

// Result is a whole `lisplab paper` run.
type Result struct {
	// Mode is "embedded" or "netns".
	Mode string `json:"mode"`
	// Seed is the random seed.
	Seed int64 `json:"seed"`
	// Settings are the experiment's timings.
	Settings Settings `json:"settings"`
	// Scaled says, in words, what was scaled from the paper's setting.
	Scaled []string `json:"scaled"`
	// Runs are the test x variant runs, in order.
	Runs []RunResult `json:"runs"`
	// Paper is the paper's Table 1, for comparison.
	Paper []PaperRow `json:"paper"`
}

// Settings are the timings a run used.
type Settings struct {
	PingInterval time.Duration `json:"ping_interval_ns"`
	WarmUp       time.Duration `json:"warm_up_ns"`
	AfterSwitch  time.Duration `json:"after_switchover_ns"`
	MapTTL       time.Duration `json:"map_ttl_ns"`
	VRRPAdvert   time.Duration `json:"vrrp_advert_interval_ns"`
	Failures     []Failure     `json:"failures"`
	Healing      Healing       `json:"healing"`
	// Tests and Variants are as given (empty: the default plan's).
	Tests    []int     `json:"tests"`
	Variants []Variant `json:"variants"`
	// Plan is the runs, in order.
	Plan          []Spec        `json:"plan"`
	MasterDownITR time.Duration `json:"master_down_interval_ns"`
	// PubSub is Options.PubSub.
	PubSub bool `json:"pubsub,omitempty"`
}

// PaperRow is one row of the paper's Table 1.
type PaperRow struct {
	Test int `json:"test"`
	// Sync is false for "w/o synchronization".
	Sync       bool       `json:"sync"`
	ITR1       CacheCount `json:"itr1"`
	ITR2       CacheCount `json:"itr2"`
	ITR2Misses int        `json:"itr2_misses"`
}

// PaperTable1 is Table 1 of the paper, as printed.
func PaperTable1() []PaperRow {
	return []PaperRow{
		{Test: 1, Sync: false, ITR1: CacheCount{30, 20, 10}, ITR2: CacheCount{15, 10, 5}, ITR2Misses: 15},
		{Test: 1, Sync: true, ITR1: CacheCount{30, 20, 10}, ITR2: CacheCount{30, 20, 10}, ITR2Misses: 0},
		{Test: 2, Sync: false, ITR1: CacheCount{25, 20, 5}, ITR2: CacheCount{20, 10, 10}, ITR2Misses: 5},
		{Test: 2, Sync: true, ITR1: CacheCount{25, 20, 10}, ITR2: CacheCount{25, 20, 10}, ITR2Misses: 0},
	}
}

// PaperRowFor returns the paper's row comparable with a run.
func PaperRowFor(test int, v Variant) (PaperRow, bool) {
	for _, r := range PaperTable1() {
		if r.Test == test && r.Sync == (v != Off) {
			return r, true
		}
	}
	return PaperRow{}, false
}
