package event

import (
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// EvtPeerConnectednessChanged is emitted when our connectedness to a
// peer changes: its first connection opened (Connected), its last
// unlimited one closed while limited ones remain (Limited), or its last
// one closed (NotConnected).
type EvtPeerConnectednessChanged struct {
	Peer          peer.ID
	Connectedness network.Connectedness
}

// EvtPeerIdentificationCompleted is emitted when identify has learned
// what a peer tells about itself over a connection.
type EvtPeerIdentificationCompleted struct {
	Peer peer.ID
	// Conn is the connection identify ran on.
	Conn network.Conn
	// ListenAddrs are the addresses the peer says it listens on.
	ListenAddrs []ma.Multiaddr
	// Protocols are the protocols the peer says it serves.
	Protocols []protocol.ID
	// ProtocolVersion and AgentVersion are as the peer announced them.
	ProtocolVersion string
	AgentVersion    string
	// ObservedAddr is the address the peer sees us at, if it said.
	ObservedAddr ma.Multiaddr
}

// EvtPeerIdentificationFailed is emitted when identify failed on a
// connection to a peer.
type EvtPeerIdentificationFailed struct {
	Peer   peer.ID
	Reason error
}

// EvtPeerProtocolsUpdated is emitted when a peer we had identified
// announced a different set of protocols.
type EvtPeerProtocolsUpdated struct {
	Peer    peer.ID
	Added   []protocol.ID
	Removed []protocol.ID
}

// EvtLocalProtocolsUpdated is emitted when the host starts or stops
// serving protocols.
type EvtLocalProtocolsUpdated struct {
	Added   []protocol.ID
	Removed []protocol.ID
}

// AddrAction says what happened to one of our addresses.
type AddrAction int

// The actions of AddrAction.
const (
	// Unknown means the emitter did not compute what changed.
	Unknown AddrAction = iota
	// Added is a new address.
	Added
	// Maintained is an address we had before.
	Maintained
	// Removed is an address we no longer have.
	Removed
)

// UpdatedAddress is one of our addresses and what happened to it.
type UpdatedAddress struct {
	Address ma.Multiaddr
	Action  AddrAction
}

// EvtLocalAddressesUpdated is emitted when the addresses the host
// announces change. The host emits it statefully: a new subscriber gets
// the last one at once.
type EvtLocalAddressesUpdated struct {
	// Diffs says whether the actions of Current and Removed are filled.
	Diffs bool
	// Current lists every address we have now.
	Current []UpdatedAddress
	// Removed lists the addresses we no longer have.
	Removed []UpdatedAddress
}

// EvtLocalReachabilityChanged is emitted when what we know of our own
// reachability from the public internet changes.
type EvtLocalReachabilityChanged struct {
	Reachability network.Reachability
}

// EvtNATDeviceTypeChanged is emitted when we learn how the NAT in front
// of us maps ports, per transport protocol.
type EvtNATDeviceTypeChanged struct {
	TransportProtocol network.NATTransportProtocol
	NatDeviceType     network.NATDeviceType
}
