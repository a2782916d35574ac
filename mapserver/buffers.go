package mapserver

import (
	"net/netip"
	"sync"
)

const (
	// bufSize is the initial capacity of pooled send buffers: an Ethernet
	// MTU, which holds every reply but the largest Map-Notify.
	bufSize = 1500
	// maxPooledBuf is the largest buffer returned to the pool; bigger ones
	// (grown for a large Map-Notify) are left to the garbage collector.
	maxPooledBuf = 64 << 10
)

// bufPool holds send buffers (*[]byte, so that Put does not allocate).
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, bufSize)
	return &b
}}

// getBuf returns an empty pooled buffer.
func getBuf() *[]byte {
	bp := bufPool.Get().(*[]byte)
	*bp = (*bp)[:0]
	return bp
}

// putBuf returns a buffer to the pool. The caller stores the (possibly
// grown) slice in *bp first.
func putBuf(bp *[]byte) {
	if cap(*bp) > maxPooledBuf {
		return
	}
	bufPool.Put(bp)
}

// send hands a datagram to the Sender, counting failures.
func (s *Server) send(b []byte, to netip.AddrPort) {
	if err := s.out.Send(b, to); err != nil {
		s.ctr.inc(cSendErrors)
		s.warn("send failed", "to", to, "err", err)
	}
}
