package xtr

import "net/netip"

// ipAddrs returns the source and destination addresses of an IPv4 or IPv6
// packet whose header the dataplane has already validated (or ok = false
// for anything too short to hold them). It does not allocate.
func ipAddrs(p []byte) (src, dst netip.Addr, ok bool) {
	if len(p) < 1 {
		return src, dst, false
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return src, dst, false
		}
		return netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20])), true
	case 6:
		if len(p) < 40 {
			return src, dst, false
		}
		return netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40])), true
	}
	return src, dst, false
}
