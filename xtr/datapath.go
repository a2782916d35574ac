package xtr

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
)

// DataPlaneConfig configures a DataPlane.
type DataPlaneConfig struct {
	// Device is the EID side (the TUN device, or an in-memory one).
	// Required.
	Device dataplane.Device
	// Conns are the RLOC side: UDP port 4341 sockets, at most one per
	// address family (an encapsulated packet leaves through the one of its
	// destination's family, or the first). At least one.
	Conns []dataplane.Conn
	// Native, if set, is where packets that match a negative entry with
	// the Natively-Forward (or No-Action) action are written unchanged.
	// Without it they are dropped and counted as native_forward_no_path:
	// on a TUN set-up a packet cannot be handed back to the kernel's
	// routing without looping into the TUN again.
	Native dataplane.Device
	// ITR, if set, encapsulates what the Device reads. Without it the
	// Device is not read.
	ITR *ITR
	// ETR, if set, decapsulates what the Conns read and writes it to the
	// Device. Without it the Conns are not read.
	ETR *ETR
	// Encap configures the Encapsulators (path MTU, ICMP).
	Encap dataplane.EncapConfig
	// BatchSize is the packets per read; 0 means the device's and conns'
	// own batch sizes, capped at dataplane.DefaultBatchSize.
	BatchSize int
	// BufferSize is the size of each packet buffer; 0 means
	// dataplane.DefaultBufferSize.
	BufferSize int
	// Logger receives rate-limited I/O error logs; nil discards them.
	Logger *slog.Logger
}

// releaseBatch is the batch size used to send held packets.
const releaseBatch = 16

// DataPlane runs the xTR's packet path: RoutineEncap reads inner packets
// from the Device in batches, asks the ITR where each goes (map-cache
// lookup and RLOC choice) and writes the LISP packets to the Conns;
// RoutineDecap (one per Conn) reads LISP packets, lets the ETR's
// Decapsulator check them, and writes the inner packets to the Device.
// Packets the ITR held during a map-cache miss are encapsulated and sent by
// the goroutine that handles the Map-Reply.
//
// Device and Conn implementations allow one writer at a time, so every
// write takes the mutex of its side (uncontended in the steady state).
type DataPlane struct {
	dev    dataplane.Device
	devMu  sync.Mutex
	conns  []*connPort
	native dataplane.Device
	natMu  sync.Mutex
	itr    *ITR
	etr    *ETR
	encCfg dataplane.EncapConfig
	batch  int
	bufSz  int
	log    *slog.Logger
	logLim *rate.Limiter

	enc     *dataplane.Encapsulator
	relMu   sync.Mutex // guards rel
	rel     *encapLoop // the release path, made on first use
	running atomic.Bool
	ctr     *counters
}

// connPort is one RLOC-side Conn with its write mutex.
type connPort struct {
	conn dataplane.Conn
	mu   sync.Mutex
	v4   bool
}

// DataPlane counter indexes.
const (
	dReadErrors = iota
	dWriteErrors
	dNativeWriteErrors
	numDataCounters
)

var dataCounterNames = []string{
	dReadErrors:        "read_errors",
	dWriteErrors:       "write_errors",
	dNativeWriteErrors: "native_write_errors",
}

