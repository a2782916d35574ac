package benchdata

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// Limits and defaults of the benchmark.
const (
	// MinSize and MaxSize bound a packet size (the inner IP packet: IPv4
	// and UDP headers and payload). MaxSize is the xTRs' TUN MTU.
	MinSize = 40
	MaxSize = 1444
	// DefaultDuration is how long each measurement counts packets.
	DefaultDuration = 5 * time.Second
	// DefaultRounds is the default Config.Rounds.
	DefaultRounds = 3
	// DefaultWarmup is how long traffic flows before counting starts,
	// after the first packet was delivered.
	DefaultWarmup = time.Second
	// ReceiverPort is the receiver's UDP port on hostB.
	ReceiverPort = 9000
	// SenderPort is the sender's UDP port on hostA.
	SenderPort = 9001
)

// Sender rates (Config.Rate).
const (
	// RateAdaptive offers a little more than the routers deliver.
	RateAdaptive = 0
	// RateMax sends as fast as the sender can.
	RateMax = -1
	// AdaptiveHeadroom is the offered rate over the delivered rate of
	// RateAdaptive.
	AdaptiveHeadroom = 1.25
	// AdaptiveInterval is how often RateAdaptive adjusts the rate.
	AdaptiveInterval = 50 * time.Millisecond
	// AdaptiveMinRate is the lowest (and the first) rate RateAdaptive
	// offers.
	AdaptiveMinRate = 20000
)

// DefaultSizes are the packet sizes measured by default.
var DefaultSizes = []int{64, 1400}

// Errors returned by this package; match them with errors.Is.
var (
	// ErrInvalid is wrapped by every configuration error.
	ErrInvalid = errors.New("benchdata: invalid configuration")
	// ErrUnsupported is returned where the benchmark cannot run (not
	// Linux).
	ErrUnsupported = errors.New("benchdata: the data-plane benchmark needs Linux network namespaces")
	// ErrNoTraffic is wrapped when no packet reached the receiver during
	// the warm-up.
	ErrNoTraffic = errors.New("benchdata: no packet got through")
)

