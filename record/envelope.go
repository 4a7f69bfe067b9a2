package record

import (
	"bytes"
	"errors"
	"fmt"

	ic "github.com/p2pnet/p2pnet/crypto"

	"google.golang.org/protobuf/encoding/protowire"
)

// MaxEnvelopeSize bounds the encoded envelopes ConsumeEnvelope accepts.
const MaxEnvelopeSize = 64 << 10

// Errors of decoding and verifying an envelope.
var (
	// ErrMalformed is the error of bytes that are not an envelope.
	ErrMalformed = errors.New("record: malformed envelope")
	// ErrInvalidSignature is the error of an envelope whose signature
	// does not verify for the expected domain.
	ErrInvalidSignature = errors.New("record: invalid signature")
	// ErrEmptyDomain is the error of sealing or opening with an empty
	// domain, which the RFC forbids.
	ErrEmptyDomain = errors.New("record: empty domain")
)

// Envelope is a signed payload: the signer's public key, the payload's
// type (a multicodec, as bytes), the payload and the signature. The
// signature covers the domain, the type and the payload, each prefixed
// with its length as a varint.
type Envelope struct {
	// PublicKey is the key of the signer.
	PublicKey ic.PubKey
	// PayloadType says what RawPayload holds.
	PayloadType []byte
	// RawPayload is the signed payload.
	RawPayload []byte

	signature []byte
}

// Seal signs payload of type payloadType for domain with priv.
func Seal(domain string, payloadType, payload []byte, priv ic.PrivKey) (*Envelope, error) {
	if domain == "" {
		return nil, ErrEmptyDomain
	}
	sig, err := priv.Sign(signedBytes(domain, payloadType, payload))
	if err != nil {
		return nil, fmt.Errorf("record: signing: %w", err)
	}
	return &Envelope{
		PublicKey:   priv.GetPublic(),
		PayloadType: bytes.Clone(payloadType),
		RawPayload:  bytes.Clone(payload),
		signature:   sig,
	}, nil
}

// Signature returns the envelope's signature.
func (e *Envelope) Signature() []byte { return e.signature }

// signedBytes is what the signature covers.
func signedBytes(domain string, typ, payload []byte) []byte {
	b := make([]byte, 0, len(domain)+len(typ)+len(payload)+3*binaryMaxVarint)
	b = protowire.AppendBytes(b, []byte(domain))
	b = protowire.AppendBytes(b, typ)
	return protowire.AppendBytes(b, payload)
}

const binaryMaxVarint = 10

// Envelope protobuf fields (RFC 0002).
const (
	fieldPublicKey   = 1
	fieldPayloadType = 2
	fieldPayload     = 3
	fieldSignature   = 5
)

// Marshal encodes the envelope.
func (e *Envelope) Marshal() ([]byte, error) {
	key, err := ic.MarshalPublicKey(e.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	var b []byte
	b = protowire.AppendTag(b, fieldPublicKey, protowire.BytesType)
	b = protowire.AppendBytes(b, key)
	b = protowire.AppendTag(b, fieldPayloadType, protowire.BytesType)
	b = protowire.AppendBytes(b, e.PayloadType)
	b = protowire.AppendTag(b, fieldPayload, protowire.BytesType)
	b = protowire.AppendBytes(b, e.RawPayload)
	b = protowire.AppendTag(b, fieldSignature, protowire.BytesType)
	b = protowire.AppendBytes(b, e.signature)
	return b, nil
}

// UnmarshalEnvelope decodes an envelope without verifying its signature.
func UnmarshalEnvelope(data []byte) (*Envelope, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(data))
	}
	var e Envelope
	var key []byte
	var haveKey bool
	err := walk(data, func(num protowire.Number, v []byte) error {
		switch num {
		case fieldPublicKey:
			key, haveKey = v, true
		case fieldPayloadType:
			e.PayloadType = bytes.Clone(v)
		case fieldPayload:
			e.RawPayload = bytes.Clone(v)
		case fieldSignature:
			e.signature = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !haveKey {
		return nil, fmt.Errorf("%w: no public key", ErrMalformed)
	}
	e.PublicKey, err = ic.UnmarshalPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %w", ErrMalformed, err)
	}
	return &e, nil
}

// ConsumeEnvelope decodes an envelope and verifies its signature for
// domain.
func ConsumeEnvelope(data []byte, domain string) (*Envelope, error) {
	if domain == "" {
		return nil, ErrEmptyDomain
	}
	e, err := UnmarshalEnvelope(data)
	if err != nil {
		return nil, err
	}
	ok, err := e.PublicKey.Verify(signedBytes(domain, e.PayloadType, e.RawPayload), e.signature)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	if !ok {
		return nil, ErrInvalidSignature
	}
	return e, nil
}

// walk calls f with each bytes-typed field of a protobuf message, and
// skips fields of other wire types. It fails with ErrMalformed on
// anything protowire cannot parse.
func walk(data []byte, f func(protowire.Number, []byte) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		data = data[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
			}
			data = data[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(data)
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		data = data[n:]
		if err := f(num, v); err != nil {
			return err
		}
	}
	return nil
}
