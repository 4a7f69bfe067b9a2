package testtransport

import (
	"context"
	"fmt"
	"net"
	"sync"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
)

// Conn is one end of an in-memory connection. It is a
// transport.CapableConn and a network.ConnStat (reporting Limited).
type Conn struct {
	local, remote       peer.ID
	localKey, remoteKey ic.PubKey
	laddr, raddr        ma.Multiaddr
	limited             bool
	blockOpen           bool
	other               *Conn
	life                *connLife // shared by both ends
	incoming            chan *Stream

	mu      sync.Mutex // guards streams
	streams map[*Stream]struct{}
}

var (
	_ transport.CapableConn = (*Conn)(nil)
	_ network.ConnStat      = (*Conn)(nil)
)

// connLife is closed when either end closes.
type connLife struct {
	once sync.Once
	dead chan struct{}
}

func newConnPair(dialer peer.ID, dialerKey ic.PubKey, dialerAddr ma.Multiaddr,
	listener peer.ID, listenerKey ic.PubKey, listenerAddr ma.Multiaddr, b Behaviour) (*Conn, *Conn) {
	life := &connLife{dead: make(chan struct{})}
	d := &Conn{
		local: dialer, remote: listener, localKey: dialerKey, remoteKey: listenerKey,
		laddr: dialerAddr, raddr: listenerAddr, limited: b.Limited, blockOpen: b.BlockOpenStream,
		life: life, incoming: make(chan *Stream, 64), streams: map[*Stream]struct{}{},
	}
	l := &Conn{
		local: listener, remote: dialer, localKey: listenerKey, remoteKey: dialerKey,
		laddr: listenerAddr, raddr: dialerAddr, limited: b.Limited,
		life: life, incoming: make(chan *Stream, 64), streams: map[*Stream]struct{}{},
	}
	d.other, l.other = l, d
	return d, l
}

// Close closes both ends and resets their streams.
func (c *Conn) Close() error {
	c.life.once.Do(func() {
		close(c.life.dead)
		c.resetAll()
		c.other.resetAll()
	})
	return nil
}

func (c *Conn) resetAll() {
	c.mu.Lock()
	streams := c.streams
	c.streams = map[*Stream]struct{}{}
	c.mu.Unlock()
	for s := range streams {
		s.Reset()
	}
}

// IsClosed reports whether either end closed the connection.
func (c *Conn) IsClosed() bool {
	select {
	case <-c.life.dead:
		return true
	default:
		return false
	}
}

func (c *Conn) track(s *Stream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.IsClosed() {
		return false
	}
	c.streams[s] = struct{}{}
	return true
}

func (c *Conn) untrack(s *Stream) {
	c.mu.Lock()
	delete(c.streams, s)
	c.mu.Unlock()
}

// OpenStream opens a stream; the other end's AcceptStream returns its
// other half.
func (c *Conn) OpenStream(ctx context.Context) (network.MuxedStream, error) {
	if c.blockOpen {
		<-ctx.Done()
		return nil, fmt.Errorf("testtransport: open stream: %w", ctx.Err())
	}
	mine, theirs := newStreamPair(c, c.other)
	var err error
	if !c.track(mine) || !c.other.track(theirs) {
		mine.Reset()
		theirs.Reset()
		return nil, fmt.Errorf("testtransport: open stream: %w", net.ErrClosed)
	}
	select {
	case c.other.incoming <- theirs:
		return mine, nil
	case <-c.life.dead:
		err = net.ErrClosed
	case <-ctx.Done():
		err = ctx.Err()
	}
	mine.Reset()
	theirs.Reset()
	return nil, fmt.Errorf("testtransport: open stream: %w", err)
}

// AcceptStream returns the next stream the other end opened, or an error
// wrapping net.ErrClosed once the connection is closed.
func (c *Conn) AcceptStream() (network.MuxedStream, error) {
	select {
	case <-c.life.dead:
		return nil, fmt.Errorf("testtransport: accept stream: %w", net.ErrClosed)
	default:
	}
	select {
	case s := <-c.incoming:
		return s, nil
	case <-c.life.dead:
		return nil, fmt.Errorf("testtransport: accept stream: %w", net.ErrClosed)
	}
}

// Stat reports whether the connection is limited.
func (c *Conn) Stat() network.ConnStats {
	return network.ConnStats{Stats: network.Stats{Limited: c.limited}}
}

// LocalPeer returns this end's peer.
func (c *Conn) LocalPeer() peer.ID { return c.local }

// RemotePeer returns the other end's peer.
func (c *Conn) RemotePeer() peer.ID { return c.remote }

// RemotePublicKey returns the other end's key.
func (c *Conn) RemotePublicKey() ic.PubKey { return c.remoteKey }

// ConnState names the transport "memory".
func (c *Conn) ConnState() network.ConnectionState {
	return network.ConnectionState{Transport: "memory"}
}

// LocalMultiaddr returns this end's address.
func (c *Conn) LocalMultiaddr() ma.Multiaddr { return c.laddr }

// RemoteMultiaddr returns the other end's address (for the dialer, the
// address dialed).
func (c *Conn) RemoteMultiaddr() ma.Multiaddr { return c.raddr }

// Scope returns a scope that accounts nothing.
func (c *Conn) Scope() network.ConnScope { return &network.NullScope{} }
