package mapserver

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/lispd/lispd/wire"
)

// inFastSubset reports whether a message wire.Parse returned is one the
// fast path must take (see fastparse.go).
func inFastSubset(m wire.Message) bool {
	switch m := m.(type) {
	case *wire.MapRequest:
		return requestInFastSubset(m)
	case *wire.ECM:
		r, ok := m.Inner.(*wire.MapRequest)
		return ok && requestInFastSubset(r)
	}
	return false
}

func requestInFastSubset(m *wire.MapRequest) bool {
	if m.MapReplyRecord != nil || len(m.Records) > maxFastRecords || !fastAddress(m.SourceEID) {
		return false
	}
	for _, a := range m.ITRRLOCs {
		if !fastAddress(a) {
			return false
		}
	}
	for _, r := range m.Records {
		if !fastAddress(r.EID) {
			return false
		}
	}
	return true
}

func fastAddress(a wire.Address) bool {
	plain := func(a wire.Address) bool {
		return a.AFI == wire.AFINone || a.AFI == wire.AFIIPv4 || a.AFI == wire.AFIIPv6
	}
	if a.AFI == wire.AFILCAF {
		return a.LCAFType == wire.LCAFInstanceID && a.Inner != nil && plain(*a.Inner)
	}
	return plain(a)
}

// checkFastParse checks the fast path's contract on b: whatever it accepts,
// wire.Parse accepts and decodes identically, and it accepts everything of
// its subset that wire.Parse accepts.
func checkFastParse(t *testing.T, p *requestParser, b []byte) (fast bool) {
	t.Helper()
	want, werr := wire.Parse(b)
	req, ecm, ok := p.parse(b)
	if ok {
		if werr != nil {
			t.Fatalf("fast path accepted what wire refuses (%v): %x", werr, b)
		}
		var got wire.Message = req
		if ecm != nil {
			got = ecm
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast path decoded differently from wire:\n got %#v\nwant %#v\ninput %x", got, want, b)
		}
		if ecm != nil && ecm.Inner != wire.Message(req) {
			t.Fatalf("ECM does not carry the returned request")
		}
		return true
	}
	if werr == nil && inFastSubset(want) {
		t.Fatalf("fast path refused a message of its subset: %#v\ninput %x", want, b)
	}
	return false
}

// randomAddress returns an address of a random kind: mostly ones of the
// fast subset, sometimes others.
func randomAddress(r *rand.Rand, hostOnly bool) wire.Address {
	ip4 := netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
	var a16 [16]byte
	for i := range a16 {
		a16[i] = byte(r.IntN(256))
	}
	ip6 := netip.AddrFrom16(a16)
	switch r.IntN(9) {
	case 0:
		if hostOnly {
			return wire.AddrFrom(ip4)
		}
		return wire.Address{}
	case 1, 2:
		return wire.AddrFrom(ip4)
	case 3:
		return wire.AddrFrom(ip6)
	case 4:
		return wire.IIDAddr(r.Uint32(), ip4)
	case 5:
		a := wire.IIDAddr(r.Uint32N(1<<24), ip6)
		a.IIDMaskLen = uint8(r.IntN(33))
		a.LCAFFlags = uint8(r.IntN(256))
		a.LCAFRsvd1 = uint8(r.IntN(256))
		return a
	case 6:
		return wire.Address{AFI: wire.AFILCAF, LCAFType: wire.LCAFAFIList, List: []wire.Address{wire.AddrFrom(ip4), wire.AddrFrom(ip6)}}
	case 7:
		return wire.Address{AFI: wire.AFIDistinguishedName, Raw: []byte("itr-1")}
	default:
		inner := wire.Address{AFI: wire.AFIMAC, Raw: []byte{2, 0, 0, 0, 0, 1}}
		return wire.Address{AFI: wire.AFILCAF, LCAFType: wire.LCAFInstanceID, InstanceID: 9, Inner: &inner}
	}
}

// randomRequest returns a random encoded Map-Request, plain or in an ECM.
func randomRequest(t testing.TB, r *rand.Rand) []byte {
	t.Helper()
	m := &wire.MapRequest{
		Authoritative: r.IntN(2) == 0, Probe: r.IntN(4) == 0, SMR: r.IntN(8) == 0, PITR: r.IntN(4) == 0,
		SMRInvoked: r.IntN(4) == 0, LocalXTR: r.IntN(4) == 0, DontMapReply: r.IntN(8) == 0,
		Reserved: r.Uint32() & wire.MapRequestReservedMask * uint32(r.IntN(2)),
		Nonce:    r.Uint64(),
	}
	if r.IntN(3) == 0 {
		m.SourceEID = randomAddress(r, false)
	}
	for range 1 + r.IntN(4) {
		m.ITRRLOCs = append(m.ITRRLOCs, randomAddress(r, true))
	}
	nrec := r.IntN(3)
	if r.IntN(20) == 0 {
		nrec = maxFastRecords + 1
	}
	for range nrec {
		a := randomAddress(r, true)
		rec := wire.RequestRecord{EID: a, NotifyRequested: r.IntN(4) == 0, Reserved: uint8(r.IntN(2)) * 0x15}
		if _, ip, ok := a.InstanceIP(); ok {
			rec.MaskLen = uint8(r.IntN(ip.BitLen() + 1))
		}
		m.Records = append(m.Records, rec)
	}
	if r.IntN(10) == 0 {
		mr := rec(0, "10.9.0.0/16", 10, loc("192.0.2.9"))
		m.MapReplyRecord = &mr
	}
	if r.IntN(4) == 0 {
		m.XTRIDPresent = true
		m.XTRID = wire.XTRID{1, 2, byte(r.IntN(256))}
		m.SiteID = r.Uint64()
	}
	var b []byte
	var err error
	switch r.IntN(3) {
	case 0:
		b, err = m.AppendBinary(nil)
	case 1:
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(r.IntN(256))}), uint16(r.IntN(65536)))
		dst := netip.AddrPortFrom(netip.MustParseAddr("10.1.1.1"), ControlPort)
		e := wire.ECM{Source: src, Destination: dst, TTL: uint8(r.IntN(256)), ToMS: r.IntN(3) == 0,
			Security: r.IntN(8) == 0, DDT: r.IntN(8) == 0, ToETR: r.IntN(8) == 0, Reserved: uint32(r.IntN(2)) * 0x123, Inner: m}
		b, err = e.AppendBinary(nil)
	default:
		src := netip.AddrPortFrom(netip.MustParseAddr("2001:db8::9"), uint16(r.IntN(65536)))
		dst := netip.AddrPortFrom(netip.MustParseAddr("2001:db8:2::1"), ControlPort)
		e := wire.ECM{Source: src, Destination: dst, TTL: 64, Inner: m}
		b, err = e.AppendBinary(nil)
	}
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if r.IntN(5) == 0 {
		b = append(b, 0xde, 0xad) // trailing bytes
	}
	return b
}

// withHopByHop inserts an empty IPv6 hop-by-hop header into an ECM with an
// IPv6 inner header.
func withHopByHop(b []byte) []byte {
	out := append([]byte(nil), b[:4+40]...)
	out[4+6] = 0 // next header: hop-by-hop
	plen := binary.BigEndian.Uint16(out[4+4:])
	binary.BigEndian.PutUint16(out[4+4:], plen+8)
	out = append(out, protoUDP, 0, 1, 4, 0, 0, 0, 0) // PadN
	return append(out, b[4+40:]...)
}

func TestFastParseMatchesWire(t *testing.T) {
	var p requestParser
	cases := map[string][]byte{
		"plain":            buildRequest(t, itr, 0, "10.1.1.1/32", 7, nil),
		"ecm-iid":          buildRequest(t, itr, 7, "10.2.1.1/32", 8, nil),
		"ecm-v6":           buildRequest(t, ap("[2001:db8::9]:4000"), 7, "2001:db8:2::1/128", 9, nil),
		"ecm-v6-hopbyhop":  withHopByHop(buildRequest(t, ap("[2001:db8::9]:4000"), 7, "2001:db8:2::1/128", 9, nil)),
		"probe-smr-xtr-id": buildRequest(t, itr, 0, "10.1.1.1/32", 7, func(m *wire.MapRequest) { m.Probe, m.SMR, m.XTRIDPresent = true, true, true }),
		"no-records":       buildRequest(t, itr, 0, "10.1.1.1/32", 7, func(m *wire.MapRequest) { m.Records = nil }),
	}
	plain, _ := (&wire.MapRequest{Nonce: 3, ITRRLOCs: []wire.Address{wire.AddrFrom(itr.Addr())},
		Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix("10.1.1.1/32"))}}).AppendBinary(nil)
	cases["unencapsulated"] = plain
	zero := bytes.Clone(cases["plain"])
	zero[4+20+6], zero[4+20+7] = 0, 0 // UDP checksum 0: not checked
	zero[4+10], zero[4+11] = 0, 0     // IPv4 header checksum 0: not checked
	cases["zero-checksums"] = zero
	// lispers.net's subscribing Map-Request, as captured: I bit, a 16-byte
	// xTR-ID and no site-ID (wire.MapRequest.NoSiteID).
	cases["lispers.net-subscribe"] = lispersNetSubscribe(t)
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if !checkFastParse(t, &p, b) {
				t.Fatal("fast path refused it")
			}
		})
	}
	outside := map[string][]byte{
		"map-register": siteARegister(t, 1, true, false, loc("192.0.2.1")),
		"map-reply-record": buildRequest(t, itr, 0, "10.1.1.1/32", 7, func(m *wire.MapRequest) {
			r := rec(0, "10.9.0.0/16", 10, loc("192.0.2.9"))
			m.MapReplyRecord = &r
		}),
		"afi-list-itr-rloc": buildRequest(t, itr, 0, "10.1.1.1/32", 7, func(m *wire.MapRequest) {
			m.ITRRLOCs = []wire.Address{{AFI: wire.AFILCAF, LCAFType: wire.LCAFAFIList, List: []wire.Address{wire.AddrFrom(itr.Addr())}}}
		}),
		"bad-udp-checksum": func() []byte { b := bytes.Clone(cases["plain"]); b[4+20+6] ^= 0x55; return b }(),
		"truncated":        cases["plain"][:len(cases["plain"])-3],
		"empty":            {},
	}
	for name, b := range outside {
		t.Run(name, func(t *testing.T) {
			if checkFastParse(t, &p, b) {
				t.Fatal("fast path took a message outside its subset")
			}
		})
	}
}

