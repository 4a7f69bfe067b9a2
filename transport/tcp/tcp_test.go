package tcp_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/sec/tls"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/tcp"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingRcmgr counts connection scopes and can refuse them.
type countingRcmgr struct {
	network.NullResourceManager
	refuse atomic.Bool
	opened atomic.Int32
	done   atomic.Int32
	mu     sync.Mutex
	dirs   []network.Direction
	fds    []bool
}

type countingScope struct {
	network.NullScope
	m    *countingRcmgr
	once sync.Once
}

func (s *countingScope) Done() { s.once.Do(func() { s.m.done.Add(1) }) }

func (m *countingRcmgr) OpenConnection(dir network.Direction, usefd bool, _ ma.Multiaddr) (network.ConnManagementScope, error) {
	if m.refuse.Load() {
		return nil, network.ErrResourceLimitExceeded
	}
	m.opened.Add(1)
	m.mu.Lock()
	m.dirs = append(m.dirs, dir)
	m.fds = append(m.fds, usefd)
	m.mu.Unlock()
	return &countingScope{m: m}, nil
}

func (m *countingRcmgr) open() int32 { return m.opened.Load() - m.done.Load() }

type node struct {
	id    peer.ID
	rcmgr *countingRcmgr
	tr    *tcp.Transport
}

func newNode(t *testing.T) *node {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(priv)
	st, err := noise.New(priv, []protocol.ID{yamux.ID})
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
	return &node{id: id, rcmgr: rc, tr: tcp.New(u, rc)}
}

func listen(t *testing.T, n *node, addr string) transport.Listener {
	t.Helper()
	l, err := n.tr.Listen(ma.StringCast(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestCanDial(t *testing.T) {
	tr := tcp.New(nil, nil)
	for addr, want := range map[string]bool{
		"/ip4/127.0.0.1/tcp/1":              true,
		"/ip6/::1/tcp/1":                    true,
		"/ip4/127.0.0.1/udp/1":              false,
		"/ip4/127.0.0.1/udp/1/quic-v1":      false,
		"/dns4/localhost/tcp/1":             false,
		"/ip4/127.0.0.1/tcp/1/ws":           false,
		"/ip4/127.0.0.1/tcp/1/p2p-circuit":  false,
		"/ip4/127.0.0.1":                    false,
		"/ip6zone/x/ip6/fe80::1/tcp/1":      false,
		"/unix/tmp/x.sock":                  false,
		"/ip4/1.2.3.4/tcp/1/p2p/" + testPID: false,
	} {
		if got := tr.CanDial(ma.StringCast(addr)); got != want {
			t.Errorf("CanDial(%s) = %v; want %v", addr, got, want)
		}
	}
	if got := tr.Protocols(); len(got) != 1 || got[0] != ma.P_TCP {
		t.Errorf("Protocols = %v", got)
	}
}

const testPID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

func TestDialListen(t *testing.T) {
	for _, ip := range []string{"/ip4/127.0.0.1", "/ip6/::1"} {
		t.Run(ip, func(t *testing.T) {
			a, b := newNode(t), newNode(t)
			l := listen(t, b, ip+"/tcp/0")
			if port, _ := l.Multiaddr().ValueForProtocol(ma.P_TCP); port == "0" {
				t.Fatal("Multiaddr does not carry the actual port")
			}
			accepted := make(chan transport.CapableConn, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					t.Error(err)
				}
				accepted <- c
			}()
			c, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id)
			if err != nil {
				t.Fatal(err)
			}
			sc := <-accepted
			if sc == nil {
				t.FailNow()
			}
			if c.RemotePeer() != b.id || sc.RemotePeer() != a.id {
				t.Error("peers wrong")
			}
			if st := c.ConnState(); st.Transport != "tcp" || st.Security != noise.ID || st.StreamMultiplexer != yamux.ID || !st.UsedEarlyMuxerNegotiation {
				t.Errorf("ConnState = %+v", st)
			}
			if !c.RemoteMultiaddr().Equal(l.Multiaddr()) || !sc.LocalMultiaddr().Equal(l.Multiaddr()) {
				t.Errorf("addrs: dialer remote %s, listener local %s, listening on %s", c.RemoteMultiaddr(), sc.LocalMultiaddr(), l.Multiaddr())
			}
			// A stream works.
			s, err := c.OpenStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			s.Write([]byte("hi"))
			ss, err := sc.AcceptStream()
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 2)
			if _, err := io.ReadFull(ss, got); err != nil || string(got) != "hi" {
				t.Fatalf("read %q, %v", got, err)
			}
			s.Close()
			ss.Close()
			// The resource manager saw one fd-using connection each way.
			if a.rcmgr.dirs[0] != network.DirOutbound || b.rcmgr.dirs[0] != network.DirInbound || !a.rcmgr.fds[0] || !b.rcmgr.fds[0] {
				t.Errorf("OpenConnection calls: dialer %v %v, listener %v %v", a.rcmgr.dirs, a.rcmgr.fds, b.rcmgr.dirs, b.rcmgr.fds)
			}
			c.Close()
			sc.Close()
			if a.rcmgr.open() != 0 || b.rcmgr.open() != 0 {
				t.Errorf("scopes still open after close: %d, %d", a.rcmgr.open(), b.rcmgr.open())
			}
		})
	}
}

