package daemon

// This file wires the synchronization set ([sync], package cachesync) into
// the daemon: it builds the member from the config, hooks it into the ITR
// (the member's version clock stamps the ITR's Map-Replies, its expiry
// policy replaces the ITR's, and the ITR's Refresh is its refresher), runs
// it, and shows it through the API (lispctl sync ...), the status counters
// and the Prometheus metrics.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/cachesync"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/xtr"
)

// syncRole is the daemon's membership in a synchronization set.
type syncRole struct {
	m *cachesync.Member // nil when [sync] is absent or off
}

// The Daemon answers the API's sync endpoints.
var _ api.SyncBackend = (*Daemon)(nil)

// SyncMember returns the daemon's synchronization set member, nil when
// [sync] is off. Tests and the lab read its counters.
func (d *Daemon) SyncMember() *cachesync.Member { return d.sync.m }

// newSync builds the member [sync] asks for and hooks it into the ITR. It
// opens nothing: startSync runs it.
func (d *Daemon) newSync(cfg *config.Config) error {
	if !cfg.SyncEnabled() {
		return nil
	}
	itr := d.x.itr
	if itr == nil {
		return errors.New("daemon: [sync] needs the itr role")
	}
	log := d.log.With("component", "sync")
	sc, err := syncConfig(cfg.Sync, itr, log)
	if err != nil {
		return err
	}
	// Without it the set logs nothing: peers connecting and leaving,
	// refused connections, a gossip key that does not match.
	sc.Logger = log
	sc.HeartbeatInterval = cfg.Failover.HeartbeatInterval
	sc.DeadAfter = cfg.Failover.DeadAfter
	if d.fo.on {
		sc.OnPeer = d.onPeer
	}
	m, err := cachesync.New(sc, itr.Cache())
	if err != nil {
		return fmt.Errorf("daemon: sync: %w", err)
	}
	// From now on the versions of the ITR's Map-Replies compare with the
	// peers' (newer wins), and expiry follows the set's policy.
	itr.SetVersions(m.NextVersion)
	itr.SetExpiryPolicy(m.OnExpire)
	d.sync.m = m
	d.reg.MustRegister(&syncCollector{m: m})
	return nil
}

// syncConfig maps [sync] onto cachesync.Config for the ITR itr.
func syncConfig(s *config.Sync, itr *xtr.ITR, log interface {
	Warn(string, ...any)
}) (cachesync.Config, error) {
	mode, err := cachesync.ParseMode(s.Mode)
	if err != nil {
		return cachesync.Config{}, fmt.Errorf("daemon: sync: %w", err)
	}
	name := s.Name
	if name == "" {
		if name, err = os.Hostname(); err != nil || name == "" {
			return cachesync.Config{}, fmt.Errorf("daemon: sync.name is empty and the host name is unknown: %v", err)
		}
	}
	limit := rate.NewLimiter(rate.Every(time.Second), 5)
	c := cachesync.Config{
		Mode:                mode,
		Name:                name,
		Listen:              s.Listen,
		RefreshWindow:       s.RefreshWindow,
		RoundInterval:       s.RoundInterval,
		AntiEntropyInterval: s.AntiEntropyInterval,
		MaxFrameSize:        s.MaxFrameSize,
		Refresher: cachesync.RefresherFunc(func(iid uint32, p netip.Prefix) {
			if err := itr.Refresh(iid, p); err != nil && limit.Allow() {
				log.Warn("sync: cannot refresh an expiring mapping", "iid", iid, "prefix", p, "err", err)
			}
		}),
	}
	switch mode {
	case cachesync.ModeGossip:
		key, err := config.SyncGossipKey(s.GossipKey)
		if err != nil {
			return c, fmt.Errorf("daemon: sync.gossip-key: %w", err)
		}
		c.Gossip = cachesync.GossipConfig{Seeds: s.Seeds, SecretKey: key}
	default:
		k, err := cachesync.LoadPrivateKey(s.PrivateKey)
		if err != nil {
			return c, fmt.Errorf("daemon: sync.private-key: %w", err)
		}
		c.PrivateKey = k
		for _, p := range s.Peers {
			pub, err := cachesync.ParsePublicKey(p.PublicKey)
			if err != nil {
				return c, fmt.Errorf("daemon: sync.peer %q: %w", p.Name, err)
			}
			c.Peers = append(c.Peers, cachesync.Peer{Name: p.Name, Address: p.Address, PublicKey: pub})
		}
	}
	return c, nil
}

