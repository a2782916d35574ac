package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/config"
)

// The Daemon is the API's Backend: every front end (lispctl, SIGHUP) calls
// the same methods.
var _ api.Backend = (*Daemon)(nil)

// Status implements api.Backend.
func (d *Daemon) Status(ctx context.Context) (api.Status, error) {
	cfg := d.Config()
	st := api.Status{
		Version:       Version,
		PID:           os.Getpid(),
		ConfigPath:    cfg.Path,
		StartedAt:     d.started,
		UptimeSeconds: int64(time.Since(d.started) / time.Second),
		LogLevel:      config.LogLevelName(d.level.Level()),
		Counters:      d.counters(),
	}
	for _, r := range cfg.Daemon.Roles {
		st.Roles = append(st.Roles, string(r))
	}
	for _, a := range d.control.addrs() {
		st.Listeners = append(st.Listeners, api.Listener{Name: "control", Network: "udp", Address: a.String()})
	}
	st.Listeners = append(st.Listeners, api.Listener{Name: "api", Network: "unix", Address: d.socketPath()})
	if m := cfg.Daemon.MetricsListen; m.IsValid() {
		st.Listeners = append(st.Listeners, api.Listener{Name: "metrics", Network: "tcp", Address: m.String()})
	}
	return st, nil
}

// Registrations implements api.Backend.
func (d *Daemon) Registrations(ctx context.Context) ([]api.Registration, error) {
	if d.ms == nil {
		return []api.Registration{}, nil
	}
	views := d.ms.Registrations()
	out := make([]api.Registration, 0, len(views))
	for _, v := range views {
		r := api.Registration{
			Site:            v.Site,
			InstanceID:      v.InstanceID,
			EIDPrefix:       v.Prefix,
			SiteID:          v.SiteID,
			RegisteredBy:    v.RegisteredBy,
			FirstRegistered: v.FirstRegistered,
			LastRegistered:  v.LastRegistered,
			Expires:         v.Expires,
			ProxyReply:      v.ProxyReply,
			WantMapNotify:   v.WantMapNotify,
			TTLSeconds:      v.RecordTTL * 60,
			KeyID:           v.KeyID,
			Algorithm:       v.Algorithm.String(),
		}
		if v.XTRIDPresent {
			r.XTRID = api.XTRID(v.XTRID)
		}
		for _, l := range v.RLOCs {
			_, ip, _ := l.Address.InstanceIP()
			r.RLOCs = append(r.RLOCs, api.RLOC{
				Address: ip, Priority: l.Priority, Weight: l.Weight,
				MPriority: l.MPriority, MWeight: l.MWeight,
				Local: l.Local, Probed: l.Probed, Reachable: l.Reachable,
			})
		}
		out = append(out, r)
	}
	return out, nil
}

// MapCache implements api.Backend: the ITR's map-cache (xtr.go). A daemon
// without the itr role has no map-cache, so the list is empty.
func (d *Daemon) MapCache(ctx context.Context) ([]api.MapCacheEntry, error) {
	return d.mapCacheView(), nil
}

// SetLogLevel implements api.Backend.
func (d *Daemon) SetLogLevel(ctx context.Context, level string) error {
	l, err := config.ParseLogLevel(level)
	if err != nil {
		return err
	}
	old := d.level.Level()
	d.level.Set(l)
	d.log.Log(ctx, max(l, slog.LevelInfo), "log level changed", "from", config.LogLevelName(old), "to", config.LogLevelName(l))
	return nil
}

// The Daemon answers GET /v1/subscriptions.
var _ api.PubSubBackend = (*Daemon)(nil)

// Subscriptions implements api.PubSubBackend: the publish/subscribe
// subscriptions the Map-Server holds (ms role) and the ITR's own (itr
// role); ErrUnavailable when the daemon plays neither role.
func (d *Daemon) Subscriptions(ctx context.Context) (api.Subscriptions, error) {
	var out api.Subscriptions
	ms := d.ms != nil && d.Config().HasRole(config.RoleMapServer)
	if !ms && d.x.itr == nil {
		return out, api.WithKind(api.ErrUnavailable, errors.New("this daemon plays neither the ms nor the itr role, so it has no subscriptions"))
	}
	if ms {
		views := d.ms.Subscriptions()
		out.MapServer = make([]api.MapServerSubscription, 0, len(views))
		for _, v := range views {
			out.MapServer = append(out.MapServer, api.MapServerSubscription{
				InstanceID: v.InstanceID,
				Prefix:     v.Prefix,
				XTRID:      api.XTRID(v.XTRID),
				SiteID:     v.SiteID,
				ITR:        v.ITR,
				Confirmed:  v.Confirmed,
				Negative:   v.Negative,
				Nonce:      api.Nonce(v.Nonce),
				Expires:    v.Expires,
				Pending:    v.Pending,
			})
		}
	}
	if d.x.itr != nil {
		subs := d.x.itr.Subscriptions()
		out.ITR = make([]api.ITRSubscription, 0, len(subs))
		for _, s := range subs {
			out.ITR = append(out.ITR, api.ITRSubscription{
				InstanceID: s.InstanceID,
				Prefix:     s.Prefix,
				MapServer:  s.MapServer,
				Nonce:      api.Nonce(s.Nonce),
				Subscribed: s.Subscribed,
				LastNotify: s.LastNotify,
				Notifies:   s.Notifies,
			})
		}
	}
	return out, nil
}
