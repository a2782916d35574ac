package xtr

import (
	"math/bits"
	"net/netip"

	"github.com/lispd/lispd/wire"
)

// Locator-Status-Bits (RFC 9300 section 10).
//
// Sender side: an xTR that is both ITR and ETR sets the L bit on the
// packets it encapsulates and sends, for the mapping of its database that
// holds the inner source EID, one bit per locator: bit k is set when the
// locator of ordinal k (its index in the registered record, the order in
// which the Map-Server and the Map-Replies list it) is usable — reachable
// (the R bit) and not withdrawn (priority 255). Only the first 32 locators
// have a bit, and only the first 8 with an instance-ID.
//
// Receiver side: see ITR.observeLSB.

// maxLSBs is the number of Locator-Status-Bits without an instance-ID.
const maxLSBs = 32

// recordLSB returns the Locator-Status-Bits of a registered record: bit k
// is set when locator k is reachable and its priority is not 255. Locators
// beyond the 32nd have no bit.
func recordLSB(rec *wire.EIDRecord) uint32 {
	var lsb uint32
	for k := range min(len(rec.Locators), maxLSBs) {
		if l := &rec.Locators[k]; l.Reachable && l.Priority != unusablePriority {
			lsb |= 1 << uint(k)
		}
	}
	return lsb
}

// computeLSBs fills db.lsbs from db.records. It allocates a new slice, so
// that a database copied from a published one never writes into the
// original's: call it after any change to the records, before publishing.
func (db *database) computeLSBs() {
	lsbs := make([]uint32, len(db.records))
	for k := range db.records {
		lsbs[k] = recordLSB(&db.records[k])
	}
	db.lsbs = lsbs
}

// lsbOf returns the Locator-Status-Bits of the mapping holding src in
// instance iid, its index, and whether there is one.
func (db *database) lsbOf(iid uint32, src netip.Addr) (uint32, int, bool) {
	k := db.lookup(iid, src)
	if k < 0 || k >= len(db.lsbs) {
		return 0, -1, false
	}
	return db.lsbs[k], k, true
}

// leaf reports whether no other prefix of the database in the same
// instance lies inside maps[k] (so that every address in it matches
// maps[k] as the longest prefix).
func (db *database) leaf(k int) bool {
	m := &db.maps[k]
	for j := range db.maps {
		o := &db.maps[j]
		if j != k && o.InstanceID == m.InstanceID && o.Prefix.Bits() > m.Prefix.Bits() && m.Prefix.Overlaps(o.Prefix) {
			return false
		}
	}
	return true
}

// localLSB returns the Locator-Status-Bits of the database mapping that
// holds the inner source EID src in instance iid, and false when src is in
// none of the ETR's EID-prefixes (the L bit is then left clear).
func (e *ETR) localLSB(iid uint32, src netip.Addr) (uint32, bool) {
	lsb, _, ok := e.db.Load().lsbOf(iid, src)
	return lsb, ok
}

// lsbCache is an encapsulating loop's memo of its last localLSB answer:
// the database it came from, and the prefix that matched (only when no
// more specific database prefix lies inside it) or the source address that
// matched none. A packet from the same site prefix then costs an atomic
// load and a prefix test. It belongs to the loop's goroutine.
type lsbCache struct {
	db  *database
	iid uint32
	pfx netip.Prefix // valid: every address in it has lsb
	lsb uint32
	// miss is the last source address found in no prefix of db.
	missDB  *database
	missIID uint32
	miss    netip.Addr
}

// get is ETR.localLSB through the memo.
func (c *lsbCache) get(e *ETR, iid uint32, src netip.Addr) (uint32, bool) {
	db := e.db.Load()
	if db == c.db && iid == c.iid && c.pfx.IsValid() && c.pfx.Contains(src) {
		return c.lsb, true
	}
	if db == c.missDB && iid == c.missIID && src == c.miss {
		return 0, false
	}
	lsb, k, ok := db.lsbOf(iid, src)
	if !ok {
		c.missDB, c.missIID, c.miss = db, iid, src
		return 0, false
	}
	c.db, c.iid, c.lsb, c.pfx = db, iid, lsb, netip.Prefix{}
	if db.leaf(k) {
		c.pfx = db.maps[k].Prefix
	}
	return lsb, true
}

// observeLSB applies the Locator-Status-Bits of a decapsulated packet with
// the L bit (RFC 9300 section 10): iid and src are the packet's instance-ID
// and inner source EID, outerSrc the RLOC that sent it, lsb its bits and
// nbits how many the header had room for (8 with an instance-ID, 32
// without).
//
// The bits speak for the sending site's locator-set: bit k for the locator
// of ordinal k, which is index k of the map-cache entry's RLOCs for src.
// They are believed only when the entry is positive and outerSrc is one of
// its RLOCs: a packet may only speak for the mapping it came from, so that
// anyone able to reach the ETR cannot switch a site's locators off. A bit
// at 0 for a locator the entry has as reachable marks it unreachable (the
// ITR stops encapsulating to it, counted as lsb_locators_down); a bit at 1
// for one marked unreachable marks it reachable again (lsb_locators_up),
// unless RLOC-probing found it down: probes test the path from here, which
// the remote site cannot see. Nothing is locked and nothing allocated when
// the bits agree with the entry (the common case).
func (i *ITR) observeLSB(iid uint32, src netip.Addr, outerSrc netip.Addr, lsb uint32, nbits int) {
	i.observeLSBAt(i.now().UnixNano(), iid, src, outerSrc, lsb, nbits)
}

// observeLSBAt is observeLSB with the time (Unix nanoseconds) the
// map-cache lookup is made at.
func (i *ITR) observeLSBAt(now int64, iid uint32, src, outerSrc netip.Addr, lsb uint32, nbits int) {
	if i.settings.Load().ignoreLSB {
		return
	}
	e, ok := i.cache.Peek(iid, src, now)
	if !ok {
		return
	}
	n := min(nbits, len(e.RLOCs), maxLSBs)
	if n <= 0 {
		return // a negative entry, or no bits
	}
	valid := uint64(1)<<uint(n) - 1
	want := uint64(lsb) & valid
	diff := (e.ReachableMask() & valid) ^ want
	if diff == 0 {
		return
	}
	outerSrc = outerSrc.Unmap()
	from := false
	for k := range e.RLOCs {
		if e.RLOCs[k].Addr == outerSrc {
			from = true
			break
		}
	}
	if !from {
		return
	}
	for diff != 0 {
		k := bits.TrailingZeros64(diff)
		diff &= diff - 1
		up := want&(1<<uint(k)) != 0
		if up && i.probedDown(e.RLOCs[k].Addr) {
			continue
		}
		if e.SetReachable(k, up) {
			if up {
				i.ctr.inc(iLSBUp)
			} else {
				i.ctr.inc(iLSBDown)
			}
		}
	}
}

// probedDown reports whether RLOC-probing found addr unreachable.
func (i *ITR) probedDown(addr netip.Addr) bool {
	i.probeMu.Lock()
	defer i.probeMu.Unlock()
	s := i.probes[addr]
	return s != nil && s.state == probeDown
}
