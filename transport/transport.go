// Package transport declares what the swarm needs of a transport: dial
// and listen on multiaddrs, producing connections that are already
// secured and multiplexed (CapableConns). Its implementations are
// transport/tcp, which builds on the upgrader, and, later, QUIC, which
// secures and multiplexes by itself.
//
// It may import network and the vocabulary packages.
package transport

import (
	"context"
	"net"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// CapableConn is a connection ready for streams: authenticated, encrypted
// and multiplexed. The swarm wraps it into a network.Conn.
type CapableConn interface {
	network.MuxedConn
	network.ConnSecurity
	network.ConnMultiaddrs
	network.ConnScoper
}

// Transport dials and listens on one kind of address.
type Transport interface {
	// Dial connects to p at raddr and returns the upgraded connection.
	// The remote must prove it is p.
	Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (CapableConn, error)

	// CanDial reports whether the transport can dial addr as it is (DNS
	// names must have been resolved).
	CanDial(addr ma.Multiaddr) bool

	// Listen listens on laddr.
	Listen(laddr ma.Multiaddr) (Listener, error)

	// Protocols returns the multiaddr protocol codes the transport
	// handles, such as ma.P_TCP.
	Protocols() []int

	// Close stops the transport's shared resources (listeners are closed
	// by their owners).
	Close() error
}

// Listener accepts upgraded connections.
type Listener interface {
	// Accept waits for the next upgraded inbound connection. It fails with
	// an error wrapping net.ErrClosed once the listener is closed.
	Accept() (CapableConn, error)

	// Close stops listening; connections already accepted stay open.
	Close() error

	// Addr returns the listening socket's address.
	Addr() net.Addr

	// Multiaddr returns the address listened on, with the actual port.
	Multiaddr() ma.Multiaddr
}

// NameKeeper is a transport whose dials need the DNS name an address
// was given with after the swarm has resolved it: WebSocket over TLS
// checks the server's certificate against it. The swarm passes an address
// with a /dns, /dns4 or /dns6 name to its transport's KeepName before
// resolving it, and resolves the address KeepName returns (which carries
// the name in a component the resolution keeps, such as /sni).
type NameKeeper interface {
	KeepName(addr ma.Multiaddr) ma.Multiaddr
}

// HandshakeTracer observes connection handshakes, for metrics (package
// metrics implements it): the security handshake and the muxer's
// negotiation of a TCP or WebSocket connection, the QUIC handshake. Its
// method runs on the handshake's goroutine and must not block.
type HandshakeTracer interface {
	// Handshake follows each handshake: its direction, the transport's
	// name ("tcp", "quic-v1", …), how long it took from the connection's
	// first byte or packet, and why it failed (nil when it did not).
	Handshake(dir network.Direction, transport string, d time.Duration, err error)
}
