package p2pnet_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/sec/tls"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newHost(t *testing.T, opts ...p2pnet.Option) *p2pnet.Host {
	t.Helper()
	opts = append([]p2pnet.Option{p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")}, opts...)
	h, err := p2pnet.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connect(t *testing.T, a, b *p2pnet.Host) network.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	conns := a.Network().ConnsToPeer(b.ID())
	if len(conns) != 1 {
		t.Fatalf("%d connections after Connect; want 1", len(conns))
	}
	return conns[0]
}

func echo(s network.Stream) {
	io.Copy(s, s)
	s.Close()
}

func TestConnectAndStream(t *testing.T) {
	for _, sec := range []protocol.ID{noise.ID, tls.ID} {
		t.Run(string(sec), func(t *testing.T) {
			a := newHost(t, p2pnet.Security(sec))
			b := newHost(t, p2pnet.Security(sec))
			b.SetStreamHandler("/echo/1.0.0", echo)
			c := connect(t, a, b)
			if st := c.ConnState(); st.Security != sec || !st.UsedEarlyMuxerNegotiation || st.Transport != "tcp" {
				t.Errorf("ConnState = %+v", st)
			}
			// The dial left from a's listen port.
			if !slices.ContainsFunc(a.Network().ListenAddresses(), c.LocalMultiaddr().Equal) {
				t.Errorf("dialed from %s, not from a listen address %v", c.LocalMultiaddr(), a.Network().ListenAddresses())
			}
			ctx := context.Background()
			s, err := a.NewStream(ctx, b.ID(), "/echo/1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			if s.Protocol() != "/echo/1.0.0" {
				t.Errorf("Protocol = %q", s.Protocol())
			}
			msg := bytes.Repeat([]byte("abc"), 100000)
			go func() {
				s.Write(msg)
				s.CloseWrite()
			}()
			got, err := io.ReadAll(s)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("echo: %d bytes, %v", len(got), err)
			}
			s.Close()
		})
	}
}

func TestNewStreamUnsupported(t *testing.T) {
	a, b := newHost(t), newHost(t)
	connect(t, a, b)
	// Once identify has told b's protocols, NewStream itself fails;
	// before, the lazy proposal's refusal shows on the first read.
	s, err := a.NewStream(context.Background(), b.ID(), "/nope/1.0.0")
	if err == nil {
		defer s.Close()
		s.Write([]byte("x"))
		_, err = s.Read(make([]byte, 1))
	}
	if !errors.Is(err, multistream.ErrNotSupported) {
		t.Errorf("refused stream: %v; want ErrNotSupported", err)
	}
}

func TestNewStreamSeveralProtocols(t *testing.T) {
	a, b := newHost(t), newHost(t)
	b.SetStreamHandler("/v2", echo)
	c := connect(t, a, b)
	// Before identify knows, the host negotiates.
	s, err := a.NewStream(context.Background(), b.ID(), "/v3", "/v2", "/v1")
	if err != nil {
		t.Fatal(err)
	}
	if s.Protocol() != "/v2" {
		t.Errorf("negotiated %q; want /v2", s.Protocol())
	}
	s.Close()
	<-a.Identify().IdentifyWait(c)
	if got, _ := a.Peerstore().SupportsProtocols(b.ID(), "/v2"); len(got) != 1 {
		t.Errorf("identify did not record /v2: %v", got)
	}
	s, err = a.NewStream(context.Background(), b.ID(), "/v3", "/v2")
	if err != nil {
		t.Fatal(err)
	}
	if s.Protocol() != "/v2" {
		t.Errorf("chose %q from identify; want /v2", s.Protocol())
	}
	s.Write([]byte("hi"))
	got := make([]byte, 2)
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "hi" {
		t.Errorf("echo %q, %v", got, err)
	}
	s.Close()
}

func TestHandlersAndIdentify(t *testing.T) {
	a, b := newHost(t, p2pnet.UserAgent("test-a")), newHost(t, p2pnet.UserAgent("test-b"))
	b.SetStreamHandlerMatch("/match", func(p protocol.ID) bool { return len(p) > 7 && p[:7] == "/match/" }, echo)
	c := connect(t, a, b)
	<-a.Identify().IdentifyWait(c)
	if v, err := a.Peerstore().Get(b.ID(), "AgentVersion"); err != nil || v != "test-b" {
		t.Errorf("AgentVersion = %v, %v", v, err)
	}
	if !slices.ContainsFunc(a.Peerstore().Addrs(b.ID()), b.Addrs()[0].Equal) {
		t.Errorf("identify did not store b's listen address: %v", a.Peerstore().Addrs(b.ID()))
	}
	s, err := a.NewStream(context.Background(), b.ID(), "/match/anything")
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("m"))
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		t.Errorf("match handler: %v", err)
	}
	s.Close()
	if !slices.Contains(b.Protocols(), "/match") {
		t.Errorf("Protocols = %v", b.Protocols())
	}
	b.RemoveStreamHandler("/match")
	// NewStream fails itself once b's push of its new protocols arrived.
	s, err = a.NewStream(context.Background(), b.ID(), "/match/anything")
	if err == nil {
		s.Write([]byte("m"))
		_, err = s.Read(make([]byte, 1))
		s.Close()
	}
	if !errors.Is(err, multistream.ErrNotSupported) {
		t.Errorf("removed handler still answers: %v", err)
	}
}

