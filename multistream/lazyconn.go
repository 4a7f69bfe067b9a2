package multistream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pnet/p2pnet/protocol"
)

// AnswerTimeout bounds how long Close and CloseWrite of a [LazyConn] wait
// for the listener's answer when no read deadline is set. It is the
// listener's usual bound on negotiation.
const AnswerTimeout = 10 * time.Second

// LazyConn is the dialer side of multistream-select for one protocol that
// does not wait for the listener's answer: the header and proposal go out
// with the data of the first Write, in one write to the wrapped stream, and
// the listener's header and answer are read by the first Read, or by Close
// or CloseWrite if they come first. A request thus costs one round trip.
//
// A listener that refuses the protocol drops the data written before its
// answer arrived. The refusal, a [*NotSupportedError] matching
// [ErrNotSupported], is reported:
//
//   - by the first Read, and every Read after it;
//   - by every Write once the answer has been read (a Write before that
//     succeeds: it cannot know);
//   - by Close and CloseWrite, always: when the answer has not been read
//     yet they wait for it, so that data written to a listener that
//     refuses it never passes for sent. A protocol that only writes learns
//     of the refusal from Close.
//
// Any other failure to negotiate (a bad answer, the stream failing while
// reading it) is reported in the same places, in the same way. Close and
// CloseWrite wait for the answer until the read deadline set with
// SetDeadline or SetReadDeadline, or for [AnswerTimeout] when there is
// none; when that passes first, negotiation has failed with an error
// matching [os.ErrDeadlineExceeded], which they return, and which every
// later call returns too.
//
// Like a net.Conn, a LazyConn may be used by one reading and one writing
// goroutine at the same time, and Close may be called from any goroutine.
// A Close that comes while a Read waits for the answer waits for it too,
// then closes the stream, which ends the Read.
type LazyConn struct {
	rwc   io.ReadWriteCloser
	proto protocol.ID
	idErr error // proto is not a valid protocol ID: nothing is ever sent

	// The write half of the handshake is sent by whoever first needs it
	// sent: the first Write (with its data), or Read, Flush, CloseWrite or
	// Close. The one that wins claimed sends it; later writers wait on sent
	// so that their data follows it. A reader never waits on sent: on an
	// unbuffered stream the write may only finish once the listener has
	// written its answer and someone has read it.
	claimed    atomic.Bool
	sent       sync.WaitGroup // done when the handshake write has returned
	werr       error          // set before sent is done and sendFailed stored; sticky
	sendFailed atomic.Bool    // the handshake write returned werr

	// The outcome of negotiation is settled once: by the reader of the
	// answer (see answerLocked), or by a Close or CloseWrite whose wait for
	// it expired, whichever comes first. failErr is set before failed is
	// stored and never changes after; a nil failErr once settled means the
	// listener accepted.
	omu      sync.Mutex    // guards settled and answered
	settled  bool          // the outcome is known
	answered chan struct{} // made by a waiter, closed when settled
	failed   atomic.Bool
	failErr  error

	// passthrough is set once the answer has been read and accepted and
	// no bytes read with it are left: Read then goes straight to rwc.
	passthrough atomic.Bool

	// rmu is held by Read until passthrough, and by a Close or CloseWrite
	// reading the answer. Whoever holds it while the outcome is not settled
	// settles it before letting go, so a waiter that cannot take it waits
	// for answered instead.
	rmu        sync.Mutex // guards the following
	rdone      bool       // the answer has been read, or will never be
	pending    []byte     // bytes read after the answer, not yet returned
	pendingBuf *[]byte    // pooled buffer behind pending
	pendingErr error      // read error that came with pending, returned after it

	dmu          sync.Mutex // guards readDeadline
	readDeadline time.Time  // set with SetDeadline or SetReadDeadline

	closeOnce sync.Once
	closeErr  error // what rwc.Close returned
}

// NewLazyClient wraps rwc, on which proto will be proposed. Nothing is
// sent until the first Write, Read, Flush, CloseWrite or Close. If proto is
// not a valid protocol ID, nothing is ever sent: Write, Read, Flush and
// CloseWrite fail with an error matching [ErrInvalidProtocol], and Close
// just closes rwc.
func NewLazyClient(rwc io.ReadWriteCloser, proto protocol.ID) *LazyConn {
	l := &LazyConn{rwc: rwc, proto: proto}
	if err := validateID(proto); err != nil {
		l.idErr = err
		l.claimed.Store(true)
		l.werr = err
		l.settled = true
		l.failErr = err
		l.failed.Store(true)
		return l
	}
	l.sent.Add(1)
	return l
}

