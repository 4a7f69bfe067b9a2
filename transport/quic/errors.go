package quic

import (
	"errors"
	"fmt"
	"net"

	"github.com/p2pnet/p2pnet/network"

	quicgo "github.com/quic-go/quic-go"
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

// ErrNoALPN is why an inbound handshake fails whose client offers no
// application protocol (ALPN) that a listener on the socket serves.
var ErrNoALPN = errors.New("quic: no listener for the protocols the client offers")

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

// ErrRefused is wrapped by the error of a Dial, or of an operation on a
// connection, whose remote refused the connection:
//
//   - before the handshake, with QUIC's CONNECTION_REFUSED: the error
//     also wraps quic-go's *quic.TransportError, which carries no reason
//     (QUIC has none to give before the handshake); p2pnet refuses so
//     when its resource manager would not take the connection or too
//     many handshakes are in progress, go-libp2p when its resource
//     manager refuses;
//   - after the handshake, by closing the connection with application
//     error 0x1001, RESOURCE_LIMIT_EXCEEDED: the error also wraps
//     quic-go's *quic.ApplicationError, whose ErrorMessage is the
//     remote's reason (p2pnet's resource manager's error; go-libp2p
//     sends none).
//
// It matches network.ErrResourceLimitExceeded: the same dial may succeed
// later.
var ErrRefused error = refusedError{}

type refusedError struct{}

func (refusedError) Error() string { return "quic: connection refused by the remote" }

// Is makes ErrRefused match network.ErrResourceLimitExceeded.
func (refusedError) Is(target error) bool { return target == network.ErrResourceLimitExceeded }

// errHandshakeBudget is why connContext refuses a client while the
// maximum of handshakes is in progress. The client sees only
// CONNECTION_REFUSED.
var errHandshakeBudget = errors.New("quic: too many inbound handshakes in progress")

// remoteRefusal returns err, wrapped with ErrRefused if it says the
// remote refused the connection.
func remoteRefusal(err error) error {
	if te, ok := errors.AsType[*quicgo.TransportError](err); ok && te.Remote && te.ErrorCode == quicgo.ConnectionRefused {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if ae, ok := errors.AsType[*quicgo.ApplicationError](err); ok && ae.Remote && ae.ErrorCode == codeResourceLimitExceeded {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}
