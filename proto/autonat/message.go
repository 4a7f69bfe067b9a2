package autonat

import (
	"errors"
	"fmt"
	"io"

	"github.com/p2pnet/p2pnet/internal/pbio"

	"google.golang.org/protobuf/encoding/protowire"
)

// MaxMessageSize bounds a message, its length prefix excluded (8 KiB:
// room for a DialDataResponse of MaxDataChunk bytes and for a
// DialRequest of several addresses).
const MaxMessageSize = 8192

// MaxDataChunk is the most data one DialDataResponse may carry (the
// spec's 4096 bytes).
const MaxDataChunk = 4096

// ErrMalformed is the error of a message that does not decode or is too
// large.
var ErrMalformed = errors.New("autonat: malformed message")

// ResponseStatus is DialResponse.ResponseStatus.
type ResponseStatus int32

// The response statuses of the spec.
const (
	ResponseInternalError   ResponseStatus = 0
	ResponseRequestRejected ResponseStatus = 100
	ResponseDialRefused     ResponseStatus = 101
	ResponseOK              ResponseStatus = 200
)

// String returns the spec's name.
func (s ResponseStatus) String() string {
	switch s {
	case ResponseInternalError:
		return "E_INTERNAL_ERROR"
	case ResponseRequestRejected:
		return "E_REQUEST_REJECTED"
	case ResponseDialRefused:
		return "E_DIAL_REFUSED"
	case ResponseOK:
		return "OK"
	}
	return fmt.Sprintf("ResponseStatus(%d)", int32(s))
}

// DialStatus is the outcome of the dial back.
type DialStatus int32

// The dial statuses of the spec.
const (
	DialUnused    DialStatus = 0
	DialError     DialStatus = 100
	DialBackError DialStatus = 101
	DialOK        DialStatus = 200
)

// String returns the spec's name.
func (s DialStatus) String() string {
	switch s {
	case DialUnused:
		return "UNUSED"
	case DialError:
		return "E_DIAL_ERROR"
	case DialBackError:
		return "E_DIAL_BACK_ERROR"
	case DialOK:
		return "OK"
	}
	return fmt.Sprintf("DialStatus(%d)", int32(s))
}

// DialRequest asks the server to dial one of Addrs (in order of
// preference) and send Nonce back. Addrs are the bytes that travelled.
type DialRequest struct {
	Addrs [][]byte
	Nonce uint64
}

// DialDataRequest asks the client to send NumBytes of data before the
// server dials address AddrIdx.
type DialDataRequest struct {
	AddrIdx  uint32
	NumBytes uint64
}

// DialResponse is the server's answer.
type DialResponse struct {
	Status     ResponseStatus
	AddrIdx    uint32
	DialStatus DialStatus
}

// DialDataResponse carries data paid for a dial.
type DialDataResponse struct {
	Data []byte
}

// Message is what travels on the dial-request stream: exactly one of
// its fields is set (the protobuf's oneof; the last one decoded wins).
type Message struct {
	DialRequest      *DialRequest
	DialResponse     *DialResponse
	DialDataRequest  *DialDataRequest
	DialDataResponse *DialDataResponse
}

// DialBack carries the nonce on the dial-back stream.
type DialBack struct {
	Nonce uint64
}

// DialBackResponse acknowledges a DialBack; its only status is OK (0).
type DialBackResponse struct {
	Status int32
}

// codec is a message that encodes and decodes itself.
type codec interface {
	AppendMarshal(b []byte) []byte
	Unmarshal(b []byte) error
}

