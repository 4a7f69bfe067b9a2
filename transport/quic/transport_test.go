package quic_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/transport/quic"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"
)

const testPID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

func TestCanDial(t *testing.T) {
	n := newNode(t)
	for addr, want := range map[string]bool{
		"/ip4/127.0.0.1/udp/1/quic-v1":                true,
		"/ip6/::1/udp/1/quic-v1":                      true,
		"/ip4/127.0.0.1/udp/1/quic":                   false,
		"/ip4/127.0.0.1/udp/1":                        false,
		"/ip4/127.0.0.1/tcp/1":                        false,
		"/dns4/localhost/udp/1/quic-v1":               false,
		"/ip4/127.0.0.1/udp/1/quic-v1/webtransport":   false,
		"/ip4/127.0.0.1/udp/1/quic-v1/p2p/" + testPID: false,
		"/ip6zone/x/ip6/fe80::1/udp/1/quic-v1":        false,
	} {
		if got := n.tr.CanDial(ma.StringCast(addr)); got != want {
			t.Errorf("CanDial(%s) = %v; want %v", addr, got, want)
		}
	}
	if got := n.tr.Protocols(); len(got) != 1 || got[0] != ma.P_QUIC_V1 {
		t.Errorf("Protocols = %v", got)
	}
	if _, err := n.tr.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0")); !errors.Is(err, quic.ErrUnsupportedAddr) {
		t.Errorf("Listen on tcp: %v", err)
	}
	if _, err := n.tr.Dial(context.Background(), ma.StringCast("/ip4/127.0.0.1/udp/1/quic"), n.id); !errors.Is(err, quic.ErrUnsupportedAddr) {
		t.Errorf("Dial draft-29: %v", err)
	}
}

func TestOptions(t *testing.T) {
	for name, opt := range map[string]quic.Option{
		"idle":      quic.WithIdleTimeout(0),
		"keepalive": quic.WithKeepAlivePeriod(-1),
		"handshake": quic.WithHandshakeTimeout(-1),
		"streams":   quic.WithMaxIncomingStreams(0),
		"retry":     quic.WithRetryThreshold(-1),
		"budget":    quic.WithMaxHandshakes(0),
	} {
		n := newNode(t) // for its key
		if _, err := quic.New(n.priv, nil, opt); !errors.Is(err, quic.ErrInvalidOption) {
			t.Errorf("%s: New = %v; want ErrInvalidOption", name, err)
		}
	}
}

