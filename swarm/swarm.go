package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/transport"
)

// Swarm is p2pnet's network.Network. Its methods are safe for concurrent
// use.
type Swarm struct {
	local   peer.ID
	peers   peerstore.Peerstore
	cfg     config
	backoff *dialBackoff
	fdDials chan struct{} // a semaphore: one token per running fd-using dial

	// ctx is cancelled by Close; every dial runs under it.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts every goroutine the swarm starts; Close waits for them.
	wg sync.WaitGroup

	handler      atomic.Pointer[network.StreamHandler]
	nextConnID   atomic.Uint64
	nextStreamID atomic.Uint64

	mu            sync.Mutex // guards the following
	closed        bool
	transports    map[int]transport.Transport // by protocol code
	listeners     map[*listener]struct{}
	conns         map[peer.ID][]*Conn // oldest first
	dials         map[peer.ID]*dialWorker
	directWaiters map[peer.ID]*directWaiter

	notifMu   sync.Mutex // guards notifiees
	notifiees map[network.Notifiee]struct{}
}

var _ network.Network = (*Swarm)(nil)

// directWaiter is closed when an unlimited connection to its peer is
// added; n callers wait on it.
type directWaiter struct {
	ch chan struct{}
	n  int
}

// New returns a swarm for the local peer that keeps peers' addresses and
// keys in ps. It has no transports until AddTransport and listens nowhere
// until Listen.
func New(local peer.ID, ps peerstore.Peerstore, opts ...Option) (*Swarm, error) {
	if err := local.Validate(); err != nil {
		return nil, fmt.Errorf("swarm: local peer: %w", err)
	}
	if ps == nil {
		return nil, errors.New("swarm: nil peerstore")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Swarm{
		local:         local,
		peers:         ps,
		cfg:           cfg,
		backoff:       newDialBackoff(cfg.backoffBase, cfg.backoffCoef, cfg.backoffMax),
		fdDials:       make(chan struct{}, cfg.maxFDDials),
		ctx:           ctx,
		cancel:        cancel,
		transports:    map[int]transport.Transport{},
		listeners:     map[*listener]struct{}{},
		conns:         map[peer.ID][]*Conn{},
		dials:         map[peer.ID]*dialWorker{},
		directWaiters: map[peer.ID]*directWaiter{},
		notifiees:     map[network.Notifiee]struct{}{},
	}, nil
}

// LocalPeer returns our peer ID.
func (s *Swarm) LocalPeer() peer.ID { return s.local }

// Peerstore returns the peerstore given to New.
func (s *Swarm) Peerstore() peerstore.Peerstore { return s.peers }

// ResourceManager returns the resource manager the swarm accounts streams
// in.
func (s *Swarm) ResourceManager() network.ResourceManager { return s.cfg.rcmgr }

// SetStreamHandler sets the handler of inbound streams; nil removes it
// (inbound streams are then reset). Each call of the handler runs on a
// goroutine of its own.
func (s *Swarm) SetStreamHandler(h network.StreamHandler) {
	if h == nil {
		s.handler.Store(nil)
		return
	}
	s.handler.Store(&h)
}

func (s *Swarm) streamHandler() network.StreamHandler {
	if h := s.handler.Load(); h != nil {
		return *h
	}
	return nil
}

// Close closes the listeners, the connections and then the transports,
// and returns once every goroutine the swarm started has ended, stream
// handlers included (their streams are reset, so they should return
// promptly). It must not be called from a notifiee or a stream handler.
// Closing again does nothing.
func (s *Swarm) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	listeners := slices.Collect(maps.Keys(s.listeners))
	var conns []*Conn
	for _, cs := range s.conns {
		conns = append(conns, cs...)
	}
	s.mu.Unlock()

	// Stop the dial workers and dials; then no new connection can appear.
	s.cancel()
	var errs []error
	for _, l := range listeners {
		if err := l.tl.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("close listener %s: %w", l.addr, err))
		}
	}
	// In parallel: closing a connection may wait for the multiplexer to
	// flush a GoAway to an unresponsive peer.
	var closing sync.WaitGroup
	for _, c := range conns {
		closing.Go(func() { c.Close() })
	}
	closing.Wait()
	s.wg.Wait()

	s.mu.Lock()
	tpts := map[transport.Transport]struct{}{}
	for _, t := range s.transports {
		tpts[t] = struct{}{}
	}
	s.mu.Unlock()
	for t := range tpts {
		if err := t.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close transport %T: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

// Notify registers n for the swarm's events.
func (s *Swarm) Notify(n network.Notifiee) {
	s.notifMu.Lock()
	s.notifiees[n] = struct{}{}
	s.notifMu.Unlock()
}

// StopNotify unregisters n.
func (s *Swarm) StopNotify(n network.Notifiee) {
	s.notifMu.Lock()
	delete(s.notifiees, n)
	s.notifMu.Unlock()
}

// notifyAll calls f for each notifiee, one after the other, holding no
// lock, so that a notifiee may call back into the swarm.
func (s *Swarm) notifyAll(f func(network.Notifiee)) {
	s.notifMu.Lock()
	ns := slices.Collect(maps.Keys(s.notifiees))
	s.notifMu.Unlock()
	for _, n := range ns {
		f(n)
	}
}

// addConn registers a new connection and starts its goroutine, which fires
// the Connected notifications and then accepts streams. It closes tc and
// fails when the swarm is closed or the connection gater refuses it.
func (s *Swarm) addConn(tc transport.CapableConn, dir network.Direction) (*Conn, error) {
	c := newConn(s, tc, dir)
	p := c.RemotePeer()
	if pk := tc.RemotePublicKey(); pk != nil {
		// A key that does not match p was refused by the handshake; an
		// error here changes nothing.
		_ = s.peers.AddPubKey(p, pk)
	}
	if g := s.cfg.gater; g != nil {
		if ok, reason := g.InterceptUpgraded(c); !ok {
			tc.Close()
			return nil, &connmgr.GatedError{Hook: connmgr.HookUpgraded, Peer: p, Addr: tc.RemoteMultiaddr(), Reason: reason}
		}
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		tc.Close()
		return nil, ErrSwarmClosed
	}
	s.conns[p] = append(s.conns[p], c)
	if w, ok := s.directWaiters[p]; ok && !c.stat.Limited {
		close(w.ch)
		delete(s.directWaiters, p)
	}
	// Added under mu while not closed, so before Close's Wait.
	s.wg.Add(1)
	s.mu.Unlock()

	// The peer answered: its addresses are worth dialing again.
	s.backoff.clear(p)
	if t := s.cfg.tracer; t != nil {
		t.ConnOpened(c)
	}
	go c.run()
	return c, nil
}

// removeConn forgets c.
func (s *Swarm) removeConn(c *Conn) {
	p := c.RemotePeer()
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := slices.DeleteFunc(s.conns[p], func(x *Conn) bool { return x == c })
	if len(cs) == 0 {
		delete(s.conns, p)
	} else {
		s.conns[p] = cs
	}
}

// Connectedness reports Connected when an unlimited connection to p is
// open, Limited when only limited ones are, and NotConnected otherwise.
func (s *Swarm) Connectedness(p peer.ID) network.Connectedness {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := network.NotConnected
	for _, c := range s.conns[p] {
		if c.IsClosed() {
			continue
		}
		if !c.stat.Limited {
			return network.Connected
		}
		res = network.Limited
	}
	return res
}

// Peers returns the peers we have connections to.
func (s *Swarm) Peers() []peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.conns))
}

