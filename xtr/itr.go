package xtr

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
	"github.com/lispd/lispd/wire"
)

// MissPolicy says what the ITR does with a packet whose destination misses
// the map-cache while it asks the mapping system.
type MissPolicy uint8

// The miss policies.
const (
	// MissDrop drops the packet (and counts it): the behaviour of most
	// deployed ITRs, and the one the synchronization-set experiment
	// measures.
	MissDrop MissPolicy = iota
	// MissQueue holds a few packets per destination (bounded in total) and
	// sends them when the Map-Reply arrives.
	MissQueue
)

// String returns "drop" or "queue".
func (p MissPolicy) String() string {
	if p == MissQueue {
		return "queue"
	}
	return "drop"
}

// Defaults applied by NewITR for zero ITRConfig fields.
const (
	DefaultQueuePerDestination = 4
	DefaultQueueTotal          = 1024
	DefaultMapRequestRate      = 1000
	DefaultMapRequestRetries   = 3
	DefaultMapRequestTimeout   = time.Second
	DefaultMaxPending          = 10000
	DefaultRLOCProbeMisses     = 3
	DefaultTickInterval        = 50 * time.Millisecond
	DefaultSubscribeRefresh    = time.Minute
	// MaxRecordTTL caps the lifetime of a mapping from a Map-Reply: a
	// Record TTL of 0xffffffff lets "the recipient decide" (RFC 9301
	// section 5.4), and lispd decides this.
	MaxRecordTTL = 7 * 24 * time.Hour
	// maxBackoff caps the wait between retries of one Map-Request.
	maxBackoff = time.Minute
)

