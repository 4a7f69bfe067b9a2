package holepunch

import (
	"errors"
	"fmt"
	"io"

	"github.com/p2pnet/p2pnet/internal/pbio"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
)

// MaxMessageSize bounds a message, its length prefix excluded: the spec
// says to refuse larger ones.
const MaxMessageSize = 4096

// ErrMalformed is the error of a message that does not decode, lacks its
// type, or is too large.
var ErrMalformed = errors.New("holepunch: malformed message")

// Type is the type of a HolePunch message.
type Type int32

// The message types of the spec.
const (
	TypeConnect Type = 100
	TypeSync    Type = 300
)

// String returns the spec's name of the type.
func (t Type) String() string {
	switch t {
	case TypeConnect:
		return "CONNECT"
	case TypeSync:
		return "SYNC"
	}
	return fmt.Sprintf("TYPE(%d)", int32(t))
}

// Message is a HolePunch message. ObsAddrs are kept as the bytes that
// travelled, so that an address we cannot parse survives a round trip;
// Addrs parses them.
type Message struct {
	Type     Type
	ObsAddrs [][]byte
}

// NewMessage returns a message of type t carrying addrs.
func NewMessage(t Type, addrs []ma.Multiaddr) *Message {
	m := &Message{Type: t}
	for _, a := range addrs {
		m.ObsAddrs = append(m.ObsAddrs, a.Bytes())
	}
	return m
}

// Addrs returns the addresses of ObsAddrs that parse as multiaddrs,
// skipping the others.
func (m *Message) Addrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, b := range m.ObsAddrs {
		if a, err := ma.NewMultiaddrBytes(b); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// AppendMarshal appends the encoded message to b.
func (m *Message) AppendMarshal(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(int64(m.Type)))
	for _, a := range m.ObsAddrs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, a)
	}
	return b
}

// Unmarshal decodes b into m. Unknown fields are skipped.
func (m *Message) Unmarshal(b []byte) error {
	*m = Message{}
	haveType := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			m.Type, haveType = Type(int32(v)), true
		case num == 2 && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			if n >= 0 {
				m.ObsAddrs = append(m.ObsAddrs, append([]byte{}, v...))
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
	}
	if !haveType {
		return fmt.Errorf("%w: message without a type", ErrMalformed)
	}
	return nil
}

// WriteMessage writes m to w with its length prefix, in one Write.
func WriteMessage(w io.Writer, m *Message) error {
	return pbio.WrapMalformed(pbio.Write(w, m, MaxMessageSize), ErrMalformed)
}

// ReadMessage reads one length-prefixed message from r into m. It reads
// no byte beyond the message.
func ReadMessage(r io.Reader, m *Message) error {
	return pbio.WrapMalformed(pbio.Read(r, m, MaxMessageSize), ErrMalformed)
}
