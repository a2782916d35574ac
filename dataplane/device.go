package dataplane

import (
	"net/netip"

	"github.com/lispd/lispd/wire"
)

// LISPDataPort is the well-known UDP port of encapsulated LISP data packets
// (RFC 9300 section 5.3).
const LISPDataPort = 4341

// Buffer layout constants. A packet buffer holds the packet at offset
// Headroom; everything in front of it is space for headers.
const (
	// Headroom is the space reserved in front of an inner packet: enough for
	// an outer IPv6 header, a UDP header and the LISP header (56 bytes), and
	// for the 10-byte virtio header a TUN device with offloads writes in
	// front of each packet.
	Headroom = 64
	// ConnOffset is the offset at which LISP datagrams are read from a Conn,
	// so that the inner packet lands at Headroom.
	ConnOffset = Headroom - wire.DataHeaderLen
	// OutOffset is the offset of the packet inside every slice a Batch puts
	// in its output lists (Out, Reply): write them with this offset. It is at
	// least the 10 bytes a TUN device with offloads needs.
	OutOffset = 16
	// DefaultBufferSize is the default size of one packet buffer: headroom
	// plus a 9000-byte jumbo packet, rounded up.
	DefaultBufferSize = Headroom + 9216
	// DefaultBatchSize is the default number of packets per batch, the same
	// as wireguard-go's IdealBatchSize.
	DefaultBatchSize = 128
)

// Device is the EID side of an xTR: a source and sink of inner IP packets,
// such as a TUN interface. Read and Write move up to len(bufs) packets per
// call. Implementations allow one Read and one Write to run at the same
// time.
type Device interface {
	// Read reads one or more packets into bufs, each starting at offset,
	// stores their lengths in sizes (len(sizes) >= len(bufs)) and returns
	// how many it read. It blocks until at least one packet is available or
	// the device is closed (then it returns ErrClosed or an error wrapping
	// os.ErrClosed).
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	// Write writes the packets bufs[i][offset:] and returns how many it
	// wrote. offset must be at least OutOffset for a TUN device. It never
	// blocks for long: a full queue drops (and counts) packets.
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize is the largest useful number of packets per call.
	BatchSize() int
	// MTU is the device's MTU: the largest inner packet it reads.
	MTU() (int, error)
	// Name is the interface name.
	Name() string
	// Close closes the device and unblocks Read.
	Close() error
}

// Meta is the per-datagram outer-header information a Conn reports on Read
// and honours on Write.
type Meta struct {
	// Addr is the remote RLOC and UDP port: the source of a received
	// datagram, the destination of one to send.
	Addr netip.AddrPort
	// TOS is the outer IPv4 Type of Service byte or IPv6 Traffic Class
	// (DSCP and ECN).
	TOS uint8
	// TTL is the outer TTL or hop limit. On Read, 0 means unknown (the
	// platform did not report it); on Write, 0 means the system default.
	TTL uint8
}

// Conn is the RLOC side of an xTR: a UDP endpoint (port 4341 for LISP data)
// that sends and receives datagrams in batches. Implementations allow one
// Read and one Write to run at the same time.
type Conn interface {
	// Read receives one or more datagrams into bufs[i][offset:], stores
	// their lengths in sizes and their outer metadata (source address, TOS,
	// TTL) in meta, and returns how many it received. A size of 0 marks a
	// slot to skip (a datagram that was dropped, for example because it was
	// larger than the buffer). It blocks until at least one datagram arrives
	// or the Conn is closed.
	Read(bufs [][]byte, sizes []int, meta []Meta, offset int) (n int, err error)
	// Write sends the datagrams bufs[i][offset:] to meta[i].Addr with
	// meta[i].TOS and TTL and returns how many were sent. A datagram that
	// cannot be sent is counted and skipped; the first such error is
	// returned after the rest of the batch was tried.
	Write(bufs [][]byte, meta []Meta, offset int) (int, error)
	// BatchSize is the largest useful number of datagrams per call.
	BatchSize() int
	// LocalAddr is the bound local address and port.
	LocalAddr() netip.AddrPort
	// Close closes the Conn and unblocks Read.
	Close() error
}
