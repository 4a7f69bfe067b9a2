package yamux

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pnet/p2pnet/network"
)

// goAwayTimeout bounds how long closing waits for its GoAway frame (and
// the frames queued before it) to be written.
const goAwayTimeout = 100 * time.Millisecond

// Conn is a yamux connection: many Streams over one net.Conn. It
// implements network.MuxedConn.
//
// Lock order: a Stream's mu before the Conn's mu or sendMu; the Conn's mu
// and sendMu are never held together, and no lock is held while writing to
// or reading from the net.Conn.
type Conn struct {
	nc       net.Conn
	r        io.Reader // nc, possibly buffered; read only by the read loop
	cfg      config
	isServer bool
	span     network.ResourceScopeSpan

	flusherFn   func() // c.flusher, made once
	lazyFlushFn func() // c.lazyFlush, made once

	closedCh  chan struct{}  // closed when the connection starts closing
	closeDone chan struct{}  // closed when closeWithError has finished
	wg        sync.WaitGroup // the read loop and flusher goroutines
	rtt       atomic.Int64   // smoothed round-trip time in nanoseconds; 0 until measured
	minRTT    atomic.Int64   // smallest round-trip time measured, in nanoseconds; 0 until measured

	acceptNotify chan struct{} // cap 1: a stream was queued for AcceptStream
	synNotify    chan struct{} // cap 1: an outbound stream was acknowledged
	replyNotify  chan struct{} // cap 1: the read loop's replies were written

	mu        sync.Mutex // guards the following
	closing   bool
	closeErr  error // why the connection closed; wraps ErrConnClosed
	streamErr error // what the streams' operations fail with after closeErr
	// writeFailure is why a write failed, while the read loop reads what
	// arrived before (see writeFailed).
	writeFailure error
	streams      map[uint32]*Stream
	nextID       uint64 // next ID this side opens
	maxRemoteID  uint32 // highest stream ID the remote has opened
	numInbound   int    // streams opened by the remote still in streams
	synInflight  int    // streams opened here not yet acknowledged
	windowTotal  int64  // sum of the receive windows of streams
	acceptQueue  []*Stream
	acceptHead   int

	sendMu        sync.Mutex // guards the following
	sendBuf       *[]byte    // encoded frames waiting for the writer
	spareBuf      *[]byte    // an empty buffer to swap with sendBuf
	queued        uint64     // bytes ever appended to sendBuf
	flushed       uint64     // bytes ever handed to nc.Write
	writing       bool       // a goroutine holds the writer role
	sendClosed    bool       // no more frames may be queued
	sendErr       error      // why writing stopped; sticky
	waiters       []flushWaiter
	repliesQueued int         // queueReply frames since the last write
	fixDeadline   bool        // closing set the write deadline; leave it
	lastDeadline  time.Time   // the write deadline set on nc
	lazyTimer     *time.Timer // writes lazily queued frames; set while armed

	pingMu          sync.Mutex // guards the following
	pingTimer       *time.Timer
	pingID          uint32
	pingSent        time.Time
	pingOutstanding bool
	rttSamples      int // pongs received
	pingStopped     bool

	hdr [headerSize]byte // the read loop's header buffer
}

var _ network.MuxedConn = (*Conn)(nil)

func newConn(nc net.Conn, isServer bool, cfg config, span network.ResourceScopeSpan) *Conn {
	c := &Conn{
		nc:           nc,
		r:            nc,
		cfg:          cfg,
		isServer:     isServer,
		span:         span,
		closedCh:     make(chan struct{}),
		closeDone:    make(chan struct{}),
		acceptNotify: make(chan struct{}, 1),
		synNotify:    make(chan struct{}, 1),
		replyNotify:  make(chan struct{}, 1),
		streams:      make(map[uint32]*Stream),
		nextID:       1,
	}
	c.flusherFn = c.flusher
	c.lazyFlushFn = c.lazyFlush
	if isServer {
		c.nextID = 2
	}
	if cfg.readBufferSize > 0 {
		c.r = bufio.NewReaderSize(nc, cfg.readBufferSize)
	}
	c.wg.Add(1) // before anything can start a flusher
	c.startKeepAlive()
	go c.readLoop()
	return c
}

