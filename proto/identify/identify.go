// Package identify implements the libp2p identify protocols
// (https://github.com/libp2p/specs/blob/master/identify/README.md):
// /ipfs/id/1.0.0, with which a peer asks another for its public key,
// listen addresses, protocols, versions and the address it sees us at,
// and /ipfs/id/push/1.0.0, with which a peer tells its connected peers
// that these changed.
//
// A [Service] identifies the peer of every new connection once, stores
// what it learns in the host's peerstore, answers the identify requests
// of others, and pushes our changes to connected peers when asked to.
//
// Messages are protobufs, each prefixed with its length as a varint; a
// peer may split its answer into several messages, which the receiver
// merges. Received exchanges are bounded by [MaxMessageSize] and
// [MaxMessages]; what we send is split into messages of at most 4 KiB,
// the most rust-libp2p accepts. We send no signed peer record and ignore
// those we receive.
//
// Package identify may import network, peer, peerstore, protocol, crypto
// and multistream of p2pnet's, go-multiaddr, protowire and the standard
// library. It never imports the host: it declares the [Host] it needs.
package identify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// The protocol IDs.
const (
	// ID asks a peer to identify itself.
	ID protocol.ID = "/ipfs/id/1.0.0"
	// IDPush tells a peer what changed about us.
	IDPush protocol.ID = "/ipfs/id/push/1.0.0"
)

// ServiceName is the resource manager service that identify streams
// attach to.
const ServiceName = "libp2p.identify"

// maxPushConcurrency bounds how many pushes run at once.
const maxPushConcurrency = 32

// The peerstore metadata keys identify sets, libp2p's.
const (
	// AgentVersionKey holds the peer's agent version, a string.
	AgentVersionKey = "AgentVersion"
	// ProtocolVersionKey holds the peer's protocol version, a string.
	ProtocolVersionKey = "ProtocolVersion"
)

// Errors of consuming a message.
var (
	// ErrKeyMismatch is the error of a message whose public key is not the
	// key of the peer on the connection; the whole message is ignored.
	ErrKeyMismatch = errors.New("identify: public key does not match the peer ID")
	// ErrInvalidKey is the error of a message whose public key cannot be
	// decoded; the whole message is ignored.
	ErrInvalidKey = errors.New("identify: invalid public key")
	// ErrClosed is the error of work cut short by Close.
	ErrClosed = errors.New("identify: service closed")
)

// Host is what identify needs of a libp2p host.
type Host interface {
	// ID returns our peer ID.
	ID() peer.ID
	// Peerstore returns the peerstore where identify stores what peers
	// tell and finds our public key.
	Peerstore() peerstore.Peerstore
	// Network returns the network whose connections identify watches.
	Network() network.Network
	// Addrs returns our listen addresses.
	Addrs() []ma.Multiaddr
	// Protocols returns the protocols we serve, sorted.
	Protocols() []protocol.ID
	// SetStreamHandler serves pid with h.
	SetStreamHandler(pid protocol.ID, h network.StreamHandler)
	// RemoveStreamHandler stops serving pid.
	RemoveStreamHandler(pid protocol.ID)
}

// pushSupport is what we know of a peer's support for IDPush.
type pushSupport uint8

const (
	pushUnknown pushSupport = iota
	pushSupported
	pushUnsupported
)

// connEntry is what the service keeps about one connection. Its fields
// other than done are guarded by Service.mu.
type connEntry struct {
	c        network.Conn
	next     *connEntry    // the entry of another connection to the same peer
	done     chan struct{} // closed when identify on the connection ends, then closedChan
	pushing  bool          // a push from the peer is being handled
	observed ma.Multiaddr  // our address as the peer sees it, or nil
	push     pushSupport
	sentSeq  uint64 // the last snapshot the peer got from us
}

// snapshot is what we last announced. seq grows with every change.
type snapshot struct {
	seq       uint64
	protocols []protocol.ID
	addrs     []ma.Multiaddr
}

