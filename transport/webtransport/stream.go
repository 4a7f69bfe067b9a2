package webtransport

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/p2pnet/p2pnet/network"

	wt "github.com/quic-go/webtransport-go"
)

// ErrStreamReset is returned by reads and writes on a stream that was
// reset. After the remote reset the stream or stopped reading it, the
// error also wraps webtransport-go's *webtransport.StreamError. It matches
// network.ErrReset.
var ErrStreamReset error = streamResetError{}

type streamResetError struct{}

func (streamResetError) Error() string { return "webtransport: stream reset" }

// Is makes ErrStreamReset match network.ErrReset.
func (streamResetError) Is(target error) bool { return target == network.ErrReset }

// ErrStreamClosedRead is returned by reads after CloseRead or Close.
var ErrStreamClosedRead = errors.New("webtransport: stream closed for reading")

// ErrStreamClosedWrite is returned by writes after CloseWrite or Close.
var ErrStreamClosedWrite = errors.New("webtransport: stream closed for writing")

// Stream is a bidirectional WebTransport stream with the semantics of
// network.MuxedStream, those of transport/quic's streams:
//
//   - CloseWrite sends the FIN after the data written; writes in progress
//     are interrupted with ErrStreamClosedWrite.
//   - CloseRead sends STOP_SENDING, so the remote's writes then fail with
//     an error matching network.ErrReset; reads fail with
//     ErrStreamClosedRead.
//   - Close is CloseRead and CloseWrite; it waits for nothing.
//   - Reset cancels both directions with error code 0 (WebTransport
//     carries libp2p's error codes in browsers poorly, so none other is
//     sent, as go-libp2p does). Reads and writes on both sides then fail
//     with errors matching network.ErrReset; a Read that sees the
//     remote's reset abandons the write side at once.
//   - Deadlines fail with errors matching os.ErrDeadlineExceeded.
//
// Only one Read and one Write may run at a time.
type Stream struct {
	s       *wt.Stream
	state   atomic.Uint32 // stateReadClosed | stateWriteClosed | stateReset
	writers atomic.Int32  // Writes in progress, which CloseWrite interrupts
}

const (
	stateReadClosed uint32 = 1 << iota
	stateWriteClosed
	stateReset
)

var _ network.MuxedStream = (*Stream)(nil)

// Read reads data the remote sent. It returns io.EOF once the remote
// closed its side and the data is read.
func (s *Stream) Read(p []byte) (int, error) {
	if st := s.state.Load(); st&(stateReadClosed|stateReset) != 0 {
		return 0, closedErr(st, ErrStreamClosedRead)
	}
	n, err := s.s.Read(p)
	if err != nil && err != io.EOF {
		if se, ok := errors.AsType[*wt.StreamError](err); ok && se.Remote {
			// The remote reset the stream (libp2p peers close with a
			// FIN, never with RESET_STREAM alone): abandon our side
			// too, so that writes fail from now on rather than once
			// its STOP_SENDING, which may come later, arrives.
			s.abandon()
		}
		err = s.streamErr(err, ErrStreamClosedRead)
	}
	return n, err
}

// abandon treats the stream as reset after the remote reset it.
func (s *Stream) abandon() {
	if s.state.Or(stateReset)&stateReset != 0 {
		return
	}
	s.s.CancelWrite(streamReset)
}

// Write writes p, waiting for flow-control credit. The bytes counted in n
// are sent even when it fails.
func (s *Stream) Write(p []byte) (int, error) {
	s.writers.Add(1) // before the state check; CloseWrite does the reverse
	defer s.writers.Add(-1)
	if st := s.state.Load(); st&(stateWriteClosed|stateReset) != 0 {
		return 0, closedErr(st, ErrStreamClosedWrite)
	}
	n, err := s.s.Write(p)
	if err != nil {
		err = s.streamErr(err, ErrStreamClosedWrite)
	}
	return n, err
}

// closedErr is the error of an operation on a stream already in state st.
func closedErr(st uint32, closed error) error {
	if st&stateReset != 0 {
		return ErrStreamReset
	}
	return closed
}

// streamErr translates an error of webtransport-go's Read or Write, for
// the direction whose close error is closed.
func (s *Stream) streamErr(err, closed error) error {
	st := s.state.Load()
	if se, ok := errors.AsType[*wt.StreamError](err); ok && se.Remote {
		return fmt.Errorf("%w: %w", ErrStreamReset, err)
	}
	if st&stateReset != 0 {
		return ErrStreamReset
	}
	dir := stateReadClosed
	if closed == ErrStreamClosedWrite {
		dir = stateWriteClosed
	}
	if st&dir != 0 {
		return closed
	}
	if _, ok := errors.AsType[*wt.StreamError](err); ok {
		return fmt.Errorf("%w: %w", ErrStreamReset, err)
	}
	return err
}

// CloseWrite half-closes the stream: the remote reads EOF after the data
// already written. Writes in progress fail with ErrStreamClosedWrite.
func (s *Stream) CloseWrite() error {
	if s.state.Or(stateWriteClosed)&(stateWriteClosed|stateReset) != 0 {
		return nil
	}
	if s.writers.Load() > 0 {
		// Close does not wake a Write waiting for credit; a passed
		// deadline does, and the write side is closed for good.
		s.s.SetWriteDeadline(time.Now())
	}
	_ = s.s.Close() // fails only for a stream with nothing left to close
	return nil
}

// CloseRead stops reading: reads in progress and later reads fail with
// ErrStreamClosedRead, and the remote is told to stop sending.
func (s *Stream) CloseRead() error {
	if s.state.Or(stateReadClosed)&(stateReadClosed|stateReset) != 0 {
		return nil
	}
	s.s.CancelRead(streamReset)
	return nil
}

// Close closes both directions without waiting for the remote.
func (s *Stream) Close() error {
	s.CloseRead()
	return s.CloseWrite()
}

// Reset abandons the stream in both directions and tells the remote.
func (s *Stream) Reset() error {
	if s.state.Or(stateReset)&stateReset != 0 {
		return nil
	}
	s.s.CancelRead(streamReset)
	s.s.CancelWrite(streamReset)
	return nil
}

// SetDeadline sets both deadlines.
func (s *Stream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline of reads in progress and later reads;
// the zero time means none.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.s.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of writes in progress and later
// writes; the zero time means none. After CloseWrite it does nothing.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	if s.state.Load()&stateWriteClosed != 0 {
		return nil
	}
	return s.s.SetWriteDeadline(t)
}
