// Package record implements libp2p signed envelopes (libp2p/specs RFC
// 0002) and peer records (RFC 0003). An [Envelope] carries a payload,
// its type and a signature over both, bound to a domain string so that
// a signature made for one purpose cannot be replayed for another. The
// circuit relay's reservation voucher and the routing state's
// [PeerRecord] travel in envelopes.
//
// Package record may import crypto and peer of p2pnet's, go-multiaddr,
// protowire and the standard library.
package record
