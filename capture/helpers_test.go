package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The tests build packets with gopacket's serializers, an implementation
// independent of the Writer, and frame them by hand.

// udpPacket returns an IPv4 or IPv6 packet holding one UDP datagram, built
// by gopacket with lengths and checksums computed.
func udpPacket(t testing.TB, src, dst netip.AddrPort, payload []byte) []byte {
	t.Helper()
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	var ip gopacket.SerializableLayer
	if src.Addr().Is4() {
		v4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 33, TOS: 0xb8, Id: 7, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
		if err := udp.SetNetworkLayerForChecksum(v4); err != nil {
			t.Fatal(err)
		}
		ip = v4
	} else {
		v6 := &layers.IPv6{Version: 6, HopLimit: 33, TrafficClass: 0xb8, NextHeader: layers.IPProtocolUDP,
			SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
		if err := udp.SetNetworkLayerForChecksum(v6); err != nil {
			t.Fatal(err)
		}
		ip = v6
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ipv4Header returns a 20-byte IPv4 header for a packet of total bytes
// with the given protocol and fragment fields (checksum left zero: the
// reader does not check it).
func ipv4Header(src, dst netip.Addr, proto byte, total int, id uint16, more bool, offset int) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(total))
	binary.BigEndian.PutUint16(h[4:], id)
	fo := uint16(offset / 8)
	if more {
		fo |= 0x2000
	}
	binary.BigEndian.PutUint16(h[6:], fo)
	h[8] = 64
	h[9] = proto
	copy(h[12:], src.AsSlice())
	copy(h[16:], dst.AsSlice())
	return h
}

// udpHeaderBytes returns a UDP header with the given length field.
func udpHeaderBytes(sport, dport uint16, length int) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(length))
	return h
}

// ether wraps an IP packet (or anything) in Ethernet with optional VLAN
// tags: tags holds (TPID) values, outermost first.
func ether(etherType uint16, payload []byte, tpids ...uint16) []byte {
	b := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1}
	for i, tpid := range tpids {
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, uint16(100+i)) // TCI: VLAN 100+i
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

// sll wraps payload in a Linux cooked v1 header.
func sll(proto uint16, arphrd uint16, payload []byte) []byte {
	b := []byte{0, 4} // packet type: outgoing
	b = binary.BigEndian.AppendUint16(b, arphrd)
	b = append(b, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0) // address length 6, address padded to 8
	b = binary.BigEndian.AppendUint16(b, proto)
	return append(b, payload...)
}

// sll2 wraps payload in a Linux cooked v2 header.
func sll2(proto uint16, arphrd uint16, payload []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, proto)
	b = append(b, 0, 0)       // reserved
	b = append(b, 0, 0, 0, 3) // interface index
	b = binary.BigEndian.AppendUint16(b, arphrd)
	b = append(b, 0, 6) // packet type host, address length 6
	b = append(b, 2, 0, 0, 0, 0, 1, 0, 0)
	return append(b, payload...)
}

// nullHdr wraps payload in a BSD loopback header with the family in the
// given byte order.
func nullHdr(order binary.AppendByteOrder, family uint32, payload []byte) []byte {
	b := order.AppendUint32(nil, family)
	return append(b, payload...)
}

// rec is one record of a hand-written classic pcap file.
type rec struct {
	ts      time.Time
	data    []byte
	origLen int // 0: len(data)
}

// pcapFile writes a classic pcap file by hand (not with pcapgo), in the
// given byte order and timestamp resolution.
func pcapFile(order orderBoth, nano bool, linkType uint32, recs ...rec) []byte {
	magic := uint32(magicPcapMicro)
	if nano {
		magic = magicPcapNano
	}
	b := order.AppendUint32(nil, magic)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint16(b, 4)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, 65535)
	b = order.AppendUint32(b, linkType)
	for _, r := range recs {
		frac := r.ts.Nanosecond()
		if !nano {
			frac /= 1000
		}
		orig := r.origLen
		if orig == 0 {
			orig = len(r.data)
		}
		b = order.AppendUint32(b, uint32(r.ts.Unix()))
		b = order.AppendUint32(b, uint32(frac))
		b = order.AppendUint32(b, uint32(len(r.data)))
		b = order.AppendUint32(b, uint32(orig))
		b = append(b, r.data...)
	}
	return b
}

// result is what one call to Next produced.
type result struct {
	d   Datagram
	err error
}

// readAll calls Next until io.EOF or a final error (at most limit times),
// collecting every result, the final error included.
func readAll(t testing.TB, r *Reader) []result {
	t.Helper()
	var out []result
	for i := 0; i < 10000; i++ {
		d, err := r.Next()
		if err == io.EOF {
			return out
		}
		out = append(out, result{d, err})
		var fe *FrameError
		if err != nil && !errors.As(err, &fe) {
			return out
		}
	}
	t.Fatal("reader never reached the end")
	return nil
}

// mustReader opens an in-memory capture.
func mustReader(t testing.TB, file []byte, opts ...Option) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(file), opts...)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	return r
}

var (
	addr4a = netip.MustParseAddrPort("192.0.2.1:4342")
	addr4b = netip.MustParseAddrPort("198.51.100.7:4342")
	addr6a = netip.MustParseAddrPort("[2001:db8::1]:61000")
	addr6b = netip.MustParseAddrPort("[2001:db8:ffff::2]:4341")
	t0     = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
)

// orderBoth is a byte order that can also append.
type orderBoth interface {
	binary.ByteOrder
	binary.AppendByteOrder
}
