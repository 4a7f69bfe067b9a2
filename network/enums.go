package network

import "strconv"

// Direction says which side opened a connection or stream.
type Direction int

// The directions. DirUnknown is the zero value.
const (
	// DirUnknown is used when the direction is not known.
	DirUnknown Direction = iota
	// DirInbound is a connection or stream the remote peer opened.
	DirInbound
	// DirOutbound is a connection or stream this side opened.
	DirOutbound
)

func (d Direction) String() string {
	switch d {
	case DirUnknown:
		return "Unknown"
	case DirInbound:
		return "Inbound"
	case DirOutbound:
		return "Outbound"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// Connectedness says how connected we are to a peer.
type Connectedness int

// The values are libp2p's, in libp2p's order.
const (
	// NotConnected means there is no connection to the peer and nothing
	// else is known. It is the zero value.
	NotConnected Connectedness = iota
	// Connected means at least one live, unlimited connection to the peer
	// exists.
	Connected
	// CanConnect means the peer was connected recently and the connection
	// ended gracefully.
	//
	// Deprecated: libp2p no longer reports it; neither does p2pnet.
	CanConnect
	// CannotConnect means a recent attempt to connect failed.
	//
	// Deprecated: libp2p no longer reports it; neither does p2pnet.
	CannotConnect
	// Limited means the only connections to the peer are limited ones,
	// such as relayed connections.
	Limited
)

func (c Connectedness) String() string {
	switch c {
	case NotConnected:
		return "NotConnected"
	case Connected:
		return "Connected"
	case CanConnect:
		return "CanConnect"
	case CannotConnect:
		return "CannotConnect"
	case Limited:
		return "Limited"
	}
	return "Connectedness(" + strconv.Itoa(int(c)) + ")"
}

// Reachability says whether this node can be reached from the public
// internet.
type Reachability int

// The reachabilities.
const (
	// ReachabilityUnknown means reachability is not known yet.
	ReachabilityUnknown Reachability = iota
	// ReachabilityPublic means the node can be reached from the public
	// internet.
	ReachabilityPublic
	// ReachabilityPrivate means the node cannot be reached from the public
	// internet directly; it may still be reachable through relays.
	ReachabilityPrivate
)

func (r Reachability) String() string {
	switch r {
	case ReachabilityUnknown:
		return "Unknown"
	case ReachabilityPublic:
		return "Public"
	case ReachabilityPrivate:
		return "Private"
	}
	return "Reachability(" + strconv.Itoa(int(r)) + ")"
}

// NATDeviceType is the kind of NAT device in front of this node.
type NATDeviceType int

// The NAT device types.
const (
	// NATDeviceTypeUnknown means the kind of NAT is not known.
	NATDeviceTypeUnknown NATDeviceType = iota
	// NATDeviceTypeCone is a NAT that maps every outgoing connection from
	// one source address and port to the same external address and port,
	// whatever the destination (full, restricted or port-restricted cone
	// in RFC 3489's terms). Hole punching can work when both peers are
	// behind cone NATs.
	NATDeviceTypeCone
	// NATDeviceTypeSymmetric is a NAT that maps connections to different
	// destinations to different external addresses or ports. Hole
	// punching does not work through it.
	NATDeviceTypeSymmetric
)

func (r NATDeviceType) String() string {
	switch r {
	case NATDeviceTypeUnknown:
		return "Unknown"
	case NATDeviceTypeCone:
		return "Cone"
	case NATDeviceTypeSymmetric:
		return "Symmetric"
	}
	return "NATDeviceType(" + strconv.Itoa(int(r)) + ")"
}

// NATTransportProtocol is the transport protocol a NATDeviceType was
// found for.
type NATTransportProtocol int

// The transport protocols.
const (
	// NATTransportUDP means the NAT type was found for UDP.
	NATTransportUDP NATTransportProtocol = iota
	// NATTransportTCP means the NAT type was found for TCP.
	NATTransportTCP
)

func (n NATTransportProtocol) String() string {
	switch n {
	case NATTransportUDP:
		return "UDP"
	case NATTransportTCP:
		return "TCP"
	}
	return "NATTransportProtocol(" + strconv.Itoa(int(n)) + ")"
}
