// Package compat puts a p2pnet host behind go-libp2p's core/host.Host,
// so libraries written against go-libp2p's core interfaces — gossipsub
// (go-libp2p-pubsub), the Kademlia DHT (go-libp2p-kad-dht) — run on
// p2pnet unmodified, and talk to plain go-libp2p hosts.
//
//	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/0.0.0.0/tcp/0"))
//	if err != nil { ... }
//	lh, err := compat.Wrap(h) // a go-libp2p host.Host; closing it closes h
//	if err != nil { ... }
//	defer lh.Close()
//	ps, err := pubsub.NewGossipSub(ctx, lh)
//	if err != nil { ... }
//	topic, err := ps.Join("news")
//	...
//
// Wrap adds no second network stack: streams, connections, the network
// and its notifications, the peerstore (addresses, keys, protocols,
// metadata, latency), the connection manager, the resource manager and
// the event bus are the p2pnet host's, seen through go-libp2p's
// interfaces. Values cross as follows: peer and protocol IDs are the
// same strings; keys go through their protobuf form; multiaddrs are the
// same values (both modules use github.com/multiformats/go-multiaddr);
// directions, connectedness, reachability and NAT types have the same
// numbers; errors keep errors.Is working against go-libp2p's sentinels
// (network.ErrReset, ErrNoConn, ErrLimitedConn, ErrNoRemoteAddrs,
// ErrResourceLimitExceeded, ErrResourceScopeClosed,
// peerstore.ErrNotFound) and against p2pnet's; a stream reset with a
// code becomes a *network.StreamError with that code; go-libp2p's
// network context options (WithNoDial, WithDialPeerTimeout,
// WithForceDirectDial, WithSimultaneousConnect, WithAllowLimitedConn)
// reach p2pnet's swarm (P2PNetContext). The host's events
// (peer connectedness, identification completed and failed, peer and
// local protocols, local addresses, reachability, NAT device type)
// arrive on EventBus subscriptions as go-libp2p's event types. The
// Libp2pXxx and P2PNetXxx functions convert each of these both ways.
//
// What is not supported fails loudly:
//   - Network().SetStreamHandler panics: the host routes inbound streams
//     by protocol itself; use Host.SetStreamHandler.
//   - Mux().Negotiate and Mux().Handle return an error matching
//     errors.ErrUnsupported: the host negotiates its own streams.
//   - EventBus().Subscribe(event.WildcardSubscription) and an Emitter for
//     one of the host's own event types return errors matching
//     errors.ErrUnsupported.
//   - Conn.CloseWithError with a code closes the connection but cannot
//     send the code, and says so in its error (errors.ErrUnsupported).
//
// And some things differ, by design:
//   - Events carry no signed peer record (SignedPeerRecord is nil), and
//     the peerstore is no CertifiedAddrBook: gossipsub's peer exchange
//     then passes addresses without records.
//   - go-libp2p's subscription options (eventbus.BufSize, eventbus.Name)
//     cannot be read outside go-libp2p's bus and are ignored; each
//     subscription buffers 256 events, and p2pnet's bus drops (and
//     counts) events for a subscriber that falls further behind, where
//     go-libp2p's would block the emitter. eventbus.Stateful is honoured.
//   - Peerstore().AddrStream sends the addresses known now and closes.
//   - Closing the peerstore, the connection manager or the resource
//     manager through their go-libp2p views does nothing (the host owns
//     and closes them); ConnManager().Notifee() is a no-op, since the
//     host's manager already watches the swarm.
//   - Stream.ResetWithError sends its code on streams whose multiplexer
//     can carry one; a stream from Host.NewStream whose protocol is
//     negotiated lazily is reset without the code.
//
// compat is a separate module (github.com/p2pnet/p2pnet/compat) so that
// the main module never imports go-libp2p. It may import the main
// module's packages, go-libp2p's core (and its event bus options, to
// recognise eventbus.Stateful) and quic-go (for QUIC reset codes).
package compat
