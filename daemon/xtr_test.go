package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/config"
	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/mapcache"
)

// The xTR integration test runs a Map-Server/Map-Resolver and two xTR sites
// in one process: control messages over UDP on 127.77.88.x (the Map-Server
// forwards requests to ETRs on port 4342, so every daemon binds its own
// loopback address at 4342), packets over an in-memory data plane.
const (
	msAddr = "127.77.88.100"
	xtrA   = "127.77.88.1"
	xtrB   = "127.77.88.2"
)

const msmrConfig = `
[daemon]
roles = ["ms", "mr"]
log-level = "debug"
[control]
listen = ["` + msAddr + `:4342"]
[map-server]
[[map-server.site]]
name = "site-a"
authentication-key = "key-a"
eid-prefixes = ["10.1.0.0/24"]
proxy-reply = false
[[map-server.site]]
name = "site-b"
authentication-key = "key-b"
algorithm = "hmac-sha-1"
eid-prefixes = ["10.2.0.0/24"]
proxy-reply = false
[map-resolver]
map-servers = ["local"]
`

// siteConfig is an xTR of one site; %s are the RLOC, miss policy, key,
// algorithm, EID prefix and the locators' weight.
const siteConfig = `
[daemon]
roles = ["itr", "etr"]
log-level = "debug"
[control]
listen = ["%[1]s:4342"]
[dataplane]
rlocs = ["%[1]s"]
[itr]
map-resolvers = ["` + msAddr + `"]
miss-policy = "%[2]s"
map-request-timeout = "300ms"
[etr]
[[etr.map-server]]
address = "` + msAddr + `"
authentication-key = "%[3]s"
algorithm = "%[4]s"
[[etr.eid]]
prefix = "%[5]s"
rlocs = [{address = "%[1]s", weight = %[6]d}]
`

// xtrDaemon is a running daemon with its host-side device.
type xtrDaemon struct {
	d      *Daemon
	path   string
	socket string
	host   *dataplane.MemDevice
	logs   *syncBuffer
}

// startXTRDaemon starts a daemon from cfgText with the given data plane.
func startXTRDaemon(t *testing.T, cfgText string, dev dataplane.Device, conn dataplane.Conn) *xtrDaemon {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "lispd.toml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	x := &xtrDaemon{path: path, socket: filepath.Join(dir, "run", "lispd.sock"), logs: &syncBuffer{}}
	x.d, err = New(cfg, Options{Stderr: x.logs, APISocket: x.socket, DataDevice: dev, DataConn: conn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.d.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(x.socket); err == nil && len(x.d.ControlAddrs()) > 0 {
			break
		}
		select {
		case err := <-done:
			cancel()
			if errors.Is(err, ErrNoDispatch) {
				t.Skip("the control plane has no setHandler hook yet (see handlerSetter in xtr.go)")
			}
			if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(fmt.Sprint(err), "in use") {
				t.Skipf("loopback control address taken by another process: %v", err)
			}
			t.Fatalf("Run: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("daemon did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("daemon did not stop within 5 s")
		}
		if t.Failed() {
			t.Logf("logs of %s:\n%s", path, x.logs.String())
		}
	})
	return x
}

// site starts one xTR site on net.
func startSite(t *testing.T, mn *dataplane.MemNetwork, rloc, policy, key, alg, prefix string, weight int) *xtrDaemon {
	t.Helper()
	host, xdev := dataplane.NewMemDevicePair("host-"+rloc, "lisp0", 1500, 64)
	t.Cleanup(func() { host.Close() })
	conn, err := mn.Listen(netip.AddrPortFrom(netip.MustParseAddr(rloc), 4341))
	if err != nil {
		t.Fatal(err)
	}
	x := startXTRDaemon(t, fmt.Sprintf(siteConfig, rloc, policy, key, alg, prefix, weight), xdev, conn)
	x.host = host
	return x
}

// hostSend writes an inner packet into a site from its host.
func (x *xtrDaemon) hostSend(t *testing.T, pkt []byte) {
	t.Helper()
	buf := make([]byte, dataplane.OutOffset+len(pkt))
	copy(buf[dataplane.OutOffset:], pkt)
	if n, err := x.host.Write([][]byte{buf}, dataplane.OutOffset); n != 1 || err != nil {
		t.Fatalf("host write: %d %v", n, err)
	}
}

// hostRecv waits up to d for a packet delivered to the site's host; nil if
// none came. On a timeout it closes the host's device (to end the blocked
// read), so only a test's last read may time out.
func (x *xtrDaemon) hostRecv(t *testing.T, d time.Duration) []byte {
	t.Helper()
	ch := make(chan []byte, 1)
	go func() {
		bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
		n, err := x.host.Read(bufs, sizes, 0)
		if err != nil || n != 1 {
			ch <- nil
			return
		}
		ch <- bufs[0][:sizes[0]]
	}()
	select {
	case b := <-ch:
		return b
	case <-time.After(d):
		x.host.Close()
		<-ch
		return nil
	}
}

func (x *xtrDaemon) counter(name string) uint64 { return x.d.counters()[name] }

// waitRegistered waits until the ETR's registration is up.
func (x *xtrDaemon) waitRegistered(t *testing.T) {
	t.Helper()
	c := api.NewClient(x.socket)
	defer c.Close()
	waitFor(t, "ETR registration up", func() bool {
		st, err := c.ETR(context.Background())
		return err == nil && len(st.MapServers) == 1 && st.MapServers[0].State == api.ETRStateUp
	})
}

// echo builds an IPv4 ICMP echo request or reply.
func echo(src, dst string, reply bool, seq uint16) []byte {
	p := make([]byte, 20+8+16)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	p[8] = 64
	p[9] = 1
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[10:12], inetChecksum(p[:20]))
	icmp := p[20:]
	if !reply {
		icmp[0] = 8
	}
	binary.BigEndian.PutUint16(icmp[4:6], 0x4c49)
	binary.BigEndian.PutUint16(icmp[6:8], seq)
	copy(icmp[8:], "lispd echo test.")
	binary.BigEndian.PutUint16(icmp[2:4], inetChecksum(icmp))
	return p
}

func inetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// sameInner compares a delivered packet with the one sent, ignoring the TTL
// and header checksum (decapsulation may copy the outer TTL in).
func sameInner(got, want []byte) bool {
	if len(got) != len(want) {
		return false
	}
	g, w := bytes.Clone(got), bytes.Clone(want)
	g[8], w[8], g[10], g[11], w[10], w[11] = 0, 0, 0, 0, 0, 0
	return bytes.Equal(g, w)
}

// twoSites starts the Map-Server/Map-Resolver and two xTR sites and waits
// for both ETRs to be registered.
func twoSites(t *testing.T, policy string) (ms, a, b *xtrDaemon) {
	t.Helper()
	ms = startXTRDaemon(t, msmrConfig, nil, nil)
	mn := dataplane.NewMemNetwork(256)
	a = startSite(t, mn, xtrA, policy, "key-a", "hmac-sha-256", "10.1.0.0/24", 100)
	b = startSite(t, mn, xtrB, policy, "key-b", "hmac-sha-1", "10.2.0.0/24", 100)
	a.waitRegistered(t)
	b.waitRegistered(t)
	return ms, a, b
}

func TestXTRSitesDropPolicy(t *testing.T) {
	_, a, b := twoSites(t, "drop")
	req := echo("10.1.0.5", "10.2.0.7", false, 1)
	// The first packet misses site A's map-cache and is dropped.
	a.hostSend(t, req)
	waitFor(t, "site A's miss", func() bool { return a.counter("itr_miss_packets_dropped") == 1 })
	waitFor(t, "site A's mapping", func() bool {
		e, ok := a.d.ITRRole().Cache().Lookup(0, netip.MustParseAddr("10.2.0.7"))
		return ok && !e.Negative()
	})
	if a.counter("itr_misses") != 1 || a.counter("itr_map_replies_accepted") != 1 {
		t.Errorf("site A: misses %d accepted %d", a.counter("itr_misses"), a.counter("itr_map_replies_accepted"))
	}
	// The next one is delivered to site B's host.
	a.hostSend(t, echo("10.1.0.5", "10.2.0.7", false, 2))
	got := b.hostRecv(t, 5*time.Second)
	if got == nil || !sameInner(got, echo("10.1.0.5", "10.2.0.7", false, 2)) {
		t.Fatalf("site B's host got %x", got)
	}
	// The reply misses at site B first, then goes through.
	b.hostSend(t, echo("10.2.0.7", "10.1.0.5", true, 2))
	waitFor(t, "site B's mapping", func() bool {
		e, ok := b.d.ITRRole().Cache().Lookup(0, netip.MustParseAddr("10.1.0.5"))
		return ok && !e.Negative()
	})
	b.hostSend(t, echo("10.2.0.7", "10.1.0.5", true, 3))
	if got := a.hostRecv(t, 5*time.Second); got == nil || !sameInner(got, echo("10.2.0.7", "10.1.0.5", true, 3)) {
		t.Fatalf("site A's host got %x", got)
	}
	if b.counter("itr_miss_packets_dropped") != 1 || b.counter("etr_map_replies_sent") < 1 || a.counter("etr_map_replies_sent") < 1 {
		t.Errorf("site B dropped %d; ETR replies A %d B %d", b.counter("itr_miss_packets_dropped"),
			a.counter("etr_map_replies_sent"), b.counter("etr_map_replies_sent"))
	}

	// The API shows the map-cache and the registration state.
	c := api.NewClient(a.socket)
	defer c.Close()
	mc, err := c.MapCache(context.Background())
	if err != nil || len(mc) != 1 || mc[0].Prefix != netip.MustParsePrefix("10.2.0.0/24") || mc[0].Source != api.SourceMapReply ||
		len(mc[0].RLOCs) != 1 || mc[0].RLOCs[0].Address != netip.MustParseAddr(xtrB) || !mc[0].RLOCs[0].Reachable || mc[0].LastUsed.IsZero() {
		t.Errorf("map-cache over the API: %+v %v", mc, err)
	}
	st, err := c.Status(context.Background())
	if err != nil || st.Counters["itr_misses"] != 1 || st.Counters["dataplane_encap_packets"] < 1 || st.Counters["etr_map_registers_sent"] < 1 {
		t.Errorf("status counters: %v %v", st.Counters, err)
	}

	// A reload that changes site A's mapping makes site B refresh it
	// (SMR, then an SMR-invoked Map-Request through the Map-Resolver).
	before, _ := b.d.ITRRole().Cache().Lookup(0, netip.MustParseAddr("10.1.0.5"))
	next := fmt.Sprintf(siteConfig, xtrA, "drop", "key-a", "hmac-sha-256", "10.1.0.0/24", 40)
	if err := os.WriteFile(a.path, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "site B's refreshed mapping", func() bool {
		e, ok := b.d.ITRRole().Cache().Lookup(0, netip.MustParseAddr("10.1.0.5"))
		return ok && e != before && len(e.RLOCs) == 1 && e.RLOCs[0].Weight == 40
	})
	if a.counter("etr_smrs_sent") != 1 || b.counter("itr_smr_received") != 1 || b.counter("itr_smr_invoked_requests") != 1 {
		t.Errorf("SMR counters: sent %d received %d invoked %d", a.counter("etr_smrs_sent"), b.counter("itr_smr_received"), b.counter("itr_smr_invoked_requests"))
	}
}