// RTT returns the connection's smoothed round-trip time as measured by
// pings, or 0 before the first measurement.
func (c *Conn) RTT() time.Duration { return time.Duration(c.rtt.Load()) }

// NumStreams returns how many streams the connection tracks: streams that
// are open in at least one direction, and streams opened by the remote
// that AcceptStream has not returned yet.
func (c *Conn) NumStreams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams)
}

// IsClosed reports whether the connection is closed or closing.
func (c *Conn) IsClosed() bool {
	select {
	case <-c.closedCh:
		return true
	default:
		return false
	}
}

// OpenStream opens a stream. See Open.
func (c *Conn) OpenStream(ctx context.Context) (network.MuxedStream, error) {
	s, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Open opens a stream and announces it to the remote side without waiting
// for its acknowledgement. It waits, until ctx is done, while
// Transport.AcceptBacklog streams opened here are not acknowledged yet. It
// fails if the resource scope refuses the stream's receive window.
func (c *Conn) Open(ctx context.Context) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	for !c.closing && c.synInflight >= c.cfg.acceptBacklog {
		c.mu.Unlock()
		select {
		case <-c.synNotify:
		case <-c.closedCh:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.mu.Lock()
	}
	if c.closing {
		err := c.closeErr
		c.mu.Unlock()
		return nil, err
	}
	if c.nextID > math.MaxUint32 {
		c.mu.Unlock()
		return nil, ErrStreamsExhausted
	}
	if err := c.span.ReserveMemory(int(c.cfg.initialWindow), network.ReservationPriorityAlways); err != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("yamux: reserve the receive window of a new stream: %w", err)
	}
	s := newStream(c, uint32(c.nextID), false)
	c.nextID += 2
	c.streams[s.id] = s
	c.synInflight++
	c.windowTotal += int64(s.recvWindow)
	if c.synInflight < c.cfg.acceptBacklog {
		asyncNotify(c.synNotify) // pass the turn on to another waiting Open
	}
	c.mu.Unlock()

	s.mu.Lock()
	err := s.sendWindowUpdateLocked(true)
	if err == nil {
		err = s.connErr
	}
	s.mu.Unlock()
	if err != nil {
		return nil, c.closedErr()
	}
	return s, nil
}

