package relay

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/p2pnet/p2pnet/internal/pbio"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
)

// MaxMessageSize bounds a hop or stop message, its length prefix
// excluded. go-libp2p uses the same bound.
const MaxMessageSize = 4096

// ErrMalformed is the error of a message that does not decode, or lacks
// a required field.
var ErrMalformed = errors.New("relay: malformed message")

// HopType is the type of a HopMessage.
type HopType int32

// The hop message types.
const (
	HopReserve HopType = 0
	HopConnect HopType = 1
	HopStatus  HopType = 2
)

// StopType is the type of a StopMessage.
type StopType int32

// The stop message types.
const (
	StopConnect StopType = 0
	StopStatus  StopType = 1
)

// Status is a relay response code. Zero means absent.
type Status int32

// The status codes of the spec.
const (
	StatusOK                    Status = 100
	StatusReservationRefused    Status = 200
	StatusResourceLimitExceeded Status = 201
	StatusPermissionDenied      Status = 202
	StatusConnectionFailed      Status = 203
	StatusNoReservation         Status = 204
	StatusMalformedMessage      Status = 400
	StatusUnexpectedMessage     Status = 401
)

// String returns the spec's name of the status.
func (s Status) String() string {
	switch s {
	case 0:
		return "NONE"
	case StatusOK:
		return "OK"
	case StatusReservationRefused:
		return "RESERVATION_REFUSED"
	case StatusResourceLimitExceeded:
		return "RESOURCE_LIMIT_EXCEEDED"
	case StatusPermissionDenied:
		return "PERMISSION_DENIED"
	case StatusConnectionFailed:
		return "CONNECTION_FAILED"
	case StatusNoReservation:
		return "NO_RESERVATION"
	case StatusMalformedMessage:
		return "MALFORMED_MESSAGE"
	case StatusUnexpectedMessage:
		return "UNEXPECTED_MESSAGE"
	}
	return fmt.Sprintf("STATUS(%d)", int32(s))
}

// StatusError is the error of a refusal: the status the other side sent
// instead of OK. Compare with errors.As.
type StatusError struct {
	Status Status
	// What was refused: "reservation", "connect" or "stop".
	Op string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("relay: %s refused: %s", e.Op, e.Status)
}

// Peer names a peer, with addresses.
type Peer struct {
	ID    peer.ID
	Addrs []ma.Multiaddr
}

// Reservation is what the relay grants.
type Reservation struct {
	// Expire is when the reservation ends, in Unix seconds (UTC).
	Expire uint64
	// Addrs are the relay's addresses.
	Addrs []ma.Multiaddr
	// Voucher is the signed reservation voucher, an encoded envelope.
	Voucher []byte
}

// ExpireTime returns Expire as a time.
func (r *Reservation) ExpireTime() time.Time { return time.Unix(int64(r.Expire), 0) }

// Limit is what the relay allows a circuit: Duration seconds and Data
// bytes in each direction; zero means no limit.
type Limit struct {
	Duration uint32
	Data     uint64
}

// HopMessage is a message of the hop protocol. Status zero is absent.
type HopMessage struct {
	Type        HopType
	Peer        *Peer
	Reservation *Reservation
	Limit       *Limit
	Status      Status
}

// StopMessage is a message of the stop protocol. Status zero is absent.
type StopMessage struct {
	Type   StopType
	Peer   *Peer
	Limit  *Limit
	Status Status
}

// AppendMarshal appends the encoded message to b.
func (m *HopMessage) AppendMarshal(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.Type))
	if m.Peer != nil {
		b = appendSub(b, 2, m.Peer.appendMarshal)
	}
	if m.Reservation != nil {
		b = appendSub(b, 3, m.Reservation.appendMarshal)
	}
	if m.Limit != nil {
		b = appendSub(b, 4, m.Limit.appendMarshal)
	}
	if m.Status != 0 {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.Status))
	}
	return b
}

// Unmarshal decodes b into m.
func (m *HopMessage) Unmarshal(b []byte) error {
	*m = HopMessage{}
	haveType := false
	err := walk(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			m.Type, haveType = HopType(int32(v)), true
		case num == 2 && typ == protowire.BytesType:
			m.Peer = new(Peer)
			return m.Peer.unmarshal(raw)
		case num == 3 && typ == protowire.BytesType:
			m.Reservation = new(Reservation)
			return m.Reservation.unmarshal(raw)
		case num == 4 && typ == protowire.BytesType:
			m.Limit = new(Limit)
			return m.Limit.unmarshal(raw)
		case num == 5 && typ == protowire.VarintType:
			m.Status = Status(int32(v))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !haveType {
		return fmt.Errorf("%w: hop message without a type", ErrMalformed)
	}
	return nil
}

// AppendMarshal appends the encoded message to b.
func (m *StopMessage) AppendMarshal(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.Type))
	if m.Peer != nil {
		b = appendSub(b, 2, m.Peer.appendMarshal)
	}
	if m.Limit != nil {
		b = appendSub(b, 3, m.Limit.appendMarshal)
	}
	if m.Status != 0 {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.Status))
	}
	return b
}

