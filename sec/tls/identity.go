package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/sec"
)

// ALPN is the application protocol of the libp2p TLS handshake. A TCP
// transport offers it after its multiplexers; a peer that selects it
// negotiates the multiplexer afterwards, with multistream-select. QUIC
// offers only it.
const ALPN = "libp2p"

// Certificate validity. A certificate lives as long as its Identity, so
// it is made valid for about a century; it starts an hour in the past to
// tolerate peers whose clocks run a little behind ours.
const (
	certBackdate = time.Hour
	certLifetime = 100 * 365 * 24 * time.Hour
)

// Identity is a host key's TLS face: an ephemeral ECDSA P-256 key and a
// self-signed certificate that carries the libp2p public key extension,
// made once and presented in every handshake. It is safe for concurrent
// use.
type Identity struct {
	certs []stdtls.Certificate // one certificate, shared read-only by every Config
}

// NewIdentity makes the certificate that proves, in TLS handshakes, that
// we hold priv.
func NewIdentity(priv ic.PrivKey) (*Identity, error) {
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sec/tls: generating certificate key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&certKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("sec/tls: marshalling certificate key: %w", err)
	}
	ext, err := marshalExtension(priv, spki)
	if err != nil {
		return nil, err
	}
	var subject [16]byte
	if _, err := rand.Read(subject[:]); err != nil {
		return nil, fmt.Errorf("sec/tls: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		// A nil SerialNumber makes x509 draw a random one (RFC 5280, 4.1.2.2).
		// RFC 5280 wants a non-empty issuer, and the certificate is its own
		// issuer; a random name keeps certificates unlinkable.
		Subject:   pkix.Name{SerialNumber: hex.EncodeToString(subject[:])},
		NotBefore: now.Add(-certBackdate),
		NotAfter:  now.Add(certLifetime),
		ExtraExtensions: []pkix.Extension{{
			Id:       extensionOID,
			Critical: true, // the spec allows it; we handle it, and so do go-libp2p and rust-libp2p
			Value:    ext,
		}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &certKey.PublicKey, certKey)
	if err != nil {
		return nil, fmt.Errorf("sec/tls: creating certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sec/tls: parsing our certificate: %w", err)
	}
	return &Identity{certs: []stdtls.Certificate{{
		Certificate: [][]byte{der},
		PrivateKey:  certKey,
		Leaf:        leaf, // saves crypto/tls from parsing it in every handshake
	}}}, nil
}

// ConfigForPeer returns a single-use crypto/tls configuration for one
// handshake, as client or server, that presents our certificate, requires
// the peer's, and verifies it the libp2p way (see PubKeyFromCertChain).
// When remote is not empty the peer must prove it is remote, or the
// handshake fails with a *sec.MismatchError. alpn lists the application
// protocols to offer (client) or accept (server), most preferred first;
// a server picks the first of the client's protocols that it accepts,
// honouring the client's preference.
//
// The channel receives the peer's host key once its certificate has been
// verified, which is before the handshake completes; after a successful
// handshake, a receive without blocking always yields it. The channel is
// never closed.
func (id *Identity) ConfigForPeer(remote peer.ID, alpn []string) (*stdtls.Config, <-chan ic.PubKey) {
	keys := make(chan ic.PubKey, 1)
	cfg := id.config(remote, alpn, func(k ic.PubKey, _ peer.ID) {
		select {
		case keys <- k:
		default: // a second verification cannot happen; keep the first key
		}
	})
	return cfg, keys
}

// config builds the configuration of ConfigForPeer and reports the
// verified peer to verified, from within the handshake.
func (id *Identity) config(remote peer.ID, alpn []string, verified func(ic.PubKey, peer.ID)) *stdtls.Config {
	cfg := &stdtls.Config{
		MinVersion:   stdtls.VersionTLS13,
		Certificates: id.certs,
		// The peer's self-signed certificate would never chain to a root;
		// VerifyConnection checks it the libp2p way instead.
		InsecureSkipVerify:     true,
		ClientAuth:             stdtls.RequireAnyClientCert,
		NextProtos:             alpn,
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs stdtls.ConnectionState) error {
			key, err := PubKeyFromCertChain(cs.PeerCertificates)
			if err != nil {
				return err
			}
			actual, err := peer.IDFromPublicKey(key)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrMalformedExtension, err)
			}
			if remote != "" && actual != remote {
				return &sec.MismatchError{Expected: remote, Actual: actual}
			}
			verified(key, actual)
			return nil
		},
	}
	if len(alpn) > 1 {
		// crypto/tls picks the server's most preferred protocol; the
		// inlined-muxer-negotiation spec asks for the client's. Narrow the
		// server's list to the client's favourite that we accept.
		cfg.GetConfigForClient = func(hello *stdtls.ClientHelloInfo) (*stdtls.Config, error) {
			i := selectProtocol(hello.SupportedProtos, alpn)
			if i < 0 {
				return nil, nil // crypto/tls fails the handshake, or goes without ALPN
			}
			c := cfg.Clone()
			c.GetConfigForClient = nil
			c.NextProtos = alpn[i : i+1 : i+1]
			return c, nil
		}
	}
	return cfg
}

// selectProtocol returns the index in ours of the first of offered that
// ours holds, or -1.
func selectProtocol(offered, ours []string) int {
	for _, p := range offered {
		for i, q := range ours {
			if p == q {
				return i
			}
		}
	}
	return -1
}

// PubKeyFromCertChain checks a peer's certificate chain as the libp2p TLS
// spec requires and returns the host public key it proves: the chain
// holds exactly one certificate; it is valid now; it is self-signed with
// a hash of at least 256 bits; it has no critical extension that we do
// not understand; it carries the libp2p public key extension, whose host
// key signed the certificate's key. It does not modify the certificates.
func PubKeyFromCertChain(chain []*x509.Certificate) (ic.PubKey, error) {
	if len(chain) != 1 {
		return nil, fmt.Errorf("%w: got %d", ErrChainLength, len(chain))
	}
	cert := chain[0]
	if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("%w: valid from %s to %s", ErrCertValidity,
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if !strongSignature(cert.SignatureAlgorithm) {
		return nil, fmt.Errorf("%w: algorithm %s not accepted", ErrSelfSignature, cert.SignatureAlgorithm)
	}
	// CheckSignatureFrom would insist on a CA certificate; the spec wants a
	// plain self-signature.
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSelfSignature, err)
	}
	for _, oid := range cert.UnhandledCriticalExtensions {
		if !oid.Equal(extensionOID) {
			return nil, fmt.Errorf("%w: %s", ErrCriticalExtension, oid)
		}
	}
	for _, ext := range cert.Extensions { // x509 has rejected duplicates
		if ext.Id.Equal(extensionOID) {
			return verifyExtension(ext.Value, cert.RawSubjectPublicKeyInfo)
		}
	}
	return nil, ErrNoExtension
}

// strongSignature reports whether a certificate signature algorithm uses
// a hash of at least 256 bits, as the spec requires (no MD5, no SHA-1).
func strongSignature(alg x509.SignatureAlgorithm) bool {
	switch alg {
	case x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
		x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS,
		x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512,
		x509.PureEd25519:
		return true
	}
	return false
}
