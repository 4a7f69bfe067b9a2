package flood

import (
	"context"
	"encoding/binary"
	"io"
	"sync"
	"testing"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
)

// The protocols of the benchmarks.
const (
	// sinkProto reads until EOF and answers the number of bytes read as 8
	// bytes, big-endian.
	sinkProto protocol.ID = "/flood/sink/1.0.0"
	// echoProto echoes until EOF.
	echoProto protocol.ID = "/flood/echo/1.0.0"
)

func sink(s network.Stream) {
	n, err := io.Copy(io.Discard, s)
	if err != nil {
		s.Reset()
		return
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	s.Write(b[:])
	s.Close()
}

// echoBufs holds the echo handler's buffers, so that the benchmark counts
// the stack's allocations and not io.Copy's 32 KiB buffer.
var echoBufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

func echo(s network.Stream) {
	bp := echoBufs.Get().(*[]byte)
	defer echoBufs.Put(bp)
	for {
		n, err := s.Read(*bp)
		if n > 0 {
			if _, werr := s.Write((*bp)[:n]); werr != nil {
				s.Reset()
				return
			}
		}
		if err == io.EOF {
			s.Close()
			return
		}
		if err != nil {
			s.Reset()
			return
		}
	}
}

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
	server.SetStreamHandler(sinkProto, sink)
	server.SetStreamHandler(echoProto, echo)
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
			s, err := client.NewStream(context.Background(), server.ID(), sinkProto)
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
				s, err := client.NewStream(ctx, server.ID(), echoProto)
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
