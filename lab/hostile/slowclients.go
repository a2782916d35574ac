//go:build linux

package hostile

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// SlowClients holds idle TCP connections open to a listener, as a slow
// or malicious client does: each connects and sends nothing, and when the
// listener closes it (a refusal, a handshake timeout) it connects again
// after a pause, so that the pressure lasts until Close.
type SlowClients struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Attempts counts the connections attempted (many are reset before
	// the dial returns: a refusal at once).
	Attempts atomic.Uint64
	// Open is how many are open now.
	Open atomic.Int64
}

// StartSlowClients opens perSource connections from each of sources to
// target, each re-opened redial after the listener closed it.
func StartSlowClients(target netip.AddrPort, sources []netip.Addr, perSource int, redial time.Duration) *SlowClients {
	ctx, cancel := context.WithCancel(context.Background())
	s := &SlowClients{cancel: cancel}
	for _, src := range sources {
		for range perSource {
			s.wg.Go(func() { s.hold(ctx, src, target, redial) }) // RoutineSlowClient
		}
	}
	return s
}

// hold keeps one idle connection from src to target open until ctx ends.
func (s *SlowClients) hold(ctx context.Context, src netip.Addr, target netip.AddrPort, redial time.Duration) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: 2 * time.Second}
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		s.Attempts.Add(1)
		c, err := d.DialContext(ctx, "tcp", target.String())
		if err == nil {
			s.Open.Add(1)
			stop := context.AfterFunc(ctx, func() { c.Close() })
			for {
				// Whatever the listener says (a TLS alert), the client
				// says nothing; it waits to be closed.
				if _, err := c.Read(buf); err != nil {
					break
				}
			}
			stop()
			c.Close()
			s.Open.Add(-1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(redial):
		}
	}
}

// Close closes every connection and waits until the clients stopped.
func (s *SlowClients) Close() {
	s.cancel()
	s.wg.Wait()
}