func TestPingAndPerf(t *testing.T) {
	a, b := newHost(t), newHost(t, p2pnet.EnablePerf())
	connect(t, a, b)
	ctx := context.Background()
	rtt, err := ping.PingOnce(ctx, a, b.ID())
	if err != nil || rtt <= 0 {
		t.Fatalf("ping: %v, %v", rtt, err)
	}
	res, err := perf.Run(ctx, a, b.ID(), 3<<20, 5<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Uploaded != 3<<20 || res.Downloaded != 5<<20 {
		t.Errorf("perf moved %d up, %d down", res.Uploaded, res.Downloaded)
	}
}

func TestOptionsErrors(t *testing.T) {
	if _, err := p2pnet.New(p2pnet.Security("/plaintext/2.0.0")); err == nil {
		t.Error("plaintext accepted")
	}
	if _, err := p2pnet.New(p2pnet.ListenAddrStrings("not an address")); err == nil {
		t.Error("bad listen address accepted")
	}
	if _, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/udp/0")); err == nil {
		t.Error("listening on an address no transport handles succeeded")
	}
	if _, err := p2pnet.New(p2pnet.QUICHandshakes(-1, 0)); err == nil {
		t.Error("negative QUIC retry threshold accepted")
	}
	if _, err := p2pnet.New(p2pnet.ForgetPeersAfter(-time.Second)); err == nil {
		t.Error("negative ForgetPeersAfter accepted")
	}
	if _, err := p2pnet.New(p2pnet.InboundHandshakes(-1, 0)); err == nil {
		t.Error("a negative timeout was accepted")
	}
	h := newHost(t)
	if err := h.Connect(context.Background(), peer.AddrInfo{ID: h.ID()}); err == nil {
		t.Error("connecting to ourselves succeeded")
	}
}

func TestCloseDisconnects(t *testing.T) {
	a, b := newHost(t), newHost(t)
	connect(t, a, b)
	disconnected := make(chan struct{})
	b.Network().Notify(&network.NotifyBundle{DisconnectedF: func(network.Network, network.Conn) { close(disconnected) }})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	<-disconnected
	if b.Network().Connectedness(a.ID()) != network.NotConnected {
		t.Error("b still connected after a closed")
	}
}

// TestConnectDNS: a /dns4/localhost address is resolved and dialed.
func TestConnectDNS(t *testing.T) {
	a, b := newHost(t), newHost(t)
	port, err := b.Addrs()[0].ValueForProtocol(ma.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	dnsAddr := ma.StringCast("/dns4/localhost/tcp/" + port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{dnsAddr}}); err != nil {
		t.Fatalf("connect via %s: %v", dnsAddr, err)
	}
	c := a.Network().ConnsToPeer(b.ID())[0]
	if !c.RemoteMultiaddr().Equal(b.Addrs()[0]) {
		t.Errorf("connected to %s; want %s", c.RemoteMultiaddr(), b.Addrs()[0])
	}
}

// TestInboundHandshakes: a silent peer is dropped after the configured
// handshake timeout, and the slot it held serves a real peer again.
func TestInboundHandshakes(t *testing.T) {
	h := newHost(t, p2pnet.InboundHandshakes(200*time.Millisecond, 1))
	_, hostport, err := manet.DialArgs(h.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	// Before the dial: the host's clock starts when it accepts, which
	// may come before Dial returns.
	start := time.Now()
	silent, err := net.Dial("tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// The host closes the silent connection when its handshake times out.
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("the silent connection got data")
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("dropped after %v; the timeout is 200ms", d)
	}
	// The single slot is free again: a real peer connects.
	connect(t, newHost(t), h)
}

// TestQUIC: hosts listening on TCP and QUIC connect over QUIC first (the
// default ranker), and streams, ping and perf work over it.
func TestQUIC(t *testing.T) {
	// newHost listens on TCP; ListenAddrs adds up.
	quic := p2pnet.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1")
	a, b := newHost(t, quic), newHost(t, quic, p2pnet.EnablePerf())
	b.SetStreamHandler("/echo/1.0.0", echo)
	c := connect(t, a, b)
	if st := c.ConnState(); st.Transport != "quic-v1" {
		t.Fatalf("connected over %+v; want QUIC first", st)
	}
	ctx := context.Background()
	if _, err := ping.PingOnce(ctx, a, b.ID()); err != nil {
		t.Errorf("ping over QUIC: %v", err)
	}
	res, err := perf.Run(ctx, a, b.ID(), 2<<20, 2<<20, nil)
	if err != nil || res.Uploaded != 2<<20 || res.Downloaded != 2<<20 {
		t.Errorf("perf over QUIC: %+v, %v", res, err)
	}
	s, err := a.NewStream(ctx, b.ID(), "/echo/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("quic"))
	s.CloseWrite()
	if got, err := io.ReadAll(s); err != nil || string(got) != "quic" {
		t.Errorf("echo over QUIC: %q, %v", got, err)
	}
	s.Close()
}