// ITRConfig configures an ITR. The zero value of each optional field means
// its default.
type ITRConfig struct {
	// MapResolvers are the Map-Resolvers Map-Requests are sent to, in
	// order of preference: a retry goes to the next one. Port 0 means
	// ControlPort. At least one.
	MapResolvers []netip.AddrPort
	// RLOCs are the ITR's own locators: the ITR-RLOCs of its Map-Requests
	// (where Map-Replies come back) and the outer sources of encapsulated
	// packets. Only RLOCs of their families are used in the map-cache,
	// and none of these is ever installed as a remote locator. When one of
	// them is a loopback (or link-local) address, as in a lab on one host,
	// loopback (or link-local) locators of other xTRs are installed too
	// (see rlocRefusal). At least one.
	RLOCs []netip.Addr
	// InstanceID is the 24-bit instance-ID of the EID-side device: packets
	// read from it are looked up and encapsulated in this instance.
	InstanceID uint32
	// EIDSpace bounds the mappings the ITR installs from the mapping
	// system (Map-Replies, pub/sub Map-Notifies): a record with locators
	// must lie inside one of these prefixes of its instance-ID, and a
	// negative record must lie inside one or outside all of them (it may
	// say that a destination outside the EID space is not an EID, not that
	// a block holding EID space is not). Empty means unrestricted, except
	// that a default route (0.0.0.0/0, ::/0) with locators is refused
	// unless listed here: it would capture every destination without a
	// more specific entry. The prefixes must be masked; they may be of
	// any instance-ID and family. See recordRefusal.
	EIDSpace []dataplane.EIDPrefix
	// ControlPort is the UDP port Map-Replies come back to (the inner
	// source port of the Encapsulated Map-Requests); 0 means ControlPort.
	ControlPort uint16
	// MissPolicy is what happens to packets that miss (MissDrop).
	MissPolicy MissPolicy
	// QueuePerDestination bounds the packets MissQueue holds per
	// destination; 0 means DefaultQueuePerDestination.
	QueuePerDestination int
	// QueueTotal bounds the packets MissQueue holds in all; 0 means
	// DefaultQueueTotal.
	QueueTotal int
	// MapRequestRate is the most Map-Requests (first transmissions and
	// retries) sent per second, with a burst of the same size; 0 means
	// DefaultMapRequestRate.
	MapRequestRate int
	// MapRequestRetries is how many times an unanswered Map-Request is
	// sent again before the ITR gives up; 0 means
	// DefaultMapRequestRetries, a negative value means never.
	MapRequestRetries int
	// MapRequestTimeout is the wait for a Map-Reply before the first retry;
	// it doubles with each retry (up to a minute). 0 means
	// DefaultMapRequestTimeout. It is also the shortest interval between
	// Map-Requests for one destination (RFC 9301 section 5.3 recommends at
	// most one per second).
	MapRequestTimeout time.Duration
	// MaxPending bounds the destinations with an outstanding Map-Request;
	// 0 means DefaultMaxPending.
	MaxPending int
	// RLOCProbeInterval is the RLOC-probing period; 0 turns probing off.
	RLOCProbeInterval time.Duration
	// RLOCProbeMisses is how many probes in a row must go unanswered for
	// an RLOC to be marked unreachable; 0 means DefaultRLOCProbeMisses.
	RLOCProbeMisses int
	// IgnoreLocatorStatusBits makes the ITR disregard the
	// Locator-Status-Bits of the packets it decapsulates (RFC 9300 section
	// 10 leaves acting on them to the ITR): locators are then marked down
	// only by RLOC-probing, SMRs and new mappings.
	IgnoreLocatorStatusBits bool
	// RefreshIfUsedWithin is the expiry policy: an expiring entry that was
	// used within this window is kept while a Map-Request refreshes it;
	// 0 means never (the entry just expires). The synchronization set
	// changes it at run time with SetRefreshIfUsedWithin.
	RefreshIfUsedWithin time.Duration
	// Subscribe makes the ITR subscribe (RFC 9437) to the mappings it asks
	// for: its Map-Requests for misses, refreshes, SMRs and Resolve carry
	// the N bit on their record and the I bit with XTRID and SiteID (not
	// its RLOC-probes), and the Map-Server publishes later changes of the
	// mapping with Map-Notifies. It needs PubSubKey or
	// PubSubUnauthenticated. See pubsub.go.
	Subscribe bool
	// SubscribeRefresh is how often a subscription whose map-cache entry
	// was used within the last interval is renewed with a subscribing
	// Map-Request (so that a Map-Server that lost its subscriptions, by a
	// restart, gets them back); 0 means DefaultSubscribeRefresh. A
	// subscription whose prefix has had no map-cache entry for an
	// interval is forgotten.
	SubscribeRefresh time.Duration
	// XTRID is the xTR-ID subscribing Map-Requests carry; the zero value
	// means a random one chosen by NewITR and kept for the ITR's life.
	XTRID wire.XTRID
	// SiteID is the site-ID sent with the xTR-ID.
	SiteID uint64
	// PubSubKey is the pre-shared pub/sub key (RFC 9437 section 7.1) that
	// authenticates the Map-Server's Map-Notifies and signs the ITR's
	// Map-Notify-Acks.
	PubSubKey []byte
	// PubSubKeyID is the Key ID those Map-Notifies must carry.
	PubSubKeyID uint8
	// PubSubAlgorithm is their authentication algorithm; 0 means
	// wire.AlgHMACSHA256128.
	PubSubAlgorithm wire.AlgorithmID
	// PubSubUnauthenticated also accepts unsigned Map-Notifies (Algorithm
	// ID 0, no authentication data), as lispers.net's Map-Server sends
	// them, acknowledges them unsigned, and lets a publication repeat the
	// last nonce (lispers.net reuses it). Off by default: anyone able to
	// send to the ITR's control port could then rewrite its map-cache.
	PubSubUnauthenticated bool
	// MapCacheSize bounds the map-cache; 0 means
	// mapcache.DefaultMaxEntries. It also bounds the subscriptions. It
	// cannot change after NewITR.
	MapCacheSize int
	// TickInterval is the resolution of retries and probes; 0 means
	// DefaultTickInterval. It cannot change after NewITR.
	TickInterval time.Duration
	// Clock returns the current time; nil means time.Now. It drives the
	// map-cache too. It cannot change after NewITR.
	Clock func() time.Time
	// Logger receives the ITR's logs (rate-limited where remote peers can
	// cause them); nil discards them. It cannot change after NewITR.
	Logger *slog.Logger
}

// itrSettings is the reloadable part of the configuration, immutable once
// published.
type itrSettings struct {
	mrs         []netip.AddrPort
	rlocs       []netip.Addr
	rloc4       netip.Addr // first IPv4 RLOC, or invalid
	rloc6       netip.Addr // first IPv6 RLOC, or invalid
	fam         families
	itrRLOCs    []wire.Address
	iid         uint32
	eidSpace    []dataplane.EIDPrefix // EIDSpace; empty: unrestricted
	port        uint16
	policy      MissPolicy
	perDest     int
	total       int
	rate        int
	retries     int
	timeout     time.Duration
	maxPending  int
	probeEvery  time.Duration
	probeMisses int
	ignoreLSB   bool
	// ownLoopback and ownLinkLocal say that one of rlocs is a loopback
	// (link-local) address: remote locators of that scope are then
	// installable (rlocRefusal).
	ownLoopback  bool
	ownLinkLocal bool

	// Pub/sub (pubsub.go).
	subscribe  bool
	subRefresh time.Duration
	xtrID      wire.XTRID // never zero once published: NewITR's random one
	siteID     uint64
	psKey      []byte
	psKeyID    uint8
	psAlg      wire.AlgorithmID
	psUnauth   bool
}

