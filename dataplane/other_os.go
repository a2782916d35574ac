//go:build !linux

package dataplane

import "net/netip"

// TUN is a Device on a TUN interface; only Linux has one (CreateTUN returns
// ErrUnsupported elsewhere).
type TUN struct{}

// CreateTUN returns ErrUnsupported: TUN devices are implemented on Linux
// only.
func CreateTUN(TUNConfig) (*TUN, error) { return nil, ErrUnsupported }

// Read implements Device.
func (*TUN) Read([][]byte, []int, int) (int, error) { return 0, ErrUnsupported }

// Write implements Device.
func (*TUN) Write([][]byte, int) (int, error) { return 0, ErrUnsupported }

// BatchSize implements Device.
func (*TUN) BatchSize() int { return 1 }

// MTU implements Device.
func (*TUN) MTU() (int, error) { return 0, ErrUnsupported }

// Name implements Device.
func (*TUN) Name() string { return "" }

// Stats returns zero counters.
func (*TUN) Stats() LinkStats { return LinkStats{} }

// Close implements Device.
func (*TUN) Close() error { return ErrUnsupported }

// UDPConn is a Conn on a UDP socket; only Linux has one (ListenUDP returns
// ErrUnsupported elsewhere).
type UDPConn struct{}

// ListenUDP returns ErrUnsupported: batched UDP sockets are implemented on
// Linux only.
func ListenUDP(UDPConfig) (*UDPConn, error) { return nil, ErrUnsupported }

// Read implements Conn.
func (*UDPConn) Read([][]byte, []int, []Meta, int) (int, error) { return 0, ErrUnsupported }

// Write implements Conn.
func (*UDPConn) Write([][]byte, []Meta, int) (int, error) { return 0, ErrUnsupported }

// BatchSize implements Conn.
func (*UDPConn) BatchSize() int { return 1 }

// LocalAddr implements Conn.
func (*UDPConn) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// GSO reports false.
func (*UDPConn) GSO() bool { return false }

// SocketBuffers reports zero sizes.
func (*UDPConn) SocketBuffers() (rcv, snd int) { return 0, 0 }

// Stats returns zero counters.
func (*UDPConn) Stats() LinkStats { return LinkStats{} }

// Close implements Conn.
func (*UDPConn) Close() error { return ErrUnsupported }

var (
	_ Device = (*TUN)(nil)
	_ Conn   = (*UDPConn)(nil)
)

// NativeConn is a write-only Device that hands packets back to the kernel
// through raw sockets; only Linux has one (OpenNative returns
// ErrUnsupported elsewhere).
type NativeConn struct{}

// OpenNative returns ErrUnsupported: raw native sockets are implemented on
// Linux only.
func OpenNative(NativeConfig) (*NativeConn, error) { return nil, ErrUnsupported }

// Read implements Device.
func (*NativeConn) Read([][]byte, []int, int) (int, error) { return 0, ErrUnsupported }

// Write implements Device.
func (*NativeConn) Write([][]byte, int) (int, error) { return 0, ErrUnsupported }

// BatchSize implements Device.
func (*NativeConn) BatchSize() int { return 1 }

// MTU implements Device.
func (*NativeConn) MTU() (int, error) { return 0, ErrUnsupported }

// Name implements Device.
func (*NativeConn) Name() string { return "" }

// Stats returns zero counters.
func (*NativeConn) Stats() LinkStats { return LinkStats{} }

// Close implements Device.
func (*NativeConn) Close() error { return ErrUnsupported }

var _ Device = (*NativeConn)(nil)
