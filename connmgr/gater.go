package connmgr

import (
	"errors"
	"fmt"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// ConnectionGater decides, at five points of a connection's life, whether
// it may go on. Each method answers true to let the connection through.
// They are called on the goroutines of dials and handshakes, concurrently,
// and should answer quickly: a slow gater slows every connection.
//
// In order of a connection's life:
//   - InterceptPeerDial before dialing a peer at all;
//   - InterceptAddrDial before dialing one of its addresses;
//   - InterceptAccept when an inbound connection arrives, before its
//     handshake (the peer is not known yet);
//   - InterceptSecured after the security handshake, when the remote peer
//     is known, in both directions;
//   - InterceptUpgraded once the connection is multiplexed, before the
//     swarm adds it; a refusal may say why (a DisconnectReason).
type ConnectionGater interface {
	InterceptPeerDial(p peer.ID) (allow bool)
	InterceptAddrDial(p peer.ID, addr ma.Multiaddr) (allow bool)
	InterceptAccept(addrs network.ConnMultiaddrs) (allow bool)
	InterceptSecured(dir network.Direction, p peer.ID, addrs network.ConnMultiaddrs) (allow bool)
	InterceptUpgraded(c network.Conn) (allow bool, reason DisconnectReason)
}

// DisconnectReason is an application's code for refusing an upgraded
// connection. p2pnet does not send it to the peer yet; it is carried in
// the GatedError.
type DisconnectReason int

// Hook names a method of ConnectionGater.
type Hook string

// The hooks of ConnectionGater, as GatedError names them.
const (
	HookPeerDial Hook = "InterceptPeerDial"
	HookAddrDial Hook = "InterceptAddrDial"
	HookAccept   Hook = "InterceptAccept"
	HookSecured  Hook = "InterceptSecured"
	HookUpgraded Hook = "InterceptUpgraded"
)

// ErrGated is matched (errors.Is) by every refusal of a ConnectionGater.
var ErrGated = errors.New("connection gated")

// GatedError is a refusal by a ConnectionGater.
type GatedError struct {
	// Hook is the method that refused.
	Hook Hook
	// Peer is the remote peer, when known at that point.
	Peer peer.ID
	// Addr is the remote address, when known at that point.
	Addr ma.Multiaddr
	// Reason is what InterceptUpgraded returned; 0 for the other hooks.
	Reason DisconnectReason
}

func (e *GatedError) Error() string {
	msg := fmt.Sprintf("%v by %s", ErrGated, e.Hook)
	if e.Peer != "" {
		msg += " for peer " + e.Peer.String()
	}
	if len(e.Addr) > 0 {
		msg += " at " + e.Addr.String()
	}
	if e.Reason != 0 {
		msg += fmt.Sprintf(" (reason %d)", e.Reason)
	}
	return msg
}

// Unwrap returns ErrGated.
func (e *GatedError) Unwrap() error { return ErrGated }
