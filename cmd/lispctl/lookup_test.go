package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lispd/lispd/wire"
)

// lookupRequest is one Map-Request a lookupResponder received.
type lookupRequest struct {
	from netip.AddrPort
	ecm  *wire.ECM
	req  *wire.MapRequest
}

// lookupResponder is a stand-in Map-Resolver on a real UDP socket: it reads
// ECMs, checks that each carries a Map-Request as "lispctl lookup" must
// build it, and lets the test answer.
type lookupResponder struct {
	conn *net.UDPConn
	addr netip.AddrPort

	mu       sync.Mutex
	reqs     []lookupRequest
	problems []string
}

// startLookupResponder listens on listen ("127.0.0.1:0") and calls answer
// for every well-formed request, in the responder's goroutine, with the
// 1-based number of the request. The goroutine ends with the test.
func startLookupResponder(t *testing.T, listen string, answer func(r *lookupResponder, n int, got lookupRequest)) *lookupResponder {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(listen)))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", listen, err)
	}
	r := &lookupResponder{conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed at the end of the test
			}
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			got, problem := checkLookupRequest(buf[:n], from)
			r.mu.Lock()
			if problem != "" {
				r.problems = append(r.problems, problem)
				r.mu.Unlock()
				continue
			}
			r.reqs = append(r.reqs, got)
			count := len(r.reqs)
			r.mu.Unlock()
			if answer != nil {
				answer(r, count, got)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range r.problems {
			t.Error(p)
		}
	})
	return r
}

// checkLookupRequest parses a datagram as the ECM lookup sends and checks
// it: an ECM with no flags carrying one Map-Request whose ITR-RLOC is the
// datagram's source address and whose inner UDP source port is the
// datagram's source port, to the EID on port 4342.
func checkLookupRequest(b []byte, from netip.AddrPort) (lookupRequest, string) {
	msg, err := wire.Parse(b)
	if err != nil {
		return lookupRequest{}, fmt.Sprintf("request from %s does not parse: %v", from, err)
	}
	ecm, ok := msg.(*wire.ECM)
	if !ok {
		return lookupRequest{}, fmt.Sprintf("request from %s is a %v, not an ECM", from, msg.Type())
	}
	req, ok := ecm.Inner.(*wire.MapRequest)
	if !ok {
		return lookupRequest{}, fmt.Sprintf("ECM from %s carries a %v", from, ecm.Inner.Type())
	}
	switch {
	case ecm.Security || ecm.DDT || ecm.ToETR || ecm.ToMS:
		return lookupRequest{}, fmt.Sprintf("ECM flags set: %+v", ecm)
	case len(req.ITRRLOCs) != 1 || req.ITRRLOCs[0].IP != from.Addr():
		return lookupRequest{}, fmt.Sprintf("ITR-RLOCs %v, want the sender %s", req.ITRRLOCs, from.Addr())
	case ecm.Source.Port() != from.Port():
		return lookupRequest{}, fmt.Sprintf("inner UDP source port %d, want the sender's %d", ecm.Source.Port(), from.Port())
	case ecm.Source.Addr().Is4() == from.Addr().Is4() && ecm.Source.Addr() != from.Addr():
		return lookupRequest{}, fmt.Sprintf("inner source %s, want %s", ecm.Source.Addr(), from.Addr())
	case ecm.Destination.Port() != 4342 || ecm.TTL != 64:
		return lookupRequest{}, fmt.Sprintf("inner destination %s ttl %d", ecm.Destination, ecm.TTL)
	case len(req.Records) != 1:
		return lookupRequest{}, fmt.Sprintf("%d records", len(req.Records))
	case req.Probe || req.SMR || req.Authoritative || req.MapReplyRecord != nil || req.Nonce == 0:
		return lookupRequest{}, fmt.Sprintf("unexpected Map-Request fields %+v", req)
	}
	if _, p, ok := req.Records[0].Prefix(); !ok || p.Addr() != ecm.Destination.Addr() && !p.Contains(ecm.Destination.Addr()) {
		return lookupRequest{}, fmt.Sprintf("record %v does not match the inner destination %s", req.Records[0], ecm.Destination.Addr())
	}
	return lookupRequest{from: from, ecm: ecm, req: req}, ""
}

// send sends b to to from the responder's socket, recording a failure.
func (r *lookupResponder) send(b []byte, to netip.AddrPort) {
	if _, err := r.conn.WriteToUDPAddrPort(b, to); err != nil {
		r.mu.Lock()
		r.problems = append(r.problems, fmt.Sprintf("responder send to %s: %v", to, err))
		r.mu.Unlock()
	}
}

