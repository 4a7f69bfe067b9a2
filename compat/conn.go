package compat

import (
	"context"
	"errors"
	"fmt"
	"time"

	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	lprotocol "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/p2pnet/p2pnet/network"

	ma "github.com/multiformats/go-multiaddr"
)

// conn is a p2pnet connection seen as go-libp2p's network.Conn. It is a
// comparable value holding only the p2pnet connection, so two views of
// the same connection are equal (go-libp2p code keys maps by Conn).
type conn struct{ c network.Conn }

var _ lnetwork.Conn = conn{}

// Libp2pConn returns c seen as go-libp2p's network.Conn.
func Libp2pConn(c network.Conn) lnetwork.Conn {
	if c == nil {
		return nil
	}
	return conn{c}
}

// P2PNetConn returns the p2pnet connection behind c, if c came from this
// package.
func P2PNetConn(c lnetwork.Conn) (network.Conn, bool) {
	cc, ok := c.(conn)
	return cc.c, ok
}

func (c conn) Close() error { return Libp2pError(c.c.Close()) }

// CloseWithError closes the connection. p2pnet connections cannot carry
// a close code to the peer: with a code other than ConnNoError, the
// connection is closed all the same and the error says the code was not
// sent (errors.Is errors.ErrUnsupported).
func (c conn) CloseWithError(code lnetwork.ConnErrorCode) error {
	err := c.c.Close()
	if code != lnetwork.ConnNoError {
		return errors.Join(Libp2pError(err), fmt.Errorf("compat: connection closed without sending close code %#x: %w", uint32(code), errors.ErrUnsupported))
	}
	return Libp2pError(err)
}

func (c conn) LocalPeer() lpeer.ID  { return lpeer.ID(c.c.LocalPeer()) }
func (c conn) RemotePeer() lpeer.ID { return lpeer.ID(c.c.RemotePeer()) }

func (c conn) RemotePublicKey() lcrypto.PubKey {
	k, err := Libp2pPubKey(c.c.RemotePublicKey())
	if err != nil {
		return nil
	}
	return k
}

func (c conn) ConnState() lnetwork.ConnectionState {
	s := c.c.ConnState()
	return lnetwork.ConnectionState{
		StreamMultiplexer:         lprotocol.ID(s.StreamMultiplexer),
		Security:                  lprotocol.ID(s.Security),
		Transport:                 s.Transport,
		UsedEarlyMuxerNegotiation: s.UsedEarlyMuxerNegotiation,
	}
}

func (c conn) LocalMultiaddr() ma.Multiaddr  { return c.c.LocalMultiaddr() }
func (c conn) RemoteMultiaddr() ma.Multiaddr { return c.c.RemoteMultiaddr() }

func (c conn) Stat() lnetwork.ConnStats {
	s := c.c.Stat()
	return lnetwork.ConnStats{Stats: libp2pStats(s.Stats), NumStreams: s.NumStreams}
}

func libp2pStats(s network.Stats) lnetwork.Stats {
	return lnetwork.Stats{Direction: lnetwork.Direction(s.Direction), Opened: s.Opened, Limited: s.Limited, Extra: s.Extra}
}

func (c conn) Scope() lnetwork.ConnScope { return scopeOf(c.c.Scope()) }
func (c conn) ID() string                { return c.c.ID() }
func (c conn) IsClosed() bool            { return c.c.IsClosed() }

func (c conn) NewStream(ctx context.Context) (lnetwork.Stream, error) {
	s, err := c.c.NewStream(P2PNetContext(ctx))
	if err != nil {
		return nil, Libp2pError(err)
	}
	return stream{s}, nil
}

func (c conn) GetStreams() []lnetwork.Stream {
	ss := c.c.GetStreams()
	out := make([]lnetwork.Stream, len(ss))
	for i, s := range ss {
		out[i] = stream{s}
	}
	return out
}

// As sets target, a *network.Conn of p2pnet's, to the p2pnet connection.
func (c conn) As(target any) bool {
	if t, ok := target.(*network.Conn); ok {
		*t = c.c
		return true
	}
	return false
}

func (c conn) String() string { return fmt.Sprintf("compat.conn{%v}", c.c) }

// stream is a p2pnet stream seen as go-libp2p's network.Stream; a
// comparable value like conn.
type stream struct{ s network.Stream }

var _ lnetwork.Stream = stream{}

// Libp2pStream returns s seen as go-libp2p's network.Stream.
func Libp2pStream(s network.Stream) lnetwork.Stream {
	if s == nil {
		return nil
	}
	return stream{s}
}

// P2PNetStream returns the p2pnet stream behind s, if s came from this
// package.
func P2PNetStream(s lnetwork.Stream) (network.Stream, bool) {
	ss, ok := s.(stream)
	return ss.s, ok
}

func (s stream) Read(b []byte) (int, error) {
	n, err := s.s.Read(b)
	return n, Libp2pError(err)
}

func (s stream) Write(b []byte) (int, error) {
	n, err := s.s.Write(b)
	return n, Libp2pError(err)
}

func (s stream) Close() error      { return Libp2pError(s.s.Close()) }
func (s stream) CloseWrite() error { return Libp2pError(s.s.CloseWrite()) }
func (s stream) CloseRead() error  { return Libp2pError(s.s.CloseRead()) }
func (s stream) Reset() error      { return Libp2pError(s.s.Reset()) }

// codeResetter is a p2pnet stream whose reset carries a code.
type codeResetter interface {
	ResetWithError(network.StreamErrorCode) error
}

// ResetWithError resets the stream with code when its multiplexer can
// carry one (yamux and QUIC streams the swarm opened or accepted); a
// stream opened by Host.NewStream with lazy negotiation cannot, and is
// reset without it.
func (s stream) ResetWithError(code lnetwork.StreamErrorCode) error {
	if r, ok := s.s.(codeResetter); ok {
		return Libp2pError(r.ResetWithError(network.StreamErrorCode(code)))
	}
	return Libp2pError(s.s.Reset())
}

func (s stream) SetDeadline(t time.Time) error      { return s.s.SetDeadline(t) }
func (s stream) SetReadDeadline(t time.Time) error  { return s.s.SetReadDeadline(t) }
func (s stream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }
func (s stream) ID() string                         { return s.s.ID() }
func (s stream) Protocol() lprotocol.ID             { return lprotocol.ID(s.s.Protocol()) }

func (s stream) SetProtocol(id lprotocol.ID) error {
	return Libp2pError(s.s.SetProtocol(toProtocol(id)))
}

func (s stream) Stat() lnetwork.Stats        { return libp2pStats(s.s.Stat()) }
func (s stream) Conn() lnetwork.Conn         { return Libp2pConn(s.s.Conn()) }
func (s stream) Scope() lnetwork.StreamScope { return scopeOf(s.s.Scope()) }
