package fakehost

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pnet/p2pnet/internal/memconn"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
)

// pairState is shared by the two ends of a stream.
type pairState struct{ reset atomic.Bool }

var streamIDs atomic.Uint64

// Stream is one end of an in-memory stream: one memconn pair per
// direction, so that each direction can be closed on its own. Once either
// end is reset, errors of both ends wrap [network.ErrReset].
type Stream struct {
	r, w  net.Conn // read from r, write to w
	state *pairState
	conn  *Conn
	dir   network.Direction
	scope *Scope
	id    string

	writeDelay time.Duration
	// read and written count the bytes that passed once the protocol was
	// set: those the handler saw.
	read, written atomic.Uint64

	mu    sync.Mutex // guards the following
	proto protocol.ID
}

var _ network.Stream = (*Stream)(nil)

// newStreamPair returns the outbound end, on from, and the inbound end, on
// to.
func newStreamPair(from, to *Conn) (out, in *Stream) {
	aw, br := memconn.Pair(0)
	bw, ar := memconn.Pair(0)
	st := &pairState{}
	out = &Stream{r: ar, w: aw, state: st, dir: network.DirOutbound, conn: from,
		scope: from.host.newScope(), id: strconv.FormatUint(streamIDs.Add(1), 10)}
	in = &Stream{r: br, w: bw, state: st, dir: network.DirInbound, conn: to,
		scope: to.host.newScope(), id: strconv.FormatUint(streamIDs.Add(1), 10)}
	return out, in
}

func (s *Stream) mapErr(err error) error {
	if err != nil && s.state.reset.Load() {
		return fmt.Errorf("fake stream: %w", network.ErrReset)
	}
	return err
}

// Read reads what the other end wrote.
func (s *Stream) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if s.Protocol() != "" {
		s.read.Add(uint64(n))
	}
	return n, s.mapErr(err)
}

// Write writes to the other end, after the host's write delay if the
// stream is inbound and negotiated.
func (s *Stream) Write(b []byte) (int, error) {
	if s.writeDelay > 0 && s.Protocol() != "" {
		time.Sleep(s.writeDelay)
	}
	n, err := s.w.Write(b)
	if s.Protocol() != "" {
		s.written.Add(uint64(n))
	}
	return n, s.mapErr(err)
}

// BytesRead returns how many bytes were read once the protocol was set.
func (s *Stream) BytesRead() uint64 { return s.read.Load() }

// BytesWritten returns how many bytes were written once the protocol was
// set.
func (s *Stream) BytesWritten() uint64 { return s.written.Load() }

// IsReset reports whether either end was reset.
func (s *Stream) IsReset() bool { return s.state.reset.Load() }

// CloseWrite closes the stream for writing: the other end reads EOF.
func (s *Stream) CloseWrite() error { return s.w.Close() }

// CloseRead closes the stream for reading.
func (s *Stream) CloseRead() error { return s.r.Close() }

// Close closes both directions.
func (s *Stream) Close() error {
	s.w.Close()
	s.r.Close()
	return nil
}

// Reset closes both directions and marks the stream reset.
func (s *Stream) Reset() error {
	s.state.reset.Store(true)
	return s.Close()
}

// SetDeadline sets the read and write deadlines.
func (s *Stream) SetDeadline(t time.Time) error {
	s.r.SetReadDeadline(t)
	s.w.SetWriteDeadline(t)
	return nil
}

// SetReadDeadline sets the read deadline.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.r.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.w.SetWriteDeadline(t) }

// ID returns the stream's ID, unique in the process.
func (s *Stream) ID() string { return s.id }

// Protocol returns the stream's protocol, empty until it is set.
func (s *Stream) Protocol() protocol.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proto
}

// SetProtocol sets the stream's protocol.
func (s *Stream) SetProtocol(id protocol.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proto = id
	return nil
}

// Stat returns the stream's direction.
func (s *Stream) Stat() network.Stats { return network.Stats{Direction: s.dir} }

// Conn returns the connection the stream runs on.
func (s *Stream) Conn() network.Conn { return s.conn }

// Scope returns the stream's scope.
func (s *Stream) Scope() network.StreamScope { return s.scope }

// MemScope returns the stream's scope as what it is.
func (s *Stream) MemScope() *Scope { return s.scope }
