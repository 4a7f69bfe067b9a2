// Package crypto holds the libp2p identity keys: Ed25519 (the default),
// Secp256k1, ECDSA and RSA, their generation, signatures and the
// deterministic protobuf encoding of the libp2p peer-ids spec.
//
// Import it as ic. It is a vocabulary package: it imports nothing of
// p2pnet's.
package crypto

import (
	"crypto/subtle"
	"fmt"
	"io"
)

// KeyType is the key algorithm, numbered as in the peer-ids spec's
// KeyType enum.
type KeyType int32

// The key types of the peer-ids spec, with the spec's enum values.
const (
	RSA       KeyType = 0
	Ed25519   KeyType = 1
	Secp256k1 KeyType = 2
	ECDSA     KeyType = 3
)

// String returns the key type's name as the spec's enum spells it.
func (t KeyType) String() string {
	switch t {
	case RSA:
		return "RSA"
	case Ed25519:
		return "Ed25519"
	case Secp256k1:
		return "Secp256k1"
	case ECDSA:
		return "ECDSA"
	default:
		return fmt.Sprintf("KeyType(%d)", int32(t))
	}
}

// valid reports whether t is one of the four key types of the spec.
func (t KeyType) valid() bool {
	return t >= RSA && t <= ECDSA
}

// Key is what public and private keys share.
type Key interface {
	// Equals reports whether the two keys are the same key.
	Equals(Key) bool
	// Raw returns the key's bytes in the type-specific encoding of the
	// peer-ids spec (the Data field of the key protobuf).
	Raw() ([]byte, error)
	// Type returns the key's algorithm.
	Type() KeyType
}

// PubKey is a public key that verifies signatures.
type PubKey interface {
	Key
	// Verify reports whether sig is a valid signature of data. A
	// signature that cannot even be parsed gives false and an error
	// wrapping ErrMalformedSignature; a well-formed wrong one gives false
	// and no error.
	Verify(data []byte, sig []byte) (bool, error)
}

// PrivKey is a private key that signs.
type PrivKey interface {
	Key
	// Sign signs data.
	Sign(data []byte) ([]byte, error)
	// GetPublic returns the matching public key.
	GetPublic() PubKey
}

// GenerateKeyPair generates a key pair of the given type from
// crypto/rand. bits is the modulus size for RSA (2048 to 8192) and picks
// the curve for ECDSA (256, 384 or 521; 0 means P-256); the other types
// ignore it.
func GenerateKeyPair(typ KeyType, bits int) (PrivKey, PubKey, error) {
	return GenerateKeyPairWithReader(typ, bits, nil)
}

// GenerateKeyPairWithReader is GenerateKeyPair with src as the source of
// randomness (nil means crypto/rand). Ed25519 and Secp256k1 keys are drawn
// from src exactly; since Go 1.26 the standard library ignores src for
// RSA and ECDSA and always uses a secure source.
func GenerateKeyPairWithReader(typ KeyType, bits int, src io.Reader) (PrivKey, PubKey, error) {
	switch typ {
	case RSA:
		return generateRSAKey(bits, src)
	case Ed25519:
		return GenerateEd25519Key(src)
	case Secp256k1:
		return GenerateSecp256k1Key(src)
	case ECDSA:
		return generateECDSAKey(bits, src)
	default:
		return nil, nil, fmt.Errorf("%w: %v", ErrBadKeyType, typ)
	}
}

// KeyEqual reports whether a and b are the same key: the same type and the
// same encoded bytes, compared in constant time.
func KeyEqual(a, b Key) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if a == b {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	ab, err := a.Raw()
	if err != nil {
		return false
	}
	bb, err := b.Raw()
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(ab, bb) == 1
}
