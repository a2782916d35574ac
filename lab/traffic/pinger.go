package traffic

import (
	"context"
	"fmt"
	"time"
)

// Pinger sends the echo requests of a set of flows, each flow every
// Interval, the flows' phases spread evenly over one interval so that the
// load is smooth. Every request is recorded in the ledger (Sent) before it
// is handed to Send.
type Pinger struct {
	// Ledger records the requests; the flows pinged are its flows whose
	// Host is in Hosts (all when Hosts is empty).
	Ledger *Ledger
	// Hosts selects the flows to ping by host name.
	Hosts []string
	// Interval is the time between two requests of one flow.
	Interval time.Duration
	// Send transmits a request of flow f; its error is counted in
	// SendErrors and otherwise ignored (the request is lost).
	Send func(f Flow, pkt []byte) error
	// Clock returns the time; nil means time.Now.
	Clock func() time.Time

	sendErrors uint64
	sent       uint64
}

// Run sends requests until ctx is done, then returns nil. It is not safe
// to call Run twice at the same time.
func (p *Pinger) Run(ctx context.Context) error {
	if p.Ledger == nil || p.Send == nil || p.Interval <= 0 {
		return fmt.Errorf("%w: pinger needs a ledger, a send function and a positive interval", ErrInvalid)
	}
	clock := p.Clock
	if clock == nil {
		clock = time.Now
	}
	var flows []Flow
	for _, f := range p.Ledger.Flows() {
		if len(p.Hosts) == 0 || contains(p.Hosts, f.Host) {
			flows = append(flows, f)
		}
	}
	if len(flows) == 0 {
		return fmt.Errorf("%w: no flows for hosts %v", ErrInvalid, p.Hosts)
	}
	start := clock()
	step := p.Interval / time.Duration(len(flows))
	seq := make([]uint16, len(flows))
	t := time.NewTimer(0)
	defer t.Stop()
	for k := 0; ; k++ {
		i := k % len(flows)
		round := k / len(flows)
		due := start.Add(time.Duration(round)*p.Interval + time.Duration(i)*step)
		if wait := due.Sub(clock()); wait > 0 {
			t.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return nil
		}
		if seq[i] == 65535 {
			continue // the flow's sequence space is used up
		}
		seq[i]++
		f := flows[i]
		pkt, err := p.Ledger.Request(f.ID, seq[i])
		if err != nil {
			return err
		}
		if err := p.Ledger.Sent(pkt, clock()); err != nil {
			return err
		}
		p.sent++
		if err := p.Send(f, pkt); err != nil {
			p.sendErrors++
		}
	}
}

// SendErrors is the number of requests Send failed to transmit; read it
// after Run returned.
func (p *Pinger) SendErrors() uint64 { return p.sendErrors }

// SentCount is the number of requests sent; read it after Run returned.
func (p *Pinger) SentCount() uint64 { return p.sent }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
