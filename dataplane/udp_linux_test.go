//go:build linux

package dataplane

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func listenUDP(t *testing.T, addr string, cfg UDPConfig) *UDPConn {
	t.Helper()
	cfg.Addr = netip.MustParseAddrPort(addr)
	c, err := ListenUDP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readN reads until n datagrams arrived (or the deadline), returning
// copies and metadata.
func readN(t *testing.T, c Conn, n int, bufSize int) ([][]byte, []Meta) {
	t.Helper()
	type res struct {
		pkts [][]byte
		meta []Meta
		err  error
	}
	ch := make(chan res, 1)
	stop := make(chan struct{})
	go func() {
		var r res
		bufs := make([][]byte, c.BatchSize())
		for i := range bufs {
			bufs[i] = make([]byte, bufSize)
		}
		sizes, meta := make([]int, len(bufs)), make([]Meta, len(bufs))
		for len(r.pkts) < n {
			k, err := c.Read(bufs, sizes, meta, 8)
			if err != nil {
				r.err = err
				break
			}
			for i := range k {
				if sizes[i] == 0 {
					r.pkts = append(r.pkts, nil)
				} else {
					r.pkts = append(r.pkts, bytes.Clone(bufs[i][8:8+sizes[i]]))
				}
				r.meta = append(r.meta, meta[i])
			}
		}
		select {
		case ch <- r:
		case <-stop:
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read: %v after %d datagrams", r.err, len(r.pkts))
		}
		return r.pkts, r.meta
	case <-time.After(5 * time.Second):
		close(stop)
		c.Close()
		t.Fatalf("fewer than %d datagrams within 5s", n)
		return nil, nil
	}
}

func TestUDPConnBatchMetaGSO(t *testing.T) {
	for _, fam := range []struct{ name, a, b string }{{"ipv4", "127.0.0.1:0", "127.0.0.1:0"}, {"ipv6", "[::1]:0", "[::1]:0"}} {
		t.Run(fam.name, func(t *testing.T) {
			tx := listenUDP(t, fam.a, UDPConfig{})
			rx := listenUDP(t, fam.b, UDPConfig{})
			// 3 runs: 40 equal 1200-byte datagrams (a GSO run ending in a
			// shorter one), 10 with another TOS, then mixed sizes.
			var bufs [][]byte
			var meta []Meta
			add := func(size int, tos, ttl uint8) {
				b := make([]byte, OutOffset+size)
				for j := range size {
					b[OutOffset+j] = byte(len(bufs) + j)
				}
				bufs = append(bufs, b)
				meta = append(meta, Meta{Addr: rx.LocalAddr(), TOS: tos, TTL: ttl})
			}
			for range 40 {
				add(1200, 0xb8, 33)
			}
			add(500, 0xb8, 33)
			for range 10 {
				add(1200, 0x2a, 0)
			}
			for i := range 30 {
				add(100+i*37, 0, 7)
			}
			n, err := tx.Write(bufs, meta, OutOffset)
			if err != nil || n != len(bufs) {
				t.Fatalf("wrote %d of %d: %v", n, len(bufs), err)
			}
			got, gm := readN(t, rx, len(bufs), 2048)
			for i := range bufs {
				if !bytes.Equal(got[i], bufs[i][OutOffset:]) {
					t.Fatalf("datagram %d differs (len %d vs %d)", i, len(got[i]), len(bufs[i])-OutOffset)
				}
				if gm[i].Addr != tx.LocalAddr() || gm[i].TOS != meta[i].TOS {
					t.Fatalf("datagram %d meta %+v, sent %+v from %v", i, gm[i], meta[i], tx.LocalAddr())
				}
				wantTTL := meta[i].TTL
				if wantTTL == 0 {
					wantTTL = 64 // the system default (net.ipv4.ip_default_ttl / hop_limit)
				}
				if gm[i].TTL != wantTTL {
					t.Fatalf("datagram %d TTL %d, want %d", i, gm[i].TTL, wantTTL)
				}
			}
			s := tx.Stats()
			if s.TxPackets != uint64(len(bufs)) {
				t.Fatalf("tx stats %+v", s)
			}
			if tx.GSO() && s.TxGSOBatches < 2 {
				t.Fatalf("GSO available but only %d GSO messages: %+v", s.TxGSOBatches, s)
			}
			t.Logf("GSO %v, stats %+v", tx.GSO(), s)
			if rs := rx.Stats(); rs.RxPackets != uint64(len(bufs)) {
				t.Fatalf("rx stats %+v", rs)
			}
			rcv, snd := rx.SocketBuffers()
			t.Logf("socket buffers rcv %d snd %d", rcv, snd)
			if rcv <= 0 || snd <= 0 {
				t.Fatal("no socket buffer sizes")
			}
		})
	}
}

func TestUDPConnNoGSO(t *testing.T) {
	tx := listenUDP(t, "127.0.0.1:0", UDPConfig{DisableGSO: true, BatchSize: 8})
	rx := listenUDP(t, "127.0.0.1:0", UDPConfig{})
	bufs := make([][]byte, 20)
	meta := make([]Meta, 20)
	for i := range bufs {
		bufs[i] = bytes.Repeat([]byte{byte(i)}, 300)
		meta[i] = Meta{Addr: rx.LocalAddr()}
	}
	if n, err := tx.Write(bufs, meta, 0); err != nil || n != 20 {
		t.Fatalf("wrote %d: %v", n, err)
	}
	got, _ := readN(t, rx, 20, 512)
	for i := range got {
		if !bytes.Equal(got[i], bufs[i]) {
			t.Fatalf("datagram %d differs", i)
		}
	}
	if s := tx.Stats(); s.TxGSOBatches != 0 || tx.GSO() {
		t.Fatalf("GSO used although disabled: %+v", s)
	}
}

func TestUDPConnTruncateAndErrors(t *testing.T) {
	tx := listenUDP(t, "127.0.0.1:0", UDPConfig{})
	rx := listenUDP(t, "127.0.0.1:0", UDPConfig{})
	big := make([]byte, 3000)
	small := []byte{1, 2, 3}
	meta := []Meta{
		{Addr: rx.LocalAddr()},
		{Addr: netip.MustParseAddrPort("[2001:db8::1]:4341")}, // wrong family: skipped
		{Addr: rx.LocalAddr()},
	}
	n, err := tx.Write([][]byte{big, small, small}, meta, 0)
	if n != 2 || !errors.Is(err, ErrAddressFamily) || tx.Stats().TxDropped != 1 {
		t.Fatalf("wrote %d, err %v, stats %+v", n, err, tx.Stats())
	}
	got, _ := readN(t, rx, 2, 1024)
	if got[0] != nil || !bytes.Equal(got[1], small) {
		t.Fatalf("want a skipped (truncated) slot then the small datagram, got %d and %x bytes", len(got[0]), got[1])
	}
	if s := rx.Stats(); s.RxDropped != 1 || s.RxPackets != 1 {
		t.Fatalf("rx stats %+v", s)
	}
}

func TestUDPConnCloseUnblocks(t *testing.T) {
	c, err := ListenUDP(UDPConfig{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Read([][]byte{make([]byte, 100)}, []int{0}, []Meta{{}}, 0)
		done <- err
	}()
	// Whether Close comes before or after the reader parks in the poller,
	// the read must end with ErrClosed.
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if _, err := c.Write([][]byte{{1}}, []Meta{{Addr: netip.MustParseAddrPort("127.0.0.1:9")}}, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestListenUDPConfigErrors(t *testing.T) {
	for _, cfg := range []UDPConfig{
		{},
		{Addr: netip.MustParseAddrPort("[::ffff:127.0.0.1]:0")},
		{Addr: netip.MustParseAddrPort("127.0.0.1:0"), BatchSize: -1},
		{Addr: netip.MustParseAddrPort("127.0.0.1:0"), SocketBuffer: -5},
	} {
		if c, err := ListenUDP(cfg); !errors.Is(err, ErrInvalidConfig) {
			if c != nil {
				c.Close()
			}
			t.Errorf("ListenUDP(%+v): %v", cfg, err)
		}
	}
}

func TestAllocsUDPConn(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful under -cover or -race")
	}
	tx := listenUDP(t, "127.0.0.1:0", UDPConfig{})
	rx := listenUDP(t, "127.0.0.1:0", UDPConfig{})
	const n = 32
	bufs, rbufs := make([][]byte, n), make([][]byte, n)
	meta, rmeta := make([]Meta, n), make([]Meta, n)
	sizes := make([]int, n)
	for i := range bufs {
		bufs[i] = make([]byte, 1000)
		rbufs[i] = make([]byte, 2048)
		meta[i] = Meta{Addr: rx.LocalAddr(), TOS: 0x10, TTL: 9}
	}
	f := func() {
		if k, err := tx.Write(bufs, meta, 0); err != nil || k != n {
			t.Fatalf("write %d %v", k, err)
		}
		for got := 0; got < n; {
			k, err := rx.Read(rbufs, sizes, rmeta, 0)
			if err != nil {
				t.Fatal(err)
			}
			got += k
		}
	}
	f()
	if a := testing.AllocsPerRun(100, f); a != 0 {
		t.Errorf("UDPConn write+read of %d datagrams: %v allocations, want 0", n, a)
	}
}
