package noise

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// handshakePayload is the NoiseHandshakePayload protobuf (proto2) that the
// second and third handshake messages carry:
//
//	message NoiseExtensions {
//		repeated bytes webtransport_certhashes = 1;
//		repeated string stream_muxers = 2;
//	}
//	message NoiseHandshakePayload {
//		optional bytes identity_key = 1;
//		optional bytes identity_sig = 2;
//		optional NoiseExtensions extensions = 4;
//	}
//
// The slices of a decoded payload alias the decoded bytes.
type handshakePayload struct {
	identityKey []byte // the libp2p PublicKey protobuf
	identitySig []byte // signature of staticKeySigPrefix + Noise static key
	// hasExtensions records whether the extensions field was present.
	hasExtensions bool
	certHashes    [][]byte
	muxers        []string
}

// Field numbers of the two messages.
const (
	fieldIdentityKey = 1
	fieldIdentitySig = 2
	fieldExtensions  = 4

	fieldCertHashes   = 1
	fieldStreamMuxers = 2
)

// appendTo appends the deterministic encoding of p to b: fields in number
// order, empty optional fields left out, extensions present when any
// extension is set or hasExtensions says so.
func (p *handshakePayload) appendTo(b []byte) []byte {
	if len(p.identityKey) > 0 {
		b = protowire.AppendTag(b, fieldIdentityKey, protowire.BytesType)
		b = protowire.AppendBytes(b, p.identityKey)
	}
	if len(p.identitySig) > 0 {
		b = protowire.AppendTag(b, fieldIdentitySig, protowire.BytesType)
		b = protowire.AppendBytes(b, p.identitySig)
	}
	if p.hasExtensions || len(p.certHashes) > 0 || len(p.muxers) > 0 {
		size := 0
		for _, h := range p.certHashes {
			size += protowire.SizeTag(fieldCertHashes) + protowire.SizeBytes(len(h))
		}
		for _, m := range p.muxers {
			size += protowire.SizeTag(fieldStreamMuxers) + protowire.SizeBytes(len(m))
		}
		b = protowire.AppendTag(b, fieldExtensions, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
		for _, h := range p.certHashes {
			b = protowire.AppendTag(b, fieldCertHashes, protowire.BytesType)
			b = protowire.AppendBytes(b, h)
		}
		for _, m := range p.muxers {
			b = protowire.AppendTag(b, fieldStreamMuxers, protowire.BytesType)
			b = protowire.AppendString(b, m)
		}
	}
	return b
}

// decodePayload decodes a NoiseHandshakePayload. Unknown fields are
// skipped; a known field with the wrong wire type, or bytes that are not
// protobuf, are errors wrapping ErrBadPayload. As protobuf requires, a
// repeated singular field keeps its last value and a repeated extensions
// field merges.
func decodePayload(b []byte) (handshakePayload, error) {
	var p handshakePayload
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return handshakePayload{}, fmt.Errorf("%w: %w", ErrBadPayload, protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case fieldIdentityKey, fieldIdentitySig, fieldExtensions:
			if typ != protowire.BytesType {
				return handshakePayload{}, fmt.Errorf("%w: field %d has wire type %d", ErrBadPayload, num, typ)
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return handshakePayload{}, fmt.Errorf("%w: field %d: %w", ErrBadPayload, num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case fieldIdentityKey:
				p.identityKey = v
			case fieldIdentitySig:
				p.identitySig = v
			default:
				p.hasExtensions = true
				if err := p.decodeExtensions(v); err != nil {
					return handshakePayload{}, err
				}
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return handshakePayload{}, fmt.Errorf("%w: field %d: %w", ErrBadPayload, num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return p, nil
}

// decodeExtensions merges the NoiseExtensions message b into p.
func (p *handshakePayload) decodeExtensions(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: extensions: %w", ErrBadPayload, protowire.ParseError(n))
		}
		b = b[n:]
		if num != fieldCertHashes && num != fieldStreamMuxers {
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: extensions field %d: %w", ErrBadPayload, num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("%w: extensions field %d has wire type %d", ErrBadPayload, num, typ)
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("%w: extensions field %d: %w", ErrBadPayload, num, protowire.ParseError(n))
		}
		b = b[n:]
		if num == fieldCertHashes {
			p.certHashes = append(p.certHashes, v)
		} else {
			p.muxers = append(p.muxers, string(v))
		}
	}
	return nil
}
