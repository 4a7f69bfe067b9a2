package relay

import (
	"bytes"
	"fmt"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/record"

	"google.golang.org/protobuf/encoding/protowire"
)

// VoucherDomain is the signature domain of reservation vouchers.
const VoucherDomain = "libp2p-relay-rsvp"

// VoucherPayloadType is the payload type of a voucher envelope: the
// multicodec libp2p-relay-rsvp, 0x0302, as a varint (what go-libp2p and
// js-libp2p send).
var VoucherPayloadType = []byte{0x03, 0x02}

// Voucher is the relay's signed promise to serve a peer until
// Expiration.
type Voucher struct {
	Relay      peer.ID
	Peer       peer.ID
	Expiration time.Time
}

// marshal encodes the voucher canonically (fields in order).
func (v *Voucher) marshal() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte(v.Relay))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte(v.Peer))
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v.Expiration.Unix()))
}

func (v *Voucher) unmarshal(b []byte) error {
	var relay, p []byte
	var exp uint64
	var have [3]bool
	err := walk(b, func(num protowire.Number, typ protowire.Type, x uint64, raw []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			relay, have[0] = raw, true
		case num == 2 && typ == protowire.BytesType:
			p, have[1] = raw, true
		case num == 3 && typ == protowire.VarintType:
			exp, have[2] = x, true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if have != [3]bool{true, true, true} {
		return fmt.Errorf("%w: voucher lacks a field", ErrMalformed)
	}
	if v.Relay, err = peer.IDFromBytes(relay); err != nil {
		return fmt.Errorf("%w: voucher relay: %w", ErrMalformed, err)
	}
	if v.Peer, err = peer.IDFromBytes(p); err != nil {
		return fmt.Errorf("%w: voucher peer: %w", ErrMalformed, err)
	}
	v.Expiration = time.Unix(int64(exp), 0)
	return nil
}

// SealVoucher signs v with the relay's key and returns the encoded
// envelope.
func SealVoucher(v *Voucher, priv ic.PrivKey) ([]byte, error) {
	e, err := record.Seal(VoucherDomain, VoucherPayloadType, v.marshal(), priv)
	if err != nil {
		return nil, err
	}
	return e.Marshal()
}

// ConsumeVoucher decodes and verifies an encoded voucher envelope: the
// signature, the payload type, and that the signer is the voucher's
// relay.
func ConsumeVoucher(data []byte) (*Voucher, error) {
	e, err := record.ConsumeEnvelope(data, VoucherDomain)
	if err != nil {
		return nil, fmt.Errorf("relay: voucher: %w", err)
	}
	if !bytes.Equal(e.PayloadType, VoucherPayloadType) {
		return nil, fmt.Errorf("%w: voucher of payload type %x", ErrMalformed, e.PayloadType)
	}
	var v Voucher
	if err := v.unmarshal(e.RawPayload); err != nil {
		return nil, err
	}
	if !v.Relay.MatchesPublicKey(e.PublicKey) {
		return nil, fmt.Errorf("relay: voucher of %s: %w", v.Relay, record.ErrInvalidSignature)
	}
	return &v, nil
}
