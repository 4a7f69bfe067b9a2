package quic

import (
	"context"
	"fmt"
	"net"

	p2ptls "github.com/p2pnet/p2pnet/sec/tls"

	quicgo "github.com/quic-go/quic-go"
)

// endpoint is one UDP socket and the quic-go Transport that owns it,
// carrying the libp2p listener, the listeners of other protocols sharing
// the socket (ServiceListener, told apart by ALPN), and the connections
// accepted by them or dialed from the socket.
//
// A listening endpoint lives while a listener is open or a connection
// uses it; a dial-only endpoint lives until Transport.Close.
type endpoint struct {
	udp      *net.UDPConn
	qt       *quicgo.Transport
	laddr    *net.UDPAddr // as bound, with the actual port
	family   int          // 4 or 6
	dialOnly bool

	// Guarded by Transport.mu.
	listening bool      // a Listen holds the endpoint
	listener  *Listener // set once that listener is ready; dials reuse the socket then
	// services are the ServiceListeners by ALPN; a nil value reserves
	// the ALPN for a ServiceListener being set up.
	services map[string]*ServiceListener
	acc      *acceptor // the quic-go listener, while any listener is set up
	conns    int       // connections and dials in progress using the socket
	closed   bool
}

// hasListenersLocked reports whether a listener of any protocol holds
// ep. The caller holds Transport.mu.
func (ep *endpoint) hasListenersLocked() bool {
	return ep.listening || len(ep.services) > 0
}

// udpNetwork returns the Go network name of a family.
func udpNetwork(family int) string {
	if family == 6 {
		return "udp6"
	}
	return "udp4"
}

// newEndpoint binds a UDP socket to laddr and wraps it in a quic-go
// Transport.
func (t *Transport) newEndpoint(laddr *net.UDPAddr, family int, dialOnly bool) (*endpoint, error) {
	udp, err := net.ListenUDP(udpNetwork(family), laddr)
	if err != nil {
		return nil, err
	}
	ep := &endpoint{
		udp:      udp,
		laddr:    udp.LocalAddr().(*net.UDPAddr),
		family:   family,
		dialOnly: dialOnly,
	}
	ep.qt = &quicgo.Transport{
		Conn:              udp,
		StatelessResetKey: &t.resetKey,
		TokenGeneratorKey: &t.tokenKey,
		ConnContext: func(ctx context.Context, info *quicgo.ClientInfo) (context.Context, error) {
			return t.connContext(ctx, ep, info)
		},
		VerifySourceAddress: t.verifySourceAddress,
	}
	return ep, nil
}

// close stops the quic-go Transport, which drops its connections without
// telling the peers, and closes the socket. It must not be called with
// Transport.mu held.
func (ep *endpoint) close() {
	ep.qt.Close()  // fails only for a socket that failed already
	ep.udp.Close() // quic-go leaves a socket it did not open to us
}

// dialEndpoint returns the endpoint to dial dst from, counting the dial
// as a use: a listening socket of the family that can reach dst, or else
// the family's dial-only socket, bound on first use.
func (t *Transport) dialEndpoint(family int, dst net.IP) (*endpoint, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrTransportClosed
	}
	if ep := t.listeningEndpointLocked(family, dst, false); ep != nil {
		ep.conns++
		return ep, nil
	}
	i := familyIndex(family)
	if t.dialers[i] == nil {
		ep, err := t.newEndpoint(unspecified(family), family, true)
		if err != nil {
			return nil, fmt.Errorf("binding a dial socket: %w", err)
		}
		t.dialers[i] = ep
	}
	return t.dialers[i], nil
}

// listeningEndpointLocked returns a listening endpoint of the family that
// can reach dst, or nil: one with a running libp2p listener, or when
// libp2pOnly is false one with any running listener. The caller holds
// t.mu.
func (t *Transport) listeningEndpointLocked(family int, dst net.IP, libp2pOnly bool) *endpoint {
	for _, ep := range t.endpoints {
		if ep.family != family || ep.acc == nil || (ep.listener == nil && (libp2pOnly || !ep.hasRunningServiceLocked())) {
			continue
		}
		// A socket bound to loopback reaches only loopback; one bound to
		// another specific address cannot reach loopback.
		ip := ep.laddr.IP
		if !ip.IsUnspecified() && ip.IsLoopback() != dst.IsLoopback() {
			continue
		}
		return ep
	}
	return nil
}

// acquireEndpoint counts one more connection using ep, which the caller
// knows to be open (its listener is running).
func (t *Transport) acquireEndpoint(ep *endpoint) {
	t.mu.Lock()
	ep.conns++
	t.mu.Unlock()
}

// releaseEndpoint ends one use of ep counted by dialEndpoint or
// acquireEndpoint, closing a listening endpoint that nothing uses any
// more.
func (t *Transport) releaseEndpoint(ep *endpoint) {
	if ep.dialOnly {
		return // lives until Transport.Close
	}
	t.mu.Lock()
	ep.conns--
	done := t.maybeForgetLocked(ep)
	t.mu.Unlock()
	if done {
		ep.close()
	}
}

