package quic

import (
	"context"
	"fmt"
	"net"
	"sync"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"
)

// Listener accepts QUIC connections on one UDP socket. It implements
// transport.Listener; Accept returns *Conn values.
//
// One goroutine takes each connection whose handshake completed, sets its
// scope's peer, and hands it to a hole-punching Dial waiting for it, or
// else to Accept.
type Listener struct {
	t     *Transport
	ep    *endpoint
	ql    *quicgo.Listener
	maddr ma.Multiaddr

	conns     chan *Conn    // from the accept loop to Accept
	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when the accept loop returns
	err       error         // why the accept loop returned; written before done is closed
	closeOnce sync.Once
}

var _ transport.Listener = (*Listener)(nil)

// newListener starts listening on ep, which listenEndpoint reserved.
func newListener(t *Transport, ep *endpoint) (*Listener, error) {
	maddr, err := quicMultiaddr(ep.laddr)
	if err != nil {
		return nil, err
	}
	ql, err := ep.qt.Listen(t.serverTLS, t.config)
	if err != nil {
		return nil, err
	}
	l := &Listener{
		t:       t,
		ep:      ep,
		ql:      ql,
		maddr:   maddr,
		conns:   make(chan *Conn),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	t.setListener(ep, l)
	go l.acceptLoop()
	return l, nil
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
	case <-l.done:
		return nil, l.err
	}
}

// acceptLoop takes the connections quic-go established until the
// listener closes.
func (l *Listener) acceptLoop() {
	defer close(l.done)
	for {
		qc, err := l.ql.Accept(context.Background())
		if err != nil {
			l.err = fmt.Errorf("quic listener %s: %w", l.maddr, err)
			return
		}
		c := l.setUp(qc)
		if c == nil || l.t.deliverPunched(c) {
			continue
		}
		select {
		case l.conns <- c:
		case <-l.closing:
			c.Close()
		}
	}
}

// setUp wraps an established inbound connection, or closes it and
// returns nil when its scope refuses the peer.
func (l *Listener) setUp(qc *quicgo.Conn) *Conn {
	st, _ := qc.Context().Value(connStateKey{}).(*connState)
	if st == nil { // connContext runs for every inbound connection
		qc.CloseWithError(codeNoError, "")
		return nil
	}
	st.endHandshake()
	var key ic.PubKey
	select {
	case key = <-st.keys:
	default:
	}
	var remote peer.ID
	err := ErrNoRemoteKey
	if key != nil {
		remote, err = peer.IDFromPublicKey(key)
	}
	if err == nil {
		if err = st.scope.SetPeer(remote); err != nil {
			qc.CloseWithError(codeResourceLimitExceeded, "resource limit exceeded")
			st.release()
			return nil
		}
	}
	if err == nil {
		l.t.acquireEndpoint(l.ep)
		var c *Conn
		if c, err = newConn(l.t, qc, st, l.ep, remote, key, nil); err == nil {
			return c
		}
		l.t.releaseEndpoint(l.ep)
	}
	qc.CloseWithError(codeNoError, "")
	st.release()
	return nil
}

// Close stops listening: handshakes in progress are refused, and
// connections established but not yet accepted are closed. Connections
// already accepted stay open, and the socket with them.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closing)
		l.ql.Close() // never fails
		<-l.done
		l.t.stopListening(l.ep)
	})
	return nil
}

// Addr returns the UDP socket's address.
func (l *Listener) Addr() net.Addr { return l.ep.laddr }

// Multiaddr returns the address listened on, with the actual port.
func (l *Listener) Multiaddr() ma.Multiaddr { return l.maddr }
