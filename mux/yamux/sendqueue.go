package yamux

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

const (
	// maxFramePayload is the largest Data frame this side sends.
	maxFramePayload = 64 << 10
	// maxWriteBatch is the most a Write queues before waiting for the
	// queue to be written: several frames handed to the connection at once.
	maxWriteBatch = 256 << 10
	// maxQueuedReplies bounds the answers (pings' answers, refusals of
	// streams) the read loop queues between two writes; for more, it waits
	// for a write, so a remote that sends without reading cannot grow the
	// queue.
	maxQueuedReplies = 1024
	// frameBufSize is the size of a send buffer for frames without
	// payload and small writes.
	frameBufSize = 4 << 10
	// dataBufSize is the size of a send buffer for Writes' batches: two
	// of them (a Write queues its next batch while the last one is being
	// written, and both may meet in one queue), and room for other
	// frames queued meanwhile. A buffer is made at one of these two sizes
	// and is regrown only when several streams' batches meet in one
	// queue.
	dataBufSize = 2*(maxWriteBatch+(maxWriteBatch/maxFramePayload)*headerSize) + frameBufSize
	// maxPooledSendBuf is the largest send buffer kept for reuse.
	maxPooledSendBuf = 2 << 20
	// lazyFlushDelay bounds how long frames queued lazily (the SYN of an
	// opened stream, the ACK of an accepted one, WriteLazy's data) wait
	// for another write to carry them.
	lazyFlushDelay = time.Millisecond
	// maxLazyWrite is the largest WriteLazy that is queued lazily; a
	// larger one is a Write.
	maxLazyWrite = frameBufSize
)

var (
	frameBufPool = sync.Pool{New: func() any {
		b := make([]byte, 0, frameBufSize)
		return &b
	}}
	dataBufPool = sync.Pool{New: func() any {
		b := make([]byte, 0, dataBufSize)
		return &b
	}}
)

func getSendBuf() *[]byte { return frameBufPool.Get().(*[]byte) }

// putSendBuf returns a buffer to the pool of its size, unless it is too
// large or of a size no pool holds.
func putSendBuf(b *[]byte) {
	if b == nil {
		return
	}
	*b = (*b)[:0]
	switch c := cap(*b); {
	case c == frameBufSize:
		frameBufPool.Put(b)
	case c >= dataBufSize && c <= maxPooledSendBuf:
		dataBufPool.Put(b)
	}
}

// pooledSize reports whether a send buffer of capacity c is kept for
// reuse.
func pooledSize(c int) bool {
	return c == frameBufSize || c >= dataBufSize && c <= maxPooledSendBuf
}

// bufLocked returns the queue, taking a buffer from the pool if there is
// none. The caller holds sendMu.
func (c *Conn) bufLocked() *[]byte {
	if c.sendBuf == nil {
		c.sendBuf = getSendBuf()
	}
	return c.sendBuf
}

// dataBufLocked returns the queue with room for n more bytes, moving it
// to a data-sized buffer when a frame buffer is too small. The caller
// holds sendMu.
func (c *Conn) dataBufLocked(n int) *[]byte {
	buf := c.bufLocked()
	if len(*buf)+n <= cap(*buf) || cap(*buf) >= dataBufSize {
		return buf
	}
	big := dataBufPool.Get().(*[]byte)
	*big = append((*big)[:0], *buf...)
	putSendBuf(buf)
	c.sendBuf = big
	return big
}

// sendClosedErrLocked is what queueing fails with once the connection is
// closing. The caller holds sendMu.
func (c *Conn) sendClosedErrLocked() error {
	if c.sendErr != nil {
		return c.sendErr
	}
	return ErrConnClosed
}

// queueFrame queues a frame without payload and makes sure it will be
// written without waiting for it: if no goroutine holds the writer role, a
// flusher goroutine takes it.
func (c *Conn) queueFrame(typ frameType, flags uint16, id, length uint32) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.sendClosed {
		return c.sendClosedErrLocked()
	}
	buf := c.bufLocked()
	*buf = appendHeader(*buf, typ, flags, id, length)
	c.queued += headerSize
	c.ensureWriterLocked()
	return nil
}

