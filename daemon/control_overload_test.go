//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/lispd/lispd/api"
	"github.com/lispd/lispd/wire"
)

// TestOverloadKeepsRegistrations floods the daemon with Encapsulated
// Map-Requests well above what it can answer (from several goroutines
// sending batches, into a request socket made small so that it overflows
// at once) while an ETR refreshes its registration every 200 ms against a
// 1 s registration timeout. The registration must never lapse, the daemon
// must keep answering, count what it drops, start no goroutine and hold
// its memory, and answer its API afterwards. Nothing here is timed: the
// flood lasts until the daemon has dropped requests for two seconds.
func TestOverloadKeepsRegistrations(t *testing.T) {
	td := startTunedDaemon(t, fmt.Sprintf(msConfig, "1s", ""), func(c *controlTuning) {
		c.requestBuffer = 128 << 10
	})
	prefix := netip.MustParsePrefix("10.1.0.0/16")
	registered := func() bool {
		for _, r := range td.d.MapServer().Registrations() {
			if r.Prefix == prefix {
				return true
			}
		}
		return false
	}

	// The ETR: a Map-Register every 200 ms.
	etr := newPeer(t)
	var etrSent atomic.Uint64
	stopETR := make(chan struct{})
	var etrWG sync.WaitGroup
	etrWG.Add(1)
	go func() {
		defer etrWG.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for nonce := uint64(1); ; nonce++ {
			if _, err := etr.conn.WriteToUDPAddrPort(register(t, wire.AlgHMACSHA196, "key-a", nonce, 0, "10.1.0.0/16", "192.0.2.1"), td.addr); err != nil {
				t.Errorf("ETR send: %v", err)
				return
			}
			etrSent.Add(1)
			select {
			case <-stopETR:
				return
			case <-tick.C:
			}
		}
	}()
	etrStopped := false
	stopTheETR := func() {
		if !etrStopped {
			etrStopped = true
			close(stopETR)
			etrWG.Wait()
		}
	}
	defer stopTheETR()
	waitFor(t, "first registration", registered)

	runtime.GC()
	var memBefore runtime.MemStats
	runtime.ReadMemStats(&memBefore)
	goroutinesBefore := runtime.NumGoroutine()
	before := td.d.counters()

	// The flood: each flooder sends batches of ECM Map-Requests (half for
	// the registered prefix) whose replies go to a socket nobody reads.
	sink := newPeer(t)
	const flooders = 3
	var (
		stop     atomic.Bool
		sent     atomic.Uint64
		floodWG  sync.WaitGroup
		floodErr = make(chan error, flooders)
	)
	for f := range flooders {
		floodWG.Add(1)
		go func() {
			defer floodWG.Done()
			if err := flood(td.addr, sink.addr(), f, &stop, &sent); err != nil {
				floodErr <- err
			}
		}()
	}

	// Watch: the registration stays, the drops grow, goroutines do not.
	maxGoroutines := 0
	lapses := 0
	floodStart := time.Now()
	var dropping time.Time
	deadline := time.Now().Add(15 * time.Second)
	for {
		if !registered() {
			lapses++
		}
		maxGoroutines = max(maxGoroutines, runtime.NumGoroutine())
		c := td.d.counters()
		if dropping.IsZero() && c["control_drops_requests"] > before["control_drops_requests"] {
			dropping = time.Now()
		}
		if !dropping.IsZero() && time.Since(dropping) > 2*time.Second {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case err := <-floodErr:
			t.Fatalf("flooder: %v", err)
		default:
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop.Store(true)
	floodWG.Wait()
	floodTime := time.Since(floodStart)
	after := td.d.counters()

	delta := func(name string) uint64 { return after[name] - before[name] }
	t.Logf("flood of %v: %d requests sent, %d received, %d answered, %d dropped by the kernel; %d registers accepted",
		floodTime.Round(time.Millisecond), sent.Load(), delta("control_received")-delta("control_received_priority"),
		delta("mapserver_requests_proxy_replied")+delta("mapserver_negative_replies"), delta("control_drops_requests"),
		delta("mapserver_register_ok"))
	if dropping.IsZero() {
		t.Fatalf("the flood (%d requests) never overflowed the request socket: not an overload", sent.Load())
	}
	if lapses > 0 || after["mapserver_expired"] != 0 {
		t.Fatalf("the registration lapsed: absent at %d polls, %d expirations", lapses, after["mapserver_expired"])
	}
	// Not one Map-Register was lost to the flood.
	stopTheETR()
	waitFor(t, "every Map-Register accepted", func() bool {
		return td.d.counters()["mapserver_register_ok"] >= etrSent.Load()
	})
	if got, want := td.d.counters()["mapserver_register_ok"], etrSent.Load(); got != want {
		t.Errorf("%d Map-Registers accepted of %d sent", got, want)
	}
	if after["control_drops_priority"] != 0 {
		t.Errorf("%d datagrams dropped on the priority socket", after["control_drops_priority"])
	}
	if delta("mapserver_requests_proxy_replied") == 0 || delta("mapserver_negative_replies") == 0 {
		t.Errorf("requests were not answered during the flood")
	}
	if maxGoroutines > goroutinesBefore+flooders+2 {
		t.Errorf("goroutines grew from %d to %d under the flood", goroutinesBefore, maxGoroutines)
	}
	runtime.GC()
	var memAfter runtime.MemStats
	runtime.ReadMemStats(&memAfter)
	if grown := int64(memAfter.HeapInuse) - int64(memBefore.HeapInuse); grown > 32<<20 {
		t.Errorf("heap in use grew by %d MiB under the flood", grown>>20)
	}

	// The daemon still answers its API and the registration still holds.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := api.NewClient(td.socket).Status(ctx)
	if err != nil {
		t.Fatalf("status after the flood: %v", err)
	}
	if st.Counters["control_drops_requests"] == 0 {
		t.Errorf("status does not show the drops")
	}
	if !registered() {
		t.Fatal("the registration is gone after the flood")
	}
}

// flood sends batches of ECM Map-Requests to dst until stop is set; the
// replies go to replyTo.
func flood(dst, replyTo netip.AddrPort, id int, stop *atomic.Bool, sent *atomic.Uint64) error {
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return err
	}
	defer c.Close()
	pc := ipv4.NewPacketConn(c)
	const batch = 64
	msgs := make([]ipv4.Message, batch)
	for i := range msgs {
		eid := netip.AddrFrom4([4]byte{10, 1, byte(id), byte(i)})
		if i%2 == 1 {
			eid = netip.AddrFrom4([4]byte{10, 3, byte(id), byte(i)}) // in no site
		}
		req := &wire.MapRequest{
			Nonce:    uint64(id)<<32 | uint64(i),
			ITRRLOCs: []wire.Address{wire.AddrFrom(replyTo.Addr())},
			Records:  []wire.RequestRecord{wire.NewRequestRecord(0, netip.PrefixFrom(eid, 32))},
		}
		b, err := wire.NewECM(replyTo, netip.AddrPortFrom(eid, 4342), req).AppendBinary(nil)
		if err != nil {
			return err
		}
		msgs[i].Buffers = [][]byte{b}
	}
	for !stop.Load() {
		n, err := pc.WriteBatch(msgs, 0)
		if err != nil {
			// ECONNREFUSED reports an ICMP error of an earlier datagram
			// (the daemon's port is always open here): go on.
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			return err
		}
		sent.Add(uint64(n))
	}
	return nil
}