// settingsFrom validates cfg and derives the settings.
func itrSettingsFrom(cfg *ITRConfig) (*itrSettings, error) {
	if len(cfg.MapResolvers) == 0 {
		return nil, configError("at least one Map-Resolver is needed")
	}
	s := &itrSettings{
		iid:         cfg.InstanceID,
		port:        withDefault(cfg.ControlPort, ControlPort),
		policy:      cfg.MissPolicy,
		perDest:     withDefault(cfg.QueuePerDestination, DefaultQueuePerDestination),
		total:       withDefault(cfg.QueueTotal, DefaultQueueTotal),
		rate:        withDefault(cfg.MapRequestRate, DefaultMapRequestRate),
		retries:     withDefault(cfg.MapRequestRetries, DefaultMapRequestRetries),
		timeout:     withDefault(cfg.MapRequestTimeout, DefaultMapRequestTimeout),
		maxPending:  withDefault(cfg.MaxPending, DefaultMaxPending),
		probeEvery:  cfg.RLOCProbeInterval,
		probeMisses: withDefault(cfg.RLOCProbeMisses, DefaultRLOCProbeMisses),
		ignoreLSB:   cfg.IgnoreLocatorStatusBits,
		subscribe:   cfg.Subscribe,
		subRefresh:  withDefault(cfg.SubscribeRefresh, DefaultSubscribeRefresh),
		xtrID:       cfg.XTRID,
		siteID:      cfg.SiteID,
		psKey:       slices.Clone(cfg.PubSubKey),
		psKeyID:     cfg.PubSubKeyID,
		psAlg:       withDefault(cfg.PubSubAlgorithm, wire.AlgHMACSHA256128),
		psUnauth:    cfg.PubSubUnauthenticated,
	}
	if s.retries < 0 {
		s.retries = 0
	}
	switch {
	case cfg.InstanceID > 0xffffff:
		return nil, configError("instance-ID %d exceeds 24 bits", cfg.InstanceID)
	case cfg.MissPolicy != MissDrop && cfg.MissPolicy != MissQueue:
		return nil, configError("unknown miss policy %d", cfg.MissPolicy)
	case s.perDest < 0 || s.total < 0 || s.rate < 0 || s.timeout < 0 || s.maxPending < 0 || s.probeEvery < 0 || s.probeMisses < 0:
		return nil, configError("negative limit")
	case cfg.RefreshIfUsedWithin < 0:
		return nil, configError("negative refresh-if-used-within")
	case cfg.SubscribeRefresh < 0:
		return nil, configError("negative subscribe-refresh")
	case !s.psAlg.Known():
		return nil, configError("unsupported pub/sub algorithm %s", s.psAlg)
	case cfg.Subscribe && len(cfg.PubSubKey) == 0 && !cfg.PubSubUnauthenticated:
		return nil, configError("subscribe needs a pub/sub key (or pub/sub unauthenticated, for lispers.net's Map-Servers)")
	}
	for _, mr := range cfg.MapResolvers {
		a := mr.Addr().Unmap()
		if !usableUnicast(a) {
			return nil, configError("Map-Resolver %s is not a unicast address", mr)
		}
		mr = netip.AddrPortFrom(a, withDefault(mr.Port(), ControlPort))
		if slices.Contains(s.mrs, mr) {
			return nil, configError("duplicate Map-Resolver %s", mr)
		}
		s.mrs = append(s.mrs, mr)
	}
	if len(cfg.RLOCs) == 0 {
		return nil, configError("at least one local RLOC is needed")
	}
	for _, r := range cfg.RLOCs {
		r = r.Unmap()
		if !usableUnicast(r) {
			return nil, configError("RLOC %s is not a unicast address", r)
		}
		if slices.Contains(s.rlocs, r) {
			return nil, configError("duplicate RLOC %s", r)
		}
		s.rlocs = append(s.rlocs, r)
		if r.Is4() {
			s.fam.v4 = true
			if !s.rloc4.IsValid() {
				s.rloc4 = r
			}
		} else {
			s.fam.v6 = true
			if !s.rloc6.IsValid() {
				s.rloc6 = r
			}
		}
	}
	if len(s.rlocs) > 32 {
		// A Map-Request carries at most 32 ITR-RLOCs.
		return nil, configError("%d RLOCs: a Map-Request carries at most 32", len(s.rlocs))
	}
	for _, r := range s.rlocs {
		s.itrRLOCs = append(s.itrRLOCs, wire.AddrFrom(r))
		s.ownLoopback = s.ownLoopback || r.IsLoopback()
		s.ownLinkLocal = s.ownLinkLocal || r.IsLinkLocalUnicast()
	}
	for _, p := range cfg.EIDSpace {
		switch {
		case p.InstanceID > 0xffffff:
			return nil, configError("EID space %s: instance-ID exceeds 24 bits", p)
		case !p.Prefix.IsValid() || p.Prefix.Addr().Zone() != "" || p.Prefix.Addr().Is4In6():
			return nil, configError("EID space %s: not an EID prefix", p)
		case p.Prefix.Masked() != p.Prefix:
			return nil, configError("EID space %s: host bits are set", p)
		case slices.Contains(s.eidSpace, p):
			return nil, configError("duplicate EID space %s", p)
		}
		s.eidSpace = append(s.eidSpace, p)
	}
	return s, nil
}

