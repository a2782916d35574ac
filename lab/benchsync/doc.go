// Package benchsync is the synchronization-set benchmark of the lab
// (`lisplab bench sync`). It runs members of a set (package cachesync) in
// this process, each with its own map-cache, talking over real loopback
// sockets (TLS 1.3 over TCP for naive and smart, memberlist's UDP and TCP
// for gossip), and measures what the issue asks the modes to be compared
// on:
//
//   - Cost per new mapping: the records and bytes the whole set sends when
//     one member learns one mapping, with 2 members whose caches already
//     hold 10, 1,000 or 100,000 shared records. Bytes are counted as frame
//     payload and as wire bytes (TLS records; for gossip all of
//     memberlist's traffic during the measurement, membership included).
//   - Delay: from the Map-Reply insert on one member to the record being
//     usable on another (the insert on the receiver, seen on its change
//     feed), p50 and p99, 2 members, one mapping at a time.
//   - Gossip at scale: 16 members, the time until all hold a new mapping
//     (p50, p99, max over the mappings) and the bytes each member sends,
//     per mapping and per second of idle membership traffic.
//
// The caches are pre-filled identically on every member (as a set that is
// already in step), with records that do not expire during the run, so
// that only the new mappings are measured. Gossip uses memberlist's LAN
// defaults unless told otherwise (a 200 ms gossip interval dominates its
// delay).
package benchsync
