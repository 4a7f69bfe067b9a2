package yamux

import (
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
)

// Stream is a yamux stream. It implements network.MuxedStream; see the
// package documentation for the details of its semantics.
type Stream struct {
	id      uint32
	conn    *Conn
	inbound bool

	recvNotify  chan struct{} // cap 1: data, EOF or a state change for Read
	writeNotify chan struct{} // cap 1: window, a write, or a state change for Write

	writeMu sync.Mutex // serializes Writes, so their frames do not interleave

	readDeadline  deadline
	writeDeadline deadline

	mu          sync.Mutex // guards the following
	openFlags   uint16     // SYN or ACK, for the stream's next frame
	acked       bool       // an outbound stream was acknowledged
	finReceived bool       // the remote half-closed
	readClosed  bool       // CloseRead was called
	writeClosed bool       // the FIN is queued
	resetErr    error      // non-nil once either side reset the stream
	connErr     error      // non-nil once the connection is closing
	removed     bool       // the connection forgot the stream
	recvBuf     recvBuffer
	recvWindow  uint32    // receive window size
	recvAvail   uint32    // bytes the remote may send before the next update
	reserved    int       // bytes reserved in the connection's span
	lastUpdate  time.Time // when the last WindowUpdate was queued
	sendWindow  uint32    // bytes this side may send
	lazyEnd     uint64    // the connection's queue end after this stream's last lazily queued frame
}

var _ network.MuxedStream = (*Stream)(nil)

func newStream(c *Conn, id uint32, inbound bool) *Stream {
	s := &Stream{
		id:          id,
		conn:        c,
		inbound:     inbound,
		recvNotify:  make(chan struct{}, 1),
		writeNotify: make(chan struct{}, 1),
		openFlags:   flagSYN,
		recvWindow:  c.cfg.initialWindow,
		recvAvail:   initialWindow,
		reserved:    int(c.cfg.initialWindow),
		lastUpdate:  time.Now(),
		sendWindow:  initialWindow,
	}
	if inbound {
		s.openFlags = flagACK
	}
	return s
}

// ID returns the stream's yamux stream ID.
func (s *Stream) ID() uint32 { return s.id }

// Read reads data the remote sent. It returns io.EOF once the remote closed
// its side and the data is read, ErrStreamClosedRead after CloseRead, an
// error matching network.ErrReset after a reset, and
// os.ErrDeadlineExceeded when the read deadline passes.
func (s *Stream) Read(p []byte) (int, error) {
	s.mu.Lock()
	for {
		var err error
		switch {
		case s.readClosed:
			err = ErrStreamClosedRead
		case s.resetErr != nil:
			err = s.resetErr
		case s.connErr != nil && !s.finReceived:
			err = s.connErr
		case s.readDeadline.expired():
			err = os.ErrDeadlineExceeded
		case s.recvBuf.size > 0:
		case s.finReceived:
			err = io.EOF
		case len(p) == 0:
		case s.lazyEnd != 0:
			s.flushLazyLocked()
			continue
		default:
			s.mu.Unlock()
			select {
			case <-s.recvNotify:
			case <-s.readDeadline.wait():
			}
			s.mu.Lock()
			continue
		}
		if err != nil {
			s.mu.Unlock()
			return 0, err
		}
		break
	}
	n := s.recvBuf.read(p)
	if s.recvBuf.size > 0 {
		asyncNotify(s.recvNotify) // for another Read waiting
	}
	_ = s.sendWindowUpdateLocked(false) // fails only when closing
	s.mu.Unlock()
	return n, nil
}

