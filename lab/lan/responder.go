package lan

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/lab/traffic"
)

// Responder is a remote site's LAN with the destination hosts on it: it
// reads what the remote xTR decapsulates, records each echo request in the
// ledger (the one-way count) and answers it with an echo reply, as the
// destination host's kernel would.
type Responder struct {
	dev    dataplane.Device
	ledger *traffic.Ledger
	dests  map[netip.Addr]bool

	answered, foreign atomic.Uint64
}

// NewResponder returns a responder for the destinations dests behind the
// LAN end dev of a remote xTR's EID device. It owns dev and closes it when
// Run ends.
func NewResponder(dev dataplane.Device, ledger *traffic.Ledger, dests []netip.Addr) *Responder {
	r := &Responder{dev: dev, ledger: ledger, dests: map[netip.Addr]bool{}}
	for _, d := range dests {
		r.dests[d] = true
	}
	return r
}

// Run answers until ctx is done, then closes the device and returns nil.
func (r *Responder) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // RoutineResponder
		defer wg.Done()
		r.loop()
	}()
	<-ctx.Done()
	_ = r.dev.Close()
	wg.Wait()
	return nil
}

func (r *Responder) loop() {
	n := r.dev.BatchSize()
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, bufSize)
	}
	sizes := make([]int, n)
	out := make([][]byte, 0, n)
	for {
		k, err := r.dev.Read(bufs, sizes, dataplane.OutOffset)
		if err != nil {
			return
		}
		out = out[:0]
		for i := range k {
			pkt := bufs[i][dataplane.OutOffset : dataplane.OutOffset+sizes[i]]
			e, err := traffic.ParseEcho(pkt)
			if err != nil || e.Type != traffic.EchoRequest || !r.dests[e.Dst] {
				r.foreign.Add(1)
				continue
			}
			reply, err := r.ledger.Answer(pkt, time.Now())
			if err != nil {
				r.foreign.Add(1)
				continue
			}
			b := make([]byte, dataplane.OutOffset+len(reply))
			copy(b[dataplane.OutOffset:], reply)
			out = append(out, b)
			r.answered.Add(1)
		}
		if len(out) > 0 {
			if _, err := r.dev.Write(out, dataplane.OutOffset); err != nil {
				return
			}
		}
	}
}

// Answered counts the echo requests answered.
func (r *Responder) Answered() uint64 { return r.answered.Load() }

// Foreign counts packets that were not echo requests to the destinations.
func (r *Responder) Foreign() uint64 { return r.foreign.Load() }
