package websocket_test

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/p2pnet/p2pnet/internal/conformance"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// TestConformance runs the behaviour suite over {Noise, TLS} × yamux on
// /ws and /tls/ws, IPv4 and IPv6.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		security, listen string
		big              int // 0: the suite's 100 MiB
	}{
		{"noise", "/ip4/127.0.0.1/tcp/0/ws", 0},
		{"tls", "/ip4/127.0.0.1/tcp/0/ws", 32 << 20}, // the security protocol's own tests move more
		{"noise", "/ip4/127.0.0.1/tcp/0/tls/ws", 32 << 20},
		{"tls", "/ip4/127.0.0.1/tcp/0/tls/ws", 32 << 20},
		{"noise", "/ip6/::1/tcp/0/ws", 16 << 20}, // the family changes nothing in a long transfer
		{"tls", "/ip6/::1/tcp/0/ws", 16 << 20},
	} {
		t.Run(tc.security+tc.listen, func(t *testing.T) {
			conformance.Run(t, func(t *testing.T) conformance.Pair {
				a, b := tlsNodes(t, tc.security)
				l := listen(t, b, tc.listen)
				p := newProxy(t, l.Multiaddr())
				d, s := connect(t, a, p.addr, l, b.id)
				return conformance.Pair{Dialer: d, Listener: s, Kill: p.kill}
			}, conformance.Options{BigTransfer: tc.big})
		})
	}
}

// proxy forwards one TCP connection to a listener, so that a test can cut
// it as a vanishing peer would: both sockets closed, no WebSocket close
// frame, no yamux GoAway.
type proxy struct {
	addr ma.Multiaddr // the proxy's address, with the target's suffix
	nl   net.Listener
	wg   sync.WaitGroup

	mu     sync.Mutex // guards the following
	conns  []net.Conn
	killed bool
}

// newProxy listens on loopback and forwards the first connection to
// target (an /ip4|ip6/…/tcp/N/… address).
func newProxy(t *testing.T, target ma.Multiaddr) *proxy {
	t.Helper()
	network, hostport, err := manet.DialArgs(target[:2])
	if err != nil {
		t.Fatal(err)
	}
	nl, err := net.Listen(network, net.JoinHostPort(target[0].Value(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	la, err := manet.FromNetAddr(nl.Addr())
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: la.Encapsulate(target[2:]), nl: nl}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		in, err := nl.Accept()
		nl.Close()
		if err != nil {
			return
		}
		out, err := net.Dial(network, hostport)
		if err != nil {
			in.Close()
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.killed {
			in.Close()
			out.Close()
			return
		}
		p.conns = append(p.conns, in, out)
		p.wg.Add(2)
		go p.pipe(out, in)
		go p.pipe(in, out)
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	dst.(*net.TCPConn).CloseWrite()
}

// kill closes both sides' sockets and waits for the forwarding to end.
func (p *proxy) kill() {
	p.nl.Close()
	p.mu.Lock()
	p.killed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
