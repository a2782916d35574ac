package cachesync

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/lispd/lispd/mapcache"
)

// Gossip mode runs on hashicorp/memberlist:
//
//   - Membership and failure detection are memberlist's (SWIM); the peer
//     view follows its join and leave events.
//   - A local change is a memberlist broadcast (TransmitLimitedQueue, one
//     record per message, named by key so that a newer version replaces a
//     queued older one). Broadcasts reach a few random members per gossip
//     interval; a member that applies a broadcast record that is newer
//     than its own copy broadcasts it in turn (epidemic spread), and one
//     that already had it does not, which ends the spread (no loops).
//   - memberlist's push/pull state exchange carries the digest: LocalState
//     returns this member's DIGEST; MergeRemoteState answers a differing
//     digest with KEYS sent directly (SendReliable) to the other member,
//     which sends back, directly, only the records missing or older here.
//   - Usage reports go directly to every live member each round.
//   - All traffic is encrypted and authenticated with memberlist's
//     keyring (AES-GCM with the shared secret key); GossipVerifyIncoming
//     refuses anything else, and what it refuses is counted and logged
//     (rate-limited) from memberlist's log lines (memberlistLog).
//
// Every message is an envelope, [name length (1)][sender name][frame], so
// that the receiver knows which member sent it.

// maxBroadcastMsg is the largest record broadcast over UDP; a larger
// record (many locators) is sent directly to every member instead.
const maxBroadcastMsg = 1200

// inboxSize is the number of received messages waiting to be handled.
const inboxSize = 4096

// maxSends bounds the direct sends in flight.
const maxSends = 8

// recordsFlagRelay marks a gossip broadcast: a receiver that applies it
// broadcasts it in turn.
const recordsFlagRelay = 0x02

type gossip struct {
	m     *Member
	ml    *memberlist.Memberlist
	q     *memberlist.TransmitLimitedQueue
	tr    *countingTransport
	ctx   context.Context
	wg    *sync.WaitGroup
	inbox chan []byte
	sends chan struct{}
	// leaveTimeout bounds the wait for the leave message to go out.
	leaveTimeout time.Duration
	// probeInterval is memberlist's: a probe in flight when it shuts down
	// ends within it.
	probeInterval time.Duration
}

// startGossip creates the memberlist, joins the seeds and starts the
// worker.
func (m *Member) startGossip(ctx context.Context, wg *sync.WaitGroup) (*gossip, error) {
	cfg := m.cfg
	g := &gossip{m: m, ctx: ctx, wg: wg, inbox: make(chan []byte, inboxSize), sends: make(chan struct{}, maxSends)}
	logger := log.New(&memberlistLog{m: m}, "", 0)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{cfg.Listen.Addr().String()},
		BindPort:  int(cfg.Listen.Port()),
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("cachesync: gossip listen: %w", err)
	}
	g.tr = newCountingTransport(nt, &m.c)

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.BindAddr = cfg.Listen.Addr().String()
	mc.BindPort = nt.GetAutoBindPort()
	mc.AdvertisePort = mc.BindPort
	mc.Transport = g.tr
	mc.SecretKey = cfg.Gossip.SecretKey
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.Delegate = g
	mc.Events = g
	mc.Logger = logger
	mc.PushPullInterval = cfg.AntiEntropyInterval
	gc := cfg.Gossip
	setDur := func(d *time.Duration, v time.Duration) {
		if v > 0 {
			*d = v
		}
	}
	// Failure detection within about DeadAfter: probe every heartbeat
	// interval, and a suspected member is declared dead after
	// SuspicionMult x max(1, log10(N)) probe intervals (memberlist's
	// formula), unless the operator tuned these in GossipConfig.
	mc.ProbeInterval = cfg.HeartbeatInterval
	mc.ProbeTimeout = max(cfg.HeartbeatInterval/2, 10*time.Millisecond)
	mc.SuspicionMult = max(int(cfg.DeadAfter/cfg.HeartbeatInterval)/2, 1)
	mc.SuspicionMaxTimeoutMult = 1
	setDur(&mc.ProbeInterval, gc.ProbeInterval)
	setDur(&mc.ProbeTimeout, gc.ProbeTimeout)
	setDur(&mc.GossipInterval, gc.GossipInterval)
	setDur(&mc.PushPullInterval, gc.PushPullInterval)
	if gc.GossipNodes > 0 {
		mc.GossipNodes = gc.GossipNodes
	}
	if gc.SuspicionMult > 0 {
		mc.SuspicionMult = gc.SuspicionMult
	}
	if gc.RetransmitMult > 0 {
		mc.RetransmitMult = gc.RetransmitMult
	}
	mc.TCPTimeout = max(2*mc.ProbeInterval, time.Second)
	mc.GossipToTheDeadTime = mc.PushPullInterval
	g.leaveTimeout = max(4*mc.GossipInterval, 200*time.Millisecond)
	g.probeInterval = mc.ProbeInterval
	g.q = &memberlist.TransmitLimitedQueue{RetransmitMult: mc.RetransmitMult, NumNodes: g.numNodes}

	ml, err := memberlist.Create(mc)
	if err != nil {
		g.tr.Shutdown()
		return nil, fmt.Errorf("cachesync: gossip: %w", err)
	}
	g.ml = ml
	ln := ml.LocalNode()
	ip, _ := netip.AddrFromSlice(ln.Addr)
	m.setReady(netip.AddrPortFrom(ip.Unmap(), ln.Port))
	wg.Go(g.work)
	if len(gc.Seeds) > 0 {
		seeds := make([]string, len(gc.Seeds))
		for i, s := range gc.Seeds {
			seeds[i] = s.String()
		}
		if n, err := ml.Join(seeds); err != nil {
			// Not fatal: the seeds may be down; memberlist keeps the
			// member alone until another member joins it.
			m.joinFailed(seeds, err)
		} else {
			m.log.Info("sync: joined the gossip set", "contacted", n)
		}
		wg.Go(func() { g.rejoin(seeds) })
	}
	return g, nil
}

