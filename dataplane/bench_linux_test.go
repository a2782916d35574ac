//go:build linux

package dataplane

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/ipv4"
)

// benchBatch is the number of datagrams per call in the UDP benchmarks.
const benchBatch = 64

// BenchmarkUDPSend compares ways to send 1400-byte datagrams on loopback:
// one WriteTo per datagram, x/net's WriteBatch (sendmmsg), this package's
// sendmmsg without GSO, and with UDP GSO. The receiver is not read (the
// kernel drops what overflows its buffer), so the figures are the sender's
// cost. ns/datagram is the figure to compare.
func BenchmarkUDPSend(b *testing.B) {
	rx, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	payload := make([][]byte, benchBatch)
	for i := range payload {
		payload[i] = make([]byte, 1400)
	}
	perDatagram := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/datagram")
	}

	b.Run("WriteTo", func(b *testing.B) {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.SetBytes(1400 * benchBatch)
		b.ReportAllocs()
		for b.Loop() {
			for _, p := range payload {
				if _, err := c.WriteToUDPAddrPort(p, dst); err != nil {
					b.Fatal(err)
				}
			}
		}
		perDatagram(b)
	})
	b.Run("xnet-WriteBatch", func(b *testing.B) {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		pc := ipv4.NewPacketConn(c)
		ua := net.UDPAddrFromAddrPort(dst)
		msgs := make([]ipv4.Message, benchBatch)
		for i := range msgs {
			msgs[i] = ipv4.Message{Buffers: [][]byte{payload[i]}, Addr: ua}
		}
		b.SetBytes(1400 * benchBatch)
		b.ReportAllocs()
		for b.Loop() {
			for sent := 0; sent < len(msgs); {
				n, err := pc.WriteBatch(msgs[sent:], 0)
				if err != nil {
					b.Fatal(err)
				}
				sent += n
			}
		}
		perDatagram(b)
	})
	for _, gso := range []bool{false, true} {
		name := "sendmmsg"
		if gso {
			name = "sendmmsg+GSO"
		}
		b.Run(name, func(b *testing.B) {
			c, err := ListenUDP(UDPConfig{Addr: netip.MustParseAddrPort("127.0.0.1:0"), DisableGSO: !gso})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if gso && !c.GSO() {
				b.Skip("kernel without UDP GSO")
			}
			meta := make([]Meta, benchBatch)
			for i := range meta {
				meta[i] = Meta{Addr: dst}
			}
			b.SetBytes(1400 * benchBatch)
			b.ReportAllocs()
			for b.Loop() {
				if n, err := c.Write(payload, meta, 0); err != nil || n != benchBatch {
					b.Fatal(n, err)
				}
			}
			perDatagram(b)
		})
	}
}

// BenchmarkUDPRecv compares receiving with x/net's ReadBatch (which
// allocates a net.UDPAddr per datagram) and this package's recvmmsg (which
// allocates nothing). Each op sends a batch with sendmmsg and reads it back.
func BenchmarkUDPRecv(b *testing.B) {
	tx, err := ListenUDP(UDPConfig{Addr: netip.MustParseAddrPort("127.0.0.1:0"), DisableGSO: true})
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	payload := make([][]byte, benchBatch)
	for i := range payload {
		payload[i] = make([]byte, 1400)
	}
	meta := make([]Meta, benchBatch)
	bufs := make([][]byte, benchBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	b.Run("xnet-ReadBatch", func(b *testing.B) {
		rx, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			b.Fatal(err)
		}
		defer rx.Close()
		rx.SetReadBuffer(DefaultSocketBuffer)
		for i := range meta {
			meta[i] = Meta{Addr: rx.LocalAddr().(*net.UDPAddr).AddrPort()}
		}
		pc := ipv4.NewPacketConn(rx)
		msgs := make([]ipv4.Message, benchBatch)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{bufs[i]}
		}
		b.ReportAllocs()
		for b.Loop() {
			tx.Write(payload, meta, 0)
			for got := 0; got < benchBatch; {
				n, err := pc.ReadBatch(msgs, 0)
				if err != nil {
					b.Fatal(err)
				}
				got += n
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/datagram")
	})
	b.Run("recvmmsg", func(b *testing.B) {
		rx, err := ListenUDP(UDPConfig{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
		if err != nil {
			b.Fatal(err)
		}
		defer rx.Close()
		for i := range meta {
			meta[i] = Meta{Addr: rx.LocalAddr()}
		}
		sizes, rmeta := make([]int, benchBatch), make([]Meta, benchBatch)
		b.ReportAllocs()
		for b.Loop() {
			tx.Write(payload, meta, 0)
			for got := 0; got < benchBatch; {
				n, err := rx.Read(bufs, sizes, rmeta, 0)
				if err != nil {
					b.Fatal(err)
				}
				got += n
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/datagram")
	})
}
