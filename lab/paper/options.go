package paper

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/lispd/lispd/lab/topo"
	"github.com/lispd/lispd/lab/vrrp"
)

// Defaults of the embedded experiment (scaled to finish all eight runs in
// well under a minute; Settings and Result.Scaled report what was used).
const (
	DefaultPingInterval = 200 * time.Millisecond
	DefaultWarmUp       = 2 * time.Second
	DefaultAfterSwitch  = 1500 * time.Millisecond
	// DefaultVRRPScale scales keepalived's timers in embedded mode
	// (advertisements every 250 ms instead of 1 s).
	DefaultVRRPScale = 0.25
	// DefaultDrain is how long in-flight packets are given after the last
	// request before the ledger is read.
	DefaultDrain = 300 * time.Millisecond
)

// Options configure a run of the experiment. The zero value runs every
// test and variant embedded with the defaults.
type Options struct {
	// Tests are the paper's tests to run (1, 2); empty means both.
	Tests []int
	// Variants are the sync variants to run; empty means all four.
	Variants []Variant
	// PingInterval is the time between two pings of one flow.
	PingInterval time.Duration
	// WarmUp is the time from the first ping to the failure (at least;
	// the failure also waits until every flow has had a reply).
	WarmUp time.Duration
	// AfterSwitch is how long traffic goes on after the last VRRP
	// switchover.
	AfterSwitch time.Duration
	// VRRPScale scales keepalived's VRRP timers (1 = keepalived's
	// defaults). Embedded only; 0 means DefaultVRRPScale. netns runs real
	// keepalived with its defaults.
	VRRPScale float64
	// Drain is how long in-flight packets get after the last request.
	Drain time.Duration
	// Seed seeds the random choices (the failure's phase against the VRRP
	// advertisements, the flows' ping phases).
	Seed int64
	// Netns runs the experiment with real lispd processes in network
	// namespaces, keepalived and TUN devices (root only).
	Netns bool
	// Lispd is the lispd binary for netns mode; empty means one built
	// with "go build" into a temporary directory.
	Lispd string
	// Progress receives progress lines (what phase, how long left); nil
	// discards them.
	Progress io.Writer
	// Logs receives the routers' logs; nil discards them.
	Logs io.Writer
}

// normalized returns o with defaults filled in, or an error.
func (o Options) normalized() (Options, error) {
	if len(o.Tests) == 0 {
		o.Tests = []int{1, 2}
	}
	for _, t := range o.Tests {
		if t != int(topo.Test1) && t != int(topo.Test2) {
			return o, fmt.Errorf("%w: test %d (the paper has tests 1 and 2)", ErrInvalid, t)
		}
	}
	if len(o.Variants) == 0 {
		o.Variants = Variants()
	}
	for _, v := range o.Variants {
		if _, err := ParseVariant(string(v)); err != nil {
			return o, err
		}
	}
	o.Tests = dedup(o.Tests)
	o.Variants = dedup(o.Variants)
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.WarmUp == 0 {
		o.WarmUp = DefaultWarmUp
	}
	if o.AfterSwitch == 0 {
		o.AfterSwitch = DefaultAfterSwitch
	}
	if o.Drain == 0 {
		o.Drain = DefaultDrain
	}
	if o.VRRPScale == 0 {
		o.VRRPScale = DefaultVRRPScale
		if o.Netns {
			o.VRRPScale = 1
		}
	}
	switch {
	case o.PingInterval < 10*time.Millisecond || o.PingInterval > 10*time.Second:
		return o, fmt.Errorf("%w: ping interval %v (10ms-10s)", ErrInvalid, o.PingInterval)
	case o.WarmUp < 2*o.PingInterval:
		return o, fmt.Errorf("%w: warm-up %v is shorter than two ping intervals", ErrInvalid, o.WarmUp)
	case o.AfterSwitch < 3*o.PingInterval:
		return o, fmt.Errorf("%w: after-switchover time %v is shorter than three ping intervals: flows would not send several packets", ErrInvalid, o.AfterSwitch)
	case o.VRRPScale < 0.01 || o.VRRPScale > 10:
		return o, fmt.Errorf("%w: VRRP scale %g (0.01-10)", ErrInvalid, o.VRRPScale)
	case o.Netns && o.VRRPScale != 1:
		return o, fmt.Errorf("%w: netns mode runs keepalived with its own timers: VRRP scale must be 1", ErrInvalid)
	case o.Drain < 0:
		return o, fmt.Errorf("%w: negative drain time", ErrInvalid)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logs == nil {
		o.Logs = io.Discard
	}
	return o, nil
}

func dedup[T comparable](xs []T) []T {
	var out []T
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// advertInt is the VRRP advertisement interval in use.
func (o Options) advertInt() time.Duration {
	return time.Duration(float64(vrrp.DefaultAdvertInt) * o.VRRPScale)
}

// masterDown is the backup's Master_Down_Interval in use.
func (o Options) masterDown() time.Duration {
	return vrrp.MasterDownInterval(o.advertInt(), topo.BackupPriority)
}

// estimate is how long one run takes, roughly, for progress output.
func (o Options) estimate() time.Duration {
	d := o.WarmUp + o.advertInt() + o.masterDown() + o.AfterSwitch + o.Drain + time.Second
	if o.Netns {
		d += 4 * time.Second // namespaces, processes, keepalived's first election
	}
	return d
}

// settings reports the timings in the result.
func (o Options) settings() Settings {
	return Settings{
		PingInterval:  o.PingInterval,
		WarmUp:        o.WarmUp,
		AfterSwitch:   o.AfterSwitch,
		MapTTL:        topo.MapTTL,
		VRRPAdvert:    o.advertInt(),
		VRRPScale:     o.VRRPScale,
		Tests:         o.Tests,
		Variants:      o.Variants,
		MasterDownITR: o.masterDown(),
	}
}

// scaled says in words what differs from the paper's setting.
func (o Options) scaled() []string {
	out := []string{
		fmt.Sprintf("map TTL kept at the paper's %v: no record expires during a run, so every miss after the switchover falls within the TTL period", topo.MapTTL),
		fmt.Sprintf("each flow pings every %v (the paper's scripted pings had no stated rate); ITR1 fails %v or more after the first ping, once every flow has had a reply, and traffic goes on %v after the last switchover", o.PingInterval, o.WarmUp, o.AfterSwitch),
	}
	if o.VRRPScale != 1 {
		out = append(out, fmt.Sprintf("VRRP timers scaled by %g: advertisements every %v instead of keepalived's 1 s, so a backup takes over %v after the last advertisement instead of 3.61 s (3 x advert_int + skew, priority %d)",
			o.VRRPScale, o.advertInt(), o.masterDown().Round(time.Millisecond), topo.BackupPriority))
	} else {
		out = append(out, fmt.Sprintf("VRRP with keepalived's defaults: advertisements every 1 s, takeover %v after the last advertisement", o.masterDown().Round(time.Millisecond)))
	}
	if !o.Netns {
		out = append(out, "embedded: the routers run in one process on loopback addresses with real UDP and TCP sockets; the hosts, the LAN and VRRP are modelled in memory")
	}
	return out
}
