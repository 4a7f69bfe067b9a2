// Package sec declares what a libp2p security protocol gives the
// upgrader: a net.Conn that is encrypted and knows, with proof, who is on
// the other end. Its implementations are sec/noise and sec/tls.
//
// A security protocol never imports a multiplexer: it is handed the
// multiplexer protocol IDs to offer for early negotiation, and reports the
// one agreed, if any, in the connection's ConnectionState.
//
// It may import network and the vocabulary packages.
package sec

import (
	"context"
	"net"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
)

// Conn is an authenticated, encrypted connection.
type Conn interface {
	net.Conn
	network.ConnSecurity
}

// Transport secures raw connections with one security protocol.
type Transport interface {
	// ID is the protocol ID negotiated by multistream-select, such as
	// "/noise" or "/tls/1.0.0".
	ID() protocol.ID

	// SecureInbound runs the handshake as the responder (the side that
	// accepted the connection). When p is not empty, the remote must
	// prove it is p; otherwise any peer is accepted.
	SecureInbound(ctx context.Context, c net.Conn, p peer.ID) (Conn, error)

	// SecureOutbound runs the handshake as the initiator. The remote must
	// prove it is p; otherwise the handshake fails with an error wrapping
	// ErrPeerIDMismatch that names both peer IDs.
	SecureOutbound(ctx context.Context, c net.Conn, p peer.ID) (Conn, error)
}

// ErrPeerIDMismatch is wrapped by handshake errors where the remote
// proved a different identity from the one expected.
var ErrPeerIDMismatch = peerIDMismatch{}

type peerIDMismatch struct{}

func (peerIDMismatch) Error() string { return "peer ID mismatch" }

// MismatchError is the error of a handshake whose remote proved an
// identity other than the expected one. It matches ErrPeerIDMismatch
// under errors.Is.
type MismatchError struct {
	Expected peer.ID
	Actual   peer.ID
}

func (e *MismatchError) Error() string {
	return "peer ID mismatch: expected " + e.Expected.String() + ", remote proved " + e.Actual.String()
}

// Is reports whether target is ErrPeerIDMismatch.
func (e *MismatchError) Is(target error) bool { return target == ErrPeerIDMismatch }