// AcceptStream accepts a stream. See Accept.
func (c *Conn) AcceptStream() (network.MuxedStream, error) {
	s, err := c.Accept()
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Accept waits for the next stream the remote side opens and acknowledges
// it. Streams the remote reset before they were accepted are skipped. It
// fails once the connection is closing.
func (c *Conn) Accept() (*Stream, error) {
	for {
		c.mu.Lock()
		if c.closing {
			err := c.closeErr
			c.mu.Unlock()
			return nil, err
		}
		if c.acceptHead < len(c.acceptQueue) {
			s := c.acceptQueue[c.acceptHead]
			c.acceptQueue[c.acceptHead] = nil
			c.acceptHead++
			if c.acceptHead == len(c.acceptQueue) {
				c.acceptQueue, c.acceptHead = c.acceptQueue[:0], 0
			} else {
				asyncNotify(c.acceptNotify) // more for another waiting Accept
			}
			c.mu.Unlock()

			s.mu.Lock()
			if s.resetErr != nil {
				s.mu.Unlock()
				continue
			}
			err := s.sendWindowUpdateLocked(true)
			if err == nil {
				err = s.connErr
			}
			s.mu.Unlock()
			if err != nil {
				return nil, c.closedErr()
			}
			return s, nil
		}
		c.mu.Unlock()
		select {
		case <-c.acceptNotify:
		case <-c.closedCh:
		}
	}
}

// Close sends a GoAway, closes the underlying connection, fails the
// operations of every stream, waits for the connection's goroutines and
// releases its resources. Later calls only wait for the goroutines.
func (c *Conn) Close() error {
	c.closeWithError(ErrConnClosed)
	c.wg.Wait()
	return nil
}

// closeWithError closes the connection because of cause, unless it is
// closing already. It never waits for the connection's goroutines, so they
// may call it; the read loop releases the resources once it exits.
func (c *Conn) closeWithError(cause error) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.closeErr = cause
	if !errors.Is(cause, ErrConnClosed) {
		c.closeErr = fmt.Errorf("%w: %w", ErrConnClosed, cause)
	}
	c.streamErr = fmt.Errorf("%w: %w", ErrStreamReset, c.closeErr)
	close(c.closedCh)
	streams := make([]*Stream, 0, len(c.streams))
	for _, s := range c.streams {
		streams = append(streams, s)
	}
	streamErr := c.streamErr
	c.mu.Unlock()

	c.stopKeepAlive()

	// Tell the remote why, unless the connection itself failed.
	switch {
	case cause == ErrConnClosed:
		c.sendGoAway(goAwayNormal)
	case errors.Is(cause, ErrProtocol):
		c.sendGoAway(goAwayProtocolError)
	default:
		c.stopSending()
	}
	c.nc.Close()

	c.sendMu.Lock()
	if c.sendErr == nil {
		c.sendErr = c.closeErr
	}
	c.notifyWaitersLocked()
	c.sendMu.Unlock()

	for _, s := range streams {
		s.connClosed(streamErr)
	}
	close(c.closeDone)
}

// cleanup releases what the connection holds. The read loop calls it once
// the connection is closing and it has stopped reading.
func (c *Conn) cleanup() {
	c.mu.Lock()
	streams := make([]*Stream, 0, len(c.streams))
	for id, s := range c.streams {
		streams = append(streams, s)
		delete(c.streams, id)
	}
	clear(c.acceptQueue)
	c.acceptQueue, c.acceptHead = nil, 0
	c.windowTotal = 0
	c.span.Done()
	c.mu.Unlock()

	for _, s := range streams {
		s.mu.Lock()
		s.removed = true
		s.reserved = 0
		if !s.finReceived || s.readClosed || s.resetErr != nil {
			s.recvBuf.release()
		}
		s.mu.Unlock()
	}

	c.sendMu.Lock()
	if c.lazyTimer != nil {
		c.lazyTimer.Stop() // if its function runs, it finds sendClosed set
	}
	if !c.writing {
		putSendBuf(c.sendBuf)
		putSendBuf(c.spareBuf)
		c.sendBuf, c.spareBuf = nil, nil
	}
	c.sendMu.Unlock()
}

// growWindow reserves grow more bytes of receive window for a stream: in the
// connection's budget and, at low priority, in the resource scope.
func (c *Conn) growWindow(grow uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.windowTotal+int64(grow) > c.cfg.maxConnWindow {
		return false
	}
	if c.span.ReserveMemory(int(grow), network.ReservationPriorityLow) != nil {
		return false
	}
	c.windowTotal += int64(grow)
	return true
}

// isLocalID reports whether id is of the parity of the streams this side
// opens.
func (c *Conn) isLocalID(id uint32) bool {
	return (id%2 == 0) == c.isServer
}

// asyncNotify wakes whoever waits on the cap-1 channel ch, or leaves a
// token for the next waiter.
func asyncNotify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// failedStreamErr is what a stream operation fails with when queueing or
// writing failed with err: the connection is closing.
func (c *Conn) failedStreamErr(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streamErr != nil {
		return c.streamErr
	}
	return fmt.Errorf("%w: %w: %w", ErrStreamReset, ErrConnClosed, err)
}

// closedErr is what connection operations fail with once it is closing.
func (c *Conn) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr != nil {
		return c.closeErr
	}
	return ErrConnClosed
}
