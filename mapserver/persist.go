package mapserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/lispd/lispd/wire"
)

// The registration database across restarts (Config.StateFile). Without
// it, a restarted Map-Server answers negatively for every registered EID
// until each ETR's next periodic Map-Register (up to a minute). With it, New
// restores the registrations that have not expired, with their remaining
// lifetime, and the superseded-register memory (replay.go), so the
// restarted Map-Server answers as before at once and still refuses old
// copies.
//
// Run writes the file after a change: at most every stateMinInterval after
// one that altered the database (a registration created, changed, removed),
// every stateRefreshInterval when registrations were only refreshed, never
// spending more than a tenth of the time writing (a write waits ten times
// as long as the last one took to encode and write; the encoding holds
// regMu, about 1.3 µs and 115 bytes per registration), and once more when
// Run returns. The file is written whole to a temporary file in the same
// directory, synced, renamed over the old one and the directory synced, so
// a crash leaves the old file or the new one. A file that cannot be read,
// or fails its checksum or any check, is logged as an error and the
// Map-Server starts with no registrations; it is replaced at the next
// write.
//
// The format (version 1), big-endian:
//
//	magic "LISPDMSR" | version u16 | reserved u16 | written (Unix ns) i64 | count u32
//	count registrations, each: length u32, then
//	  site (u16 length, bytes) | flags u8 (1 xTR-ID, 2 P, 4 M, 8 a)
//	  xTR-ID [16] if flag 1, else xTR address (u8 length 4 or 16, bytes)
//	  site-ID u64 | Key ID u8 | algorithm u8
//	  source address (u8 length, bytes) | source port u16
//	  first, last, expires (Unix ns) i64 | digest u64 | nonce u64
//	  EID record as on the wire (u16 length, bytes)
//	superseded digests, refresh queue then change queue, oldest first:
//	  count u32, count × u64 (twice)
//	newest time-like nonces: count u32, count × (xTR-ID [16], nonce u64, seen i64)
//	CRC-32C of everything before, u32

// Persistence timing.
const (
	stateMinInterval     = time.Second
	stateRefreshInterval = 30 * time.Second
	// stateCostFactor: a write waits this many times the last one's
	// duration.
	stateCostFactor = 10
)

const (
	stateMagic   = "LISPDMSR"
	stateVersion = 1
)

// errState is matched by every error of decodeState.
var errState = errors.New("mapserver: bad state file")

func stateErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errState, fmt.Sprintf(format, args...))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// persister is the state file's writing schedule. Guarded by
// Server.regMu.
type persister struct {
	path    string
	dirty   bool // something changed since the last write
	content bool // ... and more than refreshes
	last    time.Time
	cost    time.Duration
	failing bool
}

// markDirtyLocked records a change of the database: content when it
// altered what is registered, not only refreshed it. regMu must be held.
func (s *Server) markDirtyLocked(content bool) {
	p := &s.persist
	if p.path == "" {
		return
	}
	if !p.dirty || (content && !p.content) {
		s.poke()
	}
	p.dirty = true
	p.content = p.content || content
}

// persistDue writes the state file when a write is due at now and returns
// when the next one is (zero: none pending).
func (s *Server) persistDue(now time.Time) time.Time {
	if s.persist.path == "" { // immutable
		return time.Time{}
	}
	s.regMu.Lock()
	p := &s.persist
	if !p.dirty {
		s.regMu.Unlock()
		return time.Time{}
	}
	wait := stateRefreshInterval
	if p.content {
		wait = stateMinInterval
	}
	at := p.last.Add(max(wait, stateCostFactor*p.cost))
	if now.Before(at) {
		s.regMu.Unlock()
		return at
	}
	start := time.Now()
	b := s.encodeStateLocked(now)
	p.dirty, p.content, p.last = false, false, now
	s.regMu.Unlock()
	if !s.writeState(b, start) {
		// Try again at the refresh pace.
		s.regMu.Lock()
		p.dirty = true
		s.regMu.Unlock()
		return now.Add(stateRefreshInterval)
	}
	return time.Time{}
}

