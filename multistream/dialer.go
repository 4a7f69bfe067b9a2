package multistream

import (
	"fmt"
	"io"

	"github.com/p2pnet/p2pnet/protocol"
)

// SelectProtoOrFail negotiates p on rw as the dialer: it writes the header
// and the proposal in one write, then reads the listener's header and
// answer. It returns nil once the listener has echoed p, a
// [*NotSupportedError] (matching [ErrNotSupported]) if it answered "na",
// and another error if the exchange failed. It reads nothing past the
// answer.
func SelectProtoOrFail(p protocol.ID, rw io.ReadWriter) error {
	if err := validateID(p); err != nil {
		return err
	}
	bp := getBuf()
	defer putBuf(bp)
	if err := propose(rw, *bp, true, p); err != nil {
		return err
	}
	if err := readHeader(rw, *bp); err != nil {
		return err
	}
	return readAnswer(rw, *bp, p)
}

// SelectOneOf negotiates the first of protos the listener supports, trying
// them in order: the first proposal goes out with the header, in one
// write, and each "na" is followed by the next proposal. It returns the
// protocol agreed, or a [*NotSupportedError] listing protos if the listener
// refused them all, or [ErrNoProtocols] if protos is empty.
func SelectOneOf(protos []protocol.ID, rw io.ReadWriter) (protocol.ID, error) {
	if len(protos) == 0 {
		return "", ErrNoProtocols
	}
	for _, p := range protos {
		if err := validateID(p); err != nil {
			return "", err
		}
	}
	bp := getBuf()
	defer putBuf(bp)
	for i, p := range protos {
		if err := propose(rw, *bp, i == 0, p); err != nil {
			return "", err
		}
		if i == 0 {
			if err := readHeader(rw, *bp); err != nil {
				return "", err
			}
		}
		err := readAnswer(rw, *bp, p)
		if err == nil {
			return p, nil
		}
		if _, ok := err.(*NotSupportedError); !ok {
			return "", err
		}
	}
	return "", &NotSupportedError{Protocols: protos}
}

// propose writes the proposal p, after the header if withHeader, in one
// write. buf is scratch space.
func propose(w io.Writer, buf []byte, withHeader bool, p protocol.ID) error {
	buf = buf[:0]
	if withHeader {
		buf = append(buf, headerMsg...)
	}
	buf = appendMessage(buf, string(p))
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("multistream: sending proposal: %w", err)
	}
	return nil
}

// readHeader reads the listener's header. buf is scratch space of at least
// MaxMessageSize bytes.
func readHeader(r io.Reader, buf []byte) error {
	msg, err := readMessage(r, buf[:MaxMessageSize])
	if err != nil {
		return err
	}
	return checkHeader(msg)
}

// checkHeader checks the first message of the peer.
func checkHeader(msg []byte) error {
	if string(msg) != ProtocolID {
		return fmt.Errorf("%w: listener sent %q", ErrHeaderMismatch, msg)
	}
	return nil
}

// readAnswer reads the listener's answer to the proposal p.
func readAnswer(r io.Reader, buf []byte, p protocol.ID) error {
	msg, err := readMessage(r, buf[:MaxMessageSize])
	if err != nil {
		return err
	}
	return checkAnswer(msg, p)
}

// checkAnswer interprets the listener's answer to the proposal p.
func checkAnswer(msg []byte, p protocol.ID) error {
	switch string(msg) {
	case string(p):
		return nil
	case notAvailable:
		return &NotSupportedError{Protocols: []protocol.ID{p}}
	}
	return fmt.Errorf("%w: proposed %q, listener answered %q", ErrUnexpectedResponse, p, msg)
}