// listenEndpoint returns the endpoint to listen on laddr for alpn
// (p2ptls.ALPN for the libp2p Listener, another for a ServiceListener),
// with that protocol reserved: the socket already bound to laddr where
// the protocol is free (a socket shared with the other protocols, or one
// whose listener was closed while its connections live on; for port 0,
// a socket of the IP listening for other protocols only), or else a new
// socket.
func (t *Transport) listenEndpoint(laddr *net.UDPAddr, family int, alpn string) (*endpoint, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrTransportClosed
	}
	for _, ep := range t.endpoints {
		if !ep.laddr.IP.Equal(laddr.IP) {
			continue
		}
		// Port 0 shares a socket listening for another protocol, as
		// go-libp2p does: QUIC and WebTransport on /udp/0 get one port.
		if laddr.Port == 0 && !ep.hasListenersLocked() || laddr.Port != 0 && ep.laddr.Port != laddr.Port {
			continue
		}
		if reserveLocked(ep, alpn) {
			return ep, nil
		}
	}
	ep, err := t.newEndpoint(laddr, family, false)
	if err != nil {
		return nil, err
	}
	reserveLocked(ep, alpn)
	t.endpoints = append(t.endpoints, ep)
	return ep, nil
}

// reserveLocked reserves alpn on ep if it is free there. The caller holds
// Transport.mu.
func reserveLocked(ep *endpoint, alpn string) bool {
	if alpn == p2ptls.ALPN {
		if ep.listening {
			return false
		}
		ep.listening = true
		return true
	}
	if _, taken := ep.services[alpn]; taken {
		return false
	}
	if ep.services == nil {
		ep.services = map[string]*ServiceListener{}
	}
	ep.services[alpn] = nil
	return true
}

// hasRunningServiceLocked reports whether a ServiceListener runs on ep.
// The caller holds Transport.mu.
func (ep *endpoint) hasRunningServiceLocked() bool {
	for _, s := range ep.services {
		if s != nil {
			return true
		}
	}
	return false
}

// startAcceptor starts ep's quic-go listener unless it runs already, and
// returns it.
func (t *Transport) startAcceptor(ep *endpoint) (*acceptor, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ep.acc != nil {
		return ep.acc, nil
	}
	conf := t.config.Clone()
	conf.GetConfigForClient = func(*quicgo.ClientInfo) (*quicgo.Config, error) {
		// The ALPN is not known yet: while another protocol shares
		// the socket, every connection gets what it needs.
		t.mu.Lock()
		shared := len(ep.services) > 0
		t.mu.Unlock()
		if shared {
			return t.serviceConfig, nil
		}
		return t.config, nil
	}
	ql, err := ep.qt.Listen(t.serverTLS, conf)
	if err != nil {
		return nil, err
	}
	acc := &acceptor{ql: ql, done: make(chan struct{})}
	ep.acc = acc
	go acc.run(t, ep)
	return acc, nil
}

// setListener makes ep's socket available to dials, now that l runs.
func (t *Transport) setListener(ep *endpoint, l *Listener) {
	t.mu.Lock()
	ep.listener = l
	t.mu.Unlock()
}

// stopListening ends the libp2p listen use of ep (see stopUse).
func (t *Transport) stopListening(ep *endpoint) {
	t.stopUse(ep, func() {
		ep.listening = false
		ep.listener = nil
	})
}

// stopUse ends one listen use of ep, which remove undoes with t.mu held:
// the quic-go listener stops with the last listener, and the socket
// closes if no connection uses it either.
func (t *Transport) stopUse(ep *endpoint, remove func()) {
	t.mu.Lock()
	remove()
	var acc *acceptor
	if !ep.hasListenersLocked() {
		acc, ep.acc = ep.acc, nil
	}
	t.mu.Unlock()
	if acc != nil {
		acc.close()
	}
	t.mu.Lock()
	done := t.maybeForgetLocked(ep)
	t.mu.Unlock()
	if done {
		ep.close()
	}
}

// maybeForgetLocked removes ep from t.endpoints when nothing uses it and
// reports whether the caller must close it. The caller holds t.mu.
func (t *Transport) maybeForgetLocked(ep *endpoint) bool {
	if ep.hasListenersLocked() || ep.acc != nil || ep.conns > 0 || ep.closed {
		return false
	}
	ep.closed = true
	for i, x := range t.endpoints {
		if x == ep {
			t.endpoints = append(t.endpoints[:i:i], t.endpoints[i+1:]...)
			break
		}
	}
	return true
}

func familyIndex(family int) int {
	if family == 6 {
		return 1
	}
	return 0
}

func unspecified(family int) *net.UDPAddr {
	if family == 6 {
		return &net.UDPAddr{IP: net.IPv6unspecified}
	}
	return &net.UDPAddr{IP: net.IPv4zero}
}