// flushState writes the state file if anything changed since the last
// write; Run calls it when it returns.
func (s *Server) flushState() {
	s.regMu.Lock()
	p := &s.persist
	if p.path == "" || !p.dirty {
		s.regMu.Unlock()
		return
	}
	now := s.clock.Now()
	start := time.Now()
	b := s.encodeStateLocked(now)
	p.dirty, p.content, p.last = false, false, now
	s.regMu.Unlock()
	s.writeState(b, start)
}

// writeState writes b, encoded from start on, to the state file
// crash-safely, counts and logs the outcome, and reports whether it worked.
func (s *Server) writeState(b []byte, start time.Time) bool {
	err := writeFileAtomic(s.persist.path, b)
	cost := time.Since(start)
	s.regMu.Lock()
	p := &s.persist
	p.cost = cost
	wasFailing := p.failing
	p.failing = err != nil
	s.regMu.Unlock()
	if err != nil {
		s.ctr.inc(cStateWriteErrors)
		if !wasFailing {
			s.log.Error("cannot write the registration state file; registrations will not survive a restart", "file", s.persist.path, "err", err)
		}
		return false
	}
	s.ctr.inc(cStateWrites)
	if wasFailing {
		s.log.Info("registration state file written again", "file", s.persist.path)
	}
	return true
}

// writeFileAtomic replaces path with b: a temporary file in the same
// directory, synced, renamed over path, and the directory synced.
func writeFileAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		derr = d.Sync()
		d.Close()
		if derr != nil {
			return derr
		}
	}
	return nil
}

// stateSnapshot is a decoded state file.
type stateSnapshot struct {
	written time.Time
	regs    []*registration
	queues  [2][]uint64
	high    map[wire.XTRID]nonceMark
}

// encodeStateLocked encodes the database. regMu must be held.
func (s *Server) encodeStateLocked(now time.Time) []byte {
	b := make([]byte, 0, 64+s.reg.total*160)
	b = append(b, stateMagic...)
	b = binary.BigEndian.AppendUint16(b, stateVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(now.UnixNano()))
	countAt := len(b)
	b = binary.BigEndian.AppendUint32(b, 0)
	n := 0
	for _, e := range s.reg.entries {
		for _, reg := range e.regs {
			var ok bool
			if b, ok = appendSavedReg(b, reg); ok {
				n++
			}
		}
	}
	binary.BigEndian.PutUint32(b[countAt:], uint32(n))
	for k := range s.replay.q {
		q := &s.replay.q[k]
		b = binary.BigEndian.AppendUint32(b, uint32(len(q.buf)))
		q.each(func(d uint64) { b = binary.BigEndian.AppendUint64(b, d) })
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.replay.high)))
	for id, h := range s.replay.high {
		b = append(b, id[:]...)
		b = binary.BigEndian.AppendUint64(b, h.nonce)
		b = binary.BigEndian.AppendUint64(b, uint64(h.seen))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// appendSavedReg appends one registration; ok is false (b unchanged) if
// its record cannot be encoded.
func appendSavedReg(b []byte, r *registration) ([]byte, bool) {
	start := len(b)
	b = append(b, 0, 0, 0, 0) // length
	b = appendString16(b, r.site)
	var flags byte
	if r.xtr.hasID {
		flags |= 1
	}
	if r.proxy {
		flags |= 2
	}
	if r.wantNotify {
		flags |= 4
	}
	if r.merge {
		flags |= 8
	}
	b = append(b, flags)
	if r.xtr.hasID {
		b = append(b, r.xtr.id[:]...)
	} else {
		b = appendAddr(b, r.xtr.addr)
	}
	b = binary.BigEndian.AppendUint64(b, r.siteID)
	b = append(b, r.keyID, byte(r.algorithm))
	b = appendAddr(b, r.source.Addr())
	b = binary.BigEndian.AppendUint16(b, r.source.Port())
	for _, t := range [...]time.Time{r.first, r.last, r.expires} {
		b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	}
	b = binary.BigEndian.AppendUint64(b, r.digest)
	b = binary.BigEndian.AppendUint64(b, r.nonce)
	lenAt := len(b)
	b = append(b, 0, 0)
	b, err := r.record.AppendBinary(b)
	if err != nil || len(b)-lenAt-2 > 0xffff {
		return b[:start], false
	}
	binary.BigEndian.PutUint16(b[lenAt:], uint16(len(b)-lenAt-2))
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b, true
}

func appendString16(b []byte, s string) []byte {
	if len(s) > 0xffff {
		s = s[:0xffff]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, 0)
	}
	s := a.AsSlice()
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// stateReader reads the state file with bounds checks; the first error
// sticks.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = stateErr("truncated %s", what)
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *stateReader) u8(what string) uint8 {
	if p := r.take(1, what); p != nil {
		return p[0]
	}
	return 0
}

