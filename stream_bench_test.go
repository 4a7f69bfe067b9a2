package p2pnet_test

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/rcmgr"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/sec/tls"
)

// echoOneID is the protocol of echoOne, the request the versus harness
// times on a fresh stream.
const echoOneID protocol.ID = "/p2pnet/bench/echo-one/1.0.0"

// echoOne answers one byte with the same byte and closes, as the
// harness's echo does.
func echoOne(s network.Stream) {
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err == nil {
		s.Write(b[:])
	}
	s.Close()
}

// freshStreamHosts returns a client connected to a server serving
// echoOne, over loopback with the stack's options; the server gets
// serverOpts too.
func freshStreamHosts(b *testing.B, stack benchStack, serverOpts ...p2pnet.Option) (client, server *p2pnet.Host) {
	b.Helper()
	mk := func(extra ...p2pnet.Option) *p2pnet.Host {
		h, err := p2pnet.New(append(stack.opts(), extra...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		return h
	}
	server, client = mk(serverOpts...), mk()
	server.SetStreamHandler(echoOneID, echoOne)
	if err := client.Connect(context.Background(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		b.Fatal(err)
	}
	return client, server
}

// freshRequest opens a stream, sends one byte, reads the echo and closes.
func freshRequest(ctx context.Context, client *p2pnet.Host, server peer.ID) error {
	s, err := client.NewStream(ctx, server, echoOneID)
	if err != nil {
		return err
	}
	b := [1]byte{7}
	if _, err := s.Write(b[:]); err != nil {
		s.Reset()
		return err
	}
	if _, err := io.ReadFull(s, b[:]); err != nil {
		s.Reset()
		return err
	}
	return s.Close()
}

// benchStack is a kind of connection the benchmarks run over.
type benchStack struct {
	name string
	opts func() []p2pnet.Option
}

// benchStacks are the harness's stacks: TCP with Noise or TLS (and
// yamux), and QUIC.
var benchStacks = []benchStack{
	{"noise", func() []p2pnet.Option {
		return []p2pnet.Option{p2pnet.Security(noise.ID), p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")}
	}},
	{"tls", func() []p2pnet.Option {
		return []p2pnet.Option{p2pnet.Security(tls.ID), p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")}
	}},
	{"quic", func() []p2pnet.Option {
		return []p2pnet.Option{p2pnet.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1")}
	}},
}

// BenchmarkFreshStream is the harness's fresh-stream request: a one-byte
// request and answer on a new stream of an open connection, one at a
// time. Allocations count both ends (both hosts are in this process).
func BenchmarkFreshStream(b *testing.B) {
	for _, stack := range benchStacks {
		b.Run(stack.name, func(b *testing.B) {
			client, server := freshStreamHosts(b, stack)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := freshRequest(ctx, client, server.ID()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFreshStream64 runs the requests of BenchmarkFreshStream from
// 64 goroutines at once over the one connection. The server admits any
// number of streams per peer and protocol: a client may open its next
// stream once it has read the answer, before the server's handler has
// closed the last one, so the default 64 would refuse some.
func BenchmarkFreshStream64(b *testing.B) {
	for _, stack := range benchStacks {
		b.Run(stack.name, func(b *testing.B) {
			limits := rcmgr.DefaultLimits()
			limits.ProtocolPeerDefault = rcmgr.Unlimited
			rm, err := rcmgr.New(limits)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { rm.Close() }) // after the hosts' Close
			client, server := freshStreamHosts(b, stack, p2pnet.ResourceManager(rm))
			ctx := context.Background()
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for range 64 {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						if err := freshRequest(ctx, client, server.ID()); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkDial is the harness's dial+secure+first request: the client
// disconnects (not timed), then connects, opens a stream and completes
// a one-byte request. On loopback it measures the CPU of the handshake,
// identify and the first stream; round trips are measured by the
// harness over a delaying proxy.
func BenchmarkDial(b *testing.B) {
	for _, stack := range benchStacks {
		b.Run(stack.name, func(b *testing.B) {
			client, server := freshStreamHosts(b, stack)
			info := peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				client.Network().ClosePeer(server.ID())
				b.StartTimer()
				if err := client.Connect(ctx, info); err != nil {
					b.Fatal(err)
				}
				if err := freshRequest(ctx, client, server.ID()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