// joinFailed logs (rate-limited) why joining the seeds failed, saying so
// plainly when the seeds use another gossip key.
func (m *Member) joinFailed(seeds []string, err error) {
	ok, n := m.logs.allow("gossip-join", time.Now())
	if !ok {
		return
	}
	detail := strings.Join(strings.Fields(err.Error()), " ")
	if strings.Contains(detail, keyFailureText) {
		m.log.Warn("sync: gossip cannot join the seeds: they use another gossip key (sync.gossip-key differs)",
			"seeds", seeds, "err", detail, "suppressed", n)
		return
	}
	m.log.Warn("sync: gossip could not join any seed yet", "seeds", seeds, "err", detail, "suppressed", n)
}

// rejoin retries the seeds while this member is alone (the seeds were down
// when it started, or it was partitioned).
func (g *gossip) rejoin(seeds []string) {
	t := time.NewTicker(max(g.m.cfg.RoundInterval, time.Second))
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
			if g.ml.NumMembers() <= 1 {
				if _, err := g.ml.Join(seeds); err == nil {
					g.m.log.Info("sync: joined the gossip set")
				} else {
					g.m.joinFailed(seeds, err)
				}
			}
		}
	}
}

// stop leaves the set and shuts memberlist down. memberlist's Shutdown
// does not wait for a failure-detection probe in flight, which ends within
// one probe interval (its ack timer); stop waits that long when there were
// members to probe, so that Run leaves no goroutine behind.
func (g *gossip) stop() {
	probing := g.ml.NumMembers() > 1
	if err := g.ml.Leave(g.leaveTimeout); err != nil {
		g.m.log.Debug("sync: gossip leave", "err", err)
	}
	g.ml.Shutdown()
	if probing {
		time.Sleep(g.probeInterval + 50*time.Millisecond)
	}
}

func (g *gossip) numNodes() int {
	if g.ml == nil {
		return 1
	}
	return g.ml.NumMembers()
}

// envelope prefixes frame f with this member's name.
func (g *gossip) envelope(f []byte) []byte {
	name := g.m.cfg.Name
	b := make([]byte, 0, 1+len(name)+len(f))
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, f...)
}

// openEnvelope splits a message into the sender's name and the frame.
func openEnvelope(b []byte) (string, []byte, error) {
	if len(b) < 1 || len(b) < 1+int(b[0]) || b[0] == 0 {
		return "", nil, errTruncated("gossip envelope")
	}
	return string(b[1 : 1+b[0]]), b[1+b[0]:], nil
}

