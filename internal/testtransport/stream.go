package testtransport

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/p2pnet/p2pnet/network"
)

// errReadClosed is what the writer of a stream whose reader called
// CloseRead gets.
var errReadClosed = errors.New("testtransport: stream closed for reading")

// errReset wraps network.ErrReset.
var errReset = fmt.Errorf("testtransport: %w", network.ErrReset)

// Stream is one end of an in-memory stream: it reads from one io.Pipe and
// writes to another.
type Stream struct {
	r    *io.PipeReader
	w    *io.PipeWriter
	conn *Conn
}

var _ network.MuxedStream = (*Stream)(nil)

func newStreamPair(a, b *Conn) (*Stream, *Stream) {
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	return &Stream{r: ar, w: aw, conn: a}, &Stream{r: br, w: bw, conn: b}
}

// Read reads what the other end wrote.
func (s *Stream) Read(b []byte) (int, error) { return s.r.Read(b) }

// Write blocks until the other end has read all of b.
func (s *Stream) Write(b []byte) (int, error) { return s.w.Write(b) }

// CloseWrite makes the other end read EOF.
func (s *Stream) CloseWrite() error { return s.w.Close() }

// CloseRead makes the other end's writes fail.
func (s *Stream) CloseRead() error { return s.r.CloseWithError(errReadClosed) }

// Close closes both directions.
func (s *Stream) Close() error {
	s.w.Close()
	s.r.CloseWithError(errReadClosed)
	s.conn.untrack(s)
	return nil
}

// Reset makes the other end's reads and writes fail with an error
// wrapping network.ErrReset.
func (s *Stream) Reset() error {
	s.w.CloseWithError(errReset)
	s.r.CloseWithError(errReset)
	s.conn.untrack(s)
	return nil
}

// SetDeadline is not supported.
func (s *Stream) SetDeadline(time.Time) error { return errors.ErrUnsupported }

// SetReadDeadline is not supported.
func (s *Stream) SetReadDeadline(time.Time) error { return errors.ErrUnsupported }

// SetWriteDeadline is not supported.
func (s *Stream) SetWriteDeadline(time.Time) error { return errors.ErrUnsupported }
