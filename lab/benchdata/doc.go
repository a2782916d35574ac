// Package benchdata is the data-plane benchmark of the lab (`lisplab bench
// dataplane`): how many packets per second lispd carries from one host to
// another through an ITR and an ETR, against a baseline that moves the same
// packets over the same path with the same batching but no LISP processing.
//
// Run builds the two-site topology of lab/twosite in network namespaces
// (hostA -> xtrA -> RLOC network -> xtrB -> hostB) and, for each packet
// size, measures two ways of running the routers:
//
//   - lispd: the real lispd binary on xtrA (ITR) and xtrB (ETR), with the
//     TUN device lisp0, registered with a lispd Map-Server/Map-Resolver on
//     the ms node; packets are encapsulated in LISP (UDP 4341) by xtrA and
//     decapsulated by xtrB.
//   - relay: a dataplane.Relay in the same places (RunRelay, run by the
//     hidden `lisplab relay` command): the same TUN device and routes, the
//     same UDP sockets (recvmmsg/sendmmsg, GSO) and batch sizes, but each
//     packet is sent as it is, with no map-cache lookup, no LISP header and
//     no checks. It is the limit of this design on this machine.
//
// The traffic is one UDP flow: a sender in hostA's namespace writes
// datagrams of the chosen IP size in batches of 128 with sendmmsg (UDP GSO
// optionally) as fast as it can, and a receiver in hostB's namespace counts
// the datagrams that carry the measurement's tag. Both run in this process
// on sockets created inside the namespaces. After a warm-up (the ITR's
// first miss, ARP), the delivered packets are counted over a fixed
// duration; the result is delivered packets per second and bits per second
// (inner IP packets), the send rate and loss, and the CPU each router
// process used (percent of one core, from /proc/PID/stat) next to the whole
// machine's, because on a small machine the sender, both routers and the
// receiver share the same cores and the kernel's forwarding work is charged
// to whichever of them runs.
package benchdata
