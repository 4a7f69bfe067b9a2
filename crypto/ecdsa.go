package crypto

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
)

// ECDSAPublicKey is an ECDSA public key on P-256, P-384 or P-521. Its
// encoding is the PKIX (SubjectPublicKeyInfo) DER.
type ECDSAPublicKey struct {
	k   *ecdsa.PublicKey
	der []byte // PKIX encoding, computed once
}

// ECDSAPrivateKey is an ECDSA private key on P-256, P-384 or P-521. Its
// encoding is the SEC 1 DER (what x509.MarshalECPrivateKey writes; the
// spec's vectors use it).
type ECDSAPrivateKey struct {
	k   *ecdsa.PrivateKey
	pub *ECDSAPublicKey // computed once
}

// newECDSAPrivateKey wraps a parsed or generated private key after
// checking its curve.
func newECDSAPrivateKey(k *ecdsa.PrivateKey) (*ECDSAPrivateKey, error) {
	if !supportedCurve(k.Curve) {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedCurve, k.Curve.Params().Name)
	}
	pub, err := newECDSAPublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return &ECDSAPrivateKey{k: k, pub: pub}, nil
}

// ecdsaCurve returns the curve for an ECDSA key size in bits: 256 (or 0),
// 384 or 521.
func ecdsaCurve(bits int) (elliptic.Curve, error) {
	switch bits {
	case 0, 256:
		return elliptic.P256(), nil
	case 384:
		return elliptic.P384(), nil
	case 521:
		return elliptic.P521(), nil
	default:
		return nil, fmt.Errorf("%w: %d bits", ErrUnsupportedCurve, bits)
	}
}

// supportedCurve reports whether c is one of the curves libp2p keys use.
func supportedCurve(c elliptic.Curve) bool {
	return c == elliptic.P256() || c == elliptic.P384() || c == elliptic.P521()
}

func generateECDSAKey(bits int, src io.Reader) (PrivKey, PubKey, error) {
	c, err := ecdsaCurve(bits)
	if err != nil {
		return nil, nil, err
	}
	if src == nil {
		src = rand.Reader
	}
	k, err := ecdsa.GenerateKey(c, src)
	if err != nil {
		return nil, nil, fmt.Errorf("crypto: generating ECDSA key: %w", err)
	}
	sk, err := newECDSAPrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return sk, sk.pub, nil
}

// newECDSAPublicKey wraps a parsed public key after checking its curve.
func newECDSAPublicKey(k *ecdsa.PublicKey) (*ECDSAPublicKey, error) {
	if !supportedCurve(k.Curve) {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedCurve, k.Curve.Params().Name)
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("%w: ECDSA public key: %w", ErrInvalidKey, err)
	}
	return &ECDSAPublicKey{k: k, der: der}, nil
}

// UnmarshalECDSAPublicKey decodes the PKIX DER of an ECDSA public key.
func UnmarshalECDSAPublicKey(data []byte) (PubKey, error) {
	pk, err := x509.ParsePKIXPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: ECDSA public key: %w", ErrInvalidKey, err)
	}
	k, ok := pk.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: PKIX key is a %T, not ECDSA", ErrInvalidKey, pk)
	}
	key, err := newECDSAPublicKey(k)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return key, nil
}

// UnmarshalECDSAPrivateKey decodes the SEC 1 DER of an ECDSA private key.
func UnmarshalECDSAPrivateKey(data []byte) (PrivKey, error) {
	k, err := x509.ParseECPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: ECDSA private key: %w", ErrInvalidKey, err)
	}
	key, err := newECDSAPrivateKey(k)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return key, nil
}

// Type returns ECDSA.
func (k *ECDSAPublicKey) Type() KeyType { return ECDSA }

// Raw returns the PKIX DER of the key.
func (k *ECDSAPublicKey) Raw() ([]byte, error) { return bytes.Clone(k.der), nil }

// Equals reports whether o is the same ECDSA public key.
func (k *ECDSAPublicKey) Equals(o Key) bool {
	ok, isECDSA := o.(*ECDSAPublicKey)
	if !isECDSA {
		return KeyEqual(k, o)
	}
	return subtle.ConstantTimeCompare(k.der, ok.der) == 1
}

// ecdsaSignature is the ASN.1 structure of an ECDSA signature.
type ecdsaSignature struct {
	R, S *big.Int
}

// Verify reports whether sig is a DER-encoded ECDSA signature of the
// SHA-256 of data.
func (k *ECDSAPublicKey) Verify(data, sig []byte) (bool, error) {
	var s ecdsaSignature
	rest, err := asn1.Unmarshal(sig, &s)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrMalformedSignature, err)
	}
	if len(rest) != 0 {
		return false, fmt.Errorf("%w: trailing bytes after ECDSA signature", ErrMalformedSignature)
	}
	h := sha256.Sum256(data)
	return ecdsa.VerifyASN1(k.k, h[:], sig), nil
}

// Type returns ECDSA.
func (k *ECDSAPrivateKey) Type() KeyType { return ECDSA }

// Raw returns the SEC 1 DER of the key.
func (k *ECDSAPrivateKey) Raw() ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k.k)
	if err != nil {
		return nil, fmt.Errorf("%w: ECDSA private key: %w", ErrInvalidKey, err)
	}
	return der, nil
}

// Equals reports whether o is the same ECDSA private key.
func (k *ECDSAPrivateKey) Equals(o Key) bool {
	ok, isECDSA := o.(*ECDSAPrivateKey)
	if !isECDSA {
		return KeyEqual(k, o)
	}
	return k.k.Equal(ok.k)
}

// Sign returns the DER-encoded ECDSA signature of the SHA-256 of data.
func (k *ECDSAPrivateKey) Sign(data []byte) ([]byte, error) {
	h := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, k.k, h[:])
	if err != nil {
		return nil, fmt.Errorf("crypto: ECDSA signing: %w", err)
	}
	return sig, nil
}

// GetPublic returns the public half of the key.
func (k *ECDSAPrivateKey) GetPublic() PubKey {
	return k.pub
}
