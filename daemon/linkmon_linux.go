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

// tunUp reports whether a TUN device is administratively up: a TUN has a
// carrier only while its file is open, which lispd holds.
func tunUp(l netlink.Link) bool { return l.Attrs().Flags&net.FlagUp != 0 }

// watchLinks reports, through report, whether the EID side can be served:
// one of the named interfaces is up and the TUN device tun (if not empty)
// is up too, the data plane's path to the hosts. It reports at start and
// on every change (netlink link notifications), until ctx ends. A missing
// interface counts as down. ready receives nil once the subscription is in
// place, or the error that prevented it.
func watchLinks(ctx context.Context, names []string, tun string, ready chan<- error, report func(up bool, why string)) {
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
	all := names
	if tun != "" {
		all = append(slices.Clone(names), tun)
	}
	// The initial state, from a listing (ListExisting also replays it).
	for _, n := range all {
		state[n] = false
		if l, err := netlink.LinkByName(n); err == nil {
			state[n] = linkUp(l) || (n == tun && tunUp(l))
		}
	}
	verdict := func() (bool, string) {
		if tun != "" && !state[tun] {
			return false, fmt.Sprintf("TUN device %s down: the data plane cannot deliver", tun)
		}
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
			state[name] = u.Header.Type != unix.RTM_DELLINK && (linkUp(u.Link) || (name == tun && tunUp(u.Link)))
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
