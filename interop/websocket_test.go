package interop

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/testcert"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/transport/websocket"

	"github.com/libp2p/go-libp2p"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpprotocol "github.com/libp2p/go-libp2p/core/protocol"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	lpidentify "github.com/libp2p/go-libp2p/p2p/protocol/identify"
	lpping "github.com/libp2p/go-libp2p/p2p/protocol/ping"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	lptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	lpws "github.com/libp2p/go-libp2p/p2p/transport/websocket"
)

// wsEchoID is the echo protocol of the WebSocket and browser tests: the
// server reads the stream to its end, then writes it all back and closes.
const wsEchoID = "/p2pnet/echo/1.0.0"

// echoBytes reads s to its end and writes it back: a stream handler of
// either side (p2pnet's or go-libp2p's streams).
func echoBytes(s io.ReadWriteCloser, closeWrite func() error, reset func() error) {
	b, err := io.ReadAll(s)
	if err != nil {
		reset()
		return
	}
	if _, err := s.Write(b); err != nil {
		reset()
		return
	}
	closeWrite()
	s.Close()
}

// echoCheck writes n random bytes on s, closes its write side, reads the
// echo and compares checksums.
func echoCheck(t *testing.T, s io.ReadWriteCloser, closeWrite func() error, n int) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	want := sha256.Sum256(data)
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		if err == nil {
			err = closeWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(s)
	if err := <-werr; err != nil {
		t.Fatalf("echo: writing: %v", err)
	}
	if err != nil {
		t.Fatalf("echo: reading: %v", err)
	}
	if sum := sha256.Sum256(got); sum != want {
		t.Fatalf("echo: %d bytes back with sha256 %x; sent %d with %x", len(got), sum, n, want)
	}
	s.Close()
}

// goWSHost starts a go-libp2p host listening on loopback /ws (or /tls/ws
// with the certificate in serverTLS) with the named security protocol,
// yamux, and go-libp2p's WebSocket transport; clientTLS is what its dials
// trust.
func goWSHost(t *testing.T, security, listen string, serverTLS, clientTLS *tls.Config) lphost.Host {
	t.Helper()
	var wsOpts []any
	if serverTLS != nil {
		wsOpts = append(wsOpts, lpws.WithTLSConfig(serverTLS))
	}
	if clientTLS != nil {
		wsOpts = append(wsOpts, lpws.WithTLSClientConfig(clientTLS))
	}
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings(listen),
		libp2p.Transport(lpws.New, wsOpts...),
		libp2p.Muxer(lpyamux.ID, lpyamux.DefaultTransport),
		libp2p.ResourceManager(&lpnetwork.NullResourceManager{}),
	}
	switch security {
	case "noise":
		opts = append(opts, libp2p.Security(lpnoise.ID, lpnoise.New))
	case "tls":
		opts = append(opts, libp2p.Security(lptls.ID, lptls.New))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestWebSocketGoLibp2p: a go-libp2p host and a p2pnet host over /ws and
// /tls/ws, each security protocol, both directions: the connection is a
// WebSocket one on both sides; identify both ways (agent, protocols, the
// WebSocket listen address); ping both ways; 1 MiB echoed both ways with
// a sha256 checksum.
func TestWebSocketGoLibp2p(t *testing.T) {
	roots, cert := testcert.Server(t, "localhost")
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}}
	clientTLS := &tls.Config{RootCAs: roots}
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0/ws", "/ip4/127.0.0.1/tcp/0/tls/ws"} {
		for _, security := range securities {
			for _, weDial := range []bool{true, false} {
				name := security + listen + "/p2pnet-dials"
				if !weDial {
					name = security + listen + "/golibp2p-dials"
				}
				t.Run(name, func(t *testing.T) {
					testWebSocketGoLibp2p(t, security, listen, weDial, serverTLS, clientTLS)
				})
			}
		}
	}
}