// srcFor returns the local RLOC of dst's family (the outer source of an
// encapsulated packet), or the zero Addr.
func (s *itrSettings) srcFor(dst netip.Addr) netip.Addr {
	if dst.Is4() || dst.Is4In6() {
		return s.rloc4
	}
	return s.rloc6
}

// requestWindow is how long a Map-Request with all its retries may take.
func (s *itrSettings) requestWindow() time.Duration {
	d := time.Duration(0)
	for k := 0; k <= s.retries; k++ {
		d += backoff(s.timeout, k)
	}
	return d
}

// backoff is the wait after the (k+1)-th transmission of a Map-Request.
func backoff(timeout time.Duration, k int) time.Duration {
	if k > 20 {
		return maxBackoff
	}
	return min(timeout<<uint(k), maxBackoff)
}

// ITR counter indexes; itrCounterNames gives their stable names.
const (
	iMisses = iota
	iMissDropped
	iMissQueued
	iMissReleased
	iRequestsSent
	iRequestRetries
	iRequestTimeouts
	iRequestsRateLimited
	iRequestSendErrors
	iPendingOverflow
	iRepliesAccepted
	iRepliesUnsolicited
	iReplyRecordsIgnored
	iLocatorsRefused
	iRecordsRefusedEIDSpace
	iRecordsRefusedDefault
	iNegativeEntries
	iInsertErrors
	iNativelyForwarded
	iNativeNoPath
	iDroppedByAction
	iDroppedNoRLOC
	iDroppedNotEID
	iSMRReceived
	iSMRInvoked
	iSMRIgnored
	iProbesSent
	iProbeReplies
	iProbeRepliesUnsolicited
	iRLOCDown
	iRLOCUp
	iExpiryRefreshes
	iMalformed
	iUnsupported
	iLSBDown
	iLSBUp
	iSubscribeRequestsSent
	iSubscribeRefreshes
	iSubsConfirmed
	iSubsRefused
	iSubsRemovedByMS
	iSubsForgotten
	iSubsOverflow
	iPSNotifies
	iPSInstalled
	iPSWithdrawals
	iPSAuthFailures
	iPSReplays
	iPSDuplicates
	iPSUnmatched
	iPSRecordsIgnored
	iPSLateReplies
	iPSAcksSent
	iPSAckErrors
	numITRCounters
)

var itrCounterNames = []string{
	iMisses:                  "misses",
	iMissDropped:             "miss_packets_dropped",
	iMissQueued:              "miss_packets_queued",
	iMissReleased:            "miss_packets_released",
	iRequestsSent:            "map_requests_sent",
	iRequestRetries:          "map_request_retries",
	iRequestTimeouts:         "map_request_timeouts",
	iRequestsRateLimited:     "map_requests_rate_limited",
	iRequestSendErrors:       "map_request_send_errors",
	iPendingOverflow:         "pending_overflow",
	iRepliesAccepted:         "map_replies_accepted",
	iRepliesUnsolicited:      "map_replies_unsolicited",
	iReplyRecordsIgnored:     "map_reply_records_ignored",
	iLocatorsRefused:         "locators_refused",
	iRecordsRefusedEIDSpace:  "records_refused_eid_space",
	iRecordsRefusedDefault:   "records_refused_default_route",
	iNegativeEntries:         "negative_entries",
	iInsertErrors:            "map_cache_insert_errors",
	iNativelyForwarded:       "natively_forwarded",
	iNativeNoPath:            "native_forward_no_path",
	iDroppedByAction:         "dropped_by_action",
	iDroppedNoRLOC:           "dropped_no_usable_rloc",
	iDroppedNotEID:           "dropped_not_eid",
	iSMRReceived:             "smr_received",
	iSMRInvoked:              "smr_invoked_requests",
	iSMRIgnored:              "smr_ignored",
	iProbesSent:              "probes_sent",
	iProbeReplies:            "probe_replies",
	iProbeRepliesUnsolicited: "probe_replies_unsolicited",
	iRLOCDown:                "rloc_down",
	iRLOCUp:                  "rloc_up",
	iExpiryRefreshes:         "expiry_refreshes",
	iMalformed:               "malformed",
	iUnsupported:             "unsupported_messages",
	iLSBDown:                 "lsb_locators_down",
	iLSBUp:                   "lsb_locators_up",
	iSubscribeRequestsSent:   "subscribe_requests_sent",
	iSubscribeRefreshes:      "subscribe_refreshes",
	iSubsConfirmed:           "subscriptions_confirmed",
	iSubsRefused:             "subscriptions_refused",
	iSubsRemovedByMS:         "subscriptions_removed_by_ms",
	iSubsForgotten:           "subscriptions_forgotten",
	iSubsOverflow:            "subscriptions_overflow",
	iPSNotifies:              "pubsub_notifies_received",
	iPSInstalled:             "pubsub_notifies_installed",
	iPSWithdrawals:           "pubsub_withdrawals",
	iPSAuthFailures:          "pubsub_notify_auth_failures",
	iPSReplays:               "pubsub_notify_replays",
	iPSDuplicates:            "pubsub_notify_duplicates",
	iPSUnmatched:             "pubsub_notify_unmatched",
	iPSRecordsIgnored:        "pubsub_records_ignored",
	iPSLateReplies:           "pubsub_late_replies",
	iPSAcksSent:              "pubsub_acks_sent",
	iPSAckErrors:             "pubsub_ack_errors",
}

