package paper

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/lispd/lispd/lab/topo"
	"github.com/lispd/lispd/lab/vrrp"
)

// Defaults of the experiment (Settings and Result.Scaled report what was
// used).
const (
	DefaultPingInterval = 200 * time.Millisecond
	DefaultWarmUp       = 2 * time.Second
	// DefaultAfterSwitch is long enough to watch the healing: the sync
	// set detects a dead member within 1 s, and remote ITRs move their
	// traffic on the SMR that follows.
	DefaultAfterSwitch = 10 * time.Second
	// DefaultVRRPAdvert is the advertisement interval of the documented
	// keepalived configuration (deploy/keepalived: VRRPv3, advert_int
	// 0.1): a backup of priority 100 takes over 361 ms after the last
	// advertisement. Both modes use it: the embedded VRRP model and the
	// netns lab's keepalived.
	DefaultVRRPAdvert = 100 * time.Millisecond
	// DefaultDrain is how long in-flight packets are given after the last
	// request before the ledger is read.
	DefaultDrain = 300 * time.Millisecond
	// DrainTimeout bounds a planned failover's Drain call.
	DrainTimeout = 10 * time.Second
)

// Failure is how ITR1 fails (or is taken out of service) mid-run.
type Failure string

// The failure kinds.
const (
	// FailLAN shuts ITR1's EID-side (LAN) interface down: the paper's
	// failure. lispd on ITR1 lives on and sees its link go down.
	FailLAN Failure = "lan"
	// FailCrash is a whole-router crash: lispd on ITR1 is killed (its
	// sockets close at once, as on SIGKILL) and so is its VRRP
	// (keepalived), which stops advertising without a word; the LAN
	// interface stays up. The survivors learn of it only by silence: the
	// sync set's failure detection and VRRP's Master_Down_Interval.
	FailCrash Failure = "crash"
	// FailDrain is a planned failover: ITR1's lispd is asked to drain
	// (lispctl drain, the API's Drain) and, once the ingress traffic has
	// moved away, writes its VRRP track file, on which keepalived (or
	// the embedded model, polling the same file) hands the gateway over.
	FailDrain Failure = "drain"
)

// Failures lists every failure kind in table order.
func Failures() []Failure { return []Failure{FailLAN, FailCrash, FailDrain} }

// ParseFailure parses a failure kind.
func ParseFailure(s string) (Failure, error) {
	for _, f := range Failures() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w: failure %q (want lan, crash or drain)", ErrInvalid, s)
}

// Healing says which lispd failover behaviour the runs use: lispd.toml's
// [failover] enabled = true ("on"), false ("off", lispd's behaviour before
// the healing existed), or both, each test run twice side by side.
type Healing string

// The healing settings.
const (
	HealingOn   Healing = "on"
	HealingOff  Healing = "off"
	HealingBoth Healing = "both"
)

// ParseHealing parses a healing setting.
func ParseHealing(s string) (Healing, error) {
	switch h := Healing(s); h {
	case HealingOn, HealingOff, HealingBoth:
		return h, nil
	}
	return "", fmt.Errorf("%w: healing %q (want on, off or both)", ErrInvalid, s)
}

// settings returns the healing values to run, off first.
func (h Healing) settings() []bool {
	switch h {
	case HealingOn:
		return []bool{true}
	case HealingOff:
		return []bool{false}
	}
	return []bool{false, true}
}

