package record

import (
	"bytes"
	"fmt"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
)

// The domain and payload type of peer records (RFC 0003): the
// multicodec libp2p-peer-record, 0x0301, as a varint.
const PeerRecordDomain = "libp2p-routing-state"

// PeerRecordPayloadType is the payload type of a peer record envelope.
var PeerRecordPayloadType = []byte{0x03, 0x01}

// PeerRecord says at which addresses a peer can be reached. Seq grows
// with each new record of the same peer.
type PeerRecord struct {
	PeerID peer.ID
	Seq    uint64
	Addrs  []ma.Multiaddr
}

// Marshal encodes the record.
func (r *PeerRecord) Marshal() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte(r.PeerID))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, r.Seq)
	for _, a := range r.Addrs {
		var ai []byte
		ai = protowire.AppendTag(ai, 1, protowire.BytesType)
		ai = protowire.AppendBytes(ai, a.Bytes())
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, ai)
	}
	return b
}

// UnmarshalPeerRecord decodes a record. Addresses that do not parse are
// skipped; a missing or invalid peer ID is an error.
func UnmarshalPeerRecord(data []byte) (*PeerRecord, error) {
	var r PeerRecord
	var id []byte
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		data = data[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return nil, fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
			}
			id, data = v, data[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(data)
			if n < 0 {
				return nil, fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
			}
			r.Seq, data = v, data[n:]
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return nil, fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
			}
			data = data[n:]
			err := walk(v, func(num protowire.Number, raw []byte) error {
				if num == 1 {
					if a, err := ma.NewMultiaddrBytes(raw); err == nil {
						r.Addrs = append(r.Addrs, a)
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return nil, fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
			}
			data = data[n:]
		}
	}
	pid, err := peer.IDFromBytes(id)
	if err != nil {
		return nil, fmt.Errorf("%w: peer ID: %w", ErrMalformed, err)
	}
	r.PeerID = pid
	return &r, nil
}

// SealPeerRecord signs r with priv, whose peer ID must be r.PeerID.
func SealPeerRecord(r *PeerRecord, priv ic.PrivKey) (*Envelope, error) {
	if !r.PeerID.MatchesPrivateKey(priv) {
		return nil, fmt.Errorf("record: the key does not belong to %s", r.PeerID)
	}
	return Seal(PeerRecordDomain, PeerRecordPayloadType, r.Marshal(), priv)
}

// ConsumePeerRecord decodes and verifies a peer record envelope: the
// signature, the payload type, and that the signer is the record's peer.
func ConsumePeerRecord(data []byte) (*PeerRecord, *Envelope, error) {
	e, err := ConsumeEnvelope(data, PeerRecordDomain)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(e.PayloadType, PeerRecordPayloadType) {
		return nil, nil, fmt.Errorf("%w: payload type %x is not a peer record", ErrMalformed, e.PayloadType)
	}
	r, err := UnmarshalPeerRecord(e.RawPayload)
	if err != nil {
		return nil, nil, err
	}
	if !r.PeerID.MatchesPublicKey(e.PublicKey) {
		return nil, nil, fmt.Errorf("%w: record of %s signed by another key", ErrInvalidSignature, r.PeerID)
	}
	return r, e, nil
}
