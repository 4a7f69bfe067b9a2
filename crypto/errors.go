package crypto

import "errors"

// Errors returned by this package, checkable with errors.Is. Failures
// wrap one of these with details.
var (
	// ErrBadKeyType means a key type outside the spec's enum, or a Go
	// standard library key of a kind libp2p has no type for.
	ErrBadKeyType = errors.New("crypto: unknown key type")
	// ErrMalformedKey means a key protobuf that is not exactly the spec's
	// message: a missing, repeated or unknown field, a wrong wire type, a
	// non-minimal varint or truncated bytes.
	ErrMalformedKey = errors.New("crypto: malformed key protobuf")
	// ErrInvalidKey means key bytes that do not encode a valid key of the
	// stated type.
	ErrInvalidKey = errors.New("crypto: invalid key bytes")
	// ErrRSAKeyTooSmall means an RSA key of fewer than MinRSAKeyBits bits.
	ErrRSAKeyTooSmall = errors.New("crypto: RSA key too small")
	// ErrRSAKeyTooBig means an RSA key of more than MaxRSAKeyBits bits.
	ErrRSAKeyTooBig = errors.New("crypto: RSA key too big")
	// ErrUnsupportedCurve means an ECDSA curve other than P-256, P-384
	// and P-521.
	ErrUnsupportedCurve = errors.New("crypto: unsupported ECDSA curve")
	// ErrNilKey means a nil key was passed where a key was needed.
	ErrNilKey = errors.New("crypto: nil key")
	// ErrMalformedSignature means a signature that cannot be parsed in the
	// key type's signature encoding.
	ErrMalformedSignature = errors.New("crypto: malformed signature")
)
