package cachesync

import (
	"cmp"
	"math/bits"
	"slices"
	"time"

	"github.com/lispd/lispd/mapcache"
)

// Anti-entropy compares digests first, then keys, then sends records:
//
//  1. A sends its DIGEST: the records it can share, hashed into buckets.
//  2. B computes its own digest with the same bucket count and answers
//     with KEYS: the (key hash, version) pairs of its records in the
//     buckets that differ ("this is what I have there").
//  3. A sends, in RECORDS, its records in those buckets that B lacks or
//     holds at an older version.
//
// Each direction pulls for the receiver of the digest; both sides send
// one at connection time and every anti-entropy interval. A member that
// missed one change thus receives one record, plus a digest and the keys
// of one bucket, instead of the whole cache.

// recordsPerBucket is the target number of records per digest bucket.
const recordsPerBucket = 8

// minDigestBuckets is the smallest digest.
const minDigestBuckets = 16

// bucketsFor returns the digest bucket count for a member holding n
// shareable records: a power of two near n/recordsPerBucket, within
// [minDigestBuckets, maxDigestBuckets].
func bucketsFor(n int) int {
	b := minDigestBuckets
	for b < maxDigestBuckets && b*recordsPerBucket < n {
		b <<= 1
	}
	return b
}

// bucketOf returns the bucket of key hash h among nb (a power of two).
func bucketOf(h uint64, nb int) uint32 {
	if nb <= 1 {
		return 0
	}
	return uint32(h >> (64 - bits.TrailingZeros(uint(nb))))
}

// shareSet is a point-in-time list of the records a member can share,
// with their key hashes.
type shareSet struct {
	entries []*mapcache.Entry
	hashes  []uint64
}

// shareable reports whether e may be sent to peers at now: learned from
// the mapping system (a Map-Reply, or a Map-Notify published to a
// subscriber) or from a peer, not permanent, not past its expiry. Static,
// probe and unspecified entries are each member's own.
func shareable(e *mapcache.Entry, now time.Time) bool {
	if !learned(e) && e.Source != mapcache.FromSync {
		return false
	}
	return e.TTL != mapcache.Permanent && e.Expires.After(now)
}

// collectShareable returns the shareable entries of c at now.
func collectShareable(c *mapcache.Cache, now time.Time) shareSet {
	var s shareSet
	for e := range c.All() {
		if shareable(e, now) {
			s.entries = append(s.entries, e)
			s.hashes = append(s.hashes, keyHash(e.Key()))
		}
	}
	return s
}

// digest computes the digest of s with nb buckets.
func (s *shareSet) digest(nb int) digest {
	d := digest{buckets: make([]uint64, nb), records: uint32(len(s.entries))}
	for i, e := range s.entries {
		d.buckets[bucketOf(s.hashes[i], nb)] ^= recordHash(s.hashes[i], e.Version)
	}
	return d
}

// diffBuckets returns the buckets where s differs from the peer's digest d
// (computed with the same bucket count), in increasing order.
func (s *shareSet) diffBuckets(d digest) []uint32 {
	mine := s.digest(len(d.buckets))
	var out []uint32
	for i, h := range mine.buckets {
		if h != d.buckets[i] {
			out = append(out, uint32(i))
		}
	}
	return out
}

// keys returns the KEYS message listing s's records in the given buckets
// of nb.
func (s *shareSet) keys(nb int, buckets []uint32) keysMsg {
	k := keysMsg{nbuckets: nb, buckets: buckets}
	in := bucketSet(nb, buckets)
	for i, e := range s.entries {
		if in[bucketOf(s.hashes[i], nb)] {
			k.keys = append(k.keys, keyVersion{hash: s.hashes[i], version: e.Version})
		}
	}
	return k
}

// missing returns s's records in k's buckets that the sender of k lacks or
// holds at an older version.
func (s *shareSet) missing(k keysMsg) []*mapcache.Entry {
	in := bucketSet(k.nbuckets, k.buckets)
	theirs := make(map[uint64]uint64, len(k.keys))
	for _, kv := range k.keys {
		theirs[kv.hash] = kv.version
	}
	var out []*mapcache.Entry
	for i, e := range s.entries {
		if !in[bucketOf(s.hashes[i], k.nbuckets)] {
			continue
		}
		if v, ok := theirs[s.hashes[i]]; !ok || v < e.Version {
			out = append(out, e)
		}
	}
	return out
}

func bucketSet(nb int, buckets []uint32) []bool {
	in := make([]bool, nb)
	for _, b := range buckets {
		if int(b) < nb {
			in[b] = true
		}
	}
	return in
}

// keysFrames encodes k as KEYS frames of at most limit bytes, splitting it
// between buckets. A bucket whose keys alone exceed a frame is split too;
// its receiver then sends a few records the sender already has, which is
// harmless.
func keysFrames(k keysMsg, limit int) [][]byte {
	nb := k.nbuckets
	keys := slices.Clone(k.keys)
	slices.SortFunc(keys, func(a, b keyVersion) int {
		return cmp.Compare(bucketOf(a.hash, nb), bucketOf(b.hash, nb))
	})
	const fixed = frameHeaderLen + 12
	var out [][]byte
	cur := keysMsg{nbuckets: nb}
	size := fixed
	emit := func() {
		out = append(out, appendKeys(nil, cur))
		cur = keysMsg{nbuckets: nb}
		size = fixed
	}
	i := 0
	for _, b := range k.buckets {
		j := i
		for j < len(keys) && bucketOf(keys[j].hash, nb) == b {
			j++
		}
		run := keys[i:j]
		i = j
		if size+4+16*len(run) > limit && len(cur.buckets) > 0 {
			emit()
		}
		for size+4+16*len(run) > limit {
			n := max((limit-size-4)/16, 1)
			cur.buckets = append(cur.buckets, b)
			cur.keys = append(cur.keys, run[:n]...)
			run = run[n:]
			emit()
		}
		cur.buckets = append(cur.buckets, b)
		cur.keys = append(cur.keys, run...)
		size += 4 + 16*len(run)
	}
	if len(cur.buckets) > 0 {
		emit()
	}
	return out
}

// learned reports whether e is what this member learned from the mapping
// system itself: a Map-Reply, or a mapping a Map-Server published to it
// (RFC 9437). Those are the changes it announces to its peers.
func learned(e *mapcache.Entry) bool {
	return e.Source == mapcache.FromMapReply || e.Source == mapcache.FromPubSub
}
