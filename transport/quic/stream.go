package quic

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/p2pnet/p2pnet/network"

	quicgo "github.com/quic-go/quic-go"
)

// Stream is a QUIC bidirectional stream with the semantics of
// network.MuxedStream:
//
//   - CloseWrite sends the FIN after the data written; writes in progress
//     are interrupted with ErrStreamClosedWrite.
//   - CloseRead sends STOP_SENDING, so the remote's writes then fail with
//     an error matching network.ErrReset (QUIC's way of discarding what
//     arrives afterwards); reads in progress and later fail with
//     ErrStreamClosedRead.
//   - Close is CloseRead and CloseWrite; it waits for nothing.
//   - Reset sends RESET_STREAM and STOP_SENDING with error code 0.
//     Reads and writes on both sides then fail with errors matching
//     network.ErrReset (ErrStreamReset, wrapping quic-go's
//     *quic.StreamError when the remote reset).
//   - Deadlines are quic-go's, which fail with errors matching
//     os.ErrDeadlineExceeded.
//
// Only one Read and one Write may run at a time, as with quic-go.
type Stream struct {
	qs      *quicgo.Stream
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
	n, err := s.qs.Read(p)
	if err != nil && err != io.EOF {
		err = s.streamErr(err, ErrStreamClosedRead)
	}
	return n, err
}

// Write writes p, waiting for flow-control credit. The bytes counted in n
// are sent even when it fails.
func (s *Stream) Write(p []byte) (int, error) {
	// Announce the write before checking the state: CloseWrite sets the
	// state before counting the writers, so one of the two sees the
	// other.
	s.writers.Add(1)
	defer s.writers.Add(-1)
	if st := s.state.Load(); st&(stateWriteClosed|stateReset) != 0 {
		return 0, closedErr(st, ErrStreamClosedWrite)
	}
	n, err := s.qs.Write(p)
	if err != nil {
		err = s.streamErr(err, ErrStreamClosedWrite)
	}
	return n, err
}

// closedErr is the error of an operation on a stream already in state st:
// ErrStreamReset after a reset, closed otherwise.
func closedErr(st uint32, closed error) error {
	if st&stateReset != 0 {
		return ErrStreamReset
	}
	return closed
}

// streamErr translates an error of quic-go's Read or Write, for the
// direction whose close error is closed.
func (s *Stream) streamErr(err, closed error) error {
	st := s.state.Load()
	if st&stateReset != 0 {
		return ErrStreamReset
	}
	dir := stateReadClosed
	if closed == ErrStreamClosedWrite {
		dir = stateWriteClosed
	}
	if st&dir != 0 {
		// Interrupted by our CloseRead (quic-go reports its own
		// cancellation) or CloseWrite (the deadline that woke it).
		return closed
	}
	if se, ok := errors.AsType[*quicgo.StreamError](err); ok {
		// The remote reset the stream, or stopped reading it; with
		// libp2p's code for a refusal for resources, it says so.
		if se.Remote && network.StreamErrorCode(se.ErrorCode) == network.StreamResourceLimitExceeded {
			return fmt.Errorf("%w: %w (%w)", ErrStreamReset, err, network.ErrResourceLimitExceeded)
		}
		return fmt.Errorf("%w: %w", ErrStreamReset, err)
	}
	return remoteRefusal(err)
}

// CloseWrite half-closes the stream: the remote reads EOF after the data
// already written. Writes in progress fail with ErrStreamClosedWrite.
func (s *Stream) CloseWrite() error {
	if s.state.Or(stateWriteClosed)&(stateWriteClosed|stateReset) != 0 {
		return nil
	}
	if s.writers.Load() > 0 {
		// quic-go's Close does not wake a Write waiting for credit; a
		// passed deadline does, and the write side is closed for good.
		s.qs.SetWriteDeadline(time.Now())
	}
	// quic-go's Close fails only for a stream the remote stopped
	// reading (or that was reset), which has nothing left to close.
	_ = s.qs.Close()
	return nil
}

// CloseRead stops reading: reads in progress and later reads fail with
// ErrStreamClosedRead, and the remote is told to stop sending.
func (s *Stream) CloseRead() error {
	if s.state.Or(stateReadClosed)&(stateReadClosed|stateReset) != 0 {
		return nil
	}
	s.qs.CancelRead(streamResetCode)
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
	s.qs.CancelRead(streamResetCode)
	s.qs.CancelWrite(streamResetCode)
	return nil
}

// ResetWithError is Reset telling the remote why: code, one of libp2p's
// stream error codes (network.StreamResourceLimitExceeded for a refusal
// for resources), goes in RESET_STREAM and STOP_SENDING, as go-libp2p
// sends it.
func (s *Stream) ResetWithError(code network.StreamErrorCode) error {
	if s.state.Or(stateReset)&stateReset != 0 {
		return nil
	}
	s.qs.CancelRead(quicgo.StreamErrorCode(code))
	s.qs.CancelWrite(quicgo.StreamErrorCode(code))
	return nil
}

// SetDeadline sets both deadlines.
func (s *Stream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline of reads in progress and later reads;
// the zero time means none.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.qs.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of writes in progress and later
// writes; the zero time means none. After CloseWrite it does nothing: the
// deadline then belongs to CloseWrite's interruption of a write.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	if s.state.Load()&stateWriteClosed != 0 {
		return nil
	}
	return s.qs.SetWriteDeadline(t)
}