// queueLazy queues a frame, with payload p if any, that goes out with the
// next write on the connection, whoever makes it, and within
// lazyFlushDelay at the latest: a stream's SYN then rides with its first
// data, and an accepted stream's ACK and protocol answer with its
// handler's reply, saving a write and a flusher goroutine each. The
// stream flushes its lazy frames itself before it waits for the remote
// (see Stream.flushLazyLocked). It returns the queue's end offset after
// the frame.
func (c *Conn) queueLazy(typ frameType, flags uint16, id, length uint32, p []byte) (uint64, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.sendClosed {
		return 0, c.sendClosedErrLocked()
	}
	buf := c.dataBufLocked(headerSize + len(p))
	*buf = append(appendHeader(*buf, typ, flags, id, length), p...)
	c.queued += uint64(headerSize + len(p))
	// The timer is armed at most once per lazyFlushDelay and never
	// stopped when a write carries the frames: arming and stopping it for
	// every stream cost more than the goroutine it saves. Firing with
	// nothing queued costs a goroutine start, once per lazyFlushDelay.
	// The timer is dropped once it fired: an idle connection holds none.
	if !c.writing && c.lazyTimer == nil {
		c.lazyTimer = time.AfterFunc(lazyFlushDelay, c.lazyFlushFn)
	}
	return c.queued, nil
}

// lazyFlush is the lazy timer's function: it writes what is queued
// unless a goroutine is writing it already.
func (c *Conn) lazyFlush() {
	c.sendMu.Lock()
	c.lazyTimer = nil
	if c.writing || c.sendClosed || c.sendErr != nil || c.sendBuf == nil || len(*c.sendBuf) == 0 {
		c.sendMu.Unlock()
		return
	}
	c.writing = true
	c.wg.Add(1) // not closing (sendClosed is unset), so the read loop holds wg above zero
	err := c.flushLocked(0)
	c.sendMu.Unlock()
	if err != nil {
		c.writeFailed(err)
	}
	c.wg.Done()
}

// queueFinalFrame queues a frame without payload that its caller will
// flush with flushQueued once it has released its stream's lock: a FIN or
// RST, after which the stream sends nothing more to coalesce with, so
// writing it at once saves starting a flusher.
func (c *Conn) queueFinalFrame(typ frameType, flags uint16, id, length uint32) (uint64, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.sendClosed {
		return 0, c.sendClosedErrLocked()
	}
	buf := c.bufLocked()
	*buf = appendHeader(*buf, typ, flags, id, length)
	c.queued += headerSize
	return c.queued, nil
}

// flushQueued writes the queue up to end unless it is written already or
// another goroutine holds the writer role (it writes the queue until it is
// empty, so it writes those frames too).
func (c *Conn) flushQueued(end uint64) {
	c.sendMu.Lock()
	if c.flushed >= end || c.writing || c.sendErr != nil {
		c.sendMu.Unlock()
		return
	}
	c.writing = true
	err := c.flushLocked(end)
	c.sendMu.Unlock()
	if err != nil {
		c.writeFailed(err)
	}
}

// queueReply is queueFrame for the read loop's answers (pings' answers,
// refusals of streams). None is ever dropped: once maxQueuedReplies wait
// to be written, the read loop writes them itself, or waits for the
// writer to, before it queues more and reads on. A remote that sends
// without reading thus slows its own connection down, bounded by the write
// timeout, instead of growing the queue or losing answers (a lost refusal
// leaves the remote's stream hanging).
func (c *Conn) queueReply(typ frameType, flags uint16, id, length uint32) {
	c.sendMu.Lock()
	for !c.sendClosed && c.sendErr == nil && c.repliesQueued >= maxQueuedReplies {
		end := c.queued
		c.sendMu.Unlock()
		_ = c.waitFlushed(end, c.replyNotify, nil) // an error closes the connection
		c.sendMu.Lock()
	}
	defer c.sendMu.Unlock()
	if c.sendClosed || c.sendErr != nil {
		return
	}
	c.repliesQueued++
	buf := c.bufLocked()
	*buf = appendHeader(*buf, typ, flags, id, length)
	c.queued += headerSize
	c.ensureWriterLocked()
}

