package swarm

import (
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/transport/tcp"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
)

// tcpNode is a swarm with the real TCP transport, Noise and yamux,
// listening on a loopback port.
type tcpNode struct {
	s   *Swarm
	id  peer.ID
	tpt *tcp.Transport
}

func newTCPNode(t *testing.T) *tcpNode { return newTCPNodeTB(t) }

func newTCPNodeTB(t testing.TB) *tcpNode {
	t.Helper()
	priv, id := newKey(t)
	nt, err := noise.New(priv, []protocol.ID{yamux.ID})
	if err != nil {
		t.Fatal(err)
	}
	u, err := upgrader.New(upgrader.Config{
		Security: []sec.Transport{nt},
		Muxers:   []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(id, peerstore.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	tpt := tcp.New(u, nil)
	if err := s.AddTransport(tpt); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0")); err != nil {
		t.Fatal(err)
	}
	return &tcpNode{s: s, id: id, tpt: tpt}
}

func TestEndToEndTCP(t *testing.T) {
	a, b := newTCPNode(t), newTCPNode(t)
	a.s.SetStreamHandler(echo)
	b.s.SetStreamHandler(echo)
	bConnected := make(chan network.Conn, 1)
	bDisconnected := make(chan network.Conn, 1)
	b.s.Notify(&network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { bConnected <- c },
		DisconnectedF: func(_ network.Network, c network.Conn) { bDisconnected <- c },
	})
	a.s.Peerstore().AddAddrs(b.id, b.s.ListenAddresses(), peerstore.PermanentAddrTTL)

	c, err := a.s.DialPeer(t.Context(), b.id)
	if err != nil {
		t.Fatal(err)
	}
	st := c.ConnState()
	if st.Security != noise.ID || st.StreamMultiplexer != yamux.ID || st.Transport != "tcp" || c.RemotePeer() != b.id {
		t.Errorf("connection state %+v to %s", st, c.RemotePeer())
	}
	bc := <-bConnected
	if bc.RemotePeer() != a.id || bc.Stat().Direction != network.DirInbound {
		t.Errorf("b's connection: %v %+v", bc.RemotePeer(), bc.Stat())
	}
	if a.s.Connectedness(b.id) != network.Connected || b.s.Connectedness(a.id) != network.Connected {
		t.Errorf("connectedness %v / %v", a.s.Connectedness(b.id), b.s.Connectedness(a.id))
	}

	for _, tc := range []struct {
		from *tcpNode
		to   peer.ID
	}{{a, b.id}, {b, a.id}} {
		s, err := tc.from.s.NewStream(t.Context(), tc.to)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("hello over tcp, noise and yamux")
		if _, err := s.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := s.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s)
		if err != nil || string(got) != string(msg) {
			t.Fatalf("echo: %q, %v", got, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(b.s.ConnsToPeer(a.id)); n != 1 {
		t.Errorf("b has %d connections to a, want 1 (b must reuse a's)", n)
	}

	if err := a.s.ClosePeer(b.id); err != nil {
		t.Fatal(err)
	}
	if dc := <-bDisconnected; dc != bc {
		t.Errorf("b's Disconnected named another connection")
	}
	if a.s.Connectedness(b.id) != network.NotConnected {
		t.Errorf("a still connected")
	}
}

// TestEndToEndGoroutinesPerConnection reports the goroutines an idle
// TCP + Noise + yamux connection costs, per side, swarm and multiplexer
// together.
func TestEndToEndGoroutinesPerConnection(t *testing.T) {
	a, b := newTCPNode(t), newTCPNode(t)
	addr := b.s.ListenAddresses()[0]
	before := runtime.NumGoroutine()
	const n = 20
	for range n {
		tc, err := a.tpt.Dial(t.Context(), addr, b.id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.s.addConn(tc, network.DirOutbound); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until b has added every connection and the handshake
	// goroutines have ended.
	deadline := time.Now().Add(10 * time.Second)
	var perConn float64
	for {
		perConn = float64(runtime.NumGoroutine()-before) / (2 * n)
		if (len(b.s.Conns()) == n && perConn <= 2) || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	t.Logf("goroutines per idle TCP+Noise+yamux connection, per side: %v", perConn)
	if len(b.s.Conns()) != n || perConn > 2 {
		t.Errorf("%d connections on b, %v goroutines per connection and side, want %d and at most 2", len(b.s.Conns()), perConn, n)
	}
}

// BenchmarkStreamRoundTrip opens a stream on an open TCP + Noise + yamux
// connection, sends one byte, reads the echo and closes the stream.
func BenchmarkStreamRoundTrip(b *testing.B) {
	a, srv := newTCPNodeTB(b), newTCPNodeTB(b)
	srv.s.SetStreamHandler(echo)
	a.s.Peerstore().AddAddrs(srv.id, srv.s.ListenAddresses(), peerstore.PermanentAddrTTL)
	if _, err := a.s.DialPeer(b.Context(), srv.id); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1)
	b.ReportAllocs()
	for b.Loop() {
		s, err := a.s.NewStream(b.Context(), srv.id)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
