package testtransport

import (
	"sync"

	"github.com/p2pnet/p2pnet/peer"
)

// Network connects the transports made from it.
type Network struct {
	mu        sync.Mutex // guards the following
	listeners map[peer.ID][]*Listener
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{listeners: map[peer.ID][]*Listener{}}
}

func (n *Network) addListener(p peer.ID, l *Listener) {
	n.mu.Lock()
	n.listeners[p] = append(n.listeners[p], l)
	n.mu.Unlock()
}

func (n *Network) removeListener(p peer.ID, l *Listener) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ls := n.listeners[p]
	for i, x := range ls {
		if x == l {
			n.listeners[p] = append(ls[:i:i], ls[i+1:]...)
			break
		}
	}
	if len(n.listeners[p]) == 0 {
		delete(n.listeners, p)
	}
}

// listener returns the oldest listener of p, or nil.
func (n *Network) listener(p peer.ID) *Listener {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ls := n.listeners[p]; len(ls) > 0 {
		return ls[0]
	}
	return nil
}
