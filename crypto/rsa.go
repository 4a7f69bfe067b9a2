package crypto

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The RSA key sizes libp2p accepts, in bits of the modulus.
const (
	MinRSAKeyBits = 2048
	MaxRSAKeyBits = 8192
)

// RsaPublicKey is an RSA public key of 2048 to 8192 bits. Its encoding is
// the PKIX (SubjectPublicKeyInfo) DER.
type RsaPublicKey struct {
	k   *rsa.PublicKey
	der []byte // PKIX encoding, computed once
}

// RsaPrivateKey is an RSA private key of 2048 to 8192 bits. Its encoding
// is the PKCS #1 DER.
type RsaPrivateKey struct {
	k   *rsa.PrivateKey
	pub *RsaPublicKey // computed once
}

// newRsaPrivateKey wraps a parsed or generated private key after checking
// its size.
func newRsaPrivateKey(k *rsa.PrivateKey) (*RsaPrivateKey, error) {
	pub, err := newRsaPublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return &RsaPrivateKey{k: k, pub: pub}, nil
}

// checkRSABits refuses modulus sizes outside [MinRSAKeyBits,
// MaxRSAKeyBits].
func checkRSABits(bits int) error {
	if bits < MinRSAKeyBits {
		return fmt.Errorf("%w: %d bits, minimum %d", ErrRSAKeyTooSmall, bits, MinRSAKeyBits)
	}
	if bits > MaxRSAKeyBits {
		return fmt.Errorf("%w: %d bits, maximum %d", ErrRSAKeyTooBig, bits, MaxRSAKeyBits)
	}
	return nil
}

func generateRSAKey(bits int, src io.Reader) (PrivKey, PubKey, error) {
	if err := checkRSABits(bits); err != nil {
		return nil, nil, err
	}
	if src == nil {
		src = rand.Reader
	}
	k, err := rsa.GenerateKey(src, bits)
	if err != nil {
		return nil, nil, fmt.Errorf("crypto: generating RSA key: %w", err)
	}
	sk, err := newRsaPrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return sk, sk.pub, nil
}

// newRsaPublicKey wraps a parsed public key after checking its size.
func newRsaPublicKey(k *rsa.PublicKey) (*RsaPublicKey, error) {
	if k.N == nil {
		return nil, fmt.Errorf("%w: RSA public key without modulus", ErrInvalidKey)
	}
	if err := checkRSABits(k.N.BitLen()); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("%w: RSA public key: %w", ErrInvalidKey, err)
	}
	return &RsaPublicKey{k: k, der: der}, nil
}

// UnmarshalRsaPublicKey decodes the PKIX DER of an RSA public key of 2048
// to 8192 bits.
func UnmarshalRsaPublicKey(data []byte) (PubKey, error) {
	pk, err := x509.ParsePKIXPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: RSA public key: %w", ErrInvalidKey, err)
	}
	k, ok := pk.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: PKIX key is a %T, not RSA", ErrInvalidKey, pk)
	}
	key, err := newRsaPublicKey(k)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return key, nil
}

// UnmarshalRsaPrivateKey decodes the PKCS #1 DER of an RSA private key of
// 2048 to 8192 bits.
func UnmarshalRsaPrivateKey(data []byte) (PrivKey, error) {
	// Check the modulus size before the costly parse and validation, so a
	// huge key is refused cheaply.
	if bits, ok := pkcs1ModulusBits(data); ok {
		if err := checkRSABits(bits); err != nil {
			return nil, err
		}
	}
	k, err := x509.ParsePKCS1PrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: RSA private key: %w", ErrInvalidKey, err)
	}
	key, err := newRsaPrivateKey(k)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return key, nil
}

// pkcs1ModulusBits reads the modulus size from the start of a PKCS #1
// RSAPrivateKey (SEQUENCE { version INTEGER, modulus INTEGER, ... }).
func pkcs1ModulusBits(der []byte) (int, bool) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	var version int64
	var n big.Int
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) ||
		!seq.ReadASN1Integer(&version) ||
		!seq.ReadASN1Integer(&n) {
		return 0, false
	}
	return n.BitLen(), true
}

// Type returns RSA.
func (k *RsaPublicKey) Type() KeyType { return RSA }

// Raw returns the PKIX DER of the key.
func (k *RsaPublicKey) Raw() ([]byte, error) { return bytes.Clone(k.der), nil }

// Equals reports whether o is the same RSA public key.
func (k *RsaPublicKey) Equals(o Key) bool {
	ok, isRSA := o.(*RsaPublicKey)
	if !isRSA {
		return KeyEqual(k, o)
	}
	return subtle.ConstantTimeCompare(k.der, ok.der) == 1
}

// Verify reports whether sig is an RSASSA-PKCS1-v1_5 signature of the
// SHA-256 of data.
func (k *RsaPublicKey) Verify(data, sig []byte) (bool, error) {
	h := sha256.Sum256(data)
	if err := rsa.VerifyPKCS1v15(k.k, crypto.SHA256, h[:], sig); err != nil {
		return false, nil
	}
	return true, nil
}

// Type returns RSA.
func (k *RsaPrivateKey) Type() KeyType { return RSA }

// Raw returns the PKCS #1 DER of the key.
func (k *RsaPrivateKey) Raw() ([]byte, error) {
	return x509.MarshalPKCS1PrivateKey(k.k), nil
}

// Equals reports whether o is the same RSA private key.
func (k *RsaPrivateKey) Equals(o Key) bool {
	ok, isRSA := o.(*RsaPrivateKey)
	if !isRSA {
		return KeyEqual(k, o)
	}
	return k.k.Equal(ok.k)
}

// Sign returns the RSASSA-PKCS1-v1_5 signature of the SHA-256 of data.
func (k *RsaPrivateKey) Sign(data []byte) ([]byte, error) {
	h := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(nil, k.k, crypto.SHA256, h[:])
	if err != nil {
		return nil, fmt.Errorf("crypto: RSA signing: %w", err)
	}
	return sig, nil
}

// GetPublic returns the public half of the key.
func (k *RsaPrivateKey) GetPublic() PubKey {
	return k.pub
}
