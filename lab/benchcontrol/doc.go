// Package benchcontrol is the control-plane benchmark of the lab (`lisplab
// bench control`): it measures how many Map-Requests a lispd running as
// Map-Server and Map-Resolver answers, how fast it verifies Map-Registers,
// and how much memory its registration database takes.
//
// Run starts lispd as a separate process on 127.0.0.1 with two sites (one
// per HMAC algorithm, each a /9 of 10.0.0.0/8 with more-specifics and proxy
// replies allowed), registers /28 EID-prefixes with real, authenticated
// Map-Registers (32 records each, acknowledged by Map-Notify), then offers
// Encapsulated Map-Requests at stepped rates. Half of the requests ask for
// registered EIDs (proxy Map-Replies), a quarter for configured but
// unregistered EIDs and a quarter for EIDs in no site (negative Map-Replies).
//
// The generator is built to cost little: requests are stamped from
// pre-encoded templates (the nonce carries the step number and the send
// time, so latency needs no table), sent and received in batches
// (sendmmsg/recvmmsg on Linux) on one connected socket, with a separate
// receiver goroutine. It shares the machine with lispd; both processes' CPU
// use is reported (from /proc/PID/stat) so the sharing can be judged.
//
// # Publish/subscribe
//
// With Config.PubSubSubscribers or PubSubSubscriptions, lispd runs with
// pub/sub (RFC 9437) on and a third site (bench-pubsub, 192.168.0.0/24 only),
// and the bench plays the ITRs (pubsub.go): a subscription is an
// Encapsulated Map-Request with the N bit and an xTR-ID of its own; the
// confirmation, and every publication, is a Map-Notify signed with the
// pub/sub key, which the bench checks and acknowledges (the Map-Notify with
// type 5, signed again). The subscriptions of a phase share one socket, so
// one ITR-RLOC and port for all; their Map-Notifies are told apart by
// nonce (subscription k subscribes with base+k<<20, change j reaches it as
// that plus j). After the request steps:
//
//   - latency: PubSubSubscribers xTR-IDs subscribe to 192.168.0.0/24, then
//     its ETR changes the locator PubSubChanges times, one change at a time
//     (the next once lispd counted every ack of the last); per change, the
//     time from sending the Map-Register to the arrival of the first and of
//     the last subscriber's publication, from the kernel's receive
//     timestamps (SO_TIMESTAMPNS), so the receiver's own checking and
//     acknowledging does not count;
//   - memory: PubSubSubscriptions confirmed subscriptions of 1,000 xTR-IDs x
//     100 registered /28s (for 100,000), lispd's VmRSS read before and 2 s
//     after; the request steps again, with them in place; then as many
//     xTR-IDs with one /28 each. As lispd cannot be asked to collect its
//     garbage, the live heap per subscription is measured in this process
//     too, on package mapserver (pubsub_heap.go), with runtime.GC.
package benchcontrol