// TestReusePort: a node that listens dials from its listen port, so the
// remote observes the address it can dial back.
func TestReusePort(t *testing.T) {
	a, b := newNode(t), newNode(t)
	la := listen(t, a, "/ip4/127.0.0.1/tcp/0")
	lb := listen(t, b, "/ip4/127.0.0.1/tcp/0")
	go func() {
		if c, err := lb.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := a.tr.Dial(context.Background(), lb.Multiaddr(), b.id)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.LocalMultiaddr().Equal(la.Multiaddr()) {
		t.Errorf("dialed from %s; want the listen address %s", c.LocalMultiaddr(), la.Multiaddr())
	}
	// After the listener closes, dials use an ephemeral port.
	la.Close()
	c2, err := a.tr.Dial(context.Background(), lb.Multiaddr(), b.id)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.LocalMultiaddr().Equal(la.Multiaddr()) {
		t.Error("dialed from a closed listener's port")
	}
}

// TestScopeReleasedOnFailure: every failed dial or accept ends its scope.
func TestScopeReleasedOnFailure(t *testing.T) {
	a, b := newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/tcp/0")

	// Wrong peer.
	_, err := a.tr.Dial(context.Background(), l.Multiaddr(), a.id)
	if !errors.Is(err, sec.ErrPeerIDMismatch) {
		t.Errorf("dial to the wrong peer: %v", err)
	}
	// Nothing listening.
	nl, _ := net.Listen("tcp", "127.0.0.1:0")
	dead, _ := manet.FromNetAddr(nl.Addr())
	nl.Close()
	if _, err := a.tr.Dial(context.Background(), dead, b.id); err == nil {
		t.Error("dial to a closed port succeeded")
	}
	// Cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.tr.Dial(ctx, l.Multiaddr(), b.id); !errors.Is(err, context.Canceled) {
		t.Errorf("dial with a cancelled context: %v", err)
	}
	if n := a.rcmgr.open(); n != 0 {
		t.Errorf("%d dial scopes left open after failures", n)
	}
	// Refused by the resource manager: no socket is opened at all.
	a.rcmgr.refuse.Store(true)
	if _, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id); !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Errorf("refused dial: %v", err)
	}
	// A raw client that connects and goes away: the listener's scope ends.
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw.Write([]byte("garbage\n"))
	raw.Close()
	// Inbound refusal: the listener drops the connection.
	b.rcmgr.refuse.Store(true)
	raw2, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw2.Read(make([]byte, 1)); err == nil {
		t.Error("a connection refused by the resource manager was kept open")
	}
	raw2.Close()
	l.Close() // waits for the handshakes in flight
	if n := b.rcmgr.open(); n != 0 {
		t.Errorf("%d listener scopes left open", n)
	}
}

// TestListenerClose: Accept fails with net.ErrClosed after Close, and
// connections upgraded but never accepted are closed.
func TestListenerClose(t *testing.T) {
	a, b := newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/tcp/0")
	c, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		// The queued connection may be handed out first; then the next
		// Accept must fail.
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
	}
	if _, err := c.AcceptStream(); err == nil {
		t.Error("the unaccepted connection's peer still works")
	}
}

func TestListenErrors(t *testing.T) {
	n := newNode(t)
	if _, err := n.tr.Listen(ma.StringCast("/ip4/127.0.0.1/udp/0")); !errors.Is(err, tcp.ErrUnsupportedAddr) {
		t.Errorf("listen on udp: %v", err)
	}
	l := listen(t, n, "/ip4/127.0.0.1/tcp/0")
	port, _ := l.Multiaddr().ValueForProtocol(ma.P_TCP)
	// SO_REUSEPORT lets a second listener share the port, as libp2p does.
	l2, err := n.tr.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/" + port))
	if err != nil {
		t.Fatalf("second listener on a shared port: %v", err)
	}
	l2.Close()
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
}

