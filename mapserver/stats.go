package mapserver

import (
	"sync"
	"sync/atomic"
)

// counter indexes the Server's atomic counters.
type counter int

const (
	cRegisterOK counter = iota
	cRegisterAuthFailure
	cRegisterUnknownSite
	cRegisterPrefixNotAllowed
	cRegisterNoRecords
	cDeregistered
	cExpired
	cDroppedByConfig
	cNotifySent
	cNotifyRetransmitted
	cNotifyAcked
	cNotifyGivenUp
	cNotifyAckUnknown
	cNotifyAckAuthFailure
	cRequestsReceived
	cRequestsForwarded
	cRequestsProxyReplied
	cRequestsDropped
	cSMRIgnored
	cNegativeReplies
	cNegativeNotRegistered
	cNegativeNotConfigured
	cMRRequestsReceived
	cMRForwardedLocal
	cMRForwardedRemote
	cMRNegative
	cUnsupportedType
	cWrongRole
	cSendErrors
	cSubCreated
	cSubConfirmed
	cSubRefreshed
	cSubIgnored
	cSubRefusedLimit
	cSubReplays
	cSubUnknownUnsubscribe
	cSubUnsubscribed
	cSubExpired
	cSubRemovedUnacked
	cPublications
	cPubSubNotifySent
	cPubSubNotifyRetransmitted
	cPubSubAcked
	cPubSubGivenUp
	cPubSubAckAuthFailure
	cPubSubPendingOverflow
	cSubNonceResets
	cRegisterReplays
	cRefusedSitePrefixes
	cRefusedSiteRegistrations
	cRefusedGlobal
	cReplaced
	cNotifySuppressed
	cStateWrites
	cStateWriteErrors
	cStateRestored
	cRegisterNonceResets
	numCounters
)

// counterNames are the stable names of the counters, as Stats.Each reports
// them; the index is the counter.
var counterNames = [numCounters]string{
	cRegisterOK:                "register_ok",
	cRegisterAuthFailure:       "register_auth_failure",
	cRegisterUnknownSite:       "register_unknown_site",
	cRegisterPrefixNotAllowed:  "register_prefix_not_allowed",
	cRegisterNoRecords:         "register_no_records",
	cDeregistered:              "deregistered",
	cExpired:                   "expired",
	cDroppedByConfig:           "dropped_by_config",
	cNotifySent:                "map_notify_sent",
	cNotifyRetransmitted:       "map_notify_retransmitted",
	cNotifyAcked:               "map_notify_acked",
	cNotifyGivenUp:             "map_notify_given_up",
	cNotifyAckUnknown:          "map_notify_ack_unknown",
	cNotifyAckAuthFailure:      "map_notify_ack_auth_failure",
	cRequestsReceived:          "requests_received",
	cRequestsForwarded:         "requests_forwarded_to_etr",
	cRequestsProxyReplied:      "requests_proxy_replied",
	cRequestsDropped:           "requests_dropped",
	cSMRIgnored:                "smr_ignored",
	cNegativeReplies:           "negative_replies",
	cNegativeNotRegistered:     "negative_not_registered",
	cNegativeNotConfigured:     "negative_not_configured",
	cMRRequestsReceived:        "mr_requests_received",
	cMRForwardedLocal:          "mr_forwarded_local",
	cMRForwardedRemote:         "mr_forwarded_remote",
	cMRNegative:                "mr_negative",
	cUnsupportedType:           "unsupported_type",
	cWrongRole:                 "wrong_role",
	cSendErrors:                "send_errors",
	cSubCreated:                "subscriptions_created",
	cSubConfirmed:              "subscriptions_confirmed",
	cSubRefreshed:              "subscriptions_refreshed",
	cSubIgnored:                "subscriptions_ignored",
	cSubRefusedLimit:           "subscriptions_refused_limit",
	cSubReplays:                "subscriptions_replays",
	cSubUnknownUnsubscribe:     "unsubscribe_unknown",
	cSubUnsubscribed:           "subscriptions_unsubscribed",
	cSubExpired:                "subscriptions_expired",
	cSubRemovedUnacked:         "subscriptions_removed_unacked",
	cPublications:              "publications",
	cPubSubNotifySent:          "pubsub_map_notify_sent",
	cPubSubNotifyRetransmitted: "pubsub_map_notify_retransmitted",
	cPubSubAcked:               "pubsub_map_notify_acked",
	cPubSubGivenUp:             "pubsub_map_notify_given_up",
	cPubSubAckAuthFailure:      "pubsub_ack_auth_failure",
	cPubSubPendingOverflow:     "pubsub_pending_overflow",
	cSubNonceResets:            "subscriptions_nonce_resets",
	cRegisterReplays:           "register_replays",
	cRefusedSitePrefixes:       "register_refused_limit_site_prefixes",
	cRefusedSiteRegistrations:  "register_refused_limit_site_registrations",
	cRefusedGlobal:             "register_refused_limit_global",
	cReplaced:                  "registrations_replaced",
	cNotifySuppressed:          "map_notify_suppressed",
	cStateWrites:               "state_writes",
	cStateWriteErrors:          "state_write_errors",
	cStateRestored:             "state_restored",
	cRegisterNonceResets:       "register_nonce_resets",
}

