package quic

import (
	"context"
	stdtls "crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/p2pnet/p2pnet/network"
	p2ptls "github.com/p2pnet/p2pnet/sec/tls"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"
)

// maxServiceUniStreams is how many unidirectional streams the remote may
// open on a connection of a service (and on any connection arriving on a
// socket a service shares): HTTP/3 opens three (control, QPACK encoder
// and decoder), go-libp2p allows five.
const maxServiceUniStreams = 5

// serviceQueueLen is how many established connections a ServiceListener
// holds for Accept; more are closed, so a slow consumer never stalls the
// socket's other listener.
const serviceQueueLen = 16

// ServiceListener accepts the QUIC connections of another application
// protocol than libp2p's (told apart by TLS ALPN, such as "h3" for
// WebTransport) on a UDP socket it shares with the transport's libp2p
// Listener of the same address, if any. Its connections are plain
// quic-go connections whose handshake completed: the service
// authenticates the peer itself.
//
// Its connections, and those of DialService, enable QUIC datagrams and
// stream resets with partial delivery, and let the remote open a few
// unidirectional streams, as HTTP/3 needs; while a ServiceListener
// shares a socket, every connection arriving on it does (the protocol is
// known only after the first packet chose the configuration).
type ServiceListener struct {
	t         *Transport
	ep        *endpoint
	acc       *acceptor
	alpn      string
	tlsConfig func(*stdtls.ClientHelloInfo) (*stdtls.Config, error)
	maddr     ma.Multiaddr

	conns     chan *quicgo.Conn
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
}

// ListenService listens on laddr, /ip4|ip6/IP/udp/PORT/quic-v1, for
// connections whose client offers alpn, sharing the socket with the
// transport's libp2p Listener when one listens on the same IP and port
// (or, for port 0, when one listens on the same IP). tlsConfig returns the
// configuration of each such handshake; its certificate is the service's
// and its NextProtos should hold alpn. alpn must not be "libp2p".
//
// An inbound connection counts against WithMaxHandshakes and is asked of
// the resource manager before its handshake, as the libp2p ones are (see
// Transport); once established it holds no scope until the service
// hands it one with SetConnScope.
func (t *Transport) ListenService(laddr ma.Multiaddr, alpn string, tlsConfig func(*stdtls.ClientHelloInfo) (*stdtls.Config, error)) (*ServiceListener, error) {
	if alpn == "" || alpn == p2ptls.ALPN || tlsConfig == nil {
		return nil, fmt.Errorf("%w: service ALPN %q", ErrInvalidOption, alpn)
	}
	ua, family, err := udpAddr(laddr)
	if err != nil {
		return nil, err
	}
	ep, err := t.listenEndpoint(ua, family, alpn)
	if err != nil {
		return nil, fmt.Errorf("quic listen %s (%s): %w", laddr, alpn, err)
	}
	remove := func() { delete(ep.services, alpn) }
	maddr, err := quicMultiaddr(ep.laddr)
	if err != nil {
		t.stopUse(ep, remove)
		return nil, err
	}
	acc, err := t.startAcceptor(ep)
	if err != nil {
		t.stopUse(ep, remove)
		return nil, fmt.Errorf("quic listen %s (%s): %w", laddr, alpn, err)
	}
	l := &ServiceListener{
		t:         t,
		ep:        ep,
		acc:       acc,
		alpn:      alpn,
		tlsConfig: tlsConfig,
		maddr:     maddr,
		conns:     make(chan *quicgo.Conn, serviceQueueLen),
		closing:   make(chan struct{}),
	}
	t.mu.Lock()
	ep.services[alpn] = l
	t.mu.Unlock()
	return l, nil
}

