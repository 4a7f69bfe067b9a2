package multistream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/p2pnet/p2pnet/protocol"
)

// ProtocolID is the multistream-select header, the first message each side
// sends.
const ProtocolID = "/multistream/1.0.0"

// MaxMessageSize is the largest message, in bytes, counting the trailing
// '\n' (the largest value a length prefix may hold). A longer message is an
// error, [ErrTooLarge]. A protocol ID is thus at most MaxMessageSize-1 bytes.
const MaxMessageSize = 1024

// MaxRounds is the number of proposals (and "ls" requests) a listener
// refuses before it gives up with [ErrTooManyRounds], so that a dialer
// cannot keep it busy forever.
const MaxRounds = 64

// The fixed messages of the protocol, without their trailing '\n'.
const (
	notAvailable  = "na"
	listProtocols = "ls"
)

// headerMsg is the header message as it goes on the wire.
var headerMsg = appendMessage(nil, ProtocolID)

// naMsg is the "na" message as it goes on the wire.
var naMsg = appendMessage(nil, notAvailable)

// errShort reports that a buffer ends before the message it holds.
var errShort = errors.New("multistream: short buffer")

// appendMessage appends msg to dst as one message: its length (msg plus the
// '\n') as an unsigned varint, msg, and '\n'.
func appendMessage(dst []byte, msg string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(msg)+1))
	dst = append(dst, msg...)
	return append(dst, '\n')
}

// messageLen is the number of bytes appendMessage appends for a message of
// n bytes.
func messageLen(n int) int {
	return uvarintLen(uint64(n+1)) + n + 1
}

// uvarintLen is the size of x encoded as an unsigned varint.
func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// decodeLength decodes the length prefix at the start of p: the message's
// length and the prefix's size. It returns errShort when p ends inside the
// prefix, and decides ErrTooLarge as soon as the bytes seen so far prove the
// length exceeds MaxMessageSize, so a reader never reads further.
func decodeLength(p []byte) (length, n int, err error) {
	for i, c := range p {
		length |= int(c&0x7f) << (7 * i)
		if length > MaxMessageSize {
			return 0, 0, ErrTooLarge
		}
		if c < 0x80 {
			if c == 0 && i > 0 {
				// The multiformats varint must be minimal.
				return 0, 0, fmt.Errorf("%w: length prefix is not minimal", ErrMalformed)
			}
			return length, i + 1, nil
		}
		// Another byte follows; a minimal varint of i+2 bytes is at least
		// 1<<(7*(i+1)).
		if 1<<(7*(i+1)) > MaxMessageSize {
			return 0, 0, ErrTooLarge
		}
	}
	return 0, 0, errShort
}

// checkBody checks a message's bytes (without the length prefix) and
// returns them without the trailing '\n'.
func checkBody(p []byte) ([]byte, error) {
	if len(p) == 0 || p[len(p)-1] != '\n' {
		return nil, fmt.Errorf("%w: no trailing newline", ErrMalformed)
	}
	return p[:len(p)-1], nil
}

// parseMessage parses the message at the start of p. It returns the
// message without its '\n' (a sub-slice of p) and the number of bytes the
// message took, or errShort when p holds only part of it.
func parseMessage(p []byte) (msg []byte, n int, err error) {
	length, prefix, err := decodeLength(p)
	if err != nil {
		return nil, 0, err
	}
	if len(p)-prefix < length {
		return nil, 0, errShort
	}
	msg, err = checkBody(p[prefix : prefix+length])
	if err != nil {
		return nil, 0, err
	}
	return msg, prefix + length, nil
}

// readMessage reads one message from r, and nothing past it, into buf,
// which must be at least MaxMessageSize bytes long. It returns the message
// without its '\n', a sub-slice of buf.
//
// It reads the length prefix a byte at a time (at most two reads for a
// valid message) because the bytes that follow the message belong to the
// caller. The stream ending anywhere is io.ErrUnexpectedEOF: a negotiation
// is never complete at EOF.
func readMessage(r io.Reader, buf []byte) ([]byte, error) {
	var length int
	for i := 0; ; i++ {
		if _, err := io.ReadFull(r, buf[i:i+1]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("multistream: reading message: %w", err)
		}
		l, _, err := decodeLength(buf[:i+1])
		if err == nil {
			length = l
			break
		}
		if err != errShort {
			return nil, err
		}
	}
	if _, err := io.ReadFull(r, buf[:length]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("multistream: reading message: %w", err)
	}
	return checkBody(buf[:length])
}

// validateID reports whether id can be proposed or registered.
func validateID(id protocol.ID) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidProtocol)
	case len(id) >= MaxMessageSize:
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidProtocol, len(id), MaxMessageSize-1)
	case strings.IndexByte(string(id), '\n') >= 0:
		return fmt.Errorf("%w: %q contains a newline", ErrInvalidProtocol, id)
	case !utf8.ValidString(string(id)):
		return fmt.Errorf("%w: %q is not UTF-8", ErrInvalidProtocol, id)
	case id == notAvailable || id == listProtocols || id == ProtocolID:
		return fmt.Errorf("%w: %q is reserved", ErrInvalidProtocol, id)
	}
	return nil
}

// bufSize is the capacity of pooled buffers: room for a largest message to
// read, and for a handshake plus the start of the first data to write.
const bufSize = 4096

// bufPool holds *[]byte of capacity bufSize (or a little more).
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, bufSize)
	return &b
}}

// getBuf returns an empty buffer of capacity at least bufSize.
func getBuf() *[]byte {
	return bufPool.Get().(*[]byte)
}

// putBuf returns a buffer to the pool. Buffers that grew past 4 × bufSize
// (a long "ls" answer) are left to the garbage collector.
func putBuf(p *[]byte) {
	if cap(*p) > 4*bufSize {
		return
	}
	*p = (*p)[:0]
	bufPool.Put(p)
}
