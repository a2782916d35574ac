package mapserver

import (
	"net/netip"
	"sync"
)

// parserPool holds the fast path's parser state for HandlePacket.
var parserPool = sync.Pool{New: func() any { return new(requestParser) }}

// Worker handles the datagrams of one goroutine. It keeps the parsing state
// of the request path between calls, so that a steady flow of Map-Requests
// allocates nothing, and sends what the datagrams call for (Map-Replies,
// forwarded requests, Map-Notify acknowledgments) through its own Sender:
// the daemon gives each of its socket readers a Worker whose Sender queues
// the datagrams for one batched send. Timers (registration expiry,
// Map-Notify retransmission) and unsolicited Map-Notify messages still go
// through the Server's Sender.
//
// A Worker is not safe for concurrent use; a Server may have any number.
type Worker struct {
	s   *Server
	out Sender
	p   requestParser
}

// NewWorker returns a Worker of s that sends through out (nil means the
// Server's Sender).
func (s *Server) NewWorker(out Sender) *Worker {
	if out == nil {
		out = s.out
	}
	return &Worker{s: s, out: out}
}

// HandlePacket is Server.HandlePacket through the Worker's state and
// Sender.
func (w *Worker) HandlePacket(pkt []byte, from netip.AddrPort, local netip.Addr) {
	w.s.handle(&w.p, w.out, pkt, from, local)
}