// newSecNode is newNode with the named security protocols ("noise",
// "tls"), in order of preference.
func newSecNode(t *testing.T, secs ...string) *node {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(priv)
	var sts []sec.Transport
	for _, s := range secs {
		var st sec.Transport
		switch s {
		case "noise":
			st, err = noise.New(priv, []protocol.ID{yamux.ID})
		case "tls":
			st, err = tls.New(priv, []protocol.ID{yamux.ID})
		default:
			t.Fatalf("unknown security %q", s)
		}
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	rc := &countingRcmgr{}
	u, err := upgrader.New(upgrader.Config{
		Security:        sts,
		Muxers:          []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}},
		ResourceManager: rc,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &node{id: id, rcmgr: rc, tr: tcp.New(u, rc)}
}

// TestSecurityFallback: a dialer preferring Noise reaches a TLS-only
// listener by redialing, from its listen port or another one, under one
// resource reservation; the next dial to that peer needs no redial; a
// dialer with nothing the listener speaks fails cleanly.
func TestSecurityFallback(t *testing.T) {
	a, b := newSecNode(t, "noise", "tls"), newSecNode(t, "tls")
	listen(t, a, "/ip4/127.0.0.1/tcp/0") // dials leave from this port
	l := listen(t, b, "/ip4/127.0.0.1/tcp/0")
	accepted := make(chan transport.CapableConn, 2)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	// Each dial makes 2 inbound connections on the listener the first
	// time (one refused), 1 the second.
	for i, inbound := range []int32{2, 3} {
		c, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		sc := <-accepted
		if st := c.ConnState(); st.Security != tls.ID || st.StreamMultiplexer != yamux.ID || !st.UsedEarlyMuxerNegotiation {
			t.Errorf("dial %d: ConnState = %+v", i, st)
		}
		if !c.LocalMultiaddr().Equal(sc.RemoteMultiaddr()) {
			t.Errorf("dial %d: local address %s; the listener sees %s", i, c.LocalMultiaddr(), sc.RemoteMultiaddr())
		}
		if got := b.rcmgr.opened.Load(); got != inbound {
			t.Errorf("dial %d: listener saw %d connections; want %d", i, got, inbound)
		}
		if got := a.rcmgr.opened.Load(); got != int32(i+1) {
			t.Errorf("dial %d: dialer reserved %d connections; want %d", i, got, i+1)
		}
		s, err := c.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("hi"))
		ss, err := sc.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 2)
		if _, err := io.ReadFull(ss, got); err != nil || string(got) != "hi" {
			t.Fatalf("read %q, %v", got, err)
		}
		s.Close()
		ss.Close()
		c.Close()
		sc.Close()
	}

	noiseOnly := newSecNode(t, "noise")
	_, err := noiseOnly.tr.Dial(context.Background(), l.Multiaddr(), b.id)
	if !errors.Is(err, multistream.ErrNotSupported) {
		t.Errorf("dial offering only Noise: %v; want ErrNotSupported", err)
	}
	if n := noiseOnly.rcmgr.open(); n != 0 || a.rcmgr.open() != 0 {
		t.Errorf("dial scopes left open: %d, %d", n, a.rcmgr.open())
	}
}

// TestReconnectAvoidsClosedTuple: right after a connection between two
// listen ports closed, a dial between them leaves from an ephemeral
// port, from either side: the old four-tuple's TIME_WAIT could swallow
// the SYN and stall the dial for TCP's one-second retransmission.
func TestReconnectAvoidsClosedTuple(t *testing.T) {
	a, b := newNode(t), newNode(t)
	la := listen(t, a, "/ip4/127.0.0.1/tcp/0")
	lb := listen(t, b, "/ip4/127.0.0.1/tcp/0")
	accepted := make(chan transport.CapableConn, 4)
	acceptOn := func(l transport.Listener) {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}
		}()
	}
	acceptOn(la)
	acceptOn(lb)

	c1, err := a.tr.Dial(context.Background(), lb.Multiaddr(), b.id)
	if err != nil {
		t.Fatal(err)
	}
	if !c1.LocalMultiaddr().Equal(la.Multiaddr()) {
		t.Fatalf("first dial from %s; want the listen address %s", c1.LocalMultiaddr(), la.Multiaddr())
	}
	s1 := <-accepted
	c1.Close()
	s1.Close()

	c2, err := a.tr.Dial(context.Background(), lb.Multiaddr(), b.id)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.LocalMultiaddr().Equal(la.Multiaddr()) {
		t.Error("the dialer reused the four-tuple of a connection that just closed")
	}
	defer (<-accepted).Close()

	// b accepted the closed connection: its dial back to a's listen
	// address would have the same four-tuple.
	c3, err := b.tr.Dial(context.Background(), la.Multiaddr(), a.id)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if c3.LocalMultiaddr().Equal(lb.Multiaddr()) {
		t.Error("the listener reused the four-tuple of a connection that just closed")
	}
	defer (<-accepted).Close()
}