// Write writes b. The first Write sends the handshake and as much of b as
// fits in a small buffer in one write to the wrapped stream (the rest, if
// any, in a second one); it does not wait for the listener's answer, so
// data written before a refusal arrives is accepted here and dropped by
// the listener. Once negotiation has failed (the answer read by Read,
// CloseWrite or Close was a refusal, or waiting for it timed out), Write
// returns that error.
func (l *LazyConn) Write(b []byte) (int, error) {
	if l.failed.Load() {
		return 0, l.failErr
	}
	if !l.claimed.Load() && l.claimed.CompareAndSwap(false, true) {
		return l.sendHandshake(b)
	}
	l.sent.Wait()
	if l.werr != nil {
		return 0, l.werr
	}
	return l.rwc.Write(b)
}

// Flush sends the handshake now if nothing has been written yet, so that
// the listener can answer before there is data to send.
func (l *LazyConn) Flush() error {
	if l.claimed.CompareAndSwap(false, true) {
		_, err := l.sendHandshake(nil)
		return err
	}
	l.sent.Wait()
	return l.werr
}

// sendHandshake writes the header, the proposal and the start of b in one
// write, and the rest of b in another. Only the goroutine that claimed the
// handshake calls it, once.
func (l *LazyConn) sendHandshake(b []byte) (int, error) {
	defer l.sent.Done()
	p := getBuf()
	buf := append((*p)[:0], headerMsg...)
	buf = appendMessage(buf, string(l.proto))
	hs := len(buf)
	n := min(len(b), cap(buf)-hs) // no more than fits without growing
	buf = append(buf, b[:n]...)
	w, err := l.rwc.Write(buf)
	putBuf(p)
	if err != nil {
		l.werr = fmt.Errorf("multistream: sending handshake: %w", err)
		l.sendFailed.Store(true)
		return min(max(w-hs, 0), n), l.werr
	}
	if n == len(b) {
		return n, nil
	}
	m, err := l.rwc.Write(b[n:])
	return n + m, err
}

// Read reads data sent by the listener after its answer. The first Read
// sends the handshake if nothing has been written yet, then reads the
// listener's header and answer and checks them, unless CloseWrite has
// done so; an error doing so is returned by every later Read and Write. A
// Read into an empty b returns once the answer has been checked, so
// Read(nil) waits for negotiation.
func (l *LazyConn) Read(b []byte) (int, error) {
	if l.passthrough.Load() {
		return l.rwc.Read(b)
	}
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if err := l.answerLocked(); err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	if len(l.pending) > 0 {
		n := copy(b, l.pending)
		l.pending = l.pending[n:]
		if len(l.pending) == 0 {
			putBuf(l.pendingBuf)
			l.pending, l.pendingBuf = nil, nil
			if l.pendingErr == nil {
				l.passthrough.Store(true)
			}
		}
		return n, nil
	}
	if err := l.pendingErr; err != nil {
		l.pendingErr = nil
		l.passthrough.Store(true)
		return 0, err
	}
	l.passthrough.Store(true)
	return l.rwc.Read(b)
}

// answerLocked reads the listener's answer unless it has been read, and
// returns the outcome of negotiation: nil if the listener accepted. The
// caller holds rmu.
func (l *LazyConn) answerLocked() error {
	if !l.rdone {
		l.rdone = true
		var err error
		if !l.failed.Load() { // a wait for the answer may have expired
			err = l.readAnswerLocked()
		}
		l.settle(err)
	}
	if l.failed.Load() {
		if l.pendingBuf != nil { // read with an answer that came too late
			putBuf(l.pendingBuf)
			l.pending, l.pendingBuf, l.pendingErr = nil, nil, nil
		}
		return l.failErr
	}
	return nil
}

// settle records the outcome of negotiation, err (nil: accepted), unless
// it is already settled, and wakes those waiting for it. It reports
// whether err became the outcome.
func (l *LazyConn) settle(err error) bool {
	l.omu.Lock()
	defer l.omu.Unlock()
	if l.settled {
		return false
	}
	l.settled = true
	if err != nil {
		l.failErr = err
		l.failed.Store(true)
	}
	if l.answered != nil {
		close(l.answered)
	}
	return true
}

