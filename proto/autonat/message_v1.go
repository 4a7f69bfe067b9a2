package autonat

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// V1MessageType is Message.type of AutoNAT v1.
type V1MessageType int32

// The v1 message types.
const (
	V1TypeDial         V1MessageType = 0
	V1TypeDialResponse V1MessageType = 1
)

// String returns the spec's name.
func (t V1MessageType) String() string {
	switch t {
	case V1TypeDial:
		return "DIAL"
	case V1TypeDialResponse:
		return "DIAL_RESPONSE"
	}
	return fmt.Sprintf("V1MessageType(%d)", int32(t))
}

// V1Status is DialResponse.status of AutoNAT v1.
type V1Status int32

// The v1 response statuses.
const (
	V1OK            V1Status = 0
	V1DialError     V1Status = 100
	V1DialRefused   V1Status = 101
	V1BadRequest    V1Status = 200
	V1InternalError V1Status = 300
)

// String returns the spec's name.
func (s V1Status) String() string {
	switch s {
	case V1OK:
		return "OK"
	case V1DialError:
		return "E_DIAL_ERROR"
	case V1DialRefused:
		return "E_DIAL_REFUSED"
	case V1BadRequest:
		return "E_BAD_REQUEST"
	case V1InternalError:
		return "E_INTERNAL_ERROR"
	}
	return fmt.Sprintf("V1Status(%d)", int32(s))
}

// V1PeerInfo is the peer a v1 Dial asks to be dialed: its ID and
// addresses, the bytes that travelled. A nil ID was absent.
type V1PeerInfo struct {
	ID    []byte
	Addrs [][]byte
}

// V1Dial is the body of a DIAL message.
type V1Dial struct {
	Peer *V1PeerInfo
}

// V1DialResponse is the body of a DIAL_RESPONSE message. Addr is the
// address the server dialed, nil when absent.
type V1DialResponse struct {
	Status     V1Status
	StatusText string
	Addr       []byte
}

// V1Message is the message of AutoNAT v1 (proto2): a type, and the body
// that goes with it. The codec keeps which optional parts were present
// (a nil pointer or slice was absent), so that it round-trips.
type V1Message struct {
	Type         V1MessageType
	Dial         *V1Dial
	DialResponse *V1DialResponse
}

// AppendMarshal appends the encoded message to b. The type is always
// written, as go-libp2p does.
func (m *V1Message) AppendMarshal(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(int64(m.Type)))
	if m.Dial != nil {
		var dial []byte
		if pi := m.Dial.Peer; pi != nil {
			var sub []byte
			if pi.ID != nil {
				sub = protowire.AppendTag(sub, 1, protowire.BytesType)
				sub = protowire.AppendBytes(sub, pi.ID)
			}
			for _, a := range pi.Addrs {
				sub = protowire.AppendTag(sub, 2, protowire.BytesType)
				sub = protowire.AppendBytes(sub, a)
			}
			dial = protowire.AppendTag(dial, 1, protowire.BytesType)
			dial = protowire.AppendBytes(dial, sub)
		}
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, dial)
	}
	if r := m.DialResponse; r != nil {
		var sub []byte
		sub = protowire.AppendTag(sub, 1, protowire.VarintType)
		sub = protowire.AppendVarint(sub, uint64(int64(r.Status)))
		if r.StatusText != "" {
			sub = protowire.AppendTag(sub, 2, protowire.BytesType)
			sub = protowire.AppendString(sub, r.StatusText)
		}
		if r.Addr != nil {
			sub = protowire.AppendTag(sub, 3, protowire.BytesType)
			sub = protowire.AppendBytes(sub, r.Addr)
		}
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, sub)
	}
	return b
}

// Unmarshal decodes b into m. Unknown fields are skipped; an embedded
// message that occurs twice is the last one (the spec's messages never
// repeat them). An absent type is DIAL, the proto2 default.
func (m *V1Message) Unmarshal(b []byte) error {
	*m = V1Message{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			m.Type = V1MessageType(int32(x))
		case num == 2 && typ == protowire.BytesType:
			d := &V1Dial{}
			if err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != 1 || typ != protowire.BytesType {
					return nil
				}
				pi := &V1PeerInfo{}
				if err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
					switch {
					case num == 1 && typ == protowire.BytesType:
						pi.ID = append([]byte{}, v...)
					case num == 2 && typ == protowire.BytesType:
						pi.Addrs = append(pi.Addrs, append([]byte{}, v...))
					}
					return nil
				}); err != nil {
					return err
				}
				d.Peer = pi
				return nil
			}); err != nil {
				return err
			}
			m.Dial = d
		case num == 3 && typ == protowire.BytesType:
			r := &V1DialResponse{}
			if err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				switch {
				case num == 1 && typ == protowire.VarintType:
					r.Status = V1Status(int32(x))
				case num == 2 && typ == protowire.BytesType:
					r.StatusText = string(v)
				case num == 3 && typ == protowire.BytesType:
					r.Addr = append([]byte{}, v...)
				}
				return nil
			}); err != nil {
				return err
			}
			m.DialResponse = r
		}
		return nil
	})
}
