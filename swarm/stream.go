package swarm

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
)

// Stream is a stream of a swarm connection: a multiplexer's stream with
// its resource scope and protocol. It implements network.Stream. Reads,
// writes and deadlines go straight to the multiplexer's stream.
type Stream struct {
	ms    network.MuxedStream
	conn  *Conn
	scope network.StreamManagementScope
	id    uint64
	stat  network.Stats

	pmu      sync.Mutex  // guards protocol (a mutex: an atomic pointer costs an allocation per SetProtocol)
	protocol protocol.ID // set by SetProtocol
	done     sync.Once   // removes the stream and ends its scope

	// traced is set when the swarm has a Tracer; only then are the
	// bytes read and written counted, for StreamClosed.
	traced  bool
	in, out atomic.Int64
}

var _ network.Stream = (*Stream)(nil)

// ID returns the stream's identifier, unique in this swarm: the
// connection's ID, a dash and a number.
func (st *Stream) ID() string {
	return st.conn.ID() + "-" + strconv.FormatUint(st.id, 10)
}

// Protocol returns the protocol recorded by SetProtocol, or "".
func (st *Stream) Protocol() protocol.ID {
	st.pmu.Lock()
	defer st.pmu.Unlock()
	return st.protocol
}

// SetProtocol moves the stream's resource scope under the protocol's and
// records the protocol. When the protocol's limits refuse the stream it
// fails and the stream stays as it was.
func (st *Stream) SetProtocol(id protocol.ID) error {
	if err := st.scope.SetProtocol(id); err != nil {
		return err
	}
	st.pmu.Lock()
	was := st.protocol
	st.protocol = id
	st.pmu.Unlock()
	if st.traced {
		st.conn.swarm.cfg.tracer.StreamProtocol(st.stat.Direction, was, id)
	}
	return nil
}

// Stat returns the stream's direction, opening time and whether its
// connection is limited.
func (st *Stream) Stat() network.Stats { return st.stat }

// Conn returns the connection that carries the stream.
func (st *Stream) Conn() network.Conn { return st.conn }

// Scope returns the stream's resource scope.
func (st *Stream) Scope() network.StreamScope { return st.scope }

// Read reads from the stream.
func (st *Stream) Read(b []byte) (int, error) {
	n, err := st.ms.Read(b)
	if st.traced {
		st.in.Add(int64(n))
	}
	return n, err
}

// Write writes to the stream.
func (st *Stream) Write(b []byte) (int, error) {
	n, err := st.ms.Write(b)
	if st.traced {
		st.out.Add(int64(n))
	}
	return n, err
}

// WriteLazy writes b, letting the multiplexer hold it back to go out with
// the stream's next write when it can (yamux's streams can: see
// yamux.Stream.WriteLazy); otherwise it is Write.
func (st *Stream) WriteLazy(b []byte) (int, error) {
	lw, ok := st.ms.(lazyWriter)
	if !ok {
		return st.Write(b)
	}
	n, err := lw.WriteLazy(b)
	if st.traced {
		st.out.Add(int64(n))
	}
	return n, err
}

// lazyWriter is a multiplexer's stream with WriteLazy.
type lazyWriter interface {
	WriteLazy(b []byte) (int, error)
}

// CloseWrite half-closes the stream: the remote reads EOF.
func (st *Stream) CloseWrite() error { return st.ms.CloseWrite() }

// CloseRead stops reading from the stream.
func (st *Stream) CloseRead() error { return st.ms.CloseRead() }

// Close closes both directions, removes the stream from its connection
// and releases its resources.
func (st *Stream) Close() error {
	err := st.ms.Close()
	st.release()
	return err
}

// Reset abandons the stream in both directions, removes it from its
// connection and releases its resources.
func (st *Stream) Reset() error {
	err := st.ms.Reset()
	st.release()
	return err
}

// ResetWithError is Reset telling the remote side why, with code, when
// the multiplexer can carry it (yamux's RST can); otherwise it is Reset.
func (st *Stream) ResetWithError(code network.StreamErrorCode) error {
	err := resetWithError(st.ms, code)
	st.release()
	return err
}

// codeResetter is a multiplexer's stream whose reset can carry an error
// code, as yamux's does.
type codeResetter interface {
	ResetWithError(network.StreamErrorCode) error
}

// resetWithError resets ms with code if its multiplexer can carry one.
func resetWithError(ms network.MuxedStream, code network.StreamErrorCode) error {
	if r, ok := ms.(codeResetter); ok {
		return r.ResetWithError(code)
	}
	return ms.Reset()
}

// refuseStream resets ms, which the resource manager refused with err,
// with StreamResourceLimitExceeded when that is why: the remote then
// learns it was refused for resources (go-libp2p's swarm does the same).
func refuseStream(ms network.MuxedStream, err error) {
	if errors.Is(err, network.ErrResourceLimitExceeded) {
		resetWithError(ms, network.StreamResourceLimitExceeded)
		return
	}
	ms.Reset()
}

// release ends the stream's scope and removes it from its connection,
// once: in that order, so that whoever sees the stream gone (a
// connection closing, then its Disconnected notification) finds its
// resources released.
func (st *Stream) release() {
	st.done.Do(func() {
		st.scope.Done()
		st.conn.removeStream(st)
		if st.traced {
			st.conn.swarm.cfg.tracer.StreamClosed(st.stat.Direction, st.Protocol(), st.in.Load(), st.out.Load())
		}
	})
}

// SetDeadline sets the read and write deadlines.
func (st *Stream) SetDeadline(t time.Time) error { return st.ms.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (st *Stream) SetReadDeadline(t time.Time) error { return st.ms.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (st *Stream) SetWriteDeadline(t time.Time) error { return st.ms.SetWriteDeadline(t) }