// replyTo returns where a Map-Reply to got goes: its ITR-RLOC at its inner
// UDP source port.
func replyTo(got lookupRequest) netip.AddrPort {
	return netip.AddrPortFrom(got.req.ITRRLOCs[0].IP, got.ecm.Source.Port())
}

// requests returns the requests received so far.
func (r *lookupResponder) requests() []lookupRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]lookupRequest(nil), r.reqs...)
}

// waitRequests polls until n requests have arrived.
func (r *lookupResponder) waitRequests(t *testing.T, n int) []lookupRequest {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.requests()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests arrived, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// encodeReply encodes a Map-Reply with nonce and records.
func encodeReply(nonce uint64, recs ...wire.EIDRecord) []byte {
	b, err := (&wire.MapReply{Nonce: nonce, Records: recs}).AppendBinary(nil)
	if err != nil {
		panic(err) // test data is valid
	}
	return b
}

// lookupTestRecord is the mapping the test responders answer with.
func lookupTestRecord() wire.EIDRecord {
	r := mapping(0, "10.1.1.0/24", 1440,
		wire.Locator{Priority: 1, Weight: 60, MPriority: 255, Reachable: true, Local: true, Address: ipAddr("192.0.2.31")},
		wire.Locator{Priority: 2, Weight: 40, MPriority: 255, Address: ipAddr("2001:db8::31")})
	r.MapVersion = 3
	return r
}

func TestLookupReply(t *testing.T) {
	mr := startLookupResponder(t, "127.0.0.1:0", func(r *lookupResponder, _ int, got lookupRequest) {
		to := replyTo(got)
		r.send([]byte("garbage"), to)                                        // not LISP
		r.send(encodeReply(got.req.Nonce+1, lookupTestRecord()), to)         // wrong nonce
		r.send(mustEncodeReq(got.req), to)                                   // not a Map-Reply
		r.send(encodeReply(got.req.Nonce, lookupTestRecord()), to)           // the answer
		r.send(encodeReply(got.req.Nonce, wire.EIDRecord{RecordTTL: 1}), to) // a late duplicate, never read
	})
	out, errOut, code := execLispctl(t, nil, "lookup", "10.1.1.9", "--mr", mr.addr.String())
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	reqs := mr.waitRequests(t, 1)
	if len(reqs) != 1 {
		t.Errorf("%d requests, want 1", len(reqs))
	}
	req := reqs[0]
	if _, p, _ := req.req.Records[0].Prefix(); p != netip.MustParsePrefix("10.1.1.9/32") || req.ecm.Destination.Addr() != netip.MustParseAddr("10.1.1.9") {
		t.Errorf("asked for %v via %s", req.req.Records[0], req.ecm.Destination)
	}
	if req.req.Records[0].EID.AFI != wire.AFIIPv4 {
		t.Errorf("EID encoded as %v, want a plain IPv4 address for instance 0", req.req.Records[0].EID.AFI)
	}
	wantHead := fmt.Sprintf("Map-Reply from %s for 10.1.1.9/32 in ", mr.addr)
	if !strings.HasPrefix(out, wantHead) || !strings.Contains(out, fmt.Sprintf("(try 1 of 1, nonce 0x%016x)\n", req.req.Nonce)) {
		t.Errorf("header:\n%s", out)
	}
	for _, want := range []string{
		"\nEID-PREFIX   TTL            ACTION     AUTHORITATIVE  MAP-VERSION\n",
		"\n10.1.1.0/24  1440 min (1d)  No-Action  yes            3\n",
		"\n  LOCATOR       PRIORITY  WEIGHT  M-PRIORITY  M-WEIGHT  REACHABLE  LOCAL  PROBED\n",
		"\n  192.0.2.31    1         60      255         0         yes        yes    no\n",
		"\n  2001:db8::31  2         40      255         0         no         no     no\n",
		"\nignored 3 unrelated datagram(s) while waiting (wrong nonce, not a Map-Reply or malformed)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if errOut != "" {
		t.Errorf("stderr: %s", errOut)
	}
}

// mustEncodeReq encodes a Map-Request (used as a wrong answer).
func mustEncodeReq(m *wire.MapRequest) []byte {
	b, err := m.AppendBinary(nil)
	if err != nil {
		panic(err)
	}
	return b
}

func TestLookupJSON(t *testing.T) {
	mr := startLookupResponder(t, "127.0.0.1:0", func(r *lookupResponder, _ int, got lookupRequest) {
		r.send(encodeReply(got.req.Nonce^0xff, lookupTestRecord()), replyTo(got)) // wrong nonce
		r.send(encodeReply(got.req.Nonce, lookupTestRecord()), replyTo(got))
	})
	out, errOut, code := execLispctl(t, nil, "lookup", "iid:0/10.1.1.9", "--mr", mr.addr.String(), "--json", "--count", "2")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	reqs := mr.waitRequests(t, 2)
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	for i := 0; i < 2; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("result %d: %v\n%s", i+1, err, out)
		}
		want := sortedKeys("eid iid map_resolver source replier rtt_ms nonce try tries ignored flags records")
		if got := keysOf(m); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("keys %v, want %v", got, want)
		}
		expectJSON(t, m, "eid", "10.1.1.9/32")
		expectJSON(t, m, "map_resolver", mr.addr.String())
		expectJSON(t, m, "replier", mr.addr.String())
		expectJSON(t, m, "source", reqs[i].from.String())
		expectJSON(t, m, "nonce", fmt.Sprintf("0x%016x", reqs[i].req.Nonce))
		if mustInt(t, m["try"]) != 1 || mustInt(t, m["tries"]) != 1 || mustInt(t, m["ignored"]) != 1 || mustInt(t, m["iid"]) != 0 {
			t.Errorf("result %d: %v", i+1, m)
		}
		if rtt, err := m["rtt_ms"].(json.Number).Float64(); err != nil || rtt < 0 || rtt > 5000 {
			t.Errorf("rtt_ms %v", m["rtt_ms"])
		}
		recs := asList(m["records"])
		if len(recs) != 1 {
			t.Fatalf("records %v", m["records"])
		}
		rec := recs[0].(map[string]any)
		checkJSONRecord(t, 0, rec, false)
		expectJSON(t, rec, "eid_prefix", "10.1.1.0/24")
		locs := asList(rec["locators"])
		if len(locs) != 2 || locs[0].(map[string]any)["address"].(map[string]any)["ip"] != "192.0.2.31" ||
			locs[0].(map[string]any)["reachable"] != true {
			t.Errorf("locators %v", locs)
		}
	}
	if reqs[0].req.Nonce == reqs[1].req.Nonce {
		t.Error("two lookups used the same nonce")
	}
}

