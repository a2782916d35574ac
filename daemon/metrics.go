package daemon

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lispd/lispd/config"
)

// statsCollector exports the daemon's counters (the same ones `lispctl
// status` shows) as Prometheus counters named lispd_<component>_<name>_total,
// and the Map-Server's pub/sub levels as gauges (msSubscriptions,
// msPubSubPending).
type statsCollector struct{ d *Daemon }

// The Map-Server's gauges: levels, not counts.
var (
	msSubscriptions = prometheus.NewDesc("lispd_mapserver_subscriptions",
		"Publish/subscribe subscriptions the Map-Server holds (see docs/metrics.md).", nil, nil)
	msPubSubPending = prometheus.NewDesc("lispd_mapserver_pubsub_pending",
		"Pub/sub Map-Notifies awaiting their Map-Notify-Ack (see docs/metrics.md).", nil, nil)
)

// Describe implements prometheus.Collector. The set of counters is fixed per
// build, but it is sent unchecked (no descriptors) so new counters need no
// registration code.
func (c *statsCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	cs := c.d.counters()
	for _, name := range keys(cs) {
		metric := "lispd_" + strings.ReplaceAll(name, "-", "_") + "_total"
		desc := prometheus.NewDesc(metric, "lispd counter "+name+" (see docs/metrics.md).", nil, nil)
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(cs[name]))
	}
	if ms := c.d.ms; ms != nil && c.d.Config().HasRole(config.RoleMapServer) {
		st := ms.Stats()
		ch <- prometheus.MustNewConstMetric(msSubscriptions, prometheus.GaugeValue, float64(st.Subscriptions))
		ch <- prometheus.MustNewConstMetric(msPubSubPending, prometheus.GaugeValue, float64(st.PubSubPending))
	}
}

// listenTCP opens the metrics listener.
func listenTCP(a netip.AddrPort) (net.Listener, error) {
	return net.Listen("tcp", a.String())
}

// restartable runs one server goroutine at a time under the daemon's
// context, so that a reload can replace it (the metrics listener).
type restartable struct {
	parent context.Context
	wg     *sync.WaitGroup
	errc   chan<- error

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

func newRestartable(parent context.Context, wg *sync.WaitGroup, errc chan<- error) *restartable {
	return &restartable{parent: parent, wg: wg, errc: errc}
}

// start stops the running server, if any, and runs serve.
func (r *restartable) start(serve func(ctx context.Context) error) {
	r.stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx, cancel := context.WithCancel(r.parent)
	done := make(chan struct{})
	r.cancel, r.done = cancel, done
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(done)
		if err := serve(ctx); err != nil && ctx.Err() == nil {
			select {
			case r.errc <- err:
			default:
			}
		}
	}()
}

// stop stops the running server and waits for it.
func (r *restartable) stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
