//go:build linux

package benchdata

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lispd/lispd/dataplane"
	"github.com/lispd/lispd/lab/netns"
)

// headerBytes are the IPv4 and UDP headers in front of a datagram's
// payload: a packet of size s carries s-headerBytes bytes of payload.
const headerBytes = 28

// magic starts every payload, followed by the measurement's tag.
const magic = 0x4c425044 // "LBPD"

// batchSize is the datagrams per sendmmsg/recvmmsg call.
const batchSize = 128

// maxSendErrors is how many failed sends in a row stop the sender.
const maxSendErrors = 10000

// sender blasts UDP datagrams from a socket in the sender's namespace.
type sender struct {
	conn *dataplane.UDPConn
	dst  netip.AddrPort
	sent atomic.Uint64
	// rate is the datagrams per second RoutineSender paces itself to;
	// 0 means as fast as it can.
	rate atomic.Uint64

	mu   sync.Mutex // guards stop, done and err
	stop chan struct{}
	done chan struct{}
	err  error
}

// newSender opens the sender's socket at src inside node.
func newSender(node *netns.Node, src, dst netip.AddrPort, gso bool) (*sender, error) {
	var conn *dataplane.UDPConn
	err := node.Do(func() error {
		var err error
		conn, err = dataplane.ListenUDP(dataplane.UDPConfig{Addr: src, DisableGSO: !gso})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("benchdata: sender socket in %s: %w", node, err)
	}
	return &sender{conn: conn, dst: dst}, nil
}

// start starts RoutineSender sending datagrams of IP size size carrying
// tag.
func (s *sender) start(size int, tag uint32) {
	bufs := make([][]byte, batchSize)
	meta := make([]dataplane.Meta, batchSize)
	for i := range bufs {
		b := make([]byte, dataplane.OutOffset+size-headerBytes)
		binary.BigEndian.PutUint32(b[dataplane.OutOffset:], magic)
		binary.BigEndian.PutUint32(b[dataplane.OutOffset+4:], tag)
		bufs[i] = b
		meta[i] = dataplane.Meta{Addr: s.dst}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.stop, s.done, s.err = stop, done, nil
	s.mu.Unlock()
	go func() { // RoutineSender
		defer close(done)
		errs := 0
		var (
			pace     uint64    // the rate in force
			since    time.Time // when it came into force
			paceSent uint64    // datagrams sent since
		)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if r := s.rate.Load(); r != pace {
				pace, since, paceSent = r, time.Now(), 0
			}
			if pace > 0 {
				allowed := uint64(time.Since(since).Seconds() * float64(pace))
				if paceSent >= allowed {
					ahead := time.Duration(float64(paceSent-allowed+1) / float64(pace) * float64(time.Second))
					time.Sleep(min(ahead, time.Millisecond))
					continue
				}
			}
			n, err := s.conn.Write(bufs, meta, dataplane.OutOffset)
			s.sent.Add(uint64(n))
			paceSent += uint64(n)
			if err == nil || n > 0 {
				errs = 0
				continue
			}
			if errors.Is(err, dataplane.ErrClosed) {
				return
			}
			if errs++; errs > maxSendErrors {
				s.mu.Lock()
				s.err = fmt.Errorf("benchdata: sender: %w", err)
				s.mu.Unlock()
				return
			}
		}
	}()
}

// halt stops RoutineSender and returns why it stopped early, if it did.
func (s *sender) halt() error {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop = nil
	s.mu.Unlock()
	if stop == nil {
		return nil
	}
	close(stop)
	<-done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// failed returns the sender's error once it gave up.
func (s *sender) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// close stops the sender and closes its socket.
func (s *sender) close() {
	_ = s.halt()
	_ = s.conn.Close()
}

// receiver counts the datagrams of the current measurement arriving at a
// socket in the receiver's namespace.
type receiver struct {
	conn  *dataplane.UDPConn
	want  atomic.Uint64 // tag<<32 | payload length
	count atomic.Uint64
	other atomic.Uint64 // datagrams of another measurement or size
	done  chan struct{}
}

// newReceiver opens the receiver's socket at addr inside node and starts
// RoutineReceiver.
func newReceiver(node *netns.Node, addr netip.AddrPort) (*receiver, error) {
	var conn *dataplane.UDPConn
	err := node.Do(func() error {
		var err error
		conn, err = dataplane.ListenUDP(dataplane.UDPConfig{Addr: addr})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("benchdata: receiver socket in %s: %w", node, err)
	}
	r := &receiver{conn: conn, done: make(chan struct{})}
	go r.routineReceiver() // RoutineReceiver
	return r, nil
}

// expect makes the receiver count datagrams of IP size size carrying tag,
// from zero.
func (r *receiver) expect(size int, tag uint32) {
	r.want.Store(uint64(tag)<<32 | uint64(size-headerBytes))
	r.count.Store(0)
}

func (r *receiver) routineReceiver() {
	defer close(r.done)
	bufs := make([][]byte, batchSize)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes := make([]int, batchSize)
	meta := make([]dataplane.Meta, batchSize)
	errs := 0
	for {
		n, err := r.conn.Read(bufs, sizes, meta, 0)
		if err != nil {
			if errors.Is(err, dataplane.ErrClosed) || errs > maxSendErrors {
				return
			}
			errs++
			continue // a transient error (the socket's error queue)
		}
		errs = 0
		want := r.want.Load()
		var mine, other uint64
		for i := range n {
			b := bufs[i][:sizes[i]]
			if sizes[i] >= 8 && binary.BigEndian.Uint32(b) == magic &&
				uint64(binary.BigEndian.Uint32(b[4:]))<<32|uint64(sizes[i]) == want {
				mine++
			} else {
				other++
			}
		}
		r.count.Add(mine)
		r.other.Add(other)
	}
}

// close closes the socket and waits for RoutineReceiver.
func (r *receiver) close() {
	_ = r.conn.Close()
	<-r.done
}
