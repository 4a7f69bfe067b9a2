package swarm

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
)

// Conn is a connection of the swarm: a transport's CapableConn with the
// streams opened on it. It implements network.Conn.
type Conn struct {
	swarm *Swarm
	tc    transport.CapableConn
	id    uint64
	stat  network.ConnStats // NumStreams is kept in streams; the rest never changes
	// connected is closed once the Connected notifications returned.
	connected chan struct{}

	mu       sync.Mutex // guards the following
	closed   bool
	closeErr error
	streams  map[*Stream]struct{}
}

var _ network.Conn = (*Conn)(nil)

func newConn(s *Swarm, tc transport.CapableConn, dir network.Direction) *Conn {
	var stat network.ConnStats
	if cs, ok := tc.(network.ConnStat); ok {
		stat = cs.Stat()
	}
	stat.Direction = dir
	stat.Opened = time.Now()
	stat.NumStreams = 0
	return &Conn{
		swarm:     s,
		tc:        tc,
		id:        s.nextConnID.Add(1),
		stat:      stat,
		connected: make(chan struct{}),
		streams:   map[*Stream]struct{}{},
	}
}

// run is the connection's one goroutine: it fires Connected, accepts the
// remote's streams until the connection dies, then closes the connection
// and fires Disconnected. So Connected precedes every inbound stream and
// Disconnected follows Connected.
func (c *Conn) run() {
	s := c.swarm
	defer s.wg.Done()
	s.notifyAll(func(n network.Notifiee) { n.Connected(s, c) })
	close(c.connected)
	for {
		ms, err := c.tc.AcceptStream()
		if err != nil {
			break
		}
		c.handleInbound(ms)
	}
	c.Close()
	s.notifyAll(func(n network.Notifiee) { n.Disconnected(s, c) })
}

// Limit returns the duration and data limits that the relay of a
// limited (relayed) connection announced, when its transport knows them
// (transport/circuit does); zero means no limit or none known.
func (c *Conn) Limit() (time.Duration, int64) {
	if l, ok := c.tc.(interface{ Limit() (time.Duration, int64) }); ok {
		return l.Limit()
	}
	return 0, 0
}

// connAttacher is what a resource manager implements (rcmgr.Manager
// does) to count an inbound stream against the connection it came on
// until its protocol is named.
type connAttacher interface {
	AttachConn(network.StreamScope, network.ConnScope) error
}

// handleInbound accounts an inbound stream and starts the handler on it,
// or resets it when the resource manager refuses it, no handler is set or
// the connection is closing.
func (c *Conn) handleInbound(ms network.MuxedStream) {
	s := c.swarm
	scope, err := s.cfg.rcmgr.OpenStream(c.RemotePeer(), network.DirInbound)
	if err != nil {
		refuseStream(ms, err)
		return
	}
	// A manager that caps unnegotiated streams per connection learns
	// which connection this one came on.
	if a, ok := s.cfg.rcmgr.(connAttacher); ok {
		if err := a.AttachConn(scope, c.tc.Scope()); err != nil {
			scope.Done()
			refuseStream(ms, err)
			return
		}
	}
	st, err := c.addStream(ms, network.DirInbound, scope)
	if err != nil {
		return
	}
	h := s.streamHandler()
	if h == nil {
		st.Reset()
		return
	}
	// run holds a count of wg, so this Add cannot race with Close's Wait.
	s.wg.Go(func() { h(st) })
}

// waitConnected waits until the Connected notifications have returned.
func (c *Conn) waitConnected(ctx context.Context) error {
	select {
	case <-c.connected:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ID returns the connection's identifier, unique in this swarm.
func (c *Conn) ID() string { return strconv.FormatUint(c.id, 10) }

// String describes the connection for logs.
func (c *Conn) String() string {
	return fmt.Sprintf("<swarm.Conn %s %s (%s) <-> %s (%s)>", c.ID(),
		c.LocalMultiaddr(), c.LocalPeer(), c.RemoteMultiaddr(), c.RemotePeer())
}

// Close closes the connection, resets its streams and removes it from the
// swarm. The Disconnected notifications follow on the connection's own
// goroutine, so Close may be called from a notifiee. Closing again returns
// the first Close's result.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		err := c.closeErr
		c.mu.Unlock()
		return err
	}
	c.closed = true
	streams := c.streams
	c.streams = nil
	c.mu.Unlock()

	c.swarm.removeConn(c)
	err := c.tc.Close()
	if t := c.swarm.cfg.tracer; t != nil {
		t.ConnClosed(c, time.Since(c.stat.Opened))
	}
	for st := range streams {
		st.Reset()
	}
	c.mu.Lock()
	c.closeErr = err
	c.mu.Unlock()
	return err
}

