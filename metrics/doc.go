// Package metrics exports what a p2pnet host does to Prometheus: the
// swarm's connections, dials and streams; identify, ping, perf, the relay
// service, hole punching, AutoNAT reachability, the connection manager,
// the event bus and the resource manager.
//
// The mechanisms know nothing of Prometheus: each declares a small tracer
// interface (swarm.Tracer, identify.Tracer, ping.Tracer, perf.Tracer,
// relay.Tracer) that is nil unless set, and this package implements them
// with client_golang. What mechanisms already count (hole punching's
// Stats, the connection manager's, the event bus's drops, the resource
// manager's Summary and Snapshot) is read at scrape time by collectors,
// at no cost between scrapes. Users turn it all on with the host option
// p2pnet.PrometheusRegisterer; nothing here runs otherwise.
//
// Label values are bounded: no peer IDs, no addresses, and a protocol
// label is a protocol ID only when it is one of libp2p's well-known
// protocols or one the host serves; any other protocol is "other".
//
// Package metrics may import the mechanisms (swarm, connmgr, event,
// rcmgr, rcmgr/rcmgrprom, proto/...), the vocabulary and network
// packages, client_golang and the standard library. Only the host imports
// it.
package metrics
