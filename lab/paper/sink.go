package paper

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/lispd/lispd/lab/traffic"
)

// lispDataHeader is the length of the LISP data header (RFC 9300
// section 5.1) between the UDP header and the inner packet.
const lispDataHeader = 8

// rlocSink stands in, after a crash, for the dead router's LISP data port
// (UDP 4341 on its RLOC): it receives what remote ITRs still encapsulate
// to it and records each echo reply in the ledger as dropped at the failed
// router, as a capture on its RLOC interface would (in the netns lab, a
// sniffer on ITR1's RLOC interface does the same). It answers nothing.
type rlocSink struct {
	conn *net.UDPConn
	wg   sync.WaitGroup
}

// newRLOCSink binds rloc's port 4341 and records what arrives as dropped
// by router.
func newRLOCSink(rloc netip.Addr, router string, led *traffic.Ledger) (*rlocSink, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(rloc, 4341)))
	if err != nil {
		return nil, fmt.Errorf("paper: listening in place of the crashed %s: %w", router, err)
	}
	s := &rlocSink{conn: conn}
	s.wg.Add(1)
	go func() { // RoutineRLOCSink
		defer s.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			recordEncapsulated(buf[:n], router, led, time.Now())
		}
	}()
	return s, nil
}

// recordEncapsulated records a LISP data packet's inner echo reply (the
// UDP payload: LISP header, then the inner IPv4 packet) as dropped at
// router.
func recordEncapsulated(payload []byte, router string, led *traffic.Ledger, at time.Time) {
	if len(payload) <= lispDataHeader {
		return
	}
	inner := payload[lispDataHeader:]
	if e, err := traffic.ParseEcho(inner); err == nil && e.Type == traffic.EchoReply {
		_ = led.ReplyOut(inner, router, true, at)
	}
}

func (s *rlocSink) close() {
	_ = s.conn.Close()
	s.wg.Wait()
}
