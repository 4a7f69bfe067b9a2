package noise

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// ErrCertHashMismatch is wrapped by the handshake error of a WebTransport
// initiator (see WithWantedCertHashes) whose responder did not list every
// certificate hash the initiator expects: the session's certificate may
// not be the responder's, so a man in the middle may be relaying it.
var ErrCertHashMismatch = errors.New("noise: the responder did not list the WebTransport certificate hashes")

// WithCertHashes returns a copy of t for the handshake of a WebTransport
// session's first stream, as its responder (libp2p/specs
// webtransport/README.md): its payload lists certHashes, the multihashes
// of the certificates the server may present, in the
// webtransport_certhashes extension, and offers no multiplexer
// (WebTransport's own streams are the connection's streams). The copy
// shares t's keys; t is unchanged.
func (t *Transport) WithCertHashes(certHashes [][]byte) (*Transport, error) {
	p, err := decodePayload(t.payload)
	if err != nil {
		return nil, err
	}
	p.muxers = nil
	p.certHashes = certHashes
	c := *t
	c.muxers = nil
	c.payload = p.appendTo(nil)
	return &c, nil
}

// WithWantedCertHashes returns a copy of t for the handshake of a
// WebTransport session's first stream, as its initiator: the responder's
// payload must list every hash of want (multihashes, compared byte for
// byte), the hashes of the certificates the initiator accepted for the
// session, or the handshake fails with an error wrapping
// ErrCertHashMismatch before the initiator's last message is sent. It
// offers no multiplexer. want must not be empty: the check would then
// bind nothing. The copy shares t's keys; t is unchanged.
func (t *Transport) WithWantedCertHashes(want [][]byte) (*Transport, error) {
	if len(want) == 0 {
		return nil, fmt.Errorf("%w: no hash wanted", ErrCertHashMismatch)
	}
	p, err := decodePayload(t.payload)
	if err != nil {
		return nil, err
	}
	p.muxers = nil
	c := *t
	c.muxers = nil
	c.payload = p.appendTo(nil)
	c.wantCertHashes = slices.Clone(want)
	return &c, nil
}

// checkCertHashes checks, for an initiator made by WithWantedCertHashes,
// that the responder listed every wanted hash; otherwise it has nothing
// to check.
func (t *Transport) checkCertHashes(got [][]byte) error {
	for _, w := range t.wantCertHashes {
		if !slices.ContainsFunc(got, func(g []byte) bool { return bytes.Equal(g, w) }) {
			return fmt.Errorf("noise: handshake: %w: missing %x", ErrCertHashMismatch, w)
		}
	}
	return nil
}
