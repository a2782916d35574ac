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
package benchcontrol
