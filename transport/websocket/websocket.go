// Package websocket is the WebSocket transport, the one every browser can
// open: it dials and listens on /ip4|ip6/…/tcp/N/ws addresses, and on
// /…/tcp/N/tls/ws (alias /wss) for WebSocket over TLS; it dials
// /dns|dns4|dns6 names too, and /tls/sni/NAME/ws. Binary WebSocket
// messages carry the byte stream, which the upgrader secures (Noise or
// TLS) and multiplexes (yamux) as it does a TCP connection's.
//
// A listener answers the HTTP upgrade request of each connection inside
// the upgrader's handshake, so the upgrader's timeout, handshake slots and
// resource accounting cover it as they cover the security handshake. A
// /tls/ws listener needs a certificate (WithTLSConfig); a dial checks the
// server's certificate as a browser does, against the system's roots (or
// WithDialTLSConfig's) and the /sni name, else the DNS name or IP address
// dialed.
//
// The WebSocket protocol itself (RFC 6455) is github.com/gorilla/websocket,
// the library go-libp2p uses.
//
// It may import network, transport, upgrader and the vocabulary packages.
package websocket

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Name is the transport's name in network.ConnectionState.
const Name = "websocket"

// DefaultKeepAlive is the TCP keep-alive period of every connection.
const DefaultKeepAlive = 15 * time.Second

// ErrNoTLSConfig is returned by Listen for a /tls/ws or /wss address when
// the transport has no server certificate (WithTLSConfig).
var ErrNoTLSConfig = errors.New("websocket: listening on /tls/ws needs a TLS certificate")

// Transport is the WebSocket transport.
type Transport struct {
	upgrader  *upgrader.Upgrader
	rcmgr     network.ResourceManager
	serverTLS *tls.Config // nil: no /tls/ws listeners
	clientTLS *tls.Config // nil: the system's roots
}

var _ transport.Transport = (*Transport)(nil)

// Option configures a Transport.
type Option func(*Transport)

// WithTLSConfig gives /tls/ws (and /wss) listeners their TLS
// configuration, with the server's certificate. The transport uses a copy
// that offers only HTTP/1.1 in ALPN. Default: none, and listening on
// /tls/ws fails with ErrNoTLSConfig.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(t *Transport) { t.serverTLS = cfg }
}

// WithDialTLSConfig is the TLS configuration /tls/ws dials start from
// (for example RootCAs, to trust a private certificate authority); each
// dial sets ServerName to the name it checks the certificate against.
// Default: the system's roots, as a browser.
func WithDialTLSConfig(cfg *tls.Config) Option {
	return func(t *Transport) { t.clientTLS = cfg }
}

// New returns a WebSocket transport that upgrades its connections with u
// and accounts for them in rcmgr (nil means network.NullResourceManager).
func New(u *upgrader.Upgrader, rcmgr network.ResourceManager, opts ...Option) *Transport {
	if rcmgr == nil {
		rcmgr = &network.NullResourceManager{}
	}
	t := &Transport{upgrader: u, rcmgr: rcmgr}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Protocols returns ma.P_WS and ma.P_WSS.
func (t *Transport) Protocols() []int { return []int{ma.P_WS, ma.P_WSS} }

// CanDial reports whether addr is a WebSocket address the transport
// dials: /ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT followed by /ws, /wss,
// /tls/ws or /tls/sni/NAME/ws.
func (t *Transport) CanDial(addr ma.Multiaddr) bool {
	_, err := parseAddr(addr)
	return err == nil
}

// KeepName implements transport.NameKeeper: a /wss or /tls/ws address
// with a DNS name and no /sni gets /tls/sni/NAME/ws, so that the name
// survives the swarm's DNS resolution and the dial checks the server's
// certificate against it.
func (t *Transport) KeepName(addr ma.Multiaddr) ma.Multiaddr {
	w, err := parseAddr(addr)
	if err != nil || !w.dns || !w.tls || w.sni != "" {
		return addr
	}
	sni, err := ma.NewComponent("sni", w.host)
	if err != nil {
		return addr
	}
	out := append(ma.Multiaddr(nil), addr[:2]...)
	out = append(out, tlsSuffix[0], *sni, wsSuffix[0])
	return out
}

// Dial connects to p at raddr, reserving the connection in the resource
// manager first, runs the WebSocket handshake (after TLS for /tls/ws) and
// upgrades the connection. When p refuses our preferred security
// protocol, the upgrader dials raddr once more, under the same
// reservation, to offer the others.
func (t *Transport) Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.CapableConn, error) {
	w, err := parseAddr(raddr)
	if err != nil {
		return nil, err
	}
	scope, err := t.rcmgr.OpenConnection(network.DirOutbound, true, raddr)
	if err != nil {
		return nil, fmt.Errorf("websocket dial %s: %w", raddr, err)
	}
	dial := func(ctx context.Context) (net.Conn, ma.Multiaddr, error) {
		c, err := t.dialConn(ctx, w, raddr)
		if err != nil {
			return nil, nil, fmt.Errorf("websocket dial %s: %w", raddr, err)
		}
		return c, c.laddr, nil
	}
	raw, laddr, err := dial(ctx)
	if err != nil {
		scope.Done()
		return nil, err
	}
	c, err := t.upgrader.UpgradeOutbound(ctx, raw, dial, p, scope, laddr, raddr, Name)
	if err != nil {
		return nil, err // UpgradeOutbound released raw and scope.
	}
	return c, nil
}

