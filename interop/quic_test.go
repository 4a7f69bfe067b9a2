package interop

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/proto/ping"

	"github.com/libp2p/go-libp2p"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpprotocol "github.com/libp2p/go-libp2p/core/protocol"
	lpping "github.com/libp2p/go-libp2p/p2p/protocol/ping"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// goQUICHost is a go-libp2p host listening on loopback TCP and QUIC.
func goQUICHost(t testing.TB) lphost.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.Transport(lptcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.ResourceManager(&lpnetwork.NullResourceManager{}), // see goHost
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func ourQUICHost(t testing.TB) *p2pnet.Host {
	t.Helper()
	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"), interopLimits(t), p2pnet.EnablePerf())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestQUICHosts: p2pnet and go-libp2p over QUIC, both dial directions:
// the peer listening on TCP and QUIC is reached over QUIC first; ping,
// identify, perf and 100 concurrent streams work each way.
func TestQUICHosts(t *testing.T) {
	for _, weDial := range []bool{true, false} {
		name := "p2pnet-dials"
		if !weDial {
			name = "golibp2p-dials"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			gh := goQUICHost(t)
			gh.SetStreamHandler(lpprotocol.ID(perf.ID), goPerfHandler)
			gh.SetStreamHandler("/interop/echo/1.0.0", func(s lpnetwork.Stream) { io.Copy(s, s); s.Close() })
			us := ourQUICHost(t)
			us.SetStreamHandler("/interop/echo/1.0.0", func(s network.Stream) { io.Copy(s, s); s.Close() })
			gid, uid := peer.ID(gh.ID()), lppeer.ID(us.ID())

			connected := make(chan struct{}, 1)
			us.Network().Notify(&network.NotifyBundle{ConnectedF: func(network.Network, network.Conn) {
				select {
				case connected <- struct{}{}:
				default:
				}
			}})
			goConnected := make(chan struct{}, 1)
			gh.Network().Notify(&lpnetwork.NotifyBundle{ConnectedF: func(lpnetwork.Network, lpnetwork.Conn) {
				select {
				case goConnected <- struct{}{}:
				default:
				}
			}})
			if weDial {
				if err := us.Connect(ctx, peer.AddrInfo{ID: gid, Addrs: gh.Addrs()}); err != nil {
					t.Fatalf("p2pnet connecting to go-libp2p: %v", err)
				}
			} else {
				// go-libp2p's ranker also prefers QUIC.
				if err := gh.Connect(ctx, lppeer.AddrInfo{ID: uid, Addrs: us.Addrs()}); err != nil {
					t.Fatalf("go-libp2p connecting to p2pnet: %v", err)
				}
			}
			for _, ch := range []chan struct{}{connected, goConnected} {
				select {
				case <-ch:
				case <-ctx.Done():
					t.Fatal("no connection")
				}
			}
			conns := us.Network().ConnsToPeer(gid)
			if len(conns) != 1 || conns[0].ConnState().Transport != "quic-v1" {
				for _, c := range conns {
					t.Logf("conn %s: %+v", c.RemoteMultiaddr(), c.ConnState())
				}
				t.Fatalf("want exactly one QUIC connection; got %d", len(conns))
			}
			if gc := gh.Network().ConnsToPeer(uid); len(gc) != 1 || gc[0].ConnState().Transport != "quic-v1" {
				t.Errorf("go-libp2p's view of the connection: %d conns", len(gc))
			}

			<-us.Identify().IdentifyWait(conns[0])
			if protos, _ := us.Peerstore().GetProtocols(gid); !slices.Contains(protos, ping.ID) {
				t.Errorf("identify over QUIC learnt %v", protos)
			}
			if rtt, err := ping.PingOnce(ctx, us, gid); err != nil || rtt <= 0 {
				t.Errorf("p2pnet pinging go-libp2p over QUIC: %v", err)
			}
			if res := <-lpping.Ping(ctx, gh, uid); res.Error != nil {
				t.Errorf("go-libp2p pinging p2pnet over QUIC: %v", res.Error)
			}
			if pr, err := perf.Run(ctx, us, gid, 4<<20, 4<<20, nil); err != nil || pr.Downloaded != 4<<20 {
				t.Errorf("p2pnet perf over QUIC: %+v, %v", pr, err)
			}
			if n, err := goPerfClient(ctx, gh, uid, 4<<20, 4<<20); err != nil || n != 4<<20 {
				t.Errorf("go-libp2p perf over QUIC: %d, %v", n, err)
			}

			echoBothWays(ctx, t, us, gid, gh, uid)
		})
	}
}
