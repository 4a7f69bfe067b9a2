// Package noise implements noise-libp2p, the libp2p secure channel built on
// the Noise protocol Noise_XX_25519_ChaChaPoly_SHA256, with stream
// multiplexer negotiation inside the handshake (libp2p/specs noise/README.md
// and connections/inlined-muxer-negotiation.md).
//
// A Transport runs the handshake over a raw connection and returns a *Conn
// that encrypts everything written to it and authenticates everything read
// from it. Each side signs its Noise static key with its libp2p identity key,
// so the handshake proves which peer is on the other end.
//
// Each side lists its multiplexers in its handshake payload (the responder
// in the second message, the initiator in the third); both then pick the
// first multiplexer of the initiator's list that the responder also
// offers. When the lists share none, the handshake still succeeds and the
// multiplexer is left to multistream-select. The inlined-muxer-negotiation
// spec says such a handshake must fail; we do what go-libp2p does, so that
// peers with disjoint lists can still connect.
//
// WebTransport runs the handshake in a session's first stream with the
// server's certificate hashes in the payload's extensions; WithCertHashes
// and WithWantedCertHashes make the transports of its two sides
// (webtransport.go).
//
// The package is handed the multiplexer protocol IDs to offer; it never
// imports a multiplexer. It may import sec, network, peer, crypto, protocol,
// github.com/flynn/noise, golang.org/x/crypto, protowire and the standard
// library.
package noise

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"

	"github.com/flynn/noise"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
)

// ID is the protocol ID of noise-libp2p, negotiated by multistream-select.
const ID protocol.ID = "/noise"

// Errors of the handshake and of the data path. Each error a Conn or
// Transport returns wraps one of these, an error of the underlying
// connection, a context error, or a *sec.MismatchError.
var (
	// ErrBadPayload is wrapped by handshake errors where the remote's
	// handshake payload is not a well-formed NoiseHandshakePayload or its
	// identity key cannot be decoded.
	ErrBadPayload = errors.New("noise: malformed handshake payload")

	// ErrBadSignature is wrapped by handshake errors where the remote's
	// signature over its Noise static key does not verify with the
	// identity key it sent.
	ErrBadSignature = errors.New("noise: invalid signature of the static key")

	// ErrShortFrame is the error of a transport message too short to
	// hold the 16-byte authentication tag.
	ErrShortFrame = errors.New("noise: transport message shorter than its authentication tag")

	// ErrDecrypt is the error of a transport message that fails
	// authentication: it was altered, truncated, reordered or not sent
	// by the remote.
	ErrDecrypt = errors.New("noise: transport message failed authentication")

	// ErrNonceExhausted is the error of a connection that has sent or
	// received 2^64-1 messages, after which Noise forbids using its keys.
	ErrNonceExhausted = errors.New("noise: nonces exhausted")
)

// staticKeySigPrefix precedes the Noise static public key in the message
// that the identity key signs.
const staticKeySigPrefix = "noise-libp2p-static-key:"

// maxRemoteMuxers bounds the multiplexer list we consider from the remote;
// a longer list is ignored, as go-libp2p does, and the multiplexer is then
// negotiated by multistream-select after the handshake.
const maxRemoteMuxers = 100

// Transport secures connections with noise-libp2p for one identity. It is
// safe for concurrent use by many handshakes.
//
// The Noise static key is generated once per Transport and signed once,
// which the spec allows; every handshake still uses fresh ephemeral keys,
// so sessions keep forward secrecy.
type Transport struct {
	priv    ic.PrivKey
	localID peer.ID
	muxers  []protocol.ID
	static  noise.DHKey
	dh      *dh25519          // X25519 with the static key kept ready
	suite   noise.CipherSuite // the one suite noise-libp2p allows, with dh
	payload []byte            // our encoded handshake payload, the same for both roles
	// wantCertHashes, when not nil, are the WebTransport certificate
	// hashes the responder must list (webtransport.go).
	wantCertHashes [][]byte
}

var _ sec.Transport = (*Transport)(nil)

// New returns a Transport that proves the identity priv and offers muxers,
// in order of preference, for early multiplexer negotiation. With no
// muxers, the handshake carries no extensions and the multiplexer is left
// to multistream-select.
func New(priv ic.PrivKey, muxers []protocol.ID) (*Transport, error) {
	if priv == nil {
		return nil, errors.New("noise: nil identity key")
	}
	localID, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("noise: identity key: %w", err)
	}
	dh, err := newDH25519(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("noise: generating static key: %w", err)
	}
	static := dh.staticKey()
	pubBytes, err := ic.MarshalPublicKey(priv.GetPublic())
	if err != nil {
		return nil, fmt.Errorf("noise: encoding identity key: %w", err)
	}
	sig, err := priv.Sign(staticKeySigMessage(static.Public))
	if err != nil {
		return nil, fmt.Errorf("noise: signing static key: %w", err)
	}
	p := handshakePayload{
		identityKey: pubBytes,
		identitySig: sig,
		muxers:      protocol.ConvertToStrings(muxers),
	}
	return &Transport{
		priv:    priv,
		localID: localID,
		muxers:  append([]protocol.ID(nil), muxers...),
		static:  static,
		dh:      dh,
		suite:   noise.NewCipherSuite(dh, noise.CipherChaChaPoly, noise.HashSHA256),
		payload: p.appendTo(nil),
	}, nil
}

// ID returns "/noise".
func (t *Transport) ID() protocol.ID { return ID }

// SecureInbound runs the handshake as the responder over c. When p is not
// empty the remote must prove it is p; otherwise any peer is accepted.
//
// The handshake ends when ctx is done: a deadline of ctx is set on c for
// the handshake and cleared afterwards. On any error c is closed.
func (t *Transport) SecureInbound(ctx context.Context, c net.Conn, p peer.ID) (sec.Conn, error) {
	conn, err := t.handshake(ctx, c, p, false)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// SecureOutbound runs the handshake as the initiator over c. The remote
// must prove it is p (an empty p matches nobody); otherwise the handshake
// fails with a *sec.MismatchError.
//
// The handshake ends when ctx is done: a deadline of ctx is set on c for
// the handshake and cleared afterwards. On any error c is closed.
func (t *Transport) SecureOutbound(ctx context.Context, c net.Conn, p peer.ID) (sec.Conn, error) {
	conn, err := t.handshake(ctx, c, p, true)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// selectMuxer returns the first multiplexer of the initiator's list that
// the responder also offers, or "" when they share none. Both sides run it
// on the same two lists and so agree.
func selectMuxer(initiator, responder []protocol.ID) protocol.ID {
	for _, m := range initiator {
		for _, r := range responder {
			if m == r {
				return m
			}
		}
	}
	return ""
}

// staticKeySigMessage returns the message an identity key signs to vouch
// for the Noise static public key pub.
func staticKeySigMessage(pub []byte) []byte {
	msg := make([]byte, 0, len(staticKeySigPrefix)+len(pub))
	msg = append(msg, staticKeySigPrefix...)
	return append(msg, pub...)
}