// handle queues a connection the accept loop took for Accept, counting it
// as a use of the socket until it ends; it closes it if the queue is full.
func (l *ServiceListener) handle(qc *quicgo.Conn) {
	st, _ := qc.Context().Value(connStateKey{}).(*connState)
	if st == nil { // connContext runs for every inbound connection
		qc.CloseWithError(codeNoError, "")
		return
	}
	st.endHandshake()
	l.t.acquireEndpoint(l.ep)
	context.AfterFunc(qc.Context(), func() { l.t.releaseEndpoint(l.ep) })
	select {
	case l.conns <- qc:
	default:
		qc.CloseWithError(codeNoError, "accept queue full")
	}
}

// Accept waits for the next connection, until ctx ends. It fails with
// ErrListenerClosed (matching net.ErrClosed) once the listener is closed,
// or with an error matching net.ErrClosed if the socket failed.
func (l *ServiceListener) Accept(ctx context.Context) (*quicgo.Conn, error) {
	select {
	case <-l.closing:
		return nil, ErrListenerClosed
	default:
	}
	select {
	case qc := <-l.conns:
		return qc, nil
	case <-l.closing:
		return nil, ErrListenerClosed
	case <-l.acc.done:
		return nil, l.acc.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops listening for the protocol; connections queued for Accept
// are closed, those accepted stay open.
func (l *ServiceListener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closing)
		l.t.stopUse(l.ep, func() { delete(l.ep.services, l.alpn) })
		for {
			select {
			case qc := <-l.conns:
				qc.CloseWithError(codeNoError, "")
			default:
				return
			}
		}
	})
	return nil
}

// Addr returns the UDP socket's address.
func (l *ServiceListener) Addr() *net.UDPAddr { return l.ep.laddr }

// Multiaddr returns the socket's address with /quic-v1, with the actual
// port.
func (l *ServiceListener) Multiaddr() ma.Multiaddr { return l.maddr }

// SetConnScope gives an accepted connection of a ServiceListener its
// resource scope, which then ends when the connection ends, and within
// which its receive window grows. It fails, ending scope, if the
// connection has ended meanwhile, or is not one of a ServiceListener's.
func SetConnScope(qc *quicgo.Conn, scope network.ConnManagementScope) error {
	st, _ := qc.Context().Value(connStateKey{}).(*connState)
	if st == nil || st.currentScope() != nil {
		scope.Done()
		return errors.New("quic: not a service connection without a scope")
	}
	return st.setScope(scope)
}

// DialService dials raddr, /ip4|ip6/IP/udp/PORT/quic-v1, with tlsConf
// (whose NextProtos name the service's ALPN, and which verifies the
// server itself), from the socket a Dial would use, and returns the
// connection once its handshake completed. The connection lives in
// scope, which DialService takes over: it ends when the connection ends,
// or at once if the dial fails.
func (t *Transport) DialService(ctx context.Context, raddr ma.Multiaddr, tlsConf *stdtls.Config, scope network.ConnManagementScope) (*quicgo.Conn, error) {
	st := &connState{t: t, scope: scope}
	ua, family, err := udpAddr(raddr)
	if err != nil {
		st.release()
		return nil, err
	}
	if slices.Contains(tlsConf.NextProtos, p2ptls.ALPN) {
		st.release()
		return nil, fmt.Errorf("%w: DialService with ALPN %q", ErrInvalidOption, p2ptls.ALPN)
	}
	ep, err := t.dialEndpoint(family, ua.IP)
	if err != nil {
		st.release()
		return nil, fmt.Errorf("quic dial %s: %w", raddr, err)
	}
	qc, err := ep.qt.Dial(context.WithValue(ctx, connStateKey{}, st), ua, tlsConf, t.serviceConfig)
	if err != nil {
		st.release()
		t.releaseEndpoint(ep)
		return nil, fmt.Errorf("quic dial %s: %w", raddr, remoteRefusal(err))
	}
	context.AfterFunc(qc.Context(), func() {
		st.release()
		t.releaseEndpoint(ep)
	})
	return qc, nil
}

// Abort closes the listener's UDP socket at once, as if the host had
// vanished: every connection on the socket stops without a word to its
// peer, which notices only when its idle timeout expires. It is for tests
// of a service's behaviour when its peer vanishes.
func (l *ServiceListener) Abort() { l.ep.close() }
