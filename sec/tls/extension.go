package tls

import (
	"encoding/asn1"
	"fmt"

	ic "github.com/p2pnet/p2pnet/crypto"
)

// extensionOID is the object identifier of the libp2p public key
// extension, from the private enterprise number IANA gave libp2p.
var extensionOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 1}

// signaturePrefix is prepended to the certificate's SubjectPublicKeyInfo
// before the host key signs it, so that the signature cannot be replayed
// in another context.
const signaturePrefix = "libp2p-tls-handshake:"

// signedKey is the extension's content:
//
//	SignedKey ::= SEQUENCE {
//	  publicKey OCTET STRING,  -- the host key, libp2p protobuf encoding
//	  signature OCTET STRING   -- host key's signature over prefix || SPKI
//	}
type signedKey struct {
	PublicKey []byte
	Signature []byte
}

// signedMessage returns the bytes the host key signs for a certificate
// key whose DER SubjectPublicKeyInfo is spki.
func signedMessage(spki []byte) []byte {
	msg := make([]byte, 0, len(signaturePrefix)+len(spki))
	msg = append(msg, signaturePrefix...)
	return append(msg, spki...)
}

// marshalExtension returns the extension content binding the certificate
// key spki to the host key priv.
func marshalExtension(priv ic.PrivKey, spki []byte) ([]byte, error) {
	pub, err := ic.MarshalPublicKey(priv.GetPublic())
	if err != nil {
		return nil, fmt.Errorf("sec/tls: marshalling host key: %w", err)
	}
	sig, err := priv.Sign(signedMessage(spki))
	if err != nil {
		return nil, fmt.Errorf("sec/tls: signing certificate key: %w", err)
	}
	return asn1.Marshal(signedKey{PublicKey: pub, Signature: sig})
}

// verifyExtension parses the extension content value and checks that the
// host key in it signed spki, the DER SubjectPublicKeyInfo of the
// certificate carrying it. It returns the host key.
func verifyExtension(value, spki []byte) (ic.PubKey, error) {
	var sk signedKey
	rest, err := asn1.Unmarshal(value, &sk)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedExtension, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformedExtension, len(rest))
	}
	pub, err := ic.UnmarshalPublicKey(sk.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedExtension, err)
	}
	ok, err := pub.Verify(signedMessage(spki), sk.Signature)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExtensionSignature, err)
	}
	if !ok {
		return nil, ErrExtensionSignature
	}
	return pub, nil
}
