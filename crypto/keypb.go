package crypto

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the PublicKey and PrivateKey messages.
const (
	fieldType protowire.Number = 1
	fieldData protowire.Number = 2
)

// MarshalPublicKey encodes k as the spec's PublicKey protobuf, with the
// fields in order and minimal varints, so that the same key always gives
// the same bytes (and the same peer ID).
func MarshalPublicKey(k PubKey) ([]byte, error) {
	if k == nil {
		return nil, ErrNilKey
	}
	return marshalKey(k)
}

// MarshalPrivateKey encodes k as the spec's PrivateKey protobuf, the
// form libp2p keeps private keys in on disk.
func MarshalPrivateKey(k PrivKey) ([]byte, error) {
	if k == nil {
		return nil, ErrNilKey
	}
	return marshalKey(k)
}

func marshalKey(k Key) ([]byte, error) {
	typ := k.Type()
	if !typ.valid() {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyType, typ)
	}
	data, err := k.Raw()
	if err != nil {
		return nil, err
	}
	return appendKeyMessage(nil, typ, data), nil
}

// appendKeyMessage appends the protobuf message {Type: typ, Data: data}
// to b.
func appendKeyMessage(b []byte, typ KeyType, data []byte) []byte {
	b = protowire.AppendTag(b, fieldType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(typ))
	b = protowire.AppendTag(b, fieldData, protowire.BytesType)
	return protowire.AppendBytes(b, data)
}

// UnmarshalPublicKey decodes the spec's PublicKey protobuf.
func UnmarshalPublicKey(data []byte) (PubKey, error) {
	typ, raw, err := parseKeyMessage(data)
	if err != nil {
		return nil, err
	}
	return unmarshalPublicData(typ, raw)
}

// UnmarshalPrivateKey decodes the spec's PrivateKey protobuf.
func UnmarshalPrivateKey(data []byte) (PrivKey, error) {
	typ, raw, err := parseKeyMessage(data)
	if err != nil {
		return nil, err
	}
	return unmarshalPrivateData(typ, raw)
}

func unmarshalPublicData(typ KeyType, raw []byte) (PubKey, error) {
	switch typ {
	case RSA:
		return UnmarshalRsaPublicKey(raw)
	case Ed25519:
		return UnmarshalEd25519PublicKey(raw)
	case Secp256k1:
		return UnmarshalSecp256k1PublicKey(raw)
	case ECDSA:
		return UnmarshalECDSAPublicKey(raw)
	default:
		return nil, fmt.Errorf("%w: %v", ErrBadKeyType, typ)
	}
}

func unmarshalPrivateData(typ KeyType, raw []byte) (PrivKey, error) {
	switch typ {
	case RSA:
		return UnmarshalRsaPrivateKey(raw)
	case Ed25519:
		return UnmarshalEd25519PrivateKey(raw)
	case Secp256k1:
		return UnmarshalSecp256k1PrivateKey(raw)
	case ECDSA:
		return UnmarshalECDSAPrivateKey(raw)
	default:
		return nil, fmt.Errorf("%w: %v", ErrBadKeyType, typ)
	}
}

// parseKeyMessage parses a PublicKey or PrivateKey message strictly: both
// fields exactly once (in either order), no other field, minimal varints
// and nothing after the last field. The returned data aliases b.
func parseKeyMessage(b []byte) (KeyType, []byte, error) {
	var (
		typ              KeyType
		data             []byte
		haveTyp, haveDat bool
	)
	for len(b) > 0 {
		tag, n := protowire.ConsumeVarint(b)
		if n < 0 || n != protowire.SizeVarint(tag) {
			return 0, nil, fmt.Errorf("%w: bad tag", ErrMalformedKey)
		}
		b = b[n:]
		num, wt := protowire.DecodeTag(tag)
		switch num {
		case fieldType:
			if wt != protowire.VarintType {
				return 0, nil, fmt.Errorf("%w: Type has wire type %d", ErrMalformedKey, wt)
			}
			if haveTyp {
				return 0, nil, fmt.Errorf("%w: repeated Type", ErrMalformedKey)
			}
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || n != protowire.SizeVarint(v) {
				return 0, nil, fmt.Errorf("%w: bad Type varint", ErrMalformedKey)
			}
			b = b[n:]
			t := KeyType(int32(v))
			if int64(v) != int64(t) || !t.valid() {
				return 0, nil, fmt.Errorf("%w: %d", ErrBadKeyType, int64(v))
			}
			typ, haveTyp = t, true
		case fieldData:
			if wt != protowire.BytesType {
				return 0, nil, fmt.Errorf("%w: Data has wire type %d", ErrMalformedKey, wt)
			}
			if haveDat {
				return 0, nil, fmt.Errorf("%w: repeated Data", ErrMalformedKey)
			}
			l, n := protowire.ConsumeVarint(b)
			if n < 0 || n != protowire.SizeVarint(l) {
				return 0, nil, fmt.Errorf("%w: bad Data length", ErrMalformedKey)
			}
			b = b[n:]
			if l > uint64(len(b)) {
				return 0, nil, fmt.Errorf("%w: Data truncated", ErrMalformedKey)
			}
			data, haveDat = b[:l], true
			b = b[l:]
		default:
			return 0, nil, fmt.Errorf("%w: unknown field %d", ErrMalformedKey, num)
		}
	}
	if !haveTyp {
		return 0, nil, fmt.Errorf("%w: missing Type", ErrMalformedKey)
	}
	if !haveDat {
		return 0, nil, fmt.Errorf("%w: missing Data", ErrMalformedKey)
	}
	return typ, data, nil
}
