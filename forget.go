package p2pnet

import (
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// DefaultForgetPeersAfter is how long after its last connection closes a
// peer is forgotten, unless ForgetPeersAfter says otherwise. It is
// go-libp2p's grace period.
const DefaultForgetPeersAfter = time.Minute

// peerstoreGCInterval is how often the host has its peerstore drop
// expired addresses, as go-libp2p's does.
const peerstoreGCInterval = time.Minute

// forgetStore is what a forgetter needs of the peerstore.
type forgetStore interface {
	RemovePeer(peer.ID)
	GC()
}

// forgetter makes the host forget the peers it no longer talks to, so
// that peers that come and go do not grow its memory: once a peer has had
// no connection for the grace period, the peerstore drops its keys,
// protocols, metadata and latency (RemovePeer). Its addresses stay until
// their TTLs run out (identify gives a disconnected peer's addresses
// RecentlyConnectedAddrTTL), and the sweep that runs every
// peerstoreGCInterval then frees what is left. The host's own peer is
// never forgotten.
//
// A forgetter is a network.Notifiee. It counts each peer's connections,
// so it must be registered before the network has any. Each disconnected
// peer has a timer, stopped if the peer connects again in time.
type forgetter struct {
	ps    forgetStore
	self  peer.ID
	grace time.Duration

	done chan struct{}  // closed by close: stops the sweep
	wg   sync.WaitGroup // the sweep and the timers' callbacks

	// forgotten, when set, is called after each peer is forgotten; tests
	// set it before the first notification.
	forgotten func(peer.ID)

	mu      sync.Mutex // guards the following
	closed  bool
	conns   map[peer.ID]int          // open connections, per peer
	pending map[peer.ID]*forgetTimer // peers without connections
}

// forgetTimer is the timer of a peer's forgetting; its callback does
// nothing once the peer's entry in pending is another or none.
type forgetTimer struct{ t *time.Timer }

var _ network.Notifiee = (*forgetter)(nil)

// newForgetter returns a forgetter of the peers of ps other than self,
// grace after their last disconnection, that has ps drop expired
// addresses every gcEvery. Its goroutine runs until close.
func newForgetter(ps forgetStore, self peer.ID, grace, gcEvery time.Duration) *forgetter {
	f := &forgetter{
		ps:      ps,
		self:    self,
		grace:   grace,
		done:    make(chan struct{}),
		conns:   map[peer.ID]int{},
		pending: map[peer.ID]*forgetTimer{},
	}
	f.wg.Add(1)
	go f.sweep(gcEvery)
	return f
}

// sweep has the peerstore drop expired addresses every interval until
// close.
func (f *forgetter) sweep(interval time.Duration) {
	defer f.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			f.ps.GC()
		case <-f.done:
			return
		}
	}
}

// Connected counts c and keeps its peer from being forgotten.
func (f *forgetter) Connected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.conns[p]++
	if ft := f.pending[p]; ft != nil {
		delete(f.pending, p)
		if ft.t.Stop() {
			f.wg.Done() // the callback will not run
		}
	}
}

// Disconnected uncounts c; if it was its peer's last connection, the
// peer is forgotten after the grace period unless it connects again.
func (f *forgetter) Disconnected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if f.conns[p] > 1 {
		f.conns[p]--
		return
	}
	delete(f.conns, p)
	if p == f.self || f.pending[p] != nil {
		return
	}
	ft := &forgetTimer{}
	f.pending[p] = ft
	f.wg.Add(1)
	ft.t = time.AfterFunc(f.grace, func() { f.forget(p, ft) })
}

// forget removes what the peerstore holds about p, unless ft is no
// longer p's timer.
func (f *forgetter) forget(p peer.ID, ft *forgetTimer) {
	defer f.wg.Done()
	f.mu.Lock()
	if f.closed || f.pending[p] != ft {
		f.mu.Unlock()
		return
	}
	delete(f.pending, p)
	// Under f.mu, so that a connection notified meanwhile comes before
	// (and cancels) or after (and finds the peer forgotten).
	f.ps.RemovePeer(p)
	f.mu.Unlock()
	if f.forgotten != nil {
		f.forgotten(p)
	}
}

// Listen does nothing.
func (f *forgetter) Listen(network.Network, ma.Multiaddr) {}

// ListenClose does nothing.
func (f *forgetter) ListenClose(network.Network, ma.Multiaddr) {}

// close stops the timers and the sweep and waits for them: peers not yet
// forgotten stay remembered. Notifications after close do nothing.
// Closing twice is fine.
func (f *forgetter) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.wg.Wait()
		return
	}
	f.closed = true
	for _, ft := range f.pending {
		if ft.t.Stop() {
			f.wg.Done()
		}
	}
	clear(f.pending)
	clear(f.conns)
	f.mu.Unlock()
	close(f.done)
	f.wg.Wait()
}

// startForgetting makes h forget peers grace after their last
// connection closes, and sweep its peerstore every peerstoreGCInterval
// (see forgetter). It must be called before h has connections: New calls
// it before listening. stopForgetting undoes it.
func (h *Host) startForgetting(grace time.Duration) *forgetter {
	f := newForgetter(h.ps, h.id, grace, peerstoreGCInterval)
	h.swarm.Notify(f)
	return f
}

// stopForgetting stops f, which startForgetting returned, or does nothing
// if f is nil. Close calls it before closing the swarm, so that closing
// the connections schedules no forgetting.
func (h *Host) stopForgetting(f *forgetter) {
	if f == nil {
		return
	}
	h.swarm.StopNotify(f)
	f.close()
}
