package dataplane

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// refChecksum is an independent, deliberately naive RFC 1071 checksum used
// to verify the package's checksums.
func refChecksum(chunks ...[]byte) uint16 {
	var all []byte
	for _, c := range chunks {
		all = append(all, c...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var sum uint32
	for i := 0; i < len(all); i += 2 {
		sum += uint32(all[i])<<8 | uint32(all[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// refPseudo builds an IPv4 or IPv6 pseudo-header by hand.
func refPseudo(src, dst netip.Addr, proto uint8, length int) []byte {
	var b []byte
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	if src.Is4() {
		return append(b, 0, proto, byte(length>>8), byte(length))
	}
	return append(b, byte(length>>24), byte(length>>16), byte(length>>8), byte(length), 0, 0, 0, proto)
}

// unhex decodes hex with spaces, newlines and "|" separators.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	r := strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "")
	b, err := hex.DecodeString(r.Replace(s))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// fixedNonces returns the same nonce every time.
type fixedNonces uint32

func (f fixedNonces) Nonce() uint32 { return uint32(f) }

// udp4Packet builds an IPv4/UDP packet by hand.
func udp4Packet(src, dst string, sport, dport uint16, tos, ttl uint8, df bool, payload []byte) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	tl := 20 + 8 + len(payload)
	p := make([]byte, tl)
	p[0] = 0x45
	p[1] = tos
	binary.BigEndian.PutUint16(p[2:], uint16(tl))
	binary.BigEndian.PutUint16(p[4:], 0x1234)
	if df {
		p[6] = 0x40
	}
	p[8] = ttl
	p[9] = 17
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], refChecksum(p[:20]))
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], uint16(8+len(payload)))
	copy(p[28:], payload)
	return p
}

// udp6Packet builds an IPv6/UDP packet by hand.
func udp6Packet(src, dst string, sport, dport uint16, tclass, hops uint8, payload []byte) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	p := make([]byte, 40+8+len(payload))
	binary.BigEndian.PutUint32(p[0:], 6<<28|uint32(tclass)<<20|0x12345)
	binary.BigEndian.PutUint16(p[4:], uint16(8+len(payload)))
	p[6] = 17
	p[7] = hops
	copy(p[8:], s.AsSlice())
	copy(p[24:], d.AsSlice())
	binary.BigEndian.PutUint16(p[40:], sport)
	binary.BigEndian.PutUint16(p[42:], dport)
	binary.BigEndian.PutUint16(p[44:], uint16(8+len(payload)))
	copy(p[48:], payload)
	c := refChecksum(refPseudo(s, d, 17, 8+len(payload)), p[40:])
	binary.BigEndian.PutUint16(p[46:], c)
	return p
}

// inBuf places pkt at Headroom in a fresh buffer of size Headroom+len+extra.
func inBuf(pkt []byte, extra int) []byte {
	b := make([]byte, Headroom+len(pkt)+extra)
	copy(b[Headroom:], pkt)
	return b
}

// xtr runs a minimal ITR loop (device to conn) and ETR loop (conn to device)
// for tests, the way the xtr package will.
type xtr struct {
	dev  Device
	conn Conn
	wg   sync.WaitGroup
}

func startXTR(t testing.TB, dev Device, conn Conn, enc *Encapsulator, dec *Decapsulator, lookup LookupFunc) *xtr {
	t.Helper()
	x := &xtr{dev: dev, conn: conn}
	itr, err := NewBatch(dev.BatchSize(), DefaultBufferSize)
	if err != nil {
		t.Fatal(err)
	}
	etr, err := NewBatch(conn.BatchSize(), DefaultBufferSize)
	if err != nil {
		t.Fatal(err)
	}
	x.wg.Add(2)
	go func() {
		defer x.wg.Done()
		for {
			n, err := itr.ReadDevice(dev)
			if errors.Is(err, ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			enc.EncapBatch(itr, n, lookup)
			if len(itr.Out) > 0 {
				_, _ = conn.Write(itr.Out, itr.OutMeta, OutOffset)
			}
			if len(itr.Reply) > 0 {
				_, _ = dev.Write(itr.Reply, OutOffset)
			}
		}
	}()
	go func() {
		defer x.wg.Done()
		for {
			n, err := etr.ReadConn(conn)
			if errors.Is(err, ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			dec.DecapBatch(etr, n)
			if len(etr.Out) > 0 {
				_, _ = dev.Write(etr.Out, OutOffset)
			}
		}
	}()
	t.Cleanup(x.stop)
	return x
}

func (x *xtr) stop() {
	_ = x.dev.Close()
	_ = x.conn.Close()
	x.wg.Wait()
}

func mustEIDs(t testing.TB, ps ...EIDPrefix) *EIDSet {
	t.Helper()
	s, err := NewEIDSet(ps...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func eid(iid uint32, p string) EIDPrefix {
	return EIDPrefix{InstanceID: iid, Prefix: netip.MustParsePrefix(p)}
}