// counters are the Server's outcome counters; all atomic.
type counters struct {
	c [numCounters]atomic.Uint64
	// malformed counts unparsable datagrams by wire.ErrorReason label:
	// string -> *atomic.Uint64. The label set is small and fixed by wire.
	malformed sync.Map
}

func (c *counters) inc(k counter) { c.c[k].Add(1) }

func (c *counters) add(k counter, n uint64) { c.c[k].Add(n) }

func (c *counters) incMalformed(reason string) {
	v, ok := c.malformed.Load(reason)
	if !ok {
		v, _ = c.malformed.LoadOrStore(reason, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// Stats is a snapshot of the Server's counters. Field comments give the
// stable name Each reports for each counter.
type Stats struct {
	// RegisterOK counts Map-Registers accepted ("register_ok").
	RegisterOK uint64
	// RegisterAuthFailure counts Map-Registers whose Key ID, algorithm or
	// authentication data did not match the site ("register_auth_failure").
	RegisterAuthFailure uint64
	// RegisterUnknownSite counts Map-Registers none of whose records lies
	// in a configured site prefix ("register_unknown_site").
	RegisterUnknownSite uint64
	// RegisterPrefixNotAllowed counts Map-Registers refused because a record
	// lies outside the site, in another site, or is more specific than a
	// prefix that does not accept more-specifics
	// ("register_prefix_not_allowed").
	RegisterPrefixNotAllowed uint64
	// RegisterNoRecords counts Map-Registers with no EID record
	// ("register_no_records").
	RegisterNoRecords uint64
	// Deregistered counts registrations removed by a record TTL of 0
	// ("deregistered").
	Deregistered uint64
	// Expired counts registrations that timed out ("expired").
	Expired uint64
	// DroppedByConfig counts registrations dropped because SetSites removed
	// their site or prefix ("dropped_by_config").
	DroppedByConfig uint64
	// MapNotifySent counts Map-Notify messages sent, acknowledgments of
	// Map-Registers and first transmissions of unsolicited ones
	// ("map_notify_sent").
	MapNotifySent uint64
	// MapNotifyRetransmitted counts retransmissions of unsolicited
	// Map-Notify messages ("map_notify_retransmitted").
	MapNotifyRetransmitted uint64
	// MapNotifyAcked counts unsolicited Map-Notify messages acknowledged by
	// a valid Map-Notify-Ack ("map_notify_acked").
	MapNotifyAcked uint64
	// MapNotifyGivenUp counts unsolicited Map-Notify messages abandoned
	// after the last retransmission ("map_notify_given_up").
	MapNotifyGivenUp uint64
	// MapNotifyAckUnknown counts Map-Notify-Acks whose nonce matches no
	// outstanding Map-Notify ("map_notify_ack_unknown").
	MapNotifyAckUnknown uint64
	// MapNotifyAckAuthFailure counts Map-Notify-Acks that failed
	// authentication ("map_notify_ack_auth_failure").
	MapNotifyAckAuthFailure uint64
	// RequestsReceived counts Map-Requests handled by the Map-Server
	// ("requests_received").
	RequestsReceived uint64
	// RequestsForwardedToETR counts Map-Requests forwarded to a registered
	// ETR ("requests_forwarded_to_etr").
	RequestsForwardedToETR uint64
	// RequestsProxyReplied counts Map-Requests answered by proxy
	// ("requests_proxy_replied").
	RequestsProxyReplied uint64
	// RequestsDropped counts Map-Requests that could not be answered: no
	// EID record, a non-IP EID, no usable ITR-RLOC or ETR
	// ("requests_dropped").
	RequestsDropped uint64
	// SMRIgnored counts Solicit-Map-Requests, which are meant for ITRs
	// ("smr_ignored").
	SMRIgnored uint64
	// NegativeReplies counts negative Map-Replies sent by either role
	// ("negative_replies").
	NegativeReplies uint64
	// NegativeNotRegistered counts negative Map-Replies for an EID in a
	// configured prefix that is not registered ("negative_not_registered").
	NegativeNotRegistered uint64
	// NegativeNotConfigured counts the Map-Server's negative Map-Replies for
	// an EID in no configured prefix ("negative_not_configured").
	NegativeNotConfigured uint64
	// MRRequestsReceived counts Encapsulated Map-Requests handled by the
	// Map-Resolver ("mr_requests_received").
	MRRequestsReceived uint64
	// MRForwardedLocal counts Map-Resolver requests handed to the local
	// Map-Server ("mr_forwarded_local").
	MRForwardedLocal uint64
	// MRForwardedRemote counts Map-Resolver requests forwarded to a remote
	// Map-Server ("mr_forwarded_remote").
	MRForwardedRemote uint64
	// MRNegative counts negative Map-Replies the Map-Resolver sent itself
	// ("mr_negative").
	MRNegative uint64
	// UnsupportedType counts messages of a type the server does not handle
	// ("unsupported_type").
	UnsupportedType uint64
	// WrongRole counts messages for a role this server does not play
	// ("wrong_role").
	WrongRole uint64
	// SendErrors counts datagrams the Sender failed to send
	// ("send_errors").
	SendErrors uint64
	// SubscriptionsCreated counts subscriptions created by subscribing Map-Requests ("subscriptions_created").
	SubscriptionsCreated uint64
	// SubscriptionsConfirmed counts subscriptions whose first confirmation was acknowledged ("subscriptions_confirmed").
	SubscriptionsConfirmed uint64
	// SubscriptionsRefreshed counts confirmed subscriptions renewed by an acknowledged new request ("subscriptions_refreshed").
	SubscriptionsRefreshed uint64
	// SubscriptionsIgnored counts subscribing Map-Requests answered without a subscription because pub/sub is off ("subscriptions_ignored").
	SubscriptionsIgnored uint64
	// SubscriptionsRefusedLimit counts subscriptions refused by the limits (total, per ITR address) ("subscriptions_refused_limit").
	SubscriptionsRefusedLimit uint64
	// SubscriptionsReplays counts subscribing Map-Requests whose nonce was not newer than the last acknowledged one (replays, or an xTR that restarted); nothing changes unless the confirmation is acknowledged ("subscriptions_replays").
	SubscriptionsReplays uint64
	// UnsubscribeUnknown counts unsubscriptions for no subscription of the xTR-ID ("unsubscribe_unknown").
	UnsubscribeUnknown uint64
	// SubscriptionsUnsubscribed counts subscriptions removed by an acknowledged unsubscription ("subscriptions_unsubscribed").
	SubscriptionsUnsubscribed uint64
	// SubscriptionsExpired counts subscriptions that expired without a refresh ("subscriptions_expired").
	SubscriptionsExpired uint64
	// SubscriptionsRemovedUnacked counts subscriptions removed because their Map-Notify was never acknowledged ("subscriptions_removed_unacked").
	SubscriptionsRemovedUnacked uint64
	// Publications counts Map-Notifies that published a change to a subscriber (first transmissions) ("publications").
	Publications uint64
	// PubSubMapNotifySent counts pub/sub Map-Notifies sent (confirmations, publications, notices; first transmissions) ("pubsub_map_notify_sent").
	PubSubMapNotifySent uint64
	// PubSubMapNotifyRetransmitted counts retransmissions of pub/sub Map-Notifies ("pubsub_map_notify_retransmitted").
	PubSubMapNotifyRetransmitted uint64
	// PubSubMapNotifyAcked counts pub/sub Map-Notifies acknowledged by a valid Map-Notify-Ack ("pubsub_map_notify_acked").
	PubSubMapNotifyAcked uint64
	// PubSubMapNotifyGivenUp counts pub/sub Map-Notifies abandoned after the last retransmission ("pubsub_map_notify_given_up").
	PubSubMapNotifyGivenUp uint64
	// PubSubAckAuthFailure counts pub/sub Map-Notify-Acks that failed authentication ("pubsub_ack_auth_failure").
	PubSubAckAuthFailure uint64
	// PubSubPendingOverflow counts pub/sub Map-Notifies sent once, untracked, because the bound on unacknowledged ones was reached ("pubsub_pending_overflow").
	PubSubPendingOverflow uint64
	// SubscriptionsNonceResets counts subscriptions whose xTR acknowledged a request older than its last one (it restarted and lost its nonces): their nonce sequence starts again ("subscriptions_nonce_resets").
	SubscriptionsNonceResets uint64
	// RegisterReplays counts authenticated Map-Registers refused as replays
	// of a register already superseded (replay.go) ("register_replays").
	RegisterReplays uint64
	// RegisterRefusedLimitSitePrefixes counts EID-records of Map-Registers
	// refused because their site registered Site.MaxPrefixes prefixes
	// ("register_refused_limit_site_prefixes").
	RegisterRefusedLimitSitePrefixes uint64
	// RegisterRefusedLimitSiteRegistrations counts EID-records refused
	// because their site has Site.MaxRegistrations registrations
	// ("register_refused_limit_site_registrations").
	RegisterRefusedLimitSiteRegistrations uint64
	// RegisterRefusedLimitGlobal counts EID-records refused because the
	// Map-Server holds Config.MaxRegistrations registrations
	// ("register_refused_limit_global").
	RegisterRefusedLimitGlobal uint64
	// RegistrationsReplaced counts registrations removed because another
	// xTR registered the prefix and the site's policy replaces them
	// ("registrations_replaced").
	RegistrationsReplaced uint64
	// MapNotifySuppressed counts unsolicited Map-Notifies not sent because
	// their xTR left the last ones unacknowledged ("map_notify_suppressed").
	MapNotifySuppressed uint64
	// StateWrites counts writes of the state file ("state_writes").
	StateWrites uint64
	// StateWriteErrors counts failed writes of the state file
	// ("state_write_errors").
	StateWriteErrors uint64
	// StateRestored counts registrations restored from the state file at
	// start ("state_restored").
	StateRestored uint64
	// RegisterNonceResets counts Map-Registers accepted although their
	// time-like nonce was older than the xTR-ID's last, because its
	// registers had been refused for that alone for a minute: its clock
	// went back ("register_nonce_resets").
	RegisterNonceResets uint64
	// Subscriptions is the number of live pub/sub subscriptions.
	Subscriptions int
	// PubSubPending is the number of pub/sub Map-Notifies awaiting an ack.
	PubSubPending int
	// Malformed counts datagrams that could not be parsed, by
	// wire.ErrorReason label (reported by Each as "malformed_<label>").
	Malformed map[string]uint64
	// SiteRegistrations is the number of live registrations (EID-prefix
	// and xTR pairs) per site, including sites with none.
	SiteRegistrations map[string]int
}

// fields returns pointers to the counter fields of s, indexed by counter.
func (s *Stats) fields() [numCounters]*uint64 {
	return [numCounters]*uint64{
		cRegisterOK:                &s.RegisterOK,
		cRegisterAuthFailure:       &s.RegisterAuthFailure,
		cRegisterUnknownSite:       &s.RegisterUnknownSite,
		cRegisterPrefixNotAllowed:  &s.RegisterPrefixNotAllowed,
		cRegisterNoRecords:         &s.RegisterNoRecords,
		cDeregistered:              &s.Deregistered,
		cExpired:                   &s.Expired,
		cDroppedByConfig:           &s.DroppedByConfig,
		cNotifySent:                &s.MapNotifySent,
		cNotifyRetransmitted:       &s.MapNotifyRetransmitted,
		cNotifyAcked:               &s.MapNotifyAcked,
		cNotifyGivenUp:             &s.MapNotifyGivenUp,
		cNotifyAckUnknown:          &s.MapNotifyAckUnknown,
		cNotifyAckAuthFailure:      &s.MapNotifyAckAuthFailure,
		cRequestsReceived:          &s.RequestsReceived,
		cRequestsForwarded:         &s.RequestsForwardedToETR,
		cRequestsProxyReplied:      &s.RequestsProxyReplied,
		cRequestsDropped:           &s.RequestsDropped,
		cSMRIgnored:                &s.SMRIgnored,
		cNegativeReplies:           &s.NegativeReplies,
		cNegativeNotRegistered:     &s.NegativeNotRegistered,
		cNegativeNotConfigured:     &s.NegativeNotConfigured,
		cMRRequestsReceived:        &s.MRRequestsReceived,
		cMRForwardedLocal:          &s.MRForwardedLocal,
		cMRForwardedRemote:         &s.MRForwardedRemote,
		cMRNegative:                &s.MRNegative,
		cUnsupportedType:           &s.UnsupportedType,
		cWrongRole:                 &s.WrongRole,
		cSendErrors:                &s.SendErrors,
		cSubCreated:                &s.SubscriptionsCreated,
		cSubConfirmed:              &s.SubscriptionsConfirmed,
		cSubRefreshed:              &s.SubscriptionsRefreshed,
		cSubIgnored:                &s.SubscriptionsIgnored,
		cSubRefusedLimit:           &s.SubscriptionsRefusedLimit,
		cSubReplays:                &s.SubscriptionsReplays,
		cSubUnknownUnsubscribe:     &s.UnsubscribeUnknown,
		cSubUnsubscribed:           &s.SubscriptionsUnsubscribed,
		cSubExpired:                &s.SubscriptionsExpired,
		cSubRemovedUnacked:         &s.SubscriptionsRemovedUnacked,
		cPublications:              &s.Publications,
		cPubSubNotifySent:          &s.PubSubMapNotifySent,
		cPubSubNotifyRetransmitted: &s.PubSubMapNotifyRetransmitted,
		cPubSubAcked:               &s.PubSubMapNotifyAcked,
		cPubSubGivenUp:             &s.PubSubMapNotifyGivenUp,
		cPubSubAckAuthFailure:      &s.PubSubAckAuthFailure,
		cPubSubPendingOverflow:     &s.PubSubPendingOverflow,
		cSubNonceResets:            &s.SubscriptionsNonceResets,
		cRegisterReplays:           &s.RegisterReplays,
		cRefusedSitePrefixes:       &s.RegisterRefusedLimitSitePrefixes,
		cRefusedSiteRegistrations:  &s.RegisterRefusedLimitSiteRegistrations,
		cRefusedGlobal:             &s.RegisterRefusedLimitGlobal,
		cReplaced:                  &s.RegistrationsReplaced,
		cNotifySuppressed:          &s.MapNotifySuppressed,
		cStateWrites:               &s.StateWrites,
		cStateWriteErrors:          &s.StateWriteErrors,
		cStateRestored:             &s.StateRestored,
		cRegisterNonceResets:       &s.RegisterNonceResets,
	}
}

// Each calls fn with the stable name and value of every counter, in a fixed
// order, then "malformed_<reason>" for each malformed-datagram reason seen.
// Per-site registration counts are in SiteRegistrations.
func (s *Stats) Each(fn func(name string, value uint64)) {
	for i, p := range s.fields() {
		fn(counterNames[i], *p)
	}
	for _, r := range sortedKeys(s.Malformed) {
		fn("malformed_"+r, s.Malformed[r])
	}
}

// snapshot copies the counters into a Stats.
func (c *counters) snapshot() Stats {
	var s Stats
	for i, p := range s.fields() {
		*p = c.c[i].Load()
	}
	s.Malformed = make(map[string]uint64)
	c.malformed.Range(func(k, v any) bool {
		s.Malformed[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return s
}