// ITR is the Ingress Tunnel Router's control logic: it owns the map-cache,
// decides per packet where to encapsulate (the LookupFunc the DataPlane
// gives the dataplane's Encapsulator), asks the Map-Resolvers on a miss,
// installs Map-Replies, refreshes mappings on SMRs and on expiry, probes
// the RLOCs in use, and subscribes to mappings (pubsub.go). It is independent of sockets: datagrams go out through
// its Sender and come in through HandlePacket.
//
// It is safe for concurrent use. Lock order: ITR.cfgMu (SetConfig) before
// ITR.mu; ITR.mu (which also guards the pub/sub state) and ITR.probeMu are
// never held together; neither is held while sending, while computing a
// MAC or while calling the map-cache's write methods.
type ITR struct {
	cache    *mapcache.Cache
	out      Sender
	now      func() time.Time
	log      *slog.Logger
	logLimit *rate.Limiter
	tick     time.Duration

	cfgMu         sync.Mutex // serializes SetConfig
	settings      atomic.Pointer[itrSettings]
	refreshWithin atomic.Int64 // nanoseconds
	limiter       *rate.Limiter
	dp            atomic.Pointer[DataPlane]                             // where released packets go
	localEIDs     atomic.Pointer[func(iid uint32, eid netip.Addr) bool] // SetLocalEIDs
	running       atomic.Bool
	kick          chan struct{} // wakes RoutineITRControl for new requests
	ctr           *counters

	// versions and expiry are the synchronization set's hooks
	// (SetVersions, SetExpiryPolicy); nil means the ITR's own.
	versions atomic.Pointer[func() uint64]
	expiry   atomic.Pointer[func(*mapcache.Entry) mapcache.ExpireDecision]

	bootID wire.XTRID // the xTR-ID when ITRConfig.XTRID is zero

	mu        sync.Mutex // guards the fields below
	pending   map[reqKey]*pending
	byNonce   map[uint64]*pending
	fresh     []*pending // created, not sent yet
	heldTotal int
	stopped   bool
	ps        pubsubState // subscriptions (pubsub.go)

	probeMu     sync.Mutex // guards the probing state
	probes      map[netip.Addr]*rlocProbe
	probeNonces map[uint64]netip.Addr
	nextProbe   time.Time
}

// NewITR returns an ITR for cfg sending through out. It starts nothing:
// Run drives its timers, and a DataPlane its packet path.
func NewITR(cfg ITRConfig, out Sender) (*ITR, error) {
	if out == nil {
		return nil, ErrNilSender
	}
	st, err := itrSettingsFrom(&cfg)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	i := &ITR{
		out:         out,
		now:         clockOrNow(cfg.Clock),
		log:         logger,
		logLimit:    rate.NewLimiter(rate.Every(time.Second), 10),
		tick:        withDefault(cfg.TickInterval, DefaultTickInterval),
		limiter:     rate.NewLimiter(rate.Limit(st.rate), max(st.rate, 1)),
		kick:        make(chan struct{}, 1),
		ctr:         newCounters(itrCounterNames),
		pending:     map[reqKey]*pending{},
		byNonce:     map[uint64]*pending{},
		probes:      map[netip.Addr]*rlocProbe{},
		probeNonces: map[uint64]netip.Addr{},
	}
	if i.tick <= 0 {
		return nil, configError("non-positive tick interval")
	}
	for i.bootID == (wire.XTRID{}) {
		i.bootID = wire.XTRID(randomXTRID())
	}
	if st.xtrID == (wire.XTRID{}) {
		st.xtrID = i.bootID
	}
	maxSubs := cfg.MapCacheSize
	if maxSubs <= 0 {
		maxSubs = mapcache.DefaultMaxEntries
	}
	i.ps.init(maxSubs)
	i.settings.Store(st)
	i.refreshWithin.Store(int64(cfg.RefreshIfUsedWithin))
	i.cache = mapcache.New(mapcache.Config{
		MaxEntries: cfg.MapCacheSize,
		Clock:      i.now,
		OnExpire:   i.onExpire,
	})
	return i, nil
}

