package inet

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// SockaddrLen is the size of a raw sockaddr buffer that holds both
// sockaddr_in and sockaddr_in6, as recvmmsg/sendmmsg message headers use.
const SockaddrLen = unix.SizeofSockaddrInet6

// Sockaddr is a raw sockaddr_in or sockaddr_in6 in kernel layout.
type Sockaddr = [SockaddrLen]byte

// ParseSockaddr decodes a sockaddr_in or sockaddr_in6; another family gives
// the zero AddrPort.
func ParseSockaddr(b *Sockaddr) netip.AddrPort {
	port := binary.BigEndian.Uint16(b[2:4])
	switch binary.NativeEndian.Uint16(b[0:2]) {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), port)
	}
	return netip.AddrPort{}
}

// PutSockaddr encodes ap into b, as sockaddr_in6 when is6 (an IPv4 ap is
// then written as its mapped form) and sockaddr_in otherwise, and returns
// the sockaddr's length.
func PutSockaddr(b *Sockaddr, ap netip.AddrPort, is6 bool) uint32 {
	*b = Sockaddr{}
	binary.BigEndian.PutUint16(b[2:4], ap.Port())
	if !is6 {
		binary.NativeEndian.PutUint16(b[0:2], unix.AF_INET)
		a := ap.Addr().As4()
		copy(b[4:8], a[:])
		return unix.SizeofSockaddrInet4
	}
	binary.NativeEndian.PutUint16(b[0:2], unix.AF_INET6)
	a := ap.Addr().As16()
	copy(b[8:24], a[:])
	return unix.SizeofSockaddrInet6
}
