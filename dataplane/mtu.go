package dataplane

import (
	"fmt"
	"net"
	"net/netip"
)

// InterfaceMTU returns the MTU of the interface that holds the address addr
// (a local RLOC): the default path MTU for EncapConfig.PathMTU.
func InterfaceMTU(addr netip.Addr) (int, error) {
	addr = addr.Unmap()
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, fmt.Errorf("dataplane: list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == addr {
				return ifc.MTU, nil
			}
		}
	}
	return 0, fmt.Errorf("%w: no interface holds %v", ErrInvalidConfig, addr)
}