// Cache returns the ITR's map-cache. The synchronization set subscribes to
// its change feed and inserts what its peers learned (Source FromSync); the
// API reads it.
func (i *ITR) Cache() *mapcache.Cache { return i.cache }

// SetConfig applies the reloadable part of cfg: Map-Resolvers, RLOCs,
// instance-ID, EID space (to the mappings installed from then on), control
// port, miss policy and queue bounds, rate, retries, timeout, pending
// bound, probing, the refresh window and pub/sub (turning Subscribe off
// stops subscribing; the subscriptions held are still honoured until
// forgotten). MapCacheSize,
// TickInterval, Clock and Logger keep the values NewITR was given. Nothing
// changes on error.
func (i *ITR) SetConfig(cfg ITRConfig) error {
	st, err := itrSettingsFrom(&cfg)
	if err != nil {
		return err
	}
	if st.xtrID == (wire.XTRID{}) {
		st.xtrID = i.bootID
	}
	i.cfgMu.Lock()
	defer i.cfgMu.Unlock()
	now := i.now()
	i.limiter.SetLimitAt(now, rate.Limit(st.rate))
	i.limiter.SetBurstAt(now, max(st.rate, 1))
	i.settings.Store(st)
	i.refreshWithin.Store(int64(cfg.RefreshIfUsedWithin))
	return nil
}

// SetRefreshIfUsedWithin changes the expiry policy at run time (see
// ITRConfig.RefreshIfUsedWithin); d <= 0 turns refreshing off.
func (i *ITR) SetRefreshIfUsedWithin(d time.Duration) { i.refreshWithin.Store(int64(max(d, 0))) }

// RefreshIfUsedWithin returns the expiry policy's window.
func (i *ITR) RefreshIfUsedWithin() time.Duration { return time.Duration(i.refreshWithin.Load()) }

// SetVersions makes next stamp the Version of the entries the ITR installs
// from Map-Replies, instead of the time in Unix nanoseconds: a
// synchronization set gives its version clock, so that the versions of all
// its members compare ("newer wins"). nil restores the default.
func (i *ITR) SetVersions(next func() uint64) {
	if next == nil {
		i.versions.Store(nil)
		return
	}
	i.versions.Store(&next)
}

// SetExpiryPolicy replaces the map-cache expiry policy (refresh if used
// within RefreshIfUsedWithin) with f, which decides for each expiring
// entry and may call Refresh: a synchronization set's policy also counts
// its peers' use of the entry. nil restores the ITR's own policy.
func (i *ITR) SetExpiryPolicy(f func(*mapcache.Entry) mapcache.ExpireDecision) {
	if f == nil {
		i.expiry.Store(nil)
		return
	}
	i.expiry.Store(&f)
}

// SetControlPort changes the port Map-Replies are asked to come back to
// (when the control socket was bound to port 0).
func (i *ITR) SetControlPort(port uint16) {
	for {
		old := i.settings.Load()
		st := *old
		st.port = withDefault(port, ControlPort)
		if i.settings.CompareAndSwap(old, &st) {
			return
		}
	}
}

