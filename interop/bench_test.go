package interop

// Side-by-side benchmarks: the same workload over p2pnet's stack and over
// go-libp2p's, in one run, so their ratio means something on a noisy
// machine. Run with
//
//	go test -run '^$' -bench . -benchtime 2s ./...
//
// (in interop/). Each benchmark has a p2pnet and a golibp2p variant for
// each security protocol.

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/interop/internal/stacks"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/transport"

	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpprotocol "github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	sinkID = stacks.SinkID // reads to EOF, then answers one byte
	echoID = stacks.EchoID // echoes one byte and closes
)

// sink and echoOne are the shared benchmark handlers.
var (
	sink    = stacks.Sink
	echoOne = stacks.EchoOne
)

// pair is a connected dialer and listener of one stack, seen through what
// the benchmarks need.
type pair struct {
	// newStream opens a stream for proto on the open connection.
	newStream func(ctx context.Context, proto string) (stream, error)
	// dialNew makes a fresh connection, opens a stream for proto on it,
	// and returns the stream and a function that closes the connection.
	dialNew func(ctx context.Context, proto string) (stream, func(), error)
}

type stream interface {
	io.ReadWriteCloser
	CloseWrite() error
}

func ourPair(b *testing.B, security string) pair {
	a, l := newOurStack(b, security), newOurStack(b, security)
	ln, err := l.tr.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		b.Fatal(err)
	}
	router := multistream.NewRouter[func(network.MuxedStream)]()
	router.AddHandler(sinkID, func(s network.MuxedStream) { sink(s) })
	router.AddHandler(echoID, func(s network.MuxedStream) { echoOne(s) })
	stop := serve(ln, router, nil)
	b.Cleanup(stop)
	ctx := context.Background()
	c, err := a.tr.Dial(ctx, ln.Multiaddr(), l.id)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	open := func(ctx context.Context, c transport.CapableConn, proto string) (stream, error) {
		s, err := c.OpenStream(ctx)
		if err != nil {
			return nil, err
		}
		return lazyStream{multistream.NewLazyClient(s, protocol.ID(proto)), s}, nil
	}
	return pair{
		newStream: func(ctx context.Context, proto string) (stream, error) { return open(ctx, c, proto) },
		dialNew: func(ctx context.Context, proto string) (stream, func(), error) {
			c, err := a.tr.Dial(ctx, ln.Multiaddr(), l.id)
			if err != nil {
				return nil, nil, err
			}
			s, err := open(ctx, c, proto)
			if err != nil {
				c.Close()
				return nil, nil, err
			}
			return s, func() { c.Close() }, nil
		},
	}
}

// lazyStream reads and writes through the lazy client and closes the
// underlying stream.
type lazyStream struct {
	*multistream.LazyConn
	s network.MuxedStream
}

func (l lazyStream) Close() error { return l.s.Close() }

func goPair(b *testing.B, security string) pair {
	a, l := goHost(b, security), goHost(b, security)
	l.SetStreamHandler(sinkID, func(s lpnetwork.Stream) { sink(s) })
	l.SetStreamHandler(echoID, func(s lpnetwork.Stream) { echoOne(s) })
	info := lppeer.AddrInfo{ID: l.ID(), Addrs: l.Addrs()}
	ctx := context.Background()
	if err := a.Connect(ctx, info); err != nil {
		b.Fatal(err)
	}
	return pair{
		newStream: func(ctx context.Context, proto string) (stream, error) {
			return a.NewStream(ctx, l.ID(), lpprotocol.ID(proto))
		},
		dialNew: func(ctx context.Context, proto string) (stream, func(), error) {
			a.Network().ClosePeer(l.ID())
			if err := a.Connect(ctx, info); err != nil {
				return nil, nil, err
			}
			s, err := a.NewStream(ctx, l.ID(), lpprotocol.ID(proto))
			if err != nil {
				return nil, nil, err
			}
			return s, func() {}, nil
		},
	}
}

// eachStack runs f for each stack and security protocol.
func eachStack(b *testing.B, f func(b *testing.B, p pair)) {
	for _, security := range securities {
		b.Run("p2pnet/"+security, func(b *testing.B) { f(b, ourPair(b, security)) })
		b.Run("golibp2p/"+security, func(b *testing.B) { f(b, goPair(b, security)) })
	}
}

// BenchmarkThroughput: one stream, 1 MiB writes (TCP + security + yamux).
func BenchmarkThroughput(b *testing.B) { eachStack(b, throughput) }

// throughput writes 1 MiB per op on one stream to a sink.
func throughput(b *testing.B, p pair) {
	s, err := p.newStream(context.Background(), sinkID)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	s.CloseWrite()
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	s.Close()
}

// roundTrip sends one byte and waits for it to come back.
func roundTrip(s stream) error { return stacks.RoundTrip(s) }

// BenchmarkStreamRequest: a 1-byte request/response on a fresh stream of
// an open connection.
func BenchmarkStreamRequest(b *testing.B) {
	eachStack(b, func(b *testing.B, p pair) {
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s, err := p.newStream(ctx, echoID)
			if err != nil {
				b.Fatal(err)
			}
			if err := roundTrip(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStreams64: 64 goroutines doing request/response on fresh
// streams of one connection; ns/op is per request.
func BenchmarkStreams64(b *testing.B) {
	eachStack(b, func(b *testing.B, p pair) {
		ctx := context.Background()
		var wg sync.WaitGroup
		work := make(chan struct{}, b.N)
		for i := 0; i < b.N; i++ {
			work <- struct{}{}
		}
		close(work)
		b.ResetTimer()
		for g := 0; g < 64; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					s, err := p.newStream(ctx, echoID)
					if err != nil {
						b.Error(err)
						return
					}
					if err := roundTrip(s); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

// BenchmarkDialRequest: dial, secure, multiplex, and a first 1-byte
// request/response on a new connection.
func BenchmarkDialRequest(b *testing.B) { eachStack(b, dialRequest) }

// dialRequest makes a new connection and one request per op.
func dialRequest(b *testing.B, p pair) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, closeConn, err := p.dialNew(ctx, echoID)
		if err != nil {
			b.Fatal(err)
		}
		if err := roundTrip(s); err != nil {
			b.Fatal(err)
		}
		closeConn()
	}
}
