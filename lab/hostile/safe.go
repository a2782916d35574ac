//go:build linux

package hostile

import (
	"net/netip"

	"github.com/lispd/lispd/wire"
)

// Contained reports whether every datagram lispd could send in answer to b
// goes to an address inside allowed (the suite's own loopback subnet), so
// that a mutation can be sent without making lispd talk to the world: b
// must not parse as a Map-Request (bare or encapsulated) naming an
// ITR-RLOC or inner source outside allowed, nor carry a Map-Reply record
// (M bit) whose locators could be taken up. What does not parse, and
// every other message type, is answered (if at all) to the datagram's
// source, or not before authentication, which a mutation cannot pass.
func Contained(b []byte, allowed netip.Prefix) bool {
	m, err := wire.Parse(b)
	if err != nil {
		return true
	}
	var req *wire.MapRequest
	switch m := m.(type) {
	case *wire.MapRequest:
		req = m
	case *wire.ECM:
		if !allowed.Contains(m.Source.Addr().Unmap()) {
			return false
		}
		inner, ok := m.Inner.(*wire.MapRequest)
		if !ok {
			return true
		}
		req = inner
	default:
		return true
	}
	if req.MapReplyRecord != nil {
		return false
	}
	for _, a := range req.ITRRLOCs {
		_, ip, ok := a.InstanceIP()
		if ok && !allowed.Contains(ip.Unmap()) {
			return false
		}
	}
	return true
}