// NewDataPlane returns a DataPlane for cfg. Run starts it.
func NewDataPlane(cfg DataPlaneConfig) (*DataPlane, error) {
	if cfg.Device == nil {
		return nil, configError("data plane without a device")
	}
	if len(cfg.Conns) == 0 {
		return nil, configError("data plane without a UDP 4341 endpoint")
	}
	if cfg.ITR == nil && cfg.ETR == nil {
		return nil, configError("data plane without ITR or ETR")
	}
	p := &DataPlane{
		dev:    cfg.Device,
		native: cfg.Native,
		itr:    cfg.ITR,
		etr:    cfg.ETR,
		encCfg: cfg.Encap,
		bufSz:  withDefault(cfg.BufferSize, dataplane.DefaultBufferSize),
		log:    cfg.Logger,
		logLim: rate.NewLimiter(rate.Every(time.Second), 5),
		ctr:    newCounters(dataCounterNames),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	seen4, seen6 := false, false
	for _, c := range cfg.Conns {
		if c == nil {
			return nil, configError("nil conn")
		}
		v4 := c.LocalAddr().Addr().Unmap().Is4()
		if (v4 && seen4) || (!v4 && seen6) {
			return nil, configError("two conns of the same address family (%s)", c.LocalAddr())
		}
		seen4, seen6 = seen4 || v4, seen6 || !v4
		p.conns = append(p.conns, &connPort{conn: c, v4: v4})
	}
	p.batch = cfg.BatchSize
	if p.batch <= 0 {
		p.batch = min(max(cfg.Device.BatchSize(), 1), dataplane.DefaultBatchSize)
		for _, c := range cfg.Conns {
			p.batch = max(p.batch, min(c.BatchSize(), dataplane.DefaultBatchSize))
		}
	}
	if p.itr != nil {
		enc, err := dataplane.NewEncapsulator(cfg.Encap)
		if err != nil {
			return nil, err
		}
		p.enc = enc
	}
	if p.itr != nil && p.etr != nil {
		// The ETR's decapsulation filter also accepts the RLOCs of the
		// map-cache entry for a packet's inner source.
		p.etr.decap.SetRLOCCheck(p.itr.mappingHasRLOC)
	}
	// Validate the buffer and batch sizes now rather than in Run.
	if _, err := dataplane.NewBatch(1, p.bufSz); err != nil {
		return nil, err
	}
	return p, nil
}

// Run moves packets until ctx is done. It owns the Device, the Conns and
// the Native device: it closes them all when ctx ends (which unblocks the
// readers) and returns after every goroutine it started has stopped.
// It returns nil when ctx ended it, ErrRunning if another Run is active.
func (p *DataPlane) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer p.running.Store(false)
	var wg sync.WaitGroup
	var startErr error
	if p.itr != nil {
		l, err := p.newEncapLoop(p.enc, p.batch, false)
		if err != nil {
			startErr = err
		} else {
			p.itr.dp.Store(p)
			defer p.itr.dp.CompareAndSwap(p, nil)
			wg.Add(1)
			go func() { // RoutineEncap
				defer wg.Done()
				p.runEncap(ctx, l)
			}()
		}
	}
	if p.etr != nil && startErr == nil {
		for _, c := range p.conns {
			b, err := dataplane.NewBatch(p.batch, p.bufSz)
			if err != nil {
				startErr = err
				break
			}
			wg.Add(1)
			go func() { // RoutineDecap
				defer wg.Done()
				p.runDecap(ctx, c, b)
			}()
		}
	}
	if startErr == nil {
		<-ctx.Done()
	}
	p.closeAll()
	wg.Wait()
	return startErr
}

// closeAll closes the devices and conns.
func (p *DataPlane) closeAll() {
	p.dev.Close()
	for _, c := range p.conns {
		c.conn.Close()
	}
	if p.native != nil {
		p.native.Close()
	}
}

// closed reports whether err means the device or conn was closed.
func closed(err error) bool {
	return errors.Is(err, dataplane.ErrClosed) || errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed)
}

// readFailed counts a read error and waits a little (longer while errors
// repeat), so a broken device does not spin a core. It reports whether the
// loop should stop.
func (p *DataPlane) readFailed(ctx context.Context, err error, delay *time.Duration) bool {
	if closed(err) || ctx.Err() != nil {
		return true
	}
	p.ctr.inc(dReadErrors)
	if p.logLim.Allow() {
		p.log.Warn("data plane read failed", "err", err)
	}
	*delay = min(max(*delay*2, time.Millisecond), 100*time.Millisecond)
	t := time.NewTimer(*delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true
	case <-t.C:
		return false
	}
}

