package xtr

import (
	"cmp"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/wire"
)

// Defaults applied by NewETR for zero ETRConfig fields.
const (
	// DefaultRegisterInterval is how often an ETR registers: RFC 9301
	// section 8.2 has ETRs send Map-Registers every 60 seconds.
	DefaultRegisterInterval = time.Minute
	// DefaultRecordTTL is the Record TTL of the ETR's mappings: 1440
	// minutes (one day), the value deployed ETRs register and answer
	// with. The field counts minutes.
	DefaultRecordTTL     = 24 * time.Hour
	DefaultMapReplyRate  = 10000
	DefaultSMRRate       = 100
	DefaultMaxRequesters = 4096
	// registerRetry is the first wait for a Map-Notify before a
	// Map-Register is sent again; it doubles up to registerRetryMax
	// (etr_register.go), so that a Map-Server that comes back is
	// registered with within seconds.
	registerRetry = time.Second
	// smrHoldoff bounds how long SMRs wait after a database change for the
	// Map-Servers to acknowledge the new registration.
	smrHoldoff = 2 * time.Second
	// maxRegisterSize bounds the encoded Map-Register, so it fits an
	// Ethernet path without IP fragmentation; more records are split over
	// several messages.
	maxRegisterSize = 1400
)

// Locator is one of the ETR's RLOCs for a mapping, with its unicast and
// multicast priority and weight (RFC 9301 section 5.4; priority 255 means
// "not for unicast").
type Locator struct {
	// Addr is the RLOC address.
	Addr netip.Addr
	// Priority and Weight are the unicast priority and weight; MPriority
	// and MWeight the multicast ones.
	Priority, Weight, MPriority, MWeight uint8
}

// Mapping is one entry of the ETR's EID database: an EID-prefix in an
// instance-ID and the RLOCs that reach it.
type Mapping struct {
	// InstanceID is the 24-bit instance-ID (0 for the default instance).
	InstanceID uint32
	// Prefix is the EID-prefix (masked).
	Prefix netip.Prefix
	// RLOCs are the locators; at least one, at most 255.
	RLOCs []Locator
}

// MapServer is a Map-Server the ETR registers with, and the key that
// authenticates its Map-Registers and the Map-Server's Map-Notifies.
type MapServer struct {
	// Address is the Map-Server's control address; port 0 means
	// ControlPort.
	Address netip.AddrPort
	// Key is the shared authentication key; not empty.
	Key []byte
	// KeyID is the 8-bit Key ID (deployed routers use 0).
	KeyID uint8
	// Algorithm is the authentication algorithm (not AlgNone).
	Algorithm wire.AlgorithmID
}

