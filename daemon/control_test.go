package daemon

import (
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/lispd/lispd/wire"
)

// TestSteeringProgram runs the socket steering program in a BPF
// interpreter over each kind of control message.
func TestSteeringProgram(t *testing.T) {
	vm, err := bpf.NewVM(steeringProgram(1))
	if err != nil {
		t.Fatal(err)
	}
	const sockRequests = 1
	reg := register(t, wire.AlgHMACSHA196, "key-a", 1, 0, "10.1.0.0/16", "192.0.2.1")
	ack, err := (&wire.MapNotifyAck{Nonce: 1, AlgorithmID: wire.AlgHMACSHA196}).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	itr4 := netip.MustParseAddrPort("192.0.2.9:61000")
	itr6 := netip.MustParseAddrPort("[2001:db8::9]:61000")
	regMsg, err := wire.Parse(reg)
	if err != nil {
		t.Fatal(err)
	}
	ecmReg4, err := wire.NewECM(itr4, netip.MustParseAddrPort("192.0.2.1:4342"), regMsg).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	ecmReg6, err := wire.NewECM(itr6, netip.MustParseAddrPort("[2001:db8::1]:4342"), regMsg).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	// An inner IPv4 header with options (IHL 6) before the Map-Register.
	ecmRegOpts := append(append(append([]byte(nil), ecmReg4[:4+20]...), 1, 1, 1, 0), ecmReg4[4+20:]...)
	ecmRegOpts[4] = 0x46
	reply, err := (&wire.MapReply{Nonce: 1}).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	plainReq, err := (&wire.MapRequest{Nonce: 1, ITRRLOCs: []wire.Address{wire.AddrFrom(itr4.Addr())}}).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		pkt  []byte
		want int
	}{
		{"Map-Register", reg, sockPriority},
		{"Map-Notify-Ack", ack, sockPriority},
		{"ECM Map-Register IPv4", ecmReg4, sockPriority},
		{"ECM Map-Register IPv6", ecmReg6, sockPriority},
		{"ECM Map-Register IPv4 options", ecmRegOpts, sockPriority},
		{"ECM Map-Request IPv4", mapRequest(t, itr4, 0, "10.1.2.3", 1), sockRequests},
		{"ECM Map-Request IPv6", mapRequest(t, itr6, 0, "2001:db8::5", 1), sockRequests},
		{"Map-Request", plainReq, sockRequests},
		{"Map-Reply", reply, sockRequests},
		{"truncated ECM", []byte{0x80, 0, 0, 0}, sockPriority},
		{"empty", nil, sockPriority},
	} {
		got, err := vm.Run(c.pkt)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: steered to socket %d, want %d", c.name, got, c.want)
		}
	}
}

// TestSteeringSpreadsRequests checks that requests are spread over the
// request sockets by the last byte of their nonce, plain or encapsulated
// in IPv4 (with or without options) or IPv6.
func TestSteeringSpreadsRequests(t *testing.T) {
	const sockets = 3
	vm, err := bpf.NewVM(steeringProgram(sockets))
	if err != nil {
		t.Fatal(err)
	}
	itr4 := netip.MustParseAddrPort("192.0.2.9:61000")
	itr6 := netip.MustParseAddrPort("[2001:db8::9]:61000")
	for nonce := uint64(0x1234500); nonce < 0x1234500+12; nonce++ {
		want := 1 + int(nonce&0xff)%sockets
		plain, err := (&wire.MapRequest{Nonce: nonce, ITRRLOCs: []wire.Address{wire.AddrFrom(itr4.Addr())}}).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		ecm4 := mapRequest(t, itr4, 0, "10.1.2.3", nonce)
		opts := append(append(append([]byte(nil), ecm4[:4+20]...), 1, 1, 1, 0), ecm4[4+20:]...)
		opts[4] = 0x46
		for name, pkt := range map[string][]byte{
			"plain":        plain,
			"ECM IPv4":     ecm4,
			"ECM options":  opts,
			"ECM IPv6":     mapRequest(t, itr6, 0, "2001:db8::5", nonce),
			"ECM IPv6 IID": mapRequest(t, itr6, 7, "2001:db8::5", nonce),
		} {
			got, err := vm.Run(pkt)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s with nonce %x: socket %d, want %d", name, nonce, got, want)
			}
		}
	}
}