// TestFastParseRandom checks the contract on random requests and on random
// mutations of them, reusing one parser throughout.
func TestFastParseRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var p requestParser
	fast := 0
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for i := range n {
		b := randomRequest(t, r)
		if checkFastParse(t, &p, b) {
			fast++
		}
		// Mutate: flip bytes, truncate or extend.
		for range 1 + r.IntN(3) {
			switch k := r.IntN(4); {
			case k < 2 && len(b) > 0:
				b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
			case k == 2 && len(b) > 0:
				b = b[:r.IntN(len(b))]
			default:
				b = append(b, byte(r.IntN(256)))
			}
		}
		checkFastParse(t, &p, b)
		if i%1000 == 0 && t.Failed() {
			return
		}
	}
	if fast < n/10 {
		t.Fatalf("only %d of %d random requests took the fast path", fast, n)
	}
}

func FuzzFastParse(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 32 {
		f.Add(randomRequest(f, r))
	}
	f.Add(withHopByHop(buildRequest(f, ap("[2001:db8::9]:4000"), 7, "2001:db8:2::1/128", 9, nil)))
	var p requestParser
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFastParse(t, &p, b)
	})
}

// TestFastPathSameBehaviour sends the same datagrams through the fast path
// and through wire.Parse to two identical servers: they must send the same
// datagrams to the same places and count the same outcomes.
func TestFastPathSameBehaviour(t *testing.T) {
	fast, fastOut, _ := newTestServer(t, nil)
	slow, slowOut, _ := newTestServer(t, nil)
	registerFixture(t, fast, fastOut)
	registerFixture(t, slow, slowOut)
	w := fast.NewWorker(nil)
	r := rand.New(rand.NewPCG(5, 6))
	var pkts [][]byte
	for _, e := range []string{"10.1.1.1/32", "10.2.1.1/32", "10.1.9.1/32", "172.16.1.1/32", "10.1.1.0/24"} {
		pkts = append(pkts, buildRequest(t, itr, 0, e, 1, nil))
		pkts = append(pkts, buildRequest(t, ap("[2001:db8::9]:4000"), 0, e, 2, nil))
		pkts = append(pkts, buildRequest(t, itr, 0, e, 1, func(m *wire.MapRequest) { m.Probe = true }))
		pkts = append(pkts, buildRequest(t, itr, 0, e, 1, func(m *wire.MapRequest) { m.DontMapReply = true }))
	}
	pkts = append(pkts, buildRequest(t, ap("[2001:db8::9]:4000"), 7, "2001:db8:2::1/128", 3, nil))
	for range 2000 {
		pkts = append(pkts, randomRequest(t, r))
	}
	for i, b := range pkts {
		from := ap("198.18.0.1:4342")
		local := netip.Addr{}
		if i%2 == 1 {
			local = netip.MustParseAddr("198.18.0.2")
		}
		w.HandlePacket(b, from, local)
		slow.handle(nil, slow.out, b, from, local)
		got, want := fastOut.take(), slowOut.take()
		if len(got) != len(want) {
			t.Fatalf("datagram %d (%x): fast path sent %d datagrams, wire path %d", i, b, len(got), len(want))
		}
		for k := range got {
			if got[k].to != want[k].to || !bytes.Equal(got[k].b, want[k].b) {
				t.Fatalf("datagram %d: fast path sent %x to %s, wire path %x to %s", i, got[k].b, got[k].to, want[k].b, want[k].to)
			}
		}
	}
	fs, ss := fast.Stats(), slow.Stats()
	if !reflect.DeepEqual(fs, ss) {
		t.Fatalf("counters differ:\nfast %+v\nwire %+v", fs, ss)
	}
	if fs.RequestsProxyReplied == 0 || fs.RequestsForwardedToETR == 0 || fs.MRNegative == 0 || fs.NegativeNotRegistered == 0 {
		t.Fatalf("not every outcome exercised: %+v", fs)
	}
}

