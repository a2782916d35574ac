package mapserver

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"

	"github.com/lispd/lispd/wire"
)

// site is the compiled, immutable form of a Site.
type site struct {
	name      string
	key       []byte
	keyID     uint8
	algorithm wire.AlgorithmID
	proxy     bool
	policy    RegistrationPolicy
	// maxPrefixes and maxRegs are the site's limits (defaults applied).
	maxPrefixes int
	maxRegs     int
	// cfg is a deep copy of the configuration, for equality checks on
	// reload.
	cfg Site
}

// sitePrefix is one configured EID-prefix with its site.
type sitePrefix struct {
	site *site
	p    EIDPrefix
	more bool
}

// remoteMS is a compiled RemoteMapServer.
type remoteMS struct {
	addr netip.AddrPort
}

// siteTable is the immutable configuration the request path reads: the
// sites, their prefixes indexed for longest-prefix match per instance-ID,
// the remote Map-Servers, and the prefix sets for negative answers. It is
// replaced whole by SetSites and SetResolver.
type siteTable struct {
	byName map[string]*site
	// conf holds the configured site prefixes per instance-ID.
	conf map[uint32]*bart.Table[*sitePrefix]
	// remote holds the prefixes served by remote Map-Servers per
	// instance-ID; remoteAll are the Map-Servers that serve everything.
	remote    map[uint32]*bart.Table[*remoteMS]
	remoteAll []*remoteMS
	// knownSet holds the configured site prefixes and the remote
	// Map-Servers' prefixes, sorted for the negative-prefix computation:
	// the EID space this server knows to exist.
	knownSet *prefixSet
}

// compileSites builds a siteTable from validated sites and resolver config.
// localSites is false when the server does not play the Map-Server role, in
// which case the sites are kept (for SetSites) but serve nothing.
func compileSites(sites []Site, res ResolverConfig, localSites bool) *siteTable {
	t := &siteTable{
		byName: make(map[string]*site, len(sites)),
		conf:   make(map[uint32]*bart.Table[*sitePrefix]),
		remote: make(map[uint32]*bart.Table[*remoteMS]),
	}
	var knownList []EIDPrefix
	for i := range sites {
		s := &site{
			name:      sites[i].Name,
			key:       slices.Clone(sites[i].Key),
			keyID:     sites[i].KeyID,
			algorithm: sites[i].Algorithm,
			proxy:     sites[i].AllowProxyReply,
			policy:    sites[i].Policy,
			cfg:       cloneSite(sites[i]),
		}
		s.maxPrefixes = cmp.Or(sites[i].MaxPrefixes, DefaultSiteMaxPrefixes)
		s.maxRegs = cmp.Or(sites[i].MaxRegistrations, DefaultSiteMaxRegistrations)
		t.byName[s.name] = s
		if !localSites {
			continue
		}
		for _, p := range sites[i].Prefixes {
			tbl := t.conf[p.InstanceID]
			if tbl == nil {
				tbl = new(bart.Table[*sitePrefix])
				t.conf[p.InstanceID] = tbl
			}
			tbl.Insert(p.Prefix, &sitePrefix{site: s, p: p.EIDPrefix, more: p.AcceptMoreSpecifics})
			knownList = append(knownList, p.EIDPrefix)
		}
	}
	for _, ms := range res.MapServers {
		r := &remoteMS{addr: ms.Address}
		if r.addr.Port() == 0 {
			r.addr = netip.AddrPortFrom(r.addr.Addr(), ControlPort)
		}
		if len(ms.Prefixes) == 0 {
			t.remoteAll = append(t.remoteAll, r)
			continue
		}
		for _, p := range ms.Prefixes {
			tbl := t.remote[p.InstanceID]
			if tbl == nil {
				tbl = new(bart.Table[*remoteMS])
				t.remote[p.InstanceID] = tbl
			}
			// The first Map-Server listed for a prefix keeps it.
			if _, dup := tbl.Get(p.Prefix); !dup {
				tbl.Insert(p.Prefix, r)
			}
			knownList = append(knownList, p)
		}
	}
	t.knownSet = newPrefixSet(knownList)
	return t
}

// cloneSite returns a deep copy of s.
func cloneSite(s Site) Site {
	s.Key = slices.Clone(s.Key)
	s.Prefixes = slices.Clone(s.Prefixes)
	return s
}

// sitesEqual reports whether two site configurations are identical.
func sitesEqual(a, b Site) bool {
	return a.Name == b.Name && string(a.Key) == string(b.Key) && a.KeyID == b.KeyID &&
		a.Algorithm == b.Algorithm && a.AllowProxyReply == b.AllowProxyReply &&
		a.Policy == b.Policy && a.MaxPrefixes == b.MaxPrefixes && a.MaxRegistrations == b.MaxRegistrations &&
		slices.Equal(a.Prefixes, b.Prefixes)
}

// coveringPrefix returns the most specific configured prefix that contains
// p (equal or less specific) in instance iid.
func (t *siteTable) coveringPrefix(iid uint32, p netip.Prefix) (*sitePrefix, bool) {
	tbl := t.conf[iid]
	if tbl == nil {
		return nil, false
	}
	_, sp, ok := tbl.LookupPrefixLPM(p)
	return sp, ok
}

// siteFor returns the site allowed to register p in iid: the site of the
// most specific configured prefix containing p, when that prefix equals p or
// accepts more-specifics. found reports whether any configured prefix
// contains p at all.
func (t *siteTable) siteFor(iid uint32, p netip.Prefix) (s *site, found bool) {
	sp, ok := t.coveringPrefix(iid, p)
	if !ok {
		return nil, false
	}
	if sp.p.Prefix.Bits() == p.Bits() || sp.more {
		return sp.site, true
	}
	return nil, true
}

// remoteFor returns the remote Map-Server serving EID-prefix p in iid: the
// one with the longest matching prefix, else the first serving everything.
func (t *siteTable) remoteFor(iid uint32, p netip.Prefix) *remoteMS {
	if tbl := t.remote[iid]; tbl != nil {
		if _, r, ok := tbl.LookupPrefixLPM(p); ok {
			return r
		}
	}
	if len(t.remoteAll) > 0 {
		return t.remoteAll[0]
	}
	return nil
}

// remoteCoverBits returns the length of the most specific prefix served by
// a remote Map-Server that contains p in iid, or 0.
func (t *siteTable) remoteCoverBits(iid uint32, p netip.Prefix) int {
	if tbl := t.remote[iid]; tbl != nil {
		if lpm, _, ok := tbl.LookupPrefixLPM(p); ok {
			return lpm.Bits()
		}
	}
	return 0
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
