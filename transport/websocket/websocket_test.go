package websocket_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/internal/testcert"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	ptls "github.com/p2pnet/p2pnet/sec/tls"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/websocket"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingRcmgr counts connection scopes and can refuse them.
type countingRcmgr struct {
	network.NullResourceManager
	refuse atomic.Bool
	opened atomic.Int32
	done   atomic.Int32
	mu     sync.Mutex // guards the following
	dirs   []network.Direction
	fds    []bool
	addrs  []ma.Multiaddr
}

type countingScope struct {
	network.NullScope
	m    *countingRcmgr
	once sync.Once
}

func (s *countingScope) Done() { s.once.Do(func() { s.m.done.Add(1) }) }

func (m *countingRcmgr) OpenConnection(dir network.Direction, usefd bool, a ma.Multiaddr) (network.ConnManagementScope, error) {
	if m.refuse.Load() {
		return nil, network.ErrResourceLimitExceeded
	}
	m.opened.Add(1)
	m.mu.Lock()
	m.dirs = append(m.dirs, dir)
	m.fds = append(m.fds, usefd)
	m.addrs = append(m.addrs, a)
	m.mu.Unlock()
	return &countingScope{m: m}, nil
}

func (m *countingRcmgr) open() int32 { return m.opened.Load() - m.done.Load() }

type node struct {
	id    peer.ID
	rcmgr *countingRcmgr
	u     *upgrader.Upgrader
	tr    *websocket.Transport
}

// newNode returns a node with the named security protocol ("noise" or
// "tls") and yamux, and a WebSocket transport with opts.
func newNode(t testing.TB, security string, opts ...websocket.Option) *node {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(priv)
	var st sec.Transport
	switch security {
	case "noise":
		st, err = noise.New(priv, []protocol.ID{yamux.ID})
	case "tls":
		st, err = ptls.New(priv, []protocol.ID{yamux.ID})
	default:
		t.Fatalf("unknown security %q", security)
	}
	if err != nil {
		t.Fatal(err)
	}
	rc := &countingRcmgr{}
	u, err := upgrader.New(upgrader.Config{
		Security:        []sec.Transport{st},
		Muxers:          []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}},
		ResourceManager: rc,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &node{id: id, rcmgr: rc, u: u, tr: websocket.New(u, rc, opts...)}
}