func testWebSocketGoLibp2p(t *testing.T, security, listen string, weDial bool, serverTLS, clientTLS *tls.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	gh := goWSHost(t, security, listen, serverTLS, clientTLS)
	gh.SetStreamHandler(wsEchoID, func(s lpnetwork.Stream) { echoBytes(s, s.CloseWrite, s.Reset) })
	us, err := p2pnet.New(
		p2pnet.ListenAddrStrings(listen),
		p2pnet.Security(securityIDs[security]),
		p2pnet.UserAgent("p2pnet-interop"),
		p2pnet.WebSocketTLS(serverTLS),
		p2pnet.WebSocketOptions(websocket.WithDialTLSConfig(clientTLS)),
		interopLimits(t),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer us.Close()
	us.SetStreamHandler(wsEchoID, func(s network.Stream) { echoBytes(s, s.CloseWrite, s.Reset) })
	gid := peer.ID(gh.ID())
	if len(gh.Addrs()) != 1 || len(us.Addrs()) != 1 {
		t.Fatalf("addresses: go-libp2p %v, p2pnet %v; want one WebSocket address each", gh.Addrs(), us.Addrs())
	}

	// Both sides' connection events, registered before anything dials:
	// the dialer's Connect may return before the listener has added the
	// connection.
	ourConnected, goConnected := make(chan struct{}, 1), make(chan struct{}, 1)
	signal := func(ch chan struct{}) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	us.Network().Notify(&network.NotifyBundle{ConnectedF: func(network.Network, network.Conn) { signal(ourConnected) }})
	gh.Network().Notify(&lpnetwork.NotifyBundle{ConnectedF: func(lpnetwork.Network, lpnetwork.Conn) { signal(goConnected) }})
	if weDial {
		if err := us.Connect(ctx, peer.AddrInfo{ID: gid, Addrs: gh.Addrs()}); err != nil {
			t.Fatalf("p2pnet connecting to go-libp2p at %v: %v", gh.Addrs(), err)
		}
	} else {
		if err := gh.Connect(ctx, lppeer.AddrInfo{ID: lppeer.ID(us.ID()), Addrs: us.Addrs()}); err != nil {
			t.Fatalf("go-libp2p connecting to p2pnet at %v: %v", us.Addrs(), err)
		}
	}
	for _, connected := range []chan struct{}{ourConnected, goConnected} {
		select {
		case <-connected:
		case <-ctx.Done():
			t.Fatal("a side never saw the connection")
		}
	}
	conns := us.Network().ConnsToPeer(gid)
	if len(conns) != 1 {
		t.Fatalf("%d connections; want 1", len(conns))
	}
	if st := conns[0].ConnState(); st.Transport != websocket.Name || st.Security != securityIDs[security] {
		t.Errorf("p2pnet's connection state %+v; want WebSocket with %s", st, security)
	}
	gconns := gh.Network().ConnsToPeer(lppeer.ID(us.ID()))
	if len(gconns) != 1 {
		t.Fatalf("go-libp2p has %d connections; want 1", len(gconns))
	}
	if tr := gconns[0].ConnState().Transport; tr != "websocket" {
		t.Errorf("go-libp2p's connection transport %q; want websocket", tr)
	}

	// Identify, both ways.
	select {
	case <-us.Identify().IdentifyWait(conns[0]):
	case <-ctx.Done():
		t.Fatal("p2pnet's identify did not finish")
	}
	if v, _ := us.Peerstore().Get(gid, "AgentVersion"); v == nil || v == "" {
		t.Error("p2pnet learnt no agent version from go-libp2p")
	}
	protos, _ := us.Peerstore().GetProtocols(gid)
	for _, want := range []protocol.ID{ping.ID, "/ipfs/id/1.0.0", wsEchoID} {
		if !slices.Contains(protos, want) {
			t.Errorf("p2pnet did not learn that go-libp2p speaks %s: %v", want, protos)
		}
	}
	if !slices.ContainsFunc(us.Peerstore().Addrs(gid), gh.Addrs()[0].Equal) {
		t.Errorf("p2pnet did not learn go-libp2p's listen address %s: %v", gh.Addrs()[0], us.Peerstore().Addrs(gid))
	}
	select {
	case <-gh.(interface{ IDService() lpidentify.IDService }).IDService().IdentifyWait(gconns[0]):
	case <-ctx.Done():
		t.Fatal("go-libp2p's identify did not finish")
	}
	if v, _ := gh.Peerstore().Get(lppeer.ID(us.ID()), "AgentVersion"); v != "p2pnet-interop" {
		t.Errorf("go-libp2p learnt agent version %v; want p2pnet-interop", v)
	}
	gprotos, _ := gh.Peerstore().GetProtocols(lppeer.ID(us.ID()))
	for _, want := range []lpprotocol.ID{"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0", wsEchoID} {
		if !slices.Contains(gprotos, want) {
			t.Errorf("go-libp2p did not learn that p2pnet speaks %s: %v", want, gprotos)
		}
	}
	if !slices.ContainsFunc(gh.Peerstore().Addrs(lppeer.ID(us.ID())), us.Addrs()[0].Equal) {
		t.Errorf("go-libp2p did not learn p2pnet's listen address %s: %v", us.Addrs()[0], gh.Peerstore().Addrs(lppeer.ID(us.ID())))
	}

	// Ping, both ways.
	if rtt, err := ping.PingOnce(ctx, us, gid); err != nil || rtt <= 0 {
		t.Errorf("p2pnet pinging go-libp2p: %v, %v", rtt, err)
	}
	if res := <-lpping.Ping(ctx, gh, lppeer.ID(us.ID())); res.Error != nil {
		t.Errorf("go-libp2p pinging p2pnet: %v", res.Error)
	}

	// Echo with checksums, both ways.
	s, err := us.NewStream(ctx, gid, wsEchoID)
	if err != nil {
		t.Fatal(err)
	}
	echoCheck(t, s, s.CloseWrite, 1<<20)
	gs, err := gh.NewStream(ctx, lppeer.ID(us.ID()), wsEchoID)
	if err != nil {
		t.Fatal(err)
	}
	echoCheck(t, gs, gs.CloseWrite, 1<<20)

	// Both ends see the connection close.
	goDisconnected := make(chan struct{}, 1)
	gh.Network().Notify(&lpnetwork.NotifyBundle{
		DisconnectedF: func(lpnetwork.Network, lpnetwork.Conn) {
			select {
			case goDisconnected <- struct{}{}:
			default:
			}
		},
	})
	if err := us.Network().ClosePeer(gid); err != nil {
		t.Fatal(err)
	}
	select {
	case <-goDisconnected:
	case <-ctx.Done():
		t.Fatal("go-libp2p did not see the connection p2pnet closed end")
	}
}
