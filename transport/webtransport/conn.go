package webtransport

import (
	"context"
	"net"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"
	wt "github.com/quic-go/webtransport-go"
)

// Conn is an established WebTransport session, authenticated by the Noise
// handshake of its first stream; its streams are the session's
// WebTransport streams. It implements transport.CapableConn.
//
// The session has its QUIC connection to itself: when either ends, both
// do, and the resource scope with them.
type Conn struct {
	t          *Transport
	qc         *quicgo.Conn
	sess       *wt.Session
	remote     peer.ID
	remoteKey  ic.PubKey
	localAddr  ma.Multiaddr
	remoteAddr ma.Multiaddr
	scope      network.ConnManagementScope
}

var _ transport.CapableConn = (*Conn)(nil)

// newConn wraps an authenticated session. The QUIC connection closes when
// the session ends (the remote may close the session alone).
func newConn(t *Transport, qc *quicgo.Conn, sess *wt.Session, remote peer.ID, key ic.PubKey, laddr, raddr ma.Multiaddr, scope network.ConnManagementScope) *Conn {
	c := &Conn{t: t, qc: qc, sess: sess, remote: remote, remoteKey: key, localAddr: laddr, remoteAddr: raddr, scope: scope}
	context.AfterFunc(sess.Context(), func() { qc.CloseWithError(quicNoError, "") })
	return c
}

// Close closes the session and its QUIC connection, telling the remote.
// Open streams fail.
func (c *Conn) Close() error {
	err := c.sess.CloseWithError(codeNoError, "")
	c.qc.CloseWithError(quicNoError, "")
	return err
}

// IsClosed reports whether the session is closed.
func (c *Conn) IsClosed() bool { return c.sess.Context().Err() != nil }

// OpenStream opens a bidirectional stream, waiting while the remote's
// stream limit is reached, until ctx ends. Nothing is sent until the
// first write.
func (c *Conn) OpenStream(ctx context.Context) (network.MuxedStream, error) {
	s, err := c.sess.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return &Stream{s: s}, nil
}

// AcceptStream waits for the next stream the remote opens.
func (c *Conn) AcceptStream() (network.MuxedStream, error) {
	s, err := c.sess.AcceptStream(context.Background())
	if err != nil {
		return nil, err
	}
	return &Stream{s: s}, nil
}

// LocalPeer returns our peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.t.localPeer }

// RemotePeer returns the peer ID the Noise handshake authenticated.
func (c *Conn) RemotePeer() peer.ID { return c.remote }

// RemotePublicKey returns the host key the remote proved it holds.
func (c *Conn) RemotePublicKey() ic.PubKey { return c.remoteKey }

// ConnState reports Transport "webtransport" and nothing else, as
// go-libp2p v0.51.0 does: the Noise handshake and the streams are part of
// the transport, not negotiated protocols.
func (c *Conn) ConnState() network.ConnectionState {
	return network.ConnectionState{Transport: Name}
}

// LocalMultiaddr returns the local UDP address with
// /quic-v1/webtransport.
func (c *Conn) LocalMultiaddr() ma.Multiaddr { return c.localAddr }

// RemoteMultiaddr returns the address dialed (with its certificate
// hashes), or the UDP address an inbound session came from with
// /quic-v1/webtransport.
func (c *Conn) RemoteMultiaddr() ma.Multiaddr { return c.remoteAddr }

// Scope returns the connection's resource scope.
func (c *Conn) Scope() network.ConnScope { return c.scope }

// handshakeStream is the session's first stream as the net.Conn the
// Noise handshake runs over.
type handshakeStream struct {
	*wt.Stream
	sess *wt.Session
}

var _ net.Conn = (*handshakeStream)(nil)

func (s *handshakeStream) LocalAddr() net.Addr  { return s.sess.LocalAddr() }
func (s *handshakeStream) RemoteAddr() net.Addr { return s.sess.RemoteAddr() }
