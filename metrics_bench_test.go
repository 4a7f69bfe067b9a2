package p2pnet_test

import (
	"context"
	"encoding/binary"
	"io"
	"testing"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/benchproto"
	"github.com/p2pnet/p2pnet/peer"
)

// The benchmarks below compare a host without metrics (metricsModes'
// "off", which must cost nothing: no allocation per stream or per frame
// more than before metrics existed) with one exporting them ("on").

// metricsBenchHosts returns a connected client and server, both built
// with opts, on loopback TCP (Noise, yamux).
func metricsBenchHosts(b *testing.B, opts func() []p2pnet.Option) (client, server *p2pnet.Host) {
	b.Helper()
	mk := func() *p2pnet.Host {
		h, err := p2pnet.New(append(opts(), p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		return h
	}
	server, client = mk(), mk()
	server.SetStreamHandler(benchproto.SinkID, benchproto.Sink)
	server.SetStreamHandler(benchproto.EchoID, benchproto.Echo)
	if err := client.Connect(context.Background(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		b.Fatal(err)
	}
	return client, server
}

// BenchmarkMetricsStreamOpen opens a stream on an open connection,
// echoes one byte and closes it: the allocations per stream.
func BenchmarkMetricsStreamOpen(b *testing.B) {
	for _, m := range metricsModes {
		b.Run(m.name, func(b *testing.B) {
			client, server := metricsBenchHosts(b, m.opts)
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

// BenchmarkMetricsThroughput sends 64 KiB writes over one stream: the
// allocations per write (several frames) and the rate.
func BenchmarkMetricsThroughput(b *testing.B) {
	const chunk = 64 << 10
	for _, m := range metricsModes {
		b.Run(m.name, func(b *testing.B) {
			client, server := metricsBenchHosts(b, m.opts)
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
