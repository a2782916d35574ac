//go:build !linux

package benchdata

import "context"

// Run runs the benchmark; it needs Linux network namespaces.
func Run(ctx context.Context, c Config) (*Result, error) { return nil, ErrUnsupported }

// RunRelay runs the baseline relay; it needs a Linux TUN device.
func RunRelay(ctx context.Context, c RelayConfig) error { return ErrUnsupported }