func TestDialListen(t *testing.T) {
	for _, ip := range []string{"/ip4/127.0.0.1", "/ip6/::1"} {
		t.Run(ip, func(t *testing.T) {
			a, b := newNode(t), newNode(t)
			l := listen(t, b, ip+"/udp/0/quic-v1")
			if port, _ := l.Multiaddr().ValueForProtocol(ma.P_UDP); port == "0" {
				t.Fatal("Multiaddr does not carry the actual port")
			}
			c, sc := connect(t, a, l, b.id)
			if c.RemotePeer() != b.id || sc.RemotePeer() != a.id || c.LocalPeer() != a.id || sc.LocalPeer() != b.id {
				t.Error("peers wrong")
			}
			if !c.RemotePublicKey().Equals(b.priv.GetPublic()) || !sc.RemotePublicKey().Equals(a.priv.GetPublic()) {
				t.Error("remote keys wrong")
			}
			want := network.ConnectionState{Transport: "quic-v1"}
			if c.ConnState() != want || sc.ConnState() != want {
				t.Errorf("ConnState = %+v, %+v; want %+v", c.ConnState(), sc.ConnState(), want)
			}
			if !c.RemoteMultiaddr().Equal(l.Multiaddr()) || !sc.LocalMultiaddr().Equal(l.Multiaddr()) {
				t.Errorf("addrs: dialer remote %s, listener local %s, listening on %s", c.RemoteMultiaddr(), sc.LocalMultiaddr(), l.Multiaddr())
			}
			if !sc.RemoteMultiaddr().Equal(c.LocalMultiaddr()) && !isUnspecified(c.LocalMultiaddr()) {
				t.Errorf("listener sees %s, dialer is at %s", sc.RemoteMultiaddr(), c.LocalMultiaddr())
			}
			// A stream each way.
			for _, dir := range [][2]*quic.Conn{{c, sc}, {sc, c}} {
				s, err := dir[0].OpenStream(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Write([]byte("hi")); err != nil {
					t.Fatal(err)
				}
				ss, err := dir[1].AcceptStream()
				if err != nil {
					t.Fatal(err)
				}
				got := make([]byte, 2)
				if _, err := io.ReadFull(ss, got); err != nil || string(got) != "hi" {
					t.Fatalf("read %q, %v", got, err)
				}
				s.Close()
				ss.Close()
			}
			// The resource manager saw one connection each way, without a
			// file descriptor, with the peer set; the listener asked it
			// first, when the Initial came, whether it would take it.
			a.rcmgr.mu.Lock()
			b.rcmgr.mu.Lock()
			if len(a.rcmgr.dirs) != 1 || a.rcmgr.dirs[0] != network.DirOutbound || a.rcmgr.fds[0] ||
				len(b.rcmgr.dirs) != 2 || b.rcmgr.dirs[0] != network.DirInbound || b.rcmgr.dirs[1] != network.DirInbound || b.rcmgr.fds[0] || b.rcmgr.fds[1] {
				t.Errorf("OpenConnection calls: dialer %v %v, listener %v %v", a.rcmgr.dirs, a.rcmgr.fds, b.rcmgr.dirs, b.rcmgr.fds)
			}
			if len(a.rcmgr.peers) != 1 || a.rcmgr.peers[0] != b.id || len(b.rcmgr.peers) != 1 || b.rcmgr.peers[0] != a.id {
				t.Errorf("SetPeer calls: dialer %v, listener %v", a.rcmgr.peers, b.rcmgr.peers)
			}
			b.rcmgr.mu.Unlock()
			a.rcmgr.mu.Unlock()
			if c.IsClosed() {
				t.Error("IsClosed before Close")
			}
			c.Close()
			sc.Close()
			if !c.IsClosed() || !sc.IsClosed() {
				t.Error("IsClosed is false after Close")
			}
			if a.rcmgr.open() != 0 || b.rcmgr.open() != 0 {
				t.Errorf("scopes still open after close: %d, %d", a.rcmgr.open(), b.rcmgr.open())
			}
		})
	}
}

func isUnspecified(m ma.Multiaddr) bool { return net.ParseIP(m[0].Value()).IsUnspecified() }

// TestWrongPeer: a dial that meets another peer fails with a mismatch
// naming both, and every scope ends.
func TestWrongPeer(t *testing.T) {
	a, b, c := newNode(t), newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
	_, err := a.tr.Dial(context.Background(), l.Multiaddr(), c.id)
	if !errors.Is(err, sec.ErrPeerIDMismatch) {
		t.Fatalf("dial to the wrong peer: %v", err)
	}
	var me *sec.MismatchError
	if !errors.As(err, &me) || me.Expected != c.id || me.Actual != b.id {
		t.Errorf("mismatch error %#v; want expected %s, actual %s", me, c.id, b.id)
	}
	if n := a.rcmgr.open(); n != 0 {
		t.Errorf("%d dialer scopes left open", n)
	}
	b.rcmgr.waitReleased(t)
	// The listener still works, and never handed out the failed
	// connection.
	d, s := connect(t, a, l, b.id)
	if s.RemotePeer() != a.id {
		t.Error("wrong connection accepted")
	}
	d.Close()
	s.Close()
}

// TestDialFailures: failed dials end their scopes.
func TestDialFailures(t *testing.T) {
	a, b := newNode(t, quic.WithHandshakeTimeout(100*time.Millisecond)), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")

	// Cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.tr.Dial(ctx, l.Multiaddr(), b.id); !errors.Is(err, context.Canceled) {
		t.Errorf("dial with a cancelled context: %v", err)
	}
	// Nothing listening: the handshake times out.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ma.StringCast("/ip4/127.0.0.1/udp/" + portOf(pc.LocalAddr()) + "/quic-v1")
	pc.Close()
	var ne net.Error
	if _, err := a.tr.Dial(context.Background(), dead, b.id); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial to a closed port: %v", err)
	}
	if n := a.rcmgr.open(); n != 0 {
		t.Errorf("%d dial scopes left open after failures", n)
	}
}

