// Package connmgr keeps a host's connections in check and lets an
// application veto them.
//
// A [Manager] keeps the number of open connections between two
// watermarks: when more than the high watermark are open (or the
// resource manager is nearly full, see [WithResourceUsage]), a
// background loop closes the connections of the least valuable peers
// until the low watermark is reached. Peers earn value through tags
// ([Manager.TagPeer], [Manager.UpsertTag]) and decaying tags
// ([Manager.RegisterDecayingTag]); protected peers ([Manager.Protect])
// and peers still in their grace period are never closed. The method
// names and meanings follow go-libp2p's core/connmgr.ConnManager, so
// that applications written for it feel at home.
//
// A [ConnectionGater] is asked at five points of a connection's life
// whether it may go on; the swarm and the upgrader ask it, and a refusal
// is a [*GatedError] that names the hook and matches [ErrGated].
// [BlockList] is a ready gater that blocks peers, addresses and subnets.
//
// Package connmgr may import network, peer, crypto, protocol and
// peerstore of p2pnet's, go-multiaddr and the standard library, so that
// the swarm and the upgrader can import it. It never imports the
// resource manager: it declares the [ResourceUsage] it needs.
package connmgr
