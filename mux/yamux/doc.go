// Package yamux is p2pnet's stream multiplexer: the yamux protocol
// (/yamux/1.0.0, specified in hashicorp/yamux's spec.md) as used by libp2p,
// interoperable with go-libp2p's go-yamux.
//
// A Transport is a network.Multiplexer. Its NewConn wraps a secured
// net.Conn in a *Conn, whose streams are *Streams.
//
// # Design
//
// Each Conn runs exactly one goroutine, its read loop, which decodes frames
// and moves payloads straight into the receiving stream's buffer. Streams are
// passive: a mutex, a chunked receive buffer and cap-1 notification
// channels. Writes happen on the goroutine that writes: frames are appended
// to one send queue, and whoever finds no writer active takes the writer role
// and hands everything queued to the net.Conn in one Write, so concurrent
// streams coalesce. Frames the read loop itself produces (pings' answers,
// stream rejections) never make it write: if no writer is active, a
// short-lived flusher goroutine drains the queue. Keepalive runs on a timer.
//
// # Flow control and memory
//
// Every stream starts with the protocol's 256 KiB receive window, reserved in
// a span of the peer's resource scope when the stream is created. Once the
// reader has consumed half of its window the stream returns the credit in a
// WindowUpdate. The window doubles (up to Transport.MaxStreamWindow) only
// when it, not the reader, limits the rate: the reader has drained the buffer
// and the credit went at least half as fast as a window per round trip,
// judged against the connection's minimum RTT (four pings when it starts, then
// the keepalives), so a long fat link grows it to the maximum while loopback
// keeps it small and little data queues ahead of other streams' frames. It
// also needs the connection's window budget (Transport.MaxConnWindow) and a
// low-priority reservation in the scope. Everything a stream reserved is
// released when it ends, and the span ends with the connection.
//
// # Stream semantics
//
// Streams follow network.MuxedStream. Data that arrives after CloseRead is
// discarded and its window credit is returned to the sender, so a sender that
// keeps writing is not blocked forever; once the stream has been closed in
// both directions, later frames for it are ignored. Reset and a reset by the
// remote make reads and writes fail with an error matching network.ErrReset.
// When the connection ends, operations on its streams fail with an error
// matching both network.ErrReset and ErrConnClosed (and so net.ErrClosed);
// a stream whose remote half was already closed keeps its buffered data
// readable until io.EOF.
//
// # Error codes
//
// As in go-yamux, a stream reset carries an error code in the Length field
// of its WindowUpdate frame (Stream.ResetWithError; a received code surfaces
// as a *StreamError), and a GoAway carries one in its Length field (a
// received one surfaces as a *GoAwayError). The codes are libp2p's
// (network.StreamErrorCode, network.ConnErrorCode). A stream refused for
// want of resources (the backlog, MaxIncomingStreams, the resource scope)
// is reset with network.StreamResourceLimitExceeded, and Transport.Refuse
// sends network.ConnResourceLimitExceeded on a connection refused before
// yamux starts; both codes, received, make errors match
// network.ErrResourceLimitExceeded.
//
// The package may import network, peer, protocol and the standard library.
package yamux

import "github.com/p2pnet/p2pnet/protocol"

// ID is the protocol ID of yamux, as negotiated by multistream-select or
// inlined in the security handshake.
const ID protocol.ID = "/yamux/1.0.0"