// Counters returns the ITR's counters with their stable names: misses,
// miss_packets_dropped, miss_packets_queued, miss_packets_released,
// map_requests_sent, map_request_retries, map_request_timeouts,
// map_requests_rate_limited, map_request_send_errors, pending_overflow,
// map_replies_accepted, map_replies_unsolicited (spoof attempts: unknown
// nonce), map_reply_records_ignored, locators_refused (locators of
// Map-Reply and pub/sub records not installed: loopback, link-local,
// broadcast, unspecified, multicast, or the ITR's own RLOC; see
// rlocRefusal), records_refused_eid_space and
// records_refused_default_route (records not installed because of
// ITRConfig.EIDSpace, see recordRefusal), negative_entries,
// map_cache_insert_errors, natively_forwarded, native_forward_no_path,
// dropped_by_action, dropped_no_usable_rloc, dropped_not_eid, smr_received,
// smr_invoked_requests, smr_ignored, probes_sent, probe_replies,
// probe_replies_unsolicited, rloc_down, rloc_up, expiry_refreshes,
// malformed, unsupported_messages, lsb_locators_down and lsb_locators_up
// (locators marked unreachable, or reachable again, by the
// Locator-Status-Bits of decapsulated packets); for publish/subscribe
// (pubsub.go): subscribe_requests_sent (transmissions of subscribing
// Map-Requests, retries included, also counted in map_requests_sent),
// subscribe_refreshes (subscriptions renewed every SubscribeRefresh),
// subscriptions_confirmed, subscriptions_refused (a subscribing request
// answered by a Map-Reply and no confirmation), subscriptions_removed_by_ms
// (removal notices), subscriptions_forgotten (no map-cache entry for a
// refresh interval), subscriptions_overflow (a confirmation not recorded:
// as many subscriptions as the map-cache size), pubsub_notifies_received,
// pubsub_notifies_installed (mappings installed from confirmations and
// publications), pubsub_withdrawals (mappings deleted by a Record TTL of
// 0), pubsub_notify_auth_failures, pubsub_notify_replays (a nonce older
// than the subscription's: dropped), pubsub_notify_duplicates (the nonce
// of the last accepted one, a retransmission after a lost ack: acked again,
// not installed), pubsub_notify_unmatched (neither a confirmation nor
// overlapping a subscription), pubsub_records_ignored, pubsub_late_replies
// (a Map-Reply to a subscribing request after its confirmation: not
// installed), pubsub_acks_sent and pubsub_ack_errors; then the map-cache's
// as map_cache_<name>.
func (i *ITR) Counters() []dataplane.Counter {
	out := i.ctr.snapshot()
	cs := i.cache.Stats()
	for _, c := range []struct {
		n string
		v uint64
	}{
		{"lookups", cs.Lookups}, {"hits", cs.Hits}, {"misses", cs.Misses},
		{"inserts", cs.Inserts}, {"replaces", cs.Replaces}, {"stale_rejects", cs.StaleRejects},
		{"deletes", cs.Deletes}, {"expired", cs.Expired}, {"extended", cs.Extended},
		{"evicted", cs.Evicted}, {"feed_overflows", cs.FeedOverflows},
	} {
		out = append(out, dataplane.Counter{Name: "map_cache_" + c.n, Value: c.v})
	}
	return out
}

// Outstanding returns the number of destinations with a Map-Request in
// progress.
func (i *ITR) Outstanding() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.pending)
}

// Run drives the ITR's timers until ctx is done: it sends the Map-Requests
// the packet path asked for, retries and abandons them, probes RLOCs, and
// sweeps the map-cache. It returns nil when ctx ends, after every goroutine
// it started has stopped, and ErrRunning if another Run is active.
func (i *ITR) Run(ctx context.Context) error {
	if !i.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer i.running.Store(false)
	i.mu.Lock()
	i.stopped = false
	i.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // RoutineMapCacheSweeper
		defer wg.Done()
		if err := i.cache.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			i.log.Error("map-cache sweeper", "err", err)
		}
	}()
	i.controlLoop(ctx) // RoutineITRControl runs in the caller's goroutine
	wg.Wait()
	i.abandonAll()
	return nil
}

// controlLoop is RoutineITRControl.
func (i *ITR) controlLoop(ctx context.Context) {
	t := time.NewTicker(i.tick)
	defer t.Stop()
	i.sendFresh()
	for {
		select {
		case <-ctx.Done():
			return
		case <-i.kick:
			i.sendFresh()
		case <-t.C:
			i.sendFresh()
			i.onTick(i.now())
		}
	}
}

// wake tells RoutineITRControl that requests wait to be sent.
func (i *ITR) wake() {
	select {
	case i.kick <- struct{}{}:
	default:
	}
}

// abandonAll ends every outstanding request when Run stops, so that no
// Resolve waits forever and no held packet stays.
func (i *ITR) abandonAll() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.stopped = true
	for _, p := range i.pending {
		i.dropPendingLocked(p, ErrStopped)
	}
	i.fresh = nil
}

// HandlePacket processes one control datagram received on the control
// port: a Map-Reply (to a Map-Request or an RLOC-probe), a
// Solicit-Map-Request, or a pub/sub Map-Notify (a subscription's
// confirmation, a publication or a removal notice; see OwnsNotify for
// which Map-Notifies are the ITR's). from is its source, local the address
// it was received on (may be the zero Addr). pkt is not retained.
func (i *ITR) HandlePacket(pkt []byte, from netip.AddrPort, local netip.Addr) {
	from = unmapPort(from)
	msg, err := wire.Parse(pkt)
	if err != nil {
		i.ctr.inc(iMalformed)
		i.warn("malformed control message", "from", from, "reason", wire.ErrorReason(err))
		return
	}
	switch m := msg.(type) {
	case *wire.MapReply:
		if m.Probe {
			i.handleProbeReply(m, from)
			return
		}
		i.handleReply(m, from)
	case *wire.MapRequest:
		if !m.SMR {
			i.ctr.inc(iUnsupported)
			return
		}
		i.handleSMR(m, from)
	case *wire.MapNotify:
		i.handleNotify(m, pkt, from)
	default:
		i.ctr.inc(iUnsupported)
	}
}

