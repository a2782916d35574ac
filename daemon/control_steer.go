package daemon

import (
	"golang.org/x/net/bpf"
)

// Steering: registrations past a request flood, requests over the workers.
//
// Each control address is served by a group of UDP sockets bound to it
// with SO_REUSEPORT: the priority socket, which receives the Map-Registers
// and Map-Notify-Acks that keep registrations alive, and one or more
// request sockets, which receive everything else (Map-Requests, plain or
// encapsulated). A classic BPF program attached to the group
// (SO_ATTACH_REUSEPORT_CBPF) picks the socket of each datagram in the
// kernel, before it is queued: by the message type in its first four bits,
// and for a request by the last byte of its nonce, which spreads requests
// evenly over the request sockets (ITRs draw nonces at random) while
// keeping all the datagrams of a request on one.
//
// A flood of Map-Requests therefore fills only the request sockets'
// queues, where the kernel drops what does not fit (and counts it), while
// Map-Registers keep their own queue and reader: registrations cannot
// lapse because requests flood in. An Encapsulated Map-Register (type 8
// carrying type 3, as NAT traversal sends them) is steered to the priority
// socket too.
//
// The steering only decides priority and spreading, never correctness:
// every socket's reader handles every message type, and a datagram too
// short for the program to read goes to the priority socket, whose reader
// counts it as malformed like any other.

// sockPriority is the index of the priority socket in a reuseport group;
// the request sockets follow it, in the order they are bound.
const sockPriority = 0

// steeringProgram returns the classic BPF program that returns the index of
// the socket of a datagram, given its UDP payload, for a group with
// requestSockets request sockets.
func steeringProgram(requestSockets int) []bpf.Instruction {
	const (
		ecm    = 7  // the message is an ECM
		ecm6   = 16 // its inner header is not IPv4
		spread = 21 // A holds a nonce byte: pick a request socket
		first  = 24 // "ret #1": the first request socket
		prio   = 25 // "ret #0": the priority socket
	)
	// Offsets of the last byte of the nonce: in a Map-Request, and in one
	// encapsulated after the ECM header, the inner IPv4 header (in X) or
	// the IPv6 header, and the UDP header.
	const (
		nonceLast  = 11
		ecmV4Inner = 4 + 8      // + X
		ecmV6Inner = 4 + 40 + 8 // inner message
		ecmV4Nonce = ecmV4Inner + nonceLast
		ecmV6Nonce = ecmV6Inner + nonceLast
	)
	return []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 0, Size: 1}, // A = type and flags
		/* 1 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		/* 2 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 3, SkipTrue: prio - 3}, // Map-Register
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 5, SkipTrue: prio - 4}, // Map-Notify-Ack
		/* 4 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 8, SkipTrue: ecm - 5}, // ECM
		/* 5 */ bpf.LoadAbsolute{Off: nonceLast, Size: 1},
		/* 6 */ bpf.Jump{Skip: spread - 7},
		/* 7 */ bpf.LoadAbsolute{Off: 4, Size: 1}, // inner IP version
		/* 8 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		/* 9 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipFalse: ecm6 - 10},
		/* 10 */ bpf.LoadMemShift{Off: 4}, // X = inner IPv4 header length
		/* 11 */ bpf.LoadIndirect{Off: ecmV4Inner, Size: 1},
		/* 12 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		/* 13 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 3, SkipTrue: prio - 14},
		/* 14 */ bpf.LoadIndirect{Off: ecmV4Nonce, Size: 1},
		/* 15 */ bpf.Jump{Skip: spread - 16},
		/* 16 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: first - 17},
		/* 17 */ bpf.LoadAbsolute{Off: ecmV6Inner, Size: 1},
		/* 18 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},
		/* 19 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 3, SkipTrue: prio - 20},
		/* 20 */ bpf.LoadAbsolute{Off: ecmV6Nonce, Size: 1},
		/* 21 */ bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: uint32(max(requestSockets, 1))},
		/* 22 */ bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 1},
		/* 23 */ bpf.RetA{},
		/* 24 */ bpf.RetConstant{Val: 1},
		/* 25 */ bpf.RetConstant{Val: sockPriority},
	}
}
