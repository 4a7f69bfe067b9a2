// Package tls is the libp2p TLS 1.3 security transport, /tls/1.0.0: each
// side presents a self-signed certificate carrying the libp2p public key
// extension, which binds the certificate's key to the peer's host key,
// and the stream multiplexer is agreed inside the handshake through ALPN
// (inlined muxer negotiation).
//
// Identity, ConfigForPeer and PubKeyFromCertChain are exported for QUIC,
// which runs the same handshake with the single ALPN "libp2p".
//
// It may import sec, network, peer, crypto, protocol and the standard
// library; never a multiplexer.
package tls

import (
	"context"
	stdtls "crypto/tls"
	"fmt"
	"net"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
)

// ID is the protocol ID of the libp2p TLS handshake, negotiated by
// multistream-select.
const ID protocol.ID = "/tls/1.0.0"

// Transport secures connections with libp2p TLS. It is safe for
// concurrent use.
type Transport struct {
	identity  *Identity
	localPeer peer.ID
	protos    []string // ALPN: the multiplexers, most preferred first, then "libp2p"
}

var _ sec.Transport = (*Transport)(nil)

// New returns a transport that proves we hold priv and offers muxers, most
// preferred first, for early multiplexer negotiation.
func New(priv ic.PrivKey, muxers []protocol.ID) (*Transport, error) {
	local, err := peer.IDFromPublicKey(priv.GetPublic())
	if err != nil {
		return nil, fmt.Errorf("sec/tls: deriving our peer ID: %w", err)
	}
	protos := make([]string, 0, len(muxers)+1)
	for _, m := range muxers {
		// ALPN protocol names are 1 to 255 bytes; "libp2p" is reserved for
		// the fallback to multistream-select.
		if len(m) == 0 || len(m) > 255 || m == ALPN {
			return nil, fmt.Errorf("%w: %q", ErrInvalidMuxer, m)
		}
		protos = append(protos, string(m))
	}
	protos = append(protos, ALPN)
	id, err := NewIdentity(priv)
	if err != nil {
		return nil, err
	}
	return &Transport{identity: id, localPeer: local, protos: protos}, nil
}

// ID returns "/tls/1.0.0".
func (t *Transport) ID() protocol.ID { return ID }

// SecureInbound runs the handshake as the TLS server on c, which the
// remote dialed. When p is not empty the remote must prove it is p. On
// failure c is closed.
func (t *Transport) SecureInbound(ctx context.Context, c net.Conn, p peer.ID) (sec.Conn, error) {
	conn, err := t.handshake(ctx, c, p, true)
	if err != nil {
		return nil, err // not a nil *Conn in a non-nil interface
	}
	return conn, nil
}

// SecureOutbound runs the handshake as the TLS client on c, which we
// dialed; the remote must prove it is p. On failure c is closed.
//
// In TLS 1.3 the client finishes its handshake before the server has
// checked the client's certificate: if the server rejects us, the
// handshake still succeeds here and the first Read fails.
func (t *Transport) SecureOutbound(ctx context.Context, c net.Conn, p peer.ID) (sec.Conn, error) {
	conn, err := t.handshake(ctx, c, p, false)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// handshake runs the TLS handshake on raw as server or client and closes
// raw if it fails.
func (t *Transport) handshake(ctx context.Context, raw net.Conn, remote peer.ID, server bool) (*Conn, error) {
	conn := &Conn{localPeer: t.localPeer}
	cfg := t.identity.config(remote, t.protos, func(k ic.PubKey, id peer.ID) {
		conn.remoteKey, conn.remotePeer = k, id
	})
	conn.raw = newRecordConn(raw)
	if server {
		conn.tls = stdtls.Server(conn.raw, cfg)
	} else {
		conn.tls = stdtls.Client(conn.raw, cfg)
	}
	// On cancellation HandshakeContext closes raw and returns ctx.Err().
	if err := conn.tls.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("sec/tls: handshake: %w", err)
	}
	if conn.remoteKey == nil {
		raw.Close()
		return nil, ErrNoRemoteKey
	}
	if p := conn.tls.ConnectionState().NegotiatedProtocol; p != ALPN {
		conn.muxer = protocol.ID(p) // "" when the peer offered no ALPN
	}
	return conn, nil
}
