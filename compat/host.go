package compat

import (
	"context"
	"errors"
	"fmt"

	lconnmgr "github.com/libp2p/go-libp2p/core/connmgr"
	levent "github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	lpeerstore "github.com/libp2p/go-libp2p/core/peerstore"
	lprotocol "github.com/libp2p/go-libp2p/core/protocol"

	p2pnet "github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// Host is a p2pnet host seen as go-libp2p's host.Host. Every method acts
// on the p2pnet host: there is no second network stack behind it. It is
// safe for concurrent use.
type Host struct {
	h   *p2pnet.Host
	ps  *pstore
	net *netw
}

var _ host.Host = (*Host)(nil)

// Wrap returns h seen as go-libp2p's host.Host. Closing the returned
// host closes h.
func Wrap(h *p2pnet.Host) (*Host, error) {
	if h == nil {
		return nil, errors.New("compat: Wrap(nil)")
	}
	ps := &pstore{ps: h.Peerstore()}
	return &Host{h: h, ps: ps, net: newNetw(h.Network(), ps)}, nil
}

// P2PNet returns the p2pnet host behind h.
func (h *Host) P2PNet() *p2pnet.Host { return h.h }

// ID returns the host's peer ID.
func (h *Host) ID() lpeer.ID { return lpeer.ID(h.h.ID()) }

// Peerstore returns the host's peerstore.
func (h *Host) Peerstore() lpeerstore.Peerstore { return h.ps }

// Addrs returns the addresses others can dial the host at (see
// p2pnet.Host.Addrs).
func (h *Host) Addrs() []ma.Multiaddr { return h.h.Addrs() }

// Network returns the host's swarm.
func (h *Host) Network() lnetwork.Network { return h.net }

// Mux returns the host's protocol router (see the package doc for what
// it does not support).
func (h *Host) Mux() lprotocol.Switch { return mux{h.h} }

// Connect makes sure the host is connected to pi.ID, dialing pi.Addrs
// (and what the peerstore knows) when it is not. As go-libp2p's host
// does, once it has dialed it waits for identify to end on the new
// connection, so the peerstore then holds the peer's protocols and
// agent; when already connected it returns at once.
func (h *Host) Connect(ctx context.Context, pi lpeer.AddrInfo) error {
	ctx = P2PNetContext(ctx)
	p := peer.ID(pi.ID)
	if h.h.Network().Connectedness(p) == network.Connected {
		h.h.Peerstore().AddAddrs(p, pi.Addrs, peerstore.TempAddrTTL)
		return nil
	}
	if err := h.h.Connect(ctx, P2PNetAddrInfo(pi)); err != nil {
		return Libp2pError(err)
	}
	conns := h.h.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return nil // closed at once; as good as identified
	}
	select {
	case <-h.h.Identify().IdentifyWait(conns[0]):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("compat: identify of %s did not complete: %w", p, ctx.Err())
	}
}

// SetStreamHandler serves pid with handler, which gets the stream with
// its protocol negotiated.
func (h *Host) SetStreamHandler(pid lprotocol.ID, handler lnetwork.StreamHandler) {
	if handler == nil {
		panic("compat: SetStreamHandler(" + string(pid) + ") with a nil handler")
	}
	h.h.SetStreamHandler(toProtocol(pid), func(s network.Stream) { handler(stream{s}) })
}

// SetStreamHandlerMatch serves every protocol match accepts with
// handler; pid names the registration.
func (h *Host) SetStreamHandlerMatch(pid lprotocol.ID, match func(lprotocol.ID) bool, handler lnetwork.StreamHandler) {
	if handler == nil || match == nil {
		panic("compat: SetStreamHandlerMatch(" + string(pid) + ") with a nil handler or match function")
	}
	h.h.SetStreamHandlerMatch(toProtocol(pid),
		func(p protocol.ID) bool { return match(lprotocol.ID(p)) },
		func(s network.Stream) { handler(stream{s}) })
}

// RemoveStreamHandler stops serving pid.
func (h *Host) RemoveStreamHandler(pid lprotocol.ID) { h.h.RemoveStreamHandler(toProtocol(pid)) }

// NewStream opens a stream to p for the first of pids p supports (see
// p2pnet.Host.NewStream: with one protocol, negotiation is lazy).
func (h *Host) NewStream(ctx context.Context, p lpeer.ID, pids ...lprotocol.ID) (lnetwork.Stream, error) {
	s, err := h.h.NewStream(P2PNetContext(ctx), P2PNetPeerID(p), P2PNetProtocolIDs(pids)...)
	if err != nil {
		return nil, Libp2pError(err)
	}
	return stream{s}, nil
}

// Close closes the p2pnet host.
func (h *Host) Close() error { return Libp2pError(h.h.Close()) }

// ConnManager returns the host's connection manager (also a
// connmgr.Decayer), or go-libp2p's NullConnMgr when the host runs
// without one (p2pnet.NoConnectionManager).
func (h *Host) ConnManager() lconnmgr.ConnManager {
	if cm := h.h.ConnManager(); cm != nil {
		return connMgr{cm}
	}
	return &lconnmgr.NullConnMgr{}
}

// EventBus returns the host's event bus, which delivers the host's
// events as go-libp2p's event types.
func (h *Host) EventBus() levent.Bus { return bus{h.h.EventBus()} }