// Service runs identify and identify/push for a host.
type Service struct {
	h     Host
	cfg   config
	ctx   context.Context // done on Close
	stop  context.CancelFunc
	notif *network.NotifyBundle

	wg          sync.WaitGroup // goroutines and handlers running
	pushTrigger chan struct{}  // cap 1: a push round is wanted

	snapMu sync.Mutex // guards the following
	snap   snapshot

	// addrMu serialises the updates of peers' addresses, so that a
	// disconnection and an identify of the same peer do not interleave.
	// It is taken before mu.
	addrMu sync.Mutex

	mu      sync.Mutex // guards the following
	started bool
	closed  bool
	// peers holds the entries of the connections to each peer, linked
	// by next: one map for the connections and their peers, where two
	// would cost twice the tables.
	peers   map[peer.ID]*connEntry
	streams map[network.Stream]struct{} // served by our handlers; nil when none
}

// NewService returns a service for h. It does nothing until Start.
func NewService(h Host, opts ...Option) (*Service, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Service{
		h:           h,
		cfg:         cfg,
		ctx:         ctx,
		stop:        stop,
		pushTrigger: make(chan struct{}, 1),
		peers:       map[peer.ID]*connEntry{},
	}
	s.notif = &network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { s.IdentifyWait(c) },
		DisconnectedF: func(_ network.Network, c network.Conn) { s.disconnected(c) },
	}
	return s, nil
}

// Start serves identify and identify/push, and identifies the peer of
// each new connection. Starting twice, or after Close, does nothing.
func (s *Service) Start() {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.wg.Add(1)
	s.mu.Unlock()

	s.h.SetStreamHandler(ID, s.handleIdentify)
	s.h.SetStreamHandler(IDPush, s.handlePush)
	s.h.Network().Notify(s.notif)
	go s.pushLoop()
}

// Close stops the service: it stops watching connections, removes the
// handlers, aborts every exchange in progress and waits for them to end.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	started := s.started
	streams := make([]network.Stream, 0, len(s.streams))
	for st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.Unlock()

	if started {
		s.h.Network().StopNotify(s.notif)
		s.h.RemoveStreamHandler(ID)
		s.h.RemoveStreamHandler(IDPush)
	}
	s.stop()
	for _, st := range streams {
		st.Reset()
	}
	s.wg.Wait()

	s.mu.Lock()
	clear(s.peers)
	s.mu.Unlock()
	return nil
}

// forgetLocked drops c's entry, if any.
func (s *Service) forgetLocked(c network.Conn) {
	p := c.RemotePeer()
	var prev *connEntry
	for e := s.peers[p]; e != nil; prev, e = e, e.next {
		if e.c != c {
			continue
		}
		switch {
		case prev != nil:
			prev.next = e.next
		case e.next != nil:
			s.peers[p] = e.next
		default:
			delete(s.peers, p)
		}
		e.next = nil
		return
	}
}

// entryLocked returns c's entry, or nil.
func (s *Service) entryLocked(c network.Conn) *connEntry {
	for e := s.peers[c.RemotePeer()]; e != nil; e = e.next {
		if e.c == c {
			return e
		}
	}
	return nil
}

// eachLocked calls f with every entry.
func (s *Service) eachLocked(f func(*connEntry)) {
	for _, e := range s.peers {
		for ; e != nil; e = e.next {
			f(e)
		}
	}
}

// closedChan is an already closed channel.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// IdentifyWait returns a channel closed once identify on c has ended,
// successfully or not; it starts identify on c if nothing has yet. The
// peerstore then holds what the peer told. Identify runs once per
// connection.
func (s *Service) IdentifyWait(c network.Conn) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.started {
		return closedChan
	}
	if e := s.entryLocked(c); e != nil {
		return e.done
	}
	if c.IsClosed() {
		return closedChan
	}
	p := c.RemotePeer()
	e := &connEntry{c: c, next: s.peers[p], done: make(chan struct{})}
	s.peers[p] = e
	s.wg.Add(1)
	go s.identifyConn(c, e)
	return e.done
}

