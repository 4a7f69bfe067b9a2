// Package network is the contract of the libp2p network layer: the Network
// and Dialer that open and accept connections to peers, the Conns that
// carry multiplexed Streams, the ResourceManager and its DAG of scopes,
// notifications, dial options carried in a context, limited connections,
// dial ranking and DNS resolution of multiaddrs.
//
// Every identifier here has the name, signature, value and meaning of the
// libp2p network package, so code written against go-libp2p's contract
// compiles against this one. Where the libp2p documentation and libp2p's
// behaviour disagree, this package follows the behaviour and says so.
//
// The package declares; it does not implement. The swarm package is the
// Network, mux/yamux a Multiplexer, rcmgr a ResourceManager.
//
// It may import only the vocabulary packages: peer, crypto, protocol and
// peerstore.
package network
