// Package dataplane is the packet path of the lispd xTR (RFC 9300): LISP
// encapsulation and decapsulation, flow hashing, MTU handling, and batched
// packet I/O on the two sides of an xTR.
//
// # The two sides
//
// The EID side is a [Device]: a TUN interface on Linux ([CreateTUN], built on
// golang.zx2c4.com/wireguard/tun with its segmentation offloads) or one end of
// an in-memory pair ([NewMemDevicePair]). The RLOC side is a [Conn]: a UDP
// socket on port 4341 ([ListenUDP], recvmmsg/sendmmsg with UDP GSO where the
// kernel has it) or an endpoint of an in-memory network ([MemNetwork]). Both
// interfaces move slices of packets per call, in the style of wireguard-go, so
// one system call carries a whole batch.
//
// # Buffers and headroom
//
// Every packet buffer reserves [Headroom] bytes in front of the packet so that
// headers are prepended in place, never copied: a packet read from a Device at
// offset Headroom is encapsulated by writing the 8-byte LISP header (and, on
// the raw path, the outer IP and UDP headers) into the headroom. A datagram
// read from a Conn at offset [ConnOffset] has its inner packet at Headroom, so
// decapsulation is a re-slice. A [Batch] owns the buffers of one
// read-process-write cycle and the output lists that point into them; it is
// reused, so the steady state allocates nothing.
//
// # Encapsulation and decapsulation
//
// An [Encapsulator] turns inner packets into LISP packets for a [Tunnel] that
// the ITR chose (the map-cache lookup and the RLOC choice are the caller's,
// passed in as a [LookupFunc]; [FlowHash] gives the per-flow hash to spread
// flows over RLOCs by weight). It enforces the path MTU as RFC 9300 section 7.1
// describes (fragment IPv4 without DF before encapsulation, otherwise answer
// with ICMP "fragmentation needed" / ICMPv6 "packet too big"). A
// [Decapsulator] checks the LISP header, the inner IP header and the
// instance-ID, and delivers only packets for the ETR's own EID prefixes (an
// [EIDSet], swapped atomically) that do not claim to come from them. With a
// decapsulation filter (an [RLOCSet], swapped atomically) it accepts only
// datagrams whose outer source is in the set; it drops LISP-crypto packets
// (RFC 8061: K bits set), whose payload it cannot decrypt. Both count every
// outcome by a stable reason.
//
// When the outer IP and UDP headers are written by the kernel (a UDP socket),
// the outer UDP source port is the socket's; the per-flow source port that
// RFC 9300 section 12 suggests is computed ([SourcePort]) and used by the full
// outer-header builder ([PrependOuter]) for raw sockets, captures and tests.
//
// # Concurrency
//
// An Encapsulator and a Batch belong to one goroutine at a time; a
// Decapsulator and an EIDSet may be shared. Counters are atomic and may be read
// from any goroutine. Device and Conn implementations allow one concurrent
// reader and one concurrent writer.
package dataplane
