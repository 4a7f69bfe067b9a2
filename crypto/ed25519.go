package crypto

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
)

// Ed25519PublicKey is an Ed25519 public key. Its encoding is the 32-byte
// public key.
type Ed25519PublicKey struct {
	k ed25519.PublicKey
}

// Ed25519PrivateKey is an Ed25519 private key. Its encoding is the 32-byte
// seed followed by the 32-byte public key.
type Ed25519PrivateKey struct {
	k ed25519.PrivateKey
}

// GenerateEd25519Key generates an Ed25519 key pair, reading the 32-byte
// seed from src (crypto/rand when src is nil).
func GenerateEd25519Key(src io.Reader) (PrivKey, PubKey, error) {
	if src == nil {
		src = rand.Reader
	}
	var seed [ed25519.SeedSize]byte
	if _, err := io.ReadFull(src, seed[:]); err != nil {
		return nil, nil, fmt.Errorf("crypto: reading Ed25519 seed: %w", err)
	}
	sk := &Ed25519PrivateKey{k: ed25519.NewKeyFromSeed(seed[:])}
	clear(seed[:])
	return sk, sk.GetPublic(), nil
}

// UnmarshalEd25519PublicKey decodes the 32-byte encoding of an Ed25519
// public key.
func UnmarshalEd25519PublicKey(data []byte) (PubKey, error) {
	if len(data) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: Ed25519 public key of %d bytes, want %d", ErrInvalidKey, len(data), ed25519.PublicKeySize)
	}
	return &Ed25519PublicKey{k: bytes.Clone(data)}, nil
}

// UnmarshalEd25519PrivateKey decodes an Ed25519 private key: seed and
// public key (64 bytes), or the legacy form that repeats the public key
// (96 bytes). The public key must be the one the seed derives.
func UnmarshalEd25519PrivateKey(data []byte) (PrivKey, error) {
	switch len(data) {
	case ed25519.PrivateKeySize:
	case ed25519.PrivateKeySize + ed25519.PublicKeySize:
		tail := data[ed25519.PrivateKeySize:]
		if subtle.ConstantTimeCompare(data[ed25519.SeedSize:ed25519.PrivateKeySize], tail) != 1 {
			return nil, fmt.Errorf("%w: legacy Ed25519 private key repeats a different public key", ErrInvalidKey)
		}
		data = data[:ed25519.PrivateKeySize]
	default:
		return nil, fmt.Errorf("%w: Ed25519 private key of %d bytes, want 64 or 96", ErrInvalidKey, len(data))
	}
	k := ed25519.NewKeyFromSeed(data[:ed25519.SeedSize])
	if subtle.ConstantTimeCompare(k[ed25519.SeedSize:], data[ed25519.SeedSize:]) != 1 {
		return nil, fmt.Errorf("%w: Ed25519 public key does not match the seed", ErrInvalidKey)
	}
	return &Ed25519PrivateKey{k: k}, nil
}

// Type returns Ed25519.
func (k *Ed25519PublicKey) Type() KeyType { return Ed25519 }

// Raw returns the 32-byte public key.
func (k *Ed25519PublicKey) Raw() ([]byte, error) { return bytes.Clone(k.k), nil }

// Equals reports whether o is the same Ed25519 public key.
func (k *Ed25519PublicKey) Equals(o Key) bool {
	ok, isEd := o.(*Ed25519PublicKey)
	if !isEd {
		return KeyEqual(k, o)
	}
	return subtle.ConstantTimeCompare(k.k, ok.k) == 1
}

// Verify reports whether sig is an Ed25519 signature of data. A
// signature of the wrong length is malformed.
func (k *Ed25519PublicKey) Verify(data, sig []byte) (bool, error) {
	if len(sig) != ed25519.SignatureSize {
		return false, fmt.Errorf("%w: Ed25519 signature of %d bytes", ErrMalformedSignature, len(sig))
	}
	return ed25519.Verify(k.k, data, sig), nil
}

// Type returns Ed25519.
func (k *Ed25519PrivateKey) Type() KeyType { return Ed25519 }

// Raw returns the 64-byte seed and public key.
func (k *Ed25519PrivateKey) Raw() ([]byte, error) { return bytes.Clone(k.k), nil }

// Equals reports whether o is the same Ed25519 private key.
func (k *Ed25519PrivateKey) Equals(o Key) bool {
	ok, isEd := o.(*Ed25519PrivateKey)
	if !isEd {
		return KeyEqual(k, o)
	}
	return subtle.ConstantTimeCompare(k.k, ok.k) == 1
}

// Sign returns the Ed25519 signature of data.
func (k *Ed25519PrivateKey) Sign(data []byte) ([]byte, error) {
	return ed25519.Sign(k.k, data), nil
}

// GetPublic returns the public half of the key.
func (k *Ed25519PrivateKey) GetPublic() PubKey {
	return &Ed25519PublicKey{k: bytes.Clone(k.k[ed25519.SeedSize:])}
}