// ObservedAddrs returns the addresses at which the peers of our open
// connections say they see us, each once, the most reported first.
func (s *Service) ObservedAddrs() []ma.Multiaddr {
	type seen struct {
		addr ma.Multiaddr
		n    int
	}
	s.mu.Lock()
	counts := map[string]*seen{}
	s.eachLocked(func(e *connEntry) {
		if e.observed == nil {
			return
		}
		k := string(e.observed.Bytes())
		if c := counts[k]; c != nil {
			c.n++
		} else {
			counts[k] = &seen{e.observed, 1}
		}
	})
	s.mu.Unlock()
	all := make([]*seen, 0, len(counts))
	for _, c := range counts {
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b *seen) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return a.addr.Compare(b.addr)
	})
	out := make([]ma.Multiaddr, len(all))
	for i, c := range all {
		out[i] = c.addr
	}
	return out
}

// Push tells every connected peer that supports identify/push (or might)
// our current protocols and addresses, if they changed since the peer
// last heard them. It returns at once: the pushes run in the background,
// one stream per connection, a bounded number at a time, and several
// calls before they start make one round.
func (s *Service) Push() {
	select {
	case s.pushTrigger <- struct{}{}:
	default:
	}
}

// Retries of failed pushes: the first comes pushRetryMin after the
// round that failed, each later one twice as late, at most pushRetryMax.
const (
	pushRetryMin = time.Second
	pushRetryMax = time.Minute
)

// pushLoop runs push rounds until Close: when asked (Push), and again
// after a round in which a push to a connection still open failed (a
// reset under load, a timeout), so that no peer keeps a stale view until
// the next change.
func (s *Service) pushLoop() {
	defer s.wg.Done()
	retry := time.NewTimer(0)
	retry.Stop()
	defer retry.Stop()
	backoff := pushRetryMin
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.pushTrigger:
		case <-retry.C:
		}
		if s.pushAll() {
			retry.Reset(backoff)
			backoff = min(2*backoff, pushRetryMax)
		} else {
			retry.Stop()
			backoff = pushRetryMin
		}
	}
}

// pushAll pushes the current snapshot to each connection that has not
// had it, waits for the pushes to end, and reports whether one failed on
// a connection that is still open.
func (s *Service) pushAll() (failed bool) {
	snap := s.currentSnapshot(false)
	s.mu.Lock()
	var conns []network.Conn
	s.eachLocked(func(e *connEntry) {
		if e.push != pushUnsupported && e.sentSeq < snap.seq {
			conns = append(conns, e.c)
		}
	})
	s.mu.Unlock()

	sem := make(chan struct{}, maxPushConcurrency)
	var wg sync.WaitGroup
	var failures atomic.Int32
	for _, c := range conns {
		select {
		case sem <- struct{}{}:
		case <-s.ctx.Done():
			wg.Wait()
			return false
		}
		wg.Go(func() {
			defer func() { <-sem }()
			err := s.pushTo(c, snap)
			if err != nil {
				slog.Debug("identify push failed", "peer", c.RemotePeer(), "err", err)
				if s.retriable(c) {
					failures.Add(1)
				}
			}
			if t := s.cfg.tracer; t != nil {
				t.PushSent(err)
			}
		})
	}
	wg.Wait()
	return failures.Load() > 0
}

// retriable reports whether a push to c that failed is worth another
// round: c is still open, and its peer did not refuse identify/push.
func (s *Service) retriable(c network.Conn) bool {
	if c.IsClosed() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entryLocked(c)
	return e != nil && e.push != pushUnsupported
}

// pushTo sends snap to the peer of c.
func (s *Service) pushTo(c network.Conn, snap snapshot) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.timeout)
	defer cancel()
	st, err := c.NewStream(network.WithAllowLimitedConn(ctx, "identify push"))
	if err != nil {
		return err
	}
	defer context.AfterFunc(ctx, func() { st.Reset() })()
	if err := st.SetProtocol(IDPush); err != nil {
		st.Reset()
		return err
	}
	if err := s.setupStream(st, 0); err != nil {
		return err
	}
	lz := multistream.NewLazyClient(st, IDPush)
	buf := s.ownMessage(c, snap).appendOwn(nil)
	if _, err := lz.Write(buf); err != nil {
		st.Reset()
		return err
	}
	if err := lz.CloseWrite(); err != nil {
		// CloseWrite waits for the peer's answer to our proposal.
		if errors.Is(err, multistream.ErrNotSupported) {
			s.updateEntry(c, func(e *connEntry) { e.push = pushUnsupported })
		}
		st.Reset()
		return err
	}
	// The peer closes the stream once it has read the push; reading to
	// that EOF also tells whether it agreed to the protocol.
	var one [1]byte
	_, err = lz.Read(one[:])
	if errors.Is(err, multistream.ErrNotSupported) {
		s.updateEntry(c, func(e *connEntry) { e.push = pushUnsupported })
	}
	if err != nil && err != io.EOF {
		st.Reset()
		return err
	}
	st.Close()
	s.updateEntry(c, func(e *connEntry) { e.sentSeq = max(e.sentSeq, snap.seq) })
	return nil
}

