package cachesync

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/mapcache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// opts are the timings of a test set: short, so that the package's tests
// stay fast.
type opts struct {
	round, antiEntropy, window, grace time.Duration
	refreshDelay, refreshTTL          time.Duration
	gossipPushPull                    time.Duration
	// tweak, if set, changes every member's config before it starts.
	tweak func(*Config)
}

func defaultOpts() opts {
	return opts{
		round:          100 * time.Millisecond,
		antiEntropy:    time.Minute, // tests trigger what they need
		window:         time.Second,
		grace:          300 * time.Millisecond,
		refreshDelay:   100 * time.Millisecond,
		refreshTTL:     30 * time.Second,
		gossipPushPull: 500 * time.Millisecond,
	}
}

// node is one member of a test set: its map-cache (with a sweeper), its
// Member, and a fake ITR refresher that "answers" a refresh after
// refreshDelay with a new version of the mapping.
type node struct {
	s     *set
	i     int
	name  string
	key   ed25519.PrivateKey
	addr  netip.AddrPort
	cache *mapcache.Cache
	mem   atomic.Pointer[Member]

	refreshes   atomic.Int64
	refreshFail atomic.Bool

	// events receives the member's PeerEvents (dropped when full).
	events chan PeerEvent
	// peerAddr, when set, replaces a peer's address in this node's config
	// (tests put a proxy between two members).
	peerAddr map[string]netip.AddrPort

	cancel, sweepCancel context.CancelFunc
	done, sweepDone     chan struct{}
	listener            net.Listener
}

type set struct {
	t     *testing.T
	mode  Mode
	o     opts
	nodes []*node
	wg    sync.WaitGroup // pending fake refreshes
	gkey  []byte
	// extraPeers are added to every node's peer list (tests of refusal).
	extraPeers []Peer
}

// newSet builds n members of mode on 127.0.0.1 and starts them.
func newSet(t *testing.T, mode Mode, n int, o opts) *set {
	t.Helper()
	return newSetExtra(t, mode, n, o, nil)
}

// newSetExtra is newSet with extra peers in every member's config.
func newSetExtra(t *testing.T, mode Mode, n int, o opts, extra []Peer) *set {
	t.Helper()
	s := &set{t: t, mode: mode, o: o, gkey: []byte("0123456789abcdef"), extraPeers: extra}
	for i := range n {
		nd := &node{s: s, i: i, name: fmt.Sprintf("itr-%d", i), events: make(chan PeerEvent, 256)}
		if mode != ModeGossip {
			k, err := GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			nd.key = k
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			nd.listener = ln
			nd.addr = ln.Addr().(*net.TCPAddr).AddrPort()
		}
		nd.newCache()
		s.nodes = append(s.nodes, nd)
	}
	t.Cleanup(s.close)
	for _, nd := range s.nodes {
		nd.start()
		if mode == ModeGossip {
			waitFor(t, 5*time.Second, "gossip member listening", func() bool {
				select {
				case <-nd.mem.Load().Ready():
					return true
				default:
					return false
				}
			})
			nd.addr = nd.mem.Load().Addr()
		}
	}
	s.waitConnected()
	return s
}

