package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a new metrics registry for one daemon, with the Go
// runtime and process collectors registered. Each daemon (and each daemon
// of an embedded lab) has its own: the global default registry is never
// used.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// NewMetricsHandler returns the handler of the /metrics endpoint for reg.
// A collector that fails is reported in the handler's error counter and the
// other metrics are still served. A nil reg answers 503.
func NewMetricsHandler(reg *prometheus.Registry) http.Handler {
	if reg == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "no metrics registry", http.StatusServiceUnavailable)
		})
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	})
}

// ServeMetrics listens on the TCP address addr (e.g. "127.0.0.1:9317") and
// serves reg on /metrics until ctx is canceled. It returns nil after a
// shutdown caused by ctx.
func ServeMetrics(ctx context.Context, addr string, reg *prometheus.Registry) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("api: metrics listener: %w", err)
	}
	return ServeMetricsListener(ctx, ln, reg)
}

// ServeMetricsListener is ServeMetrics on a listener the caller opened
// (e.g. on port 0, to learn the port from ln.Addr). It closes ln.
func ServeMetricsListener(ctx context.Context, ln net.Listener, reg *prometheus.Registry) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", NewMetricsHandler(reg))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "lispd metrics: GET /metrics")
	})
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		if hs.Shutdown(sctx) != nil {
			hs.Close()
		}
		cancel()
		err = <-errc
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("api: metrics: %w", err)
}