// runEncap is RoutineEncap: device -> ITR -> conns.
func (p *DataPlane) runEncap(ctx context.Context, l *encapLoop) {
	var delay time.Duration
	b := l.batch
	for {
		n, err := b.ReadDevice(p.dev)
		if err != nil {
			if p.readFailed(ctx, err, &delay) {
				return
			}
			continue
		}
		delay = 0
		l.process(b, n)
	}
}

// runDecap is RoutineDecap for one conn: conn -> ETR -> device.
func (p *DataPlane) runDecap(ctx context.Context, c *connPort, b *dataplane.Batch) {
	var delay time.Duration
	l := p.newDecapLoop()
	for {
		n, err := b.ReadConn(c.conn)
		if err != nil {
			if p.readFailed(ctx, err, &delay) {
				return
			}
			continue
		}
		delay = 0
		l.process(b, n)
	}
}

// decapLoop is the state of one decapsulating packet loop (RoutineDecap):
// its memo of the remote ITRs it stamped, and the decapsulation filter's
// drop count when it last looked. It belongs to one goroutine.
type decapLoop struct {
	p       *DataPlane
	dec     *dataplane.Decapsulator
	etr     *ETR
	itr     *ITR // nil without an ITR: Locator-Status-Bits are not observed
	seen    remoteSeen
	unknown uint64 // the Decapsulator's unknown_rloc drops, as last seen
}

func (p *DataPlane) newDecapLoop() *decapLoop {
	dec := p.etr.Decapsulator()
	return &decapLoop{p: p, dec: dec, etr: p.etr, itr: p.itr, unknown: dec.Dropped(dataplane.DropUnknownRLOC)}
}

// process decapsulates the n datagrams in b, looks at what the delivered
// packets say about their senders (Locator-Status-Bits, remote ITRs), and
// writes them to the device. The steady state does not allocate.
func (l *decapLoop) process(b *dataplane.Batch, n int) {
	l.dec.DecapBatch(b, n)
	if u := l.dec.Dropped(dataplane.DropUnknownRLOC); u != l.unknown {
		l.filtered(b, n, u)
	}
	if len(b.Out) > 0 {
		l.observe(b)
	}
	l.p.writeDevice(b.Out)
}

// filtered logs (rate-limited) that the decapsulation filter dropped
// packets, with the outer source of one of those in this batch, so that
// an operator sees which RLOC to allow; u is the drop count now.
func (l *decapLoop) filtered(b *dataplane.Batch, n int, u uint64) {
	dropped := u - l.unknown
	l.unknown = u
	if !l.p.logLim.Allow() {
		return
	}
	f := l.dec.RLOCFilter()
	var from netip.Addr
	for i := range min(n, len(b.Meta)) {
		if a := b.Meta[i].Addr.Addr().Unmap(); b.Sizes[i] > 0 && !f.Contains(a) {
			from = a
			break
		}
	}
	l.p.log.Warn("decapsulation filter dropped packets from an RLOC this ETR does not know (etr.decap-filter)",
		"dropped", dropped, "from", from)
}

// observe handles the senders of the delivered packets in b before they
// are written, so that a reply the hosts send sees the new reachability:
// the Locator-Status-Bits of packets with the L bit (ITR.observeLSB) and
// the remote-ITR table (one update per remote ITR and second at most).
func (l *decapLoop) observe(b *dataplane.Batch) {
	now := l.etr.now().UnixNano()
	var itrNow int64
	for k, pkt := range b.Out {
		if k >= len(b.OutDecap) || k >= len(b.OutIID) || len(pkt) < dataplane.OutOffset {
			break
		}
		m := &b.OutDecap[k]
		src, _, ok := ipAddrs(pkt[dataplane.OutOffset:])
		if !ok {
			continue
		}
		iid := b.OutIID[k]
		if m.L && l.itr != nil {
			if itrNow == 0 {
				itrNow = l.itr.now().UnixNano()
			}
			l.itr.observeLSBAt(itrNow, iid, src, m.Outer, m.LSB, int(m.LSBLen))
		}
		l.seen.see(l.etr, iid, m.Outer, src, now)
	}
}