// newCache gives the node a fresh, empty map-cache with a running sweeper
// whose expiry hook is the member's.
func (nd *node) newCache() {
	if nd.sweepCancel != nil {
		nd.sweepCancel()
		<-nd.sweepDone
	}
	nd.cache = mapcache.New(mapcache.Config{
		// The sweep period is also the lookup grace past a deadline: the
		// time the sweeper may be late before a lookup stops seeing an
		// entry that OnExpire would have extended. 250 ms tolerates a
		// loaded CI machine (100 ms did not: the smart-policy tests saw
		// misses when the sweeper goroutine was descheduled that long).
		SweepPeriod: 250 * time.Millisecond,
		OnExpire: func(e *mapcache.Entry) mapcache.ExpireDecision {
			if m := nd.mem.Load(); m != nil {
				return m.OnExpire(e)
			}
			return mapcache.DeleteNow
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	nd.sweepCancel, nd.sweepDone = cancel, make(chan struct{})
	go func() {
		defer close(nd.sweepDone)
		nd.cache.Run(ctx)
	}()
}

// config returns the node's member config.
func (nd *node) config() Config {
	c := nd.baseConfig()
	if nd.s.o.tweak != nil {
		nd.s.o.tweak(&c)
	}
	return c
}

func (nd *node) baseConfig() Config {
	s := nd.s
	c := Config{
		Mode:                s.mode,
		Name:                nd.name,
		Listen:              nd.addr,
		PrivateKey:          nd.key,
		RefreshWindow:       s.o.window,
		RoundInterval:       s.o.round,
		AntiEntropyInterval: s.o.antiEntropy,
		RefreshGrace:        s.o.grace,
		ReconnectMin:        20 * time.Millisecond,
		ReconnectMax:        200 * time.Millisecond,
		HandshakeTimeout:    2 * time.Second,
		Refresher:           RefresherFunc(nd.refresh),
		OnPeer: func(ev PeerEvent) {
			select {
			case nd.events <- ev:
			default:
			}
		},
	}
	if s.mode == ModeGossip {
		if !c.Listen.IsValid() {
			c.Listen = netip.MustParseAddrPort("127.0.0.1:0")
		}
		c.Gossip = GossipConfig{
			SecretKey:        s.gkey,
			ProbeInterval:    100 * time.Millisecond,
			ProbeTimeout:     50 * time.Millisecond,
			GossipInterval:   20 * time.Millisecond,
			PushPullInterval: s.o.gossipPushPull,
			SuspicionMult:    2,
		}
		if nd.i > 0 {
			c.Gossip.Seeds = []netip.AddrPort{s.nodes[0].addr}
		}
		return c
	}
	for _, o := range s.nodes {
		if o != nd {
			addr := o.addr
			if a, ok := nd.peerAddr[o.name]; ok {
				addr = a
			}
			c.Peers = append(c.Peers, Peer{Name: o.name, Address: addr, PublicKey: PublicKeyOf(o.key)})
		}
	}
	c.Peers = append(c.Peers, s.extraPeers...)
	return c
}

// start makes a new Member for the node and runs it.
func (nd *node) start() {
	t := nd.s.t
	c := nd.config()
	if nd.listener == nil && nd.s.mode != ModeGossip {
		ln, err := net.Listen("tcp", nd.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		nd.listener = ln
	}
	c.Listener = nd.listener
	nd.listener = nil
	if nd.s.mode == ModeGossip {
		c.Listener = nil
	}
	m, err := New(c, nd.cache)
	if err != nil {
		t.Fatal(err)
	}
	nd.mem.Store(m)
	ctx, cancel := context.WithCancel(context.Background())
	nd.cancel, nd.done = cancel, make(chan struct{})
	go func() {
		defer close(nd.done)
		if err := m.Run(ctx); err != nil {
			t.Errorf("%s: Run: %v", nd.name, err)
		}
	}()
}

// stop stops the node's Member (its cache stays).
func (nd *node) stop() {
	if nd.cancel == nil {
		return
	}
	nd.cancel()
	<-nd.done
	nd.cancel = nil
	nd.mem.Store(nil)
}

func (s *set) close() {
	for _, nd := range s.nodes {
		nd.stop()
	}
	s.wg.Wait()
	for _, nd := range s.nodes {
		if nd.sweepCancel != nil {
			nd.sweepCancel()
			<-nd.sweepDone
		}
		if nd.listener != nil {
			nd.listener.Close()
		}
	}
}

// waitConnected waits until every running member sees every other running
// member connected.
func (s *set) waitConnected() {
	s.t.Helper()
	running := 0
	for _, nd := range s.nodes {
		if nd.mem.Load() != nil {
			running++
		}
	}
	waitFor(s.t, 10*time.Second, "members connected", func() bool {
		for _, nd := range s.nodes {
			m := nd.mem.Load()
			if m == nil {
				continue
			}
			if c := len(m.connectedPeers()); c < running-1 {
				return false
			}
		}
		return true
	})
}

// refresh is the fake ITR: after refreshDelay it inserts a new version of
// the mapping (as a Map-Reply) with refreshTTL.
func (nd *node) refresh(iid uint32, p netip.Prefix) {
	nd.refreshes.Add(1)
	if nd.refreshFail.Load() {
		return
	}
	s := nd.s
	s.wg.Add(1)
	time.AfterFunc(s.o.refreshDelay, func() {
		defer s.wg.Done()
		m := nd.mem.Load()
		if m == nil {
			return
		}
		e := &mapcache.Entry{
			InstanceID: iid, Prefix: p, TTL: s.o.refreshTTL, Source: mapcache.FromMapReply,
			Version: m.NextVersion(),
			RLOCs:   []mapcache.RLOC{{Addr: netip.MustParseAddr("192.0.2.200"), Priority: 1, Weight: 100, Reachable: true}},
		}
		if _, err := nd.cache.Insert(e); err != nil {
			s.t.Errorf("%s: refresh insert: %v", nd.name, err)
		}
	})
}

// learn inserts a mapping as if a Map-Reply had arrived at the node.
func (nd *node) learn(prefix string, ttl time.Duration) *mapcache.Entry {
	nd.s.t.Helper()
	e := testEntry(0, prefix, ttl, nd.mem.Load().NextVersion(), "192.0.2.1", "198.51.100.1")
	if _, err := nd.cache.Insert(e); err != nil {
		nd.s.t.Fatalf("%s: learn %s: %v", nd.name, prefix, err)
	}
	return e
}

// has reports whether the node's cache holds key k at version v.
func (nd *node) has(prefix string, v uint64) bool {
	e, ok := nd.cache.Get(mapcache.Key{Prefix: netip.MustParsePrefix(prefix)})
	return ok && e.Version == v
}

func (nd *node) stats() Stats { return nd.mem.Load().Stats() }

// waitFor polls cond every 5 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// prefixN returns a distinct /24 for i.
func prefixN(i int) string {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24).String()
}

var tlsModes = []Mode{ModeNaive, ModeSmart}
var allModes = []Mode{ModeNaive, ModeSmart, ModeGossip}

// queuedBroadcasts returns the gossip broadcasts the node has not finished
// sending (0 in other modes).
func (nd *node) queuedBroadcasts() int {
	if g := nd.mem.Load().g.Load(); g != nil {
		return g.q.NumQueued()
	}
	return 0
}
