// Package crypto holds the libp2p identity keys: Ed25519 (the default),
// Secp256k1, ECDSA and RSA, their generation, signatures and the
// deterministic protobuf encoding of the libp2p peer-ids spec.
//
// Import it as ic. It is a vocabulary package: it imports nothing of
// p2pnet's.
package crypto

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
	// Verify reports whether sig is a valid signature of data.
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
