package yamux

import "encoding/binary"

// The frame header (spec.md, "Framing"): version, type, flags, stream ID
// and length, big-endian, 12 bytes.
const (
	headerSize   = 12
	protoVersion = 0
)

// frameType is the type field of a frame header.
type frameType uint8

const (
	typeData         frameType = 0 // payload for a stream
	typeWindowUpdate frameType = 1 // receive-window credit for a stream
	typePing         frameType = 2 // keepalive and RTT measurement
	typeGoAway       frameType = 3 // the session is terminating
)

// Flags of a frame header.
const (
	flagSYN uint16 = 1 << 0 // opens a stream; on a ping, a request
	flagACK uint16 = 1 << 1 // accepts a stream; on a ping, the answer
	flagFIN uint16 = 1 << 2 // half-closes a stream
	flagRST uint16 = 1 << 3 // resets a stream
)

// GoAway codes carried in the length field.
const (
	goAwayNormal        uint32 = 0
	goAwayProtocolError uint32 = 1
	goAwayInternalError uint32 = 2
)

// initialWindow is the receive window both sides assume for a new stream
// before any WindowUpdate.
const initialWindow = 256 << 10

// header is a decoded frame header.
type header struct {
	typ      frameType
	flags    uint16
	streamID uint32
	length   uint32
}

// appendHeader appends the encoding of a frame header to dst.
func appendHeader(dst []byte, typ frameType, flags uint16, streamID, length uint32) []byte {
	dst = append(dst, protoVersion, byte(typ))
	dst = binary.BigEndian.AppendUint16(dst, flags)
	dst = binary.BigEndian.AppendUint32(dst, streamID)
	return binary.BigEndian.AppendUint32(dst, length)
}

// parseHeader decodes a frame header. It fails, with an error wrapping
// ErrProtocol, on a version other than 0 or an unknown frame type.
func parseHeader(b *[headerSize]byte) (header, error) {
	if b[0] != protoVersion {
		return header{}, ErrInvalidVersion
	}
	typ := frameType(b[1])
	if typ > typeGoAway {
		return header{}, ErrInvalidType
	}
	return header{
		typ:      typ,
		flags:    binary.BigEndian.Uint16(b[2:4]),
		streamID: binary.BigEndian.Uint32(b[4:8]),
		length:   binary.BigEndian.Uint32(b[8:12]),
	}, nil
}