// Write writes p. It returns once p is handed to the connection, waiting
// while the remote's window is exhausted. It fails with
// ErrStreamClosedWrite after CloseWrite, an error matching network.ErrReset
// after a reset, and os.ErrDeadlineExceeded when the write deadline passes;
// the bytes counted in n are sent even then.
//
// A Write larger than 256 KiB is pipelined: while one batch of frames is
// written to the connection by a flusher goroutine, the next is queued.
func (s *Stream) Write(p []byte) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	c := s.conn
	total := 0
	var prev uint64 // the end of the batch queued before the last one
	for {
		end, n, err := s.queueWrite(p[total:])
		if err != nil {
			return total, err
		}
		total += n
		wait := end // the last batch: wait for all of it
		deadline := s.writeDeadline.wait()
		if total < len(p) {
			// More to queue: have this batch written meanwhile, and wait
			// only for the one before it.
			c.startWriter()
			wait, prev = prev, end
		} else if deadline != nil {
			// A goroutine blocked in the connection's Write cannot watch
			// the deadline: leave the writing to a flusher.
			c.startWriter()
		}
		if err := c.waitFlushed(wait, s.writeNotify, deadline); err != nil {
			if err != os.ErrDeadlineExceeded {
				err = c.failedStreamErr(err)
			}
			return total, err
		}
		if total == len(p) {
			return total, nil
		}
	}
}

// WriteLazy is Write for a small p that need not go out at once: p is
// queued to go out with the next write on the connection, before this
// stream waits for the remote, or within a millisecond, whichever comes
// first. A protocol's answer then shares a write with the reply that
// follows it. It returns at once unless p is larger than 4 KiB or the send
// window is short, when it is Write.
func (s *Stream) WriteLazy(p []byte) (int, error) {
	if len(p) > maxLazyWrite {
		return s.Write(p)
	}
	s.writeMu.Lock()
	s.mu.Lock()
	err := s.writeErrLocked()
	switch {
	case err != nil, len(p) == 0:
	case int(s.sendWindow) < len(p):
		s.mu.Unlock()
		s.writeMu.Unlock()
		return s.Write(p)
	default:
		flags := s.openFlags
		s.openFlags = 0
		var end uint64
		end, err = s.conn.queueLazy(typeData, flags, s.id, uint32(len(p)), p)
		if err != nil {
			err = s.conn.failedStreamErr(err)
			break
		}
		s.lazyEnd = end
		s.sendWindow -= uint32(len(p))
	}
	s.mu.Unlock()
	s.writeMu.Unlock()
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeErrLocked is why the stream cannot take data now, or nil. The
// caller holds mu.
func (s *Stream) writeErrLocked() error {
	switch {
	case s.writeClosed:
		return ErrStreamClosedWrite
	case s.resetErr != nil:
		return s.resetErr
	case s.connErr != nil:
		return s.connErr
	case s.writeDeadline.expired():
		return os.ErrDeadlineExceeded
	}
	return nil
}

// flushLazyLocked writes the frames this stream queued lazily, before it
// waits for the remote, which may be waiting for them. The caller holds
// mu; it is released while writing, so the caller checks the stream's
// state again.
func (s *Stream) flushLazyLocked() {
	end := s.lazyEnd
	s.lazyEnd = 0
	s.mu.Unlock()
	s.conn.flushQueued(end)
	s.mu.Lock()
}

// queueWrite waits for send window and queues as much of p as it and
// maxWriteBatch allow.
func (s *Stream) queueWrite(p []byte) (end uint64, n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if err := s.writeErrLocked(); err != nil {
			return 0, 0, err
		}
		switch {
		case len(p) == 0:
			return 0, 0, nil
		case s.sendWindow > 0:
			n = min(len(p), int(s.sendWindow), maxWriteBatch)
			flags := s.openFlags
			s.openFlags = 0
			end, err = s.conn.queueData(s.id, flags, p[:n])
			if err != nil {
				return 0, 0, s.conn.failedStreamErr(err)
			}
			s.sendWindow -= uint32(n)
			s.lazyEnd = 0 // written with this batch
			return end, n, nil
		case s.lazyEnd != 0:
			s.flushLazyLocked()
			continue
		}
		s.mu.Unlock()
		select {
		case <-s.writeNotify:
		case <-s.writeDeadline.wait():
		}
		s.mu.Lock()
	}
}