func (r *stateReader) u16(what string) uint16 {
	if p := r.take(2, what); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *stateReader) u32(what string) uint32 {
	if p := r.take(4, what); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *stateReader) u64(what string) uint64 {
	if p := r.take(8, what); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *stateReader) time(what string) time.Time {
	return time.Unix(0, int64(r.u64(what)))
}

func (r *stateReader) addr(what string) netip.Addr {
	n := int(r.u8(what))
	if n == 0 || r.err != nil {
		return netip.Addr{}
	}
	if n != 4 && n != 16 {
		r.err = stateErr("%s: address length %d", what, n)
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(r.take(n, what))
	return a
}

// count reads an element count and checks that the rest of the file can
// hold that many elements of at least size bytes.
func (r *stateReader) count(size int, what string) int {
	n := int(r.u32(what))
	if r.err == nil && n > len(r.b)/size {
		r.err = stateErr("%s: %d elements do not fit in %d bytes", what, n, len(r.b))
		return 0
	}
	return n
}

// recordHeader is the Map-Notify header (no nonce, no authentication)
// that a stored EID record is parsed behind.
var recordHeader = [16]byte{byte(wire.TypeMapNotify) << 4, 0, 0, 1}

// decodeState decodes a state file. Every error matches errState.
func decodeState(b []byte) (*stateSnapshot, error) {
	const headerLen = 8 + 2 + 2 + 8 + 4
	if len(b) < headerLen+4 {
		return nil, stateErr("%d bytes, too short", len(b))
	}
	if string(b[:8]) != stateMagic {
		return nil, stateErr("not a lispd registration state file")
	}
	if v := binary.BigEndian.Uint16(b[8:]); v != stateVersion {
		return nil, stateErr("version %d, this lispd reads version %d", v, stateVersion)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, stateErr("checksum mismatch (truncated or corrupt)")
	}
	r := &stateReader{b: body[12:]}
	snap := &stateSnapshot{written: r.time("written"), high: map[wire.XTRID]nonceMark{}}
	n := r.count(4, "registration count")
	scratch := make([]byte, 0, 256)
	for i := 0; i < n && r.err == nil; i++ {
		size := int(r.u32("registration length"))
		p := r.take(size, "registration")
		if r.err != nil {
			break
		}
		reg, err := decodeSavedReg(p, scratch)
		if err != nil {
			return nil, fmt.Errorf("registration %d: %w", i+1, err)
		}
		snap.regs = append(snap.regs, reg)
	}
	for k := range snap.queues {
		m := r.count(8, "superseded digest count")
		for range m {
			snap.queues[k] = append(snap.queues[k], r.u64("superseded digest"))
		}
	}
	m := r.count(32, "xTR-ID count")
	for range m {
		var id wire.XTRID
		copy(id[:], r.take(16, "xTR-ID"))
		snap.high[id] = nonceMark{nonce: r.u64("nonce"), seen: int64(r.u64("seen"))}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = stateErr("%d bytes after the end", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return snap, nil
}

// decodeSavedReg decodes one registration (without its length).
func decodeSavedReg(p, scratch []byte) (*registration, error) {
	r := &stateReader{b: p}
	reg := &registration{}
	site := r.take(int(r.u16("site length")), "site")
	reg.site = string(site)
	flags := r.u8("flags")
	if flags&^15 != 0 {
		return nil, stateErr("flags %#x", flags)
	}
	reg.proxy, reg.wantNotify, reg.merge = flags&2 != 0, flags&4 != 0, flags&8 != 0
	if flags&1 != 0 {
		reg.xtr.hasID = true
		copy(reg.xtr.id[:], r.take(16, "xTR-ID"))
	} else {
		reg.xtr.addr = r.addr("xTR address")
	}
	reg.siteID = r.u64("site-ID")
	reg.keyID = r.u8("Key ID")
	reg.algorithm = wire.AlgorithmID(r.u8("algorithm"))
	src := r.addr("source")
	reg.source = netip.AddrPortFrom(src, r.u16("source port"))
	reg.first, reg.last, reg.expires = r.time("first"), r.time("last"), r.time("expires")
	reg.digest = r.u64("digest")
	reg.nonce = r.u64("nonce")
	rb := r.take(int(r.u16("record length")), "record")
	if r.err == nil && len(r.b) != 0 {
		r.err = stateErr("%d bytes after the record", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	if reg.site == "" || (!reg.xtr.hasID && !reg.xtr.addr.IsValid()) {
		return nil, stateErr("registration without a site or xTR")
	}
	msg := append(append(scratch[:0], recordHeader[:]...), rb...)
	m, err := wire.Parse(msg)
	if err != nil {
		return nil, stateErr("record: %v", err)
	}
	nm, ok := m.(*wire.MapNotify)
	if !ok || len(nm.Records) != 1 || nm.Trailing != 0 {
		return nil, stateErr("record: not one EID record")
	}
	iid, pfx, ok := nm.Records[0].Prefix()
	if !ok || !validPrefix(pfx) {
		return nil, stateErr("record: not an IP EID-prefix")
	}
	reg.prefix = EIDPrefix{InstanceID: iid, Prefix: pfx}
	reg.record = cloneRecord(nm.Records[0])
	return reg, nil
}

// restoreState loads the state file into the empty database of a new
// Server. Problems are logged; the Server then starts with what it could
// not restore left out, or empty.
func (s *Server) restoreState() {
	path := s.persist.path
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.log.Info("no registration state file yet; starting with no registrations", "file", path)
		return
	case err != nil:
		s.log.Error("cannot read the registration state file; starting with no registrations", "file", path, "err", err)
		return
	}
	snap, err := decodeState(b)
	if err != nil {
		s.log.Error("the registration state file is corrupt or truncated; starting with no registrations (it is replaced at the next write)",
			"file", path, "err", err)
		return
	}
	now := s.clock.Now()
	s.regMu.Lock()
	restored, expired, dropped := s.installLocked(snap, now)
	s.regMu.Unlock()
	s.ctr.add(cStateRestored, uint64(restored))
	s.log.Info("registrations restored from the state file", "file", path, "restored", restored,
		"expired", expired, "dropped", dropped, "written", snap.written.UTC().Format(time.RFC3339))
}

// installLocked puts the registrations of snap that have not expired at
// now, and that their site may still register within its limits, into the
// database, publishes them, and restores the replay memory. regMu must be
// held.
func (s *Server) installLocked(snap *stateSnapshot, now time.Time) (restored, expired, dropped int) {
	st := s.state.Load()
	for _, reg := range snap.regs {
		if !reg.expires.After(now) {
			expired++
			continue
		}
		site, _ := st.sites.siteFor(reg.prefix.InstanceID, reg.prefix.Prefix)
		if site == nil || site.name != reg.site {
			dropped++
			continue
		}
		if e := s.reg.entries[reg.prefix]; e == nil || func() bool { _, r := e.find(reg.xtr); return r == nil }() {
			if s.limitLocked(site, e == nil, 0) != limitNone {
				dropped++
				continue
			}
		}
		if limit := now.Add(max(s.cfg.RegistrationTimeout, maxUseTTL)); reg.expires.After(limit) {
			reg.expires = limit // a clock that went back, or a hand-made file
		}
		s.reg.upsert(reg)
		restored++
	}
	for k, q := range snap.queues {
		for _, d := range q {
			s.replay.remember(d, replayKind(k))
		}
	}
	cutoff := now.Add(-xtrHighTTL).UnixNano()
	for id, h := range snap.high {
		if h.seen >= cutoff {
			s.replay.high[id] = h
		}
	}
	s.rebuildLocked(st.sites)
	s.pubJobs = nil
	return restored, expired, dropped
}
