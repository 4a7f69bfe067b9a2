package quic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	p2ptls "github.com/p2pnet/p2pnet/sec/tls"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"
)

// Listener accepts QUIC connections on one UDP socket. It implements
// transport.Listener; Accept returns *Conn values.
//
// The socket's accept loop (see acceptor) takes each connection whose
// handshake completed with ALPN "libp2p", opens its scope in the resource
// manager and sets its peer, and hands it to a hole-punching Dial
// waiting for it, or else to Accept.
type Listener struct {
	t     *Transport
	ep    *endpoint
	acc   *acceptor
	maddr ma.Multiaddr

	conns     chan *Conn    // from the accept loop to Accept
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
}

var _ transport.Listener = (*Listener)(nil)

// newListener starts listening on ep, which listenEndpoint reserved.
func newListener(t *Transport, ep *endpoint) (*Listener, error) {
	maddr, err := quicMultiaddr(ep.laddr)
	if err != nil {
		return nil, err
	}
	acc, err := t.startAcceptor(ep)
	if err != nil {
		return nil, err
	}
	l := &Listener{
		t:       t,
		ep:      ep,
		acc:     acc,
		maddr:   maddr,
		conns:   make(chan *Conn),
		closing: make(chan struct{}),
	}
	t.setListener(ep, l)
	return l, nil
}

// acceptor runs the quic-go listener of a socket and hands each
// connection whose handshake completed to the listener of the protocol
// it negotiated.
type acceptor struct {
	ql   *quicgo.Listener
	done chan struct{} // closed when run returns
	err  error         // why run returned; written before done is closed
}

// run takes the connections quic-go established until the quic-go
// listener closes.
func (a *acceptor) run(t *Transport, ep *endpoint) {
	defer close(a.done)
	for {
		qc, err := a.ql.Accept(context.Background())
		if err != nil {
			a.err = fmt.Errorf("quic listener %s: %w", ep.laddr, err)
			return
		}
		alpn := qc.ConnectionState().TLS.NegotiatedProtocol
		t.mu.Lock()
		l, svc := ep.listener, ep.services[alpn]
		t.mu.Unlock()
		switch {
		case alpn == p2ptls.ALPN && l != nil:
			l.handle(qc)
		case alpn != p2ptls.ALPN && svc != nil:
			svc.handle(qc)
		default: // its listener closed during the handshake
			qc.CloseWithError(codeNoError, "")
		}
	}
}

// close stops the quic-go listener and waits for run to return.
func (a *acceptor) close() {
	a.ql.Close() // never fails
	<-a.done
}

// Accept waits for the next inbound connection. It fails with
// ErrListenerClosed (matching net.ErrClosed) once the listener is
// closed, or with an error matching net.ErrClosed if the socket failed.
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
	case <-l.acc.done:
		return nil, l.acc.err
	}
}

// handle sets up a connection the accept loop took and hands it to a
// hole-punching Dial or to Accept.
func (l *Listener) handle(qc *quicgo.Conn) {
	c := l.setUp(qc)
	if c == nil || l.t.deliverPunched(c) {
		return
	}
	select {
	case l.conns <- c:
	case <-l.closing:
		c.Close()
	}
}

// setUp wraps an inbound connection whose handshake completed: it opens
// the connection's scope and sets its peer, or closes the connection and
// returns nil when the resource manager refuses it.
func (l *Listener) setUp(qc *quicgo.Conn) *Conn {
	st, _ := qc.Context().Value(connStateKey{}).(*connState)
	if st == nil { // connContext runs for every inbound connection
		qc.CloseWithError(codeNoError, "")
		return nil
	}
	st.endHandshake()
	c, err := l.wrap(qc, st)
	if t := l.t.tracer; t != nil {
		t.Handshake(network.DirInbound, Name, time.Since(st.start), err)
	}
	if err != nil {
		if errors.Is(err, network.ErrResourceLimitExceeded) {
			l.t.refusedLimits.Add(1)
			refuse(qc, err)
		} else if errors.Is(err, connmgr.ErrGated) {
			qc.CloseWithError(quicgo.ApplicationErrorCode(network.ConnGated), "gated")
		} else {
			qc.CloseWithError(codeNoError, "")
		}
		st.release()
		return nil
	}
	return c
}

// wrap opens the scope of qc's connection, sets its peer and wraps it.
func (l *Listener) wrap(qc *quicgo.Conn, st *connState) (*Conn, error) {
	var key ic.PubKey
	select {
	case key = <-st.keys:
	default:
	}
	if key == nil {
		return nil, ErrNoRemoteKey
	}
	remote, err := peer.IDFromPublicKey(key)
	if err != nil {
		return nil, err
	}
	raddr, err := quicMultiaddr(qc.RemoteAddr())
	if err != nil {
		return nil, err
	}
	if g := l.t.gater; g != nil {
		ca := connAddrs{l.maddr, raddr}
		if !g.InterceptAccept(ca) {
			return nil, &connmgr.GatedError{Hook: connmgr.HookAccept, Addr: raddr}
		}
		if !g.InterceptSecured(network.DirInbound, remote, ca) {
			return nil, &connmgr.GatedError{Hook: connmgr.HookSecured, Peer: remote, Addr: raddr}
		}
	}
	scope, err := l.t.rcmgr.OpenConnection(network.DirInbound, false, raddr)
	if err != nil {
		return nil, err
	}
	if err := st.setScope(scope); err != nil {
		return nil, err
	}
	if err := scope.SetPeer(remote); err != nil {
		return nil, err
	}
	l.t.acquireEndpoint(l.ep)
	c, err := newConn(l.t, qc, st, l.ep, remote, key, raddr)
	if err != nil {
		l.t.releaseEndpoint(l.ep)
		return nil, err
	}
	return c, nil
}

// Close stops listening: handshakes in progress are refused, and
// connections established but not yet accepted are closed. Connections
// already accepted stay open, and the socket with them (and with a
// ServiceListener sharing it).
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closing)
		l.t.stopListening(l.ep)
	})
	return nil
}

// Addr returns the UDP socket's address.
func (l *Listener) Addr() net.Addr { return l.ep.laddr }

// Multiaddr returns the address listened on, with the actual port.
func (l *Listener) Multiaddr() ma.Multiaddr { return l.maddr }