// outcome returns a channel closed once negotiation is settled, or nil if
// it is; then err is its outcome.
func (l *LazyConn) outcome() (wait <-chan struct{}, err error) {
	l.omu.Lock()
	defer l.omu.Unlock()
	if l.settled {
		return nil, l.failErr
	}
	if l.answered == nil {
		l.answered = make(chan struct{})
	}
	return l.answered, nil
}

// awaitAnswer returns the outcome of negotiation, waiting for the
// listener's answer if it is not known yet: reading it unless a Read is,
// until the read deadline or for AnswerTimeout. If that passes first,
// negotiation fails with a timeout error and the read of the answer is
// ended: by closing rwc if closing, else by interruptRead.
func (l *LazyConn) awaitAnswer(closing bool) error {
	wait, err := l.outcome()
	if wait == nil {
		return err
	}
	d, byDeadline := l.answerBound()
	fired := make(chan struct{})
	t := time.AfterFunc(d, func() {
		defer close(fired)
		if !l.settle(l.timeoutError(byDeadline)) {
			return
		}
		if closing {
			_ = l.closeRWC()
		} else {
			l.interruptRead()
		}
	})
	defer func() {
		if !t.Stop() {
			<-fired // interrupt has returned
		}
	}()
	if l.rmu.TryLock() {
		// No Read holds it: read the answer here, keeping what follows
		// it for Read.
		defer l.rmu.Unlock()
		return l.answerLocked()
	}
	// A Read holds rmu: it settles the outcome before letting go, or it
	// is settled already.
	<-wait
	_, err = l.outcome()
	return err
}

// answerBound returns how long to wait for the answer, and whether that
// is until the read deadline.
func (l *LazyConn) answerBound() (d time.Duration, byDeadline bool) {
	l.dmu.Lock()
	dl := l.readDeadline
	l.dmu.Unlock()
	if dl.IsZero() {
		return AnswerTimeout, false
	}
	return time.Until(dl), true
}

// timeoutError says that the answer did not come in time.
func (l *LazyConn) timeoutError(byDeadline bool) error {
	if byDeadline {
		return fmt.Errorf("multistream: no answer to %q before the read deadline: %w", l.proto, os.ErrDeadlineExceeded)
	}
	return fmt.Errorf("multistream: no answer to %q within %v: %w", l.proto, AnswerTimeout, os.ErrDeadlineExceeded)
}

// readAnswerLocked sends the handshake unless someone has, then reads the
// listener's header and answer. It reads greedily into a pooled buffer and
// keeps what follows the answer in pending.
func (l *LazyConn) readAnswerLocked() error {
	if l.claimed.CompareAndSwap(false, true) {
		if _, err := l.sendHandshake(nil); err != nil {
			return err
		}
	}
	if l.sendFailed.Load() {
		// A writer's handshake failed: no answer is coming.
		return l.werr
	}
	p := getBuf()
	buf := (*p)[:0]
	off := 0 // start of the bytes not parsed yet
	var readErr error
	empty := 0
	for step := 0; step < 2; {
		msg, n, err := parseMessage(buf[off:])
		if err == errShort {
			if step == 0 && !bytes.HasPrefix(headerMsg, buf[off:]) {
				// Not the start of /multistream/1.0.0 (an SSH banner, an
				// HTTP answer): say so now rather than wait for more.
				putBuf(p)
				return fmt.Errorf("%w: listener sent %q", ErrHeaderMismatch, buf[off:min(len(buf), off+32)])
			}
			if readErr != nil {
				putBuf(p)
				if readErr == io.EOF {
					readErr = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("multistream: reading answer: %w", readErr)
			}
			// buf holds at least the header and a largest answer, so it
			// never fills up before a valid answer has been parsed.
			m, err := l.rwc.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+m]
			readErr = err
			if m == 0 && err == nil {
				if empty++; empty == 100 {
					readErr = io.ErrNoProgress
				}
			}
			continue
		}
		if err == nil && step == 0 {
			err = checkHeader(msg)
		} else if err == nil {
			err = checkAnswer(msg, l.proto)
		}
		if err != nil {
			putBuf(p)
			return err
		}
		off += n
		step++
	}
	if off == len(buf) {
		putBuf(p)
	} else {
		l.pending, l.pendingBuf = buf[off:], p
	}
	l.pendingErr = readErr
	return nil
}

// closeWriter is what CloseWrite needs of the wrapped stream.
type closeWriter interface {
	CloseWrite() error
}