// IsClosed reports whether the connection is closed.
func (c *Conn) IsClosed() bool { return c.tc.IsClosed() }

// relayed reports whether the connection goes through a circuit relay.
func (c *Conn) relayed() bool { return isRelayAddr(c.tc.RemoteMultiaddr()) }

// NewStream opens a stream to the remote peer on this connection. A
// limited connection refuses with network.ErrLimitedConn unless ctx
// carries network.WithAllowLimitedConn. The stream is accounted in the
// resource manager before it is opened. Without a deadline in ctx,
// opening gives up after DefaultNewStreamTimeout.
func (c *Conn) NewStream(ctx context.Context) (network.Stream, error) {
	st, err := c.newStream(ctx)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (c *Conn) newStream(ctx context.Context) (*Stream, error) {
	if c.stat.Limited {
		if ok, _ := network.GetAllowLimitedConn(ctx); !ok {
			return nil, network.ErrLimitedConn
		}
	}
	scope, err := c.swarm.cfg.rcmgr.OpenStream(c.RemotePeer(), network.DirOutbound)
	if err != nil {
		return nil, fmt.Errorf("swarm: open stream to %s: %w", c.RemotePeer(), err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultNewStreamTimeout)
		defer cancel()
	}
	ms, err := c.tc.OpenStream(ctx)
	if err != nil {
		scope.Done()
		return nil, fmt.Errorf("swarm: open stream to %s: %w", c.RemotePeer(), err)
	}
	return c.addStream(ms, network.DirOutbound, scope)
}

// addStream registers a new stream. On a closed connection it resets ms,
// ends scope and fails.
func (c *Conn) addStream(ms network.MuxedStream, dir network.Direction, scope network.StreamManagementScope) (*Stream, error) {
	t := c.swarm.cfg.tracer
	st := &Stream{
		ms:     ms,
		conn:   c,
		scope:  scope,
		id:     c.swarm.nextStreamID.Add(1),
		stat:   network.Stats{Direction: dir, Opened: time.Now(), Limited: c.stat.Limited},
		traced: t != nil,
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		ms.Reset()
		scope.Done()
		return nil, ErrConnClosed
	}
	c.streams[st] = struct{}{}
	c.mu.Unlock()
	if t != nil {
		t.StreamOpened(dir)
	}
	return st, nil
}

// removeStream forgets st.
func (c *Conn) removeStream(st *Stream) {
	c.mu.Lock()
	delete(c.streams, st)
	c.mu.Unlock()
}

func (c *Conn) numStreams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams)
}

// GetStreams returns the connection's open streams.
func (c *Conn) GetStreams() []network.Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]network.Stream, 0, len(c.streams))
	for st := range c.streams {
		out = append(out, st)
	}
	return out
}

// Stat returns the connection's direction, opening time, whether it is
// limited, and its number of open streams.
func (c *Conn) Stat() network.ConnStats {
	stat := c.stat
	stat.NumStreams = c.numStreams()
	return stat
}

// Scope returns the connection's resource scope.
func (c *Conn) Scope() network.ConnScope { return c.tc.Scope() }

// ConnState describes the connection's transport, security and
// multiplexer.
func (c *Conn) ConnState() network.ConnectionState { return c.tc.ConnState() }

// LocalPeer returns our peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.tc.LocalPeer() }

// RemotePeer returns the remote peer's ID.
func (c *Conn) RemotePeer() peer.ID { return c.tc.RemotePeer() }

// RemotePublicKey returns the remote peer's public key.
func (c *Conn) RemotePublicKey() ic.PubKey { return c.tc.RemotePublicKey() }

// LocalMultiaddr returns our end's address.
func (c *Conn) LocalMultiaddr() ma.Multiaddr { return c.tc.LocalMultiaddr() }

// RemoteMultiaddr returns the remote end's address.
func (c *Conn) RemoteMultiaddr() ma.Multiaddr { return c.tc.RemoteMultiaddr() }
