package multistream

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/p2pnet/p2pnet/protocol"
)

// LazyConn is the dialer side of multistream-select for one protocol that
// does not wait for the listener's answer: the header and proposal go out
// with the data of the first Write, in one write to the wrapped stream, and
// the listener's header and echo are read and checked by the first Read.
// A request thus costs one round trip.
//
// If the listener refuses the protocol, Read returns a [*NotSupportedError]
// (matching [ErrNotSupported]), and so does every Read and Write after it.
// Data written before the answer arrived is lost.
//
// Like a net.Conn, a LazyConn may be used by one reading and one writing
// goroutine at the same time, and Close may be called from any goroutine.
type LazyConn struct {
	rwc   io.ReadWriteCloser
	proto protocol.ID

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

	// failErr is why negotiation failed: set once, before failed is
	// stored, by the constructor or the reader holding rmu.
	failed  atomic.Bool
	failErr error

	// passthrough is set once the answer has been read and accepted and
	// no bytes read with it are left: Read then goes straight to rwc.
	passthrough atomic.Bool

	rmu        sync.Mutex // guards the following; held by Read until passthrough
	rdone      bool       // the answer has been read (or reading it failed)
	pending    []byte     // bytes read after the answer, not yet returned
	pendingBuf *[]byte    // pooled buffer behind pending
	pendingErr error      // read error that came with pending, returned after it
}

// NewLazyClient wraps rwc, on which proto will be proposed. Nothing is
// sent until the first Write, Read, Flush, CloseWrite or Close. If proto is
// not a valid protocol ID, nothing is ever sent: Write, Read, Flush and
// CloseWrite fail with an error matching [ErrInvalidProtocol], and Close
// just closes rwc.
func NewLazyClient(rwc io.ReadWriteCloser, proto protocol.ID) *LazyConn {
	l := &LazyConn{rwc: rwc, proto: proto}
	if err := validateID(proto); err != nil {
		l.claimed.Store(true)
		l.werr = err
		l.failErr = err
		l.failed.Store(true)
		return l
	}
	l.sent.Add(1)
	return l
}

// Write writes b. The first Write sends the handshake and as much of b as
// fits in a small buffer in one write to the wrapped stream (the rest, if
// any, in a second one); it does not wait for the listener's answer. Once a
// Read has seen negotiation fail, Write returns the same error.
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
// listener's header and answer and checks them; an error doing so is
// returned by every later Read and Write. A Read into an empty b returns
// once the answer has been checked, so Read(nil) waits for negotiation.
func (l *LazyConn) Read(b []byte) (int, error) {
	if l.passthrough.Load() {
		return l.rwc.Read(b)
	}
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if !l.rdone && !l.failed.Load() {
		l.rdone = true
		if err := l.readAnswerLocked(); err != nil {
			l.failErr = err
			l.failed.Store(true)
		}
	}
	if l.failed.Load() {
		return 0, l.failErr
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

// CloseWrite sends the handshake if nothing has been written yet, then
// closes the wrapped stream for writing. It fails with an error matching
// errors.ErrUnsupported, sending nothing, if the wrapped stream has no
// CloseWrite method.
func (l *LazyConn) CloseWrite() error {
	cw, ok := l.rwc.(closeWriter)
	if !ok {
		return fmt.Errorf("multistream: %T cannot close for writing: %w", l.rwc, errors.ErrUnsupported)
	}
	ferr := l.Flush()
	if err := cw.CloseWrite(); err != nil {
		return err
	}
	return ferr
}

// Close sends the handshake if nothing has been written yet, then closes
// the wrapped stream. It does not wait for the listener's answer, nor for a
// handshake another goroutine is writing: like network.MuxedStream's Close,
// it interrupts reads and writes in progress. A caller that needs the
// answer calls CloseWrite and reads until EOF first.
func (l *LazyConn) Close() error {
	var herr error
	if l.claimed.CompareAndSwap(false, true) {
		_, herr = l.sendHandshake(nil)
	}
	if err := l.rwc.Close(); err != nil {
		return err
	}
	return herr
}
