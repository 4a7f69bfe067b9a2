// Package pbio reads and writes the framing that relay, DCUtR and
// AutoNAT streams share: a protobuf message prefixed with its length as
// an unsigned varint. Reads take nothing past the message, so what
// follows on the stream (relayed data, the next message) stays unread;
// a write is one Write call.
//
// It imports only the standard library.
package pbio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrMalformed is wrapped by the errors of a length prefix that is no
// varint, and of a message longer than allowed.
var ErrMalformed = errors.New("pbio: malformed frame")

// WrapMalformed returns err with sentinel (a protocol's own "malformed
// message" error) wrapped in too when err is a framing error, so that a
// protocol's callers match its sentinel whatever failed; other errors
// and nil come back as they are.
func WrapMalformed(err, sentinel error) error {
	if errors.Is(err, ErrMalformed) && !errors.Is(err, sentinel) {
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	return err
}

// Marshaler appends a message's encoding to b.
type Marshaler interface {
	AppendMarshal(b []byte) []byte
}

// Unmarshaler decodes a message.
type Unmarshaler interface {
	Unmarshal(b []byte) error
}

// Write writes m, prefixed with its length, in one Write. It fails
// without writing when m encodes to more than max bytes.
func Write(w io.Writer, m Marshaler, max int) error {
	buf := make([]byte, binary.MaxVarintLen64, binary.MaxVarintLen64+64)
	buf = m.AppendMarshal(buf)
	body := len(buf) - binary.MaxVarintLen64
	if body > max {
		return fmt.Errorf("%w: message of %d bytes exceeds %d", ErrMalformed, body, max)
	}
	var pre [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(pre[:], uint64(body))
	start := binary.MaxVarintLen64 - n
	copy(buf[start:], pre[:n])
	_, err := w.Write(buf[start:])
	return err
}

// Read reads one message of at most max bytes into m. A stream that
// ends before the first byte gives io.EOF, one that ends inside the
// frame io.ErrUnexpectedEOF; m's own errors come back as they are.
func Read(r io.Reader, m Unmarshaler, max int) error {
	n, err := binary.ReadUvarint(byteReader{r})
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return err
		}
		return fmt.Errorf("%w: length prefix: %w", ErrMalformed, err)
	}
	if n > uint64(max) {
		return fmt.Errorf("%w: message of %d bytes exceeds %d", ErrMalformed, n, max)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return m.Unmarshal(buf)
}

// byteReader reads one byte at a time, so that nothing past the length
// prefix is consumed.
type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var one [1]byte
	if _, err := io.ReadFull(b.r, one[:]); err != nil {
		return 0, err
	}
	return one[0], nil
}