// ETRConfig configures an ETR. The zero value of each optional field means
// its default.
type ETRConfig struct {
	// Database is the ETR's EID database.
	Database []Mapping
	// MapServers are the Map-Servers to register with.
	MapServers []MapServer
	// LocalRLOCs are this xTR's own locators: the locators of the database
	// that are among them carry the L bit, and they are the ITR-RLOCs of
	// the SMRs the ETR sends.
	LocalRLOCs []netip.Addr
	// RegisterInterval is the Map-Register period; 0 means
	// DefaultRegisterInterval.
	RegisterInterval time.Duration
	// RecordTTL is the Record TTL of registered and answered mappings, a
	// whole number of minutes; 0 means DefaultRecordTTL.
	RecordTTL time.Duration
	// ProxyReply sets the P bit of Map-Registers: the Map-Server answers
	// Map-Requests for the ETR.
	ProxyReply bool
	// FollowMapServer makes the ETR follow the withdrawals of the other
	// xTRs of its site: when an unsolicited Map-Notify (the Map-Server's
	// merged registration) shows another xTR's locator of the database
	// with priority 255 or the R bit clear, the ETR answers and signals
	// it so too (Map-Replies, Locator-Status-Bits), without registering
	// it so, until a later Map-Notify shows it usable. This keeps a site
	// consistent without a synchronization set.
	FollowMapServer bool
	// XTRID is the xTR-ID sent with Map-Registers; the zero value means a
	// random one chosen when the ETR is created (per boot).
	XTRID wire.XTRID
	// SiteID is the 64-bit site-ID sent with the xTR-ID.
	SiteID uint64
	// MapReplyRate bounds the Map-Replies (and probe replies) sent per
	// second; 0 means DefaultMapReplyRate.
	MapReplyRate int
	// SMRRate bounds the SMRs sent per second; 0 means DefaultSMRRate.
	SMRRate int
	// MaxRequesters bounds how many (ITR, EID-prefix) pairs the ETR
	// remembers for SMRs; 0 means DefaultMaxRequesters.
	MaxRequesters int
	// DecapFilter turns the decapsulation filter on: the Decapsulator then
	// accepts only datagrams whose outer source is an RLOC the ETR knows
	// (its database's, DecapFilterAllow, the Map-Server's merged
	// registrations, the ITRs whose Map-Requests it answered, and, in an
	// xTR that is also an ITR, the RLOCs of the map-cache entry for the
	// inner source; see decapfilter.go). Off, every source is accepted.
	DecapFilter bool
	// DecapFilterAllow are prefixes the decapsulation filter accepts outer
	// sources from besides the RLOCs it knows: PITRs, RTRs, a provider's
	// RLOC space. IPv4-mapped prefixes are refused; host bits are masked.
	DecapFilterAllow []netip.Prefix
	// MaxGleanedRLOCs bounds the RLOCs the decapsulation filter learns from
	// Map-Requests and from the synchronization set; 0 means
	// DefaultMaxGleanedRLOCs.
	MaxGleanedRLOCs int
	// TickInterval is the resolution of the ETR's timers; 0 means
	// DefaultTickInterval. It cannot change after NewETR.
	TickInterval time.Duration
	// Clock returns the current time; nil means time.Now. It cannot
	// change after NewETR.
	Clock func() time.Time
	// Logger receives the ETR's logs; nil discards them. It cannot change
	// after NewETR.
	Logger *slog.Logger
}

// database is an immutable EID database with the records the ETR sends.
type database struct {
	maps    []Mapping        // sorted by instance-ID, family, address, length
	records []wire.EIDRecord // parallel to maps: the answered form (Map-Replies, probe replies, LSBs)
	// regRecords are the registered form: records without the locators
	// only learned from the Map-Server (the same slice when none is).
	regRecords []wire.EIDRecord
	lsbs       []uint32 // parallel to records: their Locator-Status-Bits (computeLSBs)
	eids       *dataplane.EIDSet
}

// etrSettings is the reloadable configuration, immutable once published.
type etrSettings struct {
	servers    []MapServer
	local      []netip.Addr
	interval   time.Duration
	ttlMinutes uint32
	proxy      bool
	follow     bool
	xtrID      wire.XTRID
	siteID     uint64
	maxReq     int
	replyRate  int
	smrRate    int

	decapFilter bool
	decapAllow  []netip.Prefix // masked, unmapped, unique
	maxGleaned  int
}

// ETR counter indexes; etrCounterNames gives their stable names.
const (
	eRegistersSent = iota
	eRegisterSendErrors
	eNotifiesReceived
	eNotifiesUnsolicited
	eNotifyAcksSent
	eNotifyAuthFailures
	eNotifyUnknownSource
	eRequestsReceived
	eRepliesSent
	eProbeRepliesSent
	eRequestsNotOurs
	eRequestsDropped
	eRepliesRateLimited
	eSMRsSent
	eSMRsRateLimited
	eSMRsIgnored
	eMalformed
	eUnsupported
	eSendErrors
	eDecapFilterLearned
	eDecapFilterEvicted
	numETRCounters
)

