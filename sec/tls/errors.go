package tls

import "errors"

// The errors of certificate verification. A handshake that fails one of
// these checks returns an error that wraps the matching sentinel.
var (
	// ErrChainLength: the peer presented no certificate or more than one.
	ErrChainLength = errors.New("sec/tls: peer must present exactly one certificate")
	// ErrCertValidity: the certificate is expired or not yet valid.
	ErrCertValidity = errors.New("sec/tls: certificate not valid at this time")
	// ErrSelfSignature: the certificate is not validly self-signed with a
	// hash of at least 256 bits.
	ErrSelfSignature = errors.New("sec/tls: invalid certificate self-signature")
	// ErrCriticalExtension: the certificate has a critical extension other
	// than the libp2p public key extension that crypto/x509 does not
	// understand.
	ErrCriticalExtension = errors.New("sec/tls: unknown critical certificate extension")
	// ErrNoExtension: the certificate lacks the libp2p public key
	// extension.
	ErrNoExtension = errors.New("sec/tls: certificate lacks the libp2p public key extension")
	// ErrMalformedExtension: the libp2p public key extension is not a
	// DER SignedKey holding a valid libp2p public key.
	ErrMalformedExtension = errors.New("sec/tls: malformed libp2p public key extension")
	// ErrExtensionSignature: the host key's signature in the libp2p public
	// key extension does not cover the certificate's key.
	ErrExtensionSignature = errors.New("sec/tls: invalid libp2p public key extension signature")
	// ErrInvalidMuxer: a multiplexer ID given to New cannot be offered in
	// ALPN.
	ErrInvalidMuxer = errors.New("sec/tls: invalid multiplexer ID")
	// ErrNoRemoteKey: the handshake finished without the peer's
	// certificate being verified. It means a bug, in crypto/tls or here.
	ErrNoRemoteKey = errors.New("sec/tls: handshake finished without a verified peer key")
)
