// Package vrrp models the Virtual Router Redundancy Protocol (RFC 5798) the
// way keepalived runs it, for the embedded lab (the netns lab runs
// keepalived itself, see lab/netns).
//
// The model keeps RFC 5798's state machine (Backup, Master, and Fault for a
// router whose interface is down or whose tracked object fails: see
// [Segment.SetTracked] and [Segment.TrackFile], keepalived's track_file)
// with keepalived's defaults: an
// advertisement every second, priority 100, preemption on, and a Backup
// taking over when it has heard no advertisement for the Master_Down_Interval
// of 3 x Advertisement_Interval + Skew_Time, where Skew_Time is
// (256 - Priority) / 256 of an advertisement interval, or after Skew_Time
// alone when the Master leaves with a priority-0 advertisement. The
// advertisement interval is per instance (the lab uses its documented
// VRRPv3 configuration's 100 ms); every other timer follows from it.
//
// A [Segment] is one LAN: it carries every instance's advertisements to the
// other instances of the same virtual router (VRID) whose interfaces are up.
// Its logic ([Segment.Advance]) is a pure function of the time it is given,
// so tests drive it with a fake clock; [Segment.Run] drives it with real
// timers. When an instance becomes Master it "sends a gratuitous ARP": the
// segment's OnChange hook is told, and the lab's LAN model points the
// virtual address at that router.
package vrrp

import (
	"errors"
	"fmt"
	"time"
)

// Keepalived's defaults (keepalived.conf(5)): advert_int 1, priority 100,
// preemption enabled.
const (
	// DefaultAdvertInt is keepalived's default advertisement interval.
	DefaultAdvertInt = time.Second
	// DefaultPriority is keepalived's default priority of a backup router.
	DefaultPriority = 100
	// OwnerPriority is the priority of the router that owns the virtual
	// address (it is Master whenever it is up).
	OwnerPriority = 255
)

// Errors returned by this package.
var (
	// ErrInvalidConfig is wrapped by every configuration error.
	ErrInvalidConfig = errors.New("vrrp: invalid configuration")
	// ErrUnknownRouter is returned for a router that has no instance.
	ErrUnknownRouter = errors.New("vrrp: unknown router")
)

// SkewTime is RFC 5798's Skew_Time, ((256 - priority) * advertInt) / 256.
func SkewTime(advertInt time.Duration, priority uint8) time.Duration {
	return time.Duration(256-int64(priority)) * advertInt / 256
}

// MasterDownInterval is RFC 5798's Master_Down_Interval,
// 3 * advertInt + SkewTime: how long a Backup waits without hearing the
// Master before it takes over.
func MasterDownInterval(advertInt time.Duration, priority uint8) time.Duration {
	return 3*advertInt + SkewTime(advertInt, priority)
}

// State is the state of one VRRP instance.
type State uint8

// The states of an instance. Fault is keepalived's state for an instance
// whose interface is down: it neither sends nor receives.
const (
	Init State = iota
	Backup
	Master
	Fault
)

// String returns the state in upper case, as keepalived logs it.
func (s State) String() string {
	switch s {
	case Init:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	case Fault:
		return "FAULT"
	}
	return fmt.Sprintf("STATE(%d)", uint8(s))
}

// InstanceConfig is one router's instance of one virtual router, as a
// keepalived vrrp_instance block describes it.
type InstanceConfig struct {
	// Router names the router (unique on the segment).
	Router string
	// VRID is the virtual router ID (1-255).
	VRID uint8
	// Priority is 1-255; 255 makes the router the address owner.
	Priority uint8
	// AdvertInt is the advertisement interval; 0 means DefaultAdvertInt.
	AdvertInt time.Duration
	// NoPreempt disables preemption (keepalived's nopreempt).
	NoPreempt bool
	// StartMaster makes the instance start as Master (keepalived's
	// "state MASTER"); otherwise it starts as Backup and waits one
	// Master_Down_Interval, unless its priority is 255.
	StartMaster bool
	// Order breaks ties between equal priorities: RFC 5798 prefers the
	// higher primary IP address; here the higher Order.
	Order uint32
}

func (c InstanceConfig) validate() error {
	switch {
	case c.Router == "":
		return fmt.Errorf("%w: instance without a router name", ErrInvalidConfig)
	case c.VRID == 0:
		return fmt.Errorf("%w: %s: VRID 0", ErrInvalidConfig, c.Router)
	case c.Priority == 0:
		return fmt.Errorf("%w: %s: priority 0 is reserved", ErrInvalidConfig, c.Router)
	case c.AdvertInt < 0:
		return fmt.Errorf("%w: %s: negative advertisement interval", ErrInvalidConfig, c.Router)
	}
	return nil
}

// Event is a state change of one instance.
type Event struct {
	// Time is when it happened.
	Time time.Time
	// Router and VRID name the instance.
	Router string
	VRID   uint8
	// From and To are the old and new states.
	From, To State
	// Reason says what caused it ("start", "master down timer",
	// "higher priority advertisement", "interface down", ...).
	Reason string
}

// String formats the event as keepalived-style log text.
func (e Event) String() string {
	return fmt.Sprintf("%s VRID %d: %s -> %s (%s)", e.Router, e.VRID, e.From, e.To, e.Reason)
}