// CloseWrite half-closes the stream: the FIN follows the data already
// written, and the remote reads EOF. Writes waiting for window fail.
func (s *Stream) CloseWrite() error {
	s.mu.Lock()
	if s.writeClosed || s.resetErr != nil {
		s.mu.Unlock()
		return nil
	}
	s.writeClosed = true
	asyncNotify(s.writeNotify)
	if err := s.connErr; err != nil {
		s.mu.Unlock()
		return err
	}
	flags := s.openFlags | flagFIN
	s.openFlags = 0
	end, err := s.conn.queueFinalFrame(typeWindowUpdate, flags, s.id, 0)
	s.maybeForgetLocked()
	s.mu.Unlock()
	if err != nil {
		return s.conn.failedStreamErr(err)
	}
	s.conn.flushQueued(end)
	return nil
}

// CloseRead stops reading: reads in progress and later reads fail with
// ErrStreamClosedRead. Buffered and later data is discarded, and its
// window credit is returned to the remote.
func (s *Stream) CloseRead() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readClosed || s.resetErr != nil {
		return nil
	}
	s.readClosed = true
	s.recvBuf.release()
	asyncNotify(s.recvNotify)
	_ = s.sendWindowUpdateLocked(false) // fails only when closing
	s.maybeForgetLocked()
	return nil
}

// Close is CloseRead and CloseWrite: it does not wait for the remote, and
// the stream is forgotten by the connection.
func (s *Stream) Close() error {
	_ = s.CloseRead() // cannot fail
	return s.CloseWrite()
}

// Reset abandons the stream in both directions and sends a RST: reads and
// writes on both sides fail with errors matching network.ErrReset.
func (s *Stream) Reset() error { return s.ResetWithError(network.StreamNoError) }

// ResetWithError is Reset with a RST that carries code, as go-yamux's
// ResetWithError does: in the Length field of a WindowUpdate frame. The
// remote's reads and writes fail with a *StreamError holding code (go-yamux
// reports it as a *yamux.StreamError, go-libp2p as a
// *network.StreamError); so do this side's, unless code is
// network.StreamNoError.
func (s *Stream) ResetWithError(code network.StreamErrorCode) error {
	s.mu.Lock()
	if s.resetErr != nil || s.removed {
		s.mu.Unlock()
		return nil
	}
	s.resetErr = ErrStreamReset
	if code != network.StreamNoError {
		s.resetErr = &StreamError{Code: uint32(code)}
	}
	s.recvBuf.release()
	asyncNotify(s.recvNotify)
	asyncNotify(s.writeNotify)
	var end uint64
	if s.connErr == nil {
		flags := s.openFlags | flagRST
		s.openFlags = 0
		end, _ = s.conn.queueFinalFrame(typeWindowUpdate, flags, s.id, uint32(code)) // fails only when closing
	}
	s.forgetLocked()
	s.mu.Unlock()
	if end != 0 {
		s.conn.flushQueued(end)
	}
	return nil
}

// SetDeadline sets both deadlines.
func (s *Stream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline of reads in progress and future reads;
// the zero time means none.
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.readDeadline.set(t)
	asyncNotify(s.recvNotify)
	return nil
}

// SetWriteDeadline sets the deadline of writes in progress and future
// writes; the zero time means none.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.writeDeadline.set(t)
	asyncNotify(s.writeNotify)
	return nil
}

// maybeForgetLocked removes the stream from the connection once it is done
// in both directions. The caller holds mu.
func (s *Stream) maybeForgetLocked() {
	if s.resetErr != nil || s.writeClosed && (s.finReceived || s.readClosed) {
		s.forgetLocked()
	}
}

