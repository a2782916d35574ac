package api

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"
)

// FailoverBackend is implemented by xTR daemons; the Server answers the
// failover endpoints through it (ErrUnavailable for a Backend without it):
//
//	GET  /v1/failover        FailoverStatus
//	POST /v1/failover/check  FailoverStatus (probe the sync peers now)
//	POST /v1/failover/peer   PeerOverride in, FailoverStatus out
//	POST /v1/drain           DrainRequest in, DrainResult out
//	POST /v1/undrain         FailoverStatus
type FailoverBackend interface {
	// Failover reports what this xTR claims and what it knows of the
	// other members of its site.
	Failover(ctx context.Context) (FailoverStatus, error)
	// FailoverCheck declares dead, at once, every synchronization-set
	// peer that has been silent for more than two heartbeats (the
	// explicit trigger keepalived's notify script pulls).
	FailoverCheck(ctx context.Context) (FailoverStatus, error)
	// SetPeerDown withdraws (Down) or restores an RLOC of another xTR of
	// the site by hand.
	SetPeerDown(ctx context.Context, o PeerOverride) (FailoverStatus, error)
	// Drain withdraws this xTR's RLOCs, tells the remote ITRs, waits
	// until no LISP packet arrives any more (or the drain timeout), then
	// writes the VRRP track file so that keepalived hands the gateway
	// over.
	Drain(ctx context.Context, r DrainRequest) (DrainResult, error)
	// Undrain restores this xTR's RLOCs and the track file.
	Undrain(ctx context.Context) (FailoverStatus, error)
}

// A Client is a FailoverBackend too.
var _ FailoverBackend = (*Client)(nil)

// FailoverStatus is an xTR's failover state.
type FailoverStatus struct {
	// Enabled is failover.enabled.
	Enabled bool `json:"enabled"`
	// LocalRLOCs are this xTR's RLOCs.
	LocalRLOCs []netip.Addr `json:"local_rlocs"`
	// Interfaces are the watched EID-side interfaces and LinkUp whether
	// one of them is up (true when none is watched).
	Interfaces []string `json:"interfaces"`
	LinkUp     bool     `json:"link_up"`
	// Draining is set between lispctl drain and undrain.
	Draining bool `json:"draining"`
	// Withdrawn are the locators this xTR registers as unusable.
	Withdrawn []WithdrawnRLOC `json:"withdrawn"`
	// Members are the other members of the synchronization set.
	Members []FailoverMember `json:"members"`
	// RemoteITRs are the remote ITRs that recently encapsulated to this
	// xTR (the SMR targets), newest first.
	RemoteITRs []RemoteITR `json:"remote_itrs"`
	// Withdrawals, Restorations and SMRTargets count locator changes and
	// the remote ITRs they were signalled to.
	Withdrawals  uint64 `json:"withdrawals"`
	Restorations uint64 `json:"restorations"`
	SMRTargets   uint64 `json:"smr_targets"`
}

// WithdrawnRLOC is a locator registered as unusable, and why.
type WithdrawnRLOC struct {
	Address netip.Addr `json:"address"`
	Reason  string     `json:"reason"`
}

// FailoverMember is what this xTR knows of another member of its
// synchronization set.
type FailoverMember struct {
	Name string `json:"name"`
	// Alive: connected (memberlist: alive). Known: it sent its status.
	Alive bool `json:"alive"`
	Known bool `json:"known"`
	// Serving: alive, known, and neither down nor draining.
	Serving bool         `json:"serving"`
	Reason  string       `json:"reason,omitempty"`
	RLOCs   []netip.Addr `json:"rlocs"`
	// RemoteITRs is how many remote ITRs it said it was serving.
	RemoteITRs int `json:"remote_itrs"`
}

// RemoteITR is a remote ITR that recently encapsulated to this xTR.
type RemoteITR struct {
	RLOC       netip.Addr `json:"rloc"`
	InstanceID uint32     `json:"instance_id"`
	EID        netip.Addr `json:"eid,omitzero"`
	LastSeen   time.Time  `json:"last_seen"`
}

// PeerOverride withdraws or restores another xTR's RLOC by hand.
type PeerOverride struct {
	RLOC netip.Addr `json:"rloc"`
	Down bool       `json:"down"`
}

