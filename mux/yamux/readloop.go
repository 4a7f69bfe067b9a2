package yamux

import (
	"errors"
	"fmt"
	"io"

	"github.com/p2pnet/p2pnet/network"
)

// readLoop is the connection's goroutine: it reads frames until the
// connection fails or closes, then closes it and releases its resources.
// It waits for whoever closes the connection to finish first: until then
// a flusher may still be started, and the read loop keeps wg above zero.
func (c *Conn) readLoop() {
	defer c.wg.Done()
	err := c.readFrames()
	if _, ok := errors.AsType[*GoAwayError](err); !ok {
		c.mu.Lock()
		if c.writeFailure != nil {
			err = c.writeFailure // what ended reading is the write's consequence
		}
		c.mu.Unlock()
	}
	c.closeWithError(err)
	<-c.closeDone
	c.cleanup()
}

// readError is the connection's error when reading from it failed with err.
func readError(err error) error {
	return fmt.Errorf("yamux: read: %w", err)
}

func (c *Conn) readFrames() error {
	for {
		if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
			return readError(err)
		}
		h, err := parseHeader(&c.hdr)
		if err != nil {
			return err
		}
		switch h.typ {
		case typeData, typeWindowUpdate:
			err = c.handleStreamFrame(h)
		case typePing:
			c.handlePing(h)
		case typeGoAway:
			err = &GoAwayError{Code: h.length}
		}
		if err != nil {
			return err
		}
	}
}

func (c *Conn) handlePing(h header) {
	switch {
	case h.flags&flagSYN != 0:
		c.queueReply(typePing, flagACK, 0, h.length)
	case h.flags&flagACK != 0:
		c.handlePong(h.length)
	}
}

func (c *Conn) handleStreamFrame(h header) error {
	id := h.streamID
	if id == 0 {
		return fmt.Errorf("%w: stream frame on the session ID 0", ErrUnknownStream)
	}
	var s *Stream
	if h.flags&flagSYN != 0 {
		var err error
		if s, err = c.incomingStream(id); err != nil {
			return err
		}
	} else {
		c.mu.Lock()
		s = c.streams[id]
		known := s != nil || c.wasOpenedLocked(id)
		c.mu.Unlock()
		if !known {
			return fmt.Errorf("%w (stream %d)", ErrUnknownStream, id)
		}
	}
	if s == nil {
		// A stream that ended or was refused: frames in flight are ignored.
		if h.typ == typeData {
			return c.discard(h.length)
		}
		return nil
	}
	if h.typ == typeWindowUpdate {
		return s.handleWindowUpdate(h)
	}
	return s.handleData(h)
}

// wasOpenedLocked reports whether stream id was opened at some point. The
// caller holds mu.
func (c *Conn) wasOpenedLocked(id uint32) bool {
	if c.isLocalID(id) {
		return uint64(id) < c.nextID
	}
	return id <= c.maxRemoteID
}

// incomingStream handles a SYN for stream id. It returns the new stream, or
// nil when the stream is refused (with a RST) or the connection is closing.
func (c *Conn) incomingStream(id uint32) (*Stream, error) {
	if c.isLocalID(id) {
		return nil, fmt.Errorf("%w (stream %d)", ErrStreamIDParity, id)
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil, nil
	}
	if _, ok := c.streams[id]; ok {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w (stream %d)", ErrDuplicateStream, id)
	}
	c.maxRemoteID = max(c.maxRemoteID, id)
	if c.numInbound >= c.cfg.maxIncomingStreams ||
		len(c.acceptQueue)-c.acceptHead >= c.cfg.acceptBacklog ||
		c.span.ReserveMemory(int(c.cfg.initialWindow), network.ReservationPriorityAlways) != nil {
		c.mu.Unlock()
		// Refused for resources, with the code go-libp2p's swarm sends
		// when its resource manager refuses a stream.
		c.queueReply(typeWindowUpdate, flagRST, id, uint32(network.StreamResourceLimitExceeded))
		return nil, nil
	}
	s := newStream(c, id, true)
	c.streams[id] = s
	c.numInbound++
	c.windowTotal += int64(s.recvWindow)
	c.acceptQueue = append(c.acceptQueue, s)
	c.mu.Unlock()
	asyncNotify(c.acceptNotify)
	return s, nil
}

// discard reads and drops n bytes of payload.
func (c *Conn) discard(n uint32) error {
	if n == 0 {
		return nil
	}
	chunk := getChunk(int(n))
	defer putChunk(chunk)
	b := (*chunk)[:cap(*chunk)]
	for n > 0 {
		k := min(int(n), len(b))
		if _, err := io.ReadFull(c.r, b[:k]); err != nil {
			return readError(err)
		}
		n -= uint32(k)
	}
	return nil
}
