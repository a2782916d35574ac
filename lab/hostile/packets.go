//go:build linux

package hostile

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/lispd/lispd/internal/inet"
	"github.com/lispd/lispd/wire"
)

// The messages the suite sends are built with package wire, as lispd's own
// ITRs and ETRs build them; the hostile ones are mutations of those.

// Ports of the LISP control and data planes.
const (
	ControlPort = 4342
	DataPort    = 4341
)

// Record returns a registrable EID record for prefix mapping to rlocs
// (priority 1, weight 100, reachable), with a Record TTL of a day.
func Record(prefix netip.Prefix, rlocs ...netip.Addr) wire.EIDRecord {
	r := wire.NewEIDRecord(0, prefix)
	r.RecordTTL = 1440
	r.Authoritative = true
	for _, a := range rlocs {
		r.Locators = append(r.Locators, wire.Locator{Priority: 1, Weight: 100, Reachable: true, Local: true, Address: wire.AddrFrom(a)})
	}
	return r
}

// SignedRegister encodes m and signs it with key (m.AlgorithmID; HMAC-SHA-256
// when it is AlgNone).
func SignedRegister(m wire.MapRegister, key string) ([]byte, error) {
	if m.AlgorithmID == wire.AlgNone {
		m.AlgorithmID = wire.AlgHMACSHA256128
	}
	b, err := m.AppendBinary(nil)
	if err != nil {
		return nil, fmt.Errorf("hostile: encode Map-Register: %w", err)
	}
	if err := wire.Sign(b, []byte(key)); err != nil {
		return nil, fmt.Errorf("hostile: sign Map-Register: %w", err)
	}
	return b, nil
}

// MapRequestECM encodes the Encapsulated Map-Request an ITR at itr sends a
// Map-Resolver for eid: its Map-Reply comes back to itr.
func MapRequestECM(itr netip.AddrPort, eid netip.Addr, nonce uint64) ([]byte, error) {
	req := &wire.MapRequest{
		Nonce:    nonce,
		ITRRLOCs: []wire.Address{wire.AddrFrom(itr.Addr())},
		Records:  []wire.RequestRecord{wire.NewRequestRecord(0, netip.PrefixFrom(eid, eid.BitLen()))},
	}
	b, err := wire.NewECM(itr, netip.AddrPortFrom(eid, ControlPort), req).AppendBinary(nil)
	if err != nil {
		return nil, fmt.Errorf("hostile: encode Map-Request: %w", err)
	}
	return b, nil
}

// MapRequest encodes a Map-Request sent straight to an ETR (as a Map-Server
// forwards one, or an RLOC-probe when probe is set) from an ITR at itr.
func MapRequest(itr netip.Addr, eid netip.Addr, nonce uint64, probe bool) ([]byte, error) {
	req := &wire.MapRequest{
		Nonce:    nonce,
		Probe:    probe,
		ITRRLOCs: []wire.Address{wire.AddrFrom(itr)},
		Records:  []wire.RequestRecord{wire.NewRequestRecord(0, netip.PrefixFrom(eid, eid.BitLen()))},
	}
	b, err := req.AppendBinary(nil)
	if err != nil {
		return nil, fmt.Errorf("hostile: encode Map-Request: %w", err)
	}
	return b, nil
}

// MapReply encodes a Map-Reply with nonce carrying recs.
func MapReply(nonce uint64, recs ...wire.EIDRecord) ([]byte, error) {
	m := &wire.MapReply{Nonce: nonce, Records: recs}
	b, err := m.AppendBinary(nil)
	if err != nil {
		return nil, fmt.Errorf("hostile: encode Map-Reply: %w", err)
	}
	return b, nil
}

// ParseMapReply returns b as a Map-Reply, or nil when it is not one.
func ParseMapReply(b []byte) *wire.MapReply {
	m, err := wire.Parse(b)
	if err != nil {
		return nil
	}
	r, _ := m.(*wire.MapReply)
	return r
}

// ParseMapRequest returns the Map-Request of b, a Map-Request or an ECM
// carrying one, or nil.
func ParseMapRequest(b []byte) *wire.MapRequest {
	m, err := wire.Parse(b)
	if err != nil {
		return nil
	}
	switch m := m.(type) {
	case *wire.MapRequest:
		return m
	case *wire.ECM:
		r, _ := m.Inner.(*wire.MapRequest)
		return r
	}
	return nil
}

// NonceOf returns the nonce of a control message (the 64 bits after its
// first word), or false when b is too short.
func NonceOf(b []byte) (uint64, bool) {
	if len(b) < 12 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[4:12]), true
}

// IsType reports whether b is a control message of type t.
func IsType(b []byte, t wire.MessageType) bool {
	return len(b) > 0 && wire.MessageType(b[0]>>4) == t
}

// DataPacket encodes what an ITR sends to an ETR's UDP 4341: the LISP
// header h, then an IPv4 packet from src to dst holding a UDP datagram
// with payload. (The outer IP and UDP headers are the sending socket's.)
func DataPacket(h wire.DataHeader, src, dst netip.AddrPort, payload []byte) ([]byte, error) {
	b, err := h.AppendBinary(nil)
	if err != nil {
		return nil, fmt.Errorf("hostile: encode LISP header: %w", err)
	}
	return append(b, IPv4UDP(src, dst, payload)...), nil
}

// IPv4UDP encodes an IPv4 packet (TTL 64, DF) holding a UDP datagram from
// src to dst with payload, checksums included.
func IPv4UDP(src, dst netip.AddrPort, payload []byte) []byte {
	const ipLen, udpLen = 20, 8
	total := ipLen + udpLen + len(payload)
	b := make([]byte, total)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	binary.BigEndian.PutUint16(b[6:], 0x4000) // DF
	b[8] = 64
	b[9] = 17
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:], inet.Checksum(b[:ipLen]))
	u := b[ipLen:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(udpLen+len(payload)))
	copy(u[udpLen:], payload)
	c := inet.TransportChecksum(src.Addr(), dst.Addr(), 17, u)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], c)
	return b
}

// Mutations returns hostile variants of the valid messages: every
// truncation of each (all its proper prefixes, the empty datagram
// included), flips copies with one to three random bits flipped, and
// random datagrams of random bytes (up to 1500) whose first byte is a
// random LISP control type half the time, so that they reach the parsers
// behind the dispatch on the type. The same seed gives the same variants.
func Mutations(valid [][]byte, flips, random int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var out [][]byte
	for _, v := range valid {
		for n := range len(v) {
			out = append(out, append([]byte(nil), v[:n]...))
		}
	}
	for range flips {
		v := valid[rng.IntN(len(valid))]
		b := append([]byte(nil), v...)
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(b) * 8)
			b[i/8] ^= 1 << (i % 8)
		}
		out = append(out, b)
	}
	for range random {
		b := make([]byte, 1+rng.IntN(1500))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if rng.IntN(2) == 0 {
			b[0] = byte(1+rng.IntN(8))<<4 | b[0]&0x0f
		}
		out = append(out, b)
	}
	return out
}
