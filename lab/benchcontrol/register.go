package benchcontrol

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/lispd/lispd/wire"
)

// registrar registers prefixes as an ETR does, reliably: Map-Registers
// asking for a Map-Notify, a window of them outstanding, retransmitted
// until acknowledged.
type registrar struct {
	conn  *loadConn
	acks  chan uint64
	done  chan struct{}
	nonce uint64
}

const (
	// recordsPerRegister is how many EID records one bulk Map-Register
	// carries (about 950 bytes: below any MTU).
	recordsPerRegister = 32
	// registerWindow is how many bulk Map-Registers may await their
	// Map-Notify at once.
	registerWindow = 32
	registerRetry  = time.Second
	registerTries  = 5
)

func newRegistrar(p *lispdProc) (*registrar, error) {
	c, err := dialLoad(p.addr, 4<<20)
	if err != nil {
		return nil, err
	}
	r := &registrar{conn: c, acks: make(chan uint64, 4*registerWindow), done: make(chan struct{}), nonce: rand.Uint64()}
	go r.receive() // RoutineNotifyReceiver
	return r, nil
}

func (r *registrar) close() {
	r.conn.Close()
	<-r.done
}

// receive passes the nonces of the Map-Notify messages received to acks.
func (r *registrar) receive() {
	defer close(r.done)
	handle := func(b []byte) {
		if n, ok := replyNonce(b, wire.TypeMapNotify); ok {
			select {
			case r.acks <- n:
			default: // the sender is gone or slow: it retransmits
			}
		}
	}
	for r.conn.RecvBatch(handle) == nil {
	}
}

// registerRecords registers recs (all of one site) with one Map-Register
// and returns once its Map-Notify arrived.
func (r *registrar) registerRecords(ctx context.Context, site int, recs []wire.EIDRecord) error {
	r.nonce++
	nonce := r.nonce
	msg, err := buildRegisterRecords(site, recs, nonce, true)
	if err != nil {
		return err
	}
	for range registerTries {
		if _, err := r.conn.SendBatch([][]byte{msg}); err != nil {
			return fmt.Errorf("benchcontrol: send Map-Register: %w", err)
		}
		timer := time.NewTimer(registerRetry)
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			case n := <-r.acks:
				if n == nonce {
					timer.Stop()
					return nil
				}
			case <-timer.C:
				break wait
			}
		}
	}
	return errors.New("benchcontrol: a Map-Register was not acknowledged after 5 tries (is lispd overloaded or refusing it?)")
}

// pendingRegister is a bulk Map-Register awaiting its Map-Notify.
type pendingRegister struct {
	msg   []byte
	sent  time.Time
	tries int
}

// register registers prefixes from to to-1 and returns when every one was
// acknowledged.
func (r *registrar) register(ctx context.Context, from, to int) error {
	pending := map[uint64]*pendingRegister{}
	next := from
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for next < to || len(pending) > 0 {
		for next < to && len(pending) < registerWindow {
			// One message per site for the prefixes of this range.
			end := min(next+2*recordsPerRegister, to)
			var bySite [2][]int
			for i := next; i < end; i++ {
				bySite[i%2] = append(bySite[i%2], i)
			}
			for site, ps := range bySite {
				if len(ps) == 0 {
					continue
				}
				if err := r.send(pending, site, ps); err != nil {
					return err
				}
			}
			next = end
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case n := <-r.acks:
			delete(pending, n)
		case now := <-tick.C:
			for _, p := range pending {
				if now.Sub(p.sent) < registerRetry {
					continue
				}
				if p.tries >= registerTries {
					return errors.New("benchcontrol: a Map-Register was not acknowledged after 5 tries (is lispd overloaded or refusing it?)")
				}
				p.tries++
				p.sent = now
				if _, err := r.conn.SendBatch([][]byte{p.msg}); err != nil {
					return fmt.Errorf("benchcontrol: send Map-Register: %w", err)
				}
			}
		}
	}
	return nil
}

// send sends one bulk Map-Register and records it as pending.
func (r *registrar) send(pending map[uint64]*pendingRegister, site int, prefixes []int) error {
	r.nonce++
	msg, err := buildRegister(site, prefixes, r.nonce, true)
	if err != nil {
		return err
	}
	pending[r.nonce] = &pendingRegister{msg: msg, sent: time.Now(), tries: 1}
	if _, err := r.conn.SendBatch([][]byte{msg}); err != nil {
		return fmt.Errorf("benchcontrol: send Map-Register: %w", err)
	}
	return nil
}

// RegisterResult is what the Map-Register rate test measured for one
// authentication algorithm.
type RegisterResult struct {
	// Algorithm is the site's algorithm: "hmac-sha-1" or "hmac-sha-256".
	Algorithm string `json:"algorithm"`
	// Registered is the number of prefixes registered in lispd during the
	// test (both sites).
	Registered int `json:"registered_prefixes"`
	// Sent is the number of single-record Map-Registers sent, as fast as
	// the generator could, each refreshing a registered prefix.
	Sent uint64 `json:"sent"`
	// Accepted is how many lispd authenticated and applied (its
	// register_ok counter).
	Accepted uint64 `json:"accepted"`
	// Seconds is the time from the first send until the last accepted.
	Seconds float64 `json:"seconds"`
	// PerSecond is Accepted over Seconds.
	PerSecond float64 `json:"per_second"`
	// LispdCPU is lispd's CPU use over the test, in percent of one core.
	LispdCPU float64 `json:"lispd_cpu_percent"`
}

// registerRate sends count single-record Map-Registers (no Map-Notify
// asked) of site's registered prefixes among the first n, as fast as
// possible, and measures how many lispd accepts per second.
func registerRate(ctx context.Context, p *lispdProc, site, n int, count int) (RegisterResult, error) {
	res := RegisterResult{Algorithm: algorithmName(site), Registered: n}
	var ids []int
	for i := site; i < n && len(ids) < count; i += 2 {
		ids = append(ids, i)
	}
	if len(ids) == 0 {
		return res, errors.New("benchcontrol: no registered prefix of the site to refresh")
	}
	msgs := make([][]byte, len(ids))
	for k, i := range ids {
		m, err := buildRegister(site, []int{i}, uint64(k+1), false)
		if err != nil {
			return res, err
		}
		msgs[k] = m
	}
	c, err := dialLoad(p.addr, 4<<20)
	if err != nil {
		return res, err
	}
	defer c.Close()
	before, err := p.counters(ctx)
	if err != nil {
		return res, err
	}
	cpu0, err := cpuTime(p.pid())
	if err != nil {
		return res, err
	}
	start := time.Now()
	batch := make([][]byte, 0, maxLoadBatch)
	for k := 0; k < count; {
		batch = batch[:0]
		for ; k < count && len(batch) < maxLoadBatch; k++ {
			batch = append(batch, msgs[k%len(msgs)])
		}
		sent, err := c.SendBatch(batch)
		res.Sent += uint64(sent)
		if err != nil {
			return res, fmt.Errorf("benchcontrol: send Map-Register: %w", err)
		}
	}
	// Poll register_ok until it stops moving.
	last, lastAt := before["mapserver_register_ok"], start
	for {
		time.Sleep(20 * time.Millisecond)
		cs, err := p.counters(ctx)
		if err != nil {
			return res, err
		}
		now := time.Now()
		v := cs["mapserver_register_ok"]
		if v != last {
			last, lastAt = v, now
		}
		if v-before["mapserver_register_ok"] >= res.Sent || now.Sub(lastAt) > 300*time.Millisecond {
			break
		}
	}
	cpu1, err := cpuTime(p.pid())
	if err != nil {
		return res, err
	}
	res.Accepted = last - before["mapserver_register_ok"]
	res.Seconds = lastAt.Sub(start).Seconds()
	if res.Seconds > 0 {
		res.PerSecond = float64(res.Accepted) / res.Seconds
		res.LispdCPU = 100 * (cpu1 - cpu0).Seconds() / res.Seconds
	}
	return res, nil
}