// ensureWriterLocked starts a flusher goroutine unless a goroutine holds the
// writer role. The caller holds sendMu and has checked sendClosed, so the
// read loop is still running and wg cannot be at zero.
func (c *Conn) ensureWriterLocked() {
	if c.writing {
		return
	}
	c.writing = true
	c.wg.Add(1)
	go c.flusherFn() // a stored method value: starting it allocates nothing
}

// startWriter starts a flusher goroutine unless a goroutine holds the
// writer role or nothing is queued.
func (c *Conn) startWriter() {
	c.sendMu.Lock()
	if !c.sendClosed && c.sendBuf != nil && len(*c.sendBuf) > 0 {
		c.ensureWriterLocked()
	}
	c.sendMu.Unlock()
}

// queueData queues Data frames for stream id carrying p, the first frame
// with flags. The caller then waits with waitFlushed for the returned end
// offset.
func (c *Conn) queueData(id uint32, flags uint16, p []byte) (uint64, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.sendClosed {
		return 0, c.sendClosedErrLocked()
	}
	frames := (len(p) + maxFramePayload - 1) / maxFramePayload
	buf := c.dataBufLocked(len(p) + frames*headerSize)
	b := *buf
	for len(p) > 0 {
		n := min(len(p), maxFramePayload)
		b = appendHeader(b, typeData, flags, id, uint32(n))
		b = append(b, p[:n]...)
		flags = 0
		p = p[n:]
		c.queued += uint64(headerSize + n)
	}
	*buf = b
	return c.queued, nil
}

// waitFlushed waits until the queue has been written up to end, taking the
// writer role when nobody holds it. notify is the caller's cap-1 channel.
// It returns os.ErrDeadlineExceeded when deadline fires first (the queued
// frames are still written), or why writing stopped.
func (c *Conn) waitFlushed(end uint64, notify chan struct{}, deadline <-chan struct{}) error {
	c.sendMu.Lock()
	for {
		if c.flushed >= end {
			c.sendMu.Unlock()
			return nil
		}
		if c.sendErr != nil && !c.writing {
			// A write still in progress may carry our frames: wait for
			// it (it notifies every waiter when it ends) rather than
			// report a failure for data that went out.
			err := c.sendErr
			c.sendMu.Unlock()
			return err
		}
		if !c.writing {
			c.writing = true
			if err := c.flushLocked(end); err != nil {
				c.sendMu.Unlock()
				c.writeFailed(err)
				return err
			}
			continue
		}
		c.waiters = append(c.waiters, flushWaiter{end, notify})
		c.sendMu.Unlock()
		select {
		case <-notify:
		case <-deadline:
			return os.ErrDeadlineExceeded
		}
		c.sendMu.Lock()
	}
}

// flusher is the goroutine that writes the queue when the read loop or a
// goroutine that must not wait queued frames and nobody was writing.
func (c *Conn) flusher() {
	defer c.wg.Done()
	c.sendMu.Lock()
	err := c.flushLocked(0)
	c.sendMu.Unlock()
	if err != nil {
		c.writeFailed(err)
	}
}

// flushLocked writes the queue while the caller holds the writer role
// (c.writing, set by the caller). It returns when the queue is empty or
// writing failed, or, when until is not 0, as soon as the queue is written
// up to until: the role then passes to a flusher goroutine, so a Write does
// not keep writing other streams' frames. It returns with the
// role given up or passed on. The caller holds sendMu; it is released while
// writing.
func (c *Conn) flushLocked(until uint64) error {
	var err error
	for c.sendErr == nil && c.sendBuf != nil && len(*c.sendBuf) > 0 {
		if until != 0 && c.flushed >= until && !c.sendClosed {
			c.wg.Add(1)      // writing stays true: the flusher has the role
			go c.flusherFn() // a stored method value: starting it allocates nothing
			return nil
		}
		buf := c.sendBuf
		c.sendBuf, c.spareBuf = c.spareBuf, nil
		end := c.queued
		c.repliesQueued = 0
		c.extendDeadlineLocked()
		fixed := c.fixDeadline
		c.sendMu.Unlock()

		_, werr := c.nc.Write(*buf)

		c.sendMu.Lock()
		if c.spareBuf == nil && pooledSize(cap(*buf)) {
			*buf = (*buf)[:0]
			c.spareBuf = buf
		} else {
			putSendBuf(buf)
		}
		if werr == nil {
			c.flushed = end // only what the connection took counts as written
			c.notifyFlushedLocked()
		} else if c.sendErr == nil {
			err = writeError(werr, fixed)
			c.sendErr = err
		}
	}
	c.writing = false
	if c.sendErr != nil {
		c.notifyWaitersLocked()
	}
	if c.sendBuf == nil || len(*c.sendBuf) == 0 {
		// Idle: an idle connection holds no send buffer.
		putSendBuf(c.sendBuf)
		putSendBuf(c.spareBuf)
		c.sendBuf, c.spareBuf = nil, nil
	}
	return err
}

