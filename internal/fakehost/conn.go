package fakehost

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// ErrConnClosed is what NewStream on a closed [Conn] returns.
var ErrConnClosed = errors.New("fake conn: closed")

// Connect connects a, at aAddr, and b, at bAddr, and fires the Connected
// notifications of both sides before either accepts a stream. It returns
// a's and b's ends.
func Connect(a, b *Host, aAddr, bAddr ma.Multiaddr) (ab, ba *Conn) {
	return connect(a, b, aAddr, bAddr, false)
}

// ConnectLimited is Connect for a limited connection, as a relayed one
// is: both ends' Stat says Limited.
func ConnectLimited(a, b *Host, aAddr, bAddr ma.Multiaddr) (ab, ba *Conn) {
	return connect(a, b, aAddr, bAddr, true)
}

func connect(a, b *Host, aAddr, bAddr ma.Multiaddr, limited bool) (ab, ba *Conn) {
	ab = newConn(a, b, aAddr, bAddr, network.DirOutbound)
	ba = newConn(b, a, bAddr, aAddr, network.DirInbound)
	ab.limited, ba.limited = limited, limited
	ab.other, ba.other = ba, ab
	a.net.add(ab)
	b.net.add(ba)
	a.net.notify(func(n network.Notifiee) { n.Connected(a.net, ab) })
	b.net.notify(func(n network.Notifiee) { n.Connected(b.net, ba) })
	close(ab.ready)
	close(ba.ready)
	return ab, ba
}

// Link connects a and b, without addresses, so that each can open
// streams to the other with [Host.NewStream].
func Link(a, b *Host) { Connect(a, b, nil, nil) }

var connIDs atomic.Uint64

// Conn is one end of an in-memory connection.
type Conn struct {
	host, remote *Host
	laddr, raddr ma.Multiaddr
	dir          network.Direction
	limited      bool
	id           string
	other        *Conn
	ready        chan struct{} // closed after the Connected notifications

	opened atomic.Int32 // streams opened on this end

	mu      sync.Mutex // guards the following
	closed  bool
	streams []*Stream
}

var _ network.Conn = (*Conn)(nil)

func newConn(h, remote *Host, laddr, raddr ma.Multiaddr, dir network.Direction) *Conn {
	return &Conn{host: h, remote: remote, laddr: laddr, raddr: raddr, dir: dir,
		id: strconv.FormatUint(connIDs.Add(1), 10), ready: make(chan struct{})}
}

// Opened returns how many streams this end opened.
func (c *Conn) Opened() int32 { return c.opened.Load() }

// Disconnect closes both ends, resetting their streams, and fires the
// Disconnected notifications of both sides.
func (c *Conn) Disconnect() {
	for _, x := range []*Conn{c, c.other} {
		x.mu.Lock()
		x.closed = true
		streams := x.streams
		x.streams = nil
		x.mu.Unlock()
		for _, s := range streams {
			s.Reset()
		}
		x.host.net.remove(x)
	}
	c.host.net.notify(func(n network.Notifiee) { n.Disconnected(c.host.net, c) })
	c.other.host.net.notify(func(n network.Notifiee) { n.Disconnected(c.other.host.net, c.other) })
}

func (c *Conn) addStream(s *Stream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.streams = append(c.streams, s)
	return true
}

// NewStream opens a stream to the peer, which negotiates it with its
// router; the caller selects the protocol.
func (c *Conn) NewStream(ctx context.Context) (network.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.newStream()
}

func (c *Conn) newStream() (*Stream, error) {
	c.opened.Add(1)
	out, in := newStreamPair(c, c.other)
	if !c.addStream(out) || !c.other.addStream(in) {
		out.Reset()
		return nil, ErrConnClosed
	}
	c.remote.accept(c.other, in)
	return out, nil
}

// Close disconnects the connection.
func (c *Conn) Close() error {
	c.Disconnect()
	return nil
}

// IsClosed reports whether the connection is closed.
func (c *Conn) IsClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// ID returns the connection's ID, unique in the process.
func (c *Conn) ID() string { return c.id }

// GetStreams returns nil: the fake does not list its streams.
func (c *Conn) GetStreams() []network.Stream { return nil }

// LocalPeer returns the peer ID of this end's host.
func (c *Conn) LocalPeer() peer.ID { return c.host.id }

// RemotePeer returns the peer ID of the other end's host.
func (c *Conn) RemotePeer() peer.ID { return c.remote.id }

// RemotePublicKey returns the public key of the other end's host.
func (c *Conn) RemotePublicKey() ic.PubKey { return c.remote.priv.GetPublic() }

// ConnState returns the zero state.
func (c *Conn) ConnState() network.ConnectionState { return network.ConnectionState{} }

// LocalMultiaddr returns this end's address, given to [Connect].
func (c *Conn) LocalMultiaddr() ma.Multiaddr { return c.laddr }

// RemoteMultiaddr returns the other end's address, given to [Connect].
func (c *Conn) RemoteMultiaddr() ma.Multiaddr { return c.raddr }

// Stat returns the connection's direction, and whether it is limited.
func (c *Conn) Stat() network.ConnStats {
	return network.ConnStats{Stats: network.Stats{Direction: c.dir, Limited: c.limited}}
}

// Scope returns a scope that limits nothing.
func (c *Conn) Scope() network.ConnScope { return &network.NullScope{} }
