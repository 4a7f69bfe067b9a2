package network

import (
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	"github.com/multiformats/go-multiaddr"
)

// The reservation priorities of ReserveMemory. A reservation of size bytes
// at priority prio in a scope whose memory limit is limit and whose use is
// used succeeds when
//
//	used + size <= (1+prio) * limit / 256
//
// which is what libp2p does. (libp2p's documentation describes the
// thresholds as utilisation levels of 40, 60 and 80 %; the rule above is
// the behaviour, and it gives 39.8 %, 59.8 % and 79.7 %.)
const (
	// ReservationPriorityLow succeeds while the scope would stay at or
	// below about 40 % of its memory limit.
	ReservationPriorityLow uint8 = 101
	// ReservationPriorityMedium succeeds while the scope would stay at or
	// below about 60 % of its memory limit.
	ReservationPriorityMedium uint8 = 152
	// ReservationPriorityHigh succeeds while the scope would stay at or
	// below about 80 % of its memory limit.
	ReservationPriorityHigh uint8 = 203
	// ReservationPriorityAlways succeeds whenever the memory fits in the
	// limit.
	ReservationPriorityAlways uint8 = 255
)

// ResourceManager accounts for and limits the resources of the network
// stack: memory, streams, connections and file descriptors.
//
// Resources are reserved in scopes that form a DAG:
//
//	System
//	  ├── Transient   (connections and streams not yet owned by a peer,
//	  │                protocol or service)
//	  ├── Service ──── Protocol ──── Peer ──── Connection
//	  │                                   └─── Stream
//	  └── (spans below any scope)
//
// A reservation is made in a scope and in every scope above it, or in
// none: when a limit refuses, nothing stays reserved and the error wraps
// ErrResourceLimitExceeded. A connection begins in the transient scope
// and moves to its peer's once the handshake names the peer; a stream
// begins under its peer and the transient scope and moves under its
// protocol (and service) once negotiated. Ending a scope (Done) releases
// everything it still holds.
//
// Services reserve memory by attaching streams to a service scope, or
// directly through ViewService; applications can reserve in any scope,
// usually inside a span that they end with Done.
type ResourceManager interface {
	ResourceScopeViewer

	// OpenConnection creates the scope of a new connection, not yet tied
	// to a peer and constrained by the transient scope. usefd says
	// whether the connection holds a file descriptor. The caller owns the
	// scope and must call Done on it.
	OpenConnection(dir Direction, usefd bool, endpoint multiaddr.Multiaddr) (ConnManagementScope, error)

	// OpenStream creates the scope of a new stream to p, not yet tied to a
	// protocol and constrained by the transient scope. The caller owns the
	// scope and must call Done on it.
	OpenStream(p peer.ID, dir Direction) (StreamManagementScope, error)

	// Close closes the resource manager.
	Close() error
}

// ResourceScopeViewer gives access to the top-level scopes. Each View
// method calls f with the scope, holding the scope alive during the call.
type ResourceScopeViewer interface {
	// ViewSystem views the system scope, which accounts for everything
	// and holds the global limits.
	ViewSystem(func(ResourceScope) error) error
	// ViewTransient views the transient scope, which accounts for
	// connections and streams still being established: a connection
	// before its handshake, a stream before its protocol is negotiated.
	ViewTransient(func(ResourceScope) error) error
	// ViewService views a service's scope.
	ViewService(string, func(ServiceScope) error) error
	// ViewProtocol views a protocol's scope.
	ViewProtocol(protocol.ID, func(ProtocolScope) error) error
	// ViewPeer views a peer's scope.
	ViewPeer(peer.ID, func(PeerScope) error) error
}

// ResourceScope is what every scope can do.
type ResourceScope interface {
	// ReserveMemory reserves size bytes at priority prio (see the
	// ReservationPriority constants). On error nothing was reserved.
	ReserveMemory(size int, prio uint8) error

	// ReleaseMemory releases memory reserved with ReserveMemory.
	ReleaseMemory(size int)

	// Stat returns the scope's current use.
	Stat() ScopeStat

	// BeginSpan creates a span: a scope below this one whose
	// reservations are released together when it ends.
	BeginSpan() (ResourceScopeSpan, error)
}

// ResourceScopeSpan is a scope with an end. Done releases everything the
// span and its own spans still hold; calling it again does nothing.
//
//	s, err := scope.BeginSpan()
//	if err != nil { ... }
//	defer s.Done()
//	if err := s.ReserveMemory(n, network.ReservationPriorityMedium); err != nil { ... }
type ResourceScopeSpan interface {
	ResourceScope
	// Done ends the span and releases what it holds.
	Done()
}

// ServiceScope is a service's scope.
type ServiceScope interface {
	ResourceScope
	// Name returns the service's name.
	Name() string
}

// ProtocolScope is a protocol's scope.
type ProtocolScope interface {
	ResourceScope
	// Protocol returns the protocol.
	Protocol() protocol.ID
}

// PeerScope is a peer's scope.
type PeerScope interface {
	ResourceScope
	// Peer returns the peer.
	Peer() peer.ID
}

// ConnScope is the user's view of a connection's scope.
type ConnScope interface {
	ResourceScope
}

// ConnManagementScope is the owner's view of a connection's scope, held by
// the transport and upgrader that create the connection.
type ConnManagementScope interface {
	ResourceScopeSpan
	// PeerScope returns the scope of the connection's peer, or nil before
	// SetPeer.
	PeerScope() PeerScope
	// SetPeer moves the connection from the transient scope to the peer's
	// scope. It fails, leaving the connection where it was, when the
	// peer's limits refuse the connection.
	SetPeer(peer.ID) error
}

// StreamScope is the user's view of a stream's scope.
type StreamScope interface {
	ResourceScope
	// SetService attaches the stream to a service, so that what it
	// reserves counts against the service's limits too.
	SetService(srv string) error
}

// StreamManagementScope is the owner's view of a stream's scope, held by
// the swarm that creates the stream.
type StreamManagementScope interface {
	ResourceScopeSpan
	// ProtocolScope returns the scope of the stream's protocol, or nil
	// before SetProtocol.
	ProtocolScope() ProtocolScope
	// SetProtocol moves the stream from the transient scope to the
	// protocol's scope.
	SetProtocol(proto protocol.ID) error
	// ServiceScope returns the scope of the stream's service, or nil.
	ServiceScope() ServiceScope
	// SetService attaches the stream to a service.
	SetService(srv string) error
	// PeerScope returns the scope of the stream's peer.
	PeerScope() PeerScope
}

// ScopeStat is the use of a scope.
type ScopeStat struct {
	NumStreamsInbound  int
	NumStreamsOutbound int
	NumConnsInbound    int
	NumConnsOutbound   int
	NumFD              int

	Memory int64
}