// peer returns the member called name, creating it if needed.
func (g *gossip) peer(name string) *peer {
	m := g.m
	m.gmu.Lock()
	defer m.gmu.Unlock()
	p := m.gpeers[name]
	if p == nil {
		p = &peer{name: name, rank: name, state: PeerIdle, since: time.Now()}
		m.gpeers[name] = p
	}
	return p
}

// node returns the live memberlist node called name.
func (g *gossip) node(name string) *memberlist.Node {
	for _, n := range g.ml.Members() {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// NodeMeta implements memberlist.Delegate: the member's origin ID.
func (g *gossip) NodeMeta(limit int) []byte {
	return binary.BigEndian.AppendUint16(nil, g.m.clock.Origin())
}

// NotifyMsg implements memberlist.Delegate. It must not block: the message
// is queued for the worker (dropped and counted if the inbox is full).
func (g *gossip) NotifyMsg(b []byte) {
	g.enqueue(bytes.Clone(b))
}

func (g *gossip) enqueue(b []byte) {
	select {
	case g.inbox <- b:
	default:
		g.m.c.inboxDrops.Add(1)
	}
}

// GetBroadcasts implements memberlist.Delegate.
func (g *gossip) GetBroadcasts(overhead, limit int) [][]byte {
	msgs := g.q.GetBroadcasts(overhead, limit)
	for _, b := range msgs {
		g.m.c.framesSent.Add(1)
		g.m.c.recordsSent.Add(1)
		g.m.c.bytesSent.Add(uint64(len(b)))
	}
	return msgs
}

// LocalState implements memberlist.Delegate: this member's digest, for
// the push/pull exchange.
func (g *gossip) LocalState(join bool) []byte {
	ss := collectShareable(g.m.cache, g.m.cache.Now())
	f := appendDigest(nil, ss.digest(bucketsFor(len(ss.entries))))
	g.m.c.framesSent.Add(1)
	g.m.c.bytesSent.Add(uint64(len(f)))
	return g.envelope(f)
}

// MergeRemoteState implements memberlist.Delegate: the other member's
// digest, handled by the worker like a directly sent one.
func (g *gossip) MergeRemoteState(buf []byte, join bool) {
	g.enqueue(bytes.Clone(buf))
}

// NotifyJoin implements memberlist.EventDelegate.
func (g *gossip) NotifyJoin(n *memberlist.Node) {
	if n.Name == g.m.cfg.Name {
		return
	}
	p := g.peer(n.Name)
	ip, _ := netip.AddrFromSlice(n.Addr)
	p.mu.Lock()
	p.addr = netip.AddrPortFrom(ip.Unmap(), n.Port)
	p.alive = true
	p.state, p.since, p.lastErr = PeerConnected, time.Now(), ""
	p.mu.Unlock()
	p.c.connects.Add(1)
	if f, ok := g.m.statusFrame(); ok {
		g.send(p, f, 0)
	}
	if len(n.Meta) == 2 && binary.BigEndian.Uint16(n.Meta) == g.m.clock.Origin() {
		g.m.log.Warn("sync: member has the same origin ID as this member; rename one of them so that their versions differ",
			"member", n.Name, "origin", g.m.clock.Origin())
	}
	g.m.log.Info("sync: member joined", "member", n.Name, "addr", p.addr)
}

// NotifyLeave implements memberlist.EventDelegate.
func (g *gossip) NotifyLeave(n *memberlist.Node) {
	if n.Name == g.m.cfg.Name {
		return
	}
	p := g.peer(n.Name)
	p.mu.Lock()
	wasAlive := p.alive
	p.alive = false
	p.state, p.since = PeerDead, time.Now()
	p.mu.Unlock()
	g.m.log.Info("sync: member left or failed", "member", n.Name)
	if wasAlive {
		g.m.peerDead(p, errors.New("memberlist: member left or failed"))
	}
}

// NotifyUpdate implements memberlist.EventDelegate.
func (g *gossip) NotifyUpdate(*memberlist.Node) {}

// broadcast queues a local change for gossip.
func (g *gossip) broadcast(e *mapcache.Entry) {
	b := newRecordBroadcast(g, e)
	if b == nil {
		return
	}
	if len(b.msg) > maxBroadcastMsg {
		// Too big for a UDP gossip message: send it to everyone.
		f := b.msg[1+len(g.m.cfg.Name):]
		for _, p := range g.m.connectedPeers() {
			g.send(p, f, 1)
		}
		return
	}
	g.q.QueueBroadcast(b)
}

// recordBroadcast is one record queued for gossip. Its message is encoded
// once; Message returns a copy with the remaining time refreshed (a
// fixed-width field), so that a record that waits in the queue still
// carries its true expiry and its length never changes. (A copy, because
// memberlist reads a returned message after releasing the queue's lock.)
type recordBroadcast struct {
	g    *gossip
	e    *mapcache.Entry
	name string
	msg  []byte
	rec  int // offset of the record in msg
}

func newRecordBroadcast(g *gossip, e *mapcache.Entry) *recordBroadcast {
	now := g.m.cache.Now()
	frames, _ := recordsFrames([]*mapcache.Entry{e}, now, false, MinMaxFrameSize)
	if len(frames) != 1 {
		return nil // expired already
	}
	f := frames[0]
	f[frameHeaderLen] |= recordsFlagRelay
	msg := g.envelope(f)
	return &recordBroadcast{
		g: g, e: e, msg: msg, name: e.Key().String(),
		rec: 1 + len(g.m.cfg.Name) + frameHeaderLen + 5,
	}
}

// Invalidates implements memberlist.Broadcast: a newer broadcast of the
// same key replaces a queued one.
func (b *recordBroadcast) Invalidates(o memberlist.Broadcast) bool {
	nb, ok := o.(memberlist.NamedBroadcast)
	return ok && nb.Name() == b.name
}

// Name implements memberlist.NamedBroadcast.
func (b *recordBroadcast) Name() string { return b.name }

// Message implements memberlist.Broadcast.
func (b *recordBroadcast) Message() []byte {
	msg := bytes.Clone(b.msg)
	patchRemaining(msg[b.rec:], b.e, b.g.m.cache.Now())
	return msg
}

// Finished implements memberlist.Broadcast.
func (b *recordBroadcast) Finished() {}

// patchRemaining rewrites the Remaining field of an encoded record of e for
// now (at least one unit: a record about to expire is still sent).
func patchRemaining(rec []byte, e *mapcache.Entry, now time.Time) {
	unit := time.Millisecond
	if rec[7]&recFlagSeconds != 0 {
		unit = time.Second
	}
	rem := e.Expires.Sub(now)
	binary.BigEndian.PutUint32(rec[23:27], uint32(min(durUnits(max(rem, 0), unit, false), 1<<32-1)))
}

// send sends frame f directly (reliably, over TCP) to p, in the
// background, at most maxSends at a time.
func (g *gossip) send(p *peer, f []byte, records int) {
	if g.ctx.Err() != nil {
		return
	}
	msg := g.envelope(f)
	g.wg.Go(func() {
		select {
		case g.sends <- struct{}{}:
		case <-g.ctx.Done():
			return
		}
		defer func() { <-g.sends }()
		n := g.node(p.name)
		if n == nil {
			return
		}
		if err := g.ml.SendReliable(n, msg); err != nil {
			if g.ctx.Err() == nil {
				g.m.log.Debug("sync: gossip direct send failed", "member", p.name, "err", err)
			}
			return
		}
		g.m.countSent(p, len(f), records)
	})
}

// sendDigestAll sends this member's digest to every live member.
func (g *gossip) sendDigestAll() {
	ss := collectShareable(g.m.cache, g.m.cache.Now())
	f := appendDigest(nil, ss.digest(bucketsFor(len(ss.entries))))
	for _, p := range g.m.connectedPeers() {
		g.send(p, f, 0)
	}
}

// sendUsage sends a usage report to every live member.
func (g *gossip) sendUsage(items []usageItem) {
	frames := usageFrames(items, g.m.cfg.MaxFrameSize)
	for _, p := range g.m.connectedPeers() {
		for _, f := range frames {
			g.send(p, f, 0)
		}
	}
}

// work handles received messages (RoutineGossipWorker).
func (g *gossip) work() {
	for {
		select {
		case <-g.ctx.Done():
			return
		case b := <-g.inbox:
			g.handle(b)
		}
	}
}

// handle acts on one received message.
func (g *gossip) handle(b []byte) {
	m := g.m
	name, fb, err := openEnvelope(b)
	if err == nil && name == m.cfg.Name {
		return // our own state, echoed by a push/pull
	}
	var f frame
	if err == nil {
		f, err = parseFrame(fb)
	}
	if err != nil {
		m.c.malformed.Add(1)
		if ok, n := m.logs.allow("gossip-frame", time.Now()); ok {
			m.log.Warn("sync: dropped a malformed gossip message", "from", name, "err", err, "suppressed", n)
		}
		return
	}
	p := g.peer(name)
	m.countReceived(p, len(fb), len(f.records))
	m.heardFrom(p)
	switch f.typ {
	case frameRecords:
		applied := m.apply(f.records, p, false)
		if f.full || len(applied) == 0 || fb[frameHeaderLen]&recordsFlagRelay == 0 {
			return
		}
		if len(m.connectedPeers()) <= 1 {
			// The only other member is the sender: relaying would
			// only echo the record back.
			return
		}
		// Epidemic spread: pass on what was news here.
		for _, e := range applied {
			if nb := newRecordBroadcast(g, e); nb != nil && len(nb.msg) <= maxBroadcastMsg {
				g.q.QueueBroadcast(nb)
			}
		}
	case frameDigest:
		m.c.digests.Add(1)
		ss := collectShareable(m.cache, m.cache.Now())
		diff := ss.diffBuckets(f.digest)
		m.c.bucketsDiffering.Add(uint64(len(diff)))
		if len(diff) > 0 {
			for _, kf := range keysFrames(ss.keys(len(f.digest.buckets), diff), m.cfg.MaxFrameSize) {
				g.send(p, kf, 0)
			}
		}
	case frameKeys:
		now := m.cache.Now()
		ss := collectShareable(m.cache, now)
		if miss := ss.missing(f.keys); len(miss) > 0 {
			frames, counts := recordsFrames(miss, now, false, m.cfg.MaxFrameSize)
			for i, rf := range frames {
				g.send(p, rf, counts[i])
			}
		}
	case frameUsage:
		m.usage.record(p, f.usage, m.cache.Now().UnixNano())
	case frameStatus:
		m.peerStatus(p, f.status)
	case framePing, frameBye, frameHello:
	default:
		m.c.unknownFrames.Add(1)
	}
}

// memberlistLog turns memberlist's log lines ("[DEBUG] memberlist: ...")
// into slog records at the matching level. memberlist says only there
// when it refuses what arrived from the network (a packet or stream that
// its keyring cannot decrypt, or that is not its protocol), one line each
// and at error level: those lines are counted (Stats.GossipKeyFailures,
// GossipMalformed), logged at debug level, and summed up in a warning at
// most once per logEvery.
type memberlistLog struct {
	m *Member
}

// Write logs one memberlist line.
func (w *memberlistLog) Write(b []byte) (int, error) {
	m := w.m
	line := string(bytes.TrimSpace(b))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{
		"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError,
	} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			level, line = l, strings.TrimSpace(rest)
			break
		}
	}
	kind := classifyMemberlistLine(line)
	if kind == "" {
		m.log.Log(context.Background(), level, "sync: gossip: "+line)
		return len(b), nil
	}
	msg := "sync: gossip: refused a malformed packet or stream (not memberlist's protocol, or not encrypted)"
	if kind == gossipRefusedKey {
		m.c.gossipKeyFailures.Add(1)
		msg = "sync: gossip: refused a message that no key of this member decrypts: a member with another gossip key (sync.gossip-key)?"
	} else {
		m.c.gossipMalformed.Add(1)
	}
	m.log.Debug("sync: gossip: "+line, "refused", kind)
	if ok, n := m.logs.allow("gossip-"+kind, time.Now()); ok {
		m.log.Warn(msg, "from", lineFrom(line), "detail", line, "suppressed", n)
	}
	return len(b), nil
}