// Conns returns every open connection.
func (s *Swarm) Conns() []network.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []network.Conn
	for _, cs := range s.conns {
		for _, c := range cs {
			out = append(out, c)
		}
	}
	return out
}

// ConnsToPeer returns the open connections to p, oldest first.
func (s *Swarm) ConnsToPeer(p peer.ID) []network.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]network.Conn, len(s.conns[p]))
	for i, c := range s.conns[p] {
		out[i] = c
	}
	return out
}

// ClosePeer closes every connection to p.
func (s *Swarm) ClosePeer(p peer.ID) error {
	s.mu.Lock()
	cs := slices.Clone(s.conns[p])
	s.mu.Unlock()
	var errs []error
	for _, c := range cs {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// bestConn returns the best open connection to p, or nil: an unlimited
// one over a limited one, a direct one over a relayed one, then the one
// with more streams, then the newest.
func (s *Swarm) bestConn(p peer.ID) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bestConnLocked(p)
}

func (s *Swarm) bestConnLocked(p peer.ID) *Conn {
	var best *Conn
	bestStreams := 0
	for _, c := range s.conns[p] {
		if c.IsClosed() {
			continue
		}
		n := c.numStreams()
		if best == nil || !betterConn(best, bestStreams, c, n) {
			best, bestStreams = c, n
		}
	}
	return best
}

// betterConn reports whether a (with na streams) is strictly better than
// b (with nb streams).
func betterConn(a *Conn, na int, b *Conn, nb int) bool {
	if a.stat.Limited != b.stat.Limited {
		return !a.stat.Limited
	}
	if a.relayed() != b.relayed() {
		return !a.relayed()
	}
	return na > nb
}

// bestAcceptableConn is bestConn, except that under
// network.WithForceDirectDial only a direct connection will do.
func (s *Swarm) bestAcceptableConn(ctx context.Context, p peer.ID) *Conn {
	c := s.bestConn(p)
	if c == nil {
		return nil
	}
	if force, _ := network.GetForceDirectDial(ctx); force && c.relayed() {
		return nil
	}
	return c
}