// writeDevice writes packets (at OutOffset) to the device.
func (p *DataPlane) writeDevice(pkts [][]byte) {
	if len(pkts) == 0 {
		return
	}
	p.devMu.Lock()
	_, err := p.dev.Write(pkts, dataplane.OutOffset)
	p.devMu.Unlock()
	if err != nil {
		p.writeFailed("device", err)
	}
}

// writeFailed counts and logs (rate-limited) a failed write.
func (p *DataPlane) writeFailed(side string, err error) {
	p.ctr.inc(dWriteErrors)
	if p.logLim.Allow() {
		p.log.Warn("data plane write failed", "side", side, "err", err)
	}
}

// sendHeld encapsulates and sends packets the ITR held during a miss.
func (p *DataPlane) sendHeld(held [][]byte) {
	p.relMu.Lock()
	defer p.relMu.Unlock()
	if p.rel == nil {
		enc, err := dataplane.NewEncapsulator(p.encCfg)
		if err == nil {
			p.rel, err = p.newEncapLoop(enc, releaseBatch, true)
		}
		if err != nil {
			p.itr.ctr.add(iMissDropped, uint64(len(held)))
			return
		}
	}
	l := p.rel
	b := l.batch
	for len(held) > 0 {
		k := min(len(held), b.Len())
		b.Reset()
		for j, pkt := range held[:k] {
			if len(pkt) > len(b.Bufs[j])-dataplane.Headroom {
				b.Sizes[j] = 0
				p.itr.ctr.inc(iMissDropped)
				continue
			}
			b.Sizes[j] = copy(b.Bufs[j][dataplane.Headroom:], pkt)
		}
		l.process(b, k)
		held = held[k:]
	}
}

// Counters returns the data plane's counters with stable names: the
// loops' read_errors, write_errors and native_write_errors; the
// Encapsulator's as encap_<name> and the ETR Decapsulator's as
// decap_<name> (see dataplane.EncapStats.Counters and DecapStats.Counters);
// and, for devices and conns that report them, their link counters as
// device_<name>, conn4_<name> or conn6_<name>, and native_<name>.
func (p *DataPlane) Counters() []dataplane.Counter {
	out := p.ctr.snapshot()
	add := func(prefix string, cs []dataplane.Counter) {
		for _, c := range cs {
			out = append(out, dataplane.Counter{Name: prefix + c.Name, Value: c.Value})
		}
	}
	if p.enc != nil {
		st := p.enc.Stats()
		p.relMu.Lock()
		if p.rel != nil {
			addEncapStats(&st, p.rel.enc.Stats())
		}
		p.relMu.Unlock()
		add("encap_", st.Counters())
	}
	if p.etr != nil {
		add("decap_", p.etr.Decapsulator().Stats().Counters())
	}
	type linkStats interface{ Stats() dataplane.LinkStats }
	if s, ok := p.dev.(linkStats); ok {
		add("device_", s.Stats().Counters())
	}
	for _, c := range p.conns {
		if s, ok := c.conn.(linkStats); ok {
			name := "conn4_"
			if !c.v4 {
				name = "conn6_"
			}
			add(name, s.Stats().Counters())
		}
	}
	if s, ok := p.native.(linkStats); ok {
		add("native_", s.Stats().Counters())
	}
	return out
}

// addEncapStats adds b's counts into a.
func addEncapStats(a *dataplane.EncapStats, b dataplane.EncapStats) {
	a.Packets += b.Packets
	a.Bytes += b.Bytes
	a.Fragmented += b.Fragmented
	a.Fragments += b.Fragments
	a.ICMPFragNeeded += b.ICMPFragNeeded
	a.ICMPv6PacketTooBig += b.ICMPv6PacketTooBig
	a.ICMPRateLimited += b.ICMPRateLimited
	for r, n := range b.Drops {
		a.Drops[r] += n
	}
}