// Config configures Run.
type Config struct {
	// Lispd is the lispd binary. Required.
	Lispd string
	// Relay is the command line that runs the baseline relay in a
	// namespace: a program and its leading arguments (for lisplab,
	// [lisplab relay]). Run appends --tun, --mtu, --route, --listen and
	// --peer (see RelayConfig); the program must call RunRelay with them
	// and print RelayReady on stdout once it relays. Required.
	Relay []string
	// Duration is how long each measurement counts; 0 means
	// DefaultDuration.
	Duration time.Duration
	// Warmup is how long traffic flows before counting; 0 means
	// DefaultWarmup.
	Warmup time.Duration
	// Rounds is how many times each size is measured with each router;
	// 0 means DefaultRounds. The two routers alternate (lispd first in odd
	// rounds, the relay first in even ones), and the reported ratio is the
	// median of the rounds' ratios, so that a slow moment of a shared
	// machine hits one round, not the comparison.
	Rounds int
	// Sizes are the inner IP packet sizes, each within [MinSize, MaxSize];
	// empty means DefaultSizes.
	Sizes []int
	// Rate is the sender's rate in datagrams per second: RateAdaptive (0,
	// the default) follows the receiver, offering AdaptiveHeadroom times
	// the rate delivered in the last AdaptiveInterval, so that the routers
	// are always offered more than they carry without the machine's CPUs
	// being spent on packets that are dropped anyway; RateMax sends as
	// fast as the sender can; a positive value is a fixed rate.
	Rate int
	// SenderGSO makes the sender use UDP segmentation offload: the kernel
	// then hands the xTR's TUN device runs of up to 64 datagrams at once
	// (as a TCP sender with TSO would), instead of one packet per read.
	SenderGSO bool
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// withDefaults checks c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Lispd == "" {
		return c, fmt.Errorf("%w: no lispd binary", ErrInvalid)
	}
	if len(c.Relay) == 0 || c.Relay[0] == "" {
		return c, fmt.Errorf("%w: no relay command", ErrInvalid)
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Warmup == 0 {
		c.Warmup = DefaultWarmup
	}
	if c.Duration < 0 || c.Warmup < 0 {
		return c, fmt.Errorf("%w: negative duration or warm-up", ErrInvalid)
	}
	if c.Rounds == 0 {
		c.Rounds = DefaultRounds
	}
	if c.Rounds < 0 {
		return c, fmt.Errorf("%w: %d rounds", ErrInvalid, c.Rounds)
	}
	if c.Rate < RateMax {
		return c, fmt.Errorf("%w: sender rate %d", ErrInvalid, c.Rate)
	}
	if len(c.Sizes) == 0 {
		c.Sizes = DefaultSizes
	}
	for _, s := range c.Sizes {
		if s < MinSize || s > MaxSize {
			return c, fmt.Errorf("%w: packet size %d is not within %d..%d", ErrInvalid, s, MinSize, MaxSize)
		}
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c, nil
}

// Router names the two ways the xTR nodes are run.
type Router string

// The routers measured.
const (
	// RouterLispd is lispd as ITR and ETR.
	RouterLispd Router = "lispd"
	// RouterRelay is the baseline relay.
	RouterRelay Router = "relay"
)

// Result is the outcome of Run.
type Result struct {
	// Date is when the benchmark started.
	Date time.Time `json:"date"`
	// Machine describes where it ran.
	Machine Machine `json:"machine"`
	// DurationSeconds is the counting time of each measurement.
	DurationSeconds float64 `json:"duration_seconds"`
	// Rounds is Config.Rounds.
	Rounds int `json:"rounds"`
	// Rate is the sender's rate setting: "adaptive", "max" or the fixed
	// datagrams per second.
	Rate string `json:"rate"`
	// SenderGSO is Config.SenderGSO.
	SenderGSO bool `json:"sender_gso"`
	// Sizes holds one entry per packet size, in the order asked for.
	Sizes []SizeResult `json:"sizes"`
}

// Machine describes the machine the benchmark ran on.
type Machine struct {
	// CPUs is the number of online CPUs.
	CPUs int `json:"cpus"`
	// Model is the CPU model name.
	Model string `json:"model"`
	// Kernel is the kernel release.
	Kernel string `json:"kernel"`
	// LoadAverage is the 1, 5 and 15 minute load average at the start.
	LoadAverage string `json:"load_average"`
}

// SizeResult holds the measurements of one packet size.
type SizeResult struct {
	// Size is the inner IP packet size in bytes.
	Size int `json:"size"`
	// Lispd and Relay are the rounds' median measurements (by delivered
	// packets per second).
	Lispd Measurement `json:"lispd"`
	Relay Measurement `json:"relay"`
	// Ratio is the median of the rounds' ratios.
	Ratio float64 `json:"ratio"`
	// Rounds are the measurements of each round.
	Rounds []Round `json:"rounds"`
}

// Round is one round of a size: both routers, one after the other.
type Round struct {
	// Lispd and Relay are the two measurements.
	Lispd Measurement `json:"lispd"`
	Relay Measurement `json:"relay"`
	// Ratio is lispd's delivered packets per second over the relay's.
	Ratio float64 `json:"ratio"`
}

// summarize fills in the medians of s.Rounds.
func (s *SizeResult) summarize() {
	n := len(s.Rounds)
	if n == 0 {
		return
	}
	lispd, relay, ratios := make([]Measurement, n), make([]Measurement, n), make([]float64, n)
	for i, r := range s.Rounds {
		lispd[i], relay[i], ratios[i] = r.Lispd, r.Relay, r.Ratio
	}
	byRate := func(a, b Measurement) int { return cmp.Compare(a.PacketsPerSecond, b.PacketsPerSecond) }
	slices.SortFunc(lispd, byRate)
	slices.SortFunc(relay, byRate)
	slices.Sort(ratios)
	s.Lispd, s.Relay = lispd[(n-1)/2], relay[(n-1)/2]
	s.Ratio = ratios[(n-1)/2]
	if n%2 == 0 {
		s.Ratio = (ratios[n/2-1] + ratios[n/2]) / 2
	}
}

// Measurement is what one router delivered at one size.
type Measurement struct {
	// Router is what ran on the xTR nodes.
	Router Router `json:"router"`
	// Seconds is the counting time.
	Seconds float64 `json:"seconds"`
	// Sent and Delivered count the datagrams the sender sent and the
	// receiver got during it.
	Sent      uint64 `json:"sent"`
	Delivered uint64 `json:"delivered"`
	// SentPerSecond and PacketsPerSecond are the rates.
	SentPerSecond    float64 `json:"sent_per_second"`
	PacketsPerSecond float64 `json:"packets_per_second"`
	// BitsPerSecond is PacketsPerSecond times the packet size in bits.
	BitsPerSecond float64 `json:"bits_per_second"`
	// Loss is the fraction of the sent datagrams not delivered.
	Loss float64 `json:"loss"`
	// ITRCPU and ETRCPU are the CPU the router processes on xtrA and
	// xtrB used, in percent of one core; GeneratorCPU that of this
	// process (sender and receiver); MachineCPU the whole machine's busy
	// time, in percent of one core (at most 100 times the CPU count).
	ITRCPU       float64 `json:"itr_cpu"`
	ETRCPU       float64 `json:"etr_cpu"`
	GeneratorCPU float64 `json:"generator_cpu"`
	MachineCPU   float64 `json:"machine_cpu"`
}

// measurement computes the rates of a measurement.
func measurement(r Router, size int, sent, delivered uint64, d time.Duration) Measurement {
	m := Measurement{Router: r, Seconds: d.Seconds(), Sent: sent, Delivered: delivered}
	if d > 0 {
		m.SentPerSecond = float64(sent) / d.Seconds()
		m.PacketsPerSecond = float64(delivered) / d.Seconds()
		m.BitsPerSecond = m.PacketsPerSecond * float64(size) * 8
	}
	if sent > 0 && delivered < sent {
		m.Loss = float64(sent-delivered) / float64(sent)
	}
	return m
}

// ratio returns a/b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// RateName returns the name of a Config.Rate: "adaptive", "max" or the
// number.
func RateName(r int) string {
	switch r {
	case RateAdaptive:
		return "adaptive"
	case RateMax:
		return "max"
	}
	return strconv.Itoa(r)
}
