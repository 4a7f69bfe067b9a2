package p2pnet_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/testcert"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/transport/websocket"

	ma "github.com/multiformats/go-multiaddr"
)

// wsHost is a host that listens only on addrs.
func wsHost(t *testing.T, addrs []string, opts ...p2pnet.Option) *p2pnet.Host {
	t.Helper()
	h, err := p2pnet.New(append([]p2pnet.Option{p2pnet.ListenAddrStrings(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestWebSocket: a host given a /ws listen address listens there, says so
// in Addrs and identify, and a host with the default options (which
// always has the WebSocket transport) connects to it over WebSocket:
// ping and an echo stream work.
func TestWebSocket(t *testing.T) {
	b := wsHost(t, []string{"/ip4/127.0.0.1/tcp/0/ws"})
	b.SetStreamHandler("/echo/1.0.0", echo)
	if len(b.Addrs()) != 1 || b.Addrs()[0][len(b.Addrs()[0])-1].Code() != ma.P_WS {
		t.Fatalf("Addrs = %v; want one /ws address", b.Addrs())
	}
	a := newHost(t)
	c := connect(t, a, b)
	if st := c.ConnState(); st.Transport != websocket.Name {
		t.Fatalf("connected over %+v; want WebSocket", st)
	}
	if !c.RemoteMultiaddr().Equal(b.Addrs()[0]) {
		t.Errorf("remote address %s; want %s", c.RemoteMultiaddr(), b.Addrs()[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ping.PingOnce(ctx, a, b.ID()); err != nil {
		t.Errorf("ping over WebSocket: %v", err)
	}
	s, err := a.NewStream(ctx, b.ID(), "/echo/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 1<<20)
	rand.Read(want)
	go func() {
		s.Write(want)
		s.CloseWrite()
	}()
	if got, err := io.ReadAll(s); err != nil || string(got) != string(want) {
		t.Errorf("echo over WebSocket: %d bytes, %v", len(got), err)
	}
	s.Close()
	<-a.Identify().IdentifyWait(c)
	if !slices.ContainsFunc(a.Peerstore().Addrs(b.ID()), b.Addrs()[0].Equal) {
		t.Errorf("identify did not tell the /ws listen address: %v", a.Peerstore().Addrs(b.ID()))
	}
}

// TestWebSocketTLS: WebSocketTLS gives /tls/ws listeners their
// certificate; a host trusting its authority (WebSocketOptions with
// websocket.WithDialTLSConfig) connects by name and pings; without the
// option, listening on /tls/ws fails, and so does WebSocketTLS without a
// certificate.
func TestWebSocketTLS(t *testing.T) {
	roots, cert := testcert.Server(t, "localhost")
	b := wsHost(t, []string{"/ip4/127.0.0.1/tcp/0/tls/ws"}, p2pnet.WebSocketTLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	a := newHost(t, p2pnet.WebSocketOptions(websocket.WithDialTLSConfig(&tls.Config{RootCAs: roots})))
	port, _ := b.Addrs()[0].ValueForProtocol(ma.P_TCP)
	byName := ma.StringCast("/dns4/localhost/tcp/" + port + "/wss")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{byName}}); err != nil {
		t.Fatalf("connect via %s: %v", byName, err)
	}
	c := a.Network().ConnsToPeer(b.ID())[0]
	// The swarm resolved localhost and kept the name for the certificate.
	if got, want := c.RemoteMultiaddr().String(), "/ip4/127.0.0.1/tcp/"+port+"/tls/sni/localhost/ws"; got != want {
		t.Errorf("remote address %s; want %s", got, want)
	}
	if _, err := ping.PingOnce(ctx, a, b.ID()); err != nil {
		t.Errorf("ping over /tls/ws: %v", err)
	}

	if _, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0/tls/ws")); !errors.Is(err, websocket.ErrNoTLSConfig) {
		t.Errorf("listening on /tls/ws without a certificate: %v", err)
	}
	if _, err := p2pnet.New(p2pnet.WebSocketTLS(&tls.Config{})); err == nil {
		t.Error("WebSocketTLS without a certificate was accepted")
	}
}