// DrainRequest asks for a drain; Timeout 0 means failover.drain-timeout.
type DrainRequest struct {
	Timeout time.Duration `json:"timeout_ns,omitempty"`
}

// DrainResult says how a drain went.
type DrainResult struct {
	Status FailoverStatus `json:"status"`
	// Quiet: the ingress moved (no LISP packet for failover.drain-quiet)
	// before the timeout.
	Quiet bool `json:"quiet"`
	// Waited is how long the drain waited for the ingress to move.
	Waited time.Duration `json:"waited_ns"`
	// PacketsDuring counts the LISP packets received while waiting.
	PacketsDuring uint64 `json:"packets_during"`
	// TrackFile is the VRRP track file written ("" when none is set).
	TrackFile string `json:"track_file,omitempty"`
}

func (s *Server) failoverBackend() (FailoverBackend, error) {
	b, ok := s.backend.(FailoverBackend)
	if !ok {
		return nil, WithKind(ErrUnavailable, errors.New("this daemon does not play an xTR role"))
	}
	return b, nil
}

func (s *Server) failover(r *http.Request) (any, error) {
	b, err := s.failoverBackend()
	if err != nil {
		return nil, err
	}
	return b.Failover(r.Context())
}

func (s *Server) failoverCheck(r *http.Request) (any, error) {
	b, err := s.failoverBackend()
	if err != nil {
		return nil, err
	}
	return b.FailoverCheck(r.Context())
}

func (s *Server) failoverPeer(r *http.Request) (any, error) {
	b, err := s.failoverBackend()
	if err != nil {
		return nil, err
	}
	var o PeerOverride
	if err := decodeBody(r, &o); err != nil {
		return nil, err
	}
	if !o.RLOC.IsValid() {
		return nil, WithKind(ErrInvalidArgument, errors.New("an RLOC address is required"))
	}
	return b.SetPeerDown(r.Context(), o)
}

func (s *Server) drain(r *http.Request) (any, error) {
	b, err := s.failoverBackend()
	if err != nil {
		return nil, err
	}
	var q DrainRequest
	if r.ContentLength != 0 {
		if err := decodeBody(r, &q); err != nil {
			return nil, err
		}
	}
	if q.Timeout < 0 {
		return nil, WithKind(ErrInvalidArgument, errors.New("a negative drain timeout"))
	}
	return b.Drain(r.Context(), q)
}

func (s *Server) undrain(r *http.Request) (any, error) {
	b, err := s.failoverBackend()
	if err != nil {
		return nil, err
	}
	return b.Undrain(r.Context())
}

// Failover returns the xTR's failover state.
func (c *Client) Failover(ctx context.Context) (FailoverStatus, error) {
	var st FailoverStatus
	err := c.do(ctx, http.MethodGet, "/v1/failover", nil, &st)
	return st, err
}

// FailoverCheck asks the daemon to declare silent sync peers dead now.
func (c *Client) FailoverCheck(ctx context.Context) (FailoverStatus, error) {
	var st FailoverStatus
	err := c.do(ctx, http.MethodPost, "/v1/failover/check", nil, &st)
	return st, err
}

// SetPeerDown withdraws or restores another xTR's RLOC by hand.
func (c *Client) SetPeerDown(ctx context.Context, o PeerOverride) (FailoverStatus, error) {
	var st FailoverStatus
	err := c.do(ctx, http.MethodPost, "/v1/failover/peer", o, &st)
	return st, err
}

// Drain drains this xTR (see FailoverBackend.Drain). The request may take
// up to the drain timeout: give the Client a longer timeout than that.
func (c *Client) Drain(ctx context.Context, r DrainRequest) (DrainResult, error) {
	var res DrainResult
	err := c.do(ctx, http.MethodPost, "/v1/drain", r, &res)
	return res, err
}

// Undrain restores this xTR after a drain.
func (c *Client) Undrain(ctx context.Context) (FailoverStatus, error) {
	var st FailoverStatus
	err := c.do(ctx, http.MethodPost, "/v1/undrain", nil, &st)
	return st, err
}
