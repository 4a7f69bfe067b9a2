package interop

import (
	"context"
	"testing"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpprotocol "github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// quicOnly keeps the QUIC addresses.
func quicOnly(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func ourQUICPair(b *testing.B) pair {
	server, client := ourQUICHost(b), ourQUICHost(b)
	server.SetStreamHandler(sinkID, func(s network.Stream) { sink(s) })
	server.SetStreamHandler(echoID, func(s network.Stream) { echoOne(s) })
	info := peer.AddrInfo{ID: server.ID(), Addrs: quicOnly(server.Addrs())}
	ctx := context.Background()
	if err := client.Connect(ctx, info); err != nil {
		b.Fatal(err)
	}
	return pair{
		newStream: func(ctx context.Context, proto string) (stream, error) {
			return client.NewStream(ctx, server.ID(), protocol.ID(proto))
		},
		dialNew: func(ctx context.Context, proto string) (stream, func(), error) {
			client.Network().ClosePeer(server.ID())
			client.Peerstore().ClearAddrs(server.ID())
			if err := client.Connect(ctx, info); err != nil {
				return nil, nil, err
			}
			s, err := client.NewStream(ctx, server.ID(), protocol.ID(proto))
			return s, func() {}, err
		},
	}
}

func goQUICPair(b *testing.B) pair {
	server, client := goQUICHost(b), goQUICHost(b)
	server.SetStreamHandler(sinkID, func(s lpnetwork.Stream) { sink(s) })
	server.SetStreamHandler(echoID, func(s lpnetwork.Stream) { echoOne(s) })
	info := lppeer.AddrInfo{ID: server.ID(), Addrs: quicOnly(server.Addrs())}
	ctx := context.Background()
	if err := client.Connect(ctx, info); err != nil {
		b.Fatal(err)
	}
	return pair{
		newStream: func(ctx context.Context, proto string) (stream, error) {
			return client.NewStream(ctx, server.ID(), lpprotocol.ID(proto))
		},
		dialNew: func(ctx context.Context, proto string) (stream, func(), error) {
			client.Network().ClosePeer(server.ID())
			client.Peerstore().ClearAddrs(server.ID())
			if err := client.Connect(ctx, info); err != nil {
				return nil, nil, err
			}
			s, err := client.NewStream(ctx, server.ID(), lpprotocol.ID(proto))
			return s, func() {}, err
		},
	}
}

// BenchmarkQUIC: one-stream throughput and dial + first request over
// QUIC, p2pnet and go-libp2p hosts side by side.
func BenchmarkQUIC(b *testing.B) {
	for _, bench := range []struct {
		name string
		f    func(*testing.B, pair)
	}{{"Throughput", throughput}, {"DialRequest", dialRequest}} {
		b.Run(bench.name+"/p2pnet", func(b *testing.B) { bench.f(b, ourQUICPair(b)) })
		b.Run(bench.name+"/golibp2p", func(b *testing.B) { bench.f(b, goQUICPair(b)) })
	}
}