// dialConn opens a TCP connection to w, runs the TLS handshake if w says
// so, then the WebSocket handshake.
func (t *Transport) dialConn(ctx context.Context, w wsAddr, raddr ma.Multiaddr) (*Conn, error) {
	d := net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: DefaultKeepAlive, Interval: DefaultKeepAlive}}
	tcpConn, err := d.DialContext(ctx, w.tcpNetwork(), w.hostPort())
	if err != nil {
		return nil, err
	}
	tcpLocal, err := manet.FromNetAddr(tcpConn.LocalAddr())
	if err != nil {
		tcpConn.Close()
		return nil, err
	}
	sock := tcpConn
	if w.tls {
		cfg := &tls.Config{}
		if t.clientTLS != nil {
			cfg = t.clientTLS.Clone()
		}
		cfg.ServerName = w.serverName()
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(tcpConn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			tcpConn.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		sock = tc
	}
	dc := &deadlineConn{Conn: sock}
	host := net.JoinHostPort(w.serverName(), strconv.Itoa(w.port))
	ws, err := clientHandshake(ctx, dc, host, w.tls)
	if err != nil {
		sock.Close()
		return nil, err
	}
	return newConn(dc, ws, withSuffix(tcpLocal, w.tls), raddr), nil
}

// Listen listens on laddr, /ip4|ip6/IP/tcp/PORT followed by /ws, /tls/ws
// or /wss, and returns a listener of upgraded connections. Its Multiaddr
// has the actual port and laddr's WebSocket suffix.
func (t *Transport) Listen(laddr ma.Multiaddr) (transport.Listener, error) {
	w, err := parseAddr(laddr)
	if err != nil {
		return nil, err
	}
	if w.dns || w.sni != "" {
		return nil, fmt.Errorf("%w: %s: listen on an IP address, with /ws, /tls/ws or /wss", ErrUnsupportedAddr, laddr)
	}
	var tlsConf *tls.Config
	if w.tls {
		if t.serverTLS == nil {
			return nil, fmt.Errorf("websocket listen %s: %w", laddr, ErrNoTLSConfig)
		}
		tlsConf = t.serverTLS.Clone()
		tlsConf.NextProtos = []string{"http/1.1"}
	}
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: DefaultKeepAlive, Interval: DefaultKeepAlive}}
	// tcp4 or tcp6, never "tcp" (see transport/tcp).
	nl, err := lc.Listen(context.Background(), w.tcpNetwork(), w.hostPort())
	if err != nil {
		return nil, fmt.Errorf("websocket listen %s: %w", laddr, err)
	}
	tcpActual, err := manet.FromNetAddr(nl.Addr())
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("websocket listen %s: %w", laddr, err)
	}
	l := &listener{Listener: nl, tls: tlsConf, laddr: withSuffix(tcpActual, w.tls)}
	return t.upgrader.Listen(l, tcpActual.Encapsulate(laddr[2:]), Name, nil), nil
}

// Close does nothing: the transport has no shared resources of its own.
func (t *Transport) Close() error { return nil }

// listener hands out the TCP connections of a WebSocket listener as
// inbound Conns, whose handshakes (TLS, then WebSocket) run inside the
// upgrader's.
type listener struct {
	net.Listener
	tls   *tls.Config // nil for /ws
	laddr ma.Multiaddr
}

// Accept returns the next connection.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		raddr, err := manet.FromNetAddr(c.RemoteAddr())
		if err != nil {
			c.Close()
			continue
		}
		sock := c
		if l.tls != nil {
			sock = tls.Server(c, l.tls)
		}
		return newConn(&deadlineConn{Conn: sock}, nil, l.laddr, withSuffix(raddr, l.tls != nil)), nil
	}
}