func TestLookupRetriesAcceptEarlierNonce(t *testing.T) {
	// The responder stays silent until the second Map-Request, then
	// answers the first one: a reply to any Map-Request sent is accepted.
	mr := startLookupResponder(t, "127.0.0.1:0", func(r *lookupResponder, n int, got lookupRequest) {
		if n == 2 {
			first := r.requests()[0]
			r.send(encodeReply(first.req.Nonce, lookupTestRecord()), replyTo(got))
		}
	})
	out, errOut, code := execLispctl(t, nil, "lookup", "10.1.1.9", "--mr", mr.addr.String(),
		"--timeout", "1s", "--retries", "3", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	reqs := mr.waitRequests(t, 2)
	if reqs[0].req.Nonce == reqs[1].req.Nonce || reqs[0].from != reqs[1].from {
		t.Errorf("retry nonces %#x %#x from %s %s: want new nonces from the same socket",
			reqs[0].req.Nonce, reqs[1].req.Nonce, reqs[0].from, reqs[1].from)
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	rtt, _ := m["rtt_ms"].(json.Number).Float64()
	if mustInt(t, m["try"]) != 1 || mustInt(t, m["tries"]) != 2 || rtt < 200 {
		t.Errorf("try %v of %v, rtt %v ms: want try 1 of 2 after about 250 ms", m["try"], m["tries"], rtt)
	}
}

func TestLookupTimeout(t *testing.T) {
	mr := startLookupResponder(t, "127.0.0.1:0", nil) // never answers
	start := time.Now()
	out, errOut, code := execLispctl(t, nil, "lookup", "10.1.1.9", "--mr", mr.addr.String(), "--timeout", "300ms")
	took := time.Since(start)
	want := fmt.Sprintf("lispctl: no Map-Reply from 127.0.0.1 within 300ms (3 tries): is the Map-Resolver reachable on UDP %d?\n", mr.addr.Port())
	if code != exitFailure || errOut != want || out != "" {
		t.Errorf("exit %d\nstdout %q\nstderr %q\nwant   %q", code, out, errOut, want)
	}
	if took < 300*time.Millisecond || took > 3*time.Second {
		t.Errorf("took %v for a 300ms timeout", took)
	}
	reqs := mr.waitRequests(t, 3)
	seen := map[uint64]bool{}
	for _, r := range reqs {
		seen[r.req.Nonce] = true
	}
	if len(reqs) != 3 || len(seen) != 3 {
		t.Errorf("%d requests with %d distinct nonces, want 3 and 3", len(reqs), len(seen))
	}

	// --count: each lookup that gets no reply is reported, exit 1.
	_, errOut, code = execLispctl(t, nil, "lookup", "10.1.1.9", "--mr", mr.addr.String(), "--timeout", "100ms",
		"--retries", "0", "--count", "2")
	if code != exitFailure || strings.Count(errOut, "no Map-Reply from 127.0.0.1 within 100ms (1 tries)") != 2 ||
		!strings.Contains(errOut, "2 of 2 lookups got no Map-Reply") {
		t.Errorf("--count 2: exit %d, stderr:\n%s", code, errOut)
	}
}

// TestLookupTimeoutDefaults checks the message with the default timeout
// and retries, asking 127.88.0.9:4342 where nothing listens (the ICMP port
// unreachable does not reach an unconnected socket).
func TestLookupTimeoutDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 3 seconds")
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.88.0.9")})
	if err != nil {
		t.Skipf("127.88.0.9 unusable: %v", err)
	}
	c.Close()
	_, errOut, code := execLispctl(t, nil, "lookup", "10.1.1.9", "--mr", "127.88.0.9")
	want := "lispctl: no Map-Reply from 127.88.0.9 within 3s (3 tries): is the Map-Resolver reachable on UDP 4342?\n"
	if code != exitFailure || errOut != want {
		t.Errorf("exit %d, stderr %q, want %q", code, errOut, want)
	}
}

func TestLookupInstanceAndFamilies(t *testing.T) {
	// An IPv6 EID in instance 1000 asked through an IPv4 Map-Resolver:
	// the EID goes as an Instance-ID LCAF, the inner header from the IPv6
	// unspecified address (the ITR-RLOC is IPv4).
	mr := startLookupResponder(t, "127.0.0.1:0", func(r *lookupResponder, _ int, got lookupRequest) {
		rec := mapping(1000, "2001:db8:2::/48", 60, wire.Locator{Priority: 1, Weight: 100, Reachable: true, Address: ipAddr("192.0.2.32")})
		r.send(encodeReply(got.req.Nonce, rec), replyTo(got))
	})
	out, errOut, code := execLispctl(t, nil, "lookup", "2001:db8:2::1", "--iid", "1000", "--mr", mr.addr.String(),
		"--source", "127.0.0.1")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := mr.waitRequests(t, 1)[0]
	iid, p, ok := got.req.Records[0].Prefix()
	if !ok || iid != 1000 || p != netip.MustParsePrefix("2001:db8:2::1/128") || got.req.Records[0].EID.LCAFType != wire.LCAFInstanceID {
		t.Errorf("record %+v", got.req.Records[0])
	}
	if got.ecm.Source.Addr() != netip.IPv6Unspecified() || got.ecm.Destination.Addr() != netip.MustParseAddr("2001:db8:2::1") {
		t.Errorf("inner header %s -> %s", got.ecm.Source, got.ecm.Destination)
	}
	for _, want := range []string{"for iid:1000/2001:db8:2::1/128 in ", "\niid:1000/2001:db8:2::/48  60 min (1h)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// Over IPv6 loopback, when the host has it.
	mr6 := startLookupResponder(t, "[::1]:0", func(r *lookupResponder, _ int, got lookupRequest) {
		neg := mapping(0, "2001:db8:9::/48", 15)
		neg.Action, neg.Authoritative = wire.NativelyForward, false
		r.send(encodeReply(got.req.Nonce, neg), replyTo(got))
	})
	out, errOut, code = execLispctl(t, nil, "lookup", "2001:db8:9::5", "--mr", mr6.addr.String())
	if code != exitOK {
		t.Fatalf("IPv6: exit %d: %s", code, errOut)
	}
	got = mr6.waitRequests(t, 1)[0]
	if got.from.Addr() != netip.IPv6Loopback() || got.ecm.Source.Addr() != netip.IPv6Loopback() {
		t.Errorf("IPv6 request from %s, inner source %s", got.from, got.ecm.Source)
	}
	for _, want := range []string{fmt.Sprintf("Map-Reply from %s for 2001:db8:9::5/128", mr6.addr),
		"\n2001:db8:9::/48  15 min (15m)  Natively-Forward  no", "no locators (negative Map-Reply: Natively-Forward)"} {
		if !strings.Contains(out, want) {
			t.Errorf("IPv6 output lacks %q:\n%s", want, out)
		}
	}
}

func TestLookupUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"lookup"}, "takes one EID argument, got 0"},
		{[]string{"lookup", "10.1.1.1", "10.1.1.2", "--mr", "127.0.0.1"}, "takes one EID argument, got 2"},
		{[]string{"lookup", "10.1.1.1"}, "--mr ADDR is required"},
		{[]string{"lookup", "not-an-eid", "--mr", "127.0.0.1"}, `"not-an-eid" is not an EID or prefix`},
		{[]string{"lookup", "iid:5/10.1.1.1", "--iid", "6", "--mr", "127.0.0.1"}, "contradicts --iid 6"},
		{[]string{"lookup", "10.1.1.1", "--iid", "16777216", "--mr", "127.0.0.1"}, "--iid 16777216 out of range"},
		{[]string{"lookup", "::ffff:10.1.1.1", "--mr", "127.0.0.1"}, "IPv4-mapped"},
		{[]string{"lookup", "10.1.1.1", "--mr", "127.0.0.1", "--count", "0"}, "--count must be at least 1"},
		{[]string{"lookup", "10.1.1.1", "--mr", "127.0.0.1", "--retries", "-1"}, "--retries must be 0..100, not -1"},
		{[]string{"lookup", "10.1.1.1", "--mr", "127.0.0.1", "--retries", "101"}, "--retries must be 0..100, not 101"},
		{[]string{"lookup", "10.1.1.1", "--mr", "0.0.0.0"}, "--mr 0.0.0.0 is not a unicast address"},
		{[]string{"lookup", "10.1.1.1", "--mr", "[ff02::1]:4342"}, "--mr ff02::1 is not a unicast address"},
		{[]string{"lookup", "10.1.1.1", "--mr", "127.0.0.1", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"lookup", "10.1.1.1", "--mr", "127.0.0.1", "--source", "me"}, `--source "me" is not an IP address`},
		{[]string{"lookup", "10.1.1.1", "--mr", "127.0.0.1", "--source", "0.0.0.0"}, "not a unicast address"},
		{[]string{"lookup", "10.1.1.1", "--mr", "127.0.0.1", "--source", "::1"}, "different address families"},
		{[]string{"lookup", "10.1.1.1", "--mr", "127.0.0.1:99999"}, "bad port"},
		{[]string{"lookup", "10.1.1.1", "--mr", "127.0.0.1:0"}, "port 0"},
		{[]string{"lookup", "10.1.1.1", "--mr", ":4342"}, "no host"},
	} {
		out, errOut, code := execLispctl(t, nil, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.args, code, out, errOut, c.want)
		}
	}
}

