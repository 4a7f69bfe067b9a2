package yamux

import (
	"errors"
	"fmt"
	"net"

	"github.com/p2pnet/p2pnet/network"
)

// ErrProtocol is wrapped by every error that means the remote side broke the
// yamux protocol. The connection is then closed after a GoAway carrying the
// protocol-error code.
var ErrProtocol = errors.New("yamux: protocol error")

// Protocol violations, each wrapping ErrProtocol.
var (
	// ErrInvalidVersion: a frame header carried a version other than 0.
	ErrInvalidVersion = fmt.Errorf("%w: unsupported version", ErrProtocol)
	// ErrInvalidType: a frame header carried an unknown type.
	ErrInvalidType = fmt.Errorf("%w: unknown frame type", ErrProtocol)
	// ErrRecvWindowExceeded: the remote sent more data than the receive
	// window allowed.
	ErrRecvWindowExceeded = fmt.Errorf("%w: receive window exceeded", ErrProtocol)
	// ErrSendWindowOverflow: the remote granted a send window larger than
	// 2³²-1 bytes.
	ErrSendWindowOverflow = fmt.Errorf("%w: send window overflow", ErrProtocol)
	// ErrDuplicateStream: the remote opened a stream whose ID is in use.
	ErrDuplicateStream = fmt.Errorf("%w: duplicate stream", ErrProtocol)
	// ErrStreamIDParity: the remote opened a stream with an ID of this
	// side's parity (both sides think they are the client, or the server).
	ErrStreamIDParity = fmt.Errorf("%w: stream ID of the wrong parity", ErrProtocol)
	// ErrUnknownStream: a frame addressed a stream that was never opened,
	// or a stream frame used the session ID 0.
	ErrUnknownStream = fmt.Errorf("%w: frame for a stream never opened", ErrProtocol)
)

// ErrConnClosed is wrapped by the errors of a closed connection's
// operations. It matches net.ErrClosed.
var ErrConnClosed error = connClosedError{}

type connClosedError struct{}

func (connClosedError) Error() string { return "yamux: connection closed" }

// Is makes ErrConnClosed match net.ErrClosed.
func (connClosedError) Is(target error) bool { return target == net.ErrClosed }

// ErrStreamReset is returned by reads and writes on a stream that was reset
// by either side (a reset by the remote wraps it). It matches
// network.ErrReset.
var ErrStreamReset error = streamResetError{}

type streamResetError struct{}

func (streamResetError) Error() string { return "yamux: stream reset" }

// Is makes ErrStreamReset match network.ErrReset.
func (streamResetError) Is(target error) bool { return target == network.ErrReset }

// errRemoteReset is the error of a stream the remote side reset with a RST
// on a Data frame, whose length is that of its payload, not a code.
var errRemoteReset = fmt.Errorf("%w by the remote side", ErrStreamReset)

// ErrStreamClosedRead is returned by reads after CloseRead or Close; reads
// in progress are interrupted with it.
var ErrStreamClosedRead = errors.New("yamux: stream closed for reading")

// ErrStreamClosedWrite is returned by writes after CloseWrite or Close;
// writes waiting for window are interrupted with it.
var ErrStreamClosedWrite = errors.New("yamux: stream closed for writing")

// ErrStreamsExhausted is returned by OpenStream when every stream ID of this
// side has been used.
var ErrStreamsExhausted = errors.New("yamux: stream IDs exhausted")

// ErrKeepAliveTimeout is why a connection closes when a ping went
// unanswered for Transport.PingTimeout.
var ErrKeepAliveTimeout = errors.New("yamux: keepalive ping timed out")

// ErrWriteTimeout is why a connection closes when a Write on the
// underlying connection took longer than Transport.WriteTimeout. (It does
// not match os.ErrDeadlineExceeded, which the streams' own deadlines
// return.)
var ErrWriteTimeout = errors.New("yamux: connection write timed out")

// GoAwayError is why a connection closed when the remote side sent a
// GoAway frame. Code is the frame's error code: 0 normal termination, 1
// protocol error, 2 internal error, or one of libp2p's connection codes
// (network.ConnErrorCode), as go-yamux's CloseWithError sends them. With
// network.ConnResourceLimitExceeded, the remote refused the connection
// (see Transport.Refuse), and the error matches
// network.ErrResourceLimitExceeded.
type GoAwayError struct {
	Code uint32
}

func (e *GoAwayError) Error() string {
	switch e.Code {
	case goAwayNormal:
		return "yamux: remote side went away"
	case goAwayProtocolError:
		return "yamux: remote side went away: protocol error"
	case goAwayInternalError:
		return "yamux: remote side went away: internal error"
	case uint32(network.ConnResourceLimitExceeded):
		return fmt.Sprintf("yamux: remote side went away with code %#x: %v", e.Code, network.ErrResourceLimitExceeded)
	}
	return fmt.Sprintf("yamux: remote side went away with code %#x", e.Code)
}

// Is makes a GoAway with network.ConnResourceLimitExceeded match
// network.ErrResourceLimitExceeded.
func (e *GoAwayError) Is(target error) bool {
	return target == network.ErrResourceLimitExceeded && e.Code == uint32(network.ConnResourceLimitExceeded)
}

// StreamError is why a stream was reset with an error code: by the remote
// side (Remote), whose RST carried Code, or here by
// Stream.ResetWithError. Code is one of libp2p's stream codes
// (network.StreamErrorCode) or an application's. It matches
// ErrStreamReset, and so network.ErrReset; with
// network.StreamResourceLimitExceeded (the stream was refused for
// resources) it also matches network.ErrResourceLimitExceeded.
type StreamError struct {
	Code   uint32
	Remote bool
}

func (e *StreamError) Error() string {
	who := ""
	if e.Remote {
		who = " by the remote side"
	}
	switch e.Code {
	case uint32(network.StreamNoError):
		return "yamux: stream reset" + who
	case uint32(network.StreamResourceLimitExceeded):
		return fmt.Sprintf("yamux: stream reset%s with code %#x: %v", who, e.Code, network.ErrResourceLimitExceeded)
	}
	return fmt.Sprintf("yamux: stream reset%s with code %#x", who, e.Code)
}

// Unwrap returns ErrStreamReset.
func (e *StreamError) Unwrap() error { return ErrStreamReset }

// Is makes a reset with network.StreamResourceLimitExceeded match
// network.ErrResourceLimitExceeded.
func (e *StreamError) Is(target error) bool {
	return target == network.ErrResourceLimitExceeded && e.Code == uint32(network.StreamResourceLimitExceeded)
}
