package quic

import (
	"errors"
	"fmt"
	"net"

	"github.com/p2pnet/p2pnet/network"
)

// ErrUnsupportedAddr is returned for addresses that are not exactly
// /ip4|ip6/IP/udp/PORT/quic-v1.
var ErrUnsupportedAddr = errors.New("quic: not a /ip4|ip6/…/udp/N/quic-v1 address")

// ErrInvalidOption is wrapped by the errors of New for an option whose
// value is out of range.
var ErrInvalidOption = errors.New("quic: invalid option")

// ErrTransportClosed is returned by Dial and Listen after Close. It
// matches net.ErrClosed.
var ErrTransportClosed = fmt.Errorf("quic: transport closed: %w", net.ErrClosed)

// ErrListenerClosed is returned by Accept once the listener is closed. It
// matches net.ErrClosed.
var ErrListenerClosed = fmt.Errorf("quic: listener closed: %w", net.ErrClosed)

// ErrNoListener is returned by a hole-punching Dial (see Transport.Dial)
// when the transport listens on no address of the target's family: the
// peer's connection must reach a listening socket, and the punched packets
// must leave from it.
var ErrNoListener = errors.New("quic: hole punching needs a listener of the address family")

// ErrHolePunchInProgress is returned by a hole-punching Dial when another
// one to the same peer and address is still waiting.
var ErrHolePunchInProgress = errors.New("quic: already hole punching to that peer and address")

// ErrHolePunchTimeout is the cause of a hole-punching Dial that received
// no connection from the peer within HolePunchTimeout.
var ErrHolePunchTimeout = errors.New("quic: hole punch: no connection from the peer in time")

// ErrNoRemoteKey is returned when a handshake finished without the peer's
// certificate having been verified. It means a bug, in crypto/tls,
// quic-go or here.
var ErrNoRemoteKey = errors.New("quic: handshake finished without a verified peer key")

// ErrStreamReset is returned by reads and writes on a stream that was
// reset. After a local Reset it is returned as is; after the remote reset
// the stream or stopped reading it, the error wraps both ErrStreamReset
// and quic-go's *quic.StreamError, which carries the remote's error code.
// It matches network.ErrReset.
var ErrStreamReset error = streamResetError{}

type streamResetError struct{}

func (streamResetError) Error() string { return "quic: stream reset" }

// Is makes ErrStreamReset match network.ErrReset.
func (streamResetError) Is(target error) bool { return target == network.ErrReset }

// ErrStreamClosedRead is returned by reads after CloseRead or Close; reads
// in progress are interrupted with it.
var ErrStreamClosedRead = errors.New("quic: stream closed for reading")

// ErrStreamClosedWrite is returned by writes after CloseWrite or Close;
// writes in progress are interrupted with it.
var ErrStreamClosedWrite = errors.New("quic: stream closed for writing")
