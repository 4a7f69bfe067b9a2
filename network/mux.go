package network

import (
	"context"
	"io"
	"net"
)

// Multiplexer turns a secured net.Conn into a MuxedConn carrying many
// streams.
type Multiplexer interface {
	// NewConn wraps c. isServer tells which side of the multiplexer
	// protocol this end plays (for yamux, who uses even stream IDs).
	// Buffers and windows are reserved in scope, which may be nil.
	NewConn(c net.Conn, isServer bool, scope PeerScope) (MuxedConn, error)
}

// MuxedConn is a connection that carries many independent bidirectional
// streams.
type MuxedConn interface {
	// Close closes the multiplexer and the underlying connection; open
	// streams fail.
	io.Closer

	// IsClosed reports whether the connection is fully closed.
	IsClosed() bool

	// OpenStream opens a stream to the remote side.
	OpenStream(context.Context) (MuxedStream, error)

	// AcceptStream waits for the next stream the remote side opens. It
	// fails once the connection is closed.
	AcceptStream() (MuxedStream, error)
}
