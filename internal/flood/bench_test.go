package flood

import (
	"context"
	"encoding/binary"
	"io"
	"testing"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/benchproto"
	"github.com/p2pnet/p2pnet/network"
)

// managers are the resource managers the benchmarks compare: the host's
// default (an rcmgr.Manager with rcmgr.DefaultLimits) and none.
var managers = []struct {
	name string
	opts func() []p2pnet.Option
}{
	{"rcmgr", func() []p2pnet.Option { return nil }},
	{"null", func() []p2pnet.Option {
		return []p2pnet.Option{p2pnet.ResourceManager(&network.NullResourceManager{})}
	}},
}

// benchHosts returns a connected client and server, both with the
// resource manager under test.
func benchHosts(b *testing.B, opts []p2pnet.Option) (client, server *p2pnet.Host) {
	b.Helper()
	server = newHost(b, opts...)
	server.SetStreamHandler(benchproto.SinkID, benchproto.Sink)
	server.SetStreamHandler(benchproto.EchoID, benchproto.Echo)
	client = newHost(b, opts...)
	if err := client.Connect(context.Background(), info(server)); err != nil {
		b.Fatal(err)
	}
	return client, server
}

// BenchmarkHostThroughput sends data one way over one stream between two
// hosts on loopback (TCP, Noise, yamux), with and without the resource
// manager.
func BenchmarkHostThroughput(b *testing.B) {
	const chunk = 64 << 10
	for _, m := range managers {
		b.Run(m.name, func(b *testing.B) {
			client, server := benchHosts(b, m.opts())
			s, err := client.NewStream(context.Background(), server.ID(), benchproto.SinkID)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := s.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.CloseWrite(); err != nil {
				b.Fatal(err)
			}
			var got [8]byte
			if _, err := io.ReadFull(s, got[:]); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if n := binary.BigEndian.Uint64(got[:]); n != uint64(b.N)*chunk {
				b.Fatalf("the server read %d bytes; want %d", n, uint64(b.N)*chunk)
			}
		})
	}
}

// BenchmarkHostStreamOpen opens a stream on an open connection, echoes
// one byte and closes the stream, with and without the resource manager.
func BenchmarkHostStreamOpen(b *testing.B) {
	for _, m := range managers {
		b.Run(m.name, func(b *testing.B) {
			client, server := benchHosts(b, m.opts())
			ctx := context.Background()
			var buf [1]byte
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				s, err := client.NewStream(ctx, server.ID(), benchproto.EchoID)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Write(buf[:]); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(s, buf[:]); err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}
