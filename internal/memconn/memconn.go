// Package memconn makes in-memory connection pairs that buffer like a
// socket: a write returns once its bytes fit in the peer's receive buffer,
// not when the peer reads them, as with net.Pipe. Protocols that pipeline
// (send a proposal and the first handshake message before reading the
// answer, as p2pnet's 1-RTT negotiation does) deadlock over net.Pipe but
// work over these, as they do over TCP. Every wait is on a channel, so the
// pairs work inside testing/synctest bubbles.
//
// It is test machinery; it imports only the standard library.
package memconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// DefaultBuffer is the receive buffer of each direction, like a small
// socket buffer.
const DefaultBuffer = 64 << 10

// Pair returns two connected ends. bufSize is each direction's buffer;
// 0 means DefaultBuffer.
func Pair(bufSize int) (net.Conn, net.Conn) {
	if bufSize <= 0 {
		bufSize = DefaultBuffer
	}
	ab, ba := newQueue(bufSize), newQueue(bufSize)
	a := &Conn{in: ba, out: ab, local: addr("a"), remote: addr("b"), closed: make(chan struct{})}
	b := &Conn{in: ab, out: ba, local: addr("b"), remote: addr("a"), closed: make(chan struct{})}
	a.rd.init()
	a.wd.init()
	b.rd.init()
	b.wd.init()
	return a, b
}

type addr string

func (a addr) Network() string { return "mem" }
func (a addr) String() string  { return string(a) }

// queue is one direction: bytes written by one end, read by the other.
type queue struct {
	size     int
	mu       sync.Mutex // guards the following
	buf      []byte
	eof      bool // the writer closed
	broken   bool // the reader closed
	readable chan struct{}
	writable chan struct{}
}

func newQueue(size int) *queue {
	return &queue{size: size, readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// deadline is a settable deadline whose channel closes when it passes.
type deadline struct {
	mu    sync.Mutex // guards the following
	timer *time.Timer
	ch    chan struct{}
}

func (d *deadline) init() { d.ch = make(chan struct{}) }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		if !d.timer.Stop() {
			// The timer fired, or is about to close the channel it was
			// given: that channel is spent whether or not it is closed yet.
			d.ch = make(chan struct{})
		}
		d.timer = nil
	}
	select {
	case <-d.ch:
		d.ch = make(chan struct{}) // it had passed; re-arm
	default:
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.ch)
		return
	}
	ch := d.ch
	d.timer = time.AfterFunc(dur, func() { close(ch) })
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// Conn is one end of a Pair.
type Conn struct {
	in, out       *queue
	local, remote net.Addr
	rd, wd        deadline
	closeOnce     sync.Once
	closed        chan struct{}
}

var errBrokenPipe = errors.New("memconn: broken pipe")

// Read reads what the other end wrote; io.EOF after it closed.
func (c *Conn) Read(b []byte) (int, error) {
	for {
		select {
		case <-c.closed:
			return 0, net.ErrClosed
		default:
		}
		q := c.in
		q.mu.Lock()
		if len(q.buf) > 0 {
			n := copy(b, q.buf)
			q.buf = q.buf[n:]
			if len(q.buf) == 0 {
				q.buf = nil
			}
			q.mu.Unlock()
			notify(q.writable)
			return n, nil
		}
		eof := q.eof
		q.mu.Unlock()
		if eof {
			return 0, io.EOF
		}
		if len(b) == 0 {
			return 0, nil
		}
		select {
		case <-q.readable:
		case <-c.closed:
			return 0, net.ErrClosed
		case <-c.rd.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// Write waits until b fits in the other end's buffer.
func (c *Conn) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		select {
		case <-c.closed:
			return written, net.ErrClosed
		default:
		}
		q := c.out
		q.mu.Lock()
		if q.broken {
			q.mu.Unlock()
			return written, errBrokenPipe
		}
		if room := q.size - len(q.buf); room > 0 {
			n := min(room, len(b)-written)
			q.buf = append(q.buf, b[written:written+n]...)
			written += n
			q.mu.Unlock()
			notify(q.readable)
			continue
		}
		q.mu.Unlock()
		select {
		case <-q.writable:
		case <-c.closed:
			return written, net.ErrClosed
		case <-c.wd.wait():
			return written, os.ErrDeadlineExceeded
		}
	}
	return written, nil
}

// Close closes both directions: the other end reads EOF after the bytes
// already written, and its writes fail.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.out.mu.Lock()
		c.out.eof = true
		c.out.mu.Unlock()
		notify(c.out.readable)
		c.in.mu.Lock()
		c.in.broken = true
		c.in.buf = nil
		c.in.mu.Unlock()
		notify(c.in.writable)
	})
	return nil
}

// LocalAddr returns a placeholder address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns a placeholder address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { c.rd.set(t); return nil }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }
