package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// PubSubBackend is implemented by daemons that can hold publish/subscribe
// (RFC 9437) subscriptions: a Map-Server's subscribers, an ITR's own
// subscriptions. The Server answers GET /v1/subscriptions through it
// (ErrUnavailable for a Backend without it). It is separate from Backend so
// that existing Backends keep compiling.
type PubSubBackend interface {
	// Subscriptions lists the Map-Server's subscriptions and the ITR's,
	// each nil when the daemon does not play the role (ErrUnavailable
	// when it plays neither).
	Subscriptions(ctx context.Context) (Subscriptions, error)
}

// A Client is a PubSubBackend too.
var _ PubSubBackend = (*Client)(nil)

// Subscriptions is the answer of GET /v1/subscriptions. A list is absent
// when the daemon does not play its role, and [] when it does and holds
// none.
type Subscriptions struct {
	// MapServer are the subscriptions the Map-Server holds (ms role),
	// ordered by instance-ID, prefix and xTR-ID.
	MapServer []MapServerSubscription `json:"map_server,omitzero"`
	// ITR are the ITR's own subscriptions (itr role), ordered by
	// instance-ID and prefix.
	ITR []ITRSubscription `json:"itr,omitzero"`
}

// MapServerSubscription is one subscription a Map-Server holds: an xTR
// that asked to be told of every change of an EID-prefix's mapping.
type MapServerSubscription struct {
	// InstanceID and Prefix are the subscribed EID-prefix: the registered
	// prefix that held the EID asked for, or the negative prefix when
	// none did.
	InstanceID uint32       `json:"iid"`
	Prefix     netip.Prefix `json:"prefix"`
	// XTRID and SiteID identify the subscriber (the I bit of its
	// Map-Request).
	XTRID  XTRID  `json:"xtr_id"`
	SiteID uint64 `json:"site_id"`
	// ITR is where its Map-Notifies go: the ITR-RLOC and port of its last
	// acknowledged Map-Request.
	ITR netip.AddrPort `json:"itr"`
	// Confirmed is set once the subscriber acknowledged a confirmation
	// (with the pub/sub key); until then the subscription is pending.
	Confirmed bool `json:"confirmed"`
	// Negative is set for a subscription to an EID no ETR registered.
	Negative bool `json:"negative"`
	// Nonce is the nonce of the last Map-Notify sent to it, or of its
	// last acknowledged Map-Request if larger.
	Nonce Nonce `json:"nonce"`
	// Expires is when it goes away unless the subscriber renews it.
	Expires time.Time `json:"expires"`
	// Pending counts its Map-Notifies awaiting a Map-Notify-Ack.
	Pending int `json:"pending"`
}

// ITRSubscription is one of an ITR's own subscriptions.
type ITRSubscription struct {
	// InstanceID and Prefix are the subscribed EID-prefix: the prefix of
	// the Map-Server's confirmation.
	InstanceID uint32       `json:"iid"`
	Prefix     netip.Prefix `json:"prefix"`
	// MapServer is the source of the last Map-Notify accepted for it.
	MapServer netip.Addr `json:"map_server,omitzero"`
	// Nonce is the larger of the nonces of the last subscribing
	// Map-Request sent for it and of the last Map-Notify accepted for it.
	Nonce Nonce `json:"nonce"`
	// Subscribed is when the Map-Server last confirmed it; absent if
	// never.
	Subscribed time.Time `json:"subscribed,omitzero"`
	// LastNotify is when a Map-Notify for it was last accepted; absent if
	// never.
	LastNotify time.Time `json:"last_notify,omitzero"`
	// Notifies counts the Map-Notifies accepted for it, confirmations
	// included.
	Notifies uint64 `json:"notifies"`
}

// Nonce is a 64-bit LISP nonce. Its JSON form is a string, "0x" and 16
// lowercase hex digits (as lispctl decode prints nonces), so that tools
// whose numbers are doubles (jq, JavaScript) keep every bit.
type Nonce uint64

// String returns "0x" and 16 hex digits.
func (n Nonce) String() string { return fmt.Sprintf("0x%016x", uint64(n)) }

// MarshalText implements encoding.TextMarshaler.
func (n Nonce) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: "0x" and 1 to 16 hex
// digits.
func (n *Nonce) UnmarshalText(b []byte) error {
	s, ok := strings.CutPrefix(string(b), "0x")
	if !ok || s == "" {
		return errors.New(`api: a nonce is "0x" and up to 16 hex digits`)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return errors.New(`api: a nonce is "0x" and up to 16 hex digits`)
	}
	*n = Nonce(v)
	return nil
}

func (s *Server) subscriptions(r *http.Request) (any, error) {
	b, ok := s.backend.(PubSubBackend)
	if !ok {
		return nil, WithKind(ErrUnavailable, errors.New("this daemon has no publish/subscribe"))
	}
	return b.Subscriptions(r.Context())
}

// Subscriptions returns the publish/subscribe subscriptions of the
// Map-Server and of the ITR.
func (c *Client) Subscriptions(ctx context.Context) (Subscriptions, error) {
	var subs Subscriptions
	err := c.do(ctx, http.MethodGet, "/v1/subscriptions", nil, &subs)
	return subs, err
}