// Kinds of gossip traffic memberlist refused.
const (
	gossipRefusedKey       = "key"
	gossipRefusedMalformed = "malformed"
)

// keyFailureText is memberlist's error when no key of the keyring opens
// a message (decryptPayload).
const keyFailureText = "no installed keys could decrypt"

// memberlistRefusals are parts of the lines memberlist (v0.7) logs when
// it drops a packet or a stream that is not its protocol.
var memberlistRefusals = []string{
	"Decrypt packet failed",          // not encrypted, unknown version, too short
	"UDP packet too short",           // an empty packet
	"failed to receive",              // a stream: not encrypted, undecodable, idle
	"unacceptable label",             // a label header not ours
	"label header",                   // a malformed or doubled label header
	"cannot decode label",            // a truncated label header
	"missing message type byte",      // an empty packet
	"Received invalid msgType",       // a stream of an unknown type
	"not supported",                  // a packet of an unknown type
	"Failed to decode",               // an undecodable message
	"invalid checksum",               // a corrupted packet
	"Failed to decompress payload",   // an undecodable compressed message
	"truncated messages",             // a truncated compound packet
	"Failed to receive user message", // an undecodable user message
	"Failed to read remote state",    // an undecodable push/pull state
}

// classifyMemberlistLine says whether a memberlist log line (its level
// prefix removed) reports refused traffic: gossipRefusedKey when no key
// decrypted it, gossipRefusedMalformed when it was not memberlist's
// protocol, "" otherwise.
func classifyMemberlistLine(line string) string {
	if strings.Contains(line, keyFailureText) {
		return gossipRefusedKey
	}
	for _, s := range memberlistRefusals {
		if strings.Contains(line, s) {
			return gossipRefusedMalformed
		}
	}
	return ""
}

