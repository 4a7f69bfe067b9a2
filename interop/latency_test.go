package interop

import (
	"context"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/interop/internal/stacks"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// newDelayProxy starts a stacks.DelayProxy to target, closed when tb
// ends, and returns it and the address to dial.
func newDelayProxy(tb testing.TB, target ma.Multiaddr, oneWay time.Duration) (*stacks.DelayProxy, ma.Multiaddr) {
	tb.Helper()
	p, addr, err := stacks.NewDelayProxy(target, oneWay)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p, addr
}

// BenchmarkDialRequestRTT: connect, open a stream, and complete a 1-byte
// request/response over a link with a 20 ms round trip. ns/op divided by
// 20 ms is the number of round trips (the TCP handshake excluded).
func BenchmarkDialRequestRTT(b *testing.B) {
	const oneWay = 10 * time.Millisecond
	for _, security := range securities {
		b.Run("p2pnet/"+security, func(b *testing.B) {
			server, client := ourHost(b, security), ourHost(b, security)
			server.SetStreamHandler(echoID, func(s network.Stream) { echoOne(s) })
			_, via := newDelayProxy(b, server.Addrs()[0], oneWay)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: []ma.Multiaddr{via}}); err != nil {
					b.Fatal(err)
				}
				s, err := client.NewStream(ctx, server.ID(), echoID)
				if err != nil {
					b.Fatal(err)
				}
				if err := roundTrip(s); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				// Forget the direct addresses identify learnt, so the next
				// dial goes through the proxy again.
				<-client.Identify().IdentifyWait(s.Conn())
				client.Network().ClosePeer(server.ID())
				client.Peerstore().ClearAddrs(server.ID())
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(2*oneWay), "RTTs/op")
		})
		b.Run("golibp2p/"+security, func(b *testing.B) {
			server, client := goHost(b, security), goHost(b, security)
			server.SetStreamHandler(echoID, func(s lpnetwork.Stream) { echoOne(s) })
			_, via := newDelayProxy(b, server.Addrs()[0], oneWay)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := client.Connect(ctx, lppeer.AddrInfo{ID: server.ID(), Addrs: []ma.Multiaddr{via}}); err != nil {
					b.Fatal(err)
				}
				s, err := client.NewStream(ctx, server.ID(), echoID)
				if err != nil {
					b.Fatal(err)
				}
				if err := roundTrip(s); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				client.Network().ClosePeer(server.ID())
				client.Peerstore().ClearAddrs(server.ID())
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(2*oneWay), "RTTs/op")
		})
	}
}