// updateEntry calls f on c's entry, if c still has one.
func (s *Service) updateEntry(c network.Conn, f func(*connEntry)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entryLocked(c); e != nil {
		f(e)
	}
}

// currentSnapshot returns our protocols and addresses as they are now,
// numbered: a change since the last call gets a new seq and, if push,
// asks for a push round to tell the peers that had the old one.
func (s *Service) currentSnapshot(push bool) snapshot {
	protos := slices.Clone(s.h.Protocols())
	slices.Sort(protos)
	// The host's order (most useful first, stable) is kept: appendOwn
	// relies on it, and a change of order alone is no news.
	addrs := slices.Clone(s.h.Addrs())

	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	old := s.snap
	if old.seq > 0 && slices.Equal(old.protocols, protos) && slices.EqualFunc(old.addrs, addrs, ma.Multiaddr.Equal) {
		return old
	}
	s.snap = snapshot{seq: old.seq + 1, protocols: protos, addrs: addrs}
	if push && old.seq > 0 {
		s.Push()
	}
	return s.snap
}

// ownMessage builds what we tell the peer of c.
func (s *Service) ownMessage(c network.Conn, snap snapshot) *message {
	m := &message{
		protocols:       snap.protocols,
		protocolVersion: s.cfg.protocolVersion,
		agentVersion:    s.cfg.userAgent,
		present:         hasProtocolVersion | hasAgentVersion,
	}
	if k := s.h.Peerstore().PubKey(s.h.ID()); k != nil {
		if kb, err := ic.MarshalPublicKey(k); err == nil {
			m.publicKey = kb
			m.present |= hasPublicKey
		}
	}
	remote := c.RemoteMultiaddr()
	if len(remote) > 0 {
		m.observedAddr = remote
		m.present |= hasObservedAddr
	}
	// Loopback addresses are of use only to a peer on this machine.
	viaLoopback := manet.IsIPLoopback(c.LocalMultiaddr()) || manet.IsIPLoopback(remote)
	for _, a := range snap.addrs {
		if viaLoopback || !manet.IsIPLoopback(a) {
			m.listenAddrs = append(m.listenAddrs, a)
		}
	}
	if len(m.listenAddrs) > 0 {
		m.present |= hasListenAddrs
	}
	if len(m.protocols) > 0 {
		m.present |= hasProtocols
	}
	return m
}

// track registers a stream served by a handler; it reports false once the
// service is closed.
func (s *Service) track(st network.Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.streams == nil {
		// Made when needed and dropped when empty: a host with few
		// connections serves a stream now and then, and an empty map
		// keeps its table.
		s.streams = make(map[network.Stream]struct{}, 1)
	}
	s.streams[st] = struct{}{}
	s.wg.Add(1)
	return true
}

// untrack undoes track.
func (s *Service) untrack(st network.Stream) {
	s.mu.Lock()
	delete(s.streams, st)
	if len(s.streams) == 0 {
		s.streams = nil
	}
	s.mu.Unlock()
	s.wg.Done()
}

// setupStream attaches st to the identify service, bounds it by the
// timeout and reserves mem bytes in its scope. It resets st on failure.
func (s *Service) setupStream(st network.Stream, mem int) error {
	if err := st.Scope().SetService(ServiceName); err != nil {
		st.Reset()
		return err
	}
	if err := st.SetDeadline(time.Now().Add(s.cfg.timeout)); err != nil {
		st.Reset()
		return err
	}
	if mem > 0 {
		if err := st.Scope().ReserveMemory(mem, network.ReservationPriorityAlways); err != nil {
			st.Reset()
			return err
		}
	}
	return nil
}

