// Package flood holds no code, only tests and benchmarks of a whole p2pnet
// host under attack.
//
// Its tests run a real host listening on loopback and flood it from one
// misbehaving peer: connections past the per-peer limit, streams past the
// per-peer limit on one connection (answered, or stalled in protocol
// negotiation), streams asking for more memory than the peer may hold,
// and TCP connections that never finish their handshake. Each checks that
// the resource manager refuses what exceeds the configured limits (and
// counts the refusals), that the host's accounting and heap stay within
// bounds, that nothing leaks, and that a second, well-behaved peer
// connects, pings and transfers data both during the flood and after it.
// The benchmarks compare the host's throughput and stream opening with the
// default resource manager and with none.
//
// Sitting above the host, the package may import anything in the module.
package flood