var etrCounterNames = []string{
	eRegistersSent:       "map_registers_sent",
	eRegisterSendErrors:  "map_register_send_errors",
	eNotifiesReceived:    "map_notifies_received",
	eNotifiesUnsolicited: "map_notifies_unsolicited",
	eNotifyAcksSent:      "map_notify_acks_sent",
	eNotifyAuthFailures:  "map_notify_auth_failures",
	eNotifyUnknownSource: "map_notify_unknown_source",
	eRequestsReceived:    "map_requests_received",
	eRepliesSent:         "map_replies_sent",
	eProbeRepliesSent:    "probe_replies_sent",
	eRequestsNotOurs:     "map_requests_not_ours",
	eRequestsDropped:     "map_requests_dropped",
	eRepliesRateLimited:  "map_replies_rate_limited",
	eSMRsSent:            "smrs_sent",
	eSMRsRateLimited:     "smrs_rate_limited",
	eSMRsIgnored:         "smrs_ignored",
	eMalformed:           "malformed",
	eUnsupported:         "unsupported_messages",
	eSendErrors:          "send_errors",
	eDecapFilterLearned:  "decap_filter_learned",
	eDecapFilterEvicted:  "decap_filter_evicted",
}

// ETR is the Egress Tunnel Router's control logic: it registers its EID
// database with its Map-Servers, verifies and acknowledges their
// Map-Notifies, answers Map-Requests and RLOC-probes for its EIDs, tells
// the ITRs that asked for a mapping when it changes (SMR), and keeps the
// Decapsulator's set of EID-prefixes in line with the database. Like the
// ITR it is independent of sockets.
//
// It is safe for concurrent use. Lock order: ETR.cfgMu (SetConfig) before
// ETR.mu, which guards the registration and requester state, and before
// the decapsulation filter's decapFilter.mu (then remoteITRTable.mu);
// nothing is sent while any is held.
type ETR struct {
	out      Sender
	now      func() time.Time
	log      *slog.Logger
	logLimit *rate.Limiter
	tick     time.Duration
	bootID   wire.XTRID

	cfgMu     sync.Mutex            // serializes SetConfig and SetLocatorUsable; guards base and withdrawn
	base      []Mapping             // the configured database
	withdrawn map[netip.Addr]string // locators registered as unusable, with why
	learned   map[netip.Addr]bool   // locators another xTR of the site withdrew (FollowMapServer)
	db        atomic.Pointer[database]
	settings  atomic.Pointer[etrSettings]
	decap     *dataplane.Decapsulator
	filter    *decapFilter // the Decapsulator's RLOC filter; own lock
	replyLim  *rate.Limiter
	smrLim    *rate.Limiter
	running   atomic.Bool
	kick      chan struct{}
	ctr       *counters
	remote    remoteITRTable // remote ITRs seen by the packet path; own lock

	mu         sync.Mutex // guards the fields below
	servers    map[netip.AddrPort]*msState
	requesters map[requester]time.Time
	smrQueue   []requester
	smrChanged time.Time // when the database last changed with SMRs queued
	nextPrune  time.Time
}

// msState is the registration state with one Map-Server. Guarded by
// ETR.mu.
type msState struct {
	cfg          MapServer
	nonces       map[uint64]time.Time // of Map-Registers not yet acknowledged
	firstSent    time.Time
	lastRegister time.Time
	lastNotify   time.Time
	nextAt       time.Time
	backoff      time.Duration
	awaiting     bool
	sent         uint64
	notifies     uint64
	authFailures uint64
	// logged is the registration state last logged (StateUp, StateDown,
	// or "" before the first), so that each change is logged once.
	logged string
}

// NewETR returns an ETR for cfg sending through out. It starts nothing: Run
// registers and drives the timers.
func NewETR(cfg ETRConfig, out Sender) (*ETR, error) {
	if out == nil {
		return nil, ErrNilSender
	}
	e := &ETR{
		out:        out,
		now:        clockOrNow(cfg.Clock),
		log:        cfg.Logger,
		logLimit:   rate.NewLimiter(rate.Every(time.Second), 10),
		tick:       withDefault(cfg.TickInterval, DefaultTickInterval),
		kick:       make(chan struct{}, 1),
		ctr:        newCounters(etrCounterNames),
		servers:    map[netip.AddrPort]*msState{},
		requesters: map[requester]time.Time{},
		withdrawn:  map[netip.Addr]string{},
		learned:    map[netip.Addr]bool{},
		decap:      dataplane.NewDecapsulator(nil),
		replyLim:   rate.NewLimiter(rate.Limit(DefaultMapReplyRate), DefaultMapReplyRate),
		smrLim:     rate.NewLimiter(rate.Limit(DefaultSMRRate), DefaultSMRRate),
	}
	e.filter = newDecapFilter(e.decap)
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.tick <= 0 {
		return nil, configError("non-positive tick interval")
	}
	for {
		e.bootID = wire.XTRID(randomXTRID())
		if e.bootID != (wire.XTRID{}) {
			break
		}
	}
	if err := e.SetConfig(cfg); err != nil {
		return nil, err
	}
	return e, nil
}

