package traffic

import (
	"encoding/json"
	"fmt"
	"time"
)

// Fate is what became of one echo request.
type Fate uint8

// The fates of a request. Every request sent gets exactly one.
const (
	// Delivered: the host received the reply.
	Delivered Fate = iota
	// LostSwitchover: lost in the VRRP switchover gap: the LAN carried it
	// to the failed router's dead link (its gateway address still pointed
	// there), or, where the LAN is not observed, it was sent after the
	// failure and before the host's gateway moved, and never reached the
	// destination; or, after a crash (ClassifyOptions.Crashed), it was
	// handed to the crashed router after the failure and went no further.
	LostSwitchover
	// LostAtITR: a live ITR received it from the LAN and it never reached
	// the destination: the ITR dropped it (on a map-cache miss; the
	// report checks this against the ITRs' own miss counters).
	LostAtITR
	// LostReturnFailed: it reached the destination, and the reply was
	// encapsulated to the failed router's RLOC, whose ETR could not put
	// it on the LAN (the return path to the failed RLOC).
	LostReturnFailed
	// LostReturnOther: it reached the destination but the reply was lost
	// elsewhere (for example a miss at the remote ITR on its first reply).
	LostReturnOther
	// LostUnseen: it never reached the destination and was seen neither
	// at a gateway nor dropped by the LAN.
	LostUnseen
	numFates
)

var fateNames = [numFates]string{"delivered", "switchover", "itr-drop", "return-failed-rloc", "return-other", "unseen"}

// String returns the fate's stable name (used in JSON).
func (f Fate) String() string {
	if f < numFates {
		return fateNames[f]
	}
	return fmt.Sprintf("fate-%d", uint8(f))
}

// MarshalText implements encoding.TextMarshaler.
func (f Fate) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// Fates lists every fate in order.
func Fates() []Fate {
	out := make([]Fate, numFates)
	for i := range out {
		out[i] = Fate(i)
	}
	return out
}

// ClassifyOptions are the run's landmarks Classify needs.
type ClassifyOptions struct {
	// FailAt is when the router failed; requests sent before it are in
	// the "before" phase.
	FailAt time.Time
	// Failed names the router that failed.
	Failed string
	// SwitchAt is, per host whose gateway failed, when its gateway
	// address moved to a live router. It is used only for requests seen
	// nowhere (neither at a gateway, nor dropped by the LAN, nor at the
	// destination).
	SwitchAt map[string]time.Time
	// Crashed says the failed router stopped processing at FailAt (a
	// crash, not a link failure): a request handed to it after FailAt and
	// never arrived was lost with the dying router, in the switchover
	// gap, not dropped by a live ITR.
	Crashed bool
}

// Counts are request counts by fate.
type Counts [numFates]int

// Lost is the number of requests lost for any reason.
func (c Counts) Lost() int {
	n := 0
	for f := Fate(1); f < numFates; f++ {
		n += c[f]
	}
	return n
}

// Sent is the number of requests counted.
func (c Counts) Sent() int { return c[Delivered] + c.Lost() }

// MarshalJSON writes the counts as an object keyed by fate name.
func (c Counts) MarshalJSON() ([]byte, error) {
	m := make(map[string]int, numFates)
	for f := Fate(0); f < numFates; f++ {
		m[f.String()] = c[f]
	}
	return json.Marshal(m)
}

// FlowResult is the accounting of one flow.
type FlowResult struct {
	Flow Flow `json:"flow"`
	// Before and After count the requests sent before and after the
	// failure by fate.
	Before Counts `json:"before_failure"`
	After  Counts `json:"after_failure"`
	// ArrivedAfter counts requests sent after the failure that reached
	// the destination (the one-way count).
	ArrivedAfter int `json:"arrived_after_failure"`
	// LastGateway is the router that carried the flow's last request
	// before the failure ("" if none did).
	LastGatewayBefore string `json:"gateway_before_failure"`
}

// Mark is one request on the timeline.
type Mark struct {
	// Flow is the index of the flow (ID - 1).
	Flow int `json:"flow"`
	// At is when the request was sent, relative to the start of the run.
	At time.Duration `json:"at_ns"`
	// Fate is what became of it.
	Fate Fate `json:"fate"`
}

// Summary is the ledger classified.
type Summary struct {
	Flows []FlowResult `json:"flows"`
	// Before and After are the totals of all flows.
	Before Counts `json:"before_failure"`
	After  Counts `json:"after_failure"`
	// Timeline holds one mark per request, in sending order per flow.
	Timeline []Mark `json:"-"`
	// Carried lists, per router, the flow IDs whose requests it received
	// from the LAN before the failure.
	Carried map[string][]uint16 `json:"carried_before_failure"`
	// Unexpected counts packets the ledger saw that were not its flows'.
	Unexpected uint64 `json:"unexpected_packets"`
}

// Classify gives each request sent its fate (see Fate), per flow and
// phase, with timeline marks relative to start. Call it after traffic
// stopped and in-flight packets drained: a request without a reply is
// counted as lost.
func (l *Ledger) Classify(start time.Time, o ClassifyOptions) Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Summary{Carried: map[string][]uint16{}, Unexpected: l.unexpected}
	for i, f := range l.flows {
		fr := FlowResult{Flow: f}
		carriedBy := map[string]bool{}
		for _, r := range l.recs[i] {
			if r.sent.IsZero() {
				continue // a sequence number skipped or never sent
			}
			fate := l.fate(r, f, o)
			before := r.sent.Before(o.FailAt)
			if before {
				fr.Before[fate]++
				if !r.handed.IsZero() {
					carriedBy[r.gateway] = true
					fr.LastGatewayBefore = r.gateway
				}
			} else {
				fr.After[fate]++
				if !r.arrived.IsZero() {
					fr.ArrivedAfter++
				}
			}
			s.Timeline = append(s.Timeline, Mark{Flow: i, At: r.sent.Sub(start), Fate: fate})
		}
		for router := range carriedBy {
			s.Carried[router] = append(s.Carried[router], f.ID)
		}
		for k := range s.Before {
			s.Before[k] += fr.Before[k]
			s.After[k] += fr.After[k]
		}
		s.Flows = append(s.Flows, fr)
	}
	return s
}

// fate classifies one request; mu held.
func (l *Ledger) fate(r record, f Flow, o ClassifyOptions) Fate {
	switch {
	case !r.received.IsZero():
		return Delivered
	case !r.arrived.IsZero():
		if r.replyDropped && r.replyVia == o.Failed {
			return LostReturnFailed
		}
		return LostReturnOther
	case !r.lanDrop.IsZero():
		return LostSwitchover
	case o.Crashed && !r.handed.IsZero() && r.gateway == o.Failed && !r.handed.Before(o.FailAt):
		return LostSwitchover
	case !r.handed.IsZero():
		return LostAtITR
	}
	// Seen nowhere: on a real LAN a frame sent to the failed router's
	// dead interface leaves no trace, so one sent between the failure and
	// the moment the host's gateway address moved is put in the gap.
	if sw, ok := o.SwitchAt[f.Host]; ok && !r.sent.Before(o.FailAt) && r.sent.Before(sw) {
		return LostSwitchover
	}
	return LostUnseen
}
