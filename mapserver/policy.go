package mapserver

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/lispd/lispd/wire"
)

// RegistrationPolicy says what a Map-Register does to the registrations of
// the same EID-prefix by other xTRs of the site (Site.Policy).
//
// A registration is kept per EID-prefix and registering xTR: its xTR-ID
// when the Map-Register has the I bit, else its source address. An ETR that
// sends no xTR-ID (OOR does not) and is renumbered therefore registers
// anew under its new address, and its old registration would live on until
// it expires (the registration timeout, 3 minutes) with the merged
// RLOC-set still holding the dead address. An ETR that sends a random
// xTR-ID per boot (lispd without etr.xtr-id) does the same when it
// restarts at a new address. The policies:
//
//   - PolicyMerge keeps every registration and publishes the union of
//     their RLOC-sets: what a site whose ETRs register without xTR-IDs from
//     several addresses needs, the behaviour of lispd before policies.
//   - PolicyReplace keeps one registration per EID-prefix: a Map-Register
//     replaces the registrations of the prefix by every other xTR, with or
//     without an xTR-ID. For sites with one ETR (or one active ETR) at a
//     time.
//   - PolicyAuto, the default, works for both shapes of site: registrations
//     with an xTR-ID are merged (multi-ETR sites send xTR-IDs: lispd always
//     does, and so do Cisco's routers), while a Map-Register without an
//     xTR-ID replaces the other xTR-ID-less registrations of the prefix
//     (the same ETR, renumbered), unless it sets the merge-request (a) bit
//     of RFC 9301 section 5.6, or its record lists the other registration's
//     address among its locators (ETRs of one site that register the
//     site's whole locator-set), or an address it replaced has registered
//     again (the prefix has several ETRs without xTR-IDs: from then on it
//     is merged, and logged). A site whose ETRs send none of these and
//     register only their own locators may see one register interval of
//     replacement before auto learns it; merge avoids even that.
//
// A replaced registration is removed at once, its removal published like
// any change (proxy replies, the request path, pub/sub subscribers), and
// counted (registrations_replaced).
type RegistrationPolicy uint8

// The registration policies.
const (
	PolicyAuto RegistrationPolicy = iota
	PolicyMerge
	PolicyReplace
)

var policyNames = [...]string{PolicyAuto: "auto", PolicyMerge: "merge", PolicyReplace: "replace"}

// String returns the policy's configuration name.
func (p RegistrationPolicy) String() string {
	if p.valid() {
		return policyNames[p]
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// ParseRegistrationPolicy parses "auto", "merge" or "replace"; "" is auto.
func ParseRegistrationPolicy(s string) (RegistrationPolicy, error) {
	if s == "" {
		return PolicyAuto, nil
	}
	for p, n := range policyNames {
		if n == s {
			return RegistrationPolicy(p), nil
		}
	}
	return 0, &ConfigError{Field: "registration policy", Reason: fmt.Sprintf("unknown policy %q: want auto, merge or replace", s)}
}

func (p RegistrationPolicy) valid() bool { return int(p) < len(policyNames) }

// replaces reports whether, under policy p, a Map-Register from xTR x
// (mergeBit: its a bit; rec: its record) replaces other's registration of
// the prefix of e.
func (p RegistrationPolicy) replaces(x xtrKey, mergeBit bool, rec *wire.EIDRecord, e *prefixEntry, other xtrKey) bool {
	switch {
	case other == x:
		return false
	case p == PolicyReplace:
		return true
	case p == PolicyAuto:
		return !x.hasID && !mergeBit && !other.hasID && !e.multi && !hasLocator(rec, other.addr)
	}
	return false
}

// hasLocator reports whether a is one of rec's locator addresses.
func hasLocator(rec *wire.EIDRecord, a netip.Addr) bool {
	for i := range rec.Locators {
		if _, ip, ok := rec.Locators[i].Address.InstanceIP(); ok && ip.Unmap() == a {
			return true
		}
	}
	return false
}

// noteReturn is called with a Map-Register from xTR-ID-less x for e under
// the auto policy: if auto replaced x's registration of e before, the
// prefix has several ETRs without xTR-IDs, and is merged from now on. It
// reports whether that was learned now.
func (e *prefixEntry) noteReturn(x xtrKey) bool {
	if e.multi || x.hasID || !slices.Contains(e.replaced, x.addr) {
		return false
	}
	e.multi, e.replaced = true, nil
	return true
}

// noteReplaced remembers the address of a replaced xTR-ID-less
// registration.
func (e *prefixEntry) noteReplaced(v xtrKey) {
	if v.hasID || slices.Contains(e.replaced, v.addr) {
		return
	}
	if len(e.replaced) == maxReplaced {
		e.replaced = slices.Delete(e.replaced, 0, 1)
	}
	e.replaced = append(e.replaced, v.addr)
}