// randomXTRID returns 128 random bits.
func randomXTRID() [16]byte {
	var x [16]byte
	a, b := randomNonce(), randomNonce()
	for k := range 8 {
		x[k] = byte(a >> (8 * k))
		x[8+k] = byte(b >> (8 * k))
	}
	return x
}

// etrSettingsFrom validates the reloadable part of cfg.
func (e *ETR) etrSettingsFrom(cfg *ETRConfig) (*etrSettings, error) {
	st := &etrSettings{
		interval:  withDefault(cfg.RegisterInterval, DefaultRegisterInterval),
		proxy:     cfg.ProxyReply,
		follow:    cfg.FollowMapServer,
		xtrID:     cfg.XTRID,
		siteID:    cfg.SiteID,
		maxReq:    withDefault(cfg.MaxRequesters, DefaultMaxRequesters),
		replyRate: withDefault(cfg.MapReplyRate, DefaultMapReplyRate),
		smrRate:   withDefault(cfg.SMRRate, DefaultSMRRate),

		decapFilter: cfg.DecapFilter,
		maxGleaned:  withDefault(cfg.MaxGleanedRLOCs, DefaultMaxGleanedRLOCs),
	}
	if st.xtrID == (wire.XTRID{}) {
		st.xtrID = e.bootID
	}
	ttl := withDefault(cfg.RecordTTL, DefaultRecordTTL)
	switch {
	case st.interval <= 0:
		return nil, configError("non-positive register interval")
	case ttl < time.Minute || ttl%time.Minute != 0 || ttl/time.Minute >= 1<<32-1:
		return nil, configError("record TTL %s is not a whole number of minutes in 1..%d", ttl, uint32(1<<32-2))
	case st.maxReq < 1 || st.replyRate < 1 || st.smrRate < 1 || st.maxGleaned < 1:
		return nil, configError("non-positive limit")
	}
	for _, p := range cfg.DecapFilterAllow {
		if !p.IsValid() || p.Addr().Is4In6() {
			return nil, configError("decapsulation filter prefix %s is not an IPv4 or IPv6 prefix", p)
		}
		if p = p.Masked(); !slices.Contains(st.decapAllow, p) {
			st.decapAllow = append(st.decapAllow, p)
		}
	}
	st.ttlMinutes = uint32(ttl / time.Minute)
	for _, ms := range cfg.MapServers {
		a := ms.Address.Addr().Unmap()
		if !usableUnicast(a) {
			return nil, configError("Map-Server %s is not a unicast address", ms.Address)
		}
		ms.Address = netip.AddrPortFrom(a, withDefault(ms.Address.Port(), ControlPort))
		if len(ms.Key) == 0 {
			return nil, configError("Map-Server %s has an empty key", ms.Address)
		}
		if ms.Algorithm == wire.AlgNone || !ms.Algorithm.Known() {
			return nil, configError("Map-Server %s: unsupported algorithm %s", ms.Address, ms.Algorithm)
		}
		if slices.ContainsFunc(st.servers, func(o MapServer) bool { return o.Address == ms.Address }) {
			return nil, configError("duplicate Map-Server %s", ms.Address)
		}
		ms.Key = slices.Clone(ms.Key)
		st.servers = append(st.servers, ms)
	}
	for _, r := range cfg.LocalRLOCs {
		r = r.Unmap()
		if !usableUnicast(r) {
			return nil, configError("local RLOC %s is not a unicast address", r)
		}
		if !slices.Contains(st.local, r) {
			st.local = append(st.local, r)
		}
	}
	if len(st.local) > 32 {
		return nil, configError("%d local RLOCs: a Map-Request carries at most 32", len(st.local))
	}
	return st, nil
}

