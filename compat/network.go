package compat

import (
	"context"
	"errors"
	"fmt"
	"sync"

	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	lpeerstore "github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// ErrUnsupported is what the adapters return for what go-libp2p's
// interfaces offer and p2pnet does not do; it matches
// errors.ErrUnsupported.
var ErrUnsupported = fmt.Errorf("compat: not supported on a p2pnet host: %w", errors.ErrUnsupported)

// netw is the host's swarm seen as go-libp2p's network.Network.
type netw struct {
	n  network.Network
	ps *pstore

	mu        sync.Mutex // guards notifees
	notifiees map[lnetwork.Notifiee]*notifiee
}

var _ lnetwork.Network = (*netw)(nil)

func newNetw(n network.Network, ps *pstore) *netw {
	return &netw{n: n, ps: ps, notifiees: map[lnetwork.Notifiee]*notifiee{}}
}

func (n *netw) Peerstore() lpeerstore.Peerstore { return n.ps }
func (n *netw) LocalPeer() lpeer.ID             { return lpeer.ID(n.n.LocalPeer()) }

func (n *netw) DialPeer(ctx context.Context, p lpeer.ID) (lnetwork.Conn, error) {
	c, err := n.n.DialPeer(P2PNetContext(ctx), peer.ID(p))
	if err != nil {
		return nil, Libp2pError(err)
	}
	return conn{c}, nil
}

func (n *netw) ClosePeer(p lpeer.ID) error { return Libp2pError(n.n.ClosePeer(peer.ID(p))) }

func (n *netw) Connectedness(p lpeer.ID) lnetwork.Connectedness {
	return lnetwork.Connectedness(n.n.Connectedness(peer.ID(p)))
}

func (n *netw) Peers() []lpeer.ID { return Libp2pPeerIDs(n.n.Peers()) }

func (n *netw) Conns() []lnetwork.Conn { return libp2pConns(n.n.Conns()) }

func (n *netw) ConnsToPeer(p lpeer.ID) []lnetwork.Conn {
	return libp2pConns(n.n.ConnsToPeer(peer.ID(p)))
}

func libp2pConns(cs []network.Conn) []lnetwork.Conn {
	out := make([]lnetwork.Conn, len(cs))
	for i, c := range cs {
		out[i] = conn{c}
	}
	return out
}

// Notify registers f for the swarm's notifications; f sees this network
// and the connections as go-libp2p values.
func (n *netw) Notify(f lnetwork.Notifiee) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.notifiees[f]; ok {
		return
	}
	nf := &notifiee{n: n, f: f}
	n.notifiees[f] = nf
	n.n.Notify(nf)
}

// StopNotify unregisters f.
func (n *netw) StopNotify(f lnetwork.Notifiee) {
	n.mu.Lock()
	nf, ok := n.notifiees[f]
	delete(n.notifiees, f)
	n.mu.Unlock()
	if ok {
		n.n.StopNotify(nf)
	}
}

func (n *netw) CanDial(p lpeer.ID, addr ma.Multiaddr) bool { return n.n.CanDial(peer.ID(p), addr) }

// Close closes the swarm. Close the host (the Host returned by Wrap)
// instead: it stops the host's services before the swarm.
func (n *netw) Close() error { return Libp2pError(n.n.Close()) }

// SetStreamHandler panics: the host owns the swarm's stream handler and
// routes inbound streams by protocol; use Host.SetStreamHandler.
func (n *netw) SetStreamHandler(lnetwork.StreamHandler) {
	panic("compat: Network().SetStreamHandler is not supported on a p2pnet host, which routes inbound streams itself; use Host.SetStreamHandler")
}

// NewStream opens a stream with no protocol negotiated, connecting
// first if needed.
func (n *netw) NewStream(ctx context.Context, p lpeer.ID) (lnetwork.Stream, error) {
	s, err := n.n.NewStream(P2PNetContext(ctx), peer.ID(p))
	if err != nil {
		return nil, Libp2pError(err)
	}
	return stream{s}, nil
}

func (n *netw) Listen(addrs ...ma.Multiaddr) error { return Libp2pError(n.n.Listen(addrs...)) }
func (n *netw) ListenAddresses() []ma.Multiaddr    { return n.n.ListenAddresses() }

func (n *netw) InterfaceListenAddresses() ([]ma.Multiaddr, error) {
	a, err := n.n.InterfaceListenAddresses()
	return a, Libp2pError(err)
}

func (n *netw) ResourceManager() lnetwork.ResourceManager {
	return rcmgr{n.n.ResourceManager()}
}

// notifiee forwards p2pnet's notifications to a go-libp2p Notifiee.
type notifiee struct {
	n *netw
	f lnetwork.Notifiee
}

func (nf *notifiee) Listen(_ network.Network, a ma.Multiaddr)      { nf.f.Listen(nf.n, a) }
func (nf *notifiee) ListenClose(_ network.Network, a ma.Multiaddr) { nf.f.ListenClose(nf.n, a) }
func (nf *notifiee) Connected(_ network.Network, c network.Conn)   { nf.f.Connected(nf.n, conn{c}) }
func (nf *notifiee) Disconnected(_ network.Network, c network.Conn) {
	nf.f.Disconnected(nf.n, conn{c})
}