// startSync runs the member until ctx ends. It returns once the member
// listens, or the error that kept it from listening.
func (d *Daemon) startSync(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) error {
	m := d.sync.m
	if m == nil {
		return nil
	}
	done := make(chan error, 1)
	wg.Go(func() { // RoutineSync
		err := m.Run(ctx)
		done <- err
		if err != nil {
			select {
			case errc <- fmt.Errorf("daemon: sync: %w", err):
			default:
			}
		}
	})
	select {
	case <-m.Ready():
		return nil
	case err := <-done:
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("daemon: sync: %w", err)
	}
}

// syncCounters adds the member's counters to out as sync_<name>.
func (d *Daemon) syncCounters(out map[string]uint64) {
	if m := d.sync.m; m != nil {
		for name, v := range syncCounterValues(m.Stats()) {
			out["sync_"+name] = v
		}
	}
}

// syncCounterValues names the member's counters.
func syncCounterValues(s cachesync.Stats) map[string]uint64 {
	return map[string]uint64{
		"peers":               uint64(s.Peers),
		"peers_connected":     uint64(s.Connected),
		"records_sent":        s.RecordsSent,
		"records_received":    s.RecordsReceived,
		"bytes_sent":          s.BytesSent,
		"bytes_received":      s.BytesReceived,
		"wire_bytes_sent":     s.WireBytesSent,
		"wire_bytes_received": s.WireBytesReceived,
		"frames_sent":         s.FramesSent,
		"frames_received":     s.FramesReceived,
		"records_applied":     s.RecordsApplied,
		"records_ignored":     s.RecordsIgnored,
		"records_expired":     s.RecordsExpired,
		"announced":           s.Announced,
		"digests_received":    s.DigestsReceived,
		"buckets_differing":   s.BucketsDiffering,
		"auth_failures":       s.AuthFailures,
		"handshake_failures":  s.HandshakeFailures,
		"malformed_frames":    s.MalformedFrames,
		"unknown_frames":      s.UnknownFrames,
		"queue_overflows":     s.QueueOverflows,
		"feed_resyncs":        s.FeedResyncs,
		"inbox_drops":         s.InboxDrops,
		"refreshes":           s.Refreshes,
		"kept_for_peers":      s.KeptForPeers,
		"probations":          s.Probations,
		"expired_unused":      s.ExpiredUnused,
		"expired_stale":       s.ExpiredStale,
		"peers_dead":          s.PeersDead,
		"handshake_timeouts":  s.HandshakeTimeouts,
		"refused_busy":        s.RefusedBusy,
		"refused_source":      s.RefusedSource,
		"fallback_dials":      s.FallbackDials,
		"sessions_superseded": s.SessionsSuperseded,
		"gossip_key_failures": s.GossipKeyFailures,
		"gossip_malformed":    s.GossipMalformed,
	}
}

