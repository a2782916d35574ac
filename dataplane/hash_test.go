package dataplane

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// The hash must not change between releases: redundant ITRs (and a
// restarted one) must agree on the RLOC and source port of a flow. These
// values pin it.
func TestFlowHashPinned(t *testing.T) {
	tests := []struct {
		pkt  []byte
		want uint32
	}{
		{unhex(t, inner4Hex), 0x8182f524},
		{unhex(t, inner6Hex), 0xc2eab211},
	}
	for i, tc := range tests {
		if got := FlowHash(tc.pkt); got != tc.want {
			t.Errorf("case %d: FlowHash = %#08x, pinned %#08x", i, got, tc.want)
		}
	}
}

func TestFlowHashFields(t *testing.T) {
	base := udp4Packet("10.1.1.1", "10.2.2.2", 1000, 2000, 0, 64, false, []byte("x"))
	h := FlowHash(base)
	if FlowHash(base) != h {
		t.Fatal("not deterministic")
	}
	// Fields outside the 5-tuple do not matter.
	other := bytes.Clone(base)
	other[1], other[8], other[4] = 0xb8, 3, 0x99
	other = append(other[:28], []byte("different payload")...)
	binary.BigEndian.PutUint16(other[2:], uint16(len(other)))
	if FlowHash(other) != h {
		t.Fatal("TOS/TTL/ID/payload changed the hash")
	}
	// Each 5-tuple field does.
	for _, mut := range []func(p []byte){
		func(p []byte) { p[15] ^= 1 }, // src
		func(p []byte) { p[19] ^= 1 }, // dst
		func(p []byte) { p[21] ^= 1 }, // sport
		func(p []byte) { p[23] ^= 1 }, // dport
		func(p []byte) { p[9] = 6 },   // proto
	} {
		p := bytes.Clone(base)
		mut(p)
		if FlowHash(p) == h {
			t.Fatalf("mutation did not change the hash")
		}
	}
	// Ports are ignored for protocols without them and for fragments, so
	// all fragments of a datagram hash alike.
	icmp := bytes.Clone(base)
	icmp[9] = 1
	icmp2 := bytes.Clone(icmp)
	icmp2[21] ^= 0xff
	if FlowHash(icmp) != FlowHash(icmp2) {
		t.Fatal("ICMP hash depends on payload bytes")
	}
	first := bytes.Clone(base)
	first[6] |= 0x20 // MF
	later := bytes.Clone(base)
	later[7] = 100 // offset
	later[21] ^= 0xff
	if FlowHash(first) != FlowHash(later) {
		t.Fatal("fragments of one datagram hash differently")
	}
	// IPv6 extension headers are skipped to find the ports.
	v6 := udp6Packet("2001:db8:1::1", "2001:db8:2::2", 1000, 2000, 0, 64, []byte("x"))
	dopt := []byte{17, 0, 1, 4, 0, 0, 0, 0} // destination options, PadN
	withExt := append(append(bytes.Clone(v6[:40]), dopt...), v6[40:]...)
	withExt[6] = 60
	binary.BigEndian.PutUint16(withExt[4:], uint16(len(withExt)-40))
	if FlowHash(withExt) != FlowHash(v6) {
		t.Fatal("extension header changed the IPv6 flow hash")
	}
	if FlowHash(nil) != 0 || FlowHash([]byte{0x45}) != 0 {
		t.Fatal("malformed packets must hash to 0")
	}
}

// Flows spread evenly over RLOCs (hash % n) and over source ports.
func TestFlowHashSpreads(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const flows = 40000
	for _, n := range []int{2, 3, 4, 8} {
		counts := make([]int, n)
		ports := map[uint16]int{}
		for range flows {
			var p []byte
			if r.IntN(2) == 0 {
				// many flows between the same two hosts: only ports vary
				p = udp4Packet("10.1.1.1", "10.2.2.2", uint16(r.IntN(65536)), 443, 0, 64, false, nil)
			} else {
				src := netip.AddrFrom4([4]byte{10, 1, byte(r.IntN(256)), byte(r.IntN(256))})
				p = udp4Packet(src.String(), "10.2.2.2", 40000, 443, 0, 64, false, nil)
			}
			h := FlowHash(p)
			counts[h%uint32(n)]++
			ports[SourcePort(h)]++
		}
		// chi-square with n-1 degrees of freedom; 99.9% quantile for df<=7 is < 25
		exp := float64(flows) / float64(n)
		var chi float64
		for _, c := range counts {
			chi += (float64(c) - exp) * (float64(c) - exp) / exp
		}
		if chi > 25 {
			t.Errorf("n=%d: counts %v, chi-square %.1f", n, counts, chi)
		}
		if len(ports) < 14000 {
			t.Errorf("n=%d: only %d distinct source ports for %d flows", n, len(ports), flows)
		}
	}
}

func TestSourcePortRange(t *testing.T) {
	for _, h := range []uint32{0, 1, math.MaxUint32, 0x3fff0000, 0xc0000000} {
		if p := SourcePort(h); p < 49152 {
			t.Fatalf("SourcePort(%#x) = %d", h, p)
		}
	}
}
