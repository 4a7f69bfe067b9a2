package tls

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/p2pnet/p2pnet/peer"
)

// vectorCert returns the certificate of the n-th spec test vector.
func vectorCert(t testing.TB, n int) *x509.Certificate {
	t.Helper()
	der, err := hex.DecodeString(specVectors[n].cert)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// extensionValue returns the libp2p extension content of cert.
func extensionValue(t testing.TB, cert *x509.Certificate) []byte {
	t.Helper()
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(extensionOID) {
			return ext.Value
		}
	}
	t.Fatal("no libp2p extension")
	return nil
}

// FuzzExtension feeds arbitrary extension contents to the SignedKey
// parser and signature check, against the certificate key of the spec's
// first test vector.
func FuzzExtension(f *testing.F) {
	cert := vectorCert(f, 0)
	for i := range specVectors {
		v := extensionValue(f, vectorCert(f, i))
		f.Add(v)
		f.Add(v[:len(v)/2])
		f.Add(append(v[:len(v):len(v)], 0))
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x04, 0x04, 0x00, 0x04, 0x00})
	f.Add([]byte{0x30, 0x80, 0x04, 0x00, 0x04, 0x00, 0x00, 0x00}) // BER indefinite length
	f.Fuzz(func(t *testing.T, value []byte) {
		key, err := verifyExtension(value, cert.RawSubjectPublicKeyInfo)
		if err != nil {
			if !errors.Is(err, ErrMalformedExtension) && !errors.Is(err, ErrExtensionSignature) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		// Only the host key of the vector can have signed this
		// certificate key.
		id, err := peer.IDFromPublicKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if id.String() != specVectors[0].peer {
			t.Fatalf("accepted a signature by %s over the key of %s", id, specVectors[0].peer)
		}
	})
}

// FuzzCertificate feeds arbitrary DER that crypto/x509 parses to
// PubKeyFromCertChain.
func FuzzCertificate(f *testing.F) {
	for _, v := range specVectors {
		der, err := hex.DecodeString(v.cert)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	id, err := NewIdentity(ed25519Key(f, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(id.certs[0].Certificate[0])
	f.Fuzz(func(t *testing.T, der []byte) {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		if _, err := PubKeyFromCertChain([]*x509.Certificate{cert}); err != nil {
			for _, sentinel := range []error{ErrCertValidity, ErrSelfSignature, ErrCriticalExtension,
				ErrNoExtension, ErrMalformedExtension, ErrExtensionSignature} {
				if errors.Is(err, sentinel) {
					return
				}
			}
			t.Fatalf("error %v wraps no sentinel", err)
		}
	})
}
