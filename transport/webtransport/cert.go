package webtransport

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	stdtls "crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/quic-go/quic-go/http3"
)

// Certificate lifetimes. Browsers accept a self-signed certificate by its
// hash only if it is valid for at most 14 days (W3C WebTransport,
// serverCertificateHashes); libp2p/specs webtransport/README.md has the
// server announce the next certificate's hash well before it uses it.
const (
	// CertValidity is how long each certificate is valid, the most
	// browsers accept.
	CertValidity = 14 * 24 * time.Hour
	// clockSkew is how far the peers' clocks may disagree: a certificate
	// is used from clockSkew after it starts being valid, and is replaced
	// clockSkew before it expires by the next one, valid since clockSkew
	// before that.
	clockSkew = time.Hour
)

// cert is one self-signed certificate and its hash.
type cert struct {
	tls       stdtls.Certificate
	notBefore time.Time
	notAfter  time.Time
	hash      [32]byte     // SHA-256 of the DER certificate
	multihash []byte       // hash as a multihash, for Noise
	component ma.Multiaddr // hash as a /certhash component
}

// newCert makes the certificate of seed valid from notBefore for
// CertValidity, with an ECDSA P-256 key (browsers refuse RSA for
// serverCertificateHashes). The key, serial number and signature derive
// from seed and notBefore alone, so a restarted node whose seed derives
// from the same host key makes the same certificate, and the addresses
// it announced before stay dialable.
func newCert(seed []byte, notBefore time.Time) (*cert, error) {
	salt := binary.BigEndian.AppendUint64(nil, uint64(notBefore.UnixNano()))
	var key *ecdsa.PrivateKey
	var sn []byte
	for i := 0; key == nil; i++ { // a scalar out of range is rare (about 2^-32)
		b, err := hkdf.Key(sha256.New, seed, salt, fmt.Sprintf("p2pnet webtransport certificate %d", i), 40)
		if err != nil {
			return nil, err
		}
		key, _ = ecdsa.ParseRawPrivateKey(elliptic.P256(), b[:32])
		sn = b[32:]
	}
	notAfter := notBefore.Add(CertValidity)
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetUint64(binary.BigEndian.Uint64(sn)>>1 + 1), // positive
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), deterministicSigner{key})
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c := &cert{
		tls:       stdtls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		notBefore: leaf.NotBefore,
		notAfter:  leaf.NotAfter,
		hash:      sha256.Sum256(der),
	}
	if c.component, c.multihash, err = encodeCertHash(c.hash); err != nil {
		return nil, err
	}
	return c, nil
}

// deterministicSigner signs with RFC 6979 nonces, ignoring the random
// source crypto/x509 hands it.
type deterministicSigner struct{ key *ecdsa.PrivateKey }

func (s deterministicSigner) Public() crypto.PublicKey { return s.key.Public() }

func (s deterministicSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.key.Sign(nil, digest, opts)
}

// certStep is the time between the starts of successive certificates:
// each is used from clockSkew after it starts being valid until clockSkew
// before it expires, when the next one, valid for clockSkew already,
// takes over.
const certStep = CertValidity - 2*clockSkew

// certManager holds the listener's certificates. Time is cut into
// periods of certStep, shifted by an offset of the node's own (so that
// nodes do not all rotate at once); certificate k is valid from the
// start of period k for CertValidity, and is in use during period k
// shifted by clockSkew. The address announces certificates k and k+1,
// the next one from the start, so that it stays dialable across a
// rotation; the Noise handshake lists k-1, k and k+1, since a client
// holding the previous period's address expects k-1 as well.
//
// Rotation is lazy: whoever asks for a certificate or the hashes in a
// new period rotates first, so no timer or goroutine is needed, and a
// test's clock drives it.
type certManager struct {
	now    func() time.Time
	seed   []byte
	offset time.Duration // of the periods, in [0, certStep)

	mu       sync.Mutex // guards the following
	period   int64      // of current
	previous *cert
	current  *cert
	next     *cert
}

// newCertManager makes the certificates of the current period; seed
// derives from the host key.
func newCertManager(seed []byte, now func() time.Time) (*certManager, error) {
	// Whole seconds: certificates carry their validity to the second.
	offset := time.Duration(binary.BigEndian.Uint64(seed[:8])%uint64(certStep/time.Second)) * time.Second
	m := &certManager{now: now, seed: seed, offset: offset}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.rotateLocked(true); err != nil {
		return nil, err
	}
	return m, nil
}

// periodAt returns the period whose certificate is in use at t.
func (m *certManager) periodAt(t time.Time) int64 {
	d := t.Add(-clockSkew).Sub(time.Unix(0, 0)) - m.offset // time.Duration spans ±292 years
	k := int64(d / certStep)
	if d < 0 && d%certStep != 0 {
		k--
	}
	return k
}

// periodStart is when certificate k starts being valid.
func (m *certManager) periodStart(k int64) time.Time {
	return time.Unix(0, 0).Add(m.offset + time.Duration(k)*certStep)
}

// rotateLocked moves to the period of the clock's time, making the
// certificates it needs (reusing those it has). The caller holds mu.
func (m *certManager) rotateLocked(force bool) error {
	k := m.periodAt(m.now())
	if !force && k == m.period {
		return nil
	}
	have := map[int64]*cert{}
	if m.current != nil {
		have[m.period-1], have[m.period], have[m.period+1] = m.previous, m.current, m.next
	}
	certs := make([]*cert, 3)
	for i := range certs {
		if c := have[k-1+int64(i)]; c != nil {
			certs[i] = c
			continue
		}
		c, err := newCert(m.seed, m.periodStart(k-1+int64(i)))
		if err != nil {
			return fmt.Errorf("webtransport: certificate: %w", err)
		}
		certs[i] = c
	}
	m.period, m.previous, m.current, m.next = k, certs[0], certs[1], certs[2]
	return nil
}

// tlsConfig returns the TLS configuration of a handshake: the current
// certificate, ALPN h3.
func (m *certManager) tlsConfig(*stdtls.ClientHelloInfo) (*stdtls.Config, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.rotateLocked(false); err != nil {
		return nil, err
	}
	return &stdtls.Config{
		MinVersion:             stdtls.VersionTLS13,
		Certificates:           []stdtls.Certificate{m.current.tls},
		NextProtos:             []string{http3.NextProtoH3},
		SessionTicketsDisabled: true,
	}, nil
}

// addrSuffix returns the /certhash components to announce: the current
// certificate's, then the next one's.
func (m *certManager) addrSuffix() (ma.Multiaddr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.rotateLocked(false); err != nil {
		return nil, err
	}
	out := append(ma.Multiaddr(nil), m.current.component...)
	return append(out, m.next.component...), nil
}

// noiseHashes returns the multihashes the Noise handshake lists: the
// previous, the current and the next certificate's, every certificate an
// address a client may hold can name.
func (m *certManager) noiseHashes() ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.rotateLocked(false); err != nil {
		return nil, err
	}
	return [][]byte{m.previous.multihash, m.current.multihash, m.next.multihash}, nil
}