// lineFrom returns the address a memberlist line names ("from=..."), or
// "" if it names none.
func lineFrom(line string) string {
	_, rest, ok := strings.Cut(line, "from=")
	if !ok {
		return ""
	}
	if i := strings.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// countingTransport is memberlist's NetTransport with every byte it sends
// and receives counted, so that gossip's true cost (membership and
// failure detection included) can be compared with the other modes.
type countingTransport struct {
	nt      *memberlist.NetTransport
	c       *counters
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	wg      sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*countingTransport)(nil)

func newCountingTransport(nt *memberlist.NetTransport, c *counters) *countingTransport {
	t := &countingTransport{
		nt: nt, c: c,
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
	}
	t.wg.Go(t.forwardPackets)
	t.wg.Go(t.forwardStreams)
	return t
}

func (t *countingTransport) forwardPackets() {
	for {
		select {
		case <-t.done:
			return
		case p := <-t.nt.PacketCh():
			t.c.wireReceived.Add(uint64(len(p.Buf)))
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		}
	}
}

func (t *countingTransport) forwardStreams() {
	for {
		select {
		case <-t.done:
			return
		case conn := <-t.nt.StreamCh():
			select {
			case t.streams <- &countConn{Conn: conn, c: t.c}:
			case <-t.done:
				conn.Close()
				return
			}
		}
	}
}

// FinalAdvertiseAddr implements memberlist.Transport.
func (t *countingTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.nt.FinalAdvertiseAddr(ip, port)
}

// WriteTo implements memberlist.Transport.
func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.c.wireSent.Add(uint64(len(b)))
	return t.nt.WriteTo(b, addr)
}

// WriteToAddress implements memberlist.NodeAwareTransport.
func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.c.wireSent.Add(uint64(len(b)))
	return t.nt.WriteToAddress(b, a)
}

// PacketCh implements memberlist.Transport.
func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// DialTimeout implements memberlist.Transport.
func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.nt.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countConn{Conn: c, c: t.c}, nil
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.nt.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return &countConn{Conn: c, c: t.c}, nil
}

// StreamCh implements memberlist.Transport.
func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown implements memberlist.Transport. The forwarders keep running
// while the NetTransport shuts down (its listeners may be handing over a
// last packet), then stop.
func (t *countingTransport) Shutdown() error {
	err := t.nt.Shutdown()
	select {
	case <-t.done:
	default:
		close(t.done)
	}
	t.wg.Wait()
	return err
}
