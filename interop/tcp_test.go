package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/sec/tls"
	"github.com/p2pnet/p2pnet/transport"

	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpprotocol "github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

const pingID = "/ipfs/ping/1.0.0"

var securityIDs = map[string]protocol.ID{"noise": noise.ID, "tls": tls.ID}

// TestDialGoLibp2p: p2pnet dials a go-libp2p host over TCP with each
// security protocol, opens a stream with lazy multistream-select for
// ping, and completes pings.
func TestDialGoLibp2p(t *testing.T) {
	for _, security := range securities {
		t.Run(security, func(t *testing.T) {
			h := goHost(t, security)
			us := newOurStack(t, security)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			var target ma.Multiaddr
			for _, a := range h.Addrs() {
				if us.tr.CanDial(a) {
					target = a
				}
			}
			c, err := us.tr.Dial(ctx, target, peer.ID(h.ID()))
			if err != nil {
				t.Fatalf("dial go-libp2p at %s: %v", target, err)
			}
			defer c.Close()
			want := network.ConnectionState{
				StreamMultiplexer:         yamux.ID,
				Security:                  securityIDs[security],
				Transport:                 "tcp",
				UsedEarlyMuxerNegotiation: true,
			}
			if got := c.ConnState(); got != want {
				t.Errorf("ConnState = %+v; want %+v", got, want)
			}
			if c.RemotePeer() != peer.ID(h.ID()) {
				t.Errorf("remote peer %s; want %s", c.RemotePeer(), h.ID())
			}

			s, err := c.OpenStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ps := multistream.NewLazyClient(s, pingID)
			for i := 0; i < 5; i++ {
				payload := make([]byte, 32)
				rand.Read(payload)
				if _, err := ps.Write(payload); err != nil {
					t.Fatalf("ping %d write: %v", i, err)
				}
				got := make([]byte, 32)
				if _, err := io.ReadFull(ps, got); err != nil {
					t.Fatalf("ping %d read: %v", i, err)
				}
				if !bytes.Equal(got, payload) {
					t.Fatalf("ping %d: echo differs", i)
				}
			}
			// The go-libp2p side sees the connection with our peer ID.
			conns := h.Network().ConnsToPeer(lppeer.ID(us.id))
			if len(conns) != 1 {
				t.Fatalf("go-libp2p has %d connections to us; want 1", len(conns))
			}
			if st := conns[0].ConnState(); !st.UsedEarlyMuxerNegotiation || string(st.StreamMultiplexer) != string(yamux.ID) {
				t.Errorf("go-libp2p's ConnState = %+v", st)
			}
		})
	}
}

// TestGoLibp2pDials: a go-libp2p host dials our listener and exchanges
// data on a stream we accept and negotiate.
func TestGoLibp2pDials(t *testing.T) {
	const echoID = "/p2pnet/echo/1.0.0"
	for _, security := range securities {
		t.Run(security, func(t *testing.T) {
			h := goHost(t, security)
			us := newOurStack(t, security)
			l, err := us.tr.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0"))
			if err != nil {
				t.Fatal(err)
			}
			router := multistream.NewRouter[func(network.MuxedStream)]()
			router.AddHandler(echoID, echo)
			accepted := make(chan transport.CapableConn, 1)
			stop := serve(l, router, accepted)
			defer stop()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			h.Peerstore().AddAddr(lppeer.ID(us.id), l.Multiaddr(), time.Hour)
			s, err := h.NewStream(ctx, lppeer.ID(us.id), lpprotocol.ID(echoID))
			if err != nil {
				t.Fatalf("go-libp2p NewStream to us: %v", err)
			}
			msg := bytes.Repeat([]byte("p2pnet interop "), 10000)
			errc := make(chan error, 1)
			go func() {
				_, err := s.Write(msg)
				if err == nil {
					err = s.CloseWrite()
				}
				errc <- err
			}()
			got, err := io.ReadAll(s)
			if err != nil {
				t.Fatalf("read echo: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("write: %v", err)
			}
			s.Close()
			if !bytes.Equal(got, msg) {
				t.Fatalf("echo of %d bytes came back as %d bytes", len(msg), len(got))
			}
			c := <-accepted
			if c.RemotePeer() != peer.ID(h.ID()) {
				t.Errorf("accepted a connection from %s; want %s", c.RemotePeer(), h.ID())
			}
			if st := c.ConnState(); !st.UsedEarlyMuxerNegotiation || st.StreamMultiplexer != yamux.ID || st.Security != securityIDs[security] {
				t.Errorf("our ConnState = %+v", st)
			}
			if st := s.Conn().ConnState(); !st.UsedEarlyMuxerNegotiation || string(st.Security) != string(securityIDs[security]) {
				t.Errorf("go-libp2p's ConnState = %+v", st)
			}
		})
	}
}
