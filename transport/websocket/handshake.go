package websocket

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Buffer sizes of a connection. Reads go through a bufio.Reader of
// readBufferSize, which reads straight into the caller's slice when that
// is larger. A dialer's writes are masked in a buffer of writeBufferSize,
// one frame per buffer, so the buffer holds a whole Noise message (at
// most 65535 bytes plus its length); a listener's writes go out from the
// caller's slice. Write buffers are pooled: an idle connection holds none.
const (
	readBufferSize  = 4 << 10
	writeBufferSize = 64<<10 + 64
)

// maxRequestBytes bounds the HTTP upgrade request a listener reads.
const maxRequestBytes = 16 << 10

// writeBuffers is the pool of write buffers of every connection.
var writeBuffers = &sync.Pool{}

// httpUpgrader answers HTTP upgrade requests. Any origin may connect: a libp2p
// node authenticates its peers in the security handshake that follows,
// not by cookies or the page they come from, and browsers always send an
// Origin.
var httpUpgrader = &websocket.Upgrader{
	ReadBufferSize:  readBufferSize,
	WriteBufferSize: writeBufferSize,
	WriteBufferPool: writeBuffers,
	CheckOrigin:     func(*http.Request) bool { return true },
	Error:           writeHTTPError,
}

// serverHandshake reads an HTTP upgrade request from dc and answers it,
// within the deadlines dc has.
func serverHandshake(dc *deadlineConn) (*websocket.Conn, error) {
	lr := &limitedReader{r: dc, n: maxRequestBytes}
	br := bufio.NewReaderSize(lr, readBufferSize)
	req, err := http.ReadRequest(br)
	if err != nil {
		if errors.Is(err, errRequestTooLarge) {
			writeStatus(dc, http.StatusRequestHeaderFieldsTooLarge)
		}
		return nil, fmt.Errorf("%w: reading the upgrade request: %w", ErrHandshake, err)
	}
	lr.n = -1
	w := &hijackWriter{conn: dc, br: br}
	ws, err := httpUpgrader.Upgrade(w, req, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return ws, nil
}

// writeHTTPError answers a request that is no WebSocket upgrade request
// of ours with status and closes the connection.
func writeHTTPError(w http.ResponseWriter, _ *http.Request, status int, _ error) {
	if hw, ok := w.(*hijackWriter); ok {
		writeStatus(hw.conn, status)
	}
}

// writeStatus writes a response with status and no body, as a last word.
func writeStatus(c net.Conn, status int) {
	fmt.Fprintf(c, "HTTP/1.1 %03d %s\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		status, http.StatusText(status))
}

// hijackWriter is the http.ResponseWriter of one upgrade request read off
// a socket: it lets the library take the socket over (Hijack). Anything
// else is answered by writeHTTPError.
type hijackWriter struct {
	conn   net.Conn
	br     *bufio.Reader
	header http.Header
}

var _ http.Hijacker = (*hijackWriter)(nil)

func (w *hijackWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

// Write is never called: writeHTTPError answers failures directly.
func (w *hijackWriter) Write(b []byte) (int, error) { return 0, http.ErrHijacked }

// WriteHeader is never called: writeHTTPError answers failures directly.
func (w *hijackWriter) WriteHeader(int) {}

// Hijack hands over the socket with the reader the request came from.
func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(w.br, bufio.NewWriterSize(w.conn, 64)), nil
}

// errRequestTooLarge is what limitedReader returns past its limit.
var errRequestTooLarge = errors.New("websocket: upgrade request too large")

// limitedReader reads at most n bytes from r, then fails with
// errRequestTooLarge; n < 0 means no limit.
type limitedReader struct {
	r io.Reader
	n int
}

func (l *limitedReader) Read(b []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(b)
	}
	if l.n == 0 {
		return 0, errRequestTooLarge
	}
	if len(b) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	l.n -= n
	return n, err
}

// clientHandshake sends the HTTP upgrade request for host (the Host
// header: a DNS name or an IP address, and the port) on dc and reads the
// answer, within ctx.
func clientHandshake(ctx context.Context, dc *deadlineConn, host string, tls bool) (*websocket.Conn, error) {
	// The library bounds its handshake by the context's deadline; a
	// cancellation interrupts it through the user's deadlines.
	stop := context.AfterFunc(ctx, func() {
		dc.setUser(readDir, pastDeadline)
		dc.setUser(writeDir, pastDeadline)
	})
	dial := func(context.Context, string, string) (net.Conn, error) { return dc, nil }
	d := websocket.Dialer{
		NetDialContext:    dial,
		NetDialTLSContext: dial,
		ReadBufferSize:    readBufferSize,
		WriteBufferSize:   writeBufferSize,
		WriteBufferPool:   writeBuffers,
	}
	scheme := "ws://"
	if tls {
		scheme = "wss://"
	}
	ws, resp, err := d.DialContext(ctx, scheme+host+"/", nil)
	if !stop() {
		// Cancelled: the socket expired, perhaps after the library's
		// last read.
		if err == nil {
			err = ctx.Err()
		} else {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			err = fmt.Errorf("%w (HTTP status %s)", err, resp.Status)
		}
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return ws, nil
}

// pastDeadline fails reads and writes at once.
var pastDeadline = time.Unix(1, 0)