func portOf(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return port
}

// TestResourceManagerRefusal: refusals in either direction fail the
// connection and leave no scope open.
func TestResourceManagerRefusal(t *testing.T) {
	// A refused client's Initial packets may still be in flight when the
	// listener accepts again; each starts a handshake (and opens a scope)
	// that ends only with the listener's handshake timeout, kept short.
	a, b := newNode(t), newNode(t, quic.WithHandshakeTimeout(time.Second))
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")

	// Outbound: nothing is sent.
	a.rcmgr.refuse.Store(true)
	if _, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id); !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Errorf("refused dial: %v", err)
	}
	a.rcmgr.refuse.Store(false)
	// Outbound peer refused: no handshake.
	a.rcmgr.refusePeer.Store(true)
	if _, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id); !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Errorf("dial to a refused peer: %v", err)
	}
	a.rcmgr.refusePeer.Store(false)
	if n := a.rcmgr.open(); n != 0 {
		t.Errorf("%d dialer scopes left open", n)
	}

	// Inbound, before the handshake: quic-go refuses the connection.
	b.rcmgr.refuse.Store(true)
	_, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id)
	var te *quicgo.TransportError
	if !errors.As(err, &te) || te.ErrorCode != quicgo.ConnectionRefused || !te.Remote {
		t.Errorf("dial refused by the listener's resource manager: %v", err)
	}
	b.rcmgr.refuse.Store(false)

	// Inbound, the peer refused after the handshake: the listener closes
	// the connection with RESOURCE_LIMIT_EXCEEDED.
	b.rcmgr.refusePeer.Store(true)
	c, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AcceptStream()
	var ae *quicgo.ApplicationError
	if !errors.As(err, &ae) || ae.ErrorCode != 0x1001 || !ae.Remote {
		t.Errorf("connection whose peer the listener refused: %v", err)
	}
	c.Close()
	b.rcmgr.refusePeer.Store(false)
	b.rcmgr.waitReleased(t)
	a.rcmgr.waitReleased(t)

	// The listener still serves.
	d, s := connect(t, a, l, b.id)
	d.Close()
	s.Close()
}

// TestSocketReuse: a node that listens dials from its listening socket,
// so the remote observes the address it can dial back.
func TestSocketReuse(t *testing.T) {
	for _, ip := range []string{"/ip4/127.0.0.1", "/ip6/::1"} {
		t.Run(ip, func(t *testing.T) {
			a, b := newNode(t), newNode(t)
			la := listen(t, a, ip+"/udp/0/quic-v1")
			lb := listen(t, b, ip+"/udp/0/quic-v1")
			c, sc := connect(t, a, lb, b.id)
			if !c.LocalMultiaddr().Equal(la.Multiaddr()) {
				t.Errorf("dialed from %s; want the listen address %s", c.LocalMultiaddr(), la.Multiaddr())
			}
			if !sc.RemoteMultiaddr().Equal(la.Multiaddr()) {
				t.Errorf("listener sees %s; want the dialer's listen address %s", sc.RemoteMultiaddr(), la.Multiaddr())
			}
			// After the listener closes, dials leave from a dial-only
			// socket, and the first connection lives on.
			la.Close()
			c2, sc2 := connect(t, a, lb, b.id)
			if sc2.RemoteMultiaddr().Equal(la.Multiaddr()) {
				t.Error("dialed from a closed listener's socket")
			}
			// A third dial shares the dial-only socket.
			c3, sc3 := connect(t, a, lb, b.id)
			if !sc3.RemoteMultiaddr().Equal(sc2.RemoteMultiaddr()) {
				t.Errorf("dial-only sockets: %s, then %s", sc2.RemoteMultiaddr(), sc3.RemoteMultiaddr())
			}
			echo(t, c, sc)
			for _, x := range []*quic.Conn{c, sc, c2, sc2, c3, sc3} {
				x.Close()
			}
		})
	}
}

