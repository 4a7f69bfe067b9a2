package websocket

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	ma "github.com/multiformats/go-multiaddr"
)

// Errors of a Conn. They are wrapped with details.
var (
	// ErrHandshake is returned when the WebSocket (HTTP upgrade) handshake
	// fails.
	ErrHandshake = errors.New("websocket: handshake failed")
	// ErrTextMessage is returned when the remote sends a text message:
	// libp2p carries its byte stream in binary messages only. The
	// connection is closed with status 1003 (unsupported data).
	ErrTextMessage = errors.New("websocket: text message received; libp2p sends binary messages only")
	// ErrClosedByRemote is returned when the remote closes the WebSocket
	// with a status other than normal closure or going away (those read as
	// io.EOF); it wraps the library's *websocket.CloseError.
	ErrClosedByRemote = errors.New("websocket: closed by the remote")
)

// closeFrameTimeout bounds how long Close waits to send the close frame
// while a Write holds the connection (the remote not reading, say).
const closeFrameTimeout = 100 * time.Millisecond

// Conn is a WebSocket connection seen as a byte stream: each Write sends
// one binary message, and Read returns the bytes of the binary messages
// received, in order, whatever their boundaries. It is what the upgrader
// secures and multiplexes.
//
// Deadlines behave as net.Conn's, including one set while a Read or Write
// waits, with one difference: once a Read has failed (a deadline included),
// every later Read fails the same way, as the WebSocket framing cannot be
// resumed mid-frame; likewise for Write. The upgrader and yamux close a
// connection whose read or write timed out.
//
// An inbound Conn answers its HTTP upgrade request (and, for /tls/ws, its
// TLS handshake) on its first Read or Write, within the deadlines set
// then, so the upgrader's handshake timeout and slots cover it.
type Conn struct {
	dc           *deadlineConn // the socket (TCP or TLS) with its two parties' deadlines
	laddr, raddr ma.Multiaddr

	hsDone atomic.Bool // the WebSocket handshake is over (ws or hsErr is set)
	hsMu   sync.Mutex  // guards the handshake; held while it runs
	hsErr  error
	ws     *websocket.Conn

	readMu  sync.Mutex // guards the following
	reader  io.Reader  // the binary message being read, if any
	readErr error      // sticky: once set, every Read returns it

	writeMu  sync.Mutex // guards writeErr; held while writing a message
	writeErr error      // sticky

	closeOnce sync.Once
	closeErr  error
}

var _ net.Conn = (*Conn)(nil)

// newConn returns a Conn over dc. ws is the WebSocket connection when the
// handshake is done (a dial); nil means the handshake runs on first use,
// as the server's side.
func newConn(dc *deadlineConn, ws *websocket.Conn, laddr, raddr ma.Multiaddr) *Conn {
	c := &Conn{dc: dc, ws: ws, laddr: laddr, raddr: raddr}
	if ws != nil {
		c.setup()
		c.hsDone.Store(true)
	}
	return c
}

// setup prepares c.ws for a byte stream: messages of any size.
func (c *Conn) setup() { c.ws.SetReadLimit(0) }

// handshake runs the server's handshake once, on the first Read or Write.
func (c *Conn) handshake() error {
	if c.hsDone.Load() {
		return c.hsErr
	}
	c.hsMu.Lock()
	defer c.hsMu.Unlock()
	if c.hsDone.Load() {
		return c.hsErr
	}
	ws, err := serverHandshake(c.dc)
	if err != nil {
		c.hsErr = err
	} else {
		c.ws = ws
		c.setup()
	}
	c.hsDone.Store(true)
	return c.hsErr
}

// Read reads the byte stream: the payload of binary messages, in order.
func (c *Conn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if c.readErr != nil {
			return 0, c.readErr
		}
		if c.reader == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				c.readErr = c.readError(err)
				return 0, c.readErr
			}
			if typ != websocket.BinaryMessage {
				c.readErr = ErrTextMessage
				c.ws.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseUnsupportedData, "binary messages only"),
					time.Now().Add(closeFrameTimeout))
				return 0, c.readErr
			}
			c.reader = r
		}
		if len(b) == 0 {
			return 0, nil
		}
		n, err := c.reader.Read(b)
		if err == io.EOF { // the end of this message; go on with the next
			c.reader = nil
			err = nil
		}
		if err != nil {
			c.readErr = c.readError(err)
			return n, c.readErr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// readError is the error Read returns for err from the library.
func (c *Conn) readError(err error) error {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway ||
		ce.Code == websocket.CloseNoStatusReceived):
		return io.EOF
	case errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure:
		// The socket ended without a close frame.
		return io.ErrUnexpectedEOF
	case errors.As(err, &ce):
		return fmt.Errorf("%w: %w", ErrClosedByRemote, ce)
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("websocket: read: %w", os.ErrDeadlineExceeded)
	}
	return fmt.Errorf("websocket: read: %w", err)
}

// Write sends b as one binary message.
func (c *Conn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.writeErr != nil {
		return 0, c.writeErr
	}
	if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, websocket.ErrCloseSent):
			c.writeErr = fmt.Errorf("websocket: write: %w", net.ErrClosed)
		case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
			c.writeErr = fmt.Errorf("websocket: write: %w", os.ErrDeadlineExceeded)
		default:
			c.writeErr = fmt.Errorf("websocket: write: %w", err)
		}
		return 0, c.writeErr
	}
	return len(b), nil
}

// Close sends a close frame (normal closure), unless the handshake has not
// happened or a Write holds the connection for longer than
// closeFrameTimeout, and closes the socket.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		// The handshake is not waited for: closing the socket ends it.
		if c.hsDone.Load() && c.hsErr == nil {
			c.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
				time.Now().Add(closeFrameTimeout))
		}
		c.closeErr = c.dc.Close()
	})
	return c.closeErr
}

// LocalAddr returns the socket's local address.
func (c *Conn) LocalAddr() net.Addr { return c.dc.LocalAddr() }

// RemoteAddr returns the socket's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.dc.RemoteAddr() }

// LocalMultiaddr returns the local address: /ip4|ip6/…/tcp/N/ws, or
// /…/tls/ws over TLS.
func (c *Conn) LocalMultiaddr() ma.Multiaddr { return c.laddr }

// RemoteMultiaddr returns the remote address: /ip4|ip6/…/tcp/N/ws or
// /…/tls/ws for an inbound connection, the address dialed for an
// outbound one.
func (c *Conn) RemoteMultiaddr() ma.Multiaddr { return c.raddr }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.dc.setUser(readDir, t); err != nil {
		return err
	}
	return c.dc.setUser(writeDir, t)
}

// SetReadDeadline sets the deadline of Reads, those waiting included.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.dc.setUser(readDir, t) }

// SetWriteDeadline sets the deadline of Writes, those waiting included.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.dc.setUser(writeDir, t) }

// SetLinger sets SO_LINGER on the TCP socket under the connection, as
// net.TCPConn.SetLinger does: the upgrader's listener resets the
// connections it refuses before their handshake.
func (c *Conn) SetLinger(sec int) error {
	sock := c.dc.Conn
	if tc, ok := sock.(*tls.Conn); ok {
		sock = tc.NetConn()
	}
	if tc, ok := sock.(*net.TCPConn); ok {
		return tc.SetLinger(sec)
	}
	return nil
}
