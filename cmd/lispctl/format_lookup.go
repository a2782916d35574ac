package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// writeLookupText prints a lookup result as a header line and, per record,
// a one-row table of the EID-prefix and a table of its locators.
func writeLookupText(w io.Writer, r *lookupResult) error {
	t := &textWriter{w: w}
	t.line(0, "Map-Reply from %s for %s in %s (try %d of %d, nonce %s)",
		r.Replier, eidString(r.IID, r.prefix), formatRTT(r.rtt), r.Try, r.Tries, r.Nonce)
	if f := r.Flags; f.Probe || f.EchoNonceCapable || f.Security {
		t.line(0, "flags: %s", flagsText(flagName{"P", "probe", f.Probe},
			flagName{"E", "echo-nonce-capable", f.EchoNonceCapable}, flagName{"S", "security", f.Security}))
	}
	if t.err != nil {
		return t.err
	}
	if len(r.Records) == 0 {
		t.line(0, "no records")
	}
	for i := range r.Records {
		rec := &r.Records[i]
		t.line(0, "")
		tw := newTable(w)
		fmt.Fprintln(tw, "EID-PREFIX\tTTL\tACTION\tAUTHORITATIVE\tMAP-VERSION")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", recordEIDText(rec), lookupTTL(rec.RecordTTL),
			rec.Action, yesNo(rec.Authoritative), rec.MapVersion)
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(rec.Locators) == 0 {
			t.line(1, "no locators (negative Map-Reply: %s)", rec.Action)
			continue
		}
		tw = newTable(w)
		fmt.Fprintln(tw, "  LOCATOR\tPRIORITY\tWEIGHT\tM-PRIORITY\tM-WEIGHT\tREACHABLE\tLOCAL\tPROBED")
		for j := range rec.Locators {
			l := &rec.Locators[j]
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", l.Address.Text, l.Priority, l.Weight,
				l.MPriority, l.MWeight, yesNo(l.Reachable), yesNo(l.Local), yesNo(l.Probed))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if r.Ignored > 0 {
		t.line(0, "")
		t.line(0, "ignored %d unrelated datagram(s) while waiting (wrong nonce, not a Map-Reply or malformed)", r.Ignored)
	}
	return t.err
}

// recordEIDText shows a record's EID-prefix in lispctl's notation
// ("iid:1000/10.1.0.0/16", or the plain prefix in instance 0), or as
// decoded when it is not an IP prefix.
func recordEIDText(r *recordView) string {
	if p, err := netip.ParsePrefix(r.EIDPrefix); err == nil {
		return eidString(r.IID, p)
	}
	return prefixDisplay(r.EIDPrefix, r.IID, &r.EID)
}

// lookupTTL formats a Record TTL in minutes with a readable duration:
// "1440 min (1d)", "90 min (1h30m)".
func lookupTTL(ttl uint32) string {
	switch ttl {
	case 0:
		return "0 (remove)"
	case 0xffffffff:
		return "unlimited"
	}
	var parts []string
	for _, u := range []struct {
		n    uint32
		unit string
	}{{ttl / 1440, "d"}, {ttl % 1440 / 60, "h"}, {ttl % 60, "m"}} {
		if u.n != 0 {
			parts = append(parts, fmt.Sprintf("%d%s", u.n, u.unit))
		}
	}
	return fmt.Sprintf("%d min (%s)", ttl, strings.Join(parts, ""))
}

// formatRTT rounds a round-trip time for display.
func formatRTT(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
