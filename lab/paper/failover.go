package paper

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lispd/lispd/api"
)

// This file is where the lab meets lispd's failover healing: the
// [failover] section of lispd.toml (config.Failover) and the API's Drain
// (the embedded EID-side link monitor, daemon.Options.EIDLinkUp, is set in
// embedded.go).

// failoverConfig is an xTR's [failover] section: enabled as healing says,
// and, with healing on, the VRRP track file lispd writes (0, then 1 once
// a drain moved the ingress away) and the EID-side interfaces it watches
// (netns; none for the embedded daemons, whose EID side is an in-memory
// device: they are told through daemon.Options instead). With noSMR (the
// pub/sub runs) the failover sends no SMRs to the remote ITRs.
func failoverConfig(healing bool, trackFile string, watch []string, noSMR bool) string {
	s := fmt.Sprintf("\n[failover]\nenabled = %v\n", healing)
	if noSMR {
		s += "solicit-map-requests = false\n"
	}
	if healing && trackFile != "" {
		s += fmt.Sprintf("vrrp-track-file = %q\n", trackFile)
	}
	if healing && len(watch) > 0 {
		var q []string
		for _, w := range watch {
			q = append(q, strconv.Quote(w))
		}
		s += fmt.Sprintf("watch-interfaces = [%s]\n", strings.Join(q, ", "))
	}
	return s
}

// DrainOutcome is what ITR1's Drain said (a drain run).
type DrainOutcome struct {
	// Quiet: the ingress moved (no LISP packet for failover.drain-quiet)
	// before the drain timeout; otherwise lispd handed the gateway over
	// anyway.
	Quiet bool `json:"quiet"`
	// Waited is how long lispd waited for the ingress to move;
	// PacketsDuring the LISP packets it received meanwhile.
	Waited        time.Duration `json:"waited_ns"`
	PacketsDuring uint64        `json:"packets_during"`
	// Took is how long the Drain call took, as the lab measured it.
	Took time.Duration `json:"took_ns"`
	// TrackFile is the VRRP track file lispd wrote.
	TrackFile string `json:"track_file,omitempty"`
}

// drain drains the xTR whose API client is c, as lispctl drain does, with
// a client whose timeout outlasts the drain's.
func drain(ctx context.Context, c *api.Client) (DrainOutcome, error) {
	dc := api.NewClient(c.Socket(), api.WithTimeout(DrainTimeout+5*time.Second))
	defer dc.Close()
	start := time.Now()
	res, err := dc.Drain(ctx, api.DrainRequest{Timeout: DrainTimeout})
	if err != nil {
		return DrainOutcome{}, err
	}
	return DrainOutcome{Quiet: res.Quiet, Waited: res.Waited, PacketsDuring: res.PacketsDuring, Took: time.Since(start), TrackFile: res.TrackFile}, nil
}