// Unmarshal decodes b into m.
func (m *StopMessage) Unmarshal(b []byte) error {
	*m = StopMessage{}
	haveType := false
	err := walk(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			m.Type, haveType = StopType(int32(v)), true
		case num == 2 && typ == protowire.BytesType:
			m.Peer = new(Peer)
			return m.Peer.unmarshal(raw)
		case num == 3 && typ == protowire.BytesType:
			m.Limit = new(Limit)
			return m.Limit.unmarshal(raw)
		case num == 4 && typ == protowire.VarintType:
			m.Status = Status(int32(v))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !haveType {
		return fmt.Errorf("%w: stop message without a type", ErrMalformed)
	}
	return nil
}

func (p *Peer) appendMarshal(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte(p.ID))
	for _, a := range p.Addrs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, a.Bytes())
	}
	return b
}

// unmarshal decodes a Peer; its ID must be a valid peer ID, addresses
// that do not parse are skipped.
func (p *Peer) unmarshal(b []byte) error {
	var id []byte
	haveID := false
	err := walk(b, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			id, haveID = raw, true
		case 2:
			if a, err := ma.NewMultiaddrBytes(raw); err == nil {
				p.Addrs = append(p.Addrs, a)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !haveID {
		return fmt.Errorf("%w: peer without an ID", ErrMalformed)
	}
	pid, err := peer.IDFromBytes(id)
	if err != nil {
		return fmt.Errorf("%w: peer ID: %w", ErrMalformed, err)
	}
	p.ID = pid
	return nil
}

func (r *Reservation) appendMarshal(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, r.Expire)
	for _, a := range r.Addrs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, a.Bytes())
	}
	if len(r.Voucher) > 0 {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, r.Voucher)
	}
	return b
}

func (r *Reservation) unmarshal(b []byte) error {
	return walk(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		switch {
		case num == 1 && typ == protowire.VarintType:
			r.Expire = v
		case num == 2 && typ == protowire.BytesType:
			if a, err := ma.NewMultiaddrBytes(raw); err == nil {
				r.Addrs = append(r.Addrs, a)
			}
		case num == 3 && typ == protowire.BytesType:
			r.Voucher = append([]byte(nil), raw...)
		}
		return nil
	})
}

func (l *Limit) appendMarshal(b []byte) []byte {
	if l.Duration != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(l.Duration))
	}
	if l.Data != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, l.Data)
	}
	return b
}

func (l *Limit) unmarshal(b []byte) error {
	return walk(b, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
		if typ != protowire.VarintType {
			return nil
		}
		switch num {
		case 1:
			l.Duration = uint32(v)
		case 2:
			l.Data = v
		}
		return nil
	})
}

// appendSub appends field num holding the message f encodes.
func appendSub(b []byte, num protowire.Number, f func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	// Encode into a scratch slice to learn the length first; messages
	// are small.
	sub := f(nil)
	return protowire.AppendBytes(b, sub)
}

// walk calls f with every field of a message: varints with v, bytes
// fields with raw; other wire types are skipped.
func walk(b []byte, f func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		var v uint64
		var raw []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			raw, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.VarintType && typ != protowire.BytesType {
			continue
		}
		if err := f(num, typ, v, raw); err != nil {
			return err
		}
	}
	return nil
}

// message is a HopMessage or a StopMessage.
type message interface {
	AppendMarshal([]byte) []byte
	Unmarshal([]byte) error
}

// WriteMessage writes m prefixed with its length as a varint, in one
// Write.
func WriteMessage(w io.Writer, m message) error {
	return pbio.WrapMalformed(pbio.Write(w, m, MaxMessageSize), ErrMalformed)
}

// ReadMessage reads one length-prefixed message into m. It reads no
// byte beyond the message, so that what follows on the stream (relayed
// data) stays unread.
func ReadMessage(r io.Reader, m message) error {
	return pbio.WrapMalformed(pbio.Read(r, m, MaxMessageSize), ErrMalformed)
}
