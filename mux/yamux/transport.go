package yamux

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/p2pnet/p2pnet/network"
)

// Transport creates yamux connections. Its fields configure them; the zero
// value of each field means its default, so &Transport{} is a Transport
// with every default. A Transport must not be changed once in use.
type Transport struct {
	// AcceptBacklog is how many streams the remote may have opened that
	// AcceptStream has not returned yet; further streams are reset. It is
	// also how many streams this side opens before the remote acknowledges
	// them: OpenStream waits beyond that, as go-yamux does. Default 256.
	AcceptBacklog int

	// MaxIncomingStreams is how many streams opened by the remote may be
	// open at once; further streams are reset. Default 1000.
	MaxIncomingStreams int

	// InitialStreamWindow is the receive window of a new stream. The
	// protocol's is 256 KiB, the minimum; a larger one is announced in the
	// stream's first frame. Default 256 KiB.
	InitialStreamWindow uint32

	// MaxStreamWindow is the largest receive window a stream grows to.
	// Default 16 MiB.
	MaxStreamWindow uint32

	// MaxConnWindow bounds the sum of the receive windows of a
	// connection's streams: a window grows only while the sum stays within
	// it. Streams always get their initial window (their number is bounded
	// by MaxIncomingStreams and the resource manager). Default 32 MiB.
	MaxConnWindow int

	// KeepAliveInterval is the time between pings, which keep the
	// connection alive and measure its round-trip time. A ping is also sent
	// when the connection starts. Negative disables the periodic pings (not
	// the first). Default 30 s.
	KeepAliveInterval time.Duration

	// PingTimeout is how long a ping may go unanswered before the
	// connection is closed with ErrKeepAliveTimeout. Default 10 s.
	PingTimeout time.Duration

	// WriteTimeout bounds every Write on the underlying connection; when
	// one takes longer, the connection is closed with ErrWriteTimeout.
	// Negative disables it. Default 10 s.
	WriteTimeout time.Duration

	// ReadBufferSize, if positive, puts a read buffer of that size under
	// the read loop. Secured connections buffer already, so the default is
	// none.
	ReadBufferSize int
}

// Defaults of the Transport fields.
const (
	DefaultAcceptBacklog       = 256
	DefaultMaxIncomingStreams  = 1000
	DefaultInitialStreamWindow = 256 << 10
	DefaultMaxStreamWindow     = 16 << 20
	DefaultMaxConnWindow       = 32 << 20
	DefaultKeepAliveInterval   = 30 * time.Second
	DefaultPingTimeout         = 10 * time.Second
	DefaultWriteTimeout        = 10 * time.Second
)

// DefaultTransport is a Transport with every default.
var DefaultTransport = &Transport{}

var _ network.Multiplexer = (*Transport)(nil)

// errConfig is wrapped by the errors of an invalid Transport.
var errConfig = errors.New("yamux: invalid transport configuration")

// config is a Transport with its defaults filled in.
type config struct {
	acceptBacklog      int
	maxIncomingStreams int
	initialWindow      uint32
	maxWindow          uint32
	maxConnWindow      int64
	keepAliveInterval  time.Duration // <= 0: no periodic pings
	pingTimeout        time.Duration
	writeTimeout       time.Duration // <= 0: none
	readBufferSize     int
}

func (t *Transport) config() (config, error) {
	c := config{
		acceptBacklog:      orDefault(t.AcceptBacklog, DefaultAcceptBacklog),
		maxIncomingStreams: orDefault(t.MaxIncomingStreams, DefaultMaxIncomingStreams),
		initialWindow:      orDefault(t.InitialStreamWindow, DefaultInitialStreamWindow),
		maxWindow:          orDefault(t.MaxStreamWindow, DefaultMaxStreamWindow),
		maxConnWindow:      int64(orDefault(t.MaxConnWindow, DefaultMaxConnWindow)),
		keepAliveInterval:  orDefault(t.KeepAliveInterval, DefaultKeepAliveInterval),
		pingTimeout:        orDefault(t.PingTimeout, DefaultPingTimeout),
		writeTimeout:       orDefault(t.WriteTimeout, DefaultWriteTimeout),
		readBufferSize:     t.ReadBufferSize,
	}
	switch {
	case c.acceptBacklog < 0:
		return c, fmt.Errorf("%w: negative AcceptBacklog", errConfig)
	case c.maxIncomingStreams < 0:
		return c, fmt.Errorf("%w: negative MaxIncomingStreams", errConfig)
	case c.initialWindow < initialWindow:
		return c, fmt.Errorf("%w: InitialStreamWindow below 256 KiB", errConfig)
	case c.maxWindow < c.initialWindow:
		return c, fmt.Errorf("%w: MaxStreamWindow below InitialStreamWindow", errConfig)
	case c.maxConnWindow < 0:
		return c, fmt.Errorf("%w: negative MaxConnWindow", errConfig)
	case c.pingTimeout < 0:
		return c, fmt.Errorf("%w: negative PingTimeout", errConfig)
	}
	return c, nil
}

func orDefault[T int | uint32 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// NewConn wraps nc, a secured connection, in a yamux connection. isServer
// chooses the stream IDs this side opens: even for the server, odd for the
// client. Stream windows are reserved in a span of scope; a nil scope
// accounts for nothing. The connection owns nc from now on.
func (t *Transport) NewConn(nc net.Conn, isServer bool, scope network.PeerScope) (network.MuxedConn, error) {
	c, err := t.Wrap(nc, isServer, scope)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Wrap is NewConn returning the concrete *Conn.
func (t *Transport) Wrap(nc net.Conn, isServer bool, scope network.PeerScope) (*Conn, error) {
	cfg, err := t.config()
	if err != nil {
		return nil, err
	}
	if scope == nil {
		scope = &network.NullScope{}
	}
	span, err := scope.BeginSpan()
	if err != nil {
		return nil, fmt.Errorf("yamux: begin resource span: %w", err)
	}
	return newConn(nc, isServer, cfg, span), nil
}

// Refuse tells the remote side of nc, a secured connection on which yamux
// was agreed but not started, that this side will not use it, and why: it
// writes the GoAway frame that go-yamux's CloseWithError(code) writes, and
// a yamux connection on the other end fails with that code (a *GoAwayError
// here; go-libp2p reports a *network.ConnError). The upgrader calls it
// with network.ConnResourceLimitExceeded when the resource manager refuses
// the peer. The write is bounded by a short deadline; Refuse does not
// close nc.
//
// The frame is best effort: a TCP connection closed with unread data in
// its receive buffer sends a RST, which may overtake it.
func (t *Transport) Refuse(nc net.Conn, code network.ConnErrorCode) error {
	if err := nc.SetWriteDeadline(time.Now().Add(goAwayTimeout)); err != nil {
		return fmt.Errorf("yamux: refuse: %w", err)
	}
	var b [headerSize]byte
	if _, err := nc.Write(appendHeader(b[:0], typeGoAway, 0, 0, uint32(code))); err != nil {
		return fmt.Errorf("yamux: refuse: %w", err)
	}
	return nil
}