// readDeadliner is what SetReadDeadline needs of the wrapped stream.
type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// deadliner is what SetDeadline needs of the wrapped stream.
type deadliner interface {
	SetDeadline(t time.Time) error
}

// CloseWrite sends the handshake if nothing has been written yet, closes
// the wrapped stream for writing, then waits for the listener's answer if
// no one has read it yet (see [LazyConn] for how long) and returns the
// outcome of negotiation: nil if the listener accepted, its refusal (a
// [*NotSupportedError]) if it refused. Data that came with the answer is
// kept for Read. CloseWrite does not close the stream, even after a
// refusal: Close does. It fails with an error matching
// errors.ErrUnsupported, sending nothing, if the wrapped stream has no
// CloseWrite method.
//
// If the wait expires, CloseWrite ends the read of the answer by setting
// the wrapped stream's read deadline to a past time (or, if it has no
// SetReadDeadline method, by closing it) and returns an error matching
// [os.ErrDeadlineExceeded].
func (l *LazyConn) CloseWrite() error {
	cw, ok := l.rwc.(closeWriter)
	if !ok {
		return fmt.Errorf("multistream: %T cannot close for writing: %w", l.rwc, errors.ErrUnsupported)
	}
	ferr := l.Flush()
	if err := cw.CloseWrite(); err != nil {
		return err
	}
	if ferr != nil {
		return ferr
	}
	return l.awaitAnswer(false)
}

// interruptRead ends a read of rwc in progress, for good: negotiation has
// failed, so rwc is not read again. A read deadline that has passed does
// that already.
func (l *LazyConn) interruptRead() {
	d, ok := l.rwc.(readDeadliner)
	if !ok {
		_ = l.closeRWC()
		return
	}
	l.dmu.Lock()
	defer l.dmu.Unlock()
	if dl := l.readDeadline; !dl.IsZero() && !time.Now().Before(dl) {
		return
	}
	_ = d.SetReadDeadline(time.Unix(1, 0))
}

// Close sends the handshake if nothing has been written yet, waits for the
// listener's answer if no one has read it yet (see [LazyConn] for how
// long), then closes the wrapped stream whatever the answer. It returns
// the outcome of negotiation if it failed: the listener's refusal (a
// [*NotSupportedError]), or an error matching [os.ErrDeadlineExceeded] if
// the answer did not come in time; otherwise what closing the wrapped
// stream returned. Close interrupts a Read or Write in progress, once the
// answer is known. Calling Close again returns the same error.
//
// If proto is not a valid protocol ID, Close just closes the stream.
func (l *LazyConn) Close() error {
	if l.idErr != nil {
		return l.closeRWC()
	}
	var err error
	if l.claimed.CompareAndSwap(false, true) {
		_, err = l.sendHandshake(nil)
	}
	if err == nil {
		err = l.awaitAnswer(true)
	}
	if cerr := l.closeRWC(); err == nil {
		err = cerr
	}
	return err
}

// closeRWC closes rwc once and returns what that returned.
func (l *LazyConn) closeRWC() error {
	l.closeOnce.Do(func() { l.closeErr = l.rwc.Close() })
	return l.closeErr
}

// SetReadDeadline sets the wrapped stream's read deadline, which bounds
// Read and the wait of Close and CloseWrite for the listener's answer; the
// zero time means none (Close and CloseWrite then wait for at most
// [AnswerTimeout]). It fails with an error matching errors.ErrUnsupported
// if the wrapped stream has no SetReadDeadline method.
func (l *LazyConn) SetReadDeadline(t time.Time) error {
	d, ok := l.rwc.(readDeadliner)
	if !ok {
		return fmt.Errorf("multistream: %T has no read deadline: %w", l.rwc, errors.ErrUnsupported)
	}
	l.dmu.Lock()
	defer l.dmu.Unlock()
	l.readDeadline = t
	return d.SetReadDeadline(t)
}

// SetDeadline sets the wrapped stream's read and write deadlines; the read
// deadline bounds the wait of Close and CloseWrite too, as with
// SetReadDeadline. It fails with an error matching errors.ErrUnsupported
// if the wrapped stream has no SetDeadline method.
func (l *LazyConn) SetDeadline(t time.Time) error {
	d, ok := l.rwc.(deadliner)
	if !ok {
		return fmt.Errorf("multistream: %T has no deadlines: %w", l.rwc, errors.ErrUnsupported)
	}
	l.dmu.Lock()
	defer l.dmu.Unlock()
	l.readDeadline = t
	return d.SetDeadline(t)
}
