package network

import (
	"io"
	"time"

	"github.com/p2pnet/p2pnet/protocol"
)

// Stream is a bidirectional byte stream to a remote peer, carried by a
// multiplexed connection and speaking one protocol.
type Stream interface {
	MuxedStream

	// ID returns an identifier unique to this stream within this host for
	// as long as the host runs.
	ID() string

	// Protocol returns the protocol negotiated on the stream, or "" before
	// negotiation.
	Protocol() protocol.ID

	// SetProtocol records the negotiated protocol and moves the stream's
	// resource scope under that protocol's scope. It fails, leaving the
	// stream as it was, when the protocol's limits refuse the stream.
	SetProtocol(id protocol.ID) error

	// Stat returns the stream's metadata.
	Stat() Stats

	// Conn returns the connection that carries the stream.
	Conn() Conn

	// Scope returns the user's view of the stream's resource scope.
	Scope() StreamScope
}

// StreamHandler handles a stream opened by the remote side. The handler
// owns the stream and must Close or Reset it.
type StreamHandler func(Stream)

// MuxedStream is one bidirectional stream of a multiplexed connection.
//
// Implementations must honour these rules, which callers depend on:
//
//   - Close is CloseRead and CloseWrite together. It flushes buffered
//     writes, makes later reads fail, interrupts reads and writes in
//     progress, and does not wait for the remote side to acknowledge
//     anything. A caller that needs the remote's answer calls CloseWrite,
//     reads until EOF, and then calls Close.
//   - CloseWrite half-closes: the remote reads EOF after the data already
//     written; this side can still read.
//   - CloseRead stops reading: reads in progress return at once with an
//     error that is not io.EOF, and no later read succeeds. This side can
//     still write. What happens to data that arrives afterwards is up to
//     the implementation (p2pnet discards it).
//   - Reset abandons the stream in both directions and tells the remote
//     side; reads and writes on both sides then fail with an error that
//     matches ErrReset under errors.Is.
//   - The deadlines behave as net.Conn's.
//
// After CloseRead or CloseWrite the stream still holds resources: the
// user must call Close or Reset when done with it.
type MuxedStream interface {
	io.Reader
	io.Writer
	io.Closer

	// CloseWrite closes the stream for writing and leaves it open for
	// reading.
	CloseWrite() error

	// CloseRead closes the stream for reading and leaves it open for
	// writing.
	CloseRead() error

	// Reset closes both directions and tells the remote to go away.
	Reset() error

	// SetDeadline sets both the read and the write deadline.
	SetDeadline(time.Time) error
	// SetReadDeadline sets the deadline for reads in progress and future
	// reads; the zero time means none.
	SetReadDeadline(time.Time) error
	// SetWriteDeadline sets the deadline for writes in progress and future
	// writes; the zero time means none.
	SetWriteDeadline(time.Time) error
}