// SyncStatus implements api.SyncBackend.
func (d *Daemon) SyncStatus(ctx context.Context) (api.SyncStatus, error) {
	m := d.sync.m
	if m == nil {
		return api.SyncStatus{}, api.WithKind(api.ErrUnavailable,
			errors.New("this daemon has no synchronization set ([sync] is absent or its mode is off)"))
	}
	st := m.Stats()
	out := api.SyncStatus{
		Mode:           st.Mode.String(),
		Name:           st.Name,
		Listen:         m.Addr(),
		Origin:         st.Origin,
		PeersKnown:     st.Peers,
		PeersConnected: st.Connected,
		Counters: api.SyncCounters{
			RecordsSent: st.RecordsSent, RecordsReceived: st.RecordsReceived,
			BytesSent: st.BytesSent, BytesReceived: st.BytesReceived,
			WireBytesSent: st.WireBytesSent, WireBytesReceived: st.WireBytesReceived,
			FramesSent: st.FramesSent, FramesReceived: st.FramesReceived,
			RecordsApplied: st.RecordsApplied, RecordsIgnored: st.RecordsIgnored, RecordsExpired: st.RecordsExpired,
			Announced: st.Announced, DigestsReceived: st.DigestsReceived, BucketsDiffering: st.BucketsDiffering,
			AuthFailures: st.AuthFailures, HandshakeFailures: st.HandshakeFailures,
			MalformedFrames: st.MalformedFrames, UnknownFrames: st.UnknownFrames,
			QueueOverflows: st.QueueOverflows, FeedResyncs: st.FeedResyncs, InboxDrops: st.InboxDrops,
			Refreshes: st.Refreshes, KeptForPeers: st.KeptForPeers, Probations: st.Probations,
			ExpiredUnused: st.ExpiredUnused, ExpiredStale: st.ExpiredStale,
		},
	}
	out.RefreshWindowSeconds = st.RefreshWindow.Seconds()
	out.RoundIntervalSeconds = st.RoundInterval.Seconds()
	if k := m.PublicKey(); k != nil {
		out.PublicKey = cachesync.FormatPublicKey(k)
	}
	for _, p := range m.Peers() {
		out.Peers = append(out.Peers, api.SyncPeer{
			Name: p.Name, Address: p.Address, PublicKey: p.PublicKey, Dials: p.Dials,
			State: string(p.State), Since: p.Since, LastExchange: p.LastExchange, LastError: p.LastError,
			Connects: p.Connects, RecordsSent: p.RecordsSent, RecordsReceived: p.RecordsReceived,
			BytesSent: p.BytesSent, BytesReceived: p.BytesReceived, FramesSent: p.FramesSent,
			FramesReceived: p.FramesReceived, AuthFailures: p.AuthFailures,
		})
	}
	return out, nil
}

// syncCollector exports the per-peer figures of the synchronization set
// (the member's own counters are in the daemon's counters, exported as
// lispd_sync_<name>_total by statsCollector).
type syncCollector struct{ m *cachesync.Member }

var (
	syncPeerUp = prometheus.NewDesc("lispd_sync_peer_up",
		"1 when the synchronization set peer is connected (gossip: alive), else 0.", []string{"peer"}, nil)
	syncPeerRecords = prometheus.NewDesc("lispd_sync_peer_records_total",
		"Mapping records exchanged with the peer, by direction (sent, received).", []string{"peer", "direction"}, nil)
	syncPeerBytes = prometheus.NewDesc("lispd_sync_peer_bytes_total",
		"Frame bytes exchanged with the peer, by direction (sent, received).", []string{"peer", "direction"}, nil)
	syncPeerAuthFailures = prometheus.NewDesc("lispd_sync_peer_auth_failures_total",
		"Connections with the peer refused because it proved another public key.", []string{"peer"}, nil)
	syncPeerConnects = prometheus.NewDesc("lispd_sync_peer_connects_total",
		"Sessions established with the peer.", []string{"peer"}, nil)
	syncPeerLastExchange = prometheus.NewDesc("lispd_sync_peer_last_exchange_seconds",
		"Unix time of the last frame received from the peer (0: never).", []string{"peer"}, nil)
)

// Describe implements prometheus.Collector.
func (c *syncCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{syncPeerUp, syncPeerRecords, syncPeerBytes, syncPeerAuthFailures, syncPeerConnects, syncPeerLastExchange} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *syncCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.m.Peers() {
		up := 0.0
		if p.State == cachesync.PeerConnected {
			up = 1
		}
		var last float64
		if !p.LastExchange.IsZero() {
			last = float64(p.LastExchange.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(syncPeerUp, prometheus.GaugeValue, up, p.Name)
		ch <- prometheus.MustNewConstMetric(syncPeerRecords, prometheus.CounterValue, float64(p.RecordsSent), p.Name, "sent")
		ch <- prometheus.MustNewConstMetric(syncPeerRecords, prometheus.CounterValue, float64(p.RecordsReceived), p.Name, "received")
		ch <- prometheus.MustNewConstMetric(syncPeerBytes, prometheus.CounterValue, float64(p.BytesSent), p.Name, "sent")
		ch <- prometheus.MustNewConstMetric(syncPeerBytes, prometheus.CounterValue, float64(p.BytesReceived), p.Name, "received")
		ch <- prometheus.MustNewConstMetric(syncPeerAuthFailures, prometheus.CounterValue, float64(p.AuthFailures), p.Name)
		ch <- prometheus.MustNewConstMetric(syncPeerConnects, prometheus.CounterValue, float64(p.Connects), p.Name)
		ch <- prometheus.MustNewConstMetric(syncPeerLastExchange, prometheus.GaugeValue, last, p.Name)
	}
}