// sendWindowUpdateLocked returns consumed window credit to the remote once
// half the window is consumed, growing the window when it limits the rate
// (see growsLocked). force sends the update, with the stream's SYN or ACK,
// whatever the credit: it opens or accepts the stream. The caller holds
// mu.
func (s *Stream) sendWindowUpdateLocked(force bool) error {
	if s.resetErr != nil || s.connErr != nil || !force && (s.finReceived || s.removed) {
		return nil
	}
	delta := s.recvWindow - s.recvAvail - uint32(s.recvBuf.size)
	if !force && delta < s.recvWindow/2 {
		return nil
	}
	c := s.conn
	now := time.Now()
	if !force && s.growsLocked(now, delta) {
		grow := min(s.recvWindow, c.cfg.maxWindow-s.recvWindow)
		if c.growWindow(grow) {
			s.recvWindow += grow
			s.reserved += int(grow)
			delta += grow
		}
	}
	s.lastUpdate = now
	s.recvAvail += delta
	flags := s.openFlags
	s.openFlags = 0
	if force {
		end, err := c.queueLazy(typeWindowUpdate, flags, s.id, delta, nil)
		s.lazyEnd = end
		return err
	}
	return c.queueFrame(typeWindowUpdate, flags, s.id, delta)
}

// growsLocked reports whether the window should double with the update
// returning delta bytes of credit now. It does when the window, not the
// reader, limits the rate, which takes two things:
//   - the buffer drained: the reader has read all that arrived and waits
//     for more (a reader behind the sender never grows the window);
//   - it happened fast: the credit was consumed since the previous update
//     at least half as fast as the window allows per round trip
//     (delta/elapsed ≥ window/(2×min RTT)), as when the sender empties
//     its window every round trip and then waits for credit.
//
// A reader that keeps up on a link with a long round trip thus doubles
// the window about once a round trip until it covers the link (up to
// MaxStreamWindow); a slow reader never grows it; and on loopback, where
// the round trip is tens of microseconds, the window stays small, and so
// does the data queued ahead of other streams' frames. The minimum RTT
// is used, not the smoothed one: a ping queued behind bulk data measures
// the queue, and would make every update look fast (see rttSamples). The
// caller holds mu.
func (s *Stream) growsLocked(now time.Time, delta uint32) bool {
	c := s.conn
	rtt := c.minRTT.Load()
	if rtt == 0 || s.recvBuf.size != 0 || s.recvWindow >= c.cfg.maxWindow {
		return false
	}
	elapsed := float64(now.Sub(s.lastUpdate))
	return elapsed*float64(s.recvWindow) < 2*float64(rtt)*float64(delta)
}

// handleWindowUpdate applies a WindowUpdate frame. The read loop calls it.
func (s *Stream) handleWindowUpdate(h header) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.flags&flagACK != 0 {
		s.ackedLocked()
	}
	if h.flags&flagRST != 0 {
		// The length is an error code, not credit.
		s.remoteResetLocked(&StreamError{Code: h.length, Remote: true})
		return nil
	}
	if h.length > 0 {
		w := uint64(s.sendWindow) + uint64(h.length)
		if w > math.MaxUint32 {
			return fmt.Errorf("%w (stream %d)", ErrSendWindowOverflow, s.id)
		}
		s.sendWindow = uint32(w)
		asyncNotify(s.writeNotify)
	}
	if h.flags&flagFIN != 0 {
		s.remoteFinLocked()
	}
	return nil
}

// handleData applies a Data frame, reading its payload from the
// connection into the receive buffer. The read loop calls it.
func (s *Stream) handleData(h header) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.flags&flagACK != 0 {
		s.ackedLocked()
	}
	if h.flags&flagRST != 0 {
		s.remoteResetLocked(errRemoteReset) // the length is the payload's
		s.mu.Unlock()
		err := s.conn.discard(h.length)
		s.mu.Lock()
		return err
	}
	if n := h.length; n > 0 {
		if n > s.recvAvail && !s.removed {
			return fmt.Errorf("%w (stream %d: %d bytes, %d allowed)", ErrRecvWindowExceeded, s.id, n, s.recvAvail)
		}
		if err := s.receiveLocked(n); err != nil {
			return err
		}
	}
	if h.flags&flagFIN != 0 {
		s.remoteFinLocked()
	}
	return nil
}