// encapLoop is the state of one encapsulating packet loop (RoutineEncap,
// or the release path): its Encapsulator, Batch, the time of the batch, and
// scratch lists. It belongs to one goroutine at a time.
type encapLoop struct {
	p       *DataPlane
	itr     *ITR
	enc     *dataplane.Encapsulator
	batch   *dataplane.Batch
	release bool // packets held during a miss: a new miss drops them

	st   *itrSettings
	now  int64
	nowT time.Time

	// hits and misses count this batch's map-cache lookups; they are added
	// to the cache's Stats once per batch (see mapcache.Cache.Peek).
	hits, misses uint64

	// etr, when the xTR is also an ETR, gives the Locator-Status-Bits of
	// the inner source's mapping (lsb memoizes the last answer).
	etr *ETR
	lsb lsbCache

	lookup    dataplane.LookupFunc // l.decide, bound once
	native    [][]byte             // native-forwarding buffers
	nativeOut [][]byte
	out4      [][]byte // per-family split of Batch.Out
	meta4     []dataplane.Meta
	out6      [][]byte
	meta6     []dataplane.Meta
}

func (p *DataPlane) newEncapLoop(enc *dataplane.Encapsulator, n int, release bool) (*encapLoop, error) {
	b, err := dataplane.NewBatch(n, p.bufSz)
	if err != nil {
		return nil, err
	}
	l := &encapLoop{p: p, itr: p.itr, etr: p.etr, enc: enc, batch: b, release: release}
	l.lookup = l.decide
	return l, nil
}

// process encapsulates the n packets in b and writes the results.
func (l *encapLoop) process(b *dataplane.Batch, n int) {
	l.st = l.itr.settings.Load()
	l.nowT = l.itr.now()
	l.now = l.nowT.UnixNano()
	l.nativeOut = l.nativeOut[:0]
	l.hits, l.misses = 0, 0
	l.enc.EncapBatch(b, n, l.lookup)
	l.itr.cache.CountLookups(l.hits, l.misses)
	l.writeOut(b)
	l.p.writeDevice(b.Reply)
	if len(l.nativeOut) > 0 {
		l.p.natMu.Lock()
		_, err := l.p.native.Write(l.nativeOut, dataplane.OutOffset)
		l.p.natMu.Unlock()
		if err != nil {
			l.p.ctr.inc(dNativeWriteErrors)
		}
	}
}

// writeOut sends b.Out, each packet through the conn of its destination's
// family when there are two.
func (l *encapLoop) writeOut(b *dataplane.Batch) {
	if len(b.Out) == 0 {
		return
	}
	conns := l.p.conns
	if len(conns) == 1 {
		l.writeConn(conns[0], b.Out, b.OutMeta)
		return
	}
	l.out4, l.meta4 = l.out4[:0], l.meta4[:0]
	l.out6, l.meta6 = l.out6[:0], l.meta6[:0]
	for k, pkt := range b.Out {
		m := b.OutMeta[k]
		if m.Addr.Addr().Unmap().Is4() {
			l.out4, l.meta4 = append(l.out4, pkt), append(l.meta4, m)
		} else {
			l.out6, l.meta6 = append(l.out6, pkt), append(l.meta6, m)
		}
	}
	for _, c := range conns {
		if c.v4 {
			l.writeConn(c, l.out4, l.meta4)
		} else {
			l.writeConn(c, l.out6, l.meta6)
		}
	}
}

func (l *encapLoop) writeConn(c *connPort, pkts [][]byte, meta []dataplane.Meta) {
	if len(pkts) == 0 {
		return
	}
	c.mu.Lock()
	_, err := c.conn.Write(pkts, meta, dataplane.OutOffset)
	c.mu.Unlock()
	if err != nil {
		l.p.writeFailed("conn", err)
	}
}

