// Package swarm is p2pnet's network.Network: it listens on and dials
// addresses through the registered transports, keeps the resulting
// connections to peers, opens and accepts streams on them, and tells
// notifiees about listeners and connections.
//
// A Swarm is built with New and given transports with AddTransport. It
// dials a peer with one dial worker per peer, shared by every concurrent
// caller; the worker tries the peer's addresses in the order and at the
// pace a DialRanker sets (DefaultDialRanker unless configured), within a
// per-peer and a global limit on concurrent dials, and remembers failed
// addresses in a backoff. Dials to public UDP and IPv6 addresses feed a
// black-hole detector: when the last 100 of a kind brought fewer than 5
// successes, that kind is skipped except for one probe in 100, so a node
// without working UDP or IPv6 stops wasting dials on them. Each connection has exactly one goroutine of the
// swarm: the loop that accepts the remote's streams and hands each to the
// stream handler. The swarm does not negotiate protocols; the handler set
// with SetStreamHandler (in p2pnet, the host's) does.
//
// It may import network, transport, connmgr, peer, peerstore, protocol, crypto,
// go-multiaddr and the standard library; never a concrete transport,
// security protocol, multiplexer or the upgrader.
package swarm