// echo checks that a stream from a to b works.
func echo(t *testing.T, a, b *quic.Conn) {
	t.Helper()
	s, err := a.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	r, err := b.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]byte, 4)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "ping" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// TestListenerClose: Accept fails with net.ErrClosed after Close,
// accepted connections stay open, and the address can be listened on
// again, through the same socket while those connections live.
func TestListenerClose(t *testing.T) {
	a, b := newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
	c, sc := connect(t, a, l, b.id)
	accepting := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		accepting <- err
	}()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-accepting; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept in progress at Close: %v", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) || !errors.Is(err, quic.ErrListenerClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	echo(t, c, sc)
	echo(t, sc, c)

	// Listening again on the address reuses the socket.
	l2 := listen(t, b, l.Multiaddr().String())
	if !l2.Multiaddr().Equal(l.Multiaddr()) {
		t.Errorf("listening again on %s gave %s", l.Multiaddr(), l2.Multiaddr())
	}
	c2, sc2 := connect(t, a, l2, b.id)
	echo(t, c, sc)
	for _, x := range []*quic.Conn{c, sc, c2, sc2} {
		x.Close()
	}
	l2.Close()
	// With everything closed the port is free again.
	l3 := listen(t, b, l.Multiaddr().String())
	l3.Close()
	// A second listener on a busy address fails.
	l4 := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
	if _, err := b.tr.Listen(l4.Multiaddr()); err == nil {
		t.Error("two listeners on one address")
	}
}

// TestUnacceptedConnsClosed: connections established but never accepted
// are closed with the listener.
func TestUnacceptedConnsClosed(t *testing.T) {
	a, b := newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
	c, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l.Close()
	if _, err := c.AcceptStream(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the unaccepted connection's peer: %v", err)
	}
	b.rcmgr.waitReleased(t)
}

// TestTransportClose: Dial and Listen fail after Close; dialed
// connections on the dial-only socket end.
func TestTransportClose(t *testing.T) {
	a, b := newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
	c, sc := connect(t, a, l, b.id)
	defer sc.Close()
	if err := a.tr.Close(); err != nil {
		t.Fatal(err)
	}
	if !c.IsClosed() {
		t.Error("a connection on the dial-only socket survived Close")
	}
	c.Close()
	if _, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close: %v", err)
	}
	if _, err := a.tr.Listen(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")); !errors.Is(err, quic.ErrTransportClosed) {
		t.Errorf("Listen after Close: %v", err)
	}
	if n := a.rcmgr.open(); n != 0 {
		t.Errorf("%d scopes left open", n)
	}
}

// TestWindowGrowthReserved: a receive window grows only with memory
// reserved in the connection's scope; refused, the window stays and the
// transfer still completes.
func TestWindowGrowthReserved(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		a, b := newNode(t), newNode(t)
		b.rcmgr.refuseMem.Store(refuse)
		l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
		c, sc := connect(t, a, l, b.id)
		s, err := c.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		const size = 64 << 20
		go func() {
			buf := make([]byte, 1<<20)
			for range size / len(buf) {
				if _, err := s.Write(buf); err != nil {
					break
				}
			}
			s.CloseWrite()
		}()
		r, err := sc.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); n != size || err != nil {
			t.Fatalf("received %d bytes, %v", n, err)
		}
		t.Logf("refuse=%v: %d reservations, %d bytes reserved", refuse, b.rcmgr.reserves.Load(), b.rcmgr.reserved.Load())
		if b.rcmgr.reserves.Load() == 0 {
			t.Error("the connection window never asked to grow")
		}
		if refuse && b.rcmgr.reserved.Load() != 0 {
			t.Error("memory reserved although refused")
		}
		s.Close()
		r.Close()
		c.Close()
		sc.Close()
	}
}