func TestXTRSitesQueuePolicy(t *testing.T) {
	_, a, b := twoSites(t, "queue")
	req := echo("10.1.0.5", "10.2.0.7", false, 1)
	a.hostSend(t, req)
	got := b.hostRecv(t, 5*time.Second)
	if got == nil || !sameInner(got, req) {
		t.Fatalf("the first packet was not delivered after the Map-Reply: %x", got)
	}
	rep := echo("10.2.0.7", "10.1.0.5", true, 1)
	b.hostSend(t, rep)
	if got := a.hostRecv(t, 5*time.Second); got == nil || !sameInner(got, rep) {
		t.Fatalf("the reply was not delivered: %x", got)
	}
	for _, x := range []*xtrDaemon{a, b} {
		if x.counter("itr_miss_packets_queued") != 1 || x.counter("itr_miss_packets_released") != 1 || x.counter("itr_miss_packets_dropped") != 0 {
			t.Errorf("queued %d released %d dropped %d", x.counter("itr_miss_packets_queued"),
				x.counter("itr_miss_packets_released"), x.counter("itr_miss_packets_dropped"))
		}
	}
	// A destination nobody registered gets a negative mapping.
	a.hostSend(t, echo("10.1.0.5", "10.2.1.9", false, 9))
	waitFor(t, "negative mapping", func() bool {
		e, ok := a.d.ITRRole().Cache().Lookup(0, netip.MustParseAddr("10.2.1.9"))
		return ok && e.Negative() && e.Action == mapcache.NativelyForward
	})
}

func TestXTRConfigRefusedByNew(t *testing.T) {
	// The sections are checked by config; New checks what only the xtr
	// package knows, and refuses unknown roles.
	cfg, err := config.Parse([]byte(fmt.Sprintf(siteConfig, xtrA, "drop", "k", "hmac-sha-256", "10.1.0.0/24", 1)), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Daemon.Roles = append(cfg.Daemon.Roles, "pxtr")
	if _, err := New(cfg, Options{}); !errors.Is(err, ErrRoleNotAvailable) {
		t.Errorf("unknown role: %v", err)
	}
}
