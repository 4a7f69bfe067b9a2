// Package relay implements circuit relay v2
// (https://github.com/libp2p/specs/blob/master/relay/circuit-v2.md): the
// wire messages of the hop (/libp2p/circuit/relay/0.2.0/hop) and stop
// (/libp2p/circuit/relay/0.2.0/stop) protocols, the signed reservation
// voucher, and the relay [Service].
//
// A [Service] grants reservations (TTL, caps per peer's IP and in
// total; a reservation lasts while its peer stays connected), and joins
// an initiator's hop stream to a stop stream it opens to a peer holding
// a reservation. Each circuit is limited in duration and in bytes per
// direction ([DefaultLimitDuration], [DefaultLimitData]); the limit is
// told to both ends. When a limit is reached the relay closes both
// streams for writing, so both ends read EOF, and then resets them.
// Reservations and circuits are accounted in the resource manager
// under the [ServiceName] service.
//
// The dialing and listening side lives in transport/circuit, which uses
// this package's messages.
//
// Package relay may import network, peer, peerstore, protocol, crypto
// and record of p2pnet's, go-multiaddr, protowire and the standard
// library. It never imports the host: it declares the [Host] it needs.
package relay