// AppendMarshal appends the encoded message to b.
func (m *Message) AppendMarshal(b []byte) []byte {
	var sub []byte
	var num protowire.Number
	switch {
	case m.DialRequest != nil:
		num = 1
		for _, a := range m.DialRequest.Addrs {
			sub = protowire.AppendTag(sub, 1, protowire.BytesType)
			sub = protowire.AppendBytes(sub, a)
		}
		sub = protowire.AppendTag(sub, 2, protowire.Fixed64Type)
		sub = protowire.AppendFixed64(sub, m.DialRequest.Nonce)
	case m.DialResponse != nil:
		num = 2
		sub = appendVarintField(sub, 1, uint64(int64(m.DialResponse.Status)))
		sub = appendVarintField(sub, 2, uint64(m.DialResponse.AddrIdx))
		sub = appendVarintField(sub, 3, uint64(int64(m.DialResponse.DialStatus)))
	case m.DialDataRequest != nil:
		num = 3
		sub = appendVarintField(sub, 1, uint64(m.DialDataRequest.AddrIdx))
		sub = appendVarintField(sub, 2, m.DialDataRequest.NumBytes)
	case m.DialDataResponse != nil:
		num = 4
		if len(m.DialDataResponse.Data) > 0 {
			sub = protowire.AppendTag(sub, 1, protowire.BytesType)
			sub = protowire.AppendBytes(sub, m.DialDataResponse.Data)
		}
	default:
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, sub)
}

// appendVarintField appends a varint field, omitting a zero (proto3).
func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// Unmarshal decodes b into m. Unknown fields are skipped. A message
// with none of the four set is malformed.
func (m *Message) Unmarshal(b []byte) error {
	*m = Message{}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			r := &DialRequest{}
			if err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					r.Addrs = append(r.Addrs, append([]byte{}, v...))
				case num == 2 && typ == protowire.Fixed64Type:
					r.Nonce = x
				}
				return nil
			}); err != nil {
				return err
			}
			*m = Message{DialRequest: r}
		case 2:
			r := &DialResponse{}
			if err := eachField(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
				if typ != protowire.VarintType {
					return nil
				}
				switch num {
				case 1:
					r.Status = ResponseStatus(int32(x))
				case 2:
					r.AddrIdx = uint32(x)
				case 3:
					r.DialStatus = DialStatus(int32(x))
				}
				return nil
			}); err != nil {
				return err
			}
			*m = Message{DialResponse: r}
		case 3:
			r := &DialDataRequest{}
			if err := eachField(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
				if typ != protowire.VarintType {
					return nil
				}
				switch num {
				case 1:
					r.AddrIdx = uint32(x)
				case 2:
					r.NumBytes = x
				}
				return nil
			}); err != nil {
				return err
			}
			*m = Message{DialDataRequest: r}
		case 4:
			r := &DialDataResponse{}
			if err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num == 1 && typ == protowire.BytesType {
					r.Data = append([]byte{}, v...)
				}
				return nil
			}); err != nil {
				return err
			}
			*m = Message{DialDataResponse: r}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if m.DialRequest == nil && m.DialResponse == nil && m.DialDataRequest == nil && m.DialDataResponse == nil {
		return fmt.Errorf("%w: empty message", ErrMalformed)
	}
	return nil
}

// AppendMarshal appends the encoded message to b.
func (m *DialBack) AppendMarshal(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, m.Nonce)
}

// Unmarshal decodes b into m.
func (m *DialBack) Unmarshal(b []byte) error {
	*m = DialBack{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
		if num == 1 && typ == protowire.Fixed64Type {
			m.Nonce = x
		}
		return nil
	})
}

// AppendMarshal appends the encoded message to b.
func (m *DialBackResponse) AppendMarshal(b []byte) []byte {
	return appendVarintField(b, 1, uint64(int64(m.Status)))
}

// Unmarshal decodes b into m.
func (m *DialBackResponse) Unmarshal(b []byte) error {
	*m = DialBackResponse{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
		if num == 1 && typ == protowire.VarintType {
			m.Status = int32(x)
		}
		return nil
	})
}

// eachField calls f with each field of b: the bytes of a length-
// delimited field, the value of a varint or fixed one.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// WriteMessage writes m with its length prefix, in one Write.
func WriteMessage(w io.Writer, m codec) error {
	return pbio.WrapMalformed(pbio.Write(w, m, MaxMessageSize), ErrMalformed)
}

// ReadMessage reads one length-prefixed message from r into m. It reads
// no byte beyond the message.
func ReadMessage(r io.Reader, m codec) error {
	return pbio.WrapMalformed(pbio.Read(r, m, MaxMessageSize), ErrMalformed)
}
