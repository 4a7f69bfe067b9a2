package network

import (
	"context"
	"io"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// Conn is a secured, multiplexed connection to a remote peer. Streams are
// opened on it; most users never touch a Conn except to learn about the
// peer on the other side, as in stream.Conn().RemotePeer().
type Conn interface {
	io.Closer
	ConnSecurity
	ConnMultiaddrs
	ConnStat
	ConnScoper

	// ID returns an identifier unique to this connection within this
	// host for as long as the host runs.
	ID() string

	// NewStream opens a stream on this connection. On a limited
	// connection it fails with ErrLimitedConn unless ctx carries
	// WithAllowLimitedConn.
	NewStream(context.Context) (Stream, error)

	// GetStreams returns the streams open on this connection.
	GetStreams() []Stream

	// IsClosed reports whether the connection is fully closed.
	IsClosed() bool
}

// ConnSecurity is the part of a connection that knows who is on each end
// and how the connection was built.
type ConnSecurity interface {
	// LocalPeer returns our peer ID.
	LocalPeer() peer.ID

	// RemotePeer returns the peer ID the handshake authenticated.
	RemotePeer() peer.ID

	// RemotePublicKey returns the public key the remote peer proved it
	// holds.
	RemotePublicKey() ic.PubKey

	// ConnState describes the connection's transport, security protocol
	// and multiplexer.
	ConnState() ConnectionState
}

// ConnMultiaddrs is the part of a connection that knows its endpoints.
type ConnMultiaddrs interface {
	// LocalMultiaddr returns the local end's address.
	LocalMultiaddr() ma.Multiaddr

	// RemoteMultiaddr returns the remote end's address.
	RemoteMultiaddr() ma.Multiaddr
}

// ConnStat is the part of a connection that reports statistics.
type ConnStat interface {
	// Stat returns the connection's metadata.
	Stat() ConnStats
}

// ConnScoper is the part of a connection that exposes its resource scope.
type ConnScoper interface {
	// Scope returns the user's view of the connection's resource scope.
	Scope() ConnScope
}

// ConnectionState describes how a connection was built.
type ConnectionState struct {
	// StreamMultiplexer is the multiplexer, such as /yamux/1.0.0; empty
	// when the transport multiplexes by itself (QUIC).
	StreamMultiplexer protocol.ID
	// Security is the security protocol, such as /tls/1.0.0 or /noise.
	Security protocol.ID
	// Transport names the transport, such as "tcp" or "quic-v1".
	Transport string
	// UsedEarlyMuxerNegotiation is true when the multiplexer was agreed
	// inside the security handshake (TLS ALPN or Noise extensions) rather
	// than by a separate round of multistream-select.
	UsedEarlyMuxerNegotiation bool
}

// Stats is the metadata of a connection or stream.
type Stats struct {
	// Direction says which side opened the connection or stream.
	Direction Direction
	// Opened is when the connection or stream was opened.
	Opened time.Time
	// Limited is true for a limited connection, one limited in bytes or
	// time; in practice a connection through a circuit v2 relay.
	Limited bool
	// Extra holds additional metadata.
	Extra map[interface{}]interface{}
}

// ConnStats is the metadata of a connection.
type ConnStats struct {
	Stats
	// NumStreams is the number of streams open on the connection.
	NumStreams int
}
