package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// linkUp reports whether a link is usable: administratively up with a
// carrier (IFF_LOWER_UP).
func linkUp(l netlink.Link) bool {
	a := l.Attrs()
	return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
}

// watchLinks reports, through report, whether one of the named interfaces
// is up, at start and on every change (netlink link notifications), until
// ctx ends. A missing interface counts as down. ready receives nil once
// the subscription is in place, or the error that prevented it.
func watchLinks(ctx context.Context, names []string, ready chan<- error, report func(up bool, why string)) {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	errc := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	})
	ready <- err
	if err != nil {
		return
	}
	state := map[string]bool{}
	for _, n := range names {
		state[n] = false
	}
	// The initial state, from a listing (ListExisting also replays it).
	for _, n := range names {
		if l, err := netlink.LinkByName(n); err == nil {
			state[n] = linkUp(l)
		}
	}
	verdict := func() (bool, string) {
		var down []string
		for _, n := range names {
			if state[n] {
				return true, ""
			}
			down = append(down, n)
		}
		return false, fmt.Sprintf("EID-side interface(s) %s down", strings.Join(down, ", "))
	}
	last, why := verdict()
	report(last, why)
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-errc:
			// The subscription broke: say so and assume nothing changed.
			report(last, fmt.Sprintf("netlink link monitor failed: %v", err))
			return
		case u, ok := <-ch:
			if !ok {
				return
			}
			name := u.Link.Attrs().Name
			if _, watched := state[name]; !watched {
				continue
			}
			state[name] = u.Header.Type != unix.RTM_DELLINK && linkUp(u.Link)
			if up, w := verdict(); up != last {
				last = up
				report(up, w)
			}
		}
	}
}

// routedInterfaces returns the interfaces the kernel routes any of the
// prefixes through (main table; the TUN named tun excluded), sorted.
func routedInterfaces(prefixes []netip.Prefix, tun string) ([]string, error) {
	var out []string
	var errs []error
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteList(nil, fam)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range routes {
			if r.Dst == nil || r.LinkIndex <= 0 {
				continue
			}
			ones, _ := r.Dst.Mask.Size()
			a, ok := netip.AddrFromSlice(r.Dst.IP)
			if !ok {
				continue
			}
			dst := netip.PrefixFrom(a.Unmap(), ones)
			if !slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Overlaps(dst) }) {
				continue
			}
			l, err := netlink.LinkByIndex(r.LinkIndex)
			if err != nil {
				continue
			}
			if n := l.Attrs().Name; n != tun && n != "lo" && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out, errors.Join(errs...)
}
