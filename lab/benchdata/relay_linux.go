//go:build linux

package benchdata

import (
	"context"
	"fmt"
	"io"

	"github.com/lispd/lispd/dataplane"
)

// RunRelay runs the baseline router of one xTR node until ctx ends: it
// creates the TUN device with its routes (in the calling thread's network
// namespace, as lispd does), binds the UDP socket, and runs a
// dataplane.Relay between them, which moves packets from the TUN device to
// the peer and from the socket to the TUN device with lispd's batching but
// no LISP processing. It needs CAP_NET_ADMIN.
func RunRelay(ctx context.Context, c RelayConfig) error {
	if err := c.validate(); err != nil {
		return err
	}
	if c.Ready == nil {
		c.Ready = io.Discard
	}
	tun, err := dataplane.CreateTUN(dataplane.TUNConfig{Name: c.TUN, MTU: c.MTU, Routes: c.Routes})
	if err != nil {
		return fmt.Errorf("benchdata: relay TUN %q: %w", c.TUN, err)
	}
	conn, err := dataplane.ListenUDP(dataplane.UDPConfig{Addr: c.Listen})
	if err != nil {
		_ = tun.Close()
		return fmt.Errorf("benchdata: relay socket %v: %w", c.Listen, err)
	}
	r, err := dataplane.NewRelay(tun, conn, c.Peer, 0)
	if err != nil {
		_ = tun.Close()
		_ = conn.Close()
		return fmt.Errorf("benchdata: %w", err)
	}
	if _, err := fmt.Fprintln(c.Ready, RelayReady); err != nil {
		_ = tun.Close()
		_ = conn.Close()
		return fmt.Errorf("benchdata: %w", err)
	}
	err = r.Run(ctx) // closes tun and conn
	st := r.Stats()
	fmt.Fprintf(c.Ready, "relay stopped: tun->udp %d, udp->tun %d, read errors %d, write errors %d\n",
		st.DeviceToConn, st.ConnToDevice, st.ReadErrors, st.WriteErrors)
	if err != nil {
		return fmt.Errorf("benchdata: relay: %w", err)
	}
	return nil
}
