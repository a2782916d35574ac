package benchdata

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// RelayReady is the line RunRelay prints on RelayConfig.Ready once it
// relays.
const RelayReady = "relay ready"

// RelayConfig configures RunRelay: the baseline router of one xTR node.
type RelayConfig struct {
	// TUN is the name of the TUN device to create.
	TUN string
	// MTU is its MTU; 0 means dataplane.DefaultTUNMTU (as lispd's).
	MTU int
	// Routes are routed into the TUN device.
	Routes []netip.Prefix
	// Listen is the local UDP address.
	Listen netip.AddrPort
	// Peer is where packets read from the TUN device are sent.
	Peer netip.AddrPort
	// Ready receives RelayReady and a newline once the relay runs, and the
	// relay's counters when it stops; nil discards them.
	Ready io.Writer
}

// Args returns the flags of `lisplab relay` for c, in the form Run appends
// to Config.Relay.
func (c RelayConfig) Args() []string {
	args := []string{"--tun", c.TUN, "--mtu", strconv.Itoa(c.MTU), "--listen", c.Listen.String(), "--peer", c.Peer.String()}
	for _, r := range c.Routes {
		args = append(args, "--route", r.String())
	}
	return args
}

// validate checks c.
func (c RelayConfig) validate() error {
	switch {
	case c.TUN == "" || len(c.TUN) > 15:
		return fmt.Errorf("%w: relay TUN name %q (1 to 15 bytes)", ErrInvalid, c.TUN)
	case c.MTU != 0 && (c.MTU < 576 || c.MTU > 9000):
		return fmt.Errorf("%w: relay MTU %d (576..9000)", ErrInvalid, c.MTU)
	case !c.Listen.IsValid() || !c.Peer.IsValid() || c.Peer.Port() == 0:
		return fmt.Errorf("%w: relay needs a listen address and a peer address with a port", ErrInvalid)
	case c.Listen.Addr().Is4() != c.Peer.Addr().Is4():
		return fmt.Errorf("%w: relay listen %v and peer %v are of different families", ErrInvalid, c.Listen, c.Peer)
	}
	for _, r := range c.Routes {
		if !r.IsValid() {
			return fmt.Errorf("%w: relay route %v", ErrInvalid, r)
		}
	}
	return nil
}
