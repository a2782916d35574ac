package main

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/config"
)

// fmtDuration prints d rounded to the second, without trailing zero units:
// "3m55s", "24h", "1h30m".
func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d == 0 {
		return "0s"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// fmtUntil prints how long until t: "3m55s", "expired", or "never" for the
// zero time.
func fmtUntil(t, now time.Time) string {
	switch {
	case t.IsZero():
		return "never"
	case !t.After(now):
		return "expired"
	}
	return fmtDuration(t.Sub(now))
}

// fmtAgo prints how long ago t was: "5s ago", or "never" for the zero time.
func fmtAgo(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	if now.Sub(t) < time.Second {
		return "just now"
	}
	return fmtDuration(now.Sub(t)) + " ago"
}

// eidString prints an EID prefix with its instance the way the config file
// writes it: "iid:1000/10.1.0.0/16", or just the prefix in instance 0.
func eidString(iid uint32, p netip.Prefix) string {
	return config.EIDPrefix{InstanceID: iid, Prefix: p}.String()
}

// rlocState is "up" or "down", from the R bit and probing.
func rlocState(r api.RLOC) string {
	if r.Reachable {
		return "up"
	}
	return "down"
}

// priWeight prints "priority/weight".
func priWeight(r api.RLOC) string {
	return strconv.Itoa(int(r.Priority)) + "/" + strconv.Itoa(int(r.Weight))
}

// eidFilter selects entries by EID or prefix, and instance.
type eidFilter struct {
	text   string // as given, for messages
	iid    uint32
	hasIID bool
	addr   netip.Addr   // an EID: the longest prefix containing it
	prefix netip.Prefix // a prefix: the entries inside it
}

// active reports whether the filter selects anything narrower than all.
func (f eidFilter) active() bool { return f.hasIID || f.addr.IsValid() || f.prefix.IsValid() }

// parseEIDFilter parses the optional EID-or-prefix argument ("10.1.2.3",
// "10.1.0.0/16", "iid:1000/10.1.2.3", "iid:1000/10.1.0.0/16") and the
// --iid flag (iidFlag < 0: not given).
func parseEIDFilter(args []string, iidFlag int64) (eidFilter, error) {
	var f eidFilter
	if iidFlag >= 0 {
		if iidFlag > config.MaxInstanceID {
			return f, usageErrorf("--iid %d out of range 0..%d", iidFlag, config.MaxInstanceID)
		}
		f.iid, f.hasIID = uint32(iidFlag), true
	}
	if len(args) == 0 {
		return f, nil
	}
	f.text = args[0]
	rest := args[0]
	if after, ok := strings.CutPrefix(rest, "iid:"); ok {
		num, r, found := strings.Cut(after, "/")
		iid, err := config.ParseInstanceID(num)
		if !found || err != nil {
			return f, usageErrorf("%q: want iid:N/EID or iid:N/prefix with N in 0..%d", args[0], config.MaxInstanceID)
		}
		if f.hasIID && f.iid != iid {
			return f, usageErrorf("%q contradicts --iid %d", args[0], f.iid)
		}
		f.iid, f.hasIID = iid, true
		rest = r
	}
	if strings.Contains(rest, "/") {
		p, err := netip.ParsePrefix(rest)
		if err != nil {
			return f, usageErrorf("%q is not an EID or prefix", args[0])
		}
		f.prefix = p.Masked()
		return f, nil
	}
	a, err := netip.ParseAddr(rest)
	if err != nil || a.Zone() != "" {
		return f, usageErrorf("%q is not an EID or prefix", args[0])
	}
	f.addr = a
	return f, nil
}

// apply returns the indices of the items (iid, prefix pairs given by at)
// that the filter selects, in their order. For an EID it keeps, in each
// instance, the longest prefix that contains the EID: the entry a lookup
// would use.
func (f eidFilter) apply(n int, at func(i int) (uint32, netip.Prefix)) []int {
	var out []int
	best := map[uint32]int{} // for an EID: instance -> index of longest match
	for i := range n {
		iid, p := at(i)
		if f.hasIID && iid != f.iid {
			continue
		}
		switch {
		case f.addr.IsValid():
			if !p.Contains(f.addr) {
				continue
			}
			if j, ok := best[iid]; ok {
				if _, q := at(j); q.Bits() >= p.Bits() {
					continue
				}
			}
			best[iid] = i
			continue
		case f.prefix.IsValid():
			if p.Addr().Is4() != f.prefix.Addr().Is4() || p.Bits() < f.prefix.Bits() || !f.prefix.Contains(p.Addr()) {
				continue
			}
		}
		out = append(out, i)
	}
	if f.addr.IsValid() {
		for i := range n {
			iid, _ := at(i)
			if j, ok := best[iid]; ok && j == i {
				out = append(out, i)
			}
		}
	}
	return out
}

// showSelected sorts items with order, keeps those the filter f selects
// (key gives an item's instance-ID and prefix), and writes them: as JSON
// with --json, else with print when any remain. It returns the selection.
func showSelected[T any](cmd *cobra.Command, f eidFilter, items []T, order func(x, y T) int,
	key func(T) (uint32, netip.Prefix), print func([]T) error) ([]T, error) {
	slices.SortStableFunc(items, order)
	idx := f.apply(len(items), func(i int) (uint32, netip.Prefix) { return key(items[i]) })
	sel := make([]T, 0, len(idx))
	for _, i := range idx {
		sel = append(sel, items[i])
	}
	if jsonOutput(cmd) {
		return sel, writeJSON(cmd, sel)
	}
	if len(sel) > 0 {
		return sel, print(sel)
	}
	return sel, nil
}
