package crypto

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// PubKeyFromStdKey converts a Go public key — *rsa.PublicKey,
// *ecdsa.PublicKey, ed25519.PublicKey or *secp256k1.PublicKey — into a
// libp2p key, with the same checks as unmarshalling.
func PubKeyFromStdKey(pub crypto.PublicKey) (PubKey, error) {
	switch k := pub.(type) {
	case nil:
		return nil, ErrNilKey
	case *rsa.PublicKey:
		if k == nil {
			return nil, ErrNilKey
		}
		key, err := newRsaPublicKey(&rsa.PublicKey{N: k.N, E: k.E})
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return key, nil
	case *ecdsa.PublicKey:
		if k == nil {
			return nil, ErrNilKey
		}
		// Round-trip through the encoding so an off-curve point is refused.
		pk, err := newECDSAPublicKey(k)
		if err != nil {
			return nil, err
		}
		return UnmarshalECDSAPublicKey(pk.der)
	case ed25519.PublicKey:
		return UnmarshalEd25519PublicKey(k)
	case *secp256k1.PublicKey:
		if k == nil {
			return nil, ErrNilKey
		}
		return UnmarshalSecp256k1PublicKey(k.SerializeCompressed())
	default:
		return nil, fmt.Errorf("%w: %T", ErrBadKeyType, pub)
	}
}

// PrivKeyFromStdKey converts a Go private key — *rsa.PrivateKey,
// *ecdsa.PrivateKey, ed25519.PrivateKey (or a pointer to one) or
// *secp256k1.PrivateKey — into a libp2p key, with the same checks as
// unmarshalling.
func PrivKeyFromStdKey(priv crypto.PrivateKey) (PrivKey, error) {
	switch k := priv.(type) {
	case nil:
		return nil, ErrNilKey
	case *rsa.PrivateKey:
		if k == nil || k.N == nil {
			return nil, ErrNilKey
		}
		if err := checkRSABits(k.N.BitLen()); err != nil {
			return nil, err
		}
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("%w: RSA private key: %w", ErrInvalidKey, err)
		}
		key, err := newRsaPrivateKey(k)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return key, nil
	case *ecdsa.PrivateKey:
		if k == nil {
			return nil, ErrNilKey
		}
		// Round-trip through the encoding so an invalid key is refused.
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("%w: ECDSA private key: %w", ErrInvalidKey, err)
		}
		return UnmarshalECDSAPrivateKey(der)
	case ed25519.PrivateKey:
		return UnmarshalEd25519PrivateKey(k)
	case *ed25519.PrivateKey:
		if k == nil {
			return nil, ErrNilKey
		}
		return UnmarshalEd25519PrivateKey(*k)
	case *secp256k1.PrivateKey:
		if k == nil {
			return nil, ErrNilKey
		}
		return UnmarshalSecp256k1PrivateKey(k.Serialize())
	default:
		return nil, fmt.Errorf("%w: %T", ErrBadKeyType, priv)
	}
}

// PubKeyToStdKey returns the Go form of a libp2p public key:
// *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or
// *secp256k1.PublicKey. Keys of other implementations are converted
// through their encoding.
func PubKeyToStdKey(pub PubKey) (crypto.PublicKey, error) {
	switch k := pub.(type) {
	case nil:
		return nil, ErrNilKey
	case *RsaPublicKey:
		return k.k, nil
	case *ECDSAPublicKey:
		return k.k, nil
	case *Ed25519PublicKey:
		return ed25519.PublicKey(append([]byte(nil), k.k...)), nil
	case *Secp256k1PublicKey:
		return k.k, nil
	default:
		raw, err := pub.Raw()
		if err != nil {
			return nil, err
		}
		own, err := unmarshalPublicData(pub.Type(), raw)
		if err != nil {
			return nil, err
		}
		return PubKeyToStdKey(own)
	}
}

// PrivKeyToStdKey returns the Go form of a libp2p private key:
// *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey or
// *secp256k1.PrivateKey. Keys of other implementations are converted
// through their encoding.
func PrivKeyToStdKey(priv PrivKey) (crypto.PrivateKey, error) {
	switch k := priv.(type) {
	case nil:
		return nil, ErrNilKey
	case *RsaPrivateKey:
		return k.k, nil
	case *ECDSAPrivateKey:
		return k.k, nil
	case *Ed25519PrivateKey:
		return ed25519.PrivateKey(append([]byte(nil), k.k...)), nil
	case *Secp256k1PrivateKey:
		return k.k, nil
	default:
		raw, err := priv.Raw()
		if err != nil {
			return nil, err
		}
		own, err := unmarshalPrivateData(priv.Type(), raw)
		if err != nil {
			return nil, err
		}
		return PrivKeyToStdKey(own)
	}
}