func listen(t testing.TB, n *node, addr string) transport.Listener {
	t.Helper()
	l, err := n.tr.Listen(ma.StringCast(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// testCA is a certificate authority of the tests' own and a server
// certificate it signed for localhost, 127.0.0.1 and ::1.
type testCA struct {
	pool   *x509.CertPool
	server tls.Certificate
}

var (
	caOnce sync.Once
	ca     testCA
)

func theCA(t testing.TB) testCA {
	t.Helper()
	caOnce.Do(func() { ca.pool, ca.server = testcert.Server(t, "localhost") })
	return ca
}

// tlsNodes returns a listening node with the test CA's certificate and a
// dialing node that trusts the test CA.
func tlsNodes(t testing.TB, security string) (dialer, listener *node) {
	c := theCA(t)
	l := newNode(t, security, websocket.WithTLSConfig(&tls.Config{Certificates: []tls.Certificate{c.server}}))
	d := newNode(t, security, websocket.WithDialTLSConfig(&tls.Config{RootCAs: c.pool}))
	return d, l
}

// connect dials l from d and returns both ends.
func connect(t testing.TB, d *node, raddr ma.Multiaddr, l transport.Listener, lid peer.ID) (transport.CapableConn, transport.CapableConn) {
	t.Helper()
	type accepted struct {
		c   transport.CapableConn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		ch <- accepted{c, err}
	}()
	c, err := d.tr.Dial(context.Background(), raddr, lid)
	if err != nil {
		l.Close() // ends the Accept
		<-ch
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		c.Close()
		t.Fatal(a.err)
	}
	return c, a.c
}

// exchange sends a message over a fresh stream from c to sc and back.
func exchange(t testing.TB, c, sc network.MuxedConn) {
	t.Helper()
	s, err := c.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	ss, err := sc.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	got := make([]byte, 5)
	if _, err := io.ReadFull(ss, got); err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := ss.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	got = got[:4]
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "back" {
		t.Fatalf("read back %q, %v", got, err)
	}
}

func TestCanDial(t *testing.T) {
	tr := websocket.New(nil, nil)
	for addr, want := range map[string]bool{
		"/ip4/127.0.0.1/tcp/1/ws":                   true,
		"/ip6/::1/tcp/1/ws":                         true,
		"/dns4/example.com/tcp/443/wss":             true,
		"/dns/example.com/tcp/443/tls/ws":           true,
		"/ip4/1.2.3.4/tcp/443/tls/sni/a.example/ws": true,
		"/dns6/example.com/tcp/80/ws":               true,
		"/ip4/127.0.0.1/tcp/1":                      false,
		"/ip4/127.0.0.1/tcp/1/tls":                  false,
		"/ip4/127.0.0.1/udp/1/quic-v1":              false,
		"/ip4/127.0.0.1/tcp/1/ws/p2p-circuit":       false,
		"/ip4/127.0.0.1/tcp/1/wss/ws":               false,
		"/ip4/127.0.0.1/tcp/1/sni/a.example/ws":     false,
		"/ip4/127.0.0.1/tcp/1/tls/sni/a.example":    false,
		"/unix/tmp/x.sock/ws":                       false,
		"/ip4/127.0.0.1/ws":                         false,
	} {
		if got := tr.CanDial(ma.StringCast(addr)); got != want {
			t.Errorf("CanDial(%s) = %v; want %v", addr, got, want)
		}
	}
	if got := tr.Protocols(); len(got) != 2 || got[0] != ma.P_WS || got[1] != ma.P_WSS {
		t.Errorf("Protocols = %v", got)
	}
}

// TestKeepName: a TLS address with a DNS name keeps the name in /sni
// through the swarm's resolution; other addresses are left alone.
func TestKeepName(t *testing.T) {
	tr := websocket.New(nil, nil)
	for in, want := range map[string]string{
		"/dns4/a.example/tcp/443/wss":                "/dns4/a.example/tcp/443/tls/sni/a.example/ws",
		"/dns/a.example/tcp/443/tls/ws":              "/dns/a.example/tcp/443/tls/sni/a.example/ws",
		"/dns6/a.example/tcp/443/tls/sni/b.other/ws": "/dns6/a.example/tcp/443/tls/sni/b.other/ws",
		"/dns4/a.example/tcp/80/ws":                  "/dns4/a.example/tcp/80/ws",
		"/ip4/1.2.3.4/tcp/443/wss":                   "/ip4/1.2.3.4/tcp/443/wss",
	} {
		if got := tr.KeepName(ma.StringCast(in)); got.String() != want {
			t.Errorf("KeepName(%s) = %s; want %s", in, got, want)
		}
	}
	var _ transport.NameKeeper = tr
}

// TestDialListen: each kind of address and family: the connection is
// authenticated and multiplexed, its addresses and state say WebSocket,
// the resource manager saw one connection each way with the WebSocket
// addresses, and closing releases the scopes.
func TestDialListen(t *testing.T) {
	for _, tc := range []struct {
		listen, dial string // dial: the address to dial instead of the listener's, "%s" for its port
		tls          bool
	}{
		{listen: "/ip4/127.0.0.1/tcp/0/ws"},
		{listen: "/ip6/::1/tcp/0/ws"},
		{listen: "/ip4/127.0.0.1/tcp/0/tls/ws", tls: true},
		{listen: "/ip6/::1/tcp/0/wss", tls: true},
		{listen: "/ip4/127.0.0.1/tcp/0/tls/ws", dial: "/ip4/127.0.0.1/tcp/%s/tls/sni/localhost/ws", tls: true},
		{listen: "/ip4/127.0.0.1/tcp/0/tls/ws", dial: "/dns4/localhost/tcp/%s/wss", tls: true},
		{listen: "/ip4/127.0.0.1/tcp/0/ws", dial: "/dns4/localhost/tcp/%s/ws"},
	} {
		name := tc.listen
		if tc.dial != "" {
			name += " as " + tc.dial
		}
		t.Run(name, func(t *testing.T) {
			var a, b *node
			if tc.tls {
				a, b = tlsNodes(t, "noise")
			} else {
				a, b = newNode(t, "noise"), newNode(t, "noise")
			}
			l := listen(t, b, tc.listen)
			port, _ := l.Multiaddr().ValueForProtocol(ma.P_TCP)
			if port == "0" {
				t.Fatal("Multiaddr does not carry the actual port")
			}
			if got, want := l.Multiaddr()[2:].String(), ma.StringCast(tc.listen)[2:].String(); got != want {
				t.Errorf("listener address %s does not end in %s", l.Multiaddr(), want)
			}
			raddr := l.Multiaddr()
			if tc.dial != "" {
				raddr = ma.StringCast(strings.ReplaceAll(tc.dial, "%s", port))
			}
			c, sc := connect(t, a, raddr, l, b.id)
			defer c.Close()
			defer sc.Close()
			if c.RemotePeer() != b.id || sc.RemotePeer() != a.id {
				t.Error("peers wrong")
			}
			for _, st := range []network.ConnectionState{c.ConnState(), sc.ConnState()} {
				if st.Transport != "websocket" || st.Security != noise.ID || st.StreamMultiplexer != yamux.ID {
					t.Errorf("ConnState = %+v", st)
				}
			}
			suffix := "/ws"
			if tc.tls {
				suffix = "/tls/ws"
			}
			if !c.RemoteMultiaddr().Equal(raddr) {
				t.Errorf("dialer's remote address %s; dialed %s", c.RemoteMultiaddr(), raddr)
			}
			if got := sc.LocalMultiaddr()[2:].String(); got != ma.StringCast(tc.listen)[2:].String() {
				t.Errorf("listener side's local address %s", sc.LocalMultiaddr())
			}
			if !c.LocalMultiaddr().Equal(sc.RemoteMultiaddr()) || sc.RemoteMultiaddr()[2:].String() != suffix {
				t.Errorf("dialer's local address %s; the listener sees %s; want …%s", c.LocalMultiaddr(), sc.RemoteMultiaddr(), suffix)
			}
			exchange(t, c, sc)
			a.rcmgr.mu.Lock()
			b.rcmgr.mu.Lock()
			if a.rcmgr.dirs[0] != network.DirOutbound || b.rcmgr.dirs[0] != network.DirInbound || !a.rcmgr.fds[0] || !b.rcmgr.fds[0] {
				t.Errorf("OpenConnection calls: dialer %v %v, listener %v %v", a.rcmgr.dirs, a.rcmgr.fds, b.rcmgr.dirs, b.rcmgr.fds)
			}
			if !a.rcmgr.addrs[0].Equal(raddr) || !b.rcmgr.addrs[0].Equal(sc.RemoteMultiaddr()) {
				t.Errorf("OpenConnection addresses: dialer %s, listener %s", a.rcmgr.addrs[0], b.rcmgr.addrs[0])
			}
			b.rcmgr.mu.Unlock()
			a.rcmgr.mu.Unlock()
			c.Close()
			sc.Close()
			if a.rcmgr.open() != 0 || b.rcmgr.open() != 0 {
				t.Errorf("scopes still open after close: %d, %d", a.rcmgr.open(), b.rcmgr.open())
			}
		})
	}
}

// TestTLSVerify: a dial checks the server's certificate as a browser
// does: an unknown authority, or a name the certificate does not carry,
// fails the dial, and its scope is released.
func TestTLSVerify(t *testing.T) {
	_, b := tlsNodes(t, "noise")
	l := listen(t, b, "/ip4/127.0.0.1/tcp/0/tls/ws")
	port, _ := l.Multiaddr().ValueForProtocol(ma.P_TCP)

	// The system's roots do not know the test CA.
	stranger := newNode(t, "noise")
	_, err := stranger.tr.Dial(context.Background(), l.Multiaddr(), b.id)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("dial trusting only the system's roots: %v; want an unknown authority", err)
	}
	// Trusted CA, wrong name.
	other := newNode(t, "noise", websocket.WithDialTLSConfig(&tls.Config{RootCAs: theCA(t).pool}))
	_, err = other.tr.Dial(context.Background(), ma.StringCast("/ip4/127.0.0.1/tcp/"+port+"/tls/sni/other.example/ws"), b.id)
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Errorf("dial naming another host: %v; want a hostname error", err)
	}
	if stranger.rcmgr.open() != 0 || other.rcmgr.open() != 0 {
		t.Errorf("dial scopes left open: %d, %d", stranger.rcmgr.open(), other.rcmgr.open())
	}
}

// TestListenErrors: what Listen refuses.
func TestListenErrors(t *testing.T) {
	n := newNode(t, "noise")
	for _, a := range []string{"/ip4/127.0.0.1/tcp/0", "/dns4/localhost/tcp/0/ws", "/ip4/127.0.0.1/tcp/0/tls/sni/x/ws"} {
		if _, err := n.tr.Listen(ma.StringCast(a)); !errors.Is(err, websocket.ErrUnsupportedAddr) {
			t.Errorf("Listen(%s) = %v; want ErrUnsupportedAddr", a, err)
		}
	}
	if _, err := n.tr.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0/tls/ws")); !errors.Is(err, websocket.ErrNoTLSConfig) {
		t.Errorf("Listen on /tls/ws without a certificate: %v", err)
	}
}

