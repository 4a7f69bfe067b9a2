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

// errRemoteReset is the error of a stream the remote side reset.
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
// protocol error, 2 internal error.
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
	}
	return fmt.Sprintf("yamux: remote side went away with code %d", e.Code)
}
