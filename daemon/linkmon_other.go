//go:build !linux

package daemon

import (
	"context"
	"errors"
	"net/netip"
)

var errNoLinkMonitor = errors.New("link monitoring needs Linux (netlink)")

func watchLinks(_ context.Context, _ []string, _ string, ready chan<- error, _ func(bool, string)) {
	ready <- errNoLinkMonitor
}

func routedInterfaces([]netip.Prefix, string) ([]string, error) { return nil, errNoLinkMonitor }
