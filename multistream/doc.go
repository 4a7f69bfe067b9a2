// Package multistream implements multistream-select 1.0, the protocol two
// libp2p peers use to agree on what to speak over a connection or stream
// (https://github.com/libp2p/specs/blob/master/connections/README.md#protocol-negotiation
// and https://github.com/multiformats/multistream-select).
//
// Every message is an unsigned varint giving the message's length, then the
// message, whose last byte is '\n'. Both sides first send the header
// /multistream/1.0.0. The dialer then proposes protocol IDs one at a time;
// the listener echoes the first one it supports and answers "na" to the
// others. "ls" asks the listener for its protocols.
//
// The three roles are:
//
//   - [Router], the listener: handlers keyed by protocol ID, and
//     [Router.Negotiate] to answer a dialer.
//   - [SelectProtoOrFail] and [SelectOneOf], the dialer, which wait for the
//     listener's answer before returning.
//   - [LazyConn], a dialer that does not wait: the handshake goes out with
//     the first write and the answer is checked on the first read, so a
//     request costs one round trip.
//
// Negotiation never writes while the peer may be blocked writing something
// we have not read, so it works over unbuffered pipes (net.Pipe) too: each
// side writes once per round trip, after reading what it answers.
//
// Limits protect a listener from its dialer and the reverse: a message is at
// most [MaxMessageSize] bytes, and a listener refuses at most [MaxRounds]
// proposals. Bytes from the network never make this package panic or
// allocate by a length the peer claimed.
//
// Package multistream imports only the protocol package of p2pnet, and the
// standard library.
package multistream
