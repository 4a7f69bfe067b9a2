package webtransport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/quic"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	wt "github.com/quic-go/webtransport-go"
)

// ErrListenerClosed is returned by Accept once the listener is closed. It
// matches net.ErrClosed.
var ErrListenerClosed = fmt.Errorf("webtransport: listener closed: %w", net.ErrClosed)

// acceptQueueLen is how many established sessions wait for Accept.
const acceptQueueLen = 16

// Listener accepts WebTransport sessions. It implements
// transport.Listener; Accept returns *Conn values.
//
// One goroutine takes the QUIC connections whose TLS handshake completed
// with ALPN h3, opens their scopes and serves HTTP/3 on each (a goroutine
// per connection, webtransport-go's, until the connection ends); the
// HTTP handler upgrades the CONNECT request to a session, runs the Noise
// handshake as the responder and queues the connection for Accept.
type Listener struct {
	t      *Transport
	sl     *quic.ServiceListener
	server *wt.Server
	maddr  ma.Multiaddr  // without the certificate hashes
	sem    chan struct{} // a slot per inbound connection in its handshakes (WithMaxHandshakes)

	conns      chan *Conn
	closing    chan struct{} // closed by Close
	acceptDone chan struct{} // closed when the accept loop returns
	acceptErr  error         // why it returned; written before acceptDone is closed
	closeOnce  sync.Once

	// slotTaken, when set (by tests), is called each time an inbound
	// connection takes a handshake slot.
	slotTaken func()

	mu      sync.Mutex // guards the following
	pending map[*quicgo.Conn]*pendingConn
}

var _ transport.Listener = (*Listener)(nil)

// pendingConn is an inbound connection between its QUIC handshake and the
// end of its Noise handshake.
type pendingConn struct {
	scope    network.ConnManagementScope
	deadline time.Time
	timer    *time.Timer // closes the connection at deadline
	release  func()      // gives the handshake slot back, once
	claimed  bool        // a session is being set up; guarded by Listener.mu
}

// connKey is the context key of an HTTP request's QUIC connection.
type connKey struct{}

