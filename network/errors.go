package network

import (
	"errors"
	"net"
)

// ErrLimitedConn is returned when a stream would have to use a limited
// connection (such as one through a relay) and the context does not carry
// WithAllowLimitedConn.
var ErrLimitedConn = errors.New("limited connection to peer")

// ErrTransientConn is ErrLimitedConn under its old name.
//
// Deprecated: Use ErrLimitedConn.
var ErrTransientConn = ErrLimitedConn

// ErrNoConn is returned when a stream is opened with WithNoDial and no
// usable connection to the peer exists.
var ErrNoConn = errors.New("no usable connection to peer")

// ErrNoRemoteAddrs is returned when a dial finds no address to try for the
// peer.
var ErrNoRemoteAddrs = errors.New("no remote addresses")

// ErrReset is returned by reads and writes on a stream that either side
// has reset. Implementations may return an error that wraps it; callers
// test with errors.Is.
var ErrReset = errors.New("stream reset")

// ErrResourceLimitExceeded is returned, usually wrapped in an error that
// names the scope and the limit, when a reservation would exceed a
// resource limit. It is a net.Error whose Temporary method returns true:
// the same request may succeed once resources are freed.
var ErrResourceLimitExceeded = temporaryError("resource limit exceeded")

// ErrResourceScopeClosed is returned when resources are reserved in a
// scope that is already done.
var ErrResourceScopeClosed = errors.New("resource scope closed")

// temporaryError is a net.Error that is temporary and not a timeout.
type temporaryError string

var _ net.Error = temporaryError("")

func (e temporaryError) Error() string { return string(e) }

// Temporary reports true: the condition may clear.
func (e temporaryError) Temporary() bool { return true }

// Timeout reports false: the error is not a timeout.
func (e temporaryError) Timeout() bool { return false }
