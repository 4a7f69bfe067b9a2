package quic

import (
	"fmt"
	"net"

	quicgo "github.com/quic-go/quic-go"
)

// endpoint is one UDP socket and the quic-go Transport that owns it,
// carrying a listener and the connections accepted by it or dialed from
// the socket.
//
// A listening endpoint lives while its listener is open or a connection
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
	conns     int       // connections and dials in progress using the socket
	closed    bool
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
	return &endpoint{
		udp: udp,
		qt: &quicgo.Transport{
			Conn:                udp,
			StatelessResetKey:   &t.resetKey,
			TokenGeneratorKey:   &t.tokenKey,
			ConnContext:         t.connContext,
			VerifySourceAddress: t.verifySourceAddress,
		},
		laddr:    udp.LocalAddr().(*net.UDPAddr),
		family:   family,
		dialOnly: dialOnly,
	}, nil
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
	if ep := t.listeningEndpointLocked(family, dst); ep != nil {
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
// can reach dst, or nil. The caller holds t.mu.
func (t *Transport) listeningEndpointLocked(family int, dst net.IP) *endpoint {
	for _, ep := range t.endpoints {
		if ep.family != family || ep.listener == nil {
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

// listenEndpoint returns the endpoint to listen on laddr, marked as
// listening: a new socket, or the socket of a closed listener whose
// connections still use it.
func (t *Transport) listenEndpoint(laddr *net.UDPAddr, family int) (*endpoint, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrTransportClosed
	}
	if laddr.Port != 0 {
		for _, ep := range t.endpoints {
			if !ep.listening && ep.laddr.Port == laddr.Port && ep.laddr.IP.Equal(laddr.IP) {
				ep.listening = true
				return ep, nil
			}
		}
	}
	ep, err := t.newEndpoint(laddr, family, false)
	if err != nil {
		return nil, err
	}
	ep.listening = true
	t.endpoints = append(t.endpoints, ep)
	return ep, nil
}

// setListener makes ep's socket available to dials, now that l runs.
func (t *Transport) setListener(ep *endpoint, l *Listener) {
	t.mu.Lock()
	ep.listener = l
	t.mu.Unlock()
}

// stopListening ends the listen use of ep, closing it if no connection
// uses it.
func (t *Transport) stopListening(ep *endpoint) {
	t.mu.Lock()
	ep.listening = false
	ep.listener = nil
	done := t.maybeForgetLocked(ep)
	t.mu.Unlock()
	if done {
		ep.close()
	}
}

// maybeForgetLocked removes ep from t.endpoints when nothing uses it and
// reports whether the caller must close it. The caller holds t.mu.
func (t *Transport) maybeForgetLocked(ep *endpoint) bool {
	if ep.listening || ep.conns > 0 || ep.closed {
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
