package fakehost

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"

	ma "github.com/multiformats/go-multiaddr"
)

// ErrUnsupported is what the network's dialing and listening methods
// return: connections are made by [Connect].
var ErrUnsupported = errors.New("fake network: unsupported")

// hostNetwork is a host's network, whose connections the test makes.
type hostNetwork struct {
	host *Host

	mu        sync.Mutex // guards the following
	conns     []*Conn
	notifiees map[network.Notifiee]struct{}
}

var _ network.Network = (*hostNetwork)(nil)

func (n *hostNetwork) add(c *Conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conns = append(n.conns, c)
}

func (n *hostNetwork) remove(c *Conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conns = slices.DeleteFunc(n.conns, func(x *Conn) bool { return x == c })
}

// connTo returns the oldest connection to p, or nil.
func (n *hostNetwork) connTo(p peer.ID) *Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		if c.RemotePeer() == p {
			return c
		}
	}
	return nil
}

func (n *hostNetwork) notify(f func(network.Notifiee)) {
	n.mu.Lock()
	var ns []network.Notifiee
	for x := range n.notifiees {
		ns = append(ns, x)
	}
	n.mu.Unlock()
	for _, x := range ns {
		f(x)
	}
}

func (n *hostNetwork) numNotifiees() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.notifiees)
}

func (n *hostNetwork) Notify(x network.Notifiee) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notifiees[x] = struct{}{}
}

func (n *hostNetwork) StopNotify(x network.Notifiee) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.notifiees, x)
}

func (n *hostNetwork) Conns() []network.Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]network.Conn, len(n.conns))
	for i, c := range n.conns {
		out[i] = c
	}
	return out
}

func (n *hostNetwork) ConnsToPeer(p peer.ID) []network.Conn {
	var out []network.Conn
	for _, c := range n.Conns() {
		if c.RemotePeer() == p {
			out = append(out, c)
		}
	}
	return out
}

func (n *hostNetwork) Connectedness(p peer.ID) network.Connectedness {
	if len(n.ConnsToPeer(p)) > 0 {
		return network.Connected
	}
	return network.NotConnected
}

func (n *hostNetwork) Peers() []peer.ID {
	var out []peer.ID
	for _, c := range n.Conns() {
		if !slices.Contains(out, c.RemotePeer()) {
			out = append(out, c.RemotePeer())
		}
	}
	return out
}

func (n *hostNetwork) Peerstore() peerstore.Peerstore         { return n.host.ps }
func (n *hostNetwork) LocalPeer() peer.ID                     { return n.host.id }
func (n *hostNetwork) Close() error                           { return nil }
func (n *hostNetwork) SetStreamHandler(network.StreamHandler) {}
func (n *hostNetwork) ClosePeer(peer.ID) error                { return ErrUnsupported }
func (n *hostNetwork) CanDial(peer.ID, ma.Multiaddr) bool     { return false }
func (n *hostNetwork) Listen(...ma.Multiaddr) error           { return ErrUnsupported }
func (n *hostNetwork) ListenAddresses() []ma.Multiaddr        { return nil }
func (n *hostNetwork) ResourceManager() network.ResourceManager {
	return &network.NullResourceManager{}
}

func (n *hostNetwork) InterfaceListenAddresses() ([]ma.Multiaddr, error) { return nil, nil }

func (n *hostNetwork) DialPeer(context.Context, peer.ID) (network.Conn, error) {
	return nil, ErrUnsupported
}

func (n *hostNetwork) NewStream(context.Context, peer.ID) (network.Stream, error) {
	return nil, ErrUnsupported
}