func newListener(t *Transport, sl *quic.ServiceListener) (*Listener, error) {
	maddr, err := wtMultiaddr(sl.Addr())
	if err != nil {
		return nil, err
	}
	l := &Listener{
		t:          t,
		sl:         sl,
		maddr:      maddr,
		sem:        make(chan struct{}, t.opts.maxHandshakes),
		conns:      make(chan *Conn, acceptQueueLen),
		closing:    make(chan struct{}),
		acceptDone: make(chan struct{}),
		pending:    map[*quicgo.Conn]*pendingConn{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc(Path, l.serveHTTP)
	l.server = &wt.Server{
		H3: &http3.Server{
			Handler:         mux,
			EnableDatagrams: true,
			ConnContext: func(ctx context.Context, qc *quicgo.Conn) context.Context {
				return context.WithValue(ctx, connKey{}, qc)
			},
		},
		// Browsers send the Origin of the page that dials, any page: the
		// Noise handshake, not the origin, authenticates the session.
		CheckOrigin: func(*http.Request) bool { return true },
		// Session flow-control limits that never bind (QUIC's and the
		// resource manager's do): without them Safari never opens a
		// stream on the session.
		Config: &wt.Config{MaxIncomingStreams: 1 << 60, MaxIncomingUniStreams: 1 << 60, MaxIncomingData: 1 << 60},
	}
	go l.acceptLoop()
	return l, nil
}

// acceptLoop takes the QUIC connections until the listener closes.
func (l *Listener) acceptLoop() {
	defer close(l.acceptDone)
	for {
		qc, err := l.sl.Accept(context.Background()) // fails once Close closed sl
		if err != nil {
			l.acceptErr = err
			return
		}
		l.start(qc)
	}
}

// start opens qc's scope, arms its handshake timeout and serves HTTP/3
// on it.
func (l *Listener) start(qc *quicgo.Conn) {
	select {
	case l.sem <- struct{}{}:
	default:
		qc.CloseWithError(quicRejected, "too many handshakes")
		return
	}
	release := sync.OnceFunc(func() { <-l.sem })
	if l.slotTaken != nil {
		l.slotTaken()
	}
	raddr, err := wtMultiaddr(qc.RemoteAddr())
	if err != nil {
		release()
		qc.CloseWithError(quicRejected, "")
		return
	}
	if g := l.t.opts.gater; g != nil && !g.InterceptAccept(connAddrs{l.maddr, raddr}) {
		release()
		qc.CloseWithError(quicgo.ApplicationErrorCode(network.ConnGated), "gated")
		return
	}
	scope, err := l.t.rcmgr.OpenConnection(network.DirInbound, false, raddr)
	if err != nil {
		release()
		qc.CloseWithError(quicRejected, "resource limit exceeded")
		return
	}
	if err := quic.SetConnScope(qc, scope); err != nil { // ends scope on failure
		release()
		qc.CloseWithError(quicRejected, "")
		return
	}
	timeout := l.t.opts.handshakeTimeout
	pc := &pendingConn{
		scope:    scope,
		deadline: time.Now().Add(timeout),
		timer:    time.AfterFunc(timeout, func() { qc.CloseWithError(quicRejected, "handshake timeout") }),
		release:  release,
	}
	l.mu.Lock()
	l.pending[qc] = pc
	l.mu.Unlock()
	context.AfterFunc(qc.Context(), func() { l.done(qc) })
	go l.server.ServeQUICConn(qc) // returns when qc ends
}

// done forgets a pending connection, whose handshakes ended or which
// closed, giving its handshake slot back, and reports whether it was
// pending.
func (l *Listener) done(qc *quicgo.Conn) bool {
	l.mu.Lock()
	pc, ok := l.pending[qc]
	delete(l.pending, qc)
	l.mu.Unlock()
	if ok {
		pc.timer.Stop()
		pc.release()
	}
	return ok
}

// serveHTTP handles the CONNECT request of a session: it upgrades it,
// runs the Noise handshake and queues the connection for Accept.
func (l *Listener) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if typ := r.URL.Query()["type"]; len(typ) != 1 || typ[0] != "noise" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	qc, _ := r.Context().Value(connKey{}).(*quicgo.Conn)
	l.mu.Lock()
	pc := l.pending[qc]
	if pc != nil && pc.claimed {
		pc = nil
	} else if pc != nil {
		pc.claimed = true
	}
	l.mu.Unlock()
	if qc == nil || pc == nil { // a second session on the connection, or too late
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	sess, err := l.server.Upgrade(w, r)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		qc.CloseWithError(quicRejected, "")
		return
	}
	c, err := l.handshake(qc, sess, pc)
	if err != nil {
		sess.CloseWithError(codeRefused, "")
		qc.CloseWithError(quicRejected, "")
		return
	}
	select {
	case l.conns <- c:
	case <-l.closing:
		c.Close()
	}
}

// handshake runs the Noise handshake in the session's first stream and
// sets the connection's peer.
func (l *Listener) handshake(qc *quicgo.Conn, sess *wt.Session, pc *pendingConn) (*Conn, error) {
	ctx, cancel := context.WithDeadline(context.Background(), pc.deadline)
	defer cancel()
	stop := context.AfterFunc(qc.Context(), cancel)
	defer stop()
	str, err := sess.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	hashes, err := l.t.certs.noiseHashes()
	if err != nil {
		return nil, err
	}
	n, err := l.t.noise.WithCertHashes(hashes)
	if err != nil {
		return nil, err
	}
	sc, err := n.SecureInbound(ctx, &handshakeStream{str, sess}, "")
	if err != nil {
		return nil, err
	}
	sc.Close() // closes our side of the stream; the remote closes its own
	if err := pc.scope.SetPeer(sc.RemotePeer()); err != nil {
		return nil, err
	}
	if !l.done(qc) {
		return nil, errors.New("webtransport: handshake timed out")
	}
	laddr, err := wtMultiaddr(qc.LocalAddr())
	if err != nil {
		return nil, err
	}
	raddr, err := wtMultiaddr(qc.RemoteAddr())
	if err != nil {
		return nil, err
	}
	if g := l.t.opts.gater; g != nil && !g.InterceptSecured(network.DirInbound, sc.RemotePeer(), connAddrs{laddr, raddr}) {
		return nil, &connmgr.GatedError{Hook: connmgr.HookSecured, Peer: sc.RemotePeer(), Addr: raddr}
	}
	return newConn(l.t, qc, sess, sc.RemotePeer(), sc.RemotePublicKey(), laddr, raddr, pc.scope), nil
}

// Accept waits for the next inbound session. It fails with
// ErrListenerClosed (matching net.ErrClosed) once the listener is closed,
// or with an error matching net.ErrClosed if the socket failed.
func (l *Listener) Accept() (transport.CapableConn, error) {
	select {
	case <-l.closing:
		return nil, ErrListenerClosed
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closing:
		return nil, ErrListenerClosed
	case <-l.acceptDone:
		return nil, l.acceptErr
	}
}

// Close stops listening: connections in their handshakes and sessions
// not yet accepted are closed; sessions accepted stay open, and the
// socket with them (and with a QUIC listener sharing it).
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closing)
		l.sl.Close()
		<-l.acceptDone
		l.mu.Lock()
		pending := make([]*quicgo.Conn, 0, len(l.pending))
		for qc := range l.pending {
			pending = append(pending, qc)
		}
		l.mu.Unlock()
		for _, qc := range pending {
			qc.CloseWithError(quicNoError, "")
		}
		for {
			select {
			case c := <-l.conns:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

// Addr returns the UDP socket's address.
func (l *Listener) Addr() net.Addr { return l.sl.Addr() }

// Multiaddr returns the address to dial: the listening address with the
// actual port and the hashes of the current and the next certificate.
func (l *Listener) Multiaddr() ma.Multiaddr {
	hashes, err := l.t.certs.addrSuffix()
	if err != nil {
		return l.maddr
	}
	return append(append(ma.Multiaddr(nil), l.maddr...), hashes...)
}
