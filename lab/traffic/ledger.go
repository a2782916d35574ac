package traffic

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Flow is one ping stream: a host pinging one destination.
type Flow struct {
	// ID is the flow's ICMP identifier; IDs of one ledger are 1..n in
	// order.
	ID uint16 `json:"id"`
	// Host names the pinging host ("USR1").
	Host string `json:"host"`
	// Src and Dst are the host's and the destination's addresses (EIDs).
	Src netip.Addr `json:"src"`
	Dst netip.Addr `json:"dst"`
}

// String formats the flow as "USR1->198.18.3.1".
func (f Flow) String() string { return fmt.Sprintf("%s->%s", f.Host, f.Dst) }

// record is what was observed of one echo request and its reply.
type record struct {
	sent, handed, lanDrop, arrived, replied, received time.Time
	// gateway is the router the LAN handed the request to, or whose
	// dead link it was sent to (lanDrop).
	gateway string
	// replyVia is the router whose ETR put the reply on the LAN;
	// replyDropped says the LAN dropped it because that router's link
	// was down.
	replyVia     string
	replyDropped bool
}

// Ledger records what happened to every echo request of a fixed set of
// flows and classifies each request when the run is over. Its methods are
// safe for concurrent use; an event for an unknown flow or sequence number
// is counted (Unexpected), never a panic.
type Ledger struct {
	flows []Flow
	byKey map[flowKey]int

	mu         sync.Mutex
	recs       [][]record // [flow index][seq-1]
	unexpected uint64
}

type flowKey struct {
	id       uint16
	src, dst netip.Addr
}

// NewLedger returns a ledger for flows, whose IDs must be 1..len(flows) in
// order and whose addresses must be IPv4.
func NewLedger(flows []Flow) (*Ledger, error) {
	if len(flows) == 0 || len(flows) > 65535 {
		return nil, fmt.Errorf("%w: %d flows", ErrInvalid, len(flows))
	}
	l := &Ledger{flows: append([]Flow(nil), flows...), byKey: map[flowKey]int{}, recs: make([][]record, len(flows))}
	for i, f := range flows {
		if int(f.ID) != i+1 {
			return nil, fmt.Errorf("%w: flow %d has ID %d, want %d", ErrInvalid, i, f.ID, i+1)
		}
		if !f.Src.Is4() || !f.Dst.Is4() {
			return nil, fmt.Errorf("%w: flow %s: addresses must be IPv4", ErrInvalid, f)
		}
		l.byKey[flowKey{f.ID, f.Src, f.Dst}] = i
	}
	return l, nil
}

// Flows returns the ledger's flows.
func (l *Ledger) Flows() []Flow { return append([]Flow(nil), l.flows...) }

// Flow returns the flow with the given ID.
func (l *Ledger) Flow(id uint16) (Flow, bool) {
	if id == 0 || int(id) > len(l.flows) {
		return Flow{}, false
	}
	return l.flows[id-1], true
}

// Request returns the echo request seq of flow id.
func (l *Ledger) Request(id, seq uint16) ([]byte, error) {
	f, ok := l.Flow(id)
	if !ok {
		return nil, fmt.Errorf("%w: no flow %d", ErrInvalid, id)
	}
	return Echo{Src: f.Src, Dst: f.Dst, Type: EchoRequest, ID: id, Seq: seq, Payload: payload[:]}.AppendBinary(nil)
}

// payload is the echo data, as Linux ping's 56 bytes.
var payload [56]byte

// index finds the flow of an echo packet (request or reply).
func (l *Ledger) index(e Echo) (int, bool) {
	k := flowKey{e.ID, e.Src, e.Dst}
	if e.Type == EchoReply {
		k.src, k.dst = e.Dst, e.Src
	}
	i, ok := l.byKey[k]
	return i, ok && e.Seq != 0
}

// at returns the record of seq in flow i, growing the slice; mu held.
func (l *Ledger) at(i int, seq uint16) *record {
	for len(l.recs[i]) < int(seq) {
		l.recs[i] = append(l.recs[i], record{})
	}
	return &l.recs[i][seq-1]
}

// update applies fn to the record of the echo packet pkt; it returns the
// parsed packet, or an error (and counts it) when pkt is not one of the
// ledger's.
func (l *Ledger) update(pkt []byte, fn func(*record)) (Echo, error) {
	e, err := ParseEcho(pkt)
	if err != nil {
		l.mu.Lock()
		l.unexpected++
		l.mu.Unlock()
		return e, err
	}
	i, ok := l.index(e)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok {
		l.unexpected++
		return e, fmt.Errorf("%w: echo %s->%s id %d seq %d is not one of the lab's flows", ErrInvalid, e.Src, e.Dst, e.ID, e.Seq)
	}
	fn(l.at(i, e.Seq))
	return e, nil
}

// Sent records that a host sent the echo request pkt at t.
func (l *Ledger) Sent(pkt []byte, t time.Time) error {
	_, err := l.update(pkt, func(r *record) { r.sent = t })
	return err
}

// Handed records that the LAN delivered the request pkt to router (its
// gateway) at t.
func (l *Ledger) Handed(pkt []byte, router string, t time.Time) error {
	_, err := l.update(pkt, func(r *record) { r.handed, r.gateway = t, router })
	return err
}

// LANDropped records that the LAN dropped the request pkt at t because the
// gateway address resolved to router, whose link was down (or to no router
// when router is "").
func (l *Ledger) LANDropped(pkt []byte, router string, t time.Time) error {
	_, err := l.update(pkt, func(r *record) { r.lanDrop, r.gateway = t, router })
	return err
}

// Answer records that the destination received the echo request pkt at t
// (the one-way count) and returns the echo reply it answers with.
func (l *Ledger) Answer(pkt []byte, t time.Time) ([]byte, error) {
	e, err := l.update(pkt, func(r *record) { r.arrived = t })
	if err != nil {
		return nil, err
	}
	if e.Type != EchoRequest {
		return nil, fmt.Errorf("%w: not an echo request", ErrNotEcho)
	}
	return Echo{Src: e.Dst, Dst: e.Src, Type: EchoReply, ID: e.ID, Seq: e.Seq, Payload: e.Payload}.AppendBinary(nil)
}

// Arrived records that the destination received the echo request pkt at t,
// when something else (a kernel) answers it.
func (l *Ledger) Arrived(pkt []byte, t time.Time) error {
	_, err := l.update(pkt, func(r *record) { r.arrived = t })
	return err
}

// ReplyOut records that router's ETR put the echo reply pkt on the LAN at
// t; dropped says the LAN dropped it because the router's link was down.
func (l *Ledger) ReplyOut(pkt []byte, router string, dropped bool, t time.Time) error {
	_, err := l.update(pkt, func(r *record) { r.replied, r.replyVia, r.replyDropped = t, router, dropped })
	return err
}

// Received records that the host received the echo reply pkt at t.
func (l *Ledger) Received(pkt []byte, t time.Time) error {
	_, err := l.update(pkt, func(r *record) { r.received = t })
	return err
}

// Unexpected counts packets given to the ledger that were not echo
// packets of its flows.
func (l *Ledger) Unexpected() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unexpected
}

// FirstHanded returns when router first received a request of flow id
// from the LAN, and false if it never did.
func (l *Ledger) FirstHanded(id uint16, router string) (time.Time, bool) {
	if id == 0 || int(id) > len(l.flows) {
		return time.Time{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, r := range l.recs[id-1] {
		if !r.handed.IsZero() && r.gateway == router && (first.IsZero() || r.handed.Before(first)) {
			first = r.handed
		}
	}
	return first, !first.IsZero()
}

// Delivered returns, per flow index, how many replies the host received.
func (l *Ledger) Delivered() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int, len(l.flows))
	for i, recs := range l.recs {
		for _, r := range recs {
			if !r.received.IsZero() {
				out[i]++
			}
		}
	}
	return out
}
