package vrrp

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultTrackPoll is how often TrackFile reads a track file.
const DefaultTrackPoll = 10 * time.Millisecond

// TrackFile makes router's instances follow a keepalived track_file (with
// weight 0, keepalived's default): while the file holds a non-zero integer
// the instances are in Fault (see SetTracked), while it holds 0, is empty
// or missing they run. It reads the file every poll (DefaultTrackPoll when
// 0) until ctx is done, then returns nil. keepalived watches the file with
// inotify; polling every 10 ms is within a VRRPv3 advertisement's
// granularity. A file that does not hold an integer is treated as 0
// (keepalived logs it and keeps the last value; the lab writes only
// integers).
func (s *Segment) TrackFile(ctx context.Context, router, path string, poll time.Duration) error {
	if poll <= 0 {
		poll = DefaultTrackPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	failing := false
	for {
		v, err := ReadTrackFile(path)
		if err == nil && (v != 0) != failing {
			failing = v != 0
			if err := s.SetTracked(router, failing, time.Now()); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ReadTrackFile returns the integer a track file holds: 0 for a missing
// or empty file.
func ReadTrackFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	f := strings.TrimSpace(string(b))
	if f == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(strings.Fields(f)[0])
	if err != nil {
		return 0, nil
	}
	return v, nil
}