// buildDatabase validates maps and builds the database. The locators of
// each mapping are ordered by address (IPv4 before IPv6), the order in
// which Map-Servers merge them, so that a locator's ordinal (its
// Locator-Status-Bit) is the same in the ETR's own Map-Replies, in the
// Map-Server's proxy replies and in every xTR of the site. Locators in
// withdrawn are registered and answered as unusable (priority 255, R bit
// clear; see SetLocatorUsable). Locators in learned (withdrawn by another
// xTR of the site, as the Map-Server's merged registration says) are
// answered and signalled as unusable but registered as configured: this
// xTR only follows what the other one registered.
func buildDatabase(maps []Mapping, st *etrSettings, withdrawn map[netip.Addr]string, learned map[netip.Addr]bool) (*database, error) {
	db := &database{}
	var eids []dataplane.EIDPrefix
	for _, m := range maps {
		if m.InstanceID > 0xffffff {
			return nil, configError("instance-ID %d exceeds 24 bits", m.InstanceID)
		}
		if !m.Prefix.IsValid() || m.Prefix.Masked() != m.Prefix || m.Prefix.Addr().Is4In6() || m.Prefix.Addr().Zone() != "" {
			return nil, configError("invalid or unmasked EID-prefix %s", m.Prefix)
		}
		if len(m.RLOCs) == 0 || len(m.RLOCs) > 255 {
			return nil, configError("EID-prefix %s needs 1 to 255 RLOCs, has %d", m.Prefix, len(m.RLOCs))
		}
		c := Mapping{InstanceID: m.InstanceID, Prefix: m.Prefix}
		for _, l := range m.RLOCs {
			l.Addr = l.Addr.Unmap()
			if !usableUnicast(l.Addr) {
				return nil, configError("EID-prefix %s: RLOC %s is not a unicast address", m.Prefix, l.Addr)
			}
			if slices.ContainsFunc(c.RLOCs, func(o Locator) bool { return o.Addr == l.Addr }) {
				return nil, configError("EID-prefix %s: duplicate RLOC %s", m.Prefix, l.Addr)
			}
			c.RLOCs = append(c.RLOCs, l)
		}
		slices.SortFunc(c.RLOCs, func(a, b Locator) int { return a.Addr.Compare(b.Addr) })
		if slices.ContainsFunc(db.maps, func(o Mapping) bool { return o.InstanceID == c.InstanceID && o.Prefix == c.Prefix }) {
			return nil, configError("duplicate EID-prefix %s in instance %d", m.Prefix, m.InstanceID)
		}
		db.maps = append(db.maps, c)
		eids = append(eids, dataplane.EIDPrefix{InstanceID: c.InstanceID, Prefix: c.Prefix})
	}
	slices.SortFunc(db.maps, func(a, b Mapping) int {
		return cmp.Or(cmp.Compare(a.InstanceID, b.InstanceID), a.Prefix.Addr().Compare(b.Prefix.Addr()),
			cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	for _, m := range db.maps {
		rec := wire.NewEIDRecord(m.InstanceID, m.Prefix)
		rec.RecordTTL = st.ttlMinutes
		rec.Authoritative = true
		rec.Action = wire.NoAction
		for _, l := range m.RLOCs {
			loc := wire.Locator{
				Priority: l.Priority, Weight: l.Weight, MPriority: l.MPriority, MWeight: l.MWeight,
				Local:     slices.Contains(st.local, l.Addr),
				Reachable: true,
				Address:   wire.AddrFrom(l.Addr),
			}
			if _, down := withdrawn[l.Addr]; down {
				withdraw(&loc)
			}
			rec.Locators = append(rec.Locators, loc)
		}
		db.regRecords = append(db.regRecords, rec)
		if len(learned) > 0 {
			rec.Locators = slices.Clone(rec.Locators)
			for j := range rec.Locators {
				if learned[m.RLOCs[j].Addr] {
					withdraw(&rec.Locators[j])
				}
			}
		}
		db.records = append(db.records, rec)
	}
	set, err := dataplane.NewEIDSet(eids...)
	if err != nil {
		return nil, configError("%v", err)
	}
	db.eids = set
	db.computeLSBs()
	return db, nil
}

// lookup returns the index of the longest database prefix holding addr in
// instance iid, or -1. The database is small (a site's prefixes), so a scan
// is cheaper than a trie.
func (db *database) lookup(iid uint32, addr netip.Addr) int {
	best := -1
	for k := range db.maps {
		m := &db.maps[k]
		if m.InstanceID == iid && m.Prefix.Contains(addr) && (best < 0 || m.Prefix.Bits() > db.maps[best].Prefix.Bits()) {
			best = k
		}
	}
	return best
}

// find returns the index of exactly (iid, p), or -1.
func (db *database) find(iid uint32, p netip.Prefix) int {
	for k := range db.maps {
		if db.maps[k].InstanceID == iid && db.maps[k].Prefix == p {
			return k
		}
	}
	return -1
}

// SetConfig applies cfg (all of it except TickInterval, Clock and Logger):
// a changed database is published at once (Map-Requests are answered from
// it and the Decapsulator delivers for its prefixes), registered at once
// with every Map-Server, and the ITRs that recently asked for a prefix
// whose mapping changed (or went away) are sent an SMR, after the
// Map-Servers acknowledged the new registration (or two seconds at most).
// Nothing changes on error.
func (e *ETR) SetConfig(cfg ETRConfig) error {
	st, err := e.etrSettingsFrom(&cfg)
	if err != nil {
		return err
	}
	e.cfgMu.Lock()
	defer e.cfgMu.Unlock()
	db, err := buildDatabase(cfg.Database, st, e.withdrawn, e.learned)
	if err != nil {
		return err
	}
	e.base = slices.Clone(cfg.Database)
	return e.publishLocked(st, db)
}

// publishLocked makes st and db the ETR's settings and database: the
// Decapsulator and the limits follow, registrations that changed are sent
// at once, and the ITRs that asked for a changed prefix are queued for an
// SMR. e.cfgMu is held.
func (e *ETR) publishLocked(st *etrSettings, db *database) error {
	now := e.now()
	old := e.db.Load()
	oldSt := e.settings.Load()
	e.settings.Store(st)
	e.db.Store(db)
	e.decap.SetEIDs(db.eids)
	e.filter.configure(st, db)
	e.replyLim.SetLimitAt(now, rate.Limit(st.replyRate))
	e.replyLim.SetBurstAt(now, st.replyRate)
	e.smrLim.SetLimitAt(now, rate.Limit(st.smrRate))
	e.smrLim.SetBurstAt(now, st.smrRate)

	changed := changedPrefixes(old, db)
	registrationChanged := len(changed) > 0 || oldSt == nil || oldSt.proxy != st.proxy ||
		oldSt.ttlMinutes != st.ttlMinutes || oldSt.xtrID != st.xtrID || oldSt.siteID != st.siteID ||
		!slices.Equal(oldSt.local, st.local)

	e.mu.Lock()
	keep := map[netip.AddrPort]*msState{}
	for _, ms := range st.servers {
		s := e.servers[ms.Address]
		if s == nil {
			s = &msState{nonces: map[uint64]time.Time{}, nextAt: now}
		} else if registrationChanged || !sameServer(s.cfg, ms) {
			s.nextAt = now
			s.backoff = 0
		}
		s.cfg = ms
		keep[ms.Address] = s
	}
	e.servers = keep
	if old != nil && len(changed) > 0 {
		for r := range e.requesters {
			if slices.ContainsFunc(changed, func(c dataplane.EIDPrefix) bool {
				return c.InstanceID == r.iid && c.Prefix.Overlaps(r.pfx)
			}) {
				e.smrQueue = append(e.smrQueue, r)
				delete(e.requesters, r)
			}
		}
		if len(e.smrQueue) > 0 {
			e.smrChanged = now
		}
	}
	e.mu.Unlock()
	if old != nil {
		e.wake()
	}
	return nil
}

// sameServer reports whether two Map-Server configurations are equal.
func sameServer(a, b MapServer) bool {
	return a.Address == b.Address && a.KeyID == b.KeyID && a.Algorithm == b.Algorithm && string(a.Key) == string(b.Key)
}

// changedPrefixes lists the prefixes whose mapping differs between two
// databases: added, removed, or with other locators.
func changedPrefixes(old, cur *database) []dataplane.EIDPrefix {
	if old == nil {
		return nil
	}
	var out []dataplane.EIDPrefix
	for j, m := range old.maps {
		k := cur.find(m.InstanceID, m.Prefix)
		if k < 0 || !slices.Equal(cur.maps[k].RLOCs, m.RLOCs) || !sameLocators(cur.records[k].Locators, old.records[j].Locators) {
			out = append(out, dataplane.EIDPrefix{InstanceID: m.InstanceID, Prefix: m.Prefix})
		}
	}
	for _, m := range cur.maps {
		if old.find(m.InstanceID, m.Prefix) < 0 {
			out = append(out, dataplane.EIDPrefix{InstanceID: m.InstanceID, Prefix: m.Prefix})
		}
	}
	return out
}

// Decapsulator returns the Decapsulator whose EID set follows the database.
func (e *ETR) Decapsulator() *dataplane.Decapsulator { return e.decap }

// Database returns the EID database in force, sorted.
func (e *ETR) Database() []Mapping {
	db := e.db.Load()
	out := make([]Mapping, len(db.maps))
	for k, m := range db.maps {
		out[k] = Mapping{InstanceID: m.InstanceID, Prefix: m.Prefix, RLOCs: slices.Clone(m.RLOCs)}
	}
	return out
}

// XTRID returns the xTR-ID the ETR registers with, and SiteID its site-ID.
func (e *ETR) XTRID() wire.XTRID { return e.settings.Load().xtrID }

// SiteID returns the site-ID the ETR registers with.
func (e *ETR) SiteID() uint64 { return e.settings.Load().siteID }

// RecordTTL returns the Record TTL of the ETR's mappings.
func (e *ETR) RecordTTL() time.Duration {
	return time.Duration(e.settings.Load().ttlMinutes) * time.Minute
}

// Registration states.
const (
	// StateRegistering: no Map-Notify yet, for less than three register
	// intervals.
	StateRegistering = "registering"
	// StateUp: a Map-Notify acknowledged a Map-Register within the last
	// three register intervals (the Map-Server's registration timeout).
	StateUp = "up"
	// StateDown: no acknowledgment for three register intervals.
	StateDown = "down"
)

// RegistrationState is the ETR's registration with one Map-Server, as
// `lispctl etr show` displays it.
type RegistrationState struct {
	// MapServer is the Map-Server's address.
	MapServer netip.AddrPort
	// State is StateRegistering, StateUp or StateDown.
	State string
	// LastRegister is when the last Map-Register was sent (zero: never).
	LastRegister time.Time
	// LastNotify is when the last valid Map-Notify acknowledged one
	// (zero: never).
	LastNotify time.Time
	// RegistersSent, NotifiesReceived and AuthFailures count Map-Registers
	// sent, acknowledging Map-Notifies received, and Map-Notifies from it
	// that failed authentication.
	RegistersSent, NotifiesReceived, AuthFailures uint64
	// KeyID and Algorithm authenticate the registrations.
	KeyID     uint8
	Algorithm wire.AlgorithmID
}

// Registrations returns the registration state with each Map-Server, in
// configuration order.
func (e *ETR) Registrations() []RegistrationState {
	st := e.settings.Load()
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]RegistrationState, 0, len(st.servers))
	for _, ms := range st.servers {
		s := e.servers[ms.Address]
		if s == nil {
			continue
		}
		out = append(out, RegistrationState{
			MapServer:        ms.Address,
			State:            s.state(now, st.interval),
			LastRegister:     s.lastRegister,
			LastNotify:       s.lastNotify,
			RegistersSent:    s.sent,
			NotifiesReceived: s.notifies,
			AuthFailures:     s.authFailures,
			KeyID:            ms.KeyID,
			Algorithm:        ms.Algorithm,
		})
	}
	return out
}

// state computes the registration state at now.
func (s *msState) state(now time.Time, interval time.Duration) string {
	timeout := 3 * interval
	switch {
	case !s.lastNotify.IsZero() && now.Sub(s.lastNotify) <= timeout:
		return StateUp
	case s.lastNotify.IsZero() && (s.firstSent.IsZero() || now.Sub(s.firstSent) <= timeout):
		return StateRegistering
	}
	return StateDown
}

// Counters returns the ETR's counters with their stable names:
// map_registers_sent, map_register_send_errors, map_notifies_received,
// map_notifies_unsolicited, map_notify_acks_sent, map_notify_auth_failures,
// map_notify_unknown_source, map_requests_received, map_replies_sent,
// probe_replies_sent, map_requests_not_ours, map_requests_dropped,
// map_replies_rate_limited, smrs_sent, smrs_rate_limited, smrs_ignored,
// malformed, unsupported_messages, send_errors, decap_filter_learned,
// decap_filter_evicted.
func (e *ETR) Counters() []dataplane.Counter { return e.ctr.snapshot() }

// Run registers with the Map-Servers at once and then every register
// interval, retries unacknowledged registrations with backoff, and sends
// the SMRs a database change calls for, until ctx is done. It returns nil
// then, ErrRunning if another Run is active.
func (e *ETR) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer e.running.Store(false)
	t := time.NewTicker(e.tick)
	defer t.Stop()
	e.onTick(e.now()) // RoutineETRControl runs in the caller's goroutine
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.kick:
			e.onTick(e.now())
		case <-t.C:
			e.onTick(e.now())
		}
	}
}