// decide is the LookupFunc: the ITR's decision for one inner packet. On a
// map-cache hit with a usable RLOC it returns the tunnel (RLOC chosen by
// ChooseRLOC with the packet's flow hash, with the L bit and the
// Locator-Status-Bits of the source's site when the xTR is also an ETR
// whose database holds the inner source) and touches the entry; on a miss
// it hands the packet to the ITR's miss handling; on a negative entry it
// applies the entry's action. The hit path does not allocate.
func (l *encapLoop) decide(inner []byte, hash uint32) (dataplane.Tunnel, bool) {
	src, dst, ok := ipAddrs(inner)
	if !ok {
		return dataplane.Tunnel{}, false
	}
	st := l.st
	e, hit := l.itr.cache.Peek(st.iid, dst, l.now)
	if !hit {
		l.misses++
		l.missed(dst, src, inner)
		return dataplane.Tunnel{}, false
	}
	l.hits++
	e.Touch(l.now)
	if len(e.RLOCs) == 0 {
		l.negative(e, dst, src, inner)
		return dataplane.Tunnel{}, false
	}
	idx, ok := chooseRLOC(e, hash, st.fam)
	if !ok {
		l.itr.ctr.inc(iDroppedNoRLOC)
		return dataplane.Tunnel{}, false
	}
	rloc := e.RLOCs[idx].Addr
	if l.release {
		l.itr.ctr.inc(iMissReleased)
	}
	t := dataplane.Tunnel{Src: st.srcFor(rloc), Dst: rloc, InstanceID: st.iid}
	if l.etr != nil {
		t.LSB, t.L = l.lsb.get(l.etr, st.iid, src)
	}
	return t, true
}

// missed handles a packet with no map-cache entry. Destinations that
// cannot be EIDs (multicast, link-local, unspecified, loopback, limited
// broadcast: e.g. the router solicitations a kernel sends into a fresh TUN)
// are dropped and counted without asking the mapping system, which would
// only answer with a negative entry covering unrelated space.
func (l *encapLoop) missed(dst, src netip.Addr, inner []byte) {
	if !possibleEID(dst) {
		l.itr.ctr.inc(iDroppedNotEID)
		return
	}
	if l.release {
		// A held packet whose mapping went away again: drop it rather
		// than ask once more.
		l.itr.ctr.inc(iMissDropped)
		return
	}
	l.itr.miss(l.st, dst, src, inner, l.nowT)
}

// possibleEID reports whether dst can be an EID that the mapping system
// resolves: a global or private unicast address.
func possibleEID(dst netip.Addr) bool {
	return !(dst.IsMulticast() || dst.IsLinkLocalUnicast() || dst.IsUnspecified() ||
		dst.IsLoopback() || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}))
}

// negative applies the action of a negative entry (RFC 9301 section 5.4)
// to a packet: Natively-Forward and No-Action send it unencapsulated
// through the native path; Send-Map-Request treats it as a miss; the Drop
// actions drop it.
func (l *encapLoop) negative(e *mapcache.Entry, dst, src netip.Addr, inner []byte) {
	switch e.Action {
	case mapcache.NativelyForward, mapcache.NoAction:
		l.forwardNative(inner)
	case mapcache.SendMapRequest:
		l.missed(dst, src, inner)
	default:
		l.itr.ctr.inc(iDroppedByAction)
	}
}

// forwardNative copies a packet to the native path, or drops and counts it
// when there is none.
func (l *encapLoop) forwardNative(inner []byte) {
	if l.p.native == nil {
		l.itr.ctr.inc(iNativeNoPath)
		return
	}
	if l.native == nil {
		l.native = make([][]byte, l.batch.Len())
	}
	k := len(l.nativeOut)
	if k >= len(l.native) {
		l.itr.ctr.inc(iNativeNoPath)
		return
	}
	need := dataplane.OutOffset + len(inner)
	if cap(l.native[k]) < need {
		l.native[k] = make([]byte, max(need, l.p.bufSz))
	}
	buf := l.native[k][:need]
	copy(buf[dataplane.OutOffset:], inner)
	l.nativeOut = append(l.nativeOut, buf)
	l.itr.ctr.inc(iNativelyForwarded)
}