// acceptingDataLocked reports whether received data is buffered rather
// than discarded.
func (s *Stream) acceptingDataLocked() bool {
	return !s.readClosed && !s.finReceived && s.resetErr == nil && s.connErr == nil && !s.removed
}

// receiveLocked reads n bytes of payload, which the window allows, into the
// receive buffer, or discards them if the stream does not read any more.
// The stream's lock is released while reading from the connection, never
// while the buffer is in an inconsistent state; the window is charged as
// data lands, so credit is never returned for data still to come. The
// caller holds mu.
func (s *Stream) receiveLocked(n uint32) error {
	c := s.conn
	for n > 0 {
		if !s.acceptingDataLocked() {
			s.mu.Unlock()
			err := c.discard(n)
			s.mu.Lock()
			if err != nil {
				return err
			}
			s.recvAvail -= min(n, s.recvAvail)
			_ = s.sendWindowUpdateLocked(false) // credit after CloseRead
			return nil
		}
		room := s.recvBuf.reserve(int(n))
		s.recvBuf.filling = true
		s.mu.Unlock()
		k, err := io.ReadFull(c.r, room)
		s.mu.Lock()
		s.recvBuf.filling = false
		s.recvBuf.commit(k)
		s.recvAvail -= uint32(k)
		n -= uint32(k)
		if !s.acceptingDataLocked() {
			s.recvBuf.release()
		}
		if err != nil {
			return readError(err)
		}
		asyncNotify(s.recvNotify)
	}
	return nil
}

func (s *Stream) remoteFinLocked() {
	if s.finReceived {
		return
	}
	s.finReceived = true
	asyncNotify(s.recvNotify)
	s.maybeForgetLocked()
}

// remoteResetLocked ends the stream, which the remote reset: its reads and
// writes fail with err. The caller holds mu.
func (s *Stream) remoteResetLocked(err error) {
	if s.resetErr != nil {
		return
	}
	s.resetErr = err
	s.recvBuf.release()
	asyncNotify(s.recvNotify)
	asyncNotify(s.writeNotify)
	s.forgetLocked()
}

// forgetLocked removes the stream, which is done, from its connection and
// releases its reservations. The caller holds mu.
func (s *Stream) forgetLocked() {
	if s.removed {
		return
	}
	s.removed = true
	// Its deadlines cannot matter any more: Read and Write fail or
	// return EOF without waiting. Their timers would hold memory until
	// they fired.
	s.readDeadline.stop()
	s.writeDeadline.stop()
	c := s.conn
	c.mu.Lock()
	if c.closing {
		// cleanup releases everything at once.
		c.mu.Unlock()
		return
	}
	delete(c.streams, s.id)
	if s.inbound {
		c.numInbound--
	} else if !s.acked {
		c.synInflight--
		asyncNotify(c.synNotify)
	}
	c.windowTotal -= int64(s.recvWindow)
	reserved := s.reserved
	s.reserved = 0
	c.mu.Unlock()
	// Outside c.mu: the resource manager has one lock for all its
	// scopes, and streams closing on other connections wait for it; held
	// under c.mu, that wait would also stall this connection's Opens and
	// read loop. Releasing after cleanup's span.Done does nothing.
	c.span.ReleaseMemory(reserved)
}

// ackedLocked records that the remote acknowledged the stream, if this side
// opened it. The caller holds mu.
func (s *Stream) ackedLocked() {
	if s.inbound || s.acked {
		return
	}
	s.acked = true
	c := s.conn
	c.mu.Lock()
	if !s.removed && !c.closing {
		c.synInflight--
		asyncNotify(c.synNotify)
	}
	c.mu.Unlock()
}

// connClosed fails the stream's operations with err: the connection is
// closing.
func (s *Stream) connClosed(err error) {
	s.mu.Lock()
	if s.connErr == nil {
		s.connErr = err
	}
	asyncNotify(s.recvNotify)
	asyncNotify(s.writeNotify)
	s.mu.Unlock()
}