func TestResolveMapResolver(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":          "192.0.2.1:4342",
		"192.0.2.1:4343":     "192.0.2.1:4343",
		"2001:db8::1":        "[2001:db8::1]:4342",
		"[2001:db8::1]":      "[2001:db8::1]:4342",
		"[2001:db8::1]:4000": "[2001:db8::1]:4000",
		"::ffff:192.0.2.1":   "192.0.2.1:4342",
		"localhost:4001":     "",
	} {
		got, err := resolveMapResolver(t.Context(), in, netip.MustParseAddr("127.0.0.1"))
		if want == "" { // a name: resolved through the system resolver
			if err != nil || !got.Addr().IsLoopback() || got.Port() != 4001 {
				t.Errorf("resolve %q = %v, %v; want a loopback address, port 4001", in, got, err)
			}
			continue
		}
		if err != nil || got.String() != want {
			t.Errorf("resolve %q = %v, %v; want %s", in, got, err, want)
		}
	}
}

func TestWriteLookupTextErrors(t *testing.T) {
	r := &lookupResult{Records: []recordView{viewRecord(ptr(lookupTestRecord()))}}
	if err := writeLookupText(failingWriter{}, r); err == nil {
		t.Error("a write error was not reported")
	}
	var buf bytes.Buffer
	if err := writeLookupText(&buf, r); err != nil || !strings.Contains(buf.String(), "192.0.2.31") {
		t.Errorf("%v\n%s", err, buf.String())
	}
}

func ptr[T any](v T) *T { return &v }

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }
