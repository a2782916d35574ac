package vrrp

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// instance is the run-time state of one InstanceConfig.
type instance struct {
	cfg   InstanceConfig
	state State
	// advertAt is when a Master sends its next advertisement; downAt is
	// when a Backup's Master_Down timer fires. Zero when not armed.
	advertAt, downAt time.Time
	linkUp           bool
	// tracked is set while a tracked object (keepalived's track_file,
	// track_script) holds the instance in Fault with its interface up.
	tracked bool
}

// up reports whether the instance may run: interface up, nothing tracked
// failing.
func (in *instance) up() bool { return in.linkUp && !in.tracked }

func (in *instance) masterDown() time.Duration {
	return MasterDownInterval(in.cfg.AdvertInt, in.cfg.Priority)
}

// Segment is one LAN segment with the VRRP instances of the routers
// attached to it. Its methods are safe for concurrent use.
type Segment struct {
	// mu guards everything below. OnChange runs with it held.
	mu        sync.Mutex
	instances []*instance
	events    []Event
	started   bool
	onChange  func(Event)
	adverts   map[string]uint64 // advertisements sent, by router
	kick      chan struct{}
}

// NewSegment returns a segment with the given instances. onChange, if not
// nil, is called for every state change, in order, with the segment's lock
// held: it must return quickly and must not call the segment's methods.
func NewSegment(instances []InstanceConfig, onChange func(Event)) (*Segment, error) {
	s := &Segment{onChange: onChange, adverts: map[string]uint64{}, kick: make(chan struct{}, 1)}
	seen := map[[2]any]bool{}
	for _, c := range instances {
		if err := c.validate(); err != nil {
			return nil, err
		}
		k := [2]any{c.Router, c.VRID}
		if seen[k] {
			return nil, fmt.Errorf("%w: %s has two instances of VRID %d", ErrInvalidConfig, c.Router, c.VRID)
		}
		seen[k] = true
		if c.AdvertInt == 0 {
			c.AdvertInt = DefaultAdvertInt
		}
		s.instances = append(s.instances, &instance{cfg: c, linkUp: true})
	}
	return s, nil
}

// Start brings every instance up at now: an instance with priority 255 or
// StartMaster becomes Master at once (and advertises); the others become
// Backup and wait one Master_Down_Interval. Start is idempotent.
func (s *Segment) Start(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return
	}
	s.started = true
	for _, in := range s.instances {
		if in.cfg.Priority == OwnerPriority || in.cfg.StartMaster {
			s.becomeMaster(in, now, "start")
		} else {
			s.setState(in, Backup, now, "start")
			in.downAt = now.Add(in.masterDown())
		}
	}
	s.wake()
}

// SetLinkUp sets the state of router's interface on the segment at now.
// Down puts its instances in Fault: they stop advertising at once, as when
// an interface is shut down (no priority-0 advertisement is sent). Up puts
// them back in Backup (or Master for the address owner). The lab also
// uses it for a router that crashed: silence, as a dead interface.
func (s *Segment) SetLinkUp(router string, up bool, now time.Time) error {
	return s.change(router, now, func(in *instance) (string, bool) {
		in.linkUp = up
		if up {
			return "interface up", false
		}
		return "interface down", false
	})
}

// SetTracked sets the state of a tracked object of router's instances
// (keepalived's track_file or track_script with weight 0) at now: failing
// puts them in Fault while their interface stays up, and a Master leaving
// for Fault sends a priority-0 advertisement first, as keepalived does, so
// that a Backup takes over after its Skew_Time instead of the whole
// Master_Down_Interval (RFC 5798 section 6.4.2). Clearing it puts them
// back in Backup (the address owner in Master).
func (s *Segment) SetTracked(router string, failing bool, now time.Time) error {
	return s.change(router, now, func(in *instance) (string, bool) {
		in.tracked = failing
		if failing {
			return "tracked object failing", true
		}
		return "tracked object back", false
	})
}

// change applies set to router's instances and moves those whose up()
// changed into Fault or out of it; set returns the reason and whether a
// Master leaving for Fault sends a priority-0 advertisement.
func (s *Segment) change(router string, now time.Time, set func(*instance) (string, bool)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for _, in := range s.instances {
		if in.cfg.Router != router {
			continue
		}
		found = true
		was := in.up()
		reason, stop := set(in)
		if in.up() == was {
			continue
		}
		if !in.up() && stop && in.state == Master {
			s.advertisePriority(in, 0, now)
		}
		in.advertAt, in.downAt = time.Time{}, time.Time{}
		switch {
		case !in.up():
			s.setState(in, Fault, now, reason)
		case !s.started:
		case in.cfg.Priority == OwnerPriority:
			s.becomeMaster(in, now, reason)
		default:
			s.setState(in, Backup, now, reason)
			in.downAt = now.Add(in.masterDown())
		}
	}
	if !found {
		return fmt.Errorf("%w: %q", ErrUnknownRouter, router)
	}
	s.wake()
	return nil
}

// Advance runs every timer that is due at or before now, in time order,
// each at its own deadline.
func (s *Segment) Advance(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		in, at := s.nextLocked()
		if in == nil || at.After(now) {
			return
		}
		switch in.state {
		case Master:
			s.advertise(in, at)
			in.advertAt = at.Add(in.cfg.AdvertInt)
		case Backup:
			s.becomeMaster(in, at, "master down timer")
		default:
			in.advertAt, in.downAt = time.Time{}, time.Time{}
		}
	}
}

// NextDeadline returns the time of the next timer, and false when no
// timer is armed.
func (s *Segment) NextDeadline() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, at := s.nextLocked()
	return at, in != nil
}

// Run drives the segment with real time until ctx is done: it calls Start
// if nobody did, then Advance at every deadline. It returns nil when ctx
// ends.
func (s *Segment) Run(ctx context.Context) error {
	s.Start(time.Now())
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.Advance(time.Now())
		wait := time.Hour
		if at, ok := s.NextDeadline(); ok {
			wait = max(time.Until(at), 0)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		case <-t.C:
		}
	}
}

// Master returns the router that is Master of vrid now, or "" when none is.
func (s *Segment) Master(vrid uint8) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.instances {
		if in.cfg.VRID == vrid && in.state == Master {
			return in.cfg.Router
		}
	}
	return ""
}

// State returns the state of router's instance of vrid.
func (s *Segment) State(router string, vrid uint8) (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.instances {
		if in.cfg.Router == router && in.cfg.VRID == vrid {
			return in.state, nil
		}
	}
	return Init, fmt.Errorf("%w: %q VRID %d", ErrUnknownRouter, router, vrid)
}

// Events returns every state change so far, in order.
func (s *Segment) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// Adverts returns how many advertisements router has sent.
func (s *Segment) Adverts(router string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.adverts[router]
}

// nextLocked returns the instance with the earliest armed timer.
func (s *Segment) nextLocked() (*instance, time.Time) {
	var best *instance
	var at time.Time
	for _, in := range s.instances {
		var t time.Time
		switch in.state {
		case Master:
			t = in.advertAt
		case Backup:
			t = in.downAt
		}
		if t.IsZero() {
			continue
		}
		if best == nil || t.Before(at) {
			best, at = in, t
		}
	}
	return best, at
}

func (s *Segment) becomeMaster(in *instance, now time.Time, reason string) {
	s.setState(in, Master, now, reason)
	in.downAt = time.Time{}
	s.advertise(in, now)
	in.advertAt = now.Add(in.cfg.AdvertInt)
}

// advertise delivers from's advertisement to every other instance of its
// VRID whose link is up, applying RFC 5798 section 6.4.2 (Backup) and
// 6.4.3 (Master).
func (s *Segment) advertise(from *instance, now time.Time) {
	s.advertisePriority(from, from.cfg.Priority, now)
}

// advertisePriority delivers an advertisement of from with priority p; 0
// is the "Master stopping" advertisement, on which a Backup takes over
// after its Skew_Time.
func (s *Segment) advertisePriority(from *instance, p uint8, now time.Time) {
	s.adverts[from.cfg.Router]++
	for _, in := range s.instances {
		if in == from || in.cfg.VRID != from.cfg.VRID || !in.linkUp {
			continue
		}
		switch in.state {
		case Backup:
			if p == 0 {
				in.downAt = now.Add(SkewTime(in.cfg.AdvertInt, in.cfg.Priority))
			} else if in.cfg.NoPreempt || p >= in.cfg.Priority {
				in.downAt = now.Add(in.masterDown())
			}
		case Master:
			if p == 0 {
				continue
			}
			if p > in.cfg.Priority || (p == in.cfg.Priority && from.cfg.Order > in.cfg.Order) {
				s.setState(in, Backup, now, "higher priority advertisement from "+from.cfg.Router)
				in.advertAt = time.Time{}
				in.downAt = now.Add(in.masterDown())
			}
		}
	}
}

func (s *Segment) setState(in *instance, to State, now time.Time, reason string) {
	if in.state == to {
		return
	}
	ev := Event{Time: now, Router: in.cfg.Router, VRID: in.cfg.VRID, From: in.state, To: to, Reason: reason}
	in.state = to
	s.events = append(s.events, ev)
	if s.onChange != nil {
		s.onChange(ev)
	}
}

// wake tells Run that timers changed.
func (s *Segment) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}