// Options configure a run of the experiment. The zero value runs the
// default plan (see Plan) embedded with the defaults.
type Options struct {
	// Failures are the failure kinds to run; empty means all three.
	Failures []Failure
	// Healing is on, off or both (empty means both). A drain is part of
	// the healing: with both it runs with healing on only, and it cannot
	// run with healing off.
	Healing Healing
	// Tests are the paper's tests to run (1, 2); empty means the default
	// plan's tests for each failure kind.
	Tests []int
	// Variants are the sync variants to run; empty means the default
	// plan's variants for each failure kind.
	Variants []Variant
	// PingInterval is the time between two pings of one flow.
	PingInterval time.Duration
	// WarmUp is the time from the first ping to the failure (at least;
	// the failure also waits until every flow has had a reply).
	WarmUp time.Duration
	// AfterSwitch is how long traffic goes on after the last VRRP
	// switchover.
	AfterSwitch time.Duration
	// VRRPAdvert is the VRRP advertisement interval, of the embedded
	// model and of keepalived in netns mode (VRRPv3; a multiple of
	// 10 ms); 0 means DefaultVRRPAdvert, the documented configuration's.
	VRRPAdvert time.Duration
	// Drain is how long in-flight packets get after the last request.
	Drain time.Duration
	// Seed seeds the random choices (the failure's phase against the VRRP
	// advertisements, the flows' ping phases).
	Seed int64
	// PubSub runs every run with publish/subscribe (RFC 9437): the
	// Map-Server takes subscriptions ([map-server.pubsub]), every xTR
	// subscribes to the mappings it asks for, ignores Locator-Status-Bits
	// ([itr] subscribe, pubsub-key, ignore-locator-status-bits) and sends
	// no SMRs on a failover ([failover] solicit-map-requests = false), and
	// the site's ETRs have the Map-Server answer for them (etr.proxy-reply:
	// an ETR SMRs the ITRs it answered when its database changes), so
	// that the Map-Server's publication of the re-registered mapping is
	// the only way a remote ITR learns that ITR1's RLOC was withdrawn.
	PubSub bool
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

// Spec is one run of the plan.
type Spec struct {
	Failure Failure `json:"failure"`
	// Healing is lispd's [failover] enabled.
	Healing bool    `json:"healing"`
	Test    int     `json:"test"`
	Variant Variant `json:"variant"`
	// PubSub is Options.PubSub: publish/subscribe is the only way the
	// remote ITRs learn of a failover.
	PubSub bool `json:"pubsub,omitempty"`
}

// String names the run as the progress and the plot do.
func (s Spec) String() string {
	out := fmt.Sprintf("%s failure, healing %s, Test %d, sync %s", s.Failure, onOff(s.Healing), s.Test, s.Variant)
	if s.PubSub {
		out += ", pub/sub"
	}
	return out
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// defaultPlan is, per failure kind, the tests and sync variants run when
// Options.Tests and Options.Variants are empty. The LAN failure is the
// paper's: both tests, without sync and with smart sync, give Table 1's
// four rows. A crash is healed only by the sync set's failure detection,
// so it runs with smart sync; a drain does not depend on the sync mode
// and runs with smart sync too; Test 1 (ITR1 everyone's gateway) shows
// the most. With healing both that is 8 + 2 + 1 = 11 runs of about 14 s.
var defaultPlan = map[Failure]struct {
	tests    []int
	variants []Variant
}{
	FailLAN:   {[]int{1, 2}, []Variant{Off, Smart}},
	FailCrash: {[]int{1}, []Variant{Smart}},
	FailDrain: {[]int{1}, []Variant{Smart}},
}

// Plan returns the runs o asks for, in order: by failure kind, test and
// variant, healing off before on.
func (o Options) Plan() []Spec {
	var out []Spec
	for _, f := range o.Failures {
		tests, variants := o.Tests, o.Variants
		if len(tests) == 0 {
			tests = defaultPlan[f].tests
		}
		if len(variants) == 0 {
			variants = defaultPlan[f].variants
		}
		for _, t := range tests {
			for _, v := range variants {
				for _, h := range o.Healing.settings() {
					if f == FailDrain && !h {
						continue // no drain without the healing
					}
					out = append(out, Spec{Failure: f, Healing: h, Test: t, Variant: v, PubSub: o.PubSub})
				}
			}
		}
	}
	return out
}

// PlanText describes the default plan in words (for the help and the
// output).
func PlanText() string {
	var parts []string
	for _, f := range Failures() {
		p := defaultPlan[f]
		var ts, vs []string
		for _, t := range p.tests {
			ts = append(ts, fmt.Sprint(t))
		}
		for _, v := range p.variants {
			vs = append(vs, string(v))
		}
		parts = append(parts, fmt.Sprintf("%s: tests %s x sync %s", f, strings.Join(ts, ","), strings.Join(vs, ",")))
	}
	return strings.Join(parts, "; ")
}

// normalized returns o with defaults filled in, or an error.
func (o Options) normalized() (Options, error) {
	if len(o.Failures) == 0 {
		o.Failures = Failures()
	}
	for _, f := range o.Failures {
		if _, err := ParseFailure(string(f)); err != nil {
			return o, err
		}
	}
	if o.Healing == "" {
		o.Healing = HealingBoth
	}
	if _, err := ParseHealing(string(o.Healing)); err != nil {
		return o, err
	}
	for _, t := range o.Tests {
		if t != int(topo.Test1) && t != int(topo.Test2) {
			return o, fmt.Errorf("%w: test %d (the paper has tests 1 and 2)", ErrInvalid, t)
		}
	}
	for _, v := range o.Variants {
		if _, err := ParseVariant(string(v)); err != nil {
			return o, err
		}
	}
	o.Failures = dedup(o.Failures)
	o.Tests = dedup(o.Tests)
	o.Variants = dedup(o.Variants)
	if o.Healing == HealingOff && slices.Contains(o.Failures, FailDrain) {
		return o, fmt.Errorf("%w: a drain is part of the healing (lispctl drain): it cannot run with healing off", ErrInvalid)
	}
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
	if o.VRRPAdvert == 0 {
		o.VRRPAdvert = DefaultVRRPAdvert
	}
	switch {
	case o.PingInterval < 10*time.Millisecond || o.PingInterval > 10*time.Second:
		return o, fmt.Errorf("%w: ping interval %v (10ms-10s)", ErrInvalid, o.PingInterval)
	case o.WarmUp < 2*o.PingInterval:
		return o, fmt.Errorf("%w: warm-up %v is shorter than two ping intervals", ErrInvalid, o.WarmUp)
	case o.AfterSwitch < 3*o.PingInterval:
		return o, fmt.Errorf("%w: after-switchover time %v is shorter than three ping intervals: flows would not send several packets", ErrInvalid, o.AfterSwitch)
	case o.VRRPAdvert < 10*time.Millisecond || o.VRRPAdvert > 4095*10*time.Millisecond || o.VRRPAdvert%(10*time.Millisecond) != 0:
		return o, fmt.Errorf("%w: VRRP advertisement interval %v (VRRPv3: a multiple of 10ms up to 40.95s)", ErrInvalid, o.VRRPAdvert)
	case o.Drain < 0:
		return o, fmt.Errorf("%w: negative drain time", ErrInvalid)
	}
	if len(o.Plan()) == 0 {
		return o, fmt.Errorf("%w: nothing to run", ErrInvalid)
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
func (o Options) advertInt() time.Duration { return o.VRRPAdvert }

// masterDown is the backup's Master_Down_Interval in use.
func (o Options) masterDown() time.Duration {
	return vrrp.MasterDownInterval(o.advertInt(), topo.BackupPriority)
}

// estimate is how long one run takes, roughly, for progress output.
func (o Options) estimate() time.Duration {
	d := o.WarmUp + o.advertInt() + o.masterDown() + o.AfterSwitch + o.Drain + 1500*time.Millisecond
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
		Failures:      o.Failures,
		Healing:       o.Healing,
		Tests:         o.Tests,
		Variants:      o.Variants,
		Plan:          o.Plan(),
		MasterDownITR: o.masterDown(),
		PubSub:        o.PubSub,
	}
}

// scaled says in words what differs from the paper's setting.
func (o Options) scaled() []string {
	out := []string{
		fmt.Sprintf("map TTL kept at the paper's %v: no record expires during a run, so every miss after the switchover falls within the TTL period", topo.MapTTL),
		fmt.Sprintf("each flow pings every %v (the paper's scripted pings had no stated rate); ITR1 fails %v or more after the first ping, once every flow has had a reply, and traffic goes on %v after the last switchover", o.PingInterval, o.WarmUp, o.AfterSwitch),
		fmt.Sprintf("VRRP as documented in deploy/keepalived (VRRPv3): advertisements every %v, so a backup takes over %v after the last advertisement (3 x advert_int + skew, priority %d), or after its skew time %v when the master leaves with a priority-0 advertisement (drain); the paper's keepalived had 1 s adverts and a 3.61 s takeover",
			o.advertInt(), o.masterDown().Round(time.Millisecond), topo.BackupPriority, vrrp.SkewTime(o.advertInt(), topo.BackupPriority).Round(time.Millisecond)),
	}
	if len(o.Tests) == 0 || len(o.Variants) == 0 {
		out = append(out, "runs per failure kind (default plan; --tests and --variants apply to every kind): "+PlanText()+"; healing "+string(o.Healing)+" (a drain runs with healing on only)")
	}
	if o.PubSub {
		out = append(out, "pub/sub (RFC 9437): the Map-Server takes subscriptions and every xTR subscribes to the mappings it asks for; the xTRs ignore Locator-Status-Bits and send no SMRs on a failover, and the site's ETRs have the Map-Server proxy-reply for them (so that no ETR answers a remote ITR and SMRs it later), so a remote ITR learns that ITR1's RLOC was withdrawn only from the Map-Server's publication of the survivor's re-registration; the remote xTRs' map-caches are read every "+RemotePoll.String()+" from the failure on to time it")
	}
	if !o.Netns {
		out = append(out, "embedded: the routers run in one process on loopback addresses with real UDP and TCP sockets; the hosts, the LAN and VRRP are modelled in memory; a crash cancels ITR1's daemon (its sockets close) and silences its VRRP instances; replies the remote ETRs then send to ITR1's RLOC are counted by a socket bound in its place")
	} else {
		out = append(out, "netns: a crash SIGKILLs lispd and keepalived on ITR1 (a whole-router crash; its LAN interface stays up); replies then sent to ITR1's RLOC are counted by a sniffer on its RLOC interface")
	}
	return out
}
