package crypto

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// Secp256k1PublicKey is a Secp256k1 public key. Its encoding is the
// 33-byte compressed point.
type Secp256k1PublicKey struct {
	k *secp256k1.PublicKey
}

// Secp256k1PrivateKey is a Secp256k1 private key. Its encoding is the
// 32-byte big-endian scalar.
type Secp256k1PrivateKey struct {
	k *secp256k1.PrivateKey
}

// GenerateSecp256k1Key generates a Secp256k1 key pair from src
// (crypto/rand when src is nil).
func GenerateSecp256k1Key(src io.Reader) (PrivKey, PubKey, error) {
	if src == nil {
		src = rand.Reader
	}
	k, err := secp256k1.GeneratePrivateKeyFromRand(src)
	if err != nil {
		return nil, nil, fmt.Errorf("crypto: generating Secp256k1 key: %w", err)
	}
	sk := &Secp256k1PrivateKey{k: k}
	return sk, sk.GetPublic(), nil
}

// UnmarshalSecp256k1PublicKey decodes a Secp256k1 public key: the 33-byte
// compressed point, or the 65-byte uncompressed one.
func UnmarshalSecp256k1PublicKey(data []byte) (PubKey, error) {
	switch {
	case len(data) == secp256k1.PubKeyBytesLenCompressed:
	case len(data) == secp256k1.PubKeyBytesLenUncompressed && data[0] == secp256k1.PubKeyFormatUncompressed:
	default:
		return nil, fmt.Errorf("%w: Secp256k1 public key of %d bytes", ErrInvalidKey, len(data))
	}
	k, err := secp256k1.ParsePubKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: Secp256k1 public key: %w", ErrInvalidKey, err)
	}
	return &Secp256k1PublicKey{k: k}, nil
}

// UnmarshalSecp256k1PrivateKey decodes the 32-byte encoding of a
// Secp256k1 private key, which must lie in [1, N-1].
func UnmarshalSecp256k1PrivateKey(data []byte) (PrivKey, error) {
	if len(data) != secp256k1.PrivKeyBytesLen {
		return nil, fmt.Errorf("%w: Secp256k1 private key of %d bytes, want %d", ErrInvalidKey, len(data), secp256k1.PrivKeyBytesLen)
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(data); overflow || s.IsZero() {
		return nil, fmt.Errorf("%w: Secp256k1 private key out of range", ErrInvalidKey)
	}
	return &Secp256k1PrivateKey{k: secp256k1.NewPrivateKey(&s)}, nil
}

// Type returns Secp256k1.
func (k *Secp256k1PublicKey) Type() KeyType { return Secp256k1 }

// Raw returns the 33-byte compressed point.
func (k *Secp256k1PublicKey) Raw() ([]byte, error) { return k.k.SerializeCompressed(), nil }

// Equals reports whether o is the same Secp256k1 public key.
func (k *Secp256k1PublicKey) Equals(o Key) bool {
	ok, isSecp := o.(*Secp256k1PublicKey)
	if !isSecp {
		return KeyEqual(k, o)
	}
	return k.k.IsEqual(ok.k)
}

// Verify reports whether sig is a DER-encoded ECDSA signature of the
// SHA-256 of data.
func (k *Secp256k1PublicKey) Verify(data, sig []byte) (bool, error) {
	s, err := secpecdsa.ParseDERSignature(sig)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrMalformedSignature, err)
	}
	h := sha256.Sum256(data)
	return s.Verify(h[:], k.k), nil
}

// Type returns Secp256k1.
func (k *Secp256k1PrivateKey) Type() KeyType { return Secp256k1 }

// Raw returns the 32-byte scalar.
func (k *Secp256k1PrivateKey) Raw() ([]byte, error) { return k.k.Serialize(), nil }

// Equals reports whether o is the same Secp256k1 private key.
func (k *Secp256k1PrivateKey) Equals(o Key) bool {
	ok, isSecp := o.(*Secp256k1PrivateKey)
	if !isSecp {
		return KeyEqual(k, o)
	}
	a, b := k.k.Key.Bytes(), ok.k.Key.Bytes()
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// Sign returns the DER-encoded, deterministic (RFC 6979) ECDSA signature
// of the SHA-256 of data.
func (k *Secp256k1PrivateKey) Sign(data []byte) ([]byte, error) {
	h := sha256.Sum256(data)
	return secpecdsa.Sign(k.k, h[:]).Serialize(), nil
}

// GetPublic returns the public half of the key.
func (k *Secp256k1PrivateKey) GetPublic() PubKey {
	return &Secp256k1PublicKey{k: k.k.PubKey()}
}