// warn logs a warning that remote peers can trigger, rate-limited.
func (i *ITR) warn(msg string, args ...any) {
	if i.logLimit.Allow() {
		i.log.Warn(msg, args...)
	}
}

// onExpire is the map-cache's expiry hook: the "refresh if used" policy.
// An expiring entry used within the window is kept (Extend) for as long as a
// Map-Request with its retries may take, while a Map-Request refreshes it;
// the Map-Reply replaces it. An entry is not kept beyond a few such windows
// past its expiry, so a mapping the mapping system no longer answers for
// goes away.
func (i *ITR) onExpire(e *mapcache.Entry) mapcache.ExpireDecision {
	if f := i.expiry.Load(); f != nil {
		return (*f)(e)
	}
	w := time.Duration(i.refreshWithin.Load())
	if w <= 0 || e.Source == mapcache.FromStatic {
		return mapcache.DeleteNow
	}
	now := i.now()
	lu := e.LastUsed()
	if lu.IsZero() || now.Sub(lu) > w {
		return mapcache.DeleteNow
	}
	st := i.settings.Load()
	win := st.requestWindow() + st.timeout
	if !e.Expires.IsZero() && e.Deadline().Sub(e.Expires) >= 3*win {
		return mapcache.DeleteNow
	}
	if _, err := i.request(reqKey{iid: e.InstanceID, eid: e.Prefix.Addr()}, uint8(e.Prefix.Bits()), netip.Addr{}, kindRefresh, now); err != nil {
		return mapcache.DeleteNow
	}
	i.ctr.inc(iExpiryRefreshes)
	return mapcache.Extend(win)
}

// Refresh asks the mapping system for the mapping of prefix in instance iid
// again (a Map-Request for the prefix, retried like any other); the
// Map-Reply replaces the cached entry. It returns at once: ErrBusy when
// too many requests are outstanding, nil otherwise (also when a request for
// it is already outstanding).
func (i *ITR) Refresh(iid uint32, prefix netip.Prefix) error {
	if !prefix.IsValid() || iid > 0xffffff {
		return configError("invalid EID prefix %s in instance %d", prefix, iid)
	}
	prefix = prefix.Masked()
	_, err := i.request(reqKey{iid: iid, eid: prefix.Addr().Unmap()}, uint8(prefix.Bits()), netip.Addr{}, kindRefresh, i.now())
	return err
}

// Resolve returns the map-cache entry for eid in instance iid, sending a
// Map-Request and waiting for its answer when the cache has none (like
// lig). It fails with ErrNoAnswer when every retry went unanswered,
// ErrRateLimited, ErrBusy, ErrStopped, or ctx's error.
func (i *ITR) Resolve(ctx context.Context, iid uint32, eid netip.Addr) (*mapcache.Entry, error) {
	eid = eid.Unmap()
	if !eid.IsValid() || eid.Zone() != "" || iid > 0xffffff {
		return nil, configError("invalid EID %s in instance %d", eid, iid)
	}
	if e, ok := i.cache.LookupAt(iid, eid, i.now().UnixNano()); ok {
		return e, nil
	}
	p, err := i.request(reqKey{iid: iid, eid: eid}, uint8(eid.BitLen()), netip.Addr{}, kindResolve, i.now())
	if err != nil {
		return nil, err
	}
	i.mu.Lock()
	if p.done == nil {
		p.done = make(chan struct{})
		if p.finished {
			close(p.done)
		}
	}
	done := p.done
	i.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	i.mu.Lock()
	perr := p.err
	i.mu.Unlock()
	if perr != nil {
		return nil, perr
	}
	if e, ok := i.cache.LookupAt(iid, eid, i.now().UnixNano()); ok {
		return e, nil
	}
	return nil, ErrNoAnswer
}

// ttlOf converts a Record TTL in minutes to the cache's TTL.
func ttlOf(minutes uint32) time.Duration {
	if minutes == math.MaxUint32 || time.Duration(minutes) > MaxRecordTTL/time.Minute {
		return MaxRecordTTL
	}
	return time.Duration(minutes) * time.Minute
}

// Validate reports whether NewITR or SetConfig would accept cfg, without
// changing anything.
func (cfg ITRConfig) Validate() error {
	_, err := itrSettingsFrom(&cfg)
	return err
}
