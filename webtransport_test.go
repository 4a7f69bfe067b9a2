package p2pnet_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/transport/webtransport"

	ma "github.com/multiformats/go-multiaddr"
)

// TestWebTransport: a host listening on QUIC and WebTransport on port 0
// gets one port for both and shows the WebTransport address with its two certificate hashes in
// Addrs, and a host with the default options (which always has the
// WebTransport transport) connects to it over WebTransport when given
// only that address: ping, a 1 MiB echo, and identify work.
func TestWebTransport(t *testing.T) {
	b := wsHost(t, []string{"/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/udp/0/quic-v1/webtransport"})
	var port string
	for _, a := range b.Addrs() {
		if a[len(a)-1].Code() == ma.P_QUIC_V1 {
			port = a[1].Value()
		}
	}
	b.SetStreamHandler("/echo/1.0.0", echo)
	var wtAddr ma.Multiaddr
	for _, a := range b.Addrs() {
		if slices.ContainsFunc(a, func(c ma.Component) bool { return c.Code() == ma.P_WEBTRANSPORT }) {
			wtAddr = a
		}
	}
	if wtAddr == nil || len(wtAddr) != 6 || wtAddr[4].Code() != ma.P_CERTHASH || wtAddr[5].Code() != ma.P_CERTHASH {
		t.Fatalf("Addrs = %v; want a WebTransport address with two certificate hashes", b.Addrs())
	}
	if wtAddr[1].Value() != port {
		t.Errorf("WebTransport on port %s, QUIC on %s: the socket is not shared", wtAddr[1].Value(), port)
	}

	a := newHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{wtAddr}}); err != nil {
		t.Fatal(err)
	}
	c := a.Network().ConnsToPeer(b.ID())[0]
	if st := c.ConnState(); st.Transport != webtransport.Name {
		t.Fatalf("connected over %+v; want WebTransport", st)
	}
	if _, err := ping.PingOnce(ctx, a, b.ID()); err != nil {
		t.Errorf("ping over WebTransport: %v", err)
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
	got, err := io.ReadAll(s)
	if err != nil || sha256.Sum256(got) != sha256.Sum256(want) {
		t.Errorf("echo over WebTransport: %d bytes, %v", len(got), err)
	}
	s.Close()
	<-a.Identify().IdentifyWait(c)
	if !slices.ContainsFunc(a.Peerstore().Addrs(b.ID()), wtAddr.Equal) {
		t.Errorf("identify did not tell the WebTransport address: %v", a.Peerstore().Addrs(b.ID()))
	}
}
