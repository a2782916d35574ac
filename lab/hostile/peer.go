//go:build linux

package hostile

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Peer is a UDP socket the suite speaks from: an attacker, a fake
// Map-Resolver or ETR, or a legitimate ITR or ETR whose traffic must still
// be served. It is bound to an address of its own (127.66.x.y), so that
// lispd sees each role as a separate host.
type Peer struct {
	conn *net.UDPConn
	addr netip.AddrPort
}

// ListenPeer binds a Peer to addr (port 0: any free port).
func ListenPeer(addr netip.AddrPort) (*Peer, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("hostile: listen %s: %w", addr, err)
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	return &Peer{conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}, nil
}

// Addr is the Peer's address and port.
func (p *Peer) Addr() netip.AddrPort { return p.addr }

// Close closes the socket.
func (p *Peer) Close() error { return p.conn.Close() }

// Send sends one datagram to to.
func (p *Peer) Send(b []byte, to netip.AddrPort) error {
	if _, err := p.conn.WriteToUDPAddrPort(b, to); err != nil {
		return fmt.Errorf("hostile: send to %s: %w", to, err)
	}
	return nil
}

// ErrNoMatch is returned by Recv when nothing matching arrived in time.
var ErrNoMatch = errors.New("hostile: no matching datagram in time")

// Recv returns the first datagram for which match is true (nil matches
// all), skipping the others, waiting at most timeout.
func (p *Peer) Recv(timeout time.Duration, match func(b []byte, from netip.AddrPort) bool) ([]byte, netip.AddrPort, error) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65536)
	for {
		if err := p.conn.SetReadDeadline(deadline); err != nil {
			return nil, netip.AddrPort{}, err
		}
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, netip.AddrPort{}, ErrNoMatch
			}
			return nil, netip.AddrPort{}, fmt.Errorf("hostile: receive: %w", err)
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if match == nil || match(buf[:n], from) {
			return append([]byte(nil), buf[:n]...), from, nil
		}
	}
}

// Drain discards what arrived so far.
func (p *Peer) Drain() {
	buf := make([]byte, 65536)
	_ = p.conn.SetReadDeadline(time.Now())
	for {
		if _, _, err := p.conn.ReadFromUDPAddrPort(buf); err != nil {
			return
		}
	}
}

// DeviceSender sends UDP datagrams that can only leave through one network
// device, whatever the routing table says (SO_BINDTODEVICE): the suite
// uses it to put packets into a lispd's TUN device, its EID side, without
// any chance of them reaching another interface.
type DeviceSender struct {
	conn *net.UDPConn
}

// NewDeviceSender opens a UDP socket bound to device (which must exist).
func NewDeviceSender(device string) (*DeviceSender, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		return nil, fmt.Errorf("hostile: %w", err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("hostile: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, device)
	}); err != nil {
		serr = err
	}
	if serr != nil {
		c.Close()
		return nil, fmt.Errorf("hostile: bind to device %s: %w", device, serr)
	}
	return &DeviceSender{conn: c}, nil
}

// Send sends payload to to through the device.
func (d *DeviceSender) Send(payload []byte, to netip.AddrPort) error {
	if _, err := d.conn.WriteToUDPAddrPort(payload, to); err != nil {
		return fmt.Errorf("hostile: send to %s through the device: %w", to, err)
	}
	return nil
}

// Close closes the socket.
func (d *DeviceSender) Close() error { return d.conn.Close() }
