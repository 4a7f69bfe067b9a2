package compat

import (
	"context"

	lnetwork "github.com/libp2p/go-libp2p/core/network"

	"github.com/p2pnet/p2pnet/network"
)

// P2PNetContext returns ctx carrying, as p2pnet's network context
// options, the go-libp2p network context options it carries (WithNoDial,
// WithDialPeerTimeout, WithForceDirectDial, WithSimultaneousConnect,
// WithAllowLimitedConn): the two modules keep them under different keys.
// The host's NewStream and Connect, and the network's DialPeer and
// NewStream, apply it to the contexts go-libp2p code passes them. A
// dial-peer timeout equal to go-libp2p's default is not carried over;
// p2pnet's default is the same 60 s.
func P2PNetContext(ctx context.Context) context.Context {
	if ok, why := lnetwork.GetNoDial(ctx); ok {
		ctx = network.WithNoDial(ctx, why)
	}
	if d := lnetwork.GetDialPeerTimeout(ctx); d != lnetwork.DialPeerTimeout {
		ctx = network.WithDialPeerTimeout(ctx, d)
	}
	if ok, why := lnetwork.GetForceDirectDial(ctx); ok {
		ctx = network.WithForceDirectDial(ctx, why)
	}
	if ok, client, why := lnetwork.GetSimultaneousConnect(ctx); ok {
		ctx = network.WithSimultaneousConnect(ctx, client, why)
	}
	if ok, why := lnetwork.GetAllowLimitedConn(ctx); ok {
		ctx = network.WithAllowLimitedConn(ctx, why)
	}
	return ctx
}
