package quic

import (
	"context"
	"sync"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"
)

// Conn is an established QUIC connection: authenticated by the libp2p
// TLS handshake and multiplexed by QUIC's own streams. It implements
// transport.CapableConn.
//
// Its resource scope and its use of the UDP socket end when the
// connection ends, whether by Close, by the remote, or by a timeout.
// Errors of a closed connection are quic-go's (such as
// *quic.ApplicationError carrying the remote's error code, or
// *quic.IdleTimeoutError), all of which match net.ErrClosed; when the
// remote closed it because its resource manager refused the connection,
// they also match ErrRefused.
type Conn struct {
	qc         *quicgo.Conn
	t          *Transport
	st         *connState
	ep         *endpoint
	epOnce     sync.Once // ends the use of ep
	remote     peer.ID
	remoteKey  ic.PubKey
	localAddr  ma.Multiaddr
	remoteAddr ma.Multiaddr
}

var _ transport.CapableConn = (*Conn)(nil)

// newConn wraps an established connection, taking over st and one use of
// ep, both of which it releases when the connection ends. raddr, when
// nil, is taken from the connection.
func newConn(t *Transport, qc *quicgo.Conn, st *connState, ep *endpoint, remote peer.ID, key ic.PubKey, raddr ma.Multiaddr) (*Conn, error) {
	laddr, err := quicMultiaddr(qc.LocalAddr())
	if err != nil {
		return nil, err
	}
	if raddr == nil {
		if raddr, err = quicMultiaddr(qc.RemoteAddr()); err != nil {
			return nil, err
		}
	}
	c := &Conn{
		qc:         qc,
		t:          t,
		st:         st,
		ep:         ep,
		remote:     remote,
		remoteKey:  key,
		localAddr:  laddr,
		remoteAddr: raddr,
	}
	context.AfterFunc(qc.Context(), c.release)
	return c, nil
}

// release ends the connection's scope and its use of the socket, once.
func (c *Conn) release() {
	c.st.release()
	c.epOnce.Do(func() { c.t.releaseEndpoint(c.ep) })
}

// Close closes the connection, telling the remote (application error
// code 0), without waiting for an answer. Open streams fail.
func (c *Conn) Close() error {
	err := c.qc.CloseWithError(codeNoError, "")
	c.release()
	return err
}

// IsClosed reports whether the connection is closed.
func (c *Conn) IsClosed() bool { return c.qc.Context().Err() != nil }

// OpenStream opens a bidirectional stream, waiting while the remote's
// stream limit is reached, until ctx ends. Nothing is sent until the
// first write.
func (c *Conn) OpenStream(ctx context.Context) (network.MuxedStream, error) {
	qs, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, remoteRefusal(err)
	}
	return &Stream{qs: qs}, nil
}

// AcceptStream waits for the next stream the remote opens.
func (c *Conn) AcceptStream() (network.MuxedStream, error) {
	qs, err := c.qc.AcceptStream(context.Background())
	if err != nil {
		return nil, remoteRefusal(err)
	}
	return &Stream{qs: qs}, nil
}

// LocalPeer returns our peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.t.localPeer }

// RemotePeer returns the peer ID the handshake authenticated.
func (c *Conn) RemotePeer() peer.ID { return c.remote }

// RemotePublicKey returns the host key the remote proved it holds.
func (c *Conn) RemotePublicKey() ic.PubKey { return c.remoteKey }

// ConnState reports Transport "quic-v1" and nothing else, as go-libp2p
// v0.51.0 does: QUIC's TLS and stream multiplexing are part of the
// transport, not negotiated protocols.
func (c *Conn) ConnState() network.ConnectionState {
	return network.ConnectionState{Transport: Name}
}

// LocalMultiaddr returns the local UDP address with /quic-v1.
func (c *Conn) LocalMultiaddr() ma.Multiaddr { return c.localAddr }

// RemoteMultiaddr returns the remote UDP address with /quic-v1: the
// address dialed, or the one an inbound connection came from.
func (c *Conn) RemoteMultiaddr() ma.Multiaddr { return c.remoteAddr }

// Scope returns the connection's resource scope.
func (c *Conn) Scope() network.ConnScope { return c.st.currentScope() }
