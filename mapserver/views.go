package mapserver

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/lispd/lispd/wire"
)

// RegistrationView is one xTR's registration of one EID-prefix, as the API
// shows it. It shares nothing with the Server.
type RegistrationView struct {
	// Site is the site the EID-prefix belongs to.
	Site string
	// InstanceID is the registered EID-prefix's instance-ID.
	InstanceID uint32
	// Prefix is the registered EID-prefix.
	Prefix netip.Prefix
	// XTRID is the registering xTR's xTR-ID, valid when XTRIDPresent.
	XTRID wire.XTRID
	// XTRIDPresent is set when the xTR registered with an xTR-ID (I bit);
	// otherwise it is identified by its source address.
	XTRIDPresent bool
	// SiteID is the site-ID the xTR sent with its xTR-ID.
	SiteID uint64
	// RegisteredBy is the source address and port of the last Map-Register.
	RegisteredBy netip.AddrPort
	// RLOCs are the registered locators.
	RLOCs []wire.Locator
	// RecordTTL is the registered Record TTL in minutes, the TTL of proxy
	// Map-Replies.
	RecordTTL uint32
	// Action is the registered record's ACT field.
	Action wire.Action
	// MapVersion is the registered record's map-version.
	MapVersion uint16
	// KeyID is the Key ID of the last Map-Register.
	KeyID uint8
	// Algorithm is the authentication algorithm of the last Map-Register.
	Algorithm wire.AlgorithmID
	// FirstRegistered is when the registration was created.
	FirstRegistered time.Time
	// LastRegistered is when it was last refreshed.
	LastRegistered time.Time
	// Expires is when it times out unless refreshed.
	Expires time.Time
	// ProxyReply is the P bit of the last Map-Register.
	ProxyReply bool
	// WantMapNotify is the M bit of the last Map-Register.
	WantMapNotify bool
	// MergeRequest is the a bit of the last Map-Register (under
	// PolicyAuto it makes a register without an xTR-ID merge with the
	// other xTRs' instead of replacing theirs).
	MergeRequest bool
}

// Registrations returns every live registration, ordered by site,
// instance-ID, prefix and xTR.
func (s *Server) Registrations() []RegistrationView {
	s.regMu.Lock()
	out := make([]RegistrationView, 0, len(s.reg.entries))
	for _, e := range s.reg.entries {
		for _, reg := range e.regs {
			rec := cloneRecord(reg.record)
			out = append(out, RegistrationView{
				Site:            reg.site,
				InstanceID:      reg.prefix.InstanceID,
				Prefix:          reg.prefix.Prefix,
				XTRID:           reg.xtr.id,
				XTRIDPresent:    reg.xtr.hasID,
				SiteID:          reg.siteID,
				RegisteredBy:    reg.source,
				RLOCs:           rec.Locators,
				RecordTTL:       rec.RecordTTL,
				Action:          rec.Action,
				MapVersion:      rec.MapVersion,
				KeyID:           reg.keyID,
				Algorithm:       reg.algorithm,
				FirstRegistered: reg.first,
				LastRegistered:  reg.last,
				Expires:         reg.expires,
				ProxyReply:      reg.proxy,
				WantMapNotify:   reg.wantNotify,
				MergeRequest:    reg.merge,
			})
		}
	}
	s.regMu.Unlock()
	slices.SortFunc(out, func(a, b RegistrationView) int {
		return cmp.Or(
			cmp.Compare(a.Site, b.Site),
			cmp.Compare(a.InstanceID, b.InstanceID),
			comparePrefix(a.Prefix, b.Prefix),
			cmp.Compare(a.XTRID.String(), b.XTRID.String()),
			a.RegisteredBy.Compare(b.RegisteredBy),
		)
	})
	return out
}