// TestWorkerAllocations checks that a Worker answers Map-Requests without
// allocating, for every outcome.
func TestWorkerAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s, out, _ := newTestServer(t, nil)
	registerFixture(t, s, out)
	w := s.NewWorker(&nullSender{})
	for _, c := range []struct {
		iid  uint32
		eid  string
		from netip.AddrPort
	}{
		{0, "10.1.1.1/32", itr},                            // proxy reply
		{0, "10.2.1.1/32", itr},                            // forwarded to the ETR
		{0, "10.1.9.1/32", itr},                            // negative, not registered
		{0, "172.16.1.1/32", itr},                          // negative, not configured
		{7, "2001:db8:2::1/128", ap("[2001:db8::9]:4000")}, // negative in instance 7
	} {
		pkt := buildRequest(t, c.from, c.iid, c.eid, 1, nil)
		if n := testing.AllocsPerRun(200, func() { w.HandlePacket(pkt, c.from, netip.Addr{}) }); n != 0 {
			t.Errorf("request for [%d]%s: %v allocations per request, want 0", c.iid, c.eid, n)
		}
	}
	if st := s.Stats(); st.RequestsProxyReplied == 0 || st.RequestsForwardedToETR == 0 ||
		st.NegativeNotRegistered == 0 || st.MRNegative == 0 {
		t.Fatalf("not every outcome exercised: %+v", st)
	}
}

func TestEIDRecordMatchesWire(t *testing.T) {
	for _, c := range []struct {
		iid uint32
		p   string
	}{{0, "10.0.0.0/8"}, {7, "10.1.0.0/16"}, {1 << 20, "2001:db8::/32"}, {3, "0.0.0.0/0"}, {5, "10.1.2.3/8"}} {
		p := netip.MustParsePrefix(c.p)
		var inner wire.Address
		got, want := eidRecord(c.iid, p, &inner), wire.NewEIDRecord(c.iid, p)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("eidRecord(%d, %s) = %#v, want %#v", c.iid, p, got, want)
		}
	}
}

// ExampleWorker shows a socket reader handing its datagrams to a Worker.
func ExampleWorker() {
	s, err := New(Config{MapResolver: true}, &nullSender{}, nil)
	if err != nil {
		panic(err)
	}
	w := s.NewWorker(nil) // one per reader goroutine
	req := &wire.MapRequest{Nonce: 1, ITRRLOCs: []wire.Address{wire.AddrFrom(netip.MustParseAddr("192.0.2.9"))},
		Records: []wire.RequestRecord{wire.NewRequestRecord(0, netip.MustParsePrefix("10.1.1.1/32"))}}
	pkt, _ := wire.NewECM(netip.MustParseAddrPort("192.0.2.9:61000"), netip.MustParseAddrPort("10.1.1.1:4342"), req).AppendBinary(nil)
	w.HandlePacket(pkt, netip.MustParseAddrPort("192.0.2.9:4342"), netip.Addr{})
	fmt.Println(s.Stats().MRNegative)
	// Output: 1
}

// lispersNetSubscribe is the ECM payload of a subscribing Map-Request
// lispers.net sends: the I bit with a 16-byte xTR-ID (the last 16 bytes)
// and no site-ID after it.
func lispersNetSubscribe(t *testing.T) []byte {
	t.Helper()
	b, err := hex.DecodeString("8000000045000076000000008011e57bc633648ac633640a88f810f600620000" +
		"10100101009c0fb472f5dcbd" +
		"400300000200000a000003e80001c633648a0001c000020c000220010db8ffff000000000000000000128020" +
		"400300000200000a000003e80001c633640a" +
		"ac382fd1a8673e101f09f70793e7098a")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