// TestScopeReleasedOnFailure: every failed dial or accept ends its scope,
// and what is not a WebSocket upgrade gets an HTTP error.
func TestScopeReleasedOnFailure(t *testing.T) {
	a, b := newNode(t, "noise"), newNode(t, "noise")
	l := listen(t, b, "/ip4/127.0.0.1/tcp/0/ws")
	// Wrong peer.
	if _, err := a.tr.Dial(context.Background(), l.Multiaddr(), a.id); !errors.Is(err, sec.ErrPeerIDMismatch) {
		t.Errorf("dial to the wrong peer: %v", err)
	}
	// Cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.tr.Dial(ctx, l.Multiaddr(), b.id); !errors.Is(err, context.Canceled) {
		t.Errorf("dial with a cancelled context: %v", err)
	}
	// Not a WebSocket server: a plain HTTP server answers 404.
	hl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(hl)
	defer srv.Close()
	_, err = a.tr.Dial(context.Background(), ma.StringCast("/ip4/127.0.0.1/tcp/"+portOf(hl.Addr())+"/ws"), b.id)
	if !errors.Is(err, websocket.ErrHandshake) {
		t.Errorf("dial to a plain HTTP server: %v; want ErrHandshake", err)
	}
	if n := a.rcmgr.open(); n != 0 {
		t.Errorf("%d dial scopes left open after failures", n)
	}
	// A plain HTTP request to the listener: 400, and the scope ends.
	resp, err := http.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain GET answered %s; want 400", resp.Status)
	}
	// Refused by the resource manager: no socket is opened at all.
	a.rcmgr.refuse.Store(true)
	if _, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id); !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Errorf("refused dial: %v", err)
	}
	l.Close() // waits for the handshakes in flight
	if n := b.rcmgr.open(); n != 0 {
		t.Errorf("%d listener scopes left open", n)
	}
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}