// writeError is the connection's error when a Write on it failed with err.
func writeError(err error, closing bool) error {
	var ne net.Error
	if !closing && (errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()) {
		return ErrWriteTimeout
	}
	return fmt.Errorf("yamux: write: %w", err)
}

// extendDeadlineLocked keeps a write deadline of about WriteTimeout ahead on
// the connection, resetting it only when less than half of it is left. The
// caller holds sendMu and the writer role.
func (c *Conn) extendDeadlineLocked() {
	if c.fixDeadline || c.cfg.writeTimeout <= 0 {
		return
	}
	now := time.Now()
	if now.Add(c.cfg.writeTimeout / 2).After(c.lastDeadline) {
		c.lastDeadline = now.Add(c.cfg.writeTimeout)
		_ = c.nc.SetWriteDeadline(c.lastDeadline) // without deadlines, no timeout
	}
}

// flushWaiter is a goroutine waiting for the queue to be written up to end.
type flushWaiter struct {
	end    uint64
	notify chan struct{}
}

// notifyFlushedLocked wakes the goroutines whose frames are written. The
// caller holds sendMu.
func (c *Conn) notifyFlushedLocked() {
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.end <= c.flushed {
			asyncNotify(w.notify)
		} else {
			kept = append(kept, w)
		}
	}
	clear(c.waiters[len(kept):])
	c.waiters = kept
}

// notifyWaitersLocked wakes every goroutine waiting for a write. The caller
// holds sendMu.
func (c *Conn) notifyWaitersLocked() {
	for _, w := range c.waiters {
		asyncNotify(w.notify)
	}
	clear(c.waiters)
	c.waiters = c.waiters[:0]
}

// sendGoAway queues a GoAway with code as the connection's last frame and
// waits, at most goAwayTimeout, for it to be written. Nothing can be queued
// afterwards.
func (c *Conn) sendGoAway(code uint32) {
	c.sendMu.Lock()
	if c.sendClosed || c.sendErr != nil {
		c.sendClosed = true
		c.sendMu.Unlock()
		return
	}
	c.sendClosed = true
	buf := c.bufLocked()
	*buf = appendHeader(*buf, typeGoAway, 0, 0, code)
	c.queued += headerSize
	end := c.queued
	// The deadline bounds the wait, also for a writer already blocked.
	c.fixDeadline = true
	err := c.nc.SetWriteDeadline(time.Now().Add(goAwayTimeout))
	c.sendMu.Unlock()
	if err != nil {
		return // no way to bound the wait
	}
	_ = c.waitFlushed(end, make(chan struct{}, 1), nil)
}

// stopSending makes queueing fail from now on.
func (c *Conn) stopSending() {
	c.sendMu.Lock()
	c.sendClosed = true
	c.sendMu.Unlock()
}

// writeFailed closes the connection because a Write on it failed with err.
// Unless the write timed out, the remote side has closed or reset the
// connection, often right after a GoAway that says why (a refusal, see
// Transport.Refuse): the read loop gets up to goAwayTimeout to read what
// arrived before, and closes the connection with the GoAway's error if it
// finds one, with err otherwise.
func (c *Conn) writeFailed(err error) {
	if errors.Is(err, ErrWriteTimeout) {
		c.closeWithError(err)
		return
	}
	c.mu.Lock()
	first := c.writeFailure == nil && !c.closing
	if first {
		c.writeFailure = err
	}
	c.mu.Unlock()
	if first && c.nc.SetReadDeadline(time.Now().Add(goAwayTimeout)) != nil {
		c.closeWithError(err)
	}
}