// wake makes RoutineETRControl run its timers now.
func (e *ETR) wake() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// onTick sends the Map-Registers that are due, flushes queued SMRs, and
// forgets old requesters and the RLOCs the decapsulation filter learned
// that were not seen for a Record TTL.
func (e *ETR) onTick(now time.Time) {
	e.registerDue(now)
	e.flushSMRs(now)
	e.pruneRequesters(now)
	e.pruneGleaned(now)
}

// HandlePacket processes one control datagram received on the control
// port: a Map-Notify, an Encapsulated Map-Request forwarded by a Map-Server,
// or a Map-Request sent directly (an RLOC-probe). from is its source, local
// the address it was received on (may be the zero Addr). pkt is not
// retained.
func (e *ETR) HandlePacket(pkt []byte, from netip.AddrPort, local netip.Addr) {
	from = unmapPort(from)
	local = local.Unmap()
	msg, err := wire.Parse(pkt)
	if err != nil {
		e.ctr.inc(eMalformed)
		e.warn("malformed control message", "from", from, "reason", wire.ErrorReason(err))
		return
	}
	switch m := msg.(type) {
	case *wire.MapNotify:
		e.handleNotify(m, pkt, from)
	case *wire.ECM:
		req, ok := m.Inner.(*wire.MapRequest)
		if !ok {
			e.ctr.inc(eUnsupported)
			return
		}
		e.handleRequest(req, m, from, local)
	case *wire.MapRequest:
		e.handleRequest(m, nil, from, local)
	default:
		e.ctr.inc(eUnsupported)
	}
}

// warn logs a warning that remote peers can trigger, rate-limited.
func (e *ETR) warn(msg string, args ...any) {
	if e.logLimit.Allow() {
		e.log.Warn(msg, args...)
	}
}

// Validate reports whether NewETR or SetConfig would accept cfg, without
// changing anything.
func (cfg ETRConfig) Validate() error {
	var e ETR
	e.bootID = wire.XTRID{1}
	st, err := e.etrSettingsFrom(&cfg)
	if err != nil {
		return err
	}
	_, err = buildDatabase(cfg.Database, st, nil, nil)
	return err
}