// handleIdentify answers an identify request.
func (s *Service) handleIdentify(st network.Stream) {
	if !s.track(st) {
		st.Reset()
		return
	}
	defer s.untrack(st)
	if err := s.setupStream(st, 0); err != nil {
		return
	}
	c := st.Conn()
	snap := s.currentSnapshot(true)
	buf := s.ownMessage(c, snap).appendOwn(nil)
	if _, err := st.Write(buf); err != nil {
		st.Reset()
		return
	}
	st.Close()
	s.updateEntry(c, func(e *connEntry) { e.sentSeq = max(e.sentSeq, snap.seq) })
}

// handlePush takes in a peer's push. A connection has at most one push
// handled at a time; others are reset.
func (s *Service) handlePush(st network.Stream) {
	c := st.Conn()
	s.mu.Lock()
	e := s.entryLocked(c)
	busy := e != nil && e.pushing
	if e != nil {
		e.pushing = true
	}
	s.mu.Unlock()
	if busy {
		st.Reset()
		return
	}
	if e != nil {
		defer s.updateEntry(c, func(e *connEntry) { e.pushing = false })
	}
	if !s.track(st) {
		st.Reset()
		return
	}
	defer s.untrack(st)
	err := s.receive(st, st, true)
	if err != nil {
		slog.Debug("identify push refused", "peer", c.RemotePeer(), "err", err)
	}
	if t := s.cfg.tracer; t != nil {
		t.PushReceived(err)
	}
}

// identifyConn runs identify on c and closes e.done.
func (s *Service) identifyConn(c network.Conn, e *connEntry) {
	defer s.wg.Done()
	done := e.done // set before this goroutine started; IdentifyWait reads it under mu
	defer func() {
		close(done)
		// The channel is not kept for the connection's life: later
		// waiters get the shared closed one.
		s.mu.Lock()
		e.done = closedChan
		s.mu.Unlock()
	}()
	err := s.identify(c)
	if t := s.cfg.tracer; t != nil && s.ctx.Err() == nil {
		t.Identified(err)
	}
	if err != nil {
		slog.Debug("identify failed", "peer", c.RemotePeer(), "err", err)
		if f := s.cfg.events.Failed; f != nil && !errors.Is(err, ErrClosed) && s.ctx.Err() == nil {
			f(c, err)
		}
	}
	if c.IsClosed() {
		s.mu.Lock()
		if s.entryLocked(c) == e {
			s.forgetLocked(c)
		}
		s.mu.Unlock()
	}
}

// identify asks the peer of c to identify itself. The proposal of the
// protocol goes out with the closing of our side, and the answer comes
// with the peer's message: one round trip.
func (s *Service) identify(c network.Conn) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.timeout)
	defer cancel()
	st, err := c.NewStream(network.WithAllowLimitedConn(ctx, "identify"))
	if err != nil {
		return fmt.Errorf("identify: opening a stream: %w", err)
	}
	defer context.AfterFunc(ctx, func() { st.Reset() })()
	if err := st.SetProtocol(ID); err != nil {
		st.Reset()
		return err
	}
	lz := multistream.NewLazyClient(st, ID)
	if err := lz.CloseWrite(); err != nil {
		st.Reset()
		return err
	}
	return s.receive(st, lz, false)
}

// receive reads a peer's message(s) from r, which reads st, and stores
// what they say.
func (s *Service) receive(st network.Stream, r io.Reader, isPush bool) error {
	if err := s.setupStream(st, readBufSize); err != nil {
		return err
	}
	defer st.Scope().ReleaseMemory(readBufSize)
	var m message
	if err := readMessages(r, &m); err != nil {
		st.Reset()
		if s.ctx.Err() != nil {
			return ErrClosed
		}
		return err
	}
	// Close after storing, so that a pusher who sees the end of the
	// stream knows its push has taken effect.
	defer st.Close()
	return s.consume(st.Conn(), &m, isPush)
}
