package capture

import (
	"fmt"
	"net/netip"
)

// maxPendingDatagrams bounds how many partly reassembled datagrams a reader
// keeps.
const maxPendingDatagrams = 64

// maxUDPDatagram is the largest UDP datagram (header included) the 16-bit
// UDP length field can describe.
const maxUDPDatagram = 65535

// fragKey identifies the fragments of one datagram (RFC 791 section 3.2,
// RFC 8200 section 4.5). The protocol is always UDP here.
type fragKey struct {
	src, dst netip.Addr
	id       uint32
}

// fragBuf is a datagram being reassembled.
type fragBuf struct {
	first int    // frame number of the first fragment
	data  []byte // the IP payload so far, from the UDP header on
}

// reassembler rebuilds datagrams whose fragments come in order.
type reassembler struct {
	pending map[fragKey]*fragBuf
	order   []fragKey // keys in arrival order of their first fragment
}

func newReassembler() *reassembler {
	return &reassembler{pending: make(map[fragKey]*fragBuf)}
}

// add takes the fragment p, found in frame. When p completes a datagram, it
// returns the datagram's IP payload (from the UDP header on) and its first
// frame with done set. queued holds errors about other, abandoned
// datagrams; err is about p itself.
func (ra *reassembler) add(frame int, p ipInfo) (whole []byte, first int, done bool, queued []error, err error) {
	key := fragKey{src: p.src, dst: p.dst, id: p.id}
	if p.fragOff == 0 {
		if old, ok := ra.pending[key]; ok {
			queued = append(queued, &FrameError{Frame: old.first, Err: fmt.Errorf(
				"%w: datagram ID %#x restarted by frame %d before its last fragment", ErrFragment, p.id, frame)})
			ra.remove(key)
		}
		if len(ra.pending) >= maxPendingDatagrams {
			oldest := ra.order[0]
			queued = append(queued, &FrameError{Frame: ra.pending[oldest].first, Err: fmt.Errorf(
				"%w: more than %d datagrams pending reassembly, dropped the oldest", ErrFragment, maxPendingDatagrams)})
			ra.remove(oldest)
		}
		ra.pending[key] = &fragBuf{first: frame, data: append([]byte(nil), p.payload...)}
		ra.order = append(ra.order, key)
		return nil, 0, false, queued, nil
	}
	buf, ok := ra.pending[key]
	if !ok {
		return nil, 0, false, nil, fmt.Errorf("%w: offset %d of datagram ID %#x, whose first fragment is not in the capture before it",
			ErrFragment, p.fragOff, p.id)
	}
	if p.fragOff != len(buf.data) {
		ra.remove(key)
		return nil, 0, false, nil, fmt.Errorf("%w: offset %d of datagram ID %#x, expected %d (out of order or overlapping); dropped the datagram begun in frame %d",
			ErrFragment, p.fragOff, p.id, len(buf.data), buf.first)
	}
	if len(buf.data)+len(p.payload) > maxUDPDatagram {
		ra.remove(key)
		return nil, 0, false, nil, malformed("fragments of datagram ID %#x exceed %d bytes", p.id, maxUDPDatagram)
	}
	buf.data = append(buf.data, p.payload...)
	if p.more {
		return nil, 0, false, nil, nil
	}
	ra.remove(key)
	return buf.data, buf.first, true, nil, nil
}

// remove forgets a pending datagram.
func (ra *reassembler) remove(key fragKey) {
	delete(ra.pending, key)
	for i, k := range ra.order {
		if k == key {
			ra.order = append(ra.order[:i], ra.order[i+1:]...)
			break
		}
	}
}

// flush returns an error for every datagram still pending, in the order
// their first fragments arrived, and forgets them.
func (ra *reassembler) flush() []error {
	var errs []error
	for _, k := range ra.order {
		errs = append(errs, &FrameError{Frame: ra.pending[k].first, Err: fmt.Errorf(
			"%w: datagram ID %#x never completed (missing fragments)", ErrFragment, k.id)})
	}
	ra.pending = make(map[fragKey]*fragBuf)
	ra.order = nil
	return errs
}
