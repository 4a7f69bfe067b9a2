package websocket

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	ma "github.com/multiformats/go-multiaddr"
)

// ErrUnsupportedAddr is returned for addresses that are not WebSocket
// addresses this transport handles.
var ErrUnsupportedAddr = errors.New("websocket: not a /ip4|ip6|dns…/tcp/N/ws, /tls/ws or /wss address")

// wsAddr is a WebSocket multiaddr taken apart.
type wsAddr struct {
	host   string // an IP address, or a DNS name
	port   int
	dns    bool   // host is a DNS name (/dns, /dns4, /dns6)
	family int    // 4 or 6 for an IP address; for DNS 4 (/dns4), 6 (/dns6) or 0
	tls    bool   // /tls/ws, /tls/sni/NAME/ws or /wss
	sni    string // the /sni name, if any
}

// hostPort is the address to open a TCP connection to.
func (a wsAddr) hostPort() string { return net.JoinHostPort(a.host, strconv.Itoa(a.port)) }

// serverName is the name the server's certificate must carry: the /sni
// name, else the DNS name or IP address dialed.
func (a wsAddr) serverName() string {
	if a.sni != "" {
		return a.sni
	}
	return a.host
}

// tcpNetwork is the Go network to dial or listen on.
func (a wsAddr) tcpNetwork() string {
	switch a.family {
	case 4:
		return "tcp4"
	case 6:
		return "tcp6"
	}
	return "tcp"
}

// parseAddr takes a apart. It accepts /ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT
// followed by /ws, /wss, /tls/ws or /tls/sni/NAME/ws.
func parseAddr(a ma.Multiaddr) (wsAddr, error) {
	bad := func(why string) (wsAddr, error) {
		return wsAddr{}, fmt.Errorf("%w: %s: %s", ErrUnsupportedAddr, a, why)
	}
	if len(a) < 3 {
		return bad("too short")
	}
	var w wsAddr
	switch a[0].Code() {
	case ma.P_IP4:
		w.family = 4
	case ma.P_IP6:
		w.family = 6
	case ma.P_DNS:
		w.dns = true
	case ma.P_DNS4:
		w.dns, w.family = true, 4
	case ma.P_DNS6:
		w.dns, w.family = true, 6
	default:
		return bad("no IP address or DNS name first")
	}
	w.host = a[0].Value()
	if w.dns && !validName(w.host) {
		return bad("not a DNS name")
	}
	if a[1].Code() != ma.P_TCP {
		return bad("no /tcp after the host")
	}
	port, err := strconv.Atoi(a[1].Value())
	if err != nil || port < 0 || port > 65535 {
		return bad("bad TCP port")
	}
	w.port = port
	rest := a[2:]
	switch {
	case len(rest) == 1 && rest[0].Code() == ma.P_WS:
	case len(rest) == 1 && rest[0].Code() == ma.P_WSS:
		w.tls = true
	case len(rest) == 2 && rest[0].Code() == ma.P_TLS && rest[1].Code() == ma.P_WS:
		w.tls = true
	case len(rest) == 3 && rest[0].Code() == ma.P_TLS && rest[1].Code() == ma.P_SNI && rest[2].Code() == ma.P_WS:
		w.tls, w.sni = true, rest[1].Value()
		if !validName(w.sni) {
			return bad("/sni is not a DNS name")
		}
	default:
		return bad("not /ws, /wss, /tls/ws or /tls/sni/NAME/ws after the port")
	}
	return w, nil
}

// validName reports whether s can be a DNS name: letters, digits, '-',
// '_' and '.', at most 253 of them. Anything else could not be resolved
// or checked against a certificate, and would make a malformed URL.
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Suffixes of connection addresses: what follows /tcp/N in the local and
// remote address of a connection (the /sni name a dial checked the
// certificate against is no part of either end's address).
var (
	wsSuffix  = ma.StringCast("/ws")
	tlsSuffix = ma.StringCast("/tls/ws")
)

// withSuffix returns tcp (an /ip4|ip6/…/tcp/N address) followed by /ws,
// or /tls/ws when tls.
func withSuffix(tcp ma.Multiaddr, tls bool) ma.Multiaddr {
	if tls {
		return tcp.Encapsulate(tlsSuffix)
	}
	return tcp.Encapsulate(wsSuffix)
}
